"""Read queries the server needs: keyset-paged lists, single records, sets. Never writes.

Lists are ordered by (datestamp, id) and continue *after* a position, never by OFFSET,
so page one million costs what page one costs.
"""

from __future__ import annotations

import functools
from collections import namedtuple
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Row, and_, bindparam, case, func, or_, select, tuple_
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
    digest: str | None = None  # of every byte served of the record (RecordIn.digest), with the metadata


@dataclass(frozen=True)
class ListQuery:
    prefix: str
    set_id: int | None = None
    from_: datetime | None = None
    until: datetime | None = None


def earliest_datestamp(session: Session) -> datetime | None:
    return session.scalar(select(func.min(Record.datestamp)))


SAMPLE_SCAN = 10_000  # records Identify looks through for a sample identifier of ours


def first_identifier(session: Session, prefix: str) -> str | None:
    """The identifier of the first live record stored whose identifier starts with `prefix`, among the first
    SAMPLE_SCAN records: an aggregator with none of its own would otherwise read every row on every Identify (a
    review). In the order of the records' keys, not of identifiers: a range of strings depends on PostgreSQL's
    collation."""
    first = select(Record.id, Record.identifier, Record.deleted).order_by(Record.id).limit(SAMPLE_SCAN).subquery()
    return session.scalar(select(first.c.identifier).where(first.c.identifier.startswith(prefix, autoescape=True),
                                                           first.c.deleted.is_(False))
                          .order_by(first.c.id).limit(1))


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


# Deleted in the format asked for: the whole record, or this format withdrawn from it (its row kept
# without bytes, see records._replace_children).
_DELETED_IN_FORMAT = or_(Record.deleted, RecordMetadata.xml.is_(None)).label("deleted")


def get_item(session: Session, identifier: str, prefix: str) -> Item | None:
    """The record in `prefix`, or None when the record does not exist or lacks that format."""
    row = session.execute(
        select(Record.id, Record.identifier, Record.datestamp, _DELETED_IN_FORMAT, Record.set_specs,
               RecordMetadata.xml, RecordMetadata.about, Record.digest)
        .join(RecordMetadata, and_(RecordMetadata.record_id == Record.id, RecordMetadata.prefix == prefix))
        .where(Record.identifier == identifier)
    ).one_or_none()
    return None if row is None else _item(row, True)


# A list's statements depend only on its shape (set or not, which bounds, first page or not,
# metadata or not): each shape is built and compiled once, then executed with bound values.
_DATESTAMP = Record.__table__.c.datestamp.type
_ID = Record.__table__.c.id.type
_LIST_COLUMNS = (Record.id, Record.identifier, Record.datestamp, _DELETED_IN_FORMAT, Record.set_specs)
# the digest: what a page's validator (ETag) is made of besides its headers, whose datestamps are in seconds
_META_COLUMNS = (RecordMetadata.xml, RecordMetadata.about, Record.digest)


def _filtered(columns: tuple, in_set: bool, has_from: bool, has_until: bool, *, record: bool = True):  # noqa: ANN202
    """The list's SELECT (with bound parameters) and the (datestamp, id) columns it is ordered by.

    A set's list reads the record table only for the columns it selects (`record`): membership
    carries the datestamp, and its foreign key guarantees the record.
    """
    if not in_set:
        meta_join = and_(RecordMetadata.record_id == Record.id, RecordMetadata.prefix == bindparam("prefix"))
        stmt = select(*columns).select_from(Record).join(RecordMetadata, meta_join)
        date_col, id_col = Record.datestamp, Record.id
    else:
        # Filter and order on the membership table's own (set_id, datestamp, record_id) index.
        stmt = select(*columns).select_from(RecordSet)
        if record:
            stmt = stmt.join(Record, Record.id == RecordSet.record_id)
        owner = Record.id if record else RecordSet.record_id
        meta_join = and_(RecordMetadata.record_id == owner, RecordMetadata.prefix == bindparam("prefix"))
        stmt = stmt.join(RecordMetadata, meta_join).where(RecordSet.set_id == bindparam("set_id"))
        date_col, id_col = RecordSet.datestamp, RecordSet.record_id
    if has_from:
        stmt = stmt.where(date_col >= bindparam("from_", type_=_DATESTAMP))
    if has_until:
        stmt = stmt.where(date_col <= bindparam("until", type_=_DATESTAMP))
    return stmt, date_col, id_col


