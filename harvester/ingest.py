"""Harvested records into the store, one page per call, through oai.store.records only.

Owns what an aggregator must do (OAI guidelines for aggregators): our identifiers, the source's set
with upstream sets below it, canonical metadata (registry formats or foreign ones), the provenance
about-container, tombstones, identifier clashes and the quarantine. Commits nothing itself.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from lxml import etree
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from harvester import provenance, workers
from harvester.parse import Broken, UpstreamRecord
from harvester.sources import SourceView, own_set_name
from oai.formats import registry
from oai.formats.base import MetadataFormat
from oai.store.models import Quarantine, Source
from oai.store.records import (Change, Existing, RecordIn, ancestors, describe_sets, ensure_sets, existing_records,
                               rename_sets, upsert_records)
from oai.store.validation import MAX_IDENTIFIER, MAX_SET_SPEC, check_identifier, check_set_spec, shown

DC_PREFIX = "oai_dc"
QUARANTINE_KEY = Quarantine.__table__.c.upstream_identifier.type.length
# oai-identifier.xsd local part, minus "%" (encoded too, so that the mapping is one-to-one).
_UNSAFE = re.compile(r"[^a-zA-Z0-9\-_.!~*'();/?:@&=+$,]")


def quote_local(value: str) -> str:
    """Percent-encode (UTF-8) every character the oai-identifier syntax does not allow, and '%'."""
    return _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode("utf-8")), value)


def local_identifier(repository_identifier: str, source_name: str, upstream_identifier: str) -> str:
    """Our identifier for a harvested record: oai:{repository}:{source}:{upstream, %-encoded}."""
    return f"oai:{repository_identifier}:{source_name}:{quote_local(upstream_identifier)}"


def quarantine_key(upstream_identifier: str | None) -> str | None:
    """An upstream identifier as the quarantine keeps it: whole when it fits the column, else its start and a
    digest of the whole. PostgreSQL refuses a longer value and fails the page with it, every run. Not merely cut:
    the same record must find its entry again (one entry a record, replaced when it comes again), and two
    identifiers that begin alike must not share one. The whole identifier stays in the entry's raw bytes."""
    if upstream_identifier is None or len(upstream_identifier) <= QUARANTINE_KEY:
        return upstream_identifier
    tail = f"...#sha256:{hashlib.sha256(upstream_identifier.encode()).hexdigest()[:16]}"
    return upstream_identifier[:QUARANTINE_KEY - len(tail)] + tail


def registry_format(prefix: str, namespace: str | None) -> MetadataFormat | None:
    """The registry format a source's prefix is ingested with (by prefix, else by namespace), or None."""
    try:
        return registry.get(prefix)
    except KeyError:
        pass
    for fmt in registry.FORMATS.values():
        if namespace and fmt.namespace == namespace:
            return fmt
    return None


class _Reject(Exception):
    """A record we quarantine; the message is the reason."""


@dataclass(frozen=True)
class _Prepared:
    """A record ready to write, except for its provenance (which needs the stored harvest date)."""

    upstream: UpstreamRecord
    identifier: str
    sets: tuple[str, ...]
    metadata: Mapping[str, bytes]
    altered: Mapping[str, bool]
    citation: str | None


@dataclass
class PageOutcome:
    """What writing one page did."""

    seen: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    quarantined: int = 0
    warnings: list[str] = field(default_factory=list)


