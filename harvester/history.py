"""What happened: the run history and the quarantine, read for `oai harvest runs` and `oai harvest quarantine`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from harvester.dates import utcnow
from harvester.errors import SourceError
from harvester.leases import holder_gone
from harvester.sources import get_source
from oai.store.engine import transaction
from oai.store.models import HarvestRun, Quarantine, Source


@dataclass(frozen=True)
class RunRow:
    id: int
    source: str
    started: datetime
    ended: datetime | None
    status: str
    full: bool
    from_date: str | None
    pages: int
    seen: int
    new: int
    updated: int
    deleted: int
    quarantined: int
    complete_list_size: int | None
    error: str | None
    warnings: tuple[str, ...]
    worker: str | None


@dataclass(frozen=True)
class QuarantineRow:
    id: int
    source: str | None
    run_id: int | None
    upstream_identifier: str | None
    reason: str
    size: int
    created: datetime


CHECK_UNFINISHED = ("deletion check not finished (stopped, or its process ended): the next complete run of this "
                    "source does it")


def list_runs(engine: Engine, name: str | None = None, limit: int = 20) -> list[RunRow]:
    """The latest runs, newest first (of one source, or of all). The run that owes its source's deletion check is
    "checking" while its process holds the source (the list is complete, and so marked, before the check begins),
    and says the check is unfinished once it does not (an outside audit: "complete", for good)."""
    with transaction(engine) as s:
        stmt = (select(HarvestRun, Source.name, Source.lease_expires, Source.lease_owner, Source.deletion_check_owed_by)
                .join(Source, Source.id == HarvestRun.source_id).order_by(HarvestRun.id.desc()).limit(limit))
        if name is not None:
            stmt = stmt.where(HarvestRun.source_id == get_source(s, name).id)
        now = utcnow()
        rows = []
        for r, n, expires, owner, owed_by in s.execute(stmt).all():
            status, warnings = run_status(r.status, expires, now, owner), tuple((r.warnings or "").splitlines())
            if owed_by == r.id:
                if check_under_way(r.worker, owner, expires, now):
                    status = "checking"
                elif not any(w.startswith("deletion check not finished") for w in warnings):
                    warnings += (CHECK_UNFINISHED,)
            rows.append(RunRow(r.id, n, r.started, r.ended, status, r.full, r.from_date, r.pages, r.seen, r.new,
                               r.updated, r.deleted, r.quarantined, r.complete_list_size, r.error, warnings, r.worker))
        return rows


def check_under_way(worker: str | None, lease_owner: str | None, lease_expires: datetime | None,
                    now: datetime) -> bool:
    """Whether the process that ran the run owing its source's deletion check (`worker`) still holds the source:
    its check is under way."""
    return worker is not None and worker == lease_owner and run_status("running", lease_expires, now, lease_owner) == \
        "running"


def run_status(status: str, lease_expires: datetime | None, now: datetime, lease_owner: str | None = None) -> str:
    """A run still marked running whose lease has lapsed, or whose lease holder was a process of this machine
    that is gone (killed), was cut off."""
    if status == "running" and (lease_expires is None or lease_expires < now
                                or (lease_owner is not None and holder_gone(lease_owner))):
        return "stalled"  # the next run of the source resumes it from its checkpoint
    return status


def list_quarantine(engine: Engine, name: str | None = None, limit: int = 100) -> list[QuarantineRow]:
    """Quarantined records, newest first."""
    with transaction(engine) as s:
        stmt = (select(Quarantine.id, Source.name, Quarantine.run_id, Quarantine.upstream_identifier,
                       Quarantine.reason, Quarantine.raw, Quarantine.created)
                .outerjoin(Source, Source.id == Quarantine.source_id)
                .order_by(Quarantine.id.desc()).limit(limit))
        if name is not None:
            stmt = stmt.where(Quarantine.source_id == get_source(s, name).id)
        return [QuarantineRow(r.id, r.name, r.run_id, r.upstream_identifier, r.reason, len(r.raw), r.created)
                for r in s.execute(stmt).all()]


def quarantined_bytes(engine: Engine, entry: int) -> bytes:
    """The raw bytes of one quarantined record; raises SourceError if there is no such entry."""
    with transaction(engine) as s:
        raw = s.scalar(select(Quarantine.raw).where(Quarantine.id == entry))
    if raw is None:
        raise SourceError(f"there is no quarantine entry {entry}")
    return raw
