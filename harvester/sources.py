"""Sources kept in the database: adding one (after checking its endpoint), listing, showing, removing.

Owns the source's facts read from Identify/ListMetadataFormats/ListSets; harvest runs live in runs.py.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import Engine, delete, func, or_, select
from sqlalchemy.orm import Session

from harvester import dates
from harvester.client import FetchPolicy, HarvestClient
from harvester.errors import FetchError, HarvestError, PageError, RepeatedToken, SourceError, UpstreamOAIError
from harvester.leases import lease_free
from harvester.parse import FormatOffer, Identity, format_offers, identity, set_entries
from oai.formats.registry import FORMATS
from oai.store import fence
from oai.store.engine import transaction
from oai.store.models import ForeignFormat, HarvestCheckpoint, HarvestRun, OAISet, Quarantine, Record, RecordSet, Source
from oai.store.records import delete_record, rename_sets, set_info
from oai.store.validation import METADATA_PREFIX, absolute_uri, check_set_spec, shown

RESERVED_NAMES = frozenset({"run", "worker", "runs", "quarantine"})  # `oai harvest <name>` subcommands
LIST_SETS_PAGES = 20  # "when cheap": at most this many ListSets pages
DELETED_RECORD = ("no", "transient", "persistent")
# What the source's columns hold: PostgreSQL refuses a longer value (SQLite keeps it), so a source that declares
# one is refused with the reason instead of failing with the database's error.
MAX_PREFIX = Source.__table__.c.prefix.type.length
MAX_NAMESPACE = Source.__table__.c.metadata_namespace.type.length


@dataclass(frozen=True)
class SourceView:
    """A source as the harvester uses it (a snapshot of its row)."""

    id: int
    name: str
    base_url: str
    prefix: str
    set_spec: str | None
    every_seconds: int | None
    keep_identifiers: bool
    detect_deletions: bool
    granularity: str | None
    deleted_record: str | None
    repository_name: str | None
    metadata_namespace: str | None
    metadata_schema: str | None
    enabled: bool
    created: datetime
    last_complete_response_date: str | None
    next_due: datetime | None
    lease_owner: str | None
    lease_expires: datetime | None
    deletion_check_owed_by: int | None = None  # the run whose deletion check is not done yet

    @classmethod
    def of(cls, row: Source) -> SourceView:
        return cls(row.id, row.name, row.base_url, row.prefix, row.set_spec, row.every_seconds,
                   row.keep_upstream_identifiers, row.detect_deletions, row.granularity, row.deleted_record,
                   row.repository_name, row.metadata_namespace, row.metadata_schema, row.enabled, row.created,
                   row.last_complete_response_date, row.next_due, row.lease_owner, row.lease_expires,
                   row.deletion_check_owed_by)


@dataclass(frozen=True)
class EndpointFacts:
    """What the endpoint check learnt."""

    identity: Identity
    offer: FormatOffer
    set_name: str | None
    set_names: dict[str, str | None]
    warnings: tuple[str, ...]


def check_name(name: str) -> str:
    """A source name must be a setSpec without ':' (its records form that set); raises SourceError."""
    try:
        check_set_spec(name)
    except ValueError as exc:
        raise SourceError(f"the source name {name!r} cannot be used: {exc}") from None
    if ":" in name:
        raise SourceError(f"the source name {name!r} cannot contain ':' (upstream sets go below it)")
    if name in RESERVED_NAMES:
        raise SourceError(f"{name!r} is a word of the `oai harvest` command; choose another source name")
    if len(name) > 128:
        raise SourceError("a source name can have at most 128 characters")
    return name


def check_endpoint(client: HarvestClient, prefix: str, set_spec: str | None) -> EndpointFacts:
    """Identify, ListMetadataFormats (and ListSets for a set); raises SourceError saying what is wrong."""
    url = client.endpoint
    warnings: list[str] = []
    try:
        ident = identity(client.fetch("Identify"))
    except UpstreamOAIError as exc:
        raise SourceError(f"{url} answered Identify with an error ({exc.code}: {exc.message}); "
                          "it does not work as an OAI-PMH endpoint") from None
    except (FetchError, PageError) as exc:
        raise SourceError(f"{url} is not an OAI-PMH endpoint we can use: {exc}") from None
    if ident.granularity not in (dates.DAY, dates.SECONDS):
        declared = f"the granularity {ident.granularity!r}" if ident.granularity else "no granularity"
        warnings.append(f"the source declares {declared}; days are assumed")
    if ident.deleted_record not in DELETED_RECORD:
        warnings.append(f"the source declares deletedRecord {ident.deleted_record!r}; treated as 'no'")
    if ident.base_url and ident.base_url.rstrip("/") != url.rstrip("/"):
        # (what to do was unsaid, and the URL given is the one provenance and Identify's friends name: an audit)
        warnings.append(f"the source calls its base URL {ident.base_url}: if it answers there, give that address "
                        f"(`oai source edit NAME --base-url {shlex.quote(ident.base_url)}`), which its records' "
                        "provenance then names")
    try:
        offers = format_offers(client.fetch("ListMetadataFormats"))
    except UpstreamOAIError as exc:
        raise SourceError(f"{url} cannot list its metadata formats ({exc.code}: {exc.message})") from None
    except (FetchError, PageError) as exc:
        raise SourceError(f"{url} did not answer ListMetadataFormats usably: {exc}") from None
    offer = next((o for o in offers if o.prefix == prefix), None)
    if offer is None:
        offered = ", ".join(o.prefix for o in offers) or "none"
        raise SourceError(f"the source does not offer the metadata format {prefix!r}; it offers: {offered}")
    if offer.namespace and len(offer.namespace) > MAX_NAMESPACE:
        raise SourceError(f"the source declares the namespace {shown(offer.namespace)} for {prefix!r}; the store "
                          f"keeps namespaces of at most {MAX_NAMESPACE} characters")
    set_names, set_name = _set_names(client, warnings, set_spec is not None), None
    if set_spec is not None:
        if set_spec in set_names:
            set_name = set_names[set_spec]
        elif set_names.get("\0complete"):
            sample = ", ".join(sorted(s for s in set_names if s != "\0complete")[:10])
            raise SourceError(f"the source has no set {set_spec!r}; its sets include: {sample or 'none'}")
        else:
            _probe_set(client, prefix, set_spec, warnings)
    set_names.pop("\0complete", None)
    return EndpointFacts(ident, offer, set_name, set_names, tuple(warnings))


def _set_names(client: HarvestClient, warnings: list[str], needed: bool) -> dict:
    """Upstream setSpec -> setName from a bounded ListSets; key "\\0complete" marks a complete list."""
    names: dict = {}
    try:
        pages = 0
        for page in client.pages("ListSets", max_pages=LIST_SETS_PAGES):
            pages += 1
            names.update(set_entries(page))
        names["\0complete"] = pages < LIST_SETS_PAGES
    except UpstreamOAIError as exc:
        if exc.code == "noSetHierarchy":
            if needed:
                raise SourceError("the source has no sets (noSetHierarchy), so no set can be harvested") from None
            names["\0complete"] = True
        elif needed:
            raise SourceError(f"the source cannot list its sets ({exc.code}: {exc.message})") from None
    except (FetchError, RepeatedToken) as exc:
        if needed:
            raise SourceError(f"the source did not list its sets usably: {exc}") from None
        warnings.append(f"set names not read: {exc}")
    return names


def _probe_set(client: HarvestClient, prefix: str, set_spec: str, warnings: list[str]) -> None:
    try:
        client.fetch("ListIdentifiers", metadataPrefix=prefix, set=set_spec)
    except UpstreamOAIError as exc:
        if exc.code != "noRecordsMatch":
            raise SourceError(f"the source refuses the set {set_spec!r} ({exc.code}: {exc.message})") from None
        warnings.append(f"the set {set_spec!r} is accepted but holds no {prefix} records yet")


def _our_repository_identifier() -> str | None:
    from oai.config import ConfigError, load_config

    try:
        return load_config().repository_identifier
    except ConfigError:  # said where the settings are used
        return None


def check_base_url(base_url: str) -> None:
    """Raises SourceError unless `base_url` is an http(s) URL without an OAI-PMH request in it."""
    try:
        parts = urlsplit(base_url)
    except ValueError as exc:  # an unclosed IPv6 bracket, say
        raise SourceError(f"{base_url!r} is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SourceError(f"{base_url!r} is not an http(s) URL")
    if "@" in parts.netloc:  # an outside audit: the password was served in Identify and in every record's provenance
        raise SourceError(f"the base URL carries a user name or password ({parts.scheme}://...@{parts.hostname}); the "
                          "base URL is published (Identify's friends, each record's provenance), so it cannot hold "
                          "credentials, and sources that need them are not supported")
    if "verb=" in parts.query:
        raise SourceError(f"{base_url!r} carries an OAI-PMH request; the base URL is the part before '?' "
                          f"({parts.scheme}://{parts.netloc}{parts.path})")


def _checked_endpoint(base_url: str, prefix: str, set_spec: str | None, policy: FetchPolicy | None) -> EndpointFacts:
    policy = policy or FetchPolicy.from_environ()
    client = HarvestClient(base_url, replace(policy, attempts=min(policy.attempts, 2)))
    try:
        return check_endpoint(client, prefix, set_spec)
    finally:
        client.close()


def add_source(engine: Engine, name: str, base_url: str, *, prefix: str = "oai_dc", set_spec: str | None = None,
               every_seconds: int | None = 86400, keep_identifiers: bool = False,
               detect_deletions: bool = False, policy: FetchPolicy | None = None) -> tuple[SourceView, tuple[str, ...]]:
    """Check the endpoint and store the source; returns it and warnings; raises SourceError."""
    check_name(name)
    check_base_url(base_url)
    if len(prefix) > MAX_PREFIX:
        raise SourceError(f"the metadata prefix {shown(prefix)} is longer than the {MAX_PREFIX} characters the "
                          "store keeps")
    if not METADATA_PREFIX.fullmatch(prefix):  # served in ListMetadataFormats: one such made each answer invalid
        raise SourceError(f"{shown(prefix)} is no metadataPrefix OAI-PMH allows (letters, digits and - _ . ! ~ * ' "
                          "( ) only)")
    if set_spec is not None:
        try:
            check_set_spec(set_spec)
            check_set_spec(f"{name}:{set_spec}")  # the set its records are served in, which must fit the store too
        except ValueError as exc:
            raise SourceError(str(exc)) from None
    with transaction(engine) as session:
        if session.scalar(select(Source.id).where(Source.name == name)) is not None:
            raise SourceError(f"there is already a source named {name!r}")
        _check_set_is_free(session, name)
    facts = _checked_endpoint(base_url, prefix, set_spec, policy)
    warnings = [w.replace("`oai source edit NAME", f"`oai source edit {name}") for w in facts.warnings]
    with transaction(engine) as session:
        warnings += _harvested_already(session, {base_url, facts.identity.base_url or base_url}, prefix, set_spec)
    ours = _our_repository_identifier()
    if ours and (facts.identity.repository_identifier or "").lower() == ours.lower():
        warnings.append(f"the source names itself {ours!r}, as this repository is named: if it is this repository, "
                        "remove the source (our own records would come back through it, and be quarantined)")
    warnings += _deletions_unnoticed(facts.identity.deleted_record, detect_deletions,
                                     "add it with --detect-deletions")
    from harvester.ingest import registry_format

    now = dates.utcnow()
    foreign = registry_format(prefix, facts.offer.namespace) is None
    if foreign:  # (an outside audit added arXiv's own format and found nothing of it under oai_dc)
        warnings.append(f"{prefix!r} is not a format we know: its records are served as they come, under {prefix!r} "
                        "only, with no Dublin Core derived, so a harvester asking for oai_dc (as every one can) will "
                        "not see them; if the source offers oai_dc too, a second source (`oai source add "
                        f"{name}-dc {base_url} --prefix oai_dc`) harvests their Dublin Core")
    with transaction(engine) as session:
        if foreign:
            _register_foreign(session, facts.offer)
        granularity = facts.identity.granularity
        row = Source(
            name=name, base_url=base_url, prefix=prefix, set_spec=set_spec, every_seconds=every_seconds,
            keep_upstream_identifiers=keep_identifiers, detect_deletions=detect_deletions,
            granularity=granularity if granularity in (dates.DAY, dates.SECONDS) else dates.DAY,
            deleted_record=facts.identity.deleted_record if facts.identity.deleted_record in DELETED_RECORD else "no",
            repository_name=facts.identity.repository_name,
            metadata_namespace=facts.offer.namespace, metadata_schema=facts.offer.schema, enabled=True,
            created=now, next_due=now if every_seconds else None,
        )
        session.add(row)
        session.flush()
        set_info(session, name, own_set_name(facts.identity.repository_name or name, prefix, set_spec))
        if set_spec is not None:
            set_info(session, f"{name}:{set_spec}", facts.set_name or set_spec)
        view = SourceView.of(row)
    return view, tuple(warnings)


def _same_endpoint(url: str) -> tuple[str, str]:
    """A base URL as compared with another: the scheme (http and https), the host's case, a default port and a
    closing slash do not make another repository."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = parts.port if parts.port not in (None, 80, 443) else None
    return f"{host}:{port}" if port else host, parts.path.rstrip("/") + ("?" + parts.query if parts.query else "")


