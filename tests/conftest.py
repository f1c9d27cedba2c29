"""Shared fixtures: a real store on SQLite and on PostgreSQL, a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import functools
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from oai.store import engine as store_engine
from oai.store.models import Base

TESTS = Path(__file__).resolve().parent
DATA = TESTS / "data"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@functools.cache
def _postgres_admin_url() -> str | None:
    """The server OAI_TEST_DATABASE_URL names, through a database of it that exists: the one named, else the
    server's own `postgres` (an outside audit found every PostgreSQL test skipped as "unreachable" where the named
    one did not exist). The suite creates a database of its own there for each run."""
    url = os.environ.get("OAI_TEST_DATABASE_URL")
    if not url:
        return None
    url = store_engine.database_url(url)
    probe = create_engine(url)
    try:
        with probe.connect():
            return url
    except Exception as exc:  # noqa: BLE001 - whatever it is, _new_postgres_database meets it again and says it
        if "does not exist" not in str(exc):
            return url
        return make_url(url).set(database="postgres").render_as_string(hide_password=False)
    finally:
        probe.dispose()


@pytest.fixture(scope="session", autouse=True)
def _lookahead_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Pages rendered ahead (oai/web/lookahead.py) go under the test run's own temporary directory, not
    one directory per test database in the system's (servers started as subprocesses inherit it)."""
    os.environ["OAI_LOOKAHEAD_DIR"] = str(tmp_path_factory.mktemp("lookahead"))
    yield
    os.environ.pop("OAI_LOOKAHEAD_DIR", None)


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    engine = store_engine.make_engine(f"sqlite:///{path}")
    store_engine.upgrade(engine)
    engine.dispose()
    return path


@contextmanager
def _new_postgres_database(prefix: str, *, migrate: bool) -> Iterator[str]:
    """A database of our own on the PostgreSQL server (migrated or empty), dropped afterwards."""
    admin_url = _postgres_admin_url()
    if admin_url is None:
        if IN_CI:
            pytest.fail("CI=true but OAI_TEST_DATABASE_URL is not set: PostgreSQL tests must run in CI")
        pytest.skip("PostgreSQL not configured (set OAI_TEST_DATABASE_URL)")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any connection failure decides skip vs fail
        admin.dispose()
        if IN_CI:
            pytest.fail(f"cannot reach PostgreSQL at {admin_url}: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        if migrate:
            engine = store_engine.make_engine(url)
            store_engine.upgrade(engine)
            engine.dispose()
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def _postgres_database() -> Iterator[str]:
    """A migrated database of our own on the PostgreSQL server, for this session."""
    with _new_postgres_database("oai_test", migrate=True) as url:
        yield url


@pytest.fixture
def empty_postgres_database() -> Iterator[str]:
    """A database with no schema at all, for this test (what a new deployment starts from)."""
    with _new_postgres_database("oai_test_empty", migrate=False) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database on each engine."""
    if request.param == "sqlite":
        path = tmp_path / "store.sqlite3"
        shutil.copy(request.getfixturevalue("_sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("_postgres_database")
    engine = create_engine(url)
    # DELETE (children first) and restarting the sequences is what TRUNCATE ... RESTART IDENTITY
    # does, about ten times faster on tables this small.
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name != "setting":
                conn.execute(text(f'DELETE FROM "{table.name}"'))
        for seq in conn.execute(text("SELECT sequence_name FROM information_schema.sequences")).scalars():
            conn.execute(text(f'ALTER SEQUENCE "{seq}" RESTART'))
    engine.dispose()
    return url


@pytest.fixture
def engine(database_url: str):  # noqa: ANN201
    eng = store_engine.make_engine(database_url)
    yield eng
    eng.dispose()


class LiveServer:
    """A real HTTP server on 127.0.0.1 running an app in a thread."""

    def __init__(self, app) -> None:  # noqa: ANN001
        from werkzeug.serving import make_server

        self.app = app
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self._server.server_port
        self.root = f"http://127.0.0.1:{self.port}"
        self.url = self.root + app.config["OAI"].endpoint_path
        # a short poll interval: shutdown() waits for it, and tests start many servers
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
        self.app.extensions["oai_engine"].dispose()


@pytest.fixture
def live_server(database_url: str):  # noqa: ANN201
    """Start servers for this test's database: `live_server(**config_overrides)`."""
    from oai.web.app import create_app

    servers: list[LiveServer] = []

    def start(**overrides) -> LiveServer:  # noqa: ANN003
        server = LiveServer(create_app({"database_url": database_url, **overrides}))
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.close()