class Ingestor:
    """Turns a source's pages into store writes; one per run (it caches set names and formats)."""

    def __init__(self, source: SourceView, repository_identifier: str,
                 set_names: Mapping[str, str | None] | None = None, *, since: datetime | None = None,
                 held_sets: Mapping[str, str] | None = None, our_sources: Iterable[str] = ()) -> None:
        self.source = source
        # how our records of each of our sources are named: one that comes back through another repository is
        # a harvesting cycle (the source harvests us, or a repository that does)
        self._ours = tuple(local_identifier(repository_identifier, name, "") for name in {*our_sources, source.name})
        self.since = since  # when the run began: a record written since came earlier in this run
        self.repository_identifier = repository_identifier
        self._own_namespace = f"oai:{repository_identifier.lower()}:" if repository_identifier else ""
        self.format = registry_format(source.prefix, source.metadata_namespace)
        self.set_names = dict(set_names or {})  # upstream setSpec -> setName (ListSets), when read
        self.set_descriptions: dict[str, str] = {}  # upstream setSpec -> its setDescription (oai_dc), when read
        self._described: set[str] = set()  # our sets made this run whose descriptions are written
        self.held_sets = dict(held_sets or {})  # this source's sets in the store when the run began: spec -> name
        served = (self.format.prefix, DC_PREFIX) if self.format is not None else (source.prefix,)
        self.tombstone_prefixes = tuple(dict.fromkeys(served))
        self._bad_specs: set[str] = set()
        self._names: dict[int, str] = {}
        self._quarantine_seen: bool | None = None  # None: not asked yet

    # -- outside the transaction: the expensive part --

    def start(self, records: Iterable[UpstreamRecord]) -> Callable[[], tuple[list[_Prepared], list[Broken], list[str]]]:
        """Identifiers, sets and canonical metadata for each record, in page order; rejects become Broken.
        The canonical metadata is computed by the workers while the caller goes on: calling the result
        waits for it and gives (ready, rejected, notes)."""
        slots: list[_Prepared | Broken | None] = []
        notes: list[list[str]] = []
        pending: list[tuple[int, UpstreamRecord, str, tuple[str, ...]]] = []
        for rec in records:
            slot_notes: list[str] = []
            notes.append(slot_notes)
            try:
                ident, sets = self._identity(rec, slot_notes)
            except _Reject as exc:
                slots.append(Broken(rec.raw(), str(exc), rec.header.identifier))
                continue
            if rec.header.deleted:
                slots.append(_Prepared(rec, ident, sets, {p: b"" for p in self.tombstone_prefixes}, {}, None))
                continue
            pending.append((len(slots), rec, ident, sets))
            slots.append(None)
        target = self.format.prefix if self.format is not None else None
        namespace = self.source.metadata_namespace if target is None else None
        jobs = [workers.Job(self.source.prefix, target, etree.tostring(rec.metadata, with_tail=False), rec.repairs,
                            namespace) for _, rec, _, _ in pending]
        results = workers.start(jobs)

        def finish() -> tuple[list[_Prepared], list[Broken], list[str]]:
            noted: dict[str, list[str]] = {}  # a worker's note -> the records it was made for
            for (index, rec, ident, sets), done in zip(pending, results(), strict=True):
                if done.refused is not None:
                    slots[index] = Broken(rec.raw(), done.refused, rec.header.identifier)
                    continue
                for note in done.notes:
                    noted.setdefault(note, []).append(rec.header.identifier)
                slots[index] = _Prepared(rec, ident, sets, done.metadata, done.altered, done.citation)
            ready = [slot for slot in slots if isinstance(slot, _Prepared)]
            rejected = [slot for slot in slots if isinstance(slot, Broken)]
            # a repair that most records of a source need (DSpace's xml:lang) is one warning a page, not one each
            said = [f"{who[0]}: {note}" if len(who) == 1 else f"{note}, in {len(who)} records of the page "
                    f"({who[0]}, ...)" for note, who in noted.items()]
            return ready, rejected, [note for slot_notes in notes for note in slot_notes] + said

        return finish

    def _identity(self, rec: UpstreamRecord, warnings: list[str]) -> tuple[str, tuple[str, ...]]:
        """Our identifier and sets for a record; raises _Reject."""
        if rec.repairs and "\ufffd" in rec.header.identifier:
            # a&#0;b and a&#x1F;b both became a\ufffdb, and two records were written as one (an outside audit)
            raise _Reject("its identifier held characters XML cannot carry (replaced by U+FFFD), so it would not "
                          "tell this record from others reliably")
        ident = self._identifier(rec.header.identifier)
        sets = [self.source.name]
        for spec in rec.header.set_specs:
            ours = f"{self.source.name}:{spec}"
            try:
                check_set_spec(ours)
            except ValueError:
                if spec not in self._bad_specs:
                    self._bad_specs.add(spec)
                    warnings.append(f"upstream setSpec {shown(spec)} {self._why_left_out(ours)}; membership left out")
                continue
            sets.append(ours)
        return ident, tuple(dict.fromkeys(sets))  # DSpace repeats setSpecs in a header

    def brings_new_sets(self, records: Iterable[UpstreamRecord]) -> bool:
        """Whether a record is in an upstream set the store did not hold when the run began, whose name is worth
        reading ListSets for. Asked of memory, not of the store (the source's own set is named after the repository)."""
        return any(f"{self.source.name}:{spec}" not in self.held_sets and spec not in self._bad_specs
                   for rec in records for spec in rec.header.set_specs)

    def set_name(self, spec: str) -> str | None:
        """What our set `spec` is called: the upstream's name for its set (ListSets), the repository's for the
        source's own set (Identify, as `source add` names it); None where there is none (its spec serves)."""
        if spec == self.source.name:
            if not self.source.repository_name:
                return None
            return own_set_name(self.source.repository_name, self.source.prefix, self.source.set_spec)
        return self.set_names.get(spec[len(self.source.name) + 1:]) or None

    def set_description(self, spec: str) -> str | None:
        """The upstream's description of the set our set `spec` serves (ListSets), or None."""
        return self.set_descriptions.get(spec[len(self.source.name) + 1:]) if spec != self.source.name else None

    def rename_sets(self, session: Session) -> int:
        """Bring the names of the sets the store held for this source up to date with the upstream's (set_names),
        and their descriptions; returns how many were renamed. A set the upstream gives no name or description (or
        no longer lists) keeps its own."""
        renamed = {spec: upstream for spec, name in self.held_sets.items()
                   if (upstream := self.set_name(spec)) is not None and upstream != name}
        rename_sets(session, renamed)
        describe_sets(session, {spec: text for spec in self.held_sets if (text := self.set_description(spec))})
        return len(renamed)

    def _describe_new_sets(self, session: Session, specs: Iterable[str]) -> None:
        """Write the upstream's descriptions of the sets this run made (once each)."""
        fresh = {spec: text for spec in specs if spec not in self.held_sets and spec not in self._described
                 and (text := self.set_description(spec))}
        if fresh:
            describe_sets(session, fresh)
            self._described.update(fresh)

    @staticmethod
    def _why_left_out(ours: str) -> str:
        if len(ours) > MAX_SET_SPEC:
            return f"would be served as a set of {len(ours)} characters, more than the {MAX_SET_SPEC} the store keeps"
        return "is not a valid setSpec"

    def _identifier(self, upstream: str) -> str:
        if len(upstream) > MAX_IDENTIFIER:
            raise _Reject(f"its identifier has {len(upstream)} characters, more than the {MAX_IDENTIFIER} the store "
                          "keeps")
        if self.source.keep_identifiers:
            try:
                check_identifier(upstream)
            except ValueError as exc:
                raise _Reject(f"cannot keep the upstream identifier: {exc}") from None
            if self._own_namespace and upstream.lower().startswith(self._own_namespace):
                # kept, it took the name a loaded article would have, and `oai load` of that article was then
                # refused as loading over a harvested record (an outside hostile-source audit)
                raise _Reject(f"cannot keep the upstream identifier: it is in our own namespace "
                              f"({self._own_namespace}), where only records made here are named")
            return upstream
        if ours := next((prefix for prefix in self._ours if prefix in upstream), None):
            # a source that is this repository (or harvests it) would have each run serve the last one's records
            # again under a longer name, without end (an outside audit: 6, 12, 18 records), and so would two
            # aggregators harvesting each other (B harvests C, which harvests B: 115 more records each round)
            raise _Reject(f"it is our own record (named {ours}...), come back through the source: the source "
                          "harvests this repository, directly or not, and serving it again would start a cycle")
        ident = local_identifier(self.repository_identifier, self.source.name, upstream)
        if len(ident) > MAX_IDENTIFIER:
            raise _Reject(f"our identifier for {shown(upstream)} would be longer than {MAX_IDENTIFIER} characters")
        return ident

    # -- inside the page's transaction --

    def write(self, session: Session, ready: list[_Prepared], broken: list[Broken], run_id: int,
              now: datetime, *, base_url: str | None = None,
              listed_before: Container[str] = frozenset()) -> PageOutcome:
        """Write one page: upserts, clashes and quarantine; the caller commits with the checkpoint. `base_url`:
        where the page came from, when not from the source's base URL (a redirect to another host);
        `listed_before`: the page's upstream identifiers that earlier pages of this list held."""
        out = PageOutcome()
        out.seen = len(ready) + len(broken)
        ready = self._one_copy_each(ready, out.warnings)
        existing = existing_records(session, [p.identifier for p in ready])
        returned = self._returned(session, ready)
        items, clashes, left_out = [], [], []
        not_carried: dict[str, list[str]] = {}  # an about-container's note -> the records it was made for
        for prep in ready:
            if (ours := returned.get(prep.upstream.header.identifier)) is not None:
                # (or another repository names its records in our identifier: an outside audit had two
                # example.org, and the message said only the first)
                clashes.append(Broken(prep.upstream.raw(), f"it is named as our own record {ours}: the source "
                                      "harvests this repository, directly or not, and serving it again would start a "
                                      f"cycle; or the source names its records in our repository identifier "
                                      f"({self.repository_identifier}), which only this repository should",
                                      prep.upstream.header.identifier))
                continue
            row = existing.get(prep.identifier)
            if self._older_than_earlier_copy(prep, row, listed_before):
                out.warnings.append(f"{prep.upstream.header.identifier} came again in this list with an older "
                                    f"datestamp ({prep.upstream.header.datestamp}, before {row.upstream_datestamp}); "
                                    "the newer copy is kept")
                out.unchanged += 1
                continue
            # its source was removed (a record loaded here has no upstream identifier): this source takes it
            adopt = (row is not None and row.source_id is None
                     and row.upstream_identifier == prep.upstream.header.identifier)
            if row is not None and row.source_id != self.source.id and not adopt:
                owner = self._owner(session, row)
                clashes.append(Broken(prep.upstream.raw(),
                                      f"identifier clash: {prep.identifier} already belongs to {owner}; "
                                      "not overwritten", prep.upstream.header.identifier))
                continue
            if row is not None and prep.upstream.header.deleted and not prep.upstream.header.set_specs:
                # A deleted header seldom lists its sets: the tombstone stays in the record's sets, as our own
                # deletions do, so that a harvester selecting by set hears of it (a review found it did not).
                prep = replace(prep, sets=tuple(dict.fromkeys(prep.sets + tuple(row.set_specs.split()))))
            item = self._item(prep, row.harvested_at if row is not None and row.harvested_at else now, base_url,
                              left_out, not_carried)
            if row is not None and item.digest() != row.digest and row.harvested_at != now:
                item = self._item(prep, now, base_url)  # changed: it is harvested (again) now
            items.append(item)
        if left_out:
            which = f"{len(left_out)} records of the page" if len(left_out) > 1 else "a record of the page"
            out.warnings.append(f"{which} carried an upstream provenance that is not valid, left out of what we "
                                f"serve (the first: {left_out[0]})")
        out.warnings.extend(f"{who[0]}: {note}" if len(who) == 1 else f"{note}, in {len(who)} records of the page "
                            f"({who[0]}, ...)" for note, who in not_carried.items())
        set_ids = ensure_sets(session, self._named_sets(items))
        if self.set_descriptions:
            self._describe_new_sets(session, set_ids)
        counts = Counter(upsert_records(session, items, now=now, existing=existing, set_ids=set_ids))
        out.new, out.updated = counts[Change.NEW], counts[Change.UPDATED]
        out.deleted, out.unchanged = counts[Change.DELETED], out.unchanged + counts[Change.UNCHANGED]
        resolved = [i.upstream_identifier for i in items if i.upstream_identifier]
        if resolved and self._may_hold_quarantine(session):
            session.execute(delete(Quarantine).where(Quarantine.source_id == self.source.id,
                                                     Quarantine.upstream_identifier.in_(resolved)))
        self.quarantine(session, broken + clashes, run_id, now)
        out.quarantined = len(broken) + len(clashes)
        out.warnings.extend(self._too_long(broken))
        return out

    def _returned(self, session: Session, ready: list[_Prepared]) -> dict[str, str]:
        """{upstream identifier: our record's identifier} for the records of ours, loaded here or left by a removed
        source, that the page brings back inside its identifiers (oai:b.org:a:oai:a.org:10.1/x): a review found
        each of them stored a second time. Those of our sources are caught by name (_identifier)."""
        marker = f"oai:{self.repository_identifier}:"
        candidates = {up: up[at:] for prep in ready
                      if (at := (up := prep.upstream.header.identifier).find(marker)) >= 0}
        if not candidates:
            return {}
        found = existing_records(session, sorted(set(candidates.values())))
        return {up: ours for up, ours in candidates.items()
                if ours in found and found[ours].source_id is None and ours != local_identifier(
                    self.repository_identifier, self.source.name, up)}

    def _named_sets(self, items: list[RecordIn]) -> dict[str, str | None]:
        """The items' sets and their ancestors, with the names they get if they are new (ensure_sets)."""
        names: dict[str, str | None] = {}
        for item in items:
            for spec in item.sets:
                if spec not in names:
                    for anc in ancestors(spec):
                        if anc not in names:
                            names[anc] = self.set_name(anc)
        return names

    @staticmethod
    def _too_long(broken: list[Broken]) -> list[str]:
        """A warning for the page's quarantined records whose identifiers do not fit the store: they can never be
        ingested, and the quarantine lists them under a shortened identifier (quarantine_key)."""
        long = [b.identifier for b in broken if b.identifier and len(b.identifier) > MAX_IDENTIFIER]
        if not long:
            return []
        which = f"{len(long)} records of the page have" if len(long) > 1 else "a record of the page has"
        return [f"{which} an identifier longer than the {MAX_IDENTIFIER} characters the store keeps (the first: "
                f"{shown(long[0])}); quarantined, listed by `oai harvest quarantine` under the identifier's start "
                "and a digest of the whole (...#sha256:...)"]

    @staticmethod
    def _one_copy_each(ready: list[_Prepared], warnings: list[str]) -> list[_Prepared]:
        """A page that holds an identifier twice: the copy with the newest datestamp (the later one on a tie)
        is written, once, so that it is counted once."""
        kept: dict[str, _Prepared] = {}
        for prep in ready:
            first = kept.get(prep.identifier)
            if first is not None:
                warnings.append(f"the page holds {prep.upstream.header.identifier} more than once; the copy "
                                "with the newest datestamp is kept")
                if prep.upstream.header.datestamp < first.upstream.header.datestamp:
                    continue
            kept[prep.identifier] = prep
        return list(kept.values()) if len(kept) < len(ready) else ready

    def _older_than_earlier_copy(self, prep: _Prepared, row: Existing | None, listed_before: Container[str]) -> bool:
        """Whether this list already gave the record with a newer datestamp than this copy's (a list that holds
        it twice: what came first must not be overwritten by an older copy). Written in this run, or listed on
        an earlier page and found unchanged: a list that holds it twice in every run must not flip it back
        and forth from one run to the next (a review found it did)."""
        if row is None or row.source_id != self.source.id or row.upstream_datestamp is None:
            return False
        if prep.upstream.header.datestamp >= row.upstream_datestamp:
            return False
        written = self.since is not None and row.harvested_at is not None and row.harvested_at >= self.since
        return written or prep.upstream.header.identifier in listed_before

    def _may_hold_quarantine(self, session: Session) -> bool:
        """False while the source has nothing in quarantine: asked once a run, since only its runs,
        one at a time (the lease), put records there."""
        if self._quarantine_seen is None:
            self._quarantine_seen = session.scalar(
                select(Quarantine.id).where(Quarantine.source_id == self.source.id).limit(1)) is not None
        return self._quarantine_seen

    def quarantine(self, session: Session, broken: list[Broken], run_id: int | None, now: datetime) -> None:
        """Keep unreadable records with their raw bytes and the reason (the same one once per source)."""
        keys = [quarantine_key(b.identifier) for b in broken]
        for key in keys:
            if key:
                session.execute(delete(Quarantine).where(Quarantine.source_id == self.source.id,
                                                         Quarantine.upstream_identifier == key))
        if broken:
            self._quarantine_seen = True
            session.execute(insert(Quarantine), [
                {"source_id": self.source.id, "run_id": run_id, "upstream_identifier": key,
                 "reason": b.reason, "raw": b.raw, "created": now} for b, key in zip(broken, keys, strict=True)])

    def _item(self, prep: _Prepared, harvest_date: datetime, base_url: str | None = None,
              left_out: list[str] | None = None, not_carried: dict[str, list[str]] | None = None) -> RecordIn:
        """The record to store; `left_out` gets a note when the upstream's provenance is not valid, `not_carried`
        the record for each note on its other about-containers."""
        header = prep.upstream.header
        about: dict[str, bytes] = {}
        if not header.deleted:
            rights, notes = provenance.carried(prep.upstream.about) if prep.upstream.about else (b"", [])
            if not_carried is not None:
                for note in notes:
                    not_carried.setdefault(note, []).append(header.identifier)
            # baseURL: "of the repository from which the record was harvested" (the provenance guidelines)
            origin = provenance.Origin(base_url or self.source.base_url, header.identifier, header.datestamp,
                                       self.source.metadata_namespace or "")
            for prefix in prep.metadata:
                ours, warning = provenance.build(origin, harvest_date=harvest_date,
                                                 altered=prep.altered.get(prefix, True),
                                                 nested=prep.upstream.provenance)
                about[prefix] = ours + rights  # served in one <about>...</about> (provenance.BETWEEN)
                if warning is not None and left_out is not None:
                    left_out.append(f"{header.identifier}: {warning}")
                    left_out = None  # once a record
        return RecordIn(
            identifier=prep.identifier, metadata=prep.metadata, sets=prep.sets, deleted=header.deleted,
            citation=prep.citation, about=about, source_id=self.source.id,
            upstream_identifier=header.identifier, upstream_datestamp=header.datestamp,
        )

    def _owner(self, session: Session, row: Existing) -> str:
        source_id = row.source_id
        if source_id is None:
            if row.upstream_identifier is not None:
                return f"a record harvested as {row.upstream_identifier} by a source since removed"
            return "a record loaded locally"
        if source_id not in self._names:
            self._names[source_id] = session.scalar(select(Source.name).where(Source.id == source_id)) or "?"
        return f"source {self._names[source_id]}"