def _harvested_already(session: Session, urls: set[str], prefix: str, set_spec: str | None,
                       other_than: str | None = None) -> list[str]:
    """Refuse a source another one already harvests (the same repository, format and set: every record would be
    served twice, an outside audit found, under two names and in two set trees); warn where their records overlap
    (one of them takes every set). The same repository in another format is allowed: `jats` and `oai_dc`."""
    wanted = {_same_endpoint(url) for url in urls}
    warnings = []
    for other in session.scalars(select(Source).order_by(Source.name)):
        if other.name == other_than or _same_endpoint(other.base_url) not in wanted:
            continue
        if other.prefix != prefix:
            warnings += _dublin_core_twice(other, prefix, set_spec)
            continue
        if other.set_spec == set_spec:
            taken = f"set {set_spec!r}" if set_spec else "every set"
            raise SourceError(f"the source {other.name!r} already harvests {other.base_url} ({prefix}, {taken}): a "
                              "second would serve every record again under another name; change that one with "
                              f"`oai source edit {other.name}`, or remove it first")
        if other.set_spec is None or set_spec is None:
            warnings.append(f"the source {other.name!r} harvests {other.base_url} ({prefix}) too, "
                            f"{'every set' if other.set_spec is None else 'the set ' + repr(other.set_spec)}: the "
                            "records in both are served twice, once under each source's name")
    return warnings


