"""The six verbs as plain functions over the store's query API (spec section 4).

Each takes a validated OAIRequest and a Context and returns a result to render, or raises an
OAIError. Everything that can fail happens here, before the first byte is written.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import Row
from sqlalchemy.orm import Session

from oai.formats.base import XSI_NS
from oai.protocol import dates
from oai.protocol.arguments import OAIRequest
from oai.protocol.errors import (
    BadArgument,
    BadResumptionToken,
    CannotDisseminateFormat,
    IdDoesNotExist,
    NoMetadataFormats,
    NoRecordsMatch,
    NoSetHierarchy,
)
from oai.protocol.tokens import Cursor, TokenCodec, from_epoch, to_epoch
from oai.store import queries
from oai.store.models import OAISet
from oai.store.validation import OAI_IDENTIFIER


@dataclass(frozen=True)
class FormatInfo:
    prefix: str
    namespace: str
    schema: str
    # The stored bytes' root start ("<article") when they carry no schema hint: the schema of a format
    # only we publish is on our own host, known when serving, not at ingest. OAI-PMH 2.5 asks every
    # metadata part for xmlns:xsi and xsi:schemaLocation; `stamp` adds them.
    unhinted_root: bytes | None = None

    @functools.cached_property  # built once per FormatInfo, which the app keeps per host
    def stamp(self) -> tuple[bytes, bytes] | None:
        """(root start, the attributes to add right after it), or None when the bytes are served as stored."""
        if self.unhinted_root is None:
            return None
        hint = f' xmlns:xsi="{XSI_NS}" xsi:schemaLocation="{self.namespace} {self.schema}"'
        return self.unhinted_root, hint.encode("utf-8")


@dataclass(frozen=True)
class Repository:
    """What Identify says about us, and the paging policy."""

    name: str
    base_url: str
    admin_emails: tuple[str, ...]
    repository_identifier: str | None  # oai-identifier scheme, e.g. "example.org"
    page_sizes: Mapping[str, int]
    compression: tuple[str, ...] = ("gzip", "deflate")
    page_max_bytes: int = 4 * 1024 * 1024  # of metadata on a ListRecords page (see _page_rows)


@dataclass
class Context:
    session: Session
    repository: Repository
    formats: Mapping[str, FormatInfo]
    codec: TokenCodec
    now: datetime = field(default_factory=dates.now)


@dataclass(frozen=True)
class TokenInfo:
    """A resumptionToken element: `value` is empty on the last page of a list."""

    value: str
    complete_list_size: int
    cursor: int
    expiration: datetime | None


@dataclass(frozen=True)
class IdentifyResult:
    earliest: datetime
    friends: tuple[str, ...]
    sample_identifier: str | None


@dataclass(frozen=True)
class FormatsResult:
    formats: tuple[FormatInfo, ...]


@dataclass(frozen=True)
class SetsResult:
    sets: tuple[OAISet, ...]
    token: TokenInfo | None


@dataclass(frozen=True)
class ListResult:
    # Rows of queries.list_rows: id, identifier, datestamp, deleted, set_specs[, xml, about, digest].
    items: tuple[Row, ...]
    token: TokenInfo | None
    with_metadata: bool
    stamp: tuple[bytes, bytes] | None = None  # FormatInfo.stamp of the list's format


@dataclass(frozen=True)
class RecordResult:
    item: queries.Item
    stamp: tuple[bytes, bytes] | None = None  # FormatInfo.stamp of the record's format


def identify(req: OAIRequest, ctx: Context) -> IdentifyResult:
    earliest = queries.earliest_datestamp(ctx.session) or ctx.now
    sample = None
    if ctx.repository.repository_identifier:
        # a record that exists (validators ask GetRecord for it), in the oai-identifier syntax the schema wants
        ours = f"oai:{ctx.repository.repository_identifier}:"
        held = queries.first_identifier(ctx.session, ours)
        sample = held if held is not None and OAI_IDENTIFIER.fullmatch(held) else f"{ours}10.1234/example"
    return IdentifyResult(earliest, tuple(queries.sources_for_friends(ctx.session)), sample)


def list_metadata_formats(req: OAIRequest, ctx: Context) -> FormatsResult:
    """All formats, or those one item really has; raises IdDoesNotExist, NoMetadataFormats."""
    identifier = req.get("identifier")
    if identifier is None:
        return FormatsResult(tuple(ctx.formats.values()))
    record = queries.record_by_identifier(ctx.session, identifier)
    if record is None:
        raise IdDoesNotExist(f"there is no item {identifier!r} in this repository")
    prefixes = [p for p in queries.record_prefixes(ctx.session, record.id) if p in ctx.formats]
    if not prefixes:
        raise NoMetadataFormats(f"no metadata formats are available for {identifier!r}")
    return FormatsResult(tuple(ctx.formats[p] for p in prefixes))


def list_sets(req: OAIRequest, ctx: Context) -> SetsResult:
    """Sets by setSpec, paged; raises NoSetHierarchy, BadResumptionToken."""
    size = ctx.repository.page_sizes["ListSets"]
    token = req.get("resumptionToken")
    if token is not None:
        cur = ctx.codec.decode(token, verb="ListSets", now=ctx.now)
        after, total, done = cur.after_key, cur.complete_list_size, cur.cursor
    else:
        if not queries.has_sets(ctx.session):
            raise NoSetHierarchy("this repository has no sets")
        after, total, done = None, queries.count_sets(ctx.session), 0
    rows = queries.list_sets(ctx.session, after=after, limit=size + 1)
    if not rows:
        raise BadResumptionToken("the list this resumptionToken continued has no further sets")
    more = len(rows) > size
    rows = rows[:size]
    info = None
    if more:
        nxt = Cursor(verb="ListSets", after_key=rows[-1].spec, complete_list_size=total,
                     cursor=done + len(rows), issued=to_epoch(ctx.now))
        info = TokenInfo(ctx.codec.encode(nxt), total, done, ctx.codec.expires(nxt))
    elif token is not None:
        info = TokenInfo("", total, done, None)
    return SetsResult(tuple(rows), info)


def _format(ctx: Context, prefix: str) -> str:
    if prefix not in ctx.formats:
        raise CannotDisseminateFormat(f"the metadata format {prefix!r} is not supported by this repository")
    return prefix


def _dates(req: OAIRequest) -> tuple[datetime | None, datetime | None]:
    """A list request's `from` and inclusive `until`; raises BadArgument."""
    bounds = {}
    for name in ("from", "until"):
        if name in req.args:
            bounds[name] = dates.parse(req.args[name], name)
    if len({g for _, g in bounds.values()}) > 1:
        raise BadArgument("'from' and 'until' must have the same granularity")
    from_ = bounds["from"][0] if "from" in bounds else None
    if from_ is not None and "until" in bounds and from_ > bounds["until"][0]:
        raise BadArgument("'from' must be less than or equal to 'until'")
    return from_, dates.until_bound(*bounds["until"]) if "until" in bounds else None


