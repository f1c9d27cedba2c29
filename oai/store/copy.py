"""A whole store copied into another database: how a repository begun on SQLite moves to PostgreSQL (or back).

Everything is copied as it is: records with their ids, datestamps and metadata, sets, sources with their runs,
checkpoints and quarantine, and the token secret, so that identifiers, datestamps and the resumption tokens
harvesters hold stay good. Read from one snapshot of the source, written in one transaction of the target: a copy
is whole or not there.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, delete, func, select

from oai.store.engine import SchemaError, check_no_tables, check_schema, current_revision, is_sqlite, upgrade
from oai.store.models import Base, OAISet, Record, Setting, Source
from oai.store.settings import shared_secret

BATCH = 2000  # rows read and written at a time
_HOLDS = (Record, OAISet, Source)  # a target holding any of these is another store, not to be written over


def copy_store(source: Engine, target: Engine, on_table: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Copy every row of `source` into `target`, whose schema is made if it has none; returns rows per table.
    Raises SchemaError where either is not at this code's schema or the target holds a store already."""
    check_schema(source)
    shared_secret(source)  # made now if no server has yet: a server on either store then signs tokens the same way
    if current_revision(target) is None:
        check_no_tables(target)
        upgrade(target)
    check_schema(target)
    where = target.url.render_as_string(hide_password=True)
    copied: dict[str, int] = {}
    with source.connect() as reader, target.begin() as writer:
        if not is_sqlite(source):  # one snapshot of every table (SQLite's read transaction is one already)
            reader = reader.execution_options(isolation_level="REPEATABLE READ")
        with reader.begin():
            for model in _HOLDS:
                if writer.scalar(select(func.count()).select_from(model)):
                    raise SchemaError(f"the database {where} holds a store already ({model.__tablename__} has rows): "
                                      "copy into an empty one")
            writer.execute(delete(Setting))  # the target's own secret, if a server started on it: the source's wins
            for table in Base.metadata.sorted_tables:  # parents before the rows that point at them
                rows = 0
                for part in reader.execution_options(yield_per=BATCH).execute(select(table)).partitions():
                    writer.execute(table.insert(), [dict(row._mapping) for row in part])
                    rows += len(part)
                copied[table.name] = rows
                if on_table is not None:
                    on_table(table.name, rows)
        if not is_sqlite(target):  # ids go on after the copied ones (SQLite's own counters follow the rows)
            for table in Base.metadata.sorted_tables:
                if "id" in table.c and table.c.id.primary_key and table.c.id.autoincrement:
                    writer.exec_driver_sql(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                        f"COALESCE((SELECT max(id) FROM {table.name}), 1), (SELECT max(id) IS NOT NULL FROM {table.name}))")
    return copied
