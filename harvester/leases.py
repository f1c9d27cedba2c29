"""Leases on sources, so that no source is ever harvested by two processes at once.

A lease is (lease_owner, lease_expires) on the source row, taken under a row lock (PostgreSQL:
SELECT ... FOR UPDATE [SKIP LOCKED]; SQLite: the BEGIN IMMEDIATE writer lock), renewed while the
harvest runs and checked again in every page's transaction. A dead holder's lease expires.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import logging
import os
import secrets
import socket
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, bindparam, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from harvester.dates import utcnow
from harvester.errors import HarvestError, LeaseLost, LeaseTaken
from oai.store.engine import is_sqlite, transaction
from oai.store.models import Source

LEASE_SECONDS = 300.0
MIN_LEASE_SECONDS = 10.0  # renewed every third of it: shorter would spin, and lapse at the first slow write
log = logging.getLogger("harvester.leases")


@functools.cache
def this_host() -> str:
    """This machine and process namespace, as a lease owner names it: the host name, and a digest of the boot's id
    and the PID namespace. The host name alone was not enough (an outside audit): two containers sharing one
    (or two cloned machines) each took the other's live holders for dead, their pids not being its own."""
    try:
        scope = Path("/proc/sys/kernel/random/boot_id").read_text().strip() + "|" + os.readlink("/proc/self/ns/pid")
    except OSError:  # not Linux's /proc: the host name alone, as before
        return socket.gethostname()
    return f"{socket.gethostname()}@{hashlib.sha256(scope.encode()).hexdigest()[:6]}"


def owner_id() -> str:
    """host@scope:pid:nonce, unique per lease holder; host, scope and pid let a local dead holder be recognised."""
    return f"{this_host()}:{os.getpid()}:{secrets.token_hex(3)}"


def holder_gone(owner: str) -> bool:
    """True when `owner` was a process of this machine and PID namespace that no longer exists."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != this_host() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def lease_free(owner: str | None, expires: datetime | None, now: datetime) -> bool:
    return owner is None or expires is None or expires <= now or holder_gone(owner)


def take(engine: Engine, source_id: int, owner: str, seconds: float = LEASE_SECONDS) -> None:
    """Take the source's lease; raises LeaseTaken naming the holder."""
    now = utcnow()
    with transaction(engine) as session:
        row = session.execute(select(Source.name, Source.lease_owner, Source.lease_expires)
                              .where(Source.id == source_id).with_for_update()).one_or_none()
        if row is None:
            raise HarvestError("the source no longer exists")
        if not lease_free(row.lease_owner, row.lease_expires, now):
            # (as `source edit` and `source remove` say it: an outside audit found "lease until" alone unhelpful)
            raise LeaseTaken(f"the source {row.name!r} is being harvested by {row.lease_owner}; if that process is "
                             f"gone, its lease lapses at {row.lease_expires:%Y-%m-%d %H:%M:%S} UTC")
        session.execute(update(Source).where(Source.id == source_id).values(
            lease_owner=owner, lease_expires=now + timedelta(seconds=seconds)))


def claim_due(engine: Engine, owner_prefix: str, limit: int, seconds: float = LEASE_SECONDS,
              exclude: set[str] | frozenset[str] = frozenset()) -> list[tuple[int, str, str]]:
    """Lease up to `limit` due sources (skipping `exclude`); returns (id, name, lease owner) for each."""
    now = utcnow()
    if limit <= 0:
        return []
    stmt = select(Source.id, Source.name, Source.lease_owner, Source.lease_expires).where(Source.enabled.is_(True))
    stmt = stmt.where(Source.next_due.is_not(None), Source.next_due <= now)
    if exclude:
        stmt = stmt.where(Source.name.not_in(sorted(exclude)))
    stmt = stmt.order_by(Source.next_due.asc().nulls_first(), Source.id).with_for_update(skip_locked=True)
    claimed = []
    with transaction(engine) as session:
        for row in session.execute(stmt).all():
            if len(claimed) >= limit:
                break
            if not lease_free(row.lease_owner, row.lease_expires, now):
                continue
            owner = f"{owner_prefix}:{secrets.token_hex(3)}"
            session.execute(update(Source).where(Source.id == row.id).values(
                lease_owner=owner, lease_expires=now + timedelta(seconds=seconds)))
            claimed.append((row.id, row.name, owner))
    return claimed


_SOURCE = Source.__table__
# A plain statement, built once: the ORM's bulk-update path cost more than the page's own work, and building
# the statement each page cost as much as running it.
_RENEW = (update(_SOURCE).where(_SOURCE.c.id == bindparam("source_id"), _SOURCE.c.lease_owner == bindparam("owner"))
          .values(lease_expires=bindparam("expires")))


def renew_in(session: Session, source_id: int, owner: str, seconds: float, now: datetime) -> None:
    """Extend our lease inside the caller's transaction; raises LeaseLost if it is no longer ours."""
    result = session.connection().execute(_RENEW, {"source_id": source_id, "owner": owner,
                                                   "expires": now + timedelta(seconds=seconds)})
    if result.rowcount != 1:
        raise LeaseLost("our lease on the source had expired and was taken (another harvest took over, or the "
                        "source was moved or removed meanwhile); stopping")


def release(engine: Engine, source_id: int, owner: str) -> None:
    with transaction(engine) as session:
        session.execute(update(Source).where(Source.id == source_id, Source.lease_owner == owner)
                        .values(lease_owner=None, lease_expires=None))


class Lease:
    """Holds a source's lease for a `with` block, renewing it from a thread every third of its term."""

    def __init__(self, engine: Engine, source_id: int, owner: str, seconds: float = LEASE_SECONDS,
                 *, taken: bool = False) -> None:
        self.engine, self.source_id, self.owner, self.seconds = engine, source_id, owner, seconds
        self.taken = taken
        self.lost = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Lease:
        if not self.taken:
            take(self.engine, self.source_id, self.owner, self.seconds)
        self._thread = threading.Thread(target=self._renew, name=f"lease-{self.source_id}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(10)
        if not self.lost.is_set():
            try:
                release(self.engine, self.source_id, self.owner)
            except Exception as err:  # noqa: BLE001 - the lease then simply expires
                log.warning("lease not released", extra={"fields": {"event": "lease", "error": str(err)}})

    def _renew(self) -> None:
        while not self._done.wait(self.seconds / 3):
            try:
                with transaction(self.engine) as session:
                    renew_in(session, self.source_id, self.owner, self.seconds, utcnow())
            except LeaseLost:
                self.lost.set()
                return
            except Exception as err:  # noqa: BLE001 - a hiccup: the next tick retries
                log.warning("lease renewal failed", extra={"fields": {"event": "lease", "error": str(err)}})


@contextlib.contextmanager
def single_worker(engine: Engine) -> Iterator[None]:
    """On SQLite, one `oai harvest worker` per database (a file lock); elsewhere nothing to do."""
    if not is_sqlite(engine):
        yield
        return
    database = make_url(engine.url).database
    if not database or database == ":memory:":
        yield
        return
    path = Path(f"{database}.harvest-worker.lock")
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise LeaseTaken(
                f"a harvest worker ({holder}) already runs on the SQLite database {database}. On SQLite one "
                "worker is enough: it harvests several sources at once (--jobs N). Use PostgreSQL to run "
                "workers on several machines.") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{socket.gethostname()} pid {os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