def _first_cursor(req: OAIRequest, ctx: Context) -> tuple[Cursor, queries.ListQuery]:
    """Validate a fresh list request and freeze its window (`until` is at most now)."""
    try:
        prefix, unknown = _format(ctx, req.args["metadataPrefix"]), None
    except CannotDisseminateFormat as exc:
        prefix, unknown = "", exc
    try:
        from_, asked = _dates(req)
    except BadArgument as exc:  # both are said (3.6), and badArgument's bare request element (3.2)
        raise BadArgument(exc.message, also=(unknown,) if unknown is not None else ()) from None
    set_spec = req.get("set")
    no_sets = set_spec is not None and not queries.has_sets(ctx.session)
    if unknown is not None:  # with a set asked of a repository that has none, both are said (3.6; an outside audit)
        raise CannotDisseminateFormat(unknown.message,
                                      also=(NoSetHierarchy("this repository has no sets"),) if no_sets else ())
    # OAI-PMH 3.5: the list is frozen at its first page, so it is bounded while records change.
    until = ctx.now if asked is None else min(asked, ctx.now)
    set_id = None
    if set_spec is not None:
        if no_sets:
            raise NoSetHierarchy("this repository has no sets")
        set_id = queries.set_id(ctx.session, set_spec)
        if set_id is None:
            raise NoRecordsMatch(f"there is no set {set_spec!r}, so no records match")
    query = queries.ListQuery(prefix, set_id, from_, until)
    total = queries.count_items(ctx.session, query) if (from_ is None or from_ <= until) else 0
    if total == 0:
        raise NoRecordsMatch("no records match the request")
    cursor = Cursor(
        verb=req.verb, prefix=prefix, set_spec=set_spec,
        from_=None if from_ is None else to_epoch(from_), until=to_epoch(until),
        until_asked=None if asked is None else to_epoch(asked),
        complete_list_size=total,
    )
    return cursor, query


def _resumed_cursor(req: OAIRequest, ctx: Context) -> tuple[Cursor, queries.ListQuery]:
    cur = ctx.codec.decode(req.args["resumptionToken"], verb=req.verb, now=ctx.now)
    if cur.prefix not in ctx.formats:
        raise BadResumptionToken("the metadata format of this list is no longer available")
    set_id = None
    if cur.set_spec is not None:
        set_id = queries.set_id(ctx.session, cur.set_spec)
        if set_id is None:
            raise BadResumptionToken("the set of this list no longer exists")
    query = queries.ListQuery(
        cur.prefix, set_id,
        None if cur.from_ is None else from_epoch(cur.from_),
        None if cur.until is None else from_epoch(cur.until),
    )
    return cur, query


ROWS_AT_ONCE = 500  # rows with metadata read in one statement while a page is filled (see _page_rows)


