"""The one write path into the store: idempotent upserts and tombstones, in batches.

Everything that enters the repository (`oai load`, `oai delete`, the harvester) goes through here.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from typing import NamedTuple

from sqlalchemy import DateTime, Table, bindparam, delete, insert, or_, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from oai.store import fence
from oai.store.models import OAISet, Record, RecordMetadata, RecordSet, Source

CHUNK = 500  # bound on IN (...) lists and multi-row inserts


class Change(enum.Enum):
    NEW = "new"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    DELETED = "deleted"


@dataclass(frozen=True)
class RecordIn:
    """A record as it should be after the write. For a deletion, `metadata` may be empty."""

    identifier: str
    metadata: Mapping[str, bytes] = field(default_factory=dict)
    sets: tuple[str, ...] = ()
    deleted: bool = False
    citation: str | None = None  # JSON text
    about: Mapping[str, bytes] = field(default_factory=dict)  # prefix -> <about> payload
    source_id: int | None = None
    upstream_identifier: str | None = None
    upstream_datestamp: str | None = None
    _digest: str | None = field(default=None, init=False, compare=False, repr=False)  # digest(), once computed

    def digest(self) -> str:
        """What decides whether the datestamp moves: every byte we would serve. Computed once: the loader and the
        harvester ask before the write does."""
        if self._digest is None:
            object.__setattr__(self, "_digest", self._computed_digest())
        return self._digest

    def _computed_digest(self) -> str:
        h = hashlib.sha256()
        h.update(b"D" if self.deleted else b"L")
        for prefix in sorted(self.metadata):
            h.update(b"\0m" + prefix.encode() + b"\0" + (b"" if self.deleted else self.metadata[prefix]))
        for prefix in sorted(self.about):
            h.update(b"\0a" + prefix.encode() + b"\0" + self.about[prefix])
        for spec in sorted(set(self.sets)):
            h.update(b"\0s" + spec.encode())
        h.update(b"\0u" + (self.upstream_datestamp or "").encode())
        return h.hexdigest()


@lru_cache(maxsize=4096)
def ancestors(spec: str) -> tuple[str, ...]:
    """`a:b:c` -> (`a`, `a:b`, `a:b:c`): a record in a set is a member of every ancestor."""
    parts = spec.split(":")
    return tuple(":".join(parts[: i + 1]) for i in range(len(parts)))


def header_specs(specs: Iterable[str]) -> str:
    """The setSpecs a record's header lists, space-separated: each once, and none that another implies (2.6:
    "only the minimum number of setSpec elements required"; a:b implies a). Its memberships (record_set) keep
    every ancestor, which is what selective harvesting asks."""
    unique = list(dict.fromkeys(specs))
    if len(unique) < 2:
        return " ".join(unique)
    implied = {ancestor for spec in unique for ancestor in ancestors(spec)[:-1]}
    return " ".join(spec for spec in unique if spec not in implied)


_SET_IDS = select(OAISet.spec, OAISet.id).where(OAISet.spec.in_(bindparam("specs", expanding=True)))


def ensure_sets(session: Session, names: Mapping[str, str | None]) -> dict[str, int]:
    """Create missing sets (and their ancestors); returns spec -> id. A set is created with its name in `names`
    (ancestors too, when `names` holds them), else with its spec. Existing names are kept."""
    wanted: dict[str, str | None] = {}
    for spec, name in names.items():
        for anc in ancestors(spec):
            wanted.setdefault(anc, None)
        wanted[spec] = name
    ids: dict[str, int] = {}
    specs = sorted(wanted)
    conn = session.connection()  # Core, not the ORM's execute: this runs for every page a harvester writes
    for i in range(0, len(specs), CHUNK):
        for spec, sid in conn.execute(_SET_IDS, {"specs": specs[i : i + CHUNK]}):
            ids[spec] = sid
    missing = [s for s in specs if s not in ids]
    if missing:
        rows = session.execute(
            insert(OAISet).returning(OAISet.id, OAISet.spec),
            [{"spec": s, "name": wanted[s] or s, "description": None} for s in missing],
        )
        for row in rows:
            ids[row.spec] = row.id
    return ids


def source_of_set(session: Session, spec: str) -> str | None:
    """The harvest source whose records are served in set `spec` (its name, or a set below it), or None. Local
    records do not go there: they would be mixed into the source's, and its set renamed."""
    return session.scalar(select(Source.name).where(Source.name == spec.split(":", 1)[0]))


def source_sets(session: Session, source: str) -> dict[str, str]:
    """spec -> name of the sets where the harvest source `source` serves its records: its own and those below it."""
    return dict(session.execute(select(OAISet.spec, OAISet.name).where(
        or_(OAISet.spec == source, OAISet.spec.startswith(f"{source}:", autoescape=True)))).all())


_RENAME_SET = update(OAISet.__table__).where(OAISet.__table__.c.spec == bindparam("of_spec"))


def rename_sets(session: Session, names: Mapping[str, str]) -> None:
    """Give sets that exist new names (spec -> name); their descriptions stay."""
    if names:
        session.connection().execute(_RENAME_SET, [{"of_spec": spec, "name": name} for spec, name in names.items()])


def describe_sets(session: Session, descriptions: Mapping[str, str]) -> None:
    """Give sets that exist new descriptions (spec -> the XML of a setDescription payload); their names stay."""
    if descriptions:
        session.connection().execute(
            _RENAME_SET.values(description=bindparam("text")),
            [{"of_spec": spec, "text": text} for spec, text in descriptions.items()])


def set_info(session: Session, spec: str, name: str, description: str | None = None) -> int:
    """Create or rename a set; `description` is the XML of a setDescription payload, or None."""
    sid = ensure_sets(session, {spec: name})[spec]
    session.execute(update(OAISet).where(OAISet.id == sid).values(name=name, description=description))
    return sid


def upsert_records(
    session: Session, items: Sequence[RecordIn], *, now: datetime | None = None,
    existing: Mapping[str, Existing] | None = None, set_ids: Mapping[str, int] | None = None,
) -> list[Change]:
    """Write a batch in the caller's transaction; returns one Change per item, in order.

    `existing`: what existing_records() gave for these identifiers in this transaction, when the
    caller has already asked (the harvester does, to find identifier clashes); `set_ids`: what
    ensure_sets() gave for (at least) their sets, when the caller has made them (to name them).
    """
    if now is None:
        # Inside the write fence, which readers wait for: see oai.store.fence.
        now = fence.stamp(session)
    latest: dict[str, RecordIn] = {}
    for item in items:  # within one batch the last version of an identifier wins
        latest[item.identifier] = item
    if existing is None:
        existing = existing_records(session, list(latest))
    if set_ids is None:
        set_ids = ensure_sets(session, {s: None for it in latest.values() for s in it.sets})

    outcome: dict[str, Change] = {}
    new_items, changed, adopted, refreshed = [], [], [], []
    for ident, item in latest.items():
        digest = item.digest()
        row = existing.get(ident)
        if row is None:
            new_items.append((item, digest))
            outcome[ident] = Change.DELETED if item.deleted else Change.NEW
        elif row.digest == digest:
            outcome[ident] = Change.UNCHANGED
            if row.source_id != item.source_id:  # the same bytes, now a source's: taken back, datestamp kept
                adopted.append({"rid": row.id, "sid": item.source_id})
            if not item.deleted and item.citation != row.citation:
                # what newer code derives for the landing page, from the same served bytes: no datestamp moves (no
                # harvester has anything new to fetch), and the page is the new code's (an outside audit)
                refreshed.append({"rid": row.id, "cit": item.citation})
        else:
            changed.append((row.id, item, digest))
            outcome[ident] = Change.DELETED if item.deleted and not row.deleted else Change.UPDATED

    if adopted:
        table = Record.__table__
        session.connection().execute(
            update(table).where(table.c.id == bindparam("rid")).values(source_id=bindparam("sid")), adopted)
    if refreshed:
        table = Record.__table__
        session.connection().execute(
            update(table).where(table.c.id == bindparam("rid")).values(citation=bindparam("cit")), refreshed)

    if new_items:
        rows, pairs = [], []
        for rid, (item, digest) in zip(_allocate_ids(session, len(new_items)), new_items, strict=True):
            values = _record_values(item, digest, now) | {"id": rid, "identifier": item.identifier}
            rows.append(tuple(values.values()))
            pairs.append((rid, item))
        bulk_insert(session, Record.__table__, list(values), rows)
        _write_children(session, pairs, set_ids, now)

    if changed:
        values = [_record_values(item, digest, now) | {"rid": rid} for rid, item, digest in changed]
        stmt = update(Record.__table__).where(Record.__table__.c.id == bindparam("rid"))
        session.connection().execute(stmt, values)
        pairs = [(rid, item) for rid, item, _ in changed]
        _replace_children(session, pairs, set_ids, now)
    return [outcome[item.identifier] for item in items]


