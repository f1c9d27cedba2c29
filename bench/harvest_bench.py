"""Records/s harvesting our own server on loopback: our harvester vs a plain sickle loop (issue 4).

    .venv/bin/python -m bench.harvest_bench [--records 3000] [--repeat 3] [--postgres URL]

Builds a SQLite store of N oai_dc records, serves it with `oai serve` in its own process on 127.0.0.1,
then times (a) sickle iterating every record and doing nothing, (b) our harvester doing a full harvest
into a fresh SQLite store (and PostgreSQL if --postgres or OAI_TEST_DATABASE_URL is given).
Not collected by pytest.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from oai.formats.dc import build_dc
from oai.formats.safexml import canonical_bytes
from oai.store.engine import database_url, make_engine, transaction, upgrade
from oai.store.records import RecordIn, upsert_records


def fill(url: str, n: int) -> None:
    """N realistic oai_dc records (~1 KB each) with datestamps spread over a year, in sets."""
    engine = make_engine(url)
    upgrade(engine)
    start = datetime(2024, 1, 1)
    for first in range(0, n, 500):
        items = []
        for i in range(first, min(n, first + 500)):
            dc = build_dc([("title", f"Article {i}: data & code <methods> for the study of things", None),
                           ("creator", "Müller, Zoë", None), ("creator", f"Author {i}", None),
                           ("subject", "physics", None), ("subject", "open science", None),
                           ("description", "An abstract of moderate length. " * 12, None),
                           ("publisher", "Example University Press", None), ("date", "2024-05-01", None),
                           ("type", "article", None), ("identifier", f"https://doi.org/10.5555/bench.{i}", None),
                           ("language", "en", None), ("rights", "CC BY 4.0", None)])
            items.append(RecordIn(f"oai:bench.example:{i}", {"oai_dc": canonical_bytes(dc)},
                                  sets=(f"journal:{i % 5}",)))
        with transaction(engine) as s:
            upsert_records(s, items, now=start + timedelta(minutes=first))
    engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(url: str, port: int, page_size: int) -> subprocess.Popen:
    env = {**os.environ, "OAI_PAGE_SIZE": str(page_size), "OAI_REPOSITORY_IDENTIFIER": "bench.example"}
    proc = subprocess.Popen([sys.executable, "-m", "harvester", "--database", url, "serve", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/oai?verb=Identify", timeout=2).read()
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the server did not start")


def sickle_loop(base_url: str) -> int:
    from sickle import Sickle

    n = 0
    for _record in Sickle(base_url, timeout=120).ListRecords(metadataPrefix="oai_dc"):
        n += 1
    return n


def ours(base_url: str, target_url: str) -> int:
    from harvester.client import FetchPolicy
    from harvester.runs import RunOptions, harvest_source
    from harvester.sources import add_source

    engine = make_engine(target_url)
    upgrade(engine)
    policy = FetchPolicy(delay=0.0)
    add_source(engine, "bench", base_url, every_seconds=None, policy=policy)
    summary = harvest_source(engine, "bench", RunOptions(full=True, policy=policy, repository_identifier="example.org"))
    engine.dispose()
    if summary.status != "complete":
        raise RuntimeError(f"harvest {summary.status}: {summary.error}")
    return summary.seen


def timed(fn, *args) -> tuple[int, float]:  # noqa: ANN001
    t = time.perf_counter()
    n = fn(*args)
    return n, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--page-size", type=int, default=100)
    ap.add_argument("--postgres", default=os.environ.get("OAI_TEST_DATABASE_URL"),
                    help="admin URL of a PostgreSQL server for a throwaway target database")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="harvest-bench-"))
    import logging

    logging.getLogger("harvester").setLevel(logging.WARNING)
    upstream = f"sqlite:///{work / 'upstream.sqlite3'}"
    fill(upstream, args.records)
    port = free_port()
    server = serve(upstream, port, args.page_size)
    base = f"http://127.0.0.1:{port}/oai"
    pg_admin = pg_db = None
    try:
        results: dict[str, list[float]] = {"sickle loop (iterate only)": [], "ours -> SQLite": []}
        if args.postgres:
            results["ours -> PostgreSQL"] = []
            pg_admin = create_engine(database_url(args.postgres), isolation_level="AUTOCOMMIT")
        for r in range(args.repeat):
            n, secs = timed(sickle_loop, base)
            assert n == args.records, n
            results["sickle loop (iterate only)"].append(n / secs)
            n, secs = timed(ours, base, f"sqlite:///{work / f'target{r}.sqlite3'}")
            assert n == args.records, n
            results["ours -> SQLite"].append(n / secs)
            if pg_admin is not None:
                pg_db = f"harvest_bench_{uuid.uuid4().hex[:8]}"
                with pg_admin.connect() as c:
                    c.execute(text(f'CREATE DATABASE "{pg_db}"'))
                url = make_url(database_url(args.postgres)).set(database=pg_db).render_as_string(hide_password=False)
                n, secs = timed(ours, base, url)
                results["ours -> PostgreSQL"].append(n / secs)
                with pg_admin.connect() as c:
                    c.execute(text(f'DROP DATABASE "{pg_db}" WITH (FORCE)'))
                pg_db = None
        base_rate = statistics.median(results["sickle loop (iterate only)"])
        print(f"{args.records} oai_dc records, page size {args.page_size}, {args.repeat} runs each (median)")
        for name, rates in results.items():
            med = statistics.median(rates)
            print(f"  {name:28} {med:8.0f} records/s   ratio to sickle {med / base_rate:5.2f}")
    finally:
        server.terminate()
        server.wait(10)
        if pg_admin is not None:
            if pg_db:
                with pg_admin.connect() as c:
                    c.execute(text(f'DROP DATABASE IF EXISTS "{pg_db}" WITH (FORCE)'))
            pg_admin.dispose()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
