"""The write fence: a responseDate that a harvester can ask `from` next time without missing a record.

A write stamps its records when it begins and is seen when it commits. Harvesters ask `from` the
responseDate of their last harvest. A record stamped before that responseDate, but committed after the
response had read the store, was in neither harvest: lost to that harvester until it changes again (an
outside audit saw `oai load` batches of 500 stamped in one second and committed in the next; 5 of 10
harvests asking `from` the previous responseDate lost one). OAI-PMH 2.7.1: a list `from` a date must
hold every record changed since.

So a writer holds the fence from before it takes its stamp until it commits, and a reader, once it has
taken its responseDate, waits until the writers that held the fence then have committed. Every write
stamped before the responseDate is then committed and in the reads; every write that begins later is
stamped later.

SQLite: the fence is the database's write lock (writers begin with BEGIN IMMEDIATE), and each writer counts
its commit in the `setting` row WRITE_COUNT. A reader that finds the lock held waits for the count to move
(the holder committed), not for the lock to be free: a loader writing batch after batch leaves it free for
microseconds, which SQLite's busy handler, sleeping up to 100 ms between tries, misses for the whole load.
(`PRAGMA data_version` would be free, but it also moves when a writer restarts the log before it commits.)
PostgreSQL: an advisory lock, shared by writers until they commit, taken and given back at once by a
reader, bounded by lock_timeout.
A reader waits at most WAIT_LIMIT_SECONDS (then the database counts as busy: a 503 with Retry-After).
Both assume the nodes' clocks agree (NTP), as any datestamp does: a node whose clock runs behind the
others' could still stamp a write before a responseDate given after the reader passed.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from datetime import datetime
from functools import lru_cache

from sqlalchemy import Engine, exc
from sqlalchemy.orm import Session

from oai.clock import utcnow
from oai.store.engine import BUSY_TIMEOUT_SECONDS, is_sqlite, sqlite_file

log = logging.getLogger(__name__)

WAIT_LIMIT_SECONDS = 30  # one load batch or harvested page takes well under a second
HOLD_LIMIT_SECONDS = 60  # PostgreSQL: a writer holding the fence may sit idle this long, then its session is ended
_KEY = 0x6F61692D66656E63  # "oai-fenc" as an int64 (pg advisory lock keys are one namespace per database)
# One statement: lock_timeout bounds the wait, the lock is taken, then given back; each subquery is evaluated
# before the select around it (OFFSET 0 keeps them from being flattened).
_PASS_POSTGRESQL = (
    "SELECT pg_advisory_unlock({key}) FROM (SELECT pg_advisory_lock({key}) FROM"
    " (SELECT set_config('lock_timeout', '{limit_ms}', true) OFFSET 0) AS bound OFFSET 0) AS fence")
WRITE_COUNT = "write_count"
_COUNT_SQLITE = (f"INSERT INTO setting (key, value) VALUES ('{WRITE_COUNT}', '1') ON CONFLICT (key)"
                 f" DO UPDATE SET value = CAST(setting.value AS INTEGER) + 1")
_READ_COUNT_SQLITE = f"SELECT value FROM setting WHERE key = '{WRITE_COUNT}'"
_POLL_SECONDS = 0.001
_warned_read_only = False


def stamp(session: Session) -> datetime:
    """The datestamp of what `session`'s transaction writes: now, taken inside the fence (this begins the
    transaction: on SQLite once the write lock is ours), to the second."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        # Held until the commit; and a writer that stops while holding it (a process stopped with Ctrl-Z, hung,
        # cut off by the network) is ended by the server once idle HOLD_LIMIT_SECONDS: it held every node's first
        # pages at 503 for as long as it lived (an outside audit). This transaction's setting only.
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock_shared({_KEY}), set_config("
                             f"'idle_in_transaction_session_timeout', '{HOLD_LIMIT_SECONDS * 1000}', true)")
    else:
        conn.exec_driver_sql(_COUNT_SQLITE)  # seen by readers when this transaction commits
    return utcnow()


def wait(session: Session) -> None:
    """Return once every write that may have been stamped before now has committed. Call it after taking the
    responseDate and before `session` reads anything. Raises OperationalError if that takes longer than
    WAIT_LIMIT_SECONDS."""
    engine = session.get_bind()
    if is_sqlite(engine):
        _wait_sqlite(engine)
        return
    conn = session.connection()
    try:
        conn.exec_driver_sql(_PASS_POSTGRESQL.format(key=_KEY, limit_ms=int(WAIT_LIMIT_SECONDS * 1000)))
    except BaseException as error:
        # Cancelled (statement_timeout, pg_cancel_backend, an interrupt) between taking the lock and giving it back,
        # the connection would hold it for good and stop every writer: closing it ends the lock with it.
        conn.invalidate()
        if isinstance(error, exc.DBAPIError):
            error.connection_invalidated = True  # so the answer is "retry later" (503), whatever stopped the wait
            if getattr(error.orig, "sqlstate", None) == _LOCK_NOT_AVAILABLE:
                _say_who_holds(engine)
        raise


_LOCK_NOT_AVAILABLE = "55P03"  # lock_timeout ran out
_HOLDERS = (f"SELECT a.pid, a.state, a.client_addr, a.application_name, a.xact_start, left(a.query, 80) FROM pg_locks l"
            f" JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
            f" AND (l.classid::bigint << 32 | l.objid::bigint) = {_KEY} ORDER BY a.xact_start LIMIT 3")


def _say_who_holds(engine: Engine) -> None:
    """Log which sessions hold the fence, when a reader waited out its limit: a 503 alone did not say that a writer
    was stuck, nor which (an outside audit)."""
    try:
        with engine.connect() as probe:
            holders = probe.exec_driver_sql(_HOLDERS).all()
    except exc.SQLAlchemyError:
        return
    for pid, state, client, application, began, query in holders:
        log.warning("the write fence is held by PostgreSQL backend %s (%s, client %s %s, in a transaction since %s, "
                    "last statement %r): first pages wait for it, and it is ended once idle %d s", pid, state,
                    client or "local", application or "", began, query, HOLD_LIMIT_SECONDS)


@lru_cache(maxsize=16)
def _read_only(engine: Engine) -> bool:
    """Whether this process cannot write the engine's store file: asked once, not at every request. A read-only
    connection's BEGIN IMMEDIATE takes no lock (it succeeds even while a writer holds it)."""
    path = sqlite_file(engine)
    return path is not None and not os.access(path, os.W_OK)


def _wait_sqlite(engine: Engine) -> None:
    if _read_only(engine):
        _warn_read_only()
        return
    # The driver's own connection: through SQLAlchemy each statement costs several times more.
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute("PRAGMA busy_timeout=0")  # try the lock, never sleep in SQLite's busy handler
        try:
            if _take_and_give_back(cursor):
                return
            # Held. Writers stamp after taking the lock, so only this holder can have stamped before now, and
            # the next commit counted is its own (or a later writer's, after it).
            seen = cursor.execute(_READ_COUNT_SQLITE).fetchall()
            deadline = time.monotonic() + WAIT_LIMIT_SECONDS
            while cursor.execute(_READ_COUNT_SQLITE).fetchall() == seen:
                if _take_and_give_back(cursor):  # it rolled back, or stamped nothing
                    return
                if time.monotonic() > deadline:
                    raise exc.OperationalError("write fence", None,
                                               sqlite3.OperationalError("database is locked"))
                time.sleep(_POLL_SECONDS)
        finally:
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
    finally:
        connection.close()


def _take_and_give_back(cursor: sqlite3.Cursor) -> bool:
    """Whether the write lock was free: taken and given back at once (20 us)."""
    try:
        cursor.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as error:
        message = str(error)
        if "locked" in message or "busy" in message:
            return False
        if "readonly" in message:  # "attempt to write a readonly database"
            _warn_read_only()
            return True
        raise exc.OperationalError("BEGIN IMMEDIATE", None, error) from error
    cursor.execute("COMMIT")
    return True


def _warn_read_only() -> None:
    global _warned_read_only  # noqa: PLW0603 - once a process
    if not _warned_read_only:
        _warned_read_only = True
        log.warning("this process cannot write the SQLite store, so its answers do not wait for writes in "
                    "progress: a harvester asking `from` a responseDate may miss a record written then "
                    "(give the server write access to the database file and its directory)")

