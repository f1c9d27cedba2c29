"""Read-ahead for harvesters walking a list: the page a token asks for, rendered before it is asked.

A harvester asks for page N+1 as soon as it has read page N, and waits for it. While it reads page
N, the server is idle: it renders page N+1 then, in a thread of its own, and keeps the bytes until
the request comes, so the harvester's wait shrinks to sending bytes. Sequential harvests were bound
by the per-page cost of the database read and the rendering (bench/run.py static).

What is served is exactly the response a request at the moment of rendering would have got, as an
HTTP cache may serve it (resumed pages are `Cache-Control: public, max-age=300`). It is served only
if nothing in the store changed since (the caller's `fresh`), within MAX_AGE seconds, once, and the
endpoint checks that the token is still valid.

Pages are kept in files in a directory of this node, so that whichever worker process the next
request reaches (a harvester that opens a connection per request, a proxy in front) finds the page.
The process that renders a page holds an exclusive lock on its file until it is written; a request
that arrives meanwhile waits for it rather than rendering it twice. A page is claimed by renaming its
file, so that it is served once. A page is rendered ahead only while its process serves no other
request (a busy server has no idle time to use), one at a time, and at most MAX_FILES are kept.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import queue
import re
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from oai.store.engine import database_unavailable, error_reason
from oai.web.compression import Tail

log = logging.getLogger("oai.web")

MAX_AGE = 60.0  # seconds a page rendered ahead waits for its request
FRESHNESS = 1.0  # seconds within which a write is known here (the latest write is asked at most this often)
MAX_FILES = 64  # pages kept ahead on this node, at most
WAIT = 10.0  # seconds a request waits for a page still being rendered, before rendering it itself
_SWEEP_EVERY = 10.0  # seconds between looks for pages nobody asked for
# The names of our files: pages, pages being made, pages taken.
_OURS = re.compile(r"[0-9a-f]{40}|\.[0-9a-f]{40}\.[0-9]+\.tmp|[0-9a-f]{40}\.[0-9]+\.[0-9]+\.taken")


@dataclass(frozen=True)
class Rendered:
    """A page as the endpoint sends it, and when its rendering began (the store's clock, to the second)."""

    body: bytes
    etag: str
    cacheable: bool
    next_token: str | None
    began: datetime
    tail: Tail | None = None  # the body's end compressed ahead, for a client that asks for compression


class LatestWrite:
    """When the store was last written (a record's datestamp), asked of the database at most every
    FRESHNESS seconds: a page rendered ahead is served only if nothing was written since its rendering
    began, as known then. Asking on every request cost a hit most of its time on PostgreSQL (a
    connection's ping and a query: 1.5 ms of 3 on this machine)."""

    def __init__(self, ask: Callable[[], datetime | None], interval: float = FRESHNESS) -> None:
        self._ask, self.interval = ask, interval
        self._lock = threading.Lock()
        self._known: tuple[float, datetime | None] = (-interval - 1.0, None)  # (asked at, latest)

    def before(self, moment: datetime) -> bool:
        """Whether the latest write known is before `moment` (or there is none)."""
        asked, latest = self._known
        if time.monotonic() - asked >= self.interval:
            asked = time.monotonic()  # before asking: what is written while it asks is not known yet
            latest = self._ask()
            with self._lock:
                if asked > self._known[0]:
                    self._known = (asked, latest)
        return latest is None or latest < moment


def default_directory(*parts: str) -> Path:
    """A directory of this node and user for one repository (the parts say which: database, endpoint)."""
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"oai-lookahead-{os.getuid()}-{digest}"


class LookAhead:
    """Pages rendered ahead by key (verb, token and what else shapes the page), each served once."""

    def __init__(self, directory: Path, *, max_age: float = MAX_AGE, max_files: int = MAX_FILES,
                 wait: float = WAIT) -> None:
        self.directory, self.max_age, self.max_files, self.wait = directory, max_age, max_files, wait
        self._lock = threading.Lock()
        self._rendering = False
        self._active = 0  # requests this process is serving
        self._arrivals = 0  # requests this process has begun serving
        self._local = threading.local()  # (alone when it began, _arrivals then) of the request in this thread
        self._swept = 0.0
        self._taken: list[Path] = []  # files of pages taken, to remove
        self._jobs: queue.SimpleQueue | None = None  # pages to render, for the thread of process _pid
        self._pid = 0
        self.hits = self.misses = self.stale = 0
        self.usable = _private_directory(directory)
        if self.usable:
            self.sweep()  # what a server stopped earlier left

    # -- the endpoint's side --

    @contextmanager
    def serving(self) -> Iterator[None]:
        """Around each request: a page is rendered ahead only for a request that this process served
        alone from start to end (under concurrent requests there is no idle time to use)."""
        with self._lock:
            self._active += 1
            self._arrivals += 1
            self._local.alone = (self._active == 1, self._arrivals)
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1

    def schedule(self, key: Hashable, render: Callable[[], Rendered | None]) -> Callable[[], None] | None:
        """Render the page for `key` in the background, unless this process is busy or the page is
        already there (or being rendered). Returns what starts the rendering (None: not scheduled).

        The caller starts it once its own response is sent: a thread rendering meanwhile would hold
        the interpreter lock that sending needs (the harvester would wait longer, not shorter); one
        dropped unstarted leaves a miss. The page's file is created, locked, before this returns: a
        request that comes before the page is written finds it and waits, rather than rendering it too."""
        if not self._ours():
            return None
        path = self._path(key)
        alone, arrivals = getattr(self._local, "alone", (True, None))
        with self._lock:
            if not alone or arrivals not in (None, self._arrivals) or self._rendering:  # none came since
                return None
            try:
                if path.exists() or self._full():
                    return None
            except OSError as exc:  # the directory removed (a cleaner of /tmp): made again next time
                log.warning("read-ahead: %s", exc)
                self.usable = False
                return None
            self._rendering = True
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            file = open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")  # noqa: SIM115
            fcntl.flock(file, fcntl.LOCK_EX)
            os.rename(tmp, path)  # visible now, and locked until written
        except OSError as exc:  # a full disk, a directory removed: nothing is kept, nothing is lost
            log.warning("could not keep a page rendered ahead: %s", exc)
            _unlink(tmp)
            self._done()
            return None
        return _Pending(self, file, path, render)

    def take(self, key: Hashable, fresh: Callable[[Rendered], bool]) -> Rendered | None:
        """The page rendered ahead for `key` (waiting while it is still being rendered), if it is still
        what a request would get now (`fresh`); None otherwise. A page is taken once."""
        if not self._ours():
            return None
        path = self._path(key)
        claimed = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.taken")
        try:
            os.rename(path, claimed)
        except OSError:  # not there (or the directory gone): rendered as usual
            self.misses += 1
            return None
        try:
            page, made = _read_own(claimed, self.wait)
            usable = page is not None and time.time() - made <= self.max_age and fresh(page)
        except BaseException:
            _unlink(claimed)
            raise
        if not usable:
            _unlink(claimed)
            self.stale += 1
            return None
        with self._lock:  # removed by tidy() once the response is sent: freeing a file's pages takes time
            self._taken.append(claimed)
        self.hits += 1
        return page

    def tidy(self) -> None:
        """Remove the files of the pages taken (the endpoint calls it once a response is sent)."""
        with self._lock:
            taken, self._taken = self._taken, []
            due = self._sweep_due(time.time())
        for path in taken:
            _unlink(path)
        if due:
            self.sweep()

    # -- inside --

    def _ours(self) -> bool:
        """Whether the directory is (still) this user's alone: checked on every use, since it may be
        removed (a cleaner of /tmp) and made again by someone else; made again when gone."""
        try:
            info = os.lstat(self.directory)
        except FileNotFoundError:
            self.usable = _private_directory(self.directory)
            return self.usable
        except OSError:
            return False
        self.usable = _alone(info)
        return self.usable

    def _path(self, key: Hashable) -> Path:
        return self.directory / hashlib.sha256(repr(key).encode()).hexdigest()[:40]

    def _render_into(self, file: BinaryIO, path: Path, render: Callable[[], Rendered | None]) -> None:
        """Render into the page's file, which schedule() created locked; unlocked once written."""
        with file:
            try:
                page = render()
            except Exception as error:
                if database_unavailable(error):  # a restart, a failover: one line, not a traceback each time
                    log.warning("rendering a page ahead failed, the database unavailable (%s); it is rendered when "
                                "asked", error_reason(error))
                else:
                    log.exception("rendering a page ahead failed; it is rendered when asked")
                page = None
            try:
                if page is None:  # an OAI-PMH error, answered when asked
                    _unlink(path)
                else:
                    _write(file, page)
            except OSError as exc:  # a full disk: the request finds the page cut short, and renders it
                log.warning("could not keep a page rendered ahead: %s", exc)
            self._done()  # before the lock goes with the file: the request it lets in may schedule the next

    def _renderer(self) -> queue.SimpleQueue:
        """The queue of this process's rendering thread, started when first needed (and again in a forked
        child). One thread for the process's life: a thread per page cost about 1 ms of CPU a page more
        (a fresh stack and allocator arena each time)."""
        with self._lock:
            if self._jobs is None or self._pid != os.getpid():
                self._jobs, self._pid = queue.SimpleQueue(), os.getpid()
                threading.Thread(target=self._render_loop, args=(self._jobs,), name="lookahead", daemon=True).start()
            return self._jobs

    def _render_loop(self, jobs: queue.SimpleQueue) -> None:
        while True:
            self._render_into(*jobs.get())

    def _done(self) -> None:
        with self._lock:
            self._rendering = False

    def _full(self) -> bool:
        """Whether MAX_FILES pages wait already; first removes, every _SWEEP_EVERY seconds, the pages nobody
        asked for within MAX_AGE (and what killed processes left)."""
        now = time.time()
        if self._sweep_due(now):
            self.sweep(now)
        return sum(1 for name in os.listdir(self.directory) if _OURS.fullmatch(name)) >= self.max_files

    def _sweep_due(self, now: float) -> bool:
        """Under self._lock: whether _SWEEP_EVERY seconds have passed since the last sweep (then counted as done)."""
        if now - self._swept < _SWEEP_EVERY:
            return False
        self._swept = now
        return True

    def sweep(self, now: float | None = None) -> None:
        """Remove our files older than MAX_AGE (pages nobody asked for, what killed processes left);
        nothing else in the directory is touched."""
        now = time.time() if now is None else now
        try:
            entries = list(os.scandir(self.directory))
        except OSError:
            return
        for entry in entries:
            try:
                if _OURS.fullmatch(entry.name) and now - entry.stat(follow_symlinks=False).st_mtime > self.max_age:
                    _unlink(Path(entry.path))
            except OSError:
                continue


class _Pending:
    """A page scheduled, not yet started: calling it starts the rendering; dropped unstarted, its file
    is closed (so unlocked, and empty: a miss) and its process may schedule again."""

    def __init__(self, owner: LookAhead, file: BinaryIO, path: Path, render: Callable[[], Rendered | None]) -> None:
        self._owner, self._job = owner, (file, path, render)

    def __call__(self) -> None:
        job, self._job = self._job, None
        if job is None:
            return
        try:
            self._owner._renderer().put(job)
        except RuntimeError as exc:  # no thread to be had: the page stays a miss
            log.warning("read-ahead: %s", exc)
            job[0].close()
            self._owner._done()

    def __del__(self) -> None:
        if self._job is not None:
            self._job[0].close()
            self._owner._done()


def _private_directory(directory: Path) -> bool:
    """Create `directory` for this user only; False (read-ahead off) if it is not ours alone: pages
    found there are served as they are."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(directory)
    except OSError as exc:
        log.warning("read-ahead is off: cannot use %s: %s", directory, exc)
        return False
    if not _alone(info):
        log.warning("read-ahead is off: %s is not a directory of this user alone", directory)
        return False
    return True


def _alone(info: os.stat_result) -> bool:
    """A directory (not a link) of this user, that no one else may write or read."""
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077


def _write(file: BinaryIO, page: Rendered) -> None:
    """A line of JSON about the page, then its body, then its tail compressed (if it was)."""
    tail = None if page.tail is None else [page.tail.length, len(page.tail.deflated)]
    head = {"etag": page.etag, "cacheable": page.cacheable, "next": page.next_token,
            "began": page.began.isoformat(), "made": time.time(), "length": len(page.body), "tail": tail}
    file.write(json.dumps(head).encode() + b"\n")
    file.write(page.body)
    if page.tail is not None:
        file.write(page.tail.deflated)
    file.flush()


def _read_own(path: Path, wait: float) -> tuple[Rendered | None, float]:
    """The page in a file we wrote and when it was made; None for anything else: a file its renderer did
    not finish (within `wait` seconds: a renderer stuck on the database must not hold every request for
    its page), a file not ours (or not a regular file: a FIFO would block, a device never end)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None, 0.0
    with open(fd, "rb") as file:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
            log.warning("read-ahead: %s is not a file of ours; ignored", path)
            return None, 0.0
        if not _shared_lock(file, wait):  # until its renderer has written it
            log.warning("read-ahead: a page still being rendered after %.0f s; rendered again", wait)
            return None, 0.0
        size = os.fstat(fd).st_size
        try:
            meta = json.loads(file.readline(4096))
            length, tail = meta["length"], meta["tail"]
            if not isinstance(length, int) or not 0 <= length <= size:
                return None, 0.0
            if tail is not None:  # [bytes of the body compressed, their compressed length]
                kept, deflated = (int(n) for n in tail)
                if not (0 <= kept <= length and 0 <= deflated <= size):
                    return None, 0.0
            body = file.read(length)
            if len(body) != length:
                return None, 0.0
            if tail is not None:
                data = file.read(deflated)
                if len(data) != deflated:
                    return None, 0.0
                tail = Tail(kept, data)
            if file.read(1):  # more than it says: not a page we wrote
                return None, 0.0
            page = Rendered(body, str(meta["etag"]), bool(meta["cacheable"]),
                            None if meta["next"] is None else str(meta["next"]),
                            datetime.fromisoformat(meta["began"]), tail)
            return page, float(meta["made"])
        except (ValueError, TypeError, KeyError):
            return None, 0.0


def _shared_lock(file: BinaryIO, wait: float) -> bool:
    """Whether a shared lock on `file` was had within `wait` seconds. flock has no timeout, and polling
    it would wake late: a thread blocks in it instead, on a duplicate of the descriptor (a lock belongs to
    the open file, so what it takes is ours too), and closes it when it gets the lock, however late."""
    try:
        fcntl.flock(file, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        pass
    locked = threading.Event()
    fd = os.dup(file.fileno())

    def block() -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            locked.set()
        finally:
            os.close(fd)

    try:
        threading.Thread(target=block, name="lookahead-wait", daemon=True).start()
    except RuntimeError:  # no thread to be had: rendered again
        os.close(fd)
        return False
    return locked.wait(wait)


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