def _allocate_ids(session: Session, n: int) -> list[int]:
    """`n` new record ids, reserved for this transaction.

    PostgreSQL: from the column's sequence (safe with concurrent writers). SQLite: after the
    largest id, which is safe because a writer holds the database lock from BEGIN IMMEDIATE
    (and a deferred transaction that raced another writer fails instead of reusing ids).
    """
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        return list(conn.exec_driver_sql(
            "SELECT nextval(pg_get_serial_sequence('record', 'id')) FROM generate_series(1, %(n)s)", {"n": n}
        ).scalars())
    top = conn.exec_driver_sql("SELECT coalesce(max(id), 0) FROM record").scalar() or 0
    return list(range(top + 1, top + 1 + n))


def bulk_insert(session: Session, table: Table, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Insert many rows (value tuples in `columns` order) in the session's transaction.

    COPY on PostgreSQL, the driver's executemany elsewhere: several times cheaper than ORM or
    Core bulk inserts, which is most of what loading and harvesting cost the writing process.
    """
    if not rows:
        return
    conn = session.connection()
    names = ", ".join(f'"{c}"' for c in columns)
    if conn.dialect.name == "postgresql":
        cursor = conn.connection.driver_connection.cursor()
        # Binary: bytea travels as it is, not hex-escaped (half the client's CPU for a page of XML).
        with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN (FORMAT BINARY)') as copy:
            copy.set_types(_copy_types(table, tuple(columns)))
            for row in rows:
                copy.write_row(row)
        return
    # SQLite keeps datetimes as SQLAlchemy's own text form: convert those as it would bind them
    # (once per distinct value: a batch shares its datestamp). sqlite3 takes the rest as they are.
    dates = [(i, table.c[c].type._cached_bind_processor(conn.dialect))  # noqa: SLF001
             for i, c in enumerate(columns) if isinstance(table.c[c].type, DateTime)]
    if dates:
        memo: dict[object, object] = {}
        converted = []
        for row in rows:
            row = list(row)
            for i, f in dates:
                value = row[i]
                if value not in memo:
                    memo[value] = f(value)
                row[i] = memo[value]
            converted.append(tuple(row))
        rows = converted
    marks = ", ".join("?" for _ in columns)
    conn.exec_driver_sql(f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})', list(rows))


@lru_cache(maxsize=32)
def _copy_types(table: Table, columns: tuple[str, ...]) -> list[str]:
    """PostgreSQL type names of `columns`, which a binary COPY needs: "VARCHAR(512)" -> "varchar"."""
    return [table.c[c].type.compile(dialect=postgresql.dialect()).split("(")[0].lower() for c in columns]


def delete_record(session: Session, identifier: str, *, now: datetime | None = None) -> Change | None:
    """Tombstone one record (kept, served as deleted); None if there is no such record."""
    row = session.execute(
        select(Record.id, Record.deleted, Record.set_specs, Record.source_id,
               Record.upstream_identifier, Record.upstream_datestamp)
        .where(Record.identifier == identifier)
    ).one_or_none()
    if row is None:
        return None
    if row.deleted:
        return Change.UNCHANGED
    prefixes = session.scalars(select(RecordMetadata.prefix).where(RecordMetadata.record_id == row.id)).all()
    item = RecordIn(
        identifier=identifier,
        metadata={p: b"" for p in prefixes},
        sets=tuple(row.set_specs.split()),
        deleted=True,
        source_id=row.source_id,
        upstream_identifier=row.upstream_identifier,
        upstream_datestamp=row.upstream_datestamp,
    )
    return upsert_records(session, [item], now=now)[0]


class Existing(NamedTuple):
    """What the write path needs to know of a stored record."""

    identifier: str
    id: int
    digest: str
    deleted: bool
    source_id: int | None
    upstream_identifier: str | None
    harvested_at: datetime | None
    upstream_datestamp: str | None
    set_specs: str
    citation: str | None = None


_EXISTING = (select(Record.identifier, Record.id, Record.digest, Record.deleted, Record.source_id,
                    Record.upstream_identifier, Record.harvested_at, Record.upstream_datestamp, Record.set_specs,
                    Record.citation)
             .where(Record.identifier.in_(bindparam("identifiers", expanding=True))))


def existing_records(session: Session, identifiers: Sequence[str]) -> dict[str, Existing]:
    """The stored records among `identifiers`, by identifier (one statement, built once, per CHUNK)."""
    found: dict[str, Existing] = {}
    for i in range(0, len(identifiers), CHUNK):
        for row in session.execute(_EXISTING, {"identifiers": identifiers[i : i + CHUNK]}):
            found[row[0]] = Existing(*row)
    return found


def _record_values(item: RecordIn, digest: str, now: datetime) -> dict:
    return {
        "datestamp": now,
        "deleted": item.deleted,
        "set_specs": header_specs(item.sets),
        "digest": digest,
        "citation": None if item.deleted else item.citation,
        "source_id": item.source_id,
        "upstream_identifier": item.upstream_identifier,
        "upstream_datestamp": item.upstream_datestamp,
        "harvested_at": now if item.source_id is not None else None,
    }


def _write_children(
    session: Session, pairs: Iterable[tuple[int, RecordIn]], set_ids: Mapping[str, int], now: datetime
) -> None:
    meta, members = [], []
    for rid, item in pairs:
        for prefix, xml in item.metadata.items():
            meta.append((rid, prefix, None if item.deleted else xml, item.about.get(prefix)))
        seen: set[int] = set()
        for spec in item.sets:
            for anc in ancestors(spec):
                sid = set_ids[anc]
                if sid not in seen:
                    seen.add(sid)
                    members.append((sid, rid, now))
    bulk_insert(session, RecordMetadata.__table__, ("record_id", "prefix", "xml", "about"), meta)
    bulk_insert(session, RecordSet.__table__, ("set_id", "record_id", "datestamp"), members)


def _replace_children(
    session: Session, pairs: list[tuple[int, RecordIn]], set_ids: Mapping[str, int], now: datetime
) -> None:
    """Replace metadata and memberships; a tombstone keeps the prefixes it had (without bytes), and so
    does a format the new version no longer has: it is served as deleted in that format (OAI-PMH 2.5.1)."""
    ids = [rid for rid, _ in pairs]
    kept: dict[int, set[str]] = {}
    for i in range(0, len(ids), CHUNK):
        chunk = ids[i : i + CHUNK]
        for r in session.execute(
            select(RecordMetadata.record_id, RecordMetadata.prefix).where(RecordMetadata.record_id.in_(chunk))
        ):
            kept.setdefault(r.record_id, set()).add(r.prefix)
        session.execute(delete(RecordMetadata).where(RecordMetadata.record_id.in_(chunk)))
        session.execute(delete(RecordSet).where(RecordSet.record_id.in_(chunk)))
    rewritten = []
    for rid, item in pairs:
        if item.deleted:
            prefixes = set(item.metadata) | kept.get(rid, set())
            item = replace(item, metadata={p: b"" for p in sorted(prefixes)})
        elif kept.get(rid, set()) - set(item.metadata):
            withdrawn = {p: None for p in sorted(kept[rid] - set(item.metadata))}
            item = replace(item, metadata={**item.metadata, **withdrawn})
        rewritten.append((rid, item))
    _write_children(session, rewritten, set_ids, now)
