"""WAL checkpoints beside a bulk writer (oai.store.checkpoints), on a real SQLite file; nothing on PostgreSQL."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import Engine

from oai.store import checkpoints
from oai.store.engine import PAGE_SIZE, WAL_BOUND_BYTES, make_engine, transaction
from oai.store.records import RecordIn, upsert_records

DC = (b'<oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/" '
      b'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>%d</dc:title></oai_dc:dc>')


@pytest.fixture
def sqlite_store(tmp_path: Path, _sqlite_template: Path) -> Path:
    path = tmp_path / "store.sqlite3"
    shutil.copy(_sqlite_template, path)
    return path


@pytest.fixture
def writer(sqlite_store: Path) -> Iterator[Engine]:
    """A writer's engine on `sqlite_store`, as a harvest or a load makes it."""
    engine = make_engine(f"sqlite:///{sqlite_store}")
    yield engine
    engine.dispose()


def checkpointed_once(path: Path) -> checkpoints._Checkpointer:  # noqa: SLF001
    """A batch written to the store at `path` by an engine since disposed, and the thread that checkpointed it."""
    engine = make_engine(f"sqlite:///{path}")
    try:
        write_batch(engine, 0)
        checkpoints.after_commit(engine)
        worker = worker_of(path)
        assert worker is not None and wait_for(lambda: worker.done >= 1)
        return worker
    finally:
        engine.dispose()


