"""Benchmark entry point (issue 5): `python bench/run.py [load serve concurrent static harvest | all | clean]`.

Builds the corpus and the stores it needs under --work, prints a table per sub-benchmark and writes
bench/out/<name>.json. Reports medians and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import atexit
import os
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import corpus, servers, suites  # noqa: E402
from bench import store as S  # noqa: E402
from bench.report import median, table, write  # noqa: E402

BENCHES = ("load", "serve", "concurrent", "static", "harvest", "depth", "memory")
KINDS = ("sqlite", "postgresql")


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def bench_load(work: Path, kinds: list[str], counts: list[int], repeat: int) -> list[dict]:
    """`oai load DIR` into a fresh store (as a user runs it): records/s and CPU ms per record."""
    rows = []
    for count in counts:
        root = corpus.ensure(work / f"corpus-{count}", count)
        runs: dict[str, list[dict]] = {k: [] for k in kinds}
        for rep in range(repeat):
            for kind in kinds if rep % 2 == 0 else list(reversed(kinds)):
                st = S.create(S.store(kind, work, f"load_{count}"))
                try:
                    cpu, t = _children_cpu(), time.perf_counter()
                    proc = subprocess.run([str(servers.BIN / "oai"), "load", str(root)], env={**os.environ, **st.env()},
                                          cwd=work, capture_output=True, text=True, timeout=8 * 3600)
                    wall, cpu = time.perf_counter() - t, _children_cpu() - cpu
                finally:
                    S.drop(st)
                m = re.search(r"loaded (\d+), updated (\d+), unchanged (\d+), failed (\d+)", proc.stdout)
                loaded = int(m.group(1)) if m else 0
                runs[kind].append({"loaded": loaded, "failed": int(m.group(4)) if m else None, "seconds": wall,
                                   "records_s": loaded / wall, "cpu_ms_record": 1000 * cpu / max(1, loaded)})
                print(f"  load {count} {kind} run {rep + 1}: {loaded} in {wall:.0f}s ({loaded / wall:.0f}/s)", flush=True)
        for kind, rs in runs.items():
            rows.append({"db": kind, "records": count, "runs": len(rs), "failed": rs[0]["failed"],
                         **{k: median(r[k] for r in rs) for k in ("seconds", "records_s", "cpu_ms_record")}})
    t = table(f"load (`oai load DIR`, fresh store, median of {repeat})", rows,
              ["db", "records", "seconds", "records_s", "cpu_ms_record", "failed", "runs"])
    write("load", {"counts": counts, "repeat": repeat}, rows, [t])
    return rows


def serve_stores(work: Path, kinds: list[str], count: int, fresh: bool) -> dict[str, S.Store]:
    """The stores the serve benchmarks read: the corpus loaded with its spread datestamps (reused if present)."""
    stores = {k: S.store(k, work, f"serve_{count}") for k in kinds}
    missing = [s for s in stores.values() if fresh or not S.exists(s) or _records(s) != count]
    if missing:
        root = corpus.ensure(work / f"corpus-{count}", count)
        print(f"loading {count} records into {', '.join(s.kind for s in missing)} (bench loader) ...", flush=True)
        S.load_corpus(root, [S.create(s) for s in missing])
    for s in stores.values():
        if s not in missing:
            S.upgrade(s)  # a store kept from an earlier run gets the schema the server needs
    return stores


def _records(s: S.Store) -> int:
    try:
        return S.count_records(s)
    except Exception:  # noqa: BLE001 - a half-made store is simply rebuilt
        return -1


def clean(work: Path) -> None:
    """Drop every bench store (SQLite files under --work, oai_bench_* databases)."""
    import psycopg

    for f in work.glob("*.sqlite3*"):
        f.unlink()
    try:
        with psycopg.connect(S.PG_ADMIN, autocommit=True) as conn:
            names = [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'oai_bench_%'")]
            for name in names:
                conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
                print(f"dropped database {name}")
    except psycopg.OperationalError as exc:
        print(f"PostgreSQL not reachable ({exc}); nothing dropped there")


def _on_signal(signum: int, _frame: object) -> None:
    servers.stop_all()
    sys.exit(128 + signum)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("benches", nargs="*", default=["all"], help=f"any of {', '.join(BENCHES)}, all (all but depth and memory), clean")
    ap.add_argument("--count", type=int, default=20000, help="records in the serve/harvest store (default 20000)")
    ap.add_argument("--load-counts", default=None, help="comma-separated corpus sizes for `load` (default: --count)")
    ap.add_argument("--million", action="store_true", help="the 1M runs: --count 1000000 --load-counts 100000,1000000")
    ap.add_argument("--db", default=",".join(KINDS), help="sqlite,postgresql (default both)")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved runs per measurement (median reported)")
    ap.add_argument("--load-repeat", type=int, default=1, help="runs per `oai load` measurement (default 1)")
    ap.add_argument("--prefixes", default="oai_dc,jats")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--duration", type=float, default=15.0, help="seconds per concurrent run")
    ap.add_argument("--servers", default="ours,pyoai", help="servers `depth` measures (pyoai's OFFSET walk is slow at 100k+)")
    ap.add_argument("--work", type=Path, default=Path(os.environ.get("BENCH_WORK", "/tmp/oai-bench")))
    ap.add_argument("--fresh", action="store_true", help="rebuild the serve stores even if present")
    args = ap.parse_args(argv)
    if args.million:
        args.count, args.load_counts = 1_000_000, args.load_counts or "100000,1000000"
    benches = [b for b in BENCHES if b not in ("depth", "memory")] if "all" in args.benches else args.benches
    unknown = set(benches) - set(BENCHES) - {"clean"}
    if unknown:
        ap.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    args.work.mkdir(parents=True, exist_ok=True)
    if "clean" in benches:
        clean(args.work)
        return
    kinds = [k for k in args.db.split(",") if k]
    atexit.register(servers.stop_all)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    if "load" in benches:
        counts = [int(c) for c in (args.load_counts or str(args.count)).split(",")]
        bench_load(args.work, kinds, counts, args.load_repeat)
    rest = [b for b in benches if b != "load"]
    if rest:
        ctx = suites.Ctx(args.work, args.count, args.repeat, tuple(args.prefixes.split(",")), args.clients, args.duration,
                          servers=tuple(args.servers.split(",")))
        stores = serve_stores(args.work, kinds, args.count, args.fresh)
        for name in rest:
            print(f"== {name} ==", flush=True)
            getattr(suites, name)(ctx, stores)


if __name__ == "__main__":
    main()
