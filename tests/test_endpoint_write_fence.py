"""A responseDate that a harvester can ask `from` next time: a record stamped before it is in the answer, even when
its write commits after the request came (oai.store.fence). An outside audit found the gap: `oai load` batches
stamped in one second and committed in the next were missed for good by 5 of 10 harvests asking `from` the
previous responseDate. Here real writers hold their transactions open across second boundaries while requests
come in, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from endpoint_helpers import T0, dc_record, fetch, get, headers, ident, path_of, query, stamp, write
from oaischema import OAI
from sqlalchemy import create_engine, select
from sqlalchemy.exc import DBAPIError

from oai.store import fence
from oai.store.engine import sqlite_file, transaction
from oai.store.models import Record
from oai.store.records import upsert_records

HELD = "oai:example.org:held"


@contextmanager
def _a_write_held_open(engine, ended: list | None = None) -> Iterator[None]:  # noqa: ANN001
    """A real write of HELD, stamped inside the fence and left open until the block ends. `ended`: the server may
    end the write's session meanwhile; what its commit then raised is put there."""
    stamped, release = threading.Event(), threading.Event()

    def held_write() -> None:
        try:
            with transaction(engine) as session:
                upsert_records(session, [dc_record(HELD)])
                stamped.set()
                release.wait(30)
        except DBAPIError as error:
            if ended is None:
                raise
            ended.append(error)

    writer = threading.Thread(target=held_write)
    writer.start()
    try:
        assert stamped.wait(30)
        yield
    finally:
        release.set()
        writer.join(30)


def _into_next_second() -> None:
    time.sleep(1.05 - time.time() % 1)


@pytest.mark.parametrize("args", [
    {"verb": "ListIdentifiers", "metadataPrefix": "oai_dc"},
    {"verb": "ListRecords", "metadataPrefix": "oai_dc"},
    {"verb": "GetRecord", "metadataPrefix": "oai_dc", "identifier": HELD},
], ids=lambda args: args["verb"])
def test_an_answer_waits_for_a_write_stamped_before_its_response_date(live_server, engine, args) -> None:  # noqa: ANN001
    _answer_waits_for_a_held_write(live_server(), engine, args)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_wait_holds_where_transactions_default_to_repeatable_read(live_server, engine) -> None:  # noqa: ANN001
    """Under REPEATABLE READ a transaction reads the snapshot of its first statement, taken before the wait: the
    server's transactions are READ COMMITTED whatever the database's default."""
    with engine.connect() as conn:
        conn.exec_driver_sql(f"ALTER DATABASE \"{engine.url.database}\" "
                             "SET default_transaction_isolation = 'repeatable read'")
        conn.commit()
    engine.dispose()
    _answer_waits_for_a_held_write(live_server(), engine, {"verb": "ListIdentifiers", "metadataPrefix": "oai_dc"})


def _answer_waits_for_a_held_write(server, engine, args: dict[str, str]) -> None:  # noqa: ANN001
    write(engine, [dc_record(ident(0))], T0)
    answers: list = []
    with _a_write_held_open(engine):
        _into_next_second()  # the record's datestamp is before the answer's
        asker = threading.Thread(target=lambda: answers.append(get(server, **args)))
        asker.start()
        asker.join(0.5)
        assert asker.is_alive(), "answered while a write stamped before its responseDate was still open"
        _into_next_second()
        released = stamp(fence.utcnow())
    asker.join(30)
    _, root = answers[0]
    response_date = root.findtext(f"{{{OAI}}}responseDate")
    held = [h for h in headers(root) if h.identifier == HELD]
    assert held, "a record stamped before the responseDate is missing: asking `from` it would never list it"
    assert held[0].datestamp < response_date  # the case that such a harvest misses
    # Taken when the request came, not once the wait ended: a write that began during the wait and stamped
    # before a later responseDate would be in neither this answer nor one asking `from` that date.
    assert response_date < released


