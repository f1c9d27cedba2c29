"""Real harvest processes: killed with SIGKILL mid-run, stopped with SIGTERM, and two workers sharing sources."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from harvest_fixtures import add, descendants, detach_logs, options, running, stored, until
from harvester.runs import harvest_source
from oai.cli import main
from oai.store.engine import transaction
from oai.store.models import HarvestCheckpoint, HarvestRun, Source
from upstream import SyntheticRepository, faults, sample_records
from upstream.fixtures import upstream, upstream_factory  # noqa: F401  (fixtures)

ENV = {"OAI_HARVEST_DELAY": "0", "OAI_HARVEST_BACKOFF": "0.01", "OAI_HARVEST_READ_TIMEOUT": "5",
       "OAI_HARVEST_LEASE_SECONDS": "30", "OAI_REPOSITORY_IDENTIFIER": "example.org"}


class Proc:
    """`python -m harvester ...` (that is `oai ...`) with its stderr collected line by line."""

    def __init__(self, database_url: str, *args: str) -> None:
        # multiprocessing's fork server keeps its socket in a directory of TMPDIR, removed at a clean exit only:
        # a process these tests SIGKILL would leave one in /tmp on every run
        self.tmp = tempfile.mkdtemp(prefix="harvest-proc-")
        env = {**os.environ, **ENV, "TMPDIR": self.tmp}
        self.popen = subprocess.Popen([sys.executable, "-m", "harvester", "--database", database_url, *args],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.popen.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for_line(self, text: str, timeout: float = 20) -> None:
        until(lambda: any(text in line for line in self.lines) or self.popen.poll() is not None, timeout)
        assert any(text in line for line in self.lines), "\n".join(self.lines)

    def finish(self, timeout: float = 20) -> int:
        code = self.popen.wait(timeout)
        self._reader.join(10)
        assert not self._reader.is_alive(), "a process it left behind still holds its stderr open"
        self.popen.stderr.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
        return code

    def descendants(self) -> set[int]:
        """Every live process below this one (its fork server and the workers forked from it)."""
        return descendants(self.popen.pid)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        if not self.popen.stderr.closed:
            self.finish()


def pages_committed(engine) -> int:  # noqa: ANN001
    with transaction(engine) as s:
        return s.scalar(select(HarvestRun.pages).order_by(HarvestRun.id.desc()).limit(1)) or 0


def test_a_harvest_killed_with_sigkill_resumes_and_ends_with_every_record_once(
        engine, database_url, upstream) -> None:  # noqa: ANN001, F811
    upstream.repo.add(*sample_records(40))
    upstream.repo.page_size = 4
    upstream.add_fault(faults.Slow(0.25), verb="ListRecords", times=None)
    add(engine, "up", upstream.base_url)
    proc = Proc(database_url, "harvest", "up")
    try:
        until(lambda: pages_committed(engine) >= 3, 30)
        left = proc.descendants()
        assert len(left) >= 2  # the fork server and at least one canonicalisation worker
    finally:
        proc.kill()  # SIGKILL: no cleanup of any kind
    until(lambda: not any(running(pid) for pid in left), 10)  # they follow it
    with transaction(engine) as s:
        run = s.scalar(select(HarvestRun))
        cp = s.scalar(select(HarvestCheckpoint))
        assert run.status == "running" and cp.resumption_token and cp.run_id == run.id
    held = len(stored(engine, "up"))
    assert held == run.pages * 4 == cp.cursor and held < 40
    from harvester.history import list_runs

    # its lease has not run out yet, but its holder was a process of this machine, and it is gone (an outside
    # audit found it shown as running for the 5 minutes of the lease)
    assert [r.status for r in list_runs(engine)] == ["stalled"]
    shown = CliRunner().invoke(main, ["--database", database_url, "source", "show", "up"]).output
    assert "(lapsed: that harvest stopped without letting go)" in shown and f"#{run.id} stalled" in shown
    with transaction(engine) as s:  # a holder on another machine is believed until its lease runs out
        owner, expires = s.execute(select(Source.lease_owner, Source.lease_expires)).one()
        s.execute(update(Source).values(lease_owner="elsewhere.example:1:abcdef"))
    assert [r.status for r in list_runs(engine)] == ["running"]
    with transaction(engine) as s:
        s.execute(update(Source).values(lease_expires=datetime(2000, 1, 1)))
    assert [r.status for r in list_runs(engine)] == ["stalled"]
    with transaction(engine) as s:
        s.execute(update(Source).values(lease_owner=owner, lease_expires=expires))
    upstream.clear_faults()
    upstream.reset_log()
    assert harvest_source(engine, "up", options()).status == "complete"  # the rerun (in this process)
    first = next(q for q in upstream.requests if q.get("verb") == "ListRecords")
    assert first == {"verb": "ListRecords", "resumptionToken": cp.resumption_token}
    with transaction(engine) as s:
        runs = list(s.scalars(select(HarvestRun)))
        assert [(r.id, r.status, r.new, r.seen, r.pages) for r in runs] == [(run.id, "complete", 40, 40, 10)]
        assert s.scalar(select(HarvestCheckpoint)) is None
    got = stored(engine, "up")
    assert len(got) == 40 and all(not r.deleted for r in got.values())


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_worker_stops_cleanly_on_sigterm_and_sqlite_refuses_a_second_one(engine, database_url, upstream) -> None:  # noqa: ANN001, F811
    upstream.repo.add(*sample_records(40))
    upstream.repo.page_size = 4
    upstream.add_fault(faults.Slow(0.25), verb="ListRecords", times=None)
    add(engine, "up", upstream.base_url)
    worker = Proc(database_url, "harvest", "worker", "--poll", "0.1", "--jobs", "1")
    try:
        worker.wait_for_line("worker started")
        second = CliRunner().invoke(main, ["--database", database_url, "harvest", "worker"], env=ENV)
        detach_logs()
        assert second.exit_code == 1 and "On SQLite one worker is enough" in second.output, second.output
        until(lambda: pages_committed(engine) >= 2, 30)
        worker.popen.send_signal(signal.SIGTERM)
        assert worker.finish(15) == 0, "\n".join(worker.lines)
    finally:
        worker.kill()
    assert any("worker stopped" in line for line in worker.lines)
    with transaction(engine) as s:
        run = s.scalar(select(HarvestRun))
        assert run.status == "interrupted" and 2 <= run.pages < 10, (run.status, run.pages)
        assert s.scalar(select(HarvestCheckpoint)).resumption_token
        assert s.scalar(select(Source.lease_owner)) is None  # released on the way out


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_workers_on_postgresql_never_take_the_same_source(engine, database_url, upstream_factory) -> None:  # noqa: ANN001, F811
    workers = [Proc(database_url, "harvest", "worker", "--poll", "0.1", "--jobs", "2") for _ in range(2)]
    try:
        for w in workers:
            w.wait_for_line("worker started")
        ups = []
        for i in range(4):
            up = upstream_factory(SyntheticRepository(sample_records(12), page_size=4))
            up.add_fault(faults.Slow(0.2), verb="ListRecords", times=None)
            add(engine, f"s{i}", up.base_url)
            ups.append(up)

        def all_complete() -> bool:
            with transaction(engine) as s:
                return s.scalar(select(HarvestRun.id).where(HarvestRun.status == "complete")
                                .order_by(HarvestRun.id.desc()).offset(3).limit(1)) is not None
        until(all_complete, 40)
        for w in workers:
            w.popen.send_signal(signal.SIGTERM)
        assert [w.finish(15) for w in workers] == [0, 0]
    finally:
        for w in workers:
            w.kill()
    with transaction(engine) as s:
        runs = list(s.scalars(select(HarvestRun)))
    assert sorted(r.source_id for r in runs) == sorted({r.source_id for r in runs})  # one run per source
    assert all(r.status == "complete" and r.new == 12 for r in runs) and len(runs) == 4
    pids = {r.worker.split(":")[1] for r in runs}
    assert pids <= {str(w.popen.pid) for w in workers}
    for up in ups:  # each list was walked once: one first-page request per upstream
        assert sum(1 for q in up.requests if q.get("verb") == "ListRecords" and "metadataPrefix" in q) == 1


def test_a_worker_stops_when_newer_code_upgrades_the_schema_under_it(engine, database_url) -> None:  # noqa: ANN001
    """An outside audit of a rolling upgrade: a worker on older code went on harvesting into the newer schema, where
    the README says it refuses. It looks before each claim, says why and exits 1 (systemd starts the new code)."""
    from sqlalchemy import text

    from oai.store.engine import head_revision

    worker = Proc(database_url, "harvest", "worker", "--poll", "0.1", "--jobs", "2")
    try:
        worker.wait_for_line("worker started")
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
        try:
            assert worker.finish(30) == 1, "\n".join(worker.lines)
        finally:
            with engine.begin() as conn:
                conn.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": head_revision()})
    finally:
        worker.kill()
    said = "\n".join(worker.lines)
    assert "is at schema revision 9999, newer than this code knows" in said and "start it again with the code" in said
    assert "Traceback" not in said


def test_a_worker_keeps_the_schema_of_its_code_when_an_upgrade_in_place_brings_new_migrations(
        engine, monkeypatch, tmp_path) -> None:  # noqa: ANN001
    """An outside review: the worker read the migrations on disk before each claim, and an upgrade in place (the
    deploy units run from one directory) had replaced them, so the old code took the new schema for its own. Here
    the new code's next migration is put on disk (a copy of the migrations, with it), then the store upgraded to it:
    the worker says the store is at that one and its code's is the one before (read again from disk, it said the
    reverse first)."""
    from sqlalchemy import text

    from harvester import schedule
    from harvester.errors import HarvestError
    from oai.store import engine as store_engine

    ours = store_engine.head_revision()
    following = f"{int(ours) + 1:04d}"
    stop, failure = threading.Event(), []

    def loop() -> None:
        try:
            schedule.harvest_loop(engine, jobs=1, options=options(), stop=stop, once=False, poll=0.05)
        except HarvestError as exc:
            failure.append(str(exc))

    worker = threading.Thread(target=loop)
    worker.start()
    try:
        time.sleep(0.3)  # it has read its schema and polls
        upgraded = tmp_path / "migrations"
        shutil.copytree(store_engine.MIGRATIONS_DIR, upgraded)
        (upgraded / "versions" / f"{following}_next.py").write_text(
            f"revision = '{following}'\ndown_revision = '{ours}'\nbranch_labels = None\ndepends_on = None\n\n\n"
            "def upgrade():\n    pass\n\n\ndef downgrade():\n    pass\n", encoding="utf-8")
        monkeypatch.setattr(store_engine, "MIGRATIONS_DIR", upgraded)  # the new code's files, in place
        time.sleep(0.3)  # polls with them on disk
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :next"), {"next": following})
        worker.join(10)
        assert not worker.is_alive() and failure, failure
        assert f"the database is at schema revision {following}, this code's is {ours}" in failure[0], failure
    finally:
        stop.set()
        worker.join(10)
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": ours})


def test_a_worker_with_nothing_due_lets_its_worker_processes_go(engine, upstream, monkeypatch) -> None:  # noqa: ANN001, F811
    """An outside scale audit: `oai harvest worker` kept its two worker processes (100-200 MB) through days with
    nothing due. After POOL_IDLE_SECONDS without a harvest they are let go; the next run starts them again."""
    from harvester import schedule, workers

    monkeypatch.setattr(schedule, "POOL_IDLE_SECONDS", 1.0)
    monkeypatch.setattr(workers, "MIN_BATCH", 1)  # pages of the upstream's few records go to the processes too
    upstream.repo.add(*sample_records(20))
    add(engine, "up", upstream.base_url, every_seconds=3600)
    stop = threading.Event()
    seen: list = []

    def loop() -> None:
        schedule.harvest_loop(engine, jobs=1, options=options(), stop=stop, once=False, poll=0.05,
                              on_result=lambda result: seen.append(workers._pool))  # noqa: SLF001
    worker = threading.Thread(target=loop)
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while not seen and time.monotonic() < deadline:
            time.sleep(0.05)
        assert seen and seen[0] is not None  # the run used worker processes, and they stay a while
        assert workers._pool is not None  # noqa: SLF001
        while workers._pool is not None and time.monotonic() < deadline:  # noqa: SLF001
            time.sleep(0.1)
        assert workers._pool is None  # noqa: SLF001
    finally:
        stop.set()
        worker.join(10)
