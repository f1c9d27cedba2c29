"""SQLite WAL checkpoints for bulk writers (a load, a harvest), done by a thread beside them.

In WAL mode a commit that leaves the log longer than `wal_autocheckpoint` frames copies the log into
the database file there and then, in the committing thread. A harvest or a load commits a page of
several hundred KB every few tens of milliseconds from one thread, the thread that bounds how fast
either goes, and that thread spent 8% of its time copying (py-spy with native frames, a harvest of
20,000 oai_dc records). Bulk writers call after_commit() instead: a thread of their process copies
(a PASSIVE checkpoint, which waits for nobody and which nobody waits for) while the writer goes on
with the next page. A writer's own automatic checkpoint starts only past engine.WAL_BOUND_BYTES of log
(make_engine sets it). The log still grows to that bound: it starts again from its beginning only
when a copy has ended before the next page begins, which is seldom while pages follow each other;
but by then the thread has copied nearly all of it, and the writer's checkpoint has little left to do.
Nothing is needed on PostgreSQL.
"""

from __future__ import annotations

import atexit
import logging
import os
import sqlite3
import threading
import time
from urllib.parse import quote

from sqlalchemy import Engine

from oai.store.engine import sqlite_file

log = logging.getLogger(__name__)

IDLE_SECONDS = 5.0  # a checkpoint thread with nothing asked of it for this long ends (and closes its connection)
EXIT_SECONDS = 5.0  # at exit, how long a checkpoint under way may take before the process goes without it

_lock = threading.Lock()
_threads: dict[str, _Checkpointer] = {}  # by database file


def after_commit(engine: Engine) -> None:
    """Ask for a checkpoint of `engine`'s log after a bulk commit; returns at once (nothing on PostgreSQL).

    Never raises: the commit is done, and a checkpoint not done here is done by the writer's own connection."""
    path = sqlite_file(engine)  # absolute since make_engine: a later chdir does not change which file
    if path is None:
        return
    with _lock:
        worker = _threads.get(path)
        if worker is not None and worker.ask():
            return
        try:
            worker = _Checkpointer(path)
        except RuntimeError as exc:  # no thread to be had (a process limit): the writer checkpoints by itself
            log.warning("no thread for WAL checkpoints of %s (%s); the writer does them", path, exc)
            return
        _threads[path] = worker
        worker.ask()


def _stop_all() -> None:
    """At exit: each thread finishes what it was asked, closes its connection and ends.

    Daemon threads are stopped without closing anything, and the log of a store whose last connection
    is not closed stays beside it: the database file alone would miss the last commits. Closed, the last
    connection copies the log in and removes it, as it did before these threads."""
    with _lock:
        workers = list(_threads.values())
    for worker in workers:
        worker.stop()
    deadline = time.monotonic() + EXIT_SECONDS
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))


def _after_fork() -> None:
    """In a forked child: the parent's threads are not there, and its lock may have been held at the fork."""
    global _lock
    _lock = threading.Lock()
    _threads.clear()


atexit.register(_stop_all)
os.register_at_fork(after_in_child=_after_fork)


class _Checkpointer:
    """One thread for one database file, started when first asked, ending after IDLE_SECONDS without work.

    Its own connection opens the file read-write but never creates it (a test's store removed meanwhile
    is not made again, empty), and is opened again when the file at that path is another one (removed
    and made again, or replaced by a rename), so that the thread never keeps checkpointing a deleted file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.asked = threading.Event()
        self.done = 0  # checkpoints run (for tests)
        self._ended = False  # under _lock: set by the thread as it ends, so that ask() starts another
        self._stopping = False
        self._connection: sqlite3.Connection | None = None  # used by the thread only
        self._opened: tuple[int, int] | None = None  # which file it opened: _identity() at the time
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
        self._thread.start()

    def ask(self) -> bool:
        """Under _lock: False when the thread has ended (a new one must be started)."""
        if self._ended:
            return False
        self.asked.set()
        return True

    def stop(self) -> None:
        """End after the checkpoint asked for, if any."""
        self._stopping = True
        self.asked.set()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            while self.asked.wait(IDLE_SECONDS) or not self._end():
                self.asked.clear()
                self._checkpoint()
                if self._stopping:
                    break
        finally:
            self._end(force=True)
            self._close()

    def _checkpoint(self) -> None:
        """One PASSIVE checkpoint, through a connection to the file at the path now (none if there is none)."""
        here = _identity(self.path)
        if here != self._opened:
            self._close()
        if here is None:
            return
        try:
            if self._connection is None:
                self._connection = sqlite3.connect(f"file:{quote(self.path)}?mode=rw", uri=True, timeout=0,
                                                   isolation_level=None, check_same_thread=False)
                self._opened = here
            self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self.done += 1
        except sqlite3.Error as exc:  # not done now: done by a later one, or by the writer itself
            log.debug("WAL checkpoint of %s failed: %s", self.path, exc)

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._connection, self._opened = None, None

    def _end(self, *, force: bool = False) -> bool:
        """Leave the registry unless asked meanwhile (or `force`); True when this thread is to end."""
        with _lock:
            if self.asked.is_set() and not force:
                return False
            self._ended = True
            if _threads.get(self.path) is self:
                del _threads[self.path]
            return True


def _identity(path: str) -> tuple[int, int] | None:
    """Which file is at `path` now (device, inode), or None when there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino
