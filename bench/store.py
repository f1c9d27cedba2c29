"""Bench-only store setup: throwaway SQLite files and PostgreSQL databases, and the corpus loader.

The loader writes through oai.store.records.upsert_records with explicit `now=` datestamps from the
corpus manifest (so datestamps spread over years, as in a long-lived repository); product code is untouched.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

from sqlalchemy import Engine

from bench.corpus import Entry, read_info, read_manifest

PG_ADMIN = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TX_RECORDS = 500  # records per write transaction (the loader's batch size)


@dataclass(frozen=True)
class Store:
    """A database the bench owns: its kind ('sqlite' or 'postgresql') and SQLAlchemy URL."""

    kind: str
    url: str
    name: str

    def env(self) -> dict[str, str]:
        return {"OAI_DATABASE_URL": self.url}


def _pg(dbname: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + dbname


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql)


def store(kind: str, work: Path, name: str) -> Store:
    """Where a bench store named `name` lives (nothing is created)."""
    if kind == "sqlite":
        return Store(kind, f"sqlite:///{work / (name + '.sqlite3')}", name)
    if kind == "postgresql":
        return Store(kind, _pg(f"oai_bench_{name}"), f"oai_bench_{name}")
    raise ValueError(f"unknown database kind {kind!r}")


def drop(s: Store) -> None:
    """Remove a bench store (file or database) if it exists."""
    if s.kind == "sqlite":
        path = Path(s.url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    else:
        _pg_admin(f'DROP DATABASE IF EXISTS "{s.name}" WITH (FORCE)')


def create(s: Store) -> Store:
    """A fresh, empty store with the current schema."""
    drop(s)
    if s.kind == "postgresql":
        _pg_admin(f'CREATE DATABASE "{s.name}"')
    upgrade(s)
    return s


def upgrade(s: Store) -> None:
    """Bring a store (new or kept from an earlier run) to the current schema; nothing to do when it is current."""
    from oai.store.engine import make_engine, upgrade as upgrade_schema

    engine = make_engine(s.url)
    try:
        upgrade_schema(engine)
    finally:
        engine.dispose()


def exists(s: Store) -> bool:
    if s.kind == "sqlite":
        return Path(s.url.removeprefix("sqlite:///")).exists()
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (s.name,)).fetchone() is not None


def count_records(s: Store) -> int:
    from sqlalchemy import func, select

    from oai.store.engine import make_engine
    from oai.store.models import Record

    engine = make_engine(s.url, writer=False)
    try:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(Record)).scalar_one()
    finally:
        engine.dispose()


def _ingest(paths: list[str]) -> list:  # runs in a worker process
    from oai.formats.registry import ingest_document

    return [ingest_document(Path(path).read_bytes(), source=path) for path in paths]


def _ingested(paths: list[str], jobs: int) -> Iterator:
    """ingest_document of each path, in order, with a bounded number of chunks in flight (memory stays flat)."""
    from collections import deque

    from oai.formats.registry import preload

    preload()  # compiled once, inherited by the forked workers
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        pending: deque = deque()
        for i in range(0, len(paths), 64):
            pending.append(pool.submit(_ingest, paths[i : i + 64]))
            if len(pending) >= 4 * jobs:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()


def _records(root: Path, entries: Sequence[Entry], repository_identifier: str, jobs: int) -> Iterator[tuple[Entry, object]]:
    """(entry, RecordIn) in manifest order, parsed and crosswalked on `jobs` processes."""
    import json

    from oai.loader import DEFAULT_TEMPLATE, make_identifier
    from oai.store.records import RecordIn

    paths = [str(root / e.path) for e in entries]
    for entry, ingested in zip(entries, _ingested(paths, jobs), strict=True):
        ident = make_identifier(DEFAULT_TEMPLATE, repository_identifier=repository_identifier,
                                name=entry.path, doi=ingested.citation.doi)
        citation = json.dumps(vars(ingested.citation), ensure_ascii=False, sort_keys=True)
        yield entry, RecordIn(identifier=ident, metadata=ingested.metadata, sets=entry.sets, citation=citation)


def load_corpus(root: Path, stores: Sequence[Store], *, repository_identifier: str = "example.org",
                jobs: int | None = None, progress: bool = True) -> dict:
    """Load the corpus into every store with the manifest's datestamps, then apply its deletions."""
    from oai.store.engine import make_engine, transaction
    from oai.store.records import delete_record, set_info, upsert_records
    from oai.store.statistics import GrowthAnalyzer, analyze

    info = read_info(root)
    entries = list(read_manifest(root))
    engines: list[Engine] = [make_engine(s.url) for s in stores]
    started = time.perf_counter()
    try:
        for engine in engines:
            with transaction(engine) as session:
                for spec, name in sorted(info["sets"].items()):
                    set_info(session, spec, name)
        pending: list[tuple[Entry, object]] = []
        growth = [GrowthAnalyzer(engine) for engine in engines]

        def flush() -> None:
            for engine, grown in zip(engines, growth, strict=True):
                with transaction(engine) as session:
                    for stamp, group in groupby(pending, key=lambda p: p[0].datestamp):
                        upsert_records(session, [r for _, r in group], now=stamp)
                grown.wrote(len(pending))
            pending.clear()

        idents: dict[str, str] = {}
        for n, (entry, record) in enumerate(_records(root, entries, repository_identifier, jobs or min(2, os.cpu_count() or 1)), 1):
            idents[entry.path] = record.identifier
            pending.append((entry, record))
            if len(pending) >= TX_RECORDS:
                flush()
            if progress and n % 5000 == 0:
                rate = n / (time.perf_counter() - started)
                print(f"  loaded {n}/{len(entries)} ({rate:.0f} records/s)", flush=True)
        flush()
        deletions = sorted((e.deleted, idents[e.path]) for e in entries if e.deleted is not None)
        for engine in engines:
            for i in range(0, len(deletions), TX_RECORDS):
                with transaction(engine) as session:
                    for when, ident in deletions[i : i + TX_RECORDS]:
                        delete_record(session, ident, now=when)
            analyze(engine, vacuum=True)  # what autovacuum would do; the keyset page plans need it
    finally:
        for engine in engines:
            engine.dispose()
    return {"records": len(entries), "deleted": len(deletions), "seconds": time.perf_counter() - started}

