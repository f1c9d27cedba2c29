"""A small generated OAI-PMH repository with real protocol semantics, kept in memory.

Owns the records (mutable between and during harvests), argument validation per verb,
from/until/set selection, paging with resumption tokens, and the oai_dc rendering.
It must not know about HTTP or faults: it turns a query into a `Reply`, nothing more.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import threading

from lxml import etree

from .protocol import (DAY, DC_NS, LIST_VERBS, OAI_DC_NS, OAI_DC_SCHEMA, SECONDS, XSI_NS,
                       OAIError, Reply, envelope, error_reply, format_datestamp, oai,
                       parse_datestamp, parse_range, serialize, utcnow)

DC_ELEMENTS = ("title", "creator", "subject", "description", "publisher", "contributor",
               "date", "type", "format", "identifier", "source", "language", "relation",
               "coverage", "rights")

# verb -> (required, optional); resumptionToken is exclusive where listed in RESUMABLE
ARGUMENTS = {
    "Identify": (set(), set()),
    "ListMetadataFormats": (set(), {"identifier"}),
    "ListSets": (set(), set()),
    "GetRecord": ({"identifier", "metadataPrefix"}, set()),
    "ListIdentifiers": ({"metadataPrefix"}, {"from", "until", "set"}),
    "ListRecords": ({"metadataPrefix"}, {"from", "until", "set"}),
}
RESUMABLE = LIST_VERBS


def validate_arguments(query: dict[str, list[str]]) -> dict[str, str]:
    """The request's arguments as a dict.

    Raises OAIError badVerb or badArgument (OAI-PMH 3.6; the arguments of each verb: section 4).
    """
    verbs = query.get("verb", [])
    if len(verbs) != 1 or verbs[0] not in ARGUMENTS:
        raise OAIError("badVerb", f"illegal or missing verb: {verbs}")
    repeated = [k for k, v in query.items() if len(v) > 1]
    if repeated:
        raise OAIError("badArgument", f"repeated arguments: {repeated}")
    args = {k: v[0] for k, v in query.items()}
    required, optional = ARGUMENTS[verbs[0]]
    given = set(args) - {"verb"}
    if "resumptionToken" in given and verbs[0] in RESUMABLE:
        if given != {"resumptionToken"}:
            raise OAIError("badArgument", "resumptionToken is an exclusive argument")
        return args
    if given - required - optional:
        raise OAIError("badArgument", f"illegal arguments: {sorted(given - required - optional)}")
    if required - given:
        raise OAIError("badArgument", f"missing arguments: {sorted(required - given)}")
    return args


@dataclasses.dataclass
class Record:
    """One item: Record(identifier, datestamp, sets, deleted, fields).

    `datestamp` may be a datetime or 'YYYY-MM-DD[Thh:mm:ssZ]'; `fields` maps Dublin Core
    element names ('title', 'creator', ...) to a string or a list of strings.
    """

    identifier: str
    datestamp: dt.datetime | str
    sets: tuple[str, ...] = ()
    deleted: bool = False
    fields: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        self.datestamp = parse_datestamp(self.datestamp)
        self.sets = tuple(self.sets)
        self.fields = _normalise_fields(self.fields)

    @property
    def key(self) -> tuple[str, str]:
        return (self.datestamp.isoformat(), self.identifier)


def _normalise_fields(fields: dict) -> dict[str, list[str]]:
    unknown = set(fields) - set(DC_ELEMENTS)
    if unknown:
        raise ValueError(f"not Dublin Core elements: {sorted(unknown)}")
    return {k: ([v] if isinstance(v, str) else list(v)) for k, v in fields.items()}


def sample_records(n: int, *, prefix: str = "oai:upstream.test:",
                   start: str = "2024-01-01T08:00:00Z") -> list[Record]:
    """n records, two per day, alternating sets journal:a / journal:b.

    Every title contains '&', '<' and '>' (on the wire: &amp; &lt; &gt;), and creators
    carry non-ASCII letters, so lossy or double-escaping parses show up in tests.
    """
    first = parse_datestamp(start)
    return [Record(
        identifier=f"{prefix}{i}",
        datestamp=first + dt.timedelta(hours=12 * i),
        sets=("journal:a" if i % 2 else "journal:b",),
        fields={"title": f"Record {i}: fish & chips <i>{i}</i> > {i - 1}",
                "creator": ["Müller, Zoë", f"Author {i}"],
                "date": (first + dt.timedelta(hours=12 * i)).strftime("%Y-%m-%d"),
                "identifier": f"https://doi.org/10.1234/upstream.{i}",
                "type": "article"},
    ) for i in range(1, n + 1)]


class SyntheticRepository:
    """An in-memory OAI-PMH 2.0 data provider over `Record`s (oai_dc only).

    granularity: DAY ('YYYY-MM-DD') or SECONDS; a DAY repository answers badArgument to
    from/until with a time part. deleted_record: 'no' (deleted records vanish),
    'transient' or 'persistent' (served with status="deleted"). paging: 'offset' (the token
    holds a position in the list, so records that move shift the pages, as in most
    servers) or 'keyset' (the token holds the last (datestamp, identifier) served).
    order: 'datestamp' or 'added' (as the records were added: DSpace lists by item id,
    and OAI-PMH promises no order; offset paging only).
    """

    def __init__(self, records=(), *, page_size: int = 10, granularity: str = SECONDS,
                 deleted_record: str = "persistent", paging: str = "offset",
                 sets: dict[str, str] | None = None, compression=(),
                 repository_name: str = "Synthetic Upstream",
                 admin_email: str = "upstream@example.org",
                 earliest_datestamp: str | None = None, order: str = "datestamp"):
        if granularity not in (DAY, SECONDS):
            raise ValueError(f"granularity must be {DAY!r} or {SECONDS!r}")
        if deleted_record not in ("no", "transient", "persistent"):
            raise ValueError("deleted_record must be no, transient or persistent")
        if paging not in ("offset", "keyset"):
            raise ValueError("paging must be offset or keyset")
        if order not in ("datestamp", "added") or (order == "added" and paging != "offset"):
            raise ValueError("order must be datestamp, or added with offset paging")
        self.order = order
        self.page_size, self.granularity, self.paging = page_size, granularity, paging
        self.deleted_record, self.compression = deleted_record, tuple(compression)
        self.set_names = dict(sets or {})
        self.repository_name, self.admin_email = repository_name, admin_email
        self.earliest_datestamp = earliest_datestamp
        self._records: dict[str, Record] = {}
        self._generation = 0
        self._lock = threading.RLock()
        self.add(*records)

    # -- mutation (thread-safe; call any time, also while a harvest is running) --

    def add(self, *records) -> None:
        """Add or replace records (Record objects or (identifier, datestamp, sets, deleted, fields) tuples)."""
        with self._lock:
            for rec in records:
                rec = rec if isinstance(rec, Record) else Record(*rec)
                self._records[rec.identifier] = rec

    def update(self, identifier: str, *, datestamp=None, sets=None, **fields) -> Record:
        """Change a record's fields/sets; its datestamp moves to `datestamp` or to now."""
        with self._lock:
            rec = self._records[identifier]
            rec.fields.update(_normalise_fields(fields))
            if sets is not None:
                rec.sets = tuple(sets)
            rec.deleted = False
            rec.datestamp = self._next_datestamp(datestamp)
            return rec

    def delete(self, identifier: str, *, datestamp=None) -> Record:
        """Mark a record deleted (status="deleted" from now on, unless deleted_record='no')."""
        with self._lock:
            rec = self._records[identifier]
            rec.deleted, rec.fields = True, {}
            rec.datestamp = self._next_datestamp(datestamp)
            return rec

    def purge(self, identifier: str) -> None:
        """Forget a record completely (what a 'transient' repository may do)."""
        with self._lock:
            del self._records[identifier]

    def expire_tokens(self) -> None:
        """Every resumption token issued so far answers badResumptionToken; new ones work."""
        with self._lock:
            self._generation += 1

    @property
    def records(self) -> list[Record]:
        with self._lock:
            return [dataclasses.replace(r, fields={k: list(v) for k, v in r.fields.items()})
                    for r in sorted(self._records.values(), key=lambda r: r.key)]

    def _next_datestamp(self, datestamp) -> dt.datetime:
        if datestamp is not None:
            return parse_datestamp(datestamp)
        latest = max((r.datestamp for r in self._records.values()), default=utcnow())
        return max(utcnow(), latest + dt.timedelta(seconds=1))

    # -- protocol --

    def respond(self, query: dict[str, list[str]], base_url: str) -> Reply:
        with self._lock:
            try:
                args = validate_arguments(query)
                verb = args.pop("verb")
                root, _ = envelope(base_url, {"verb": verb, **args})
                handler = getattr(self, f"_{verb}")
                root.append(handler(args, base_url))
                return Reply(body=serialize(root))
            except OAIError as err:
                echo = {k: v[0] for k, v in query.items() if len(v) == 1}
                return error_reply(base_url, [err], echo)

    def page_of(self, query: dict[str, list[str]]) -> int | None:
        """1-based page number a list request asks for (None: not a list request)."""
        verb = (query.get("verb") or [None])[0]
        if verb not in LIST_VERBS:
            return None
        token = (query.get("resumptionToken") or [None])[0]
        if token is None:
            return 1
        with self._lock:
            try:
                _, _, set_spec, frm, until, position = self._decode(token, verb)
                matches = self._matching(set_spec, frm, until)
            except OAIError:
                return None
            return self._cursor(matches, position) // self.page_size + 1

    def _visible(self, rec: Record) -> bool:
        return not (rec.deleted and self.deleted_record == "no")

    def _matching(self, set_spec, frm, until) -> list[Record]:
        lo, hi = parse_range(frm, until, self.granularity)
        out = []
        for rec in self._records.values():
            stamp = rec.datestamp
            if not self._visible(rec) or (lo and stamp < lo) or (hi and stamp > hi):
                continue
            if set_spec and not any(s == set_spec or s.startswith(set_spec + ":") for s in rec.sets):
                continue
            out.append(rec)
        return out if self.order == "added" else sorted(out, key=lambda r: r.key)

    def _cursor(self, matches, position) -> int:
        if self.paging == "offset":
            return position
        return 0 if position is None else sum(1 for r in matches if list(r.key) <= position)

    def _encode(self, *state) -> str:
        raw = json.dumps([self._generation, *state], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def _decode(self, token: str, verb: str):
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            gen, *state = json.loads(raw)
            ok = gen == self._generation and state[0] == verb and len(state) == 6
        except (ValueError, TypeError, IndexError):
            ok = False
        if not ok:
            raise OAIError("badResumptionToken", f"unknown or expired resumptionToken {token!r}")
        return state   # verb, prefix, set, from, until, position

    # -- verbs: each returns the verb element --

    def _Identify(self, args, base_url):
        el = etree.Element(oai("Identify"))
        earliest = self.earliest_datestamp or format_datestamp(
            min((r.datestamp for r in self._records.values()),
                default=parse_datestamp("2000-01-01")), self.granularity)
        announced = getattr(self, "announced_base_url", None) or base_url  # a repository that names another
        for tag, text in (("repositoryName", self.repository_name), ("baseURL", announced),
                          ("protocolVersion", "2.0"), ("adminEmail", self.admin_email),
                          ("earliestDatestamp", earliest),
                          ("deletedRecord", self.deleted_record),
                          ("granularity", self.granularity),
                          *(("compression", c) for c in self.compression)):
            etree.SubElement(el, oai(tag)).text = text
        return el

    def _ListMetadataFormats(self, args, base_url):
        if "identifier" in args:
            self._get(args["identifier"])
        el = etree.Element(oai("ListMetadataFormats"))
        fmt = etree.SubElement(el, oai("metadataFormat"))
        for tag, text in (("metadataPrefix", "oai_dc"), ("schema", OAI_DC_SCHEMA),
                          ("metadataNamespace", OAI_DC_NS)):
            etree.SubElement(fmt, oai(tag)).text = text
        return el

    def _ListSets(self, args, base_url):
        if "resumptionToken" in args:
            raise OAIError("badResumptionToken", "ListSets is never paged here")
        specs = self._set_specs()
        if not specs:
            raise OAIError("noSetHierarchy", "this repository does not support sets")
        el = etree.Element(oai("ListSets"))
        for spec in sorted(specs):
            s = etree.SubElement(el, oai("set"))
            etree.SubElement(s, oai("setSpec")).text = spec
            etree.SubElement(s, oai("setName")).text = specs[spec] or spec
        return el

    def _GetRecord(self, args, base_url):
        rec = self._get(args["identifier"])
        self._check_prefix(args["metadataPrefix"])
        el = etree.Element(oai("GetRecord"))
        el.append(self._record(rec))
        return el

    def _ListIdentifiers(self, args, base_url):
        return self._list("ListIdentifiers", args)

    def _ListRecords(self, args, base_url):
        return self._list("ListRecords", args)

    def _list(self, verb, args):
        if "resumptionToken" in args:
            _, prefix, set_spec, frm, until, position = self._decode(args["resumptionToken"], verb)
        else:
            prefix, set_spec = args["metadataPrefix"], args.get("set")
            frm, until, position = args.get("from"), args.get("until"), None
            self._check_prefix(prefix)
            if set_spec and not self._set_specs():
                raise OAIError("noSetHierarchy", "this repository does not support sets")
        matches = self._matching(set_spec, frm, until)
        if self.paging == "offset":
            cursor = position or 0
        else:
            cursor = self._cursor(matches, position)
        page = matches[cursor:cursor + self.page_size]
        if not page:   # also a resumed list whose remaining records moved away
            raise OAIError("noRecordsMatch", "no records match the request")
        el = etree.Element(oai(verb))
        for rec in page:
            el.append(self._header(rec) if verb == "ListIdentifiers" else self._record(rec))
        more = cursor + len(page) < len(matches)
        if more or position is not None:
            token = etree.SubElement(el, oai("resumptionToken"),
                                     completeListSize=str(len(matches)), cursor=str(cursor))
            if more:
                nxt = cursor + len(page) if self.paging == "offset" else list(page[-1].key)
                token.text = self._encode(verb, prefix, set_spec, frm, until, nxt)
        return el

    def _set_specs(self) -> dict[str, str | None]:
        """Every setSpec in use, with its ancestors ('a:b' implies 'a'), and the named sets."""
        specs: dict[str, str | None] = {}
        for rec in self._records.values():
            for spec in rec.sets:
                parts = spec.split(":")
                for i in range(1, len(parts) + 1):
                    specs.setdefault(":".join(parts[:i]), None)
        specs.update(self.set_names)
        return specs

    def _get(self, identifier) -> Record:
        rec = self._records.get(identifier)
        if rec is None or not self._visible(rec):
            raise OAIError("idDoesNotExist", f"no item {identifier!r}")
        return rec

    def _check_prefix(self, prefix):
        if prefix != "oai_dc":
            raise OAIError("cannotDisseminateFormat", f"metadataPrefix {prefix!r} is not supported")

    def _header(self, rec: Record):
        el = etree.Element(oai("header"))
        if rec.deleted:
            el.set("status", "deleted")
        etree.SubElement(el, oai("identifier")).text = rec.identifier
        etree.SubElement(el, oai("datestamp")).text = format_datestamp(rec.datestamp, self.granularity)
        for spec in rec.sets:
            etree.SubElement(el, oai("setSpec")).text = spec
        return el

    def _record(self, rec: Record):
        el = etree.Element(oai("record"))
        el.append(self._header(rec))
        if not rec.deleted:
            metadata = etree.SubElement(el, oai("metadata"))
            dc = etree.SubElement(metadata, f"{{{OAI_DC_NS}}}dc",
                                  nsmap={"oai_dc": OAI_DC_NS, "dc": DC_NS, "xsi": XSI_NS})
            dc.set(f"{{{XSI_NS}}}schemaLocation", f"{OAI_DC_NS} {OAI_DC_SCHEMA}")
            for name in DC_ELEMENTS:
                for value in rec.fields.get(name, ()):
                    etree.SubElement(dc, f"{{{DC_NS}}}{name}").text = value
        return el
