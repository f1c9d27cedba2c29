"""One harvest in its own process, so that its peak RSS is its own: a plain sickle loop, or our harvester.

`python -m bench.harvest_child sickle URL PREFIX` or `... ours URL PREFIX DATABASE_URL`; prints one JSON line
{records, seconds, client_cpu_s, peak_rss_mb, workers_rss_mb, workers_cpu_s, helpers_rss_mb, end_pss_mb, ok, note};
the workers_ fields sum the harvester's worker processes (0 for the sickle loop), so that CPU per record can be
compared; helpers_rss_mb the other processes it starts (the workers' fork server, the resource tracker);
end_pss_mb the proportional set size of all of them together at the run's end (shared pages counted once).
"""

from __future__ import annotations

import json
import os
import sys
import time

from bench.servers import cpu_seconds, vm_hwm_kb


def sickle_loop(url: str, prefix: str) -> tuple[int, str]:
    """Iterate every record of the list with sickle and do nothing with it."""
    from sickle import Sickle

    n = 0
    for _record in Sickle(url, timeout=300).ListRecords(metadataPrefix=prefix):
        n += 1
    return n, ""


def our_harvester(url: str, prefix: str, database_url: str) -> tuple[int, str]:
    """Our harvester, harvesting `url` into the store at `database_url`.

    HOOK: this is the one place that knows the harvester's API (harvester.sources.add_source and
    harvester.runs.harvest_source, politeness delay 0 on loopback). If that API changes, adapt here only.
    """
    os.environ["OAI_HARVEST_DELAY"] = "0"
    try:
        from harvester.client import FetchPolicy
        from harvester.runs import RunOptions, harvest_source
        from harvester.sources import add_source
    except ImportError as exc:  # TODO(bench): the harvester is not importable yet
        raise NotImplementedError(f"harvester not available: {exc}") from None
    from oai.store.engine import make_engine

    engine = make_engine(database_url)
    policy = FetchPolicy(delay=0.0)
    add_source(engine, "bench", url, prefix=prefix, every_seconds=None, policy=policy)
    summary = harvest_source(engine, "bench", RunOptions(full=True, policy=policy))
    engine.dispose()
    _WORKERS[:] = _workers_usage()
    note = "" if summary.status == "complete" else f"run {summary.status}: {summary.error}"
    return summary.seen, note


# peak RSS (KiB), CPU seconds of the workers; peak RSS (KiB) of the other helper processes; PSS (KiB) of them all
# together, the harvesting process included, at the run's end
_WORKERS = [0, 0.0, 0, 0]


def _workers_usage() -> list:
    """Peak RSS and CPU time of the harvester's canonicalisation workers (processes of their own), summed; and the
    peak RSS of the other processes it started, summed: the fork server the workers are forked from, and
    multiprocessing's resource tracker (an outside audit counted them, where the bench did not)."""
    from harvester import workers

    pool = workers._pool  # noqa: SLF001 - the bench reads what the harvester started
    pids = list(pool._processes) if pool is not None else []  # noqa: SLF001
    helpers = [pid for pid in _descendants(os.getpid()) if pid not in pids]
    return [sum(vm_hwm_kb(pid) for pid in pids), sum(cpu_seconds(pid) for pid in pids),
            sum(vm_hwm_kb(pid) for pid in helpers), sum(_pss_kb(pid) for pid in [os.getpid(), *pids, *helpers])]


def _pss_kb(pid: int) -> int:
    """A process's proportional set size now: its pages, a shared page counted in part in each process that shares
    it (the workers share much of the fork server's), so that a sum over processes is what they take together."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            return next((int(line.split()[1]) for line in f if line.startswith("Pss:")), 0)
    except OSError:
        return 0


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` (its children, theirs, ...), from /proc."""
    from pathlib import Path

    found, todo = [], [pid]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            found += children
            todo += children
    return found


def _import(mode: str) -> None:
    """Import the client's modules before the clock starts: records/s and CPU are the harvest's, not the
    interpreter's start-up (importing our harvester takes about 0.3 s, sickle 0.07 s; at 20,000 records that
    was 5% of our run)."""
    import importlib

    names = ["sickle"] if mode == "sickle" else ["harvester.runs", "harvester.sources", "harvester.client",
                                                 "oai.store.engine"]
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # reported by the run itself


def main(argv: list[str]) -> None:
    mode, url, prefix = argv[:3]
    _import(mode)
    cpu = time.process_time()
    t = time.perf_counter()
    try:
        if mode == "sickle":
            records, note = sickle_loop(url, prefix)
        else:
            records, note = our_harvester(url, prefix, argv[3])
        ok = not note
    except NotImplementedError as exc:
        records, note, ok = 0, str(exc), False
    seconds = time.perf_counter() - t
    print(json.dumps({"records": records, "seconds": seconds, "client_cpu_s": time.process_time() - cpu,
                      "peak_rss_mb": vm_hwm_kb(os.getpid()) / 1024,
                      "workers_rss_mb": _WORKERS[0] / 1024, "workers_cpu_s": _WORKERS[1],
                      "helpers_rss_mb": _WORKERS[2] / 1024, "end_pss_mb": _WORKERS[3] / 1024,
                      "ok": ok, "note": note}))


if __name__ == "__main__":
    main(sys.argv[1:])