def own_set_name(repository_name: str, prefix: str, set_spec: str | None) -> str:
    """The name of a source's own set: the repository's, with the format and set it takes where those are not all of
    its oai_dc. Two sources of one repository (jats and oai_dc, or two of its sets) were two sets of one name in
    ListSets, which nobody could tell apart (an outside audit)."""
    taken = ([prefix] if prefix != "oai_dc" else []) + ([f"set {set_spec}"] if set_spec else [])
    return f"{repository_name} ({', '.join(taken)})" if taken else repository_name


# The formats we ingest that yield oai_dc too (every one of ours but oai_dc itself: jats).
DERIVING_DUBLIN_CORE = frozenset(prefix for prefix in FORMATS if prefix != "oai_dc")


def _dublin_core_twice(other: Source, prefix: str, set_spec: str | None) -> list[str]:
    """A warning when `other` harvests the repository in a format we derive Dublin Core from (jats) and this source
    takes its oai_dc, or the other way round, in sets that overlap: each article with both is served twice in oai_dc,
    under two names (an outside audit found every article of a repository so, with no word said)."""
    formats = {prefix, other.prefix}
    if "oai_dc" not in formats or not formats & DERIVING_DUBLIN_CORE:
        return []
    if not (other.set_spec is None or set_spec is None or other.set_spec == set_spec
            or other.set_spec.startswith(f"{set_spec}:") or set_spec.startswith(f"{other.set_spec}:")):
        return []
    derived = other.prefix if other.prefix != "oai_dc" else prefix
    return [f"the source {other.name!r} harvests {other.base_url} in {other.prefix}"
            f"{'' if other.set_spec is None else ', set ' + repr(other.set_spec)}; {derived} yields oai_dc too, so "
            "each record the repository has in both formats is served twice in oai_dc, under each source's name: "
            "take with the oai_dc source only a set of the records that have no " + derived]