@functools.cache
def _list_statement(in_set: bool, has_from: bool, has_until: bool, has_after: bool, with_metadata: bool):  # noqa: ANN202
    columns = _LIST_COLUMNS + _META_COLUMNS if with_metadata else _LIST_COLUMNS
    stmt, date_col, id_col = _filtered(columns, in_set, has_from, has_until)
    if has_after:
        # A row-value comparison is one index range on (datestamp, id), on SQLite and PostgreSQL.
        after = tuple_(bindparam("after_datestamp", type_=_DATESTAMP), bindparam("after_id", type_=_ID))
        stmt = stmt.where(tuple_(date_col, id_col) > after)
    return stmt.order_by(date_col, id_col).limit(bindparam("limit", type_=_ID))


@functools.cache
def _last_statement(in_set: bool, has_from: bool, has_until: bool, with_metadata: bool):  # noqa: ANN202
    columns = _LIST_COLUMNS + _META_COLUMNS if with_metadata else _LIST_COLUMNS
    stmt, date_col, id_col = _filtered(columns, in_set, has_from, has_until)
    through = tuple_(bindparam("after_datestamp", type_=_DATESTAMP), bindparam("after_id", type_=_ID))
    return stmt.where(tuple_(date_col, id_col) <= through).order_by(date_col.desc(), id_col.desc()).limit(1)


@functools.cache
def _count_statement(in_set: bool, has_from: bool, has_until: bool):  # noqa: ANN202
    """completeListSize's query for a list of this shape.

    Every metadata row belongs to a record (foreign key), so a list without a set or `from`
    whose `until` is at or after the latest datestamp holds every record that has the format:
    then the count is of metadata rows alone, one pass over the (record_id, prefix) key instead
    of a join with the record table. Which case holds is decided inside the one statement, so
    the check and the count see the same snapshot; the other branch is not evaluated (a
    scalar subquery in CASE runs when reached, on SQLite and PostgreSQL).
    """
    counted = _filtered((func.count(),), in_set, has_from, has_until, record=False)[0]
    if in_set or has_from:
        return counted
    everything = select(func.count()).select_from(RecordMetadata).where(RecordMetadata.prefix == bindparam("prefix"))
    if not has_until:
        return everything
    latest = select(func.max(Record.datestamp)).scalar_subquery()
    return select(case((latest <= bindparam("until", type_=_DATESTAMP), everything.scalar_subquery()),
                       else_=counted.scalar_subquery()))


def _values(query: ListQuery) -> dict[str, object]:
    values: dict[str, object] = {"prefix": query.prefix}
    if query.set_id is not None:
        values["set_id"] = query.set_id
    if query.from_ is not None:
        values["from_"] = query.from_
    if query.until is not None:
        values["until"] = query.until
    return values


def list_rows(
    session: Session,
    query: ListQuery,
    *,
    after: tuple[datetime, int] | None,
    limit: int,
    with_metadata: bool,
) -> list[Row]:
    """Up to `limit` rows strictly after `after` in (datestamp, id) order, as plain result rows.

    Each row has the columns id, identifier, datestamp, deleted, set_specs (the space-separated
    string as stored) and, with metadata, xml, about and digest; by position or by name.
    """
    stmt = _list_statement(query.set_id is not None, query.from_ is not None, query.until is not None,
                           after is not None, with_metadata)
    values = _values(query)
    values["limit"] = limit
    if after is not None:
        values["after_datestamp"], values["after_id"] = after
    conn = session.connection()
    if with_metadata and conn.dialect.name == "postgresql":
        return _binary_rows(conn, stmt, values)
    # Core execution on the session's connection: no ORM bookkeeping for plain column rows.
    return conn.execute(stmt, values).all()


