"""The database going away under a running server (a PostgreSQL restart or failover, a network cut): the
endpoint answers 503 with Retry-After, which harvesters take as "come back later", not a 500 with a
traceback; and it serves again once the database is back. A real TCP relay stands between the app and
PostgreSQL, so that the test can cut it. A database error that is a bug (a schema behind the code) stays a 500:
a 503 would tell every harvester to come back, forever."""

from __future__ import annotations

import socket
import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import pytest
from endpoint_helpers import T0, dc_record, fetch, get, path_of, write
from sqlalchemy.engine import make_url


class Relay:
    """Forwards connections from 127.0.0.1:<port> to `target`. cut() closes every connection and closes each new
    one at once (as a database server going down does); restore() forwards again. The port stays ours."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.refusing = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.refusing.is_set():
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        self.refusing.set()
        with self.lock:
            for s in self.sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self.sockets.clear()

    def restore(self) -> None:
        self.refusing.clear()

    def close(self) -> None:
        self.cut()
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone leaves it listening)
        except OSError:
            pass
        self.listener.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # a database server to cut off
def test_an_unreachable_database_is_503_with_retry_after(database_url, engine, live_server) -> None:  # noqa: ANN001
    write(engine, [dc_record("oai:x.example:1")], T0)
    url = make_url(database_url)
    relay = Relay((url.host or "127.0.0.1", url.port or 5432))
    server = live_server(database_url=url.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False))
    try:
        reply, _ = get(server, verb="ListIdentifiers", metadataPrefix="oai_dc")
        assert reply.status == 200
        relay.cut()
        # (Identify may still answer: what it says is kept in memory)
        for target in ("verb=ListIdentifiers&metadataPrefix=oai_dc", "verb=ListSets",
                       "verb=GetRecord&metadataPrefix=oai_dc&identifier=oai:x.example:1"):
            reply = fetch(server, f"{path_of(server)}?{target}")
            assert reply.status == 503, (target, reply.status, reply.body[:300])
            assert (reply.header("Retry-After") or "").isdigit() and int(reply.header("Retry-After")) > 0
            assert reply.header("Content-Type").startswith("text/plain")
            assert b"Traceback" not in reply.body
        reply = fetch(server, "/record/oai:x.example:1")  # the HTML pages too
        assert reply.status == 503
        relay.restore()  # back: a connection the pool held may fail once more, then it serves
        statuses = [fetch(server, f"{path_of(server)}?verb=ListSets").status for _ in range(3)]
        assert statuses[-1] == 200 and set(statuses) <= {200, 503}, statuses
    finally:
        relay.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_database_error_that_is_a_bug_stays_a_500(database_url, engine, live_server, tmp_path: Path) -> None:  # noqa: ANN001
    """Found by a review: SQLite's "no such column" is an OperationalError too, and was answered 503 with
    Retry-After, for good, while /health said ok."""
    write(engine, [dc_record("oai:x.example:1")], T0)
    broken = tmp_path / "behind.sqlite3"
    with closing(sqlite3.connect(make_url(database_url).database)) as source, closing(sqlite3.connect(broken)) as copy:
        source.backup(copy)  # (its write-ahead log too)
        copy.execute("ALTER TABLE record DROP COLUMN set_specs")  # a schema behind the code
        copy.commit()
    server = live_server(database_url=f"sqlite:///{broken}")
    reply = fetch(server, f"{path_of(server)}?verb=ListIdentifiers&metadataPrefix=oai_dc")
    assert reply.status == 500 and reply.header("Retry-After") is None, (reply.status, reply.body[:300])
    assert b"Traceback" not in reply.body and b"set_specs" not in reply.body


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_read_only_store_without_a_secret_says_what_to_do(database_url: str, engine, live_server) -> None:  # noqa: ANN001
    """An outside operations review: a server on a store it may only read, which held no token secret yet,
    stopped with a traceback whose statement carried the secret it had made. One line, saying what to do."""
    from sqlalchemy import delete

    from oai.store.engine import SchemaError
    from oai.store.models import Setting
    from oai.web.app import create_app

    with engine.begin() as conn:
        conn.execute(delete(Setting))
    read_only = f"sqlite:///file:{make_url(database_url).database}?mode=ro&uri=true"
    with pytest.raises(SchemaError, match=r"holds no token secret yet and this process cannot write one \(attempt "
                                          r"to write a readonly database\): set OAI_SECRET_KEY") as info:
        create_app({"database_url": read_only})
    assert "INSERT" not in str(info.value)
    server = live_server(database_url=read_only, secret_key="a secret of sixteen characters or more")
    _, root = get(server, verb="Identify")  # served, as the README says of a store it cannot write


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_health_says_so_when_the_sqlite_store_is_gone(database_url, engine, live_server, tmp_path: Path) -> None:  # noqa: ANN001
    """An outside audit removed the store under a running server: the open file went on answering, and /health,
    which ran SELECT 1 (touching no file), said ok. It reads a table of ours and looks for the file."""
    moved = tmp_path / "elsewhere.sqlite3"
    store = Path(make_url(database_url).database)
    with closing(sqlite3.connect(store)) as source, closing(sqlite3.connect(moved)) as copy:
        source.backup(copy)
    server = live_server(database_url=f"sqlite:///{moved}")
    assert fetch(server, "/health").status == 200
    for suffix in ("", "-wal", "-shm"):
        Path(f"{moved}{suffix}").unlink(missing_ok=True)
    reply = fetch(server, "/health")
    assert reply.status == 503 and b"database unavailable" in reply.body


def test_a_boot_that_fails_leaves_no_connection_open(empty_postgres_database: str) -> None:
    """create_app() refusing a database (here: no schema yet) closed nothing: its engine's connection stayed open
    until the garbage collector found it (Python 3.13 warns of such a SQLite connection, which the suite counts
    as an error); a process that retries the boot piled them up."""
    import gc
    import time

    from sqlalchemy import create_engine, text

    from oai.store.engine import SchemaError
    from oai.web.app import create_app

    watcher = create_engine(empty_postgres_database.replace("postgresql://", "postgresql+psycopg://", 1))
    query = text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
    gc.disable()  # what is measured is the boot's own closing, not the collector's
    try:
        with watcher.connect() as conn:
            assert conn.execute(query).scalar() == 0
            for _ in range(3):
                with pytest.raises(SchemaError, match="has no schema yet"):
                    create_app({"database_url": empty_postgres_database})
            deadline = time.monotonic() + 5  # a closed session's backend leaves the list a moment later
            while (left := conn.execute(query).scalar()) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert left == 0
    finally:
        gc.enable()
        watcher.dispose()
