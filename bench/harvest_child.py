"""One harvest in its own process, so that its peak RSS is its own: a plain sickle loop, or our harvester.

`python -m bench.harvest_child sickle URL PREFIX` or `... ours URL PREFIX DATABASE_URL`; prints one JSON line
{records, seconds, client_cpu_s, peak_rss_mb, workers_rss_mb, workers_cpu_s, ok, note}; the workers_ fields sum
the harvester's worker processes (0 for the sickle loop), so that CPU per record can be compared.
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


_WORKERS = [0, 0.0]  # peak RSS (KiB), CPU seconds


def _workers_usage() -> list:
    """Peak RSS and CPU time of the harvester's canonicalisation workers (processes of their own), summed."""
    from harvester import workers

    pool = workers._pool  # noqa: SLF001 - the bench reads what the harvester started
    pids = list(pool._processes) if pool is not None else []  # noqa: SLF001
    return [sum(vm_hwm_kb(pid) for pid in pids), sum(cpu_seconds(pid) for pid in pids)]


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
                      "ok": ok, "note": note}))


if __name__ == "__main__":
    main(sys.argv[1:])