def last_row_through(session: Session, query: ListQuery, *, through: tuple[datetime, int],
                     with_metadata: bool) -> Row | None:
    """The list's last row at or before `through` in (datestamp, id) order, as list_rows gives rows."""
    stmt = _last_statement(query.set_id is not None, query.from_ is not None, query.until is not None, with_metadata)
    values = _values(query)
    values["after_datestamp"], values["after_id"] = through
    conn = session.connection()
    if with_metadata and conn.dialect.name == "postgresql":
        rows = _binary_rows(conn, stmt, values)
    else:
        rows = conn.execute(stmt, values).all()
    return rows[0] if rows else None


def _binary_rows(conn, stmt, values: dict[str, object]) -> list:  # noqa: ANN001
    """The rows of a list page with metadata, read from PostgreSQL in its binary format.

    In the text format every bytea value comes hex-encoded (twice its size) and is decoded here: for
    a page of 100 records that is about half of what the page costs the server process and most of
    what it waits for. The statement is SQLAlchemy's, compiled once per shape; the cursor is
    psycopg's own, on the same connection and in the same transaction. Rows are named tuples with
    the columns' names, as SQLAlchemy's rows are.
    """
    compiled = _compiled(stmt, conn.dialect)
    cursor = conn.connection.driver_connection.cursor(binary=True, row_factory=_list_row_maker)
    try:
        return cursor.execute(compiled.string, compiled.construct_params(values)).fetchall()
    finally:
        cursor.close()


@functools.cache
def _compiled(stmt, dialect):  # noqa: ANN001, ANN202 - one per list shape, as _list_statement
    return stmt.compile(dialect=dialect)


_ListRow = namedtuple("_ListRow", [column.key for column in _LIST_COLUMNS + _META_COLUMNS])


def _list_row_maker(_cursor):  # noqa: ANN001, ANN202 - a psycopg row factory
    return _ListRow._make


def list_items(
    session: Session,
    query: ListQuery,
    *,
    after: tuple[datetime, int] | None,
    limit: int,
    with_metadata: bool,
) -> list[Item]:
    """Up to `limit` items strictly after `after` in (datestamp, id) order."""
    rows = list_rows(session, query, after=after, limit=limit, with_metadata=with_metadata)
    return [_item(row, with_metadata) for row in rows]


def count_items(session: Session, query: ListQuery) -> int:
    """completeListSize of the whole list (computed once, on its first page)."""
    stmt = _count_statement(query.set_id is not None, query.from_ is not None, query.until is not None)
    return session.connection().execute(stmt, _values(query)).scalar() or 0


def sources_for_friends(session: Session) -> list[str]:
    """Base URLs of the repositories we harvest, for Identify's `friends` description."""
    urls = session.scalars(select(Source.base_url).where(Source.enabled.is_(True)).order_by(Source.name))
    return list(dict.fromkeys(urls))  # several sources (formats, sets) of one repository: it is one friend


def _item(row, with_metadata: bool) -> Item:  # noqa: ANN001
    return Item(
        id=row.id,
        identifier=row.identifier,
        datestamp=row.datestamp,
        deleted=row.deleted,
        set_specs=tuple(row.set_specs.split()),
        xml=row.xml if with_metadata else None,
        about=row.about if with_metadata else None,
        digest=row.digest if with_metadata else None,
    )


def newest_own_identifiers(session: Session, limit: int = 100) -> list[str]:
    """The identifiers of the newest records named by us (loaded here, or harvested without keeping the upstream's
    identifier): those that carry our repository identifier. Read by the primary key, newest first: cheap at any
    size."""
    stmt = (select(Record.identifier).outerjoin(Source, Source.id == Record.source_id)
            .where(or_(Source.id.is_(None), Source.keep_upstream_identifiers.is_(False)))
            .order_by(Record.id.desc()).limit(limit))
    return list(session.scalars(stmt))
