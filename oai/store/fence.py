"""The write fence: a responseDate that a harvester can ask `from` next time without missing a record.

A write stamps its records when it begins and is seen when it commits. Harvesters ask `from` the
responseDate of their last harvest. A record stamped before that responseDate, but committed after the
response had read the store, was in neither harvest: lost to that harvester until it changes again (an
outside audit saw `oai load` batches of 500 stamped in one second and committed in the next; 5 of 10
harvests asking `from` the previous responseDate lost one). OAI-PMH 2.7.1: a list `from` a date must
hold every record changed since.

So a writer holds the fence from before it takes its stamp until it commits, and a reader, once it has
taken its responseDate, waits until the fence is free before it reads. Every write stamped before the
responseDate is then committed and in the reads; every write that begins later is stamped later.

SQLite: the fence is the database's write lock (writers begin with BEGIN IMMEDIATE; a reader takes the
lock and gives it back). PostgreSQL: an advisory lock, shared by writers until they commit, taken and given
back at once by a reader. Both assume the nodes' clocks agree (NTP), as any datestamp does.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from sqlalchemy import exc
from sqlalchemy.orm import Session

from oai.store.engine import is_sqlite

_KEY = 0x6F61692D66656E63  # "oai-fenc" as an int64 (pg advisory lock keys are one namespace per database)
# The subquery is not flattened (OFFSET 0), so the lock is taken before the unlock is evaluated.
_PASS_POSTGRESQL = f"SELECT pg_advisory_unlock({_KEY}) FROM (SELECT pg_advisory_lock({_KEY}) OFFSET 0) AS fence"


def stamp(session: Session) -> datetime:
    """The datestamp of what `session`'s transaction writes: now, taken inside the fence (this begins the
    transaction: on SQLite once the write lock is ours), to the second."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock_shared({_KEY})")  # until the commit
    return utcnow()


def wait(session: Session) -> None:
    """Return once every write that may have been stamped before now has committed. Call it after taking the
    responseDate and before `session` reads anything (on SQLite its snapshot begins with its first read)."""
    engine = session.get_bind()
    if not is_sqlite(engine):
        session.connection().exec_driver_sql(_PASS_POSTGRESQL)
        return
    # The driver's own connection: through SQLAlchemy the two statements cost 150 us instead of 20.
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE")  # waits for a writer (up to the busy timeout: then a 503)
        except sqlite3.OperationalError as error:
            if "readonly" in str(error):  # "attempt to write a readonly database"
                return  # a store this process cannot write: no writer of ours shares its lock
            raise exc.OperationalError("BEGIN IMMEDIATE", None, error) from error
        cursor.execute("COMMIT")
    finally:
        connection.close()


def utcnow() -> datetime:
    """Now, in UTC, naive, to the second: the datestamp precision we serve."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)
