"""Read queries the server needs: keyset-paged lists, single records, sets. Never writes.

Lists are ordered by (datestamp, id) and continue *after* a position, never by OFFSET,
so page one million costs what page one costs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, select, tuple_
from sqlalchemy.orm import Session

from oai.store.models import OAISet, Record, RecordMetadata, RecordSet, Source


@dataclass(frozen=True)
class Item:
    """One header (and, for ListRecords/GetRecord, its metadata bytes) as served."""

    id: int
    identifier: str
    datestamp: datetime
    deleted: bool
    set_specs: tuple[str, ...]
    xml: bytes | None = None
    about: bytes | None = None


@dataclass(frozen=True)
class ListQuery:
    prefix: str
    set_id: int | None = None
    from_: datetime | None = None
    until: datetime | None = None


def earliest_datestamp(session: Session) -> datetime | None:
    return session.scalar(select(func.min(Record.datestamp)))


def latest_datestamp(session: Session) -> datetime | None:
    return session.scalar(select(func.max(Record.datestamp)))


def set_id(session: Session, spec: str) -> int | None:
    return session.scalar(select(OAISet.id).where(OAISet.spec == spec))


def has_sets(session: Session) -> bool:
    return session.scalar(select(OAISet.id).limit(1)) is not None


def count_sets(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(OAISet)) or 0


def list_sets(session: Session, *, after: str | None, limit: int) -> list[OAISet]:
    """Sets ordered by spec, continuing after `after`."""
    stmt = select(OAISet).order_by(OAISet.spec).limit(limit)
    if after is not None:
        stmt = stmt.where(OAISet.spec > after)
    return list(session.scalars(stmt))


def record_by_identifier(session: Session, identifier: str) -> Record | None:
    return session.scalar(select(Record).where(Record.identifier == identifier))


def record_prefixes(session: Session, record_id: int) -> list[str]:
    """The formats this record really has (tombstones keep the prefixes they had)."""
    stmt = select(RecordMetadata.prefix).where(RecordMetadata.record_id == record_id)
    return sorted(session.scalars(stmt))


def get_item(session: Session, identifier: str, prefix: str) -> Item | None:
    """The record in `prefix`, or None when the record does not exist or lacks that format."""
    row = session.execute(
        select(Record.id, Record.identifier, Record.datestamp, Record.deleted, Record.set_specs,
               RecordMetadata.xml, RecordMetadata.about)
        .join(RecordMetadata, and_(RecordMetadata.record_id == Record.id, RecordMetadata.prefix == prefix))
        .where(Record.identifier == identifier)
    ).one_or_none()
    return None if row is None else _item(row, True)


def _filtered(query: ListQuery, columns: list, with_metadata: bool):  # noqa: ANN202
    """The list's SELECT and the (datestamp, id) columns it is ordered by."""
    meta_join = and_(RecordMetadata.record_id == Record.id, RecordMetadata.prefix == query.prefix)
    if query.set_id is None:
        stmt = select(*columns).select_from(Record).join(RecordMetadata, meta_join)
        date_col, id_col = Record.datestamp, Record.id
    else:
        # Filter and order on the membership table's own (set_id, datestamp, record_id) index.
        stmt = (
            select(*columns)
            .select_from(RecordSet)
            .join(Record, Record.id == RecordSet.record_id)
            .join(RecordMetadata, meta_join)
            .where(RecordSet.set_id == query.set_id)
        )
        date_col, id_col = RecordSet.datestamp, RecordSet.record_id
    if query.from_ is not None:
        stmt = stmt.where(date_col >= query.from_)
    if query.until is not None:
        stmt = stmt.where(date_col <= query.until)
    return stmt, date_col, id_col


def list_items(
    session: Session,
    query: ListQuery,
    *,
    after: tuple[datetime, int] | None,
    limit: int,
    with_metadata: bool,
) -> list[Item]:
    """Up to `limit` items strictly after `after` in (datestamp, id) order."""
    columns = [Record.id, Record.identifier, Record.datestamp, Record.deleted, Record.set_specs]
    if with_metadata:
        columns += [RecordMetadata.xml, RecordMetadata.about]
    stmt, date_col, id_col = _filtered(query, columns, with_metadata)
    if after is not None:
        # A row-value comparison is one index range on (datestamp, id), on SQLite and PostgreSQL.
        stmt = stmt.where(tuple_(date_col, id_col) > tuple_(*after))
    stmt = stmt.order_by(date_col, id_col).limit(limit)
    # Core execution on the session's connection: no ORM bookkeeping for plain column rows.
    return [_item(row, with_metadata) for row in session.connection().execute(stmt)]


def count_items(session: Session, query: ListQuery) -> int:
    """completeListSize of the whole list (computed once, on its first page)."""
    stmt, _, _ = _filtered(query, [func.count()], False)
    return session.scalar(stmt) or 0


def sources_for_friends(session: Session) -> list[str]:
    """Base URLs of the repositories we harvest, for Identify's `friends` description."""
    return list(session.scalars(select(Source.base_url).where(Source.enabled.is_(True)).order_by(Source.name)))


def _item(row, with_metadata: bool) -> Item:  # noqa: ANN001
    return Item(
        id=row.id,
        identifier=row.identifier,
        datestamp=row.datestamp,
        deleted=row.deleted,
        set_specs=tuple(row.set_specs.split()),
        xml=row.xml if with_metadata else None,
        about=row.about if with_metadata else None,
    )