def _page_rows(ctx: Context, query: queries.ListQuery, after: tuple[datetime, int] | None, size: int,
               with_metadata: bool) -> tuple[list[Row], bool]:
    """(a page's rows, whether the list goes on after them): up to `size` rows after `after`, and with metadata
    only as many as hold page_max_bytes of it, never fewer than one. The page is read ROWS_AT_ONCE rows at a
    time, so that a large page size does not read (and hold) a page's worth of metadata it will not send: an
    outside measurement found a worker serving 10,000 JATS records a page at 324 MB. Any number of records a
    page is OAI-PMH's to choose (3.5); the token's cursor counts the records sent."""
    if not with_metadata:
        rows = queries.list_rows(ctx.session, query, after=after, limit=size + 1, with_metadata=False)
        return rows[:size], len(rows) > size
    budget = ctx.repository.page_max_bytes
    page: list[Row] = []
    held = 0
    while True:
        wanted = min(size + 1 - len(page), ROWS_AT_ONCE)
        rows = queries.list_rows(ctx.session, query, after=after, limit=wanted, with_metadata=True)
        for row in rows:
            held += len(row.xml or b"") + len(row.about or b"")
            if len(page) == size or (page and held > budget):
                return page, True  # `row` begins the next page
            page.append(row)
        if len(rows) < wanted:
            return page, False
        after = (from_epoch(to_epoch(page[-1].datestamp)), page[-1].id)  # as a token would carry it


def _list(req: OAIRequest, ctx: Context, with_metadata: bool) -> ListResult:
    resumed = "resumptionToken" in req.args
    cur, query = (_resumed_cursor if resumed else _first_cursor)(req, ctx)
    size = ctx.repository.page_sizes[req.verb]
    after = None
    if cur.after_datestamp is not None and cur.after_id is not None:
        after = (from_epoch(cur.after_datestamp), cur.after_id)
    items, more = _page_rows(ctx, query, after, size, with_metadata)
    bound = ctx.now if cur.until_asked is None else min(ctx.now, from_epoch(cur.until_asked))
    if not items and resumed and query.until is not None and bound > query.until:
        # Every record left in the window changed since the token was issued and moved past the
        # frozen `until`. A page cannot be empty and the token is not bad (OAI-PMH 3.5.1), so the
        # list goes on with what changed meanwhile: the window is extended to now, or to the
        # request's own `until` (and what remains all lies after the old `until`).
        rest = replace(query, from_=query.until + timedelta(seconds=1), until=bound)
        total = queries.count_items(ctx.session, rest)
        if total:
            query = replace(query, until=bound)
            cur = replace(cur, until=to_epoch(bound), complete_list_size=cur.cursor + total)
            items, more = _page_rows(ctx, query, after, size, with_metadata)
    if not items and after is not None:
        # Every record left changed since the token was issued and left the list (past the request's
        # `until`, out of its set). The list must still end, with an empty token, on a page that is not
        # empty (3.5 and the schema): it ends with the last record it served that is still in it, again.
        # Re-serving a record is harmless to a harvester; an error ends its harvest.
        last = queries.last_row_through(ctx.session, query, through=after, with_metadata=with_metadata)
        items = [last] if last is not None else []
    if not items:
        # Nothing is left in the list at all: every record of it changed since it began.
        raise NoRecordsMatch("no records match any longer: they all changed after this list began")
    info = None
    if more:
        last = items[-1]
        nxt = replace(
            cur, after_datestamp=to_epoch(last.datestamp), after_id=last.id,
            cursor=cur.cursor + len(items), issued=to_epoch(ctx.now),
        )
        info = TokenInfo(ctx.codec.encode(nxt), cur.complete_list_size, cur.cursor, ctx.codec.expires(nxt))
    elif resumed:
        info = TokenInfo("", cur.complete_list_size, cur.cursor, None)
    fmt = ctx.formats.get(cur.prefix)
    return ListResult(tuple(items), info, with_metadata, fmt.stamp if fmt is not None and with_metadata else None)


def list_identifiers(req: OAIRequest, ctx: Context) -> ListResult:
    return _list(req, ctx, with_metadata=False)


def list_records(req: OAIRequest, ctx: Context) -> ListResult:
    return _list(req, ctx, with_metadata=True)


def get_record(req: OAIRequest, ctx: Context) -> RecordResult:
    """One record; raises IdDoesNotExist, CannotDisseminateFormat."""
    identifier, prefix = req.args["identifier"], req.args["metadataPrefix"]
    record = queries.record_by_identifier(ctx.session, identifier)
    if record is None:
        try:
            _format(ctx, prefix)
            also: tuple[CannotDisseminateFormat, ...] = ()
        except CannotDisseminateFormat as exc:
            also = (exc,)
        raise IdDoesNotExist(f"there is no item {identifier!r} in this repository", also=also)
    _format(ctx, prefix)
    item = queries.get_item(ctx.session, identifier, prefix)
    if item is None:
        raise CannotDisseminateFormat(f"the item {identifier!r} is not available as {prefix!r}")
    return RecordResult(item, ctx.formats[prefix].stamp)


VERBS: dict[str, Callable[[OAIRequest, Context], object]] = {
    "Identify": identify,
    "ListMetadataFormats": list_metadata_formats,
    "ListSets": list_sets,
    "ListIdentifiers": list_identifiers,
    "ListRecords": list_records,
    "GetRecord": get_record,
}
