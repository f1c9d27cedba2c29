"""A whole store copied into another database: how a repository begun on SQLite moves to PostgreSQL (or back).

Everything is copied as it is: records with their ids, datestamps and metadata, sets, sources with their runs,
checkpoints and quarantine, and the token secret, so that identifiers, datestamps and the resumption tokens
harvesters hold stay good; so are the numbers already given out (a run's, a quarantine entry's), which are never
given again. Read from one snapshot of the source, without its write lock (a server may go on serving it, a load
writing it), and written in one transaction of the target: a copy is whole or not there.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, Engine, delete, func, select

from oai.store.engine import (SchemaError, check_no_tables, check_not_newer, check_schema, current_revision, is_sqlite,
                              make_engine, upgrade)
from oai.store.models import Base, Setting
from oai.store.settings import shared_secret

BATCH = 2000  # rows read and written at a time
# Tables whose ids are never given again (SQLite AUTOINCREMENT, migration 0009; PostgreSQL sequences never go back)
NUMBERED = ("harvest_run", "quarantine")


def copy_store(source: Engine, target: Engine, on_table: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Copy every row of `source` into `target`, whose schema is made if it has none; returns rows per table.
    Raises SchemaError where either is not at this code's schema or the target holds anything already."""
    check_schema(source)
    shared_secret(source)  # made now if no server has yet: a server on either store then signs tokens the same way
    where = target.url.render_as_string(hide_password=True)
    current = current_revision(target)
    if current is None:
        check_no_tables(target)
        upgrade(target)
    check_not_newer(target, current)  # (newer code made it: this code cannot write its schema)
    try:
        check_schema(target)
    except SchemaError as exc:
        raise SchemaError(f"the target: {exc} (`oai --database TARGET db upgrade` makes it current)") from None
    # A reader's engine: on SQLite a deferred BEGIN, a snapshot without the write lock (the writer's engine takes it
    # at BEGIN, and held it for the whole copy: an outside audit's server answered 503 meanwhile, its load failed).
    reading = make_engine(source.url.render_as_string(hide_password=False), writer=False)
    if not is_sqlite(reading):  # one snapshot of every table
        reading = reading.execution_options(isolation_level="REPEATABLE READ")
    copied: dict[str, int] = {}
    try:
        with reading.connect() as reader, reader.begin(), target.begin() as writer:
            for table in Base.metadata.sorted_tables:
                if table.name != Setting.__tablename__ and writer.scalar(select(func.count()).select_from(table)):
                    raise SchemaError(f"the database {where} holds rows already ({table.name}): copy into an empty "
                                      "one")
            writer.execute(delete(Setting))  # the target's own secret, if a server started on it: the source's wins
            for table in Base.metadata.sorted_tables:  # parents before the rows that point at them
                rows = 0
                for part in reader.execution_options(yield_per=BATCH).execute(select(table)).partitions():
                    writer.execute(table.insert(), [dict(row._mapping) for row in part])
                    rows += len(part)
                copied[table.name] = rows
                if on_table is not None:
                    on_table(table.name, rows)
            _go_on_numbering(reader, writer)
    finally:
        reading.dispose()
    return copied


def _go_on_numbering(reader: Connection, writer: Connection) -> None:
    """New rows of the target are numbered after every number the source gave out: after its rows, and after the
    numbers of rows since deleted (a source removed) that NUMBERED tables never give again (an outside audit found
    a copy giving a removed source's run number to a new run)."""
    for table in Base.metadata.sorted_tables:
        if "id" not in table.c or not table.c.id.primary_key:
            continue
        given = max(writer.scalar(select(func.coalesce(func.max(table.c.id), 0))),
                    _high_water(reader, table.name) if table.name in NUMBERED else 0)
        if is_sqlite(writer.engine):
            if table.name in NUMBERED and given:
                writer.exec_driver_sql("DELETE FROM sqlite_sequence WHERE name = ?", (table.name,))
                writer.exec_driver_sql("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table.name, given))
        else:
            writer.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), %s, %s)",
                                   (max(given, 1), given > 0))


def _high_water(reader: Connection, table: str) -> int:
    """The largest number `table` has given out in the source, deleted rows' included."""
    if is_sqlite(reader.engine):
        return int(reader.exec_driver_sql("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).scalar() or 0)
    sequence = reader.exec_driver_sql("SELECT pg_get_serial_sequence(%s, 'id')", (table,)).scalar()
    called, last = reader.exec_driver_sql(f"SELECT is_called, last_value FROM {sequence}").one()
    return int(last) if called else 0
