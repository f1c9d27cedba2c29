"""Engines and sessions for SQLite and PostgreSQL; the schema-version check lives here too."""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_SQLITE_FILE = "oai.sqlite3"
# The page size of a new SQLite store (SQLite's default is 4 KB). A stored record (its metadata, about and
# citation) is 4-10 KB: with 4 KB pages nearly every row spills into overflow pages, and a harvest's writes
# cost a sixth more (bench: inserting 20,000 harvested oai_dc records page by page, 0.11 vs 0.094 ms a record).
# A store made before keeps its page size: SQLite fixes it when the first table is created.
PAGE_SIZE = 16384
# How long a writer's log may grow before its own commit copies it into the database file (SQLite's
# default is 1,000 pages): bulk writers have it copied beside them (oai.store.checkpoints), and this is the net.
WAL_BOUND_BYTES = 16 * 1024 * 1024
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
BUSY_TIMEOUT_SECONDS = 30  # how long a SQLite statement waits for another connection's lock (then: a 503)


class SchemaError(RuntimeError):
    """The database schema is missing or behind the code; the message says which command fixes it."""


def database_url(url: str | None = None) -> str:
    """The URL to use: explicit, else OAI_DATABASE_URL, else a SQLite file in the working directory."""
    url = url or os.environ.get("OAI_DATABASE_URL") or f"sqlite:///{DEFAULT_SQLITE_FILE}"
    parsed = make_url(url)
    # Plain postgresql:// means psycopg 3 here (SQLAlchemy would otherwise pick psycopg2).
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _names_a_file(database: str | None) -> bool:
    """Whether a SQLite URL's database is a file path (not in memory, not a `file:` URI)."""
    return bool(database) and database != ":memory:" and not database.startswith("file:")


def sqlite_file(engine: Engine) -> str | None:
    """The real path of a SQLite engine's database file; None on PostgreSQL, in memory or for a `file:` URI."""
    database = engine.url.database
    return os.path.realpath(database) if is_sqlite(engine) and _names_a_file(database) else None


def autocheckpoint_frames(page_size: int) -> int:
    """A writer's wal_autocheckpoint for a store of `page_size`: WAL_BOUND_BYTES of log."""
    return max(1, WAL_BOUND_BYTES // page_size)


def make_engine(url: str | None = None, *, writer: bool = True) -> Engine:
    """An engine; on SQLite: WAL, a busy timeout, foreign keys, and for writers `BEGIN IMMEDIATE` and a longer
    log before a commit checkpoints it (bulk writers have it checkpointed beside them: oai.store.checkpoints)."""
    try:
        url = database_url(url)
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite":
            # READ COMMITTED whatever the server's default: a reader's statements after the write fence
            # (oai.store.fence) must see what committed while it waited, not a snapshot from before.
            return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10,
                                 isolation_level="READ COMMITTED")
    except (exc.ArgumentError, ImportError) as error:  # not a URL, an unknown dialect, a driver not installed
        raise SchemaError(f"the database URL is not one we can use (sqlite:///FILE or postgresql://USER@HOST/DB): "
                          f"{error}") from None
    if _names_a_file(parsed.database):
        # The file the engine opens, named absolutely (SQLAlchemy fixes it when the engine is made): whoever
        # reads engine.url later (the checkpoint thread, read-ahead's keys) names the same file after a chdir.
        parsed = parsed.set(database=os.path.abspath(parsed.database))
    engine = create_engine(parsed, connect_args={"timeout": BUSY_TIMEOUT_SECONDS})
    begin = "BEGIN IMMEDIATE" if writer else "BEGIN"

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # noqa: ANN001
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA page_size={PAGE_SIZE}")  # before anything creates the file's first page
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
        if writer:
            page_size = cursor.execute("PRAGMA page_size").fetchone()[0]
            cursor.execute(f"PRAGMA wal_autocheckpoint={autocheckpoint_frames(page_size)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # noqa: ANN001
        if not conn.get_execution_options().get(_NO_TRANSACTION):
            conn.exec_driver_sql(begin)

    return engine


_NO_TRANSACTION = "oai_no_transaction"


def single_statement_reader(engine: Engine) -> Engine:
    """The engine for reads that are one statement each: no transaction around them.

    A lone SELECT sees a consistent snapshot by itself, so the BEGIN and ROLLBACK around it are
    pure cost (on PostgreSQL two round trips per request). On SQLite the connection is already in
    autocommit mode and only our BEGIN is skipped; on PostgreSQL the driver's autocommit is turned
    on for the checkout (a client-side setting, no round trip) and reset when it returns to the pool.
    """
    if is_sqlite(engine):
        return engine.execution_options(**{_NO_TRANSACTION: True})
    return engine.execution_options(isolation_level="AUTOCOMMIT")


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection for a long read by a writing process: on SQLite without the write lock its engine's
    transactions take (BEGIN IMMEDIATE), so writers and the write fence's readers are not held meanwhile."""
    with (single_statement_reader(engine) if is_sqlite(engine) else engine).connect() as conn:
        yield conn


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False, autoflush=False)


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One short write transaction: commit on success, roll back on any error."""
    with session_factory(engine)() as session, session.begin():
        yield session


def alembic_config(engine: Engine):  # noqa: ANN201
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    cfg.attributes["engine"] = engine
    return cfg


# pg_advisory_lock key held while the schema changes ("oai-pmh migrations" as an int64): each web node's unit runs
# `oai db upgrade` before it starts, so several may run at once against one database.
_MIGRATION_LOCK = 0x6F61692D6D696772


@contextmanager
def _migrating_alone(engine: Engine) -> Iterator[None]:
    """On PostgreSQL, one schema change at a time: the others wait, then find nothing left to do. Without it,
    two nodes upgrading at once both created the schema, and the second failed with a traceback."""
    if is_sqlite(engine):
        yield
        return
    with engine.connect() as conn:
        conn.exec_driver_sql(f"SELECT pg_advisory_lock({_MIGRATION_LOCK})")
        conn.commit()
        try:
            yield
        finally:
            conn.exec_driver_sql(f"SELECT pg_advisory_unlock({_MIGRATION_LOCK})")
            conn.commit()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or upgrade the schema (what `oai db upgrade` runs); raises SchemaError saying why it cannot."""
    _migrate(engine, "upgrade", revision)