def _hold_the_fence(engine) -> Callable[[], object]:  # noqa: ANN001
    """Hold the fence as no writer of ours can share it (on SQLite another writer, on PostgreSQL a reader
    mid-pass); returns a function that lets go."""
    if engine.dialect.name == "sqlite":
        holder = sqlite3.connect(sqlite_file(engine), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        return lambda: (holder.execute("COMMIT"), holder.close())
    other = create_engine(engine.url)
    conn = other.connect()
    conn.exec_driver_sql(f"SELECT pg_advisory_lock({fence._KEY})")
    return lambda: (conn.exec_driver_sql(f"SELECT pg_advisory_unlock({fence._KEY})"), conn.close(), other.dispose())


def test_a_writer_stamps_only_once_it_holds_the_fence(engine) -> None:  # noqa: ANN001
    """A stamp taken before the writer waits for the fence could fall before the responseDate of an answer that
    passed the fence meanwhile, and that answer cannot see the write."""
    let_go = _hold_the_fence(engine)
    done = threading.Event()

    def writer() -> None:
        with transaction(engine) as session:
            upsert_records(session, [dc_record(HELD)])
        done.set()

    thread = threading.Thread(target=writer)
    try:
        thread.start()
        assert not done.wait(0.5), "wrote while the fence was held"
        _into_next_second()
        _into_next_second()
        released = fence.utcnow()
    finally:
        let_go()
    thread.join(30)
    assert done.is_set()
    with transaction(engine) as session:
        datestamp = session.scalar(select(Record.datestamp).where(Record.identifier == HELD))
    assert datestamp >= released


def _write_one_after_another(engine, stop: threading.Event, writes: list[int]) -> None:  # noqa: ANN001
    """Writes that each hold the fence 20 ms, the next begun as soon as the last commits."""
    if engine.dialect.name == "sqlite":
        # The driver's own connection: the lock is free for the microseconds between COMMIT and BEGIN IMMEDIATE,
        # as between a loader's batches (through SQLAlchemy the gap would be wider, and a lucky reader get in).
        writer = sqlite3.connect(sqlite_file(engine), isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        while not stop.is_set():
            writer.execute(fence._COUNT_SQLITE)  # what fence.stamp does on SQLite
            time.sleep(0.02)
            writer.execute("COMMIT")
            writer.execute("BEGIN IMMEDIATE")
            writes.append(1)
        writer.execute("COMMIT")
        writer.close()
        return
    while not stop.is_set():
        with transaction(engine) as session:
            upsert_records(session, [dc_record(ident(len(writes) % 50 + 1))])
            time.sleep(0.02)
        writes.append(1)


def test_an_answer_is_not_starved_by_writes_one_after_another(live_server, engine) -> None:  # noqa: ANN001
    """A writer that begins its next write as soon as it commits (a load, a harvest) leaves the fence free for
    microseconds: an answer waits for the write open when it came, not for a gap between writes."""
    server = live_server()
    write(engine, [dc_record(ident(0))], T0)
    stop, writes = threading.Event(), []
    thread = threading.Thread(target=_write_one_after_another, args=(engine, stop, writes))
    thread.start()
    try:
        while len(writes) < 3:
            time.sleep(0.01)
        answers: list = []
        asker = threading.Thread(target=lambda: answers.append(
            get(server, verb="ListIdentifiers", metadataPrefix="oai_dc")))
        asker.start()
        asker.join(10)
        assert not asker.is_alive(), "a fresh answer waited as long as the writer kept writing"
    finally:
        stop.set()
        thread.join(30)
    asker.join(30)
    assert answers[0][0].status == 200


def test_a_writer_stalled_inside_the_fence_makes_answers_retry_later(live_server, engine, monkeypatch) -> None:  # noqa: ANN001
    """A write that never commits (a hung process holding its transaction) must not hold answers forever: past
    the fence's limit the answer is a 503 with Retry-After, and the fence is free again once the writer goes."""
    monkeypatch.setattr(fence, "WAIT_LIMIT_SECONDS", 0.5)
    server = live_server()
    write(engine, [dc_record(ident(0))], T0)
    with _a_write_held_open(engine):
        reply = fetch(server, f"{path_of(server)}?{query({'verb': 'ListIdentifiers', 'metadataPrefix': 'oai_dc'})}")
        assert reply.status == 503, reply.body[:300]
        assert reply.header("Retry-After")
    reply, root = get(server, verb="ListIdentifiers", metadataPrefix="oai_dc")
    assert HELD in [h.identifier for h in headers(root)]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_writer_stopped_inside_the_fence_is_named_then_ended(live_server, engine, monkeypatch, caplog) -> None:  # noqa: ANN001
    """An outside audit stopped `oai load` (SIGSTOP) inside a batch: every node answered first pages with 503 for as
    long as it lived, and the log did not say why. Now the waiting answer logs the holder, and PostgreSQL ends the
    holder's session once it has sat idle HOLD_LIMIT_SECONDS, after which answers come again (and the held write,
    never committed, is not in them)."""
    monkeypatch.setattr(fence, "WAIT_LIMIT_SECONDS", 0.5)
    monkeypatch.setattr(fence, "HOLD_LIMIT_SECONDS", 3)
    server = live_server()
    write(engine, [dc_record(ident(0))], T0)
    target = f"{path_of(server)}?{query({'verb': 'ListIdentifiers', 'metadataPrefix': 'oai_dc'})}"
    ended: list = []
    with caplog.at_level("WARNING", logger="oai.store.fence"), _a_write_held_open(engine, ended):
        assert fetch(server, target).status == 503
        said = [r.getMessage() for r in caplog.records if "the write fence is held by PostgreSQL backend" in r.getMessage()]
        assert len(said) == 1 and "idle in transaction" in said[0], said
        deadline = time.monotonic() + 20
        while (reply := fetch(server, target)).status == 503 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert reply.status == 200, "the stopped writer still holds the fence"  # while the writer thread still waits
    assert len(ended) == 1 and "idle-in-transaction timeout" in str(ended[0])
    _, root = get(server, verb="ListIdentifiers", metadataPrefix="oai_dc")
    assert HELD not in [h.identifier for h in headers(root)]


def test_lists_without_datestamps_do_not_wait_for_writers(live_server, engine) -> None:  # noqa: ANN001
    """ListSets and ListMetadataFormats hold no datestamps: they are answered while a write is open."""
    server = live_server()
    write(engine, [dc_record(ident(0), sets=("a",))], T0)
    with _a_write_held_open(engine):
        for verb in ("ListSets", "ListMetadataFormats"):
            reply, _ = get(server, verb=verb)
            assert reply.status == 200




@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_wait_an_operator_cancels_is_answered_retry_later(live_server, engine) -> None:  # noqa: ANN001
    """pg_cancel_backend on a request waiting in the fence: a 503, and the fence is not left held (the pass's
    connection is closed, whatever point the cancel reached)."""
    server = live_server()
    write(engine, [dc_record(ident(0))], T0)
    replies: list = []
    target = f"{path_of(server)}?{query({'verb': 'ListIdentifiers', 'metadataPrefix': 'oai_dc'})}"
    with _a_write_held_open(engine):
        asker = threading.Thread(target=lambda: replies.append(fetch(server, target)))
        asker.start()
        cancelled = False
        for _ in range(100):
            with engine.connect() as conn:
                cancelled = bool(conn.exec_driver_sql(
                    "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND strpos(query, 'pg_advisory_lock(') > 0").scalars().all())
            if cancelled:
                break
            time.sleep(0.05)
        asker.join(30)
    assert cancelled, "no request was seen waiting in the fence"
    assert replies[0].status == 503 and replies[0].header("Retry-After"), replies[0].body[:300]
    reply, root = get(server, verb="ListIdentifiers", metadataPrefix="oai_dc")
    assert HELD in [h.identifier for h in headers(root)]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_sqlite_write_counts_its_commit_for_the_fence(engine) -> None:  # noqa: ANN001
    """Readers wait for the count to move, not for the lock to be free: a stamped write that did not count would
    leave them waiting for a gap between writes again."""
    def count() -> int:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql(
                f"SELECT coalesce(max(value), 0) FROM setting WHERE key = '{fence.WRITE_COUNT}'").scalar())

    before = count()
    with transaction(engine) as session:
        upsert_records(session, [dc_record(HELD)])
    with transaction(engine) as session:
        upsert_records(session, [dc_record(ident(1)), dc_record(ident(2))])
    assert count() == before + 2