def _deletions_unnoticed(deleted_record: str | None, detect_deletions: bool, how: str) -> list[str]:
    """A warning when the endpoint keeps no deletions (or not for long) and we would not compare lists to notice."""
    if deleted_record not in ("no", "transient") or detect_deletions:
        return []
    return [f"the source keeps {'no' if deleted_record == 'no' else 'only transient'} records of deletions: "
            f"{how} to notice them"]


def _check_set_is_free(session: Session, name: str) -> None:
    """A source serves its records in the set `name` and the sets below it; one that holds records loaded
    here is this repository's own, not a source's to join (and rename). Records a removed source of that
    name left behind are taken back instead (see harvester/ingest.py)."""
    local = session.scalar(
        select(RecordSet.record_id).join(Record, Record.id == RecordSet.record_id)
        .join(OAISet, OAISet.id == RecordSet.set_id)
        .where(or_(OAISet.spec == name, OAISet.spec.startswith(f"{name}:", autoescape=True)),
               Record.upstream_identifier.is_(None))
        .limit(1))
    if local is not None:
        raise SourceError(f"the set {name!r} holds records loaded into this repository; a source named {name!r} "
                          "would serve its records in it too: choose another name")


def _register_foreign(session: Session, offer: FormatOffer) -> None:
    """Serve a format we only have from sources, with the namespace and schema they declare."""
    if not offer.namespace or not offer.schema:
        raise SourceError(f"the source lists the format {offer.prefix!r} without a namespace or schema")
    for what, value in (("namespace", offer.namespace), ("schema", offer.schema)):
        if not absolute_uri(value):  # ListMetadataFormats serves both as anyURI
            raise SourceError(f"the source lists the format {offer.prefix!r} with a {what}, {shown(value)}, that is "
                              "no URI")
    row = session.get(ForeignFormat, offer.prefix)
    if row is None:
        session.add(ForeignFormat(prefix=offer.prefix, namespace=offer.namespace, schema=offer.schema))
    elif row.namespace != offer.namespace:
        raise SourceError(f"the metadata prefix {offer.prefix!r} is already served with the namespace "
                          f"{row.namespace}, and this source uses {offer.namespace}")