def downgrade(engine: Engine, revision: str) -> None:
    _migrate(engine, "downgrade", revision)


def _migrate(engine: Engine, direction: str, revision: str) -> None:
    """Alembic's upgrade or downgrade, after refusing a schema newer than this code (which Alembic would report
    as a revision it cannot locate, in a traceback); a revision it does not know is one line too."""
    from alembic import command
    from alembic.util.exc import CommandError

    where = engine.url.render_as_string(hide_password=True)
    with _migrating_alone(engine):
        current = current_revision(engine)
        check_not_newer(engine, current)
        if current is None:
            check_no_tables(engine)
        if direction == "downgrade" and _drops_everything(current, revision):
            raise SchemaError(f"a downgrade to {revision!r} would drop every table of {where}, records included: to "
                              "start again, remove the database (dropdb, or delete the SQLite file) and run "
                              "`oai db upgrade`")
        try:
            getattr(command, direction)(alembic_config(engine), revision)
        except CommandError as error:
            raise SchemaError(f"cannot {direction} the schema of {where} to {revision!r}: {error}") from None
        except exc.OperationalError as error:
            if getattr(error.orig, "sqlstate", None) != "55P03":  # lock_timeout (migrations/env.py)
                raise
            raise SchemaError(f"cannot {direction} the schema of {where}: {_lock_holders(engine)} held a table it "
                              f"changes for over {MIGRATION_LOCK_TIMEOUT} (nothing was changed); once that "
                              f"transaction ends, run `oai db {direction}` again") from None


# How long a schema change waits for a table another session holds (a transaction left open): past it, the change
# is refused, rather than waiting for ever while every reader of that table queues behind it (an outside audit).
MIGRATION_LOCK_TIMEOUT = "15s"


def _drops_everything(current: str | None, revision: str) -> bool:
    """Whether stepping back from `current` to `revision` ("base", "-N", or one of ours) removes the first one."""
    if revision == "base":
        return True
    steps = re.fullmatch(r"-(\d+)", revision)
    return bool(steps and current and current.isdigit() and int(steps[1]) >= int(current))


def check_no_tables(engine: Engine) -> None:
    """Refuse a database without a schema revision of ours that holds tables: another application's. Creating the
    schema there failed with a traceback where a name was taken (record, source), and where none was, added ours to
    it without a word (an outside audit)."""
    from sqlalchemy import inspect

    # (alembic_version alone: what a downgrade past the first revision left, before that was refused; ours)
    if tables := sorted(set(inspect(engine).get_table_names()) - {"alembic_version"}):
        shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
        raise SchemaError(f"the database {engine.url.render_as_string(hide_password=True)} holds tables ({shown}) "
                          "but no schema of ours: it belongs to another application; give this one a database of "
                          "its own")


def _lock_holders(engine: Engine) -> str:
    """The sessions holding locks on our tables, as words for a message (PostgreSQL)."""
    query = ("SELECT DISTINCT a.pid, a.state, a.application_name, a.xact_start FROM pg_locks l JOIN pg_stat_activity a "
             "ON a.pid = l.pid WHERE l.granted AND a.pid <> pg_backend_pid() AND l.relation >= 16384 "  # not a catalog
             "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
             "ORDER BY a.xact_start LIMIT 3")
    try:
        with engine.connect() as probe:
            rows = probe.exec_driver_sql(query).all()
    except exc.SQLAlchemyError:
        rows = []
    return holders_said(rows)