def remove_store(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def write_batch(engine, first: int, n: int = 200) -> None:  # noqa: ANN001
    with transaction(engine) as s:
        upsert_records(s, [RecordIn(f"oai:x:{i}", {"oai_dc": DC % i + b" " * 2000}, sets=("a:b",))
                           for i in range(first, first + n)])


def wait_for(condition, timeout: float = 10.0) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def worker_of(path: Path) -> checkpoints._Checkpointer | None:  # noqa: SLF001
    return checkpoints._threads.get(str(path.resolve()))  # noqa: SLF001


def test_writers_leave_the_log_to_the_checkpoint_thread_and_it_copies_it(sqlite_store: Path, writer: Engine) -> None:
    with writer.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA page_size").scalar() == PAGE_SIZE
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() * PAGE_SIZE == WAL_BOUND_BYTES
    before = sqlite_store.stat().st_size
    write_batch(writer, 0)  # about 600 KB: under the writer's own threshold, so it stays in the log
    assert sqlite_store.stat().st_size == before
    checkpoints.after_commit(writer)
    worker = worker_of(sqlite_store)
    assert worker is not None
    assert wait_for(lambda: worker.done >= 1)
    assert sqlite_store.stat().st_size > before  # only a checkpoint writes pages into the database file
    with closing(sqlite3.connect(sqlite_store)) as plain:  # and what it copied is the records, readable by anyone
        assert plain.execute("SELECT count(*) FROM record").fetchone() == (200,)


def test_a_store_made_with_smaller_pages_keeps_them_and_the_same_bound_of_log(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with closing(sqlite3.connect(path)) as plain:  # as SQLite's default made our stores before
        plain.execute("PRAGMA page_size=4096")
        plain.execute("CREATE TABLE t (x)")
        plain.commit()
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA page_size").scalar() == 4096
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == WAL_BOUND_BYTES // 4096
    finally:
        engine.dispose()


def test_readers_keep_the_default_threshold(sqlite_store: Path) -> None:
    engine = make_engine(f"sqlite:///{sqlite_store}", writer=False)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
    finally:
        engine.dispose()


def test_the_thread_ends_when_idle_and_is_started_again(sqlite_store: Path, writer: Engine,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checkpoints, "IDLE_SECONDS", 0.2)
    write_batch(writer, 0)
    checkpoints.after_commit(writer)
    first = worker_of(sqlite_store)
    assert first is not None and wait_for(lambda: first.done == 1)
    assert wait_for(lambda: not first._thread.is_alive())  # noqa: SLF001
    assert worker_of(sqlite_store) is None
    write_batch(writer, 200)
    checkpoints.after_commit(writer)
    second = worker_of(sqlite_store)
    assert second is not None and second is not first
    assert wait_for(lambda: second.done == 1)


def test_many_commits_from_several_threads_lose_nothing(sqlite_store: Path, writer: Engine) -> None:
    def write(k: int) -> None:
        for j in range(5):
            write_batch(writer, 10_000 * k + 200 * j)
            checkpoints.after_commit(writer)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    worker = worker_of(sqlite_store)
    assert worker is not None and wait_for(lambda: not worker.asked.is_set())
    with writer.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM record").scalar() == 3000


def test_a_store_removed_meanwhile_is_not_made_again(sqlite_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checkpoints, "IDLE_SECONDS", 0.2)
    engine = make_engine(f"sqlite:///{sqlite_store}")
    write_batch(engine, 0)
    engine.dispose()
    remove_store(sqlite_store)
    checkpoints.after_commit(engine)
    worker = worker_of(sqlite_store)
    assert worker is not None
    assert wait_for(lambda: not worker._thread.is_alive())  # noqa: SLF001 - it tried, and gave up
    assert worker.done == 0
    assert not sqlite_store.exists()


def test_nothing_is_started_for_postgresql_or_memory(engine) -> None:  # noqa: ANN001
    memory = make_engine("sqlite://")
    try:
        before = dict(checkpoints._threads)  # noqa: SLF001
        checkpoints.after_commit(memory)
        if engine.dialect.name == "postgresql":
            checkpoints.after_commit(engine)
        assert checkpoints._threads == before  # noqa: SLF001
    finally:
        memory.dispose()


def test_at_exit_the_log_is_copied_in_and_removed(sqlite_store: Path, tmp_path: Path) -> None:
    """A harvest disposes its engine and exits: the checkpoint thread's connection, the last one, is closed at
    exit, so the database file alone holds every record and no log is left beside it (as before the thread)."""
    script = textwrap.dedent(f"""
        from oai.store import checkpoints
        from oai.store.engine import make_engine, transaction
        from oai.store.records import RecordIn, upsert_records
        engine = make_engine({f"sqlite:///{sqlite_store}"!r})
        for batch in range(5):
            with transaction(engine) as s:
                upsert_records(s, [RecordIn(f"oai:x:{{batch}}-{{i}}", {{"oai_dc": {DC!r} % i + b" " * 5000}})
                                   for i in range(200)])
            checkpoints.after_commit(engine)
        engine.dispose()
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    assert not Path(f"{sqlite_store}-wal").exists()
    alone = tmp_path / "alone.sqlite3"
    shutil.copy(sqlite_store, alone)  # the main file without its log
    with closing(sqlite3.connect(alone)) as plain:
        assert plain.execute("SELECT count(*) FROM record").fetchone() == (1000,)


def test_a_store_made_again_at_the_same_path_is_the_one_checkpointed(sqlite_store: Path, _sqlite_template: Path) -> None:
    worker = checkpointed_once(sqlite_store)
    remove_store(sqlite_store)
    shutil.copy(_sqlite_template, sqlite_store)
    again = make_engine(f"sqlite:///{sqlite_store}")
    try:
        before = sqlite_store.stat().st_size
        write_batch(again, 0)
        done = worker.done
        checkpoints.after_commit(again)
        assert worker_of(sqlite_store) is worker  # the same thread, asked within its idle time
        assert wait_for(lambda: worker.done > done)
        assert sqlite_store.stat().st_size > before  # it copied into the new file, not the deleted one
        held = [os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
                if os.path.exists(f"/proc/self/fd/{fd}")] if Path("/proc/self/fd").is_dir() else []
        assert not [name for name in held if name.startswith(str(sqlite_store)) and name.endswith("(deleted)")]
    finally:
        again.dispose()


def test_a_relative_store_is_the_same_file_after_a_chdir(tmp_path: Path, _sqlite_template: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    shutil.copy(_sqlite_template, tmp_path / "a" / "store.sqlite3")
    shutil.copy(_sqlite_template, tmp_path / "b" / "store.sqlite3")  # another store where the chdir leads
    monkeypatch.chdir(tmp_path / "a")
    engine = make_engine("sqlite:///store.sqlite3")
    try:
        monkeypatch.chdir(tmp_path / "b")
        write_batch(engine, 0)
        checkpoints.after_commit(engine)
        assert worker_of(tmp_path / "b" / "store.sqlite3") is None
        worker = worker_of(tmp_path / "a" / "store.sqlite3")
        assert worker is not None and wait_for(lambda: worker.done >= 1)
    finally:
        engine.dispose()


def test_no_thread_to_be_had_leaves_the_commit_alone(sqlite_store: Path, writer: Engine, monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """What a process at its thread limit gets from Thread.start (simulated: it cannot be reached safely here)."""

    def no_thread(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    write_batch(writer, 0)
    monkeypatch.setattr(threading.Thread, "start", no_thread)
    checkpoints.after_commit(writer)  # does not raise into the writer, whose page is committed
    monkeypatch.undo()
    assert worker_of(sqlite_store) is None
    assert "no thread for WAL checkpoints" in caplog.text


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_starts_its_own_thread(sqlite_store: Path) -> None:
    parent = checkpointed_once(sqlite_store)
    pid = os.fork()
    if pid == 0:  # the child: its parent's thread is not here; a commit must get a thread of its own
        ok = False
        try:
            child = make_engine(f"sqlite:///{sqlite_store}")
            write_batch(child, 200)
            checkpoints.after_commit(child)
            worker = worker_of(sqlite_store)
            ok = worker is not None and worker is not parent and wait_for(lambda: worker.done >= 1, 5)
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