def get_source(session: Session, name: str) -> SourceView:
    """The source called `name`; raises SourceError naming the sources that exist."""
    row = session.scalar(select(Source).where(Source.name == name))
    if row is None:
        names = list(session.scalars(select(Source.name).order_by(Source.name)))
        known = ", ".join(names) if names else "none yet (add one with `oai source add`)"
        raise SourceError(f"there is no source {name!r}; sources: {known}")
    return SourceView.of(row)


@dataclass(frozen=True)
class SourceLine:
    """A source with when its last complete run ended (by our clock: the source's own responseDate may run on
    another clock, an outside audit's said 2004) and its last run, whatever became of it."""

    source: SourceView
    last_complete: datetime | None
    last_run: HarvestRun | None


def source_lines(engine: Engine) -> list[SourceLine]:
    with transaction(engine) as session:
        completed, last = _runs_of(session)
        return [SourceLine(SourceView.of(r), completed.get(r.id), last.get(r.id))
                for r in session.scalars(select(Source).order_by(Source.name))]


def _runs_of(session: Session, source_id: int | None = None) -> tuple[dict[int, datetime], dict[int, HarvestRun]]:
    """For each source (or the one): when its last complete run ended, and its last run."""
    ended = select(HarvestRun.source_id, func.max(HarvestRun.ended)).where(HarvestRun.status == "complete")
    newest = select(func.max(HarvestRun.id))
    if source_id is not None:
        ended, newest = ended.where(HarvestRun.source_id == source_id), newest.where(HarvestRun.source_id == source_id)
    completed = dict(session.execute(ended.group_by(HarvestRun.source_id)).all())
    runs = session.scalars(select(HarvestRun).where(HarvestRun.id.in_(newest.group_by(HarvestRun.source_id))))
    return completed, {r.source_id: r for r in runs}