def holders_said(rows: Sequence[tuple]) -> str:
    """Sessions (pid, state, application, transaction start) in words. Another role's sessions show no state nor
    start to a role that is not a superuser (PostgreSQL's docs): formatting None was a traceback (a review)."""
    if not rows:
        return "another session"
    return "; ".join(f"PostgreSQL backend {pid} ({state or 'state not shown'}{', ' + app if app else ''}"
                     + (f", in a transaction since {began:%Y-%m-%d %H:%M:%S %Z}" if began else "") + ")"
                     for pid, state, app, began in rows)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def reachable(engine: Engine) -> None:
    """Connect once; raises SchemaError saying why not (for the commands that make the schema)."""
    try:
        current_revision(engine)
    except (exc.DatabaseError, exc.InterfaceError) as error:
        raise SchemaError(_unusable(engine, error)) from None


def _unusable(engine: Engine, error: Exception) -> str:
    """Why the database cannot be used: it cannot be reached (refused, unreachable, a wrong password), or what
    answers is not a database (a file that is not SQLite's)."""
    where = engine.url.render_as_string(hide_password=True)
    verb = "reach" if isinstance(error, (exc.OperationalError, exc.InterfaceError)) else "use"
    reason = error_reason(error)
    if engine.dialect.name == "postgresql" and re.search(r'database "[^"]*" does not exist', reason):
        # (`oai db upgrade` makes the schema, not the database: an outside audit found the next step unsaid)
        url = engine.url
        flags = " ".join(f"{flag} {shlex.quote(str(value))}" for flag, value in
                         (("-h", url.host), ("-p", url.port), ("-U", url.username)) if value)
        reason += (f"; create it first (createdb {flags + ' ' if flags else ''}{shlex.quote(url.database or '')}, "
                   "or CREATE DATABASE in psql), then run `oai db upgrade`")
    return f"cannot {verb} the database {where}: {reason}"


def check_not_newer(engine: Engine, current: str | None) -> None:
    """Refuse a schema revision this code does not know: another node's newer code upgraded it (a rolling
    deploy, a rollback). Raises SchemaError."""
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    if current is None:
        return
    try:
        ScriptDirectory(str(MIGRATIONS_DIR)).get_revision(current)
    except CommandError:
        where = engine.url.render_as_string(hide_password=True)
        if not re.fullmatch(r"\d{4}", current):  # ours are numbered; Alembic's own ids are hex
            raise SchemaError(f"the database {where} belongs to another application (its schema revision {current} "
                              "is not one of ours): give this one a database of its own") from None
        raise SchemaError(f"the database {where} is at schema revision {current}, newer than this code knows (its "
                          f"newest is {head_revision()}): run the newer code here, or downgrade the schema with it"
                          ) from None


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def error_reason(error: Exception) -> str:
    """The first line of what the driver said about a database error (SQLAlchemy's own text adds the statement
    and a link): one line for a log or a message."""
    lines = str(getattr(error, "orig", None) or error).strip().splitlines()
    return lines[0] if lines else repr(error)


# PostgreSQL SQLSTATEs of a server that cannot serve now: connection exceptions (class 08), too many connections
# and other resource shortages (class 53), shutting down or starting up (57P01-57P03), a lock not granted in time
# (55P03: lock_timeout), a session ended for sitting idle inside the write fence (25P03: oai.store.fence). A
# statement cancelled (57014) is a 500 (a query that always times out is a bug, not "later"), except in the write
# fence's wait, which says so itself.
_UNAVAILABLE_STATES = ("08", "53", "57P01", "57P02", "57P03", "55P03", "25P03")
_UNAVAILABLE_SQLITE = ("database is locked", "unable to open database file", "disk i/o error")


def database_unavailable(error: Exception) -> bool:
    """Whether a database error means "not now" rather than a bug."""
    if isinstance(error, (exc.TimeoutError, exc.InterfaceError)):
        return True
    if getattr(error, "connection_invalidated", False):
        return True
    orig = getattr(error, "orig", None)
    state = getattr(orig, "sqlstate", None)
    if state is not None:
        return state.startswith(_UNAVAILABLE_STATES)
    if type(orig).__module__.startswith("psycopg"):
        return True  # no SQLSTATE: the connection itself failed (refused, reset, closed)
    return str(orig or error).lower().startswith(_UNAVAILABLE_SQLITE)


def check_schema(engine: Engine) -> None:
    """Refuse to run on a schema that is missing or behind; raises SchemaError."""
    path = sqlite_file(engine)
    if path and not Path(path).exists():
        # said before connecting, which would leave an empty file behind
        raise SchemaError(f"there is no database at {path}: `oai db upgrade` creates it")
    where = engine.url.render_as_string(hide_password=True)
    try:
        current = current_revision(engine)
    except (exc.DatabaseError, exc.InterfaceError) as error:
        raise SchemaError(_unusable(engine, error)) from None
    head = head_revision()
    if current == head:
        return
    if current is None:
        check_no_tables(engine)
        raise SchemaError(f"the database {where} has no schema yet: run `oai db upgrade`")
    check_not_newer(engine, current)
    raise SchemaError(
        f"the database {where} is at schema revision {current}, the code needs {head}: "
        "run `oai db upgrade`"
    )
