"""When sources are due, and the loops that harvest them: `oai harvest --all` and `oai harvest worker`.

Each of the N slots claims one due source at a time through a lease (leases.py) and harvests it
(runs.py); a shared stop event ends everything at the next page boundary.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine

from harvester import leases, workers
from harvester.errors import HarvestError
from harvester.runs import ProgressCallback, RunOptions, RunSummary, harvest_source
from oai.store.engine import SchemaError, check_not_newer, current_revision, database_unavailable, error_reason, \
    head_revision

log = logging.getLogger("harvester.schedule")
_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+)\s*([wdhms])")
NEVER = ("never", "manual", "off", "0")


# The longest interval: 99999d overflowed PostgreSQL's integer column (a traceback), and 1000000w a date (an
# outside audit); a source due less often than this is one harvested by hand.
MAX_INTERVAL = 3650 * 86400


def parse_interval(text: str) -> int | None:
    """'1d', '12h', '1d12h', '90m' -> seconds; 'never'/'manual' -> None; raises ValueError."""
    if re.search(r"\dM", text):  # a month? a minute? said rather than guessed
        raise ValueError(f"{text.strip()!r}: write minutes as 'm' (30m); for a month, 4w or 30d")
    text = text.strip().lower()
    if text in NEVER:
        return None
    parts = _PART.findall(text)
    if not parts or "".join(f"{n}{u}" for n, u in parts) != text.replace(" ", ""):
        raise ValueError(f"{text!r} is not an interval: write e.g. 1d, 12h, 30m, 1w or 'never'")
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds < 60:
        raise ValueError("harvesting more often than once a minute is not allowed")
    if seconds > MAX_INTERVAL:
        raise ValueError(f"{text!r} is longer than 3650d (ten years); for a source harvested "
                         "by hand only, 'never'")
    return seconds


def format_interval(seconds: int | None) -> str:
    if not seconds:
        return "never (by hand only)"  # (as `--every never` sets it)
    out = []
    for unit, size in _UNITS.items():
        if seconds >= size:
            out.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(out)


@dataclass(frozen=True)
class SlotResult:
    """What one claimed source ended as: a run summary, or why no run happened."""

    source: str
    summary: RunSummary | None
    error: str | None = None


# A worker with nothing due for this long lets its worker processes go (100-200 MB: two processes with lxml and the
# formats loaded, an outside audit saw them kept through days of idling); the next run starts them again (in about
# a second).
POOL_IDLE_SECONDS = 600.0


def harvest_loop(engine: Engine, *, jobs: int, options: RunOptions, stop: threading.Event,
                 once: bool, poll: float = 30.0, on_progress: ProgressCallback | None = None,
                 on_result: Callable[[SlotResult], None] | None = None) -> list[SlotResult]:
    """Run `jobs` slots; once=True harvests every due source one time and returns, else loops until stop."""
    prefix = leases.owner_id().rsplit(":", 1)[0]
    lock = threading.Lock()
    busy = [0, time.monotonic()]  # slots harvesting now; when the last one ended
    done: set[str] = set()
    results: list[SlotResult] = []
    moved: list[str] = []  # why the schema is no longer this code's, once a slot finds it so
    # This code's schema, read once: read again, it is what the migrations on disk say, which an upgrade in place
    # (the deploy units run from one directory) has already replaced under this process (an outside review).
    head = head_revision()

    def slot() -> None:
        while not stop.is_set():
            with lock:
                exclude = set(done) if once else set()
            if (why := schema_moved(engine, head)) is not None:
                with lock:
                    moved.append(why)
                log.error("schema changed", extra={"fields": {"event": "schema", "error": why}})
                stop.set()
                return
            try:
                claimed = leases.claim_due(engine, prefix, 1, options.lease_seconds, exclude=exclude)
            except Exception as exc:  # noqa: BLE001 - the database may be back at the next poll
                said = error_reason(exc) if database_unavailable(exc) else str(exc)  # (one line: not the driver's)
                log.error("claim failed", extra={"fields": {"event": "claim", "error": said}})
                claimed = []
                if once:
                    return
            if not claimed:
                if once:
                    return
                with lock:  # (held: a slot that claims meanwhile waits to count itself busy, then starts a pool)
                    if busy[0] == 0 and time.monotonic() - busy[1] >= POOL_IDLE_SECONDS:
                        workers.shutdown()  # nothing due for a while: the worker processes' memory back
                stop.wait(poll)
                continue
            _, name, owner = claimed[0]
            with lock:
                done.add(name)
                busy[0] += 1
            try:
                result = SlotResult(name, harvest_source(engine, name, options, owner=owner, lease_taken=True,
                                                         stop=stop, on_progress=on_progress))
            except HarvestError as exc:
                result = SlotResult(name, None, str(exc))
            except Exception as exc:  # noqa: BLE001 - one source's bug must not stop the worker
                if database_unavailable(exc):  # said in one line: a traceback of the driver tells nothing more
                    log.error("database unavailable", extra={"fields": {
                        "event": "crash", "source": name, "error": error_reason(exc)}})
                    result = SlotResult(name, None, f"the database is unavailable: {error_reason(exc)}")
                else:
                    log.exception("harvest crashed", extra={"fields": {"event": "crash", "source": name}})
                    result = SlotResult(name, None, f"internal error: {exc!r}")
            with lock:
                results.append(result)
                busy[0] -= 1
                busy[1] = time.monotonic()
            if on_result is not None:
                on_result(result)
            if result.summary is None and not once:
                stop.wait(poll)  # something is wrong with this source or the database: do not spin

    threads = [threading.Thread(target=slot, name=f"harvest-slot-{i}", daemon=True) for i in range(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():  # join in steps so that the main thread keeps handling signals
            t.join(0.5)
    if moved:
        raise HarvestError(f"stopped: {moved[0]} (the schema changed under this worker; start it again with the code "
                           "that matches)")
    return results


def schema_moved(engine: Engine, head: str | None) -> str | None:
    """Why the store's schema is no longer `head`, this code's (upgraded by newer code on another node, or here,
    while this worker ran), or None. Checked before each claim: a worker on older code went on harvesting into a
    newer schema, where the README says it refuses (an outside audit). An unreachable database is the claim's to
    say."""
    try:
        current = current_revision(engine)
    except Exception:  # noqa: BLE001 - the database may be back at the next poll
        return None
    if current == head:
        return None
    try:
        check_not_newer(engine, current)
    except SchemaError as exc:
        return str(exc)
    return f"the database is at schema revision {current}, this code's is {head}"