@dataclass(frozen=True)
class SourceDetails:
    source: SourceView
    records: int
    deleted: int
    quarantined: int
    checkpoint: HarvestCheckpoint | None
    last_run: HarvestRun | None
    last_complete: datetime | None = None  # when its last complete run ended, by our clock


def show_source(engine: Engine, name: str) -> SourceDetails:
    with transaction(engine) as session:
        src = get_source(session, name)
        counts = dict(session.execute(
            select(Record.deleted, func.count()).where(Record.source_id == src.id).group_by(Record.deleted)).all())
        quarantined = session.scalar(select(func.count()).select_from(Quarantine)
                                     .where(Quarantine.source_id == src.id)) or 0
        checkpoint = session.get(HarvestCheckpoint, src.id)
        completed, last = _runs_of(session, src.id)
        return SourceDetails(src, counts.get(False, 0), counts.get(True, 0), quarantined, checkpoint,
                             last.get(src.id), completed.get(src.id))


_UNCHANGED = object()


def change_source(engine: Engine, name: str, *, every_seconds: int | None | object = _UNCHANGED,
                  enabled: bool | None = None, detect_deletions: bool | None = None) -> SourceView:
    """Change how a source is harvested: how often, paused or not (the worker skips a paused source; `oai harvest
    NAME` still runs it), and the deletion check. Its records, runs and checkpoint stay as they are."""
    with transaction(engine) as session:
        row = session.get(Source, get_source(session, name).id)
        if every_seconds is not _UNCHANGED:
            row.every_seconds = every_seconds
            if every_seconds is None:
                row.next_due = None
            else:  # due that long after its last complete run (now, if that was longer ago or never)
                last = session.scalar(select(func.max(HarvestRun.ended)).where(
                    HarvestRun.source_id == row.id, HarvestRun.status == "complete"))
                row.next_due = last + timedelta(seconds=every_seconds) if last is not None else dates.utcnow()
        if enabled is not None:
            row.enabled = enabled
        if detect_deletions is not None:
            row.detect_deletions = detect_deletions
        session.flush()
        return SourceView.of(row)


def move_source(engine: Engine, name: str, base_url: str, *, policy: FetchPolicy | None = None,
                detect_deletions: bool | None = None) -> tuple[SourceView, tuple[str, ...]]:
    """Point a source at the base URL it has moved to (a new host, https, a permanent redirect). The endpoint is
    checked as `source add` checks it, for the source's format and set, and what its Identify declares is taken
    again; the records, sets, history and schedule stay. A list left unfinished is asked again there from its
    start (a resumptionToken is good only where it was issued). `detect_deletions` is the setting the source
    will have, when the same command changes it. Returns the source and warnings."""
    check_base_url(base_url)
    with transaction(engine) as session:
        src = get_source(session, name)
    _check_not_harvested(src, dates.utcnow())
    facts = _checked_endpoint(base_url, src.prefix, src.set_spec, policy)
    warnings = [w.replace("`oai source edit NAME", f"`oai source edit {name}") for w in facts.warnings]
    with transaction(engine) as session:  # (moved onto another source's repository: an outside review)
        warnings += _harvested_already(session, {base_url, facts.identity.base_url or base_url}, src.prefix,
                                       src.set_spec, other_than=name)
    warnings += _deletions_unnoticed(facts.identity.deleted_record,
                                     src.detect_deletions if detect_deletions is None else detect_deletions,
                                     f"`oai source edit {name} --detect-deletions`")
    called = facts.identity.repository_name
    if src.repository_name and called and called.strip() != src.repository_name.strip():
        # A moved repository keeps its name as a rule; a mistyped URL (another repository offering the same format)
        # would pour its records into this source's sets, and only the echoed name showed it (an outside audit).
        warnings.append(f"the repository at {base_url} calls itself {called!r}, where {name!r} was {src.repository_name!r}"
                        f": if it is not the same repository, `oai source edit {name} --base-url {src.base_url}` puts "
                        "it back before its next harvest")
    declared = facts.offer.namespace
    if src.metadata_namespace and declared and declared != src.metadata_namespace:
        raise SourceError(f"{base_url} declares the namespace {declared} for {src.prefix!r}, where {name!r} had "
                          f"{src.metadata_namespace}: not the same format; add it as another source")
    with transaction(engine) as session:
        row = session.get(Source, src.id, with_for_update=True)  # a harvest that begins now waits for this
        if row is None:
            raise SourceError(f"the source {name!r} was removed meanwhile")
        _check_not_harvested(SourceView.of(row), dates.utcnow())  # (one may have begun while we asked)
        # A harvest that stalled past its lease would renew it again and go on with the old URL's token: taking
        # the lease makes its next page write find it gone, and stop.
        row.lease_owner = row.lease_expires = None
        ident = facts.identity
        row.base_url = base_url
        row.granularity = ident.granularity if ident.granularity in (dates.DAY, dates.SECONDS) else dates.DAY
        row.deleted_record = ident.deleted_record if ident.deleted_record in DELETED_RECORD else "no"
        if ident.repository_name and ident.repository_name != row.repository_name:
            row.repository_name = ident.repository_name
            rename_sets(session, {name: own_set_name(ident.repository_name, row.prefix, row.set_spec)})
        checkpoint = session.get(HarvestCheckpoint, src.id)
        if checkpoint is not None and checkpoint.resumption_token is not None:
            started = checkpoint.from_date or "the beginning"
            checkpoint.resumption_token, checkpoint.cursor, checkpoint.updated = None, 0, dates.utcnow()
            run = session.get(HarvestRun, checkpoint.run_id)
            if run is not None:
                run.complete_list_size = None
                note = f"the source moved to {base_url}; its list is asked again there from {started}"
                run.warnings = "\n".join(filter(None, (run.warnings, note)))
            warnings.append(f"the unfinished run #{checkpoint.run_id} lists again from {started} at the new base URL "
                            "(its resumptionToken was the old one's)")
        session.flush()
        return SourceView.of(row), tuple(warnings)


def _check_not_harvested(src: SourceView, now: datetime) -> None:
    if not lease_free(src.lease_owner, src.lease_expires, now):  # (a holder on this host that is gone holds none)
        raise SourceError(f"the source {src.name!r} is being harvested by {src.lease_owner}; stop that harvest "
                          f"first (if that process is gone, its lease lapses at {src.lease_expires:%H:%M:%S} UTC)")


REMOVE_BATCH = 500  # tombstones written per transaction when a source is removed with its records


def remove_source(engine: Engine, name: str, records: str) -> int:
    """Forget a source; its records are kept or tombstoned (`records` keep|delete). Returns tombstones made."""
    if records not in ("keep", "delete"):
        raise SourceError("say what to do with the source's records: keep or delete")
    with transaction(engine) as session:
        src = get_source(session, name)
    _check_not_harvested(src, dates.utcnow())
    made = 0
    if records == "delete":
        while True:
            with transaction(engine) as session:
                now = fence.stamp(session)  # one datestamp a batch, inside the write fence
                idents = list(session.scalars(select(Record.identifier).where(
                    Record.source_id == src.id, Record.deleted.is_(False)).limit(REMOVE_BATCH)))
                for ident in idents:
                    delete_record(session, ident, now=now)
            made += len(idents)
            if len(idents) < REMOVE_BATCH:
                break
    with transaction(engine) as session:
        row = session.get(Source, src.id)
        if row is None:
            raise HarvestError(f"the source {name!r} disappeared while it was being removed")
        session.delete(row)
        _drop_empty_sets(session, name)
    return made


def _drop_empty_sets(session: Session, name: str) -> None:
    """The removed source's sets that hold no record, nor any set below them: ListSets went on naming a source
    that was gone (an outside audit). Sets that hold its records, kept or tombstoned, stay with them."""
    theirs = or_(OAISet.spec == name, OAISet.spec.startswith(f"{name}:", autoescape=True))
    specs = dict(session.execute(select(OAISet.spec, OAISet.id).where(theirs)).all())
    held = set(session.scalars(select(OAISet.spec).where(theirs, OAISet.id.in_(select(RecordSet.set_id)))))
    empty = [set_id for spec, set_id in specs.items()
             if not any(h == spec or h.startswith(f"{spec}:") for h in held)]
    if empty:
        session.execute(delete(OAISet).where(OAISet.id.in_(empty)))
