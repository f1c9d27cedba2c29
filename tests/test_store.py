"""The store on SQLite and PostgreSQL: idempotent upserts, sets with ancestors, tombstones, migrations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, inspect, select
from sqlalchemy.exc import IntegrityError

from oai.store import engine as store_engine
from oai.store import queries
from oai.store.engine import SchemaError, transaction
from oai.store.models import OAISet, Record, RecordSet
from oai.store.records import Change, RecordIn, delete_record, header_specs, upsert_records
from oai.store.statistics import GrowthAnalyzer, analyze

DC = b'<oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>T</dc:title></oai_dc:dc>'
T0 = datetime(2024, 5, 1, 12, 0, 0)


def rec(ident: str, xml: bytes = DC, sets: tuple[str, ...] = ()) -> RecordIn:
    return RecordIn(identifier=ident, metadata={"oai_dc": xml}, sets=sets)


def test_upsert_is_idempotent_and_moves_datestamp_only_on_change(engine) -> None:
    with transaction(engine) as s:
        assert upsert_records(s, [rec("oai:x:1"), rec("oai:x:2")], now=T0) == [Change.NEW, Change.NEW]
    with transaction(engine) as s:
        later = T0 + timedelta(hours=1)
        assert upsert_records(s, [rec("oai:x:1"), rec("oai:x:2", DC.replace(b">T<", b">U<"))], now=later) == [
            Change.UNCHANGED, Change.UPDATED]
    with transaction(engine) as s:
        stamps = dict(s.execute(select(Record.identifier, Record.datestamp)).all())
    assert stamps == {"oai:x:1": T0, "oai:x:2": T0 + timedelta(hours=1)}


def test_sets_include_ancestors_but_headers_keep_given_specs(engine) -> None:
    with transaction(engine) as s:
        upsert_records(s, [rec("oai:x:1", sets=("a:b:c",)), rec("oai:x:2", sets=("a",))], now=T0)
    with transaction(engine) as s:
        specs = set(s.scalars(select(OAISet.spec)))
        assert specs == {"a", "a:b", "a:b:c"}
        for spec, expected in (("a", ["oai:x:1", "oai:x:2"]), ("a:b", ["oai:x:1"]), ("a:b:c", ["oai:x:1"])):
            q = queries.ListQuery("oai_dc", queries.set_id(s, spec))
            items = queries.list_items(s, q, after=None, limit=10, with_metadata=False)
            assert [i.identifier for i in items] == expected
        assert queries.get_item(s, "oai:x:1", "oai_dc").set_specs == ("a:b:c",)


def test_tombstone_keeps_formats_and_sets_without_metadata(engine) -> None:
    with transaction(engine) as s:
        upsert_records(s, [rec("oai:x:1", sets=("a:b",))], now=T0)
    with transaction(engine) as s:
        assert delete_record(s, "oai:x:1", now=T0 + timedelta(seconds=5)) is Change.DELETED
        assert delete_record(s, "oai:x:1") is Change.UNCHANGED
        assert delete_record(s, "oai:x:nope") is None
    with transaction(engine) as s:
        item = queries.get_item(s, "oai:x:1", "oai_dc")
        assert item.deleted and item.xml is None and item.set_specs == ("a:b",)
        assert item.datestamp == T0 + timedelta(seconds=5)
        # still a member of its sets (and their ancestors), with the new datestamp
        members = s.execute(select(RecordSet.datestamp)).scalars().all()
        assert members == [T0 + timedelta(seconds=5)] * 2


def test_keyset_pages_cover_everything_once(engine) -> None:
    with transaction(engine) as s:
        upsert_records(s, [rec(f"oai:x:{i}") for i in range(30)], now=T0)
        upsert_records(s, [rec(f"oai:y:{i}") for i in range(25)], now=T0 + timedelta(seconds=1))
    seen, after = [], None
    with transaction(engine) as s:
        q = queries.ListQuery("oai_dc")
        assert queries.count_items(s, q) == 55
        while True:
            page = queries.list_items(s, q, after=after, limit=7, with_metadata=True)
            if not page:
                break
            seen += [i.identifier for i in page]
            after = (page[-1].datestamp, page[-1].id)
    assert len(seen) == len(set(seen)) == 55


def test_migrations_upgrade_empty_database_and_step_back(database_url: str) -> None:
    engine = store_engine.make_engine(database_url)
    head = store_engine.head_revision()
    assert store_engine.current_revision(engine) == head
    store_engine.check_schema(engine)
    store_engine.downgrade(engine, "-1")
    with pytest.raises(SchemaError, match="oai db upgrade"):
        store_engine.check_schema(engine)
    store_engine.upgrade(engine)
    assert store_engine.current_revision(engine) == head
    with transaction(engine) as s:
        assert s.scalar(select(func.count()).select_from(Record)) == 0
    engine.dispose()


def test_headers_list_only_the_sets_no_other_implies(engine) -> None:
    """2.6: "only the minimum number of setSpec elements required"; a:b implies a. Memberships keep every
    ancestor, so that selective harvesting of `a` still finds the record."""
    assert header_specs(["a", "a:b", "c", "a:b", "a:b:c", "d:e"]) == "c a:b:c d:e"  # in the order given
    assert header_specs(["a:b", "a"]) == "a:b"
    assert header_specs(["ab", "a"]) == "ab a"  # a prefix of a name is not its parent
    assert header_specs(["a"]) == "a" and header_specs([]) == ""
    with transaction(engine) as s:
        upsert_records(s, [rec("oai:x:1", sets=("j", "j:elife", "other"))], now=T0)
    with transaction(engine) as s:
        assert queries.get_item(s, "oai:x:1", "oai_dc").set_specs == ("j:elife", "other")
        for spec in ("j", "j:elife", "other"):
            set_id = s.scalar(select(OAISet.id).where(OAISet.spec == spec))
            listed = queries.list_items(s, queries.ListQuery("oai_dc", set_id=set_id), after=None, limit=10, with_metadata=False)
            assert [i.identifier for i in listed] == ["oai:x:1"], spec


def test_the_migration_to_minimal_header_sets_rewrites_stored_records(database_url: str) -> None:
    engine = store_engine.make_engine(database_url)
    store_engine.downgrade(engine, "0004")
    with engine.begin() as conn:  # as the code before 0005 stored them
        conn.exec_driver_sql("INSERT INTO record (id, identifier, datestamp, deleted, set_specs, digest) VALUES "
                             "(1, 'oai:x:1', '2024-01-01 00:00:00', false, 'src src:a src:a:b', 'd'), "
                             "(2, 'oai:x:2', '2024-01-01 00:00:00', false, 'src', 'd'), "
                             "(3, 'oai:x:3', '2024-01-01 00:00:00', false, 'x y:z', 'd')")
    store_engine.upgrade(engine)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT identifier, set_specs, datestamp FROM record ORDER BY id").all()
    assert [tuple(r[:2]) for r in rows] == [("oai:x:1", "src:a:b"), ("oai:x:2", "src"), ("oai:x:3", "x y:z")]
    assert {str(r[2])[:19] for r in rows} == {"2024-01-01 00:00:00"}  # no datestamp moved
    engine.dispose()


def test_the_migration_to_memberships_keyed_by_record_keeps_every_row(database_url: str) -> None:
    """0006 rebuilds record_set's key (and, on SQLite, the table); up and down, no membership is lost or
    moved, and the key still refuses a membership twice."""
    engine = store_engine.make_engine(database_url)
    store_engine.downgrade(engine, "0005")
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO oai_set (id, spec, name) VALUES (1, 'a', 'A'), (2, 'a:b', 'B')")
        conn.exec_driver_sql("INSERT INTO record (id, identifier, datestamp, deleted, set_specs, digest) VALUES "
                             "(1, 'oai:x:1', '2024-01-01 00:00:00', false, 'a:b', 'd'), "
                             "(2, 'oai:x:2', '2024-01-02 00:00:00', false, 'a', 'd')")
        conn.exec_driver_sql("INSERT INTO record_set (set_id, record_id, datestamp) VALUES "
                             "(1, 1, '2024-01-01 00:00:00'), (2, 1, '2024-01-01 00:00:00'), "
                             "(1, 2, '2024-01-02 00:00:00')")
    query = "SELECT set_id, record_id, datestamp FROM record_set ORDER BY set_id, record_id"
    with engine.connect() as conn:
        before = conn.exec_driver_sql(query).all()
    for step in (store_engine.upgrade, lambda e: store_engine.downgrade(e, "0005"), store_engine.upgrade):
        step(engine)
        with engine.connect() as conn:
            assert conn.exec_driver_sql(query).all() == before
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO record_set (set_id, record_id, datestamp) "
                                 "VALUES (2, 1, '2024-01-01 00:00:00')")
    # a record's memberships are found by the key, which its id leads: no index of their own
    assert inspect(engine).get_pk_constraint("record_set")["constrained_columns"] == ["record_id", "set_id"]
    assert [ix["name"] for ix in inspect(engine).get_indexes("record_set")] == ["ix_record_set_set_datestamp"]
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            assert "WITHOUT ROWID" in conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = 'record_set'").scalar()
    engine.dispose()


def test_migrations_build_exactly_the_models(database_url: str) -> None:
    """The schema `oai db upgrade` builds is the one oai.store.models declares (indexes included)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from oai.store.models import Base

    engine = store_engine.make_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_a_store_stamped_by_the_withdrawn_0004_is_repaired_by_the_upgrade(database_url: str) -> None:
    """An outside audit: two migrations were numbered 0004. A store made while the first (an index, later
    withdrawn) was the newest kept that index and the column the second drops, and on SQLite the index made
    every list page a sort of the whole format."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from oai.store.models import Base

    engine = store_engine.make_engine(database_url)
    store_engine.downgrade(engine, "0003")
    with engine.begin() as conn:  # what the withdrawn 0004 did, stamped as the code of its time stamped it
        conn.exec_driver_sql("CREATE INDEX ix_record_metadata_prefix_record ON record_metadata (prefix, record_id)")
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0004'")
    store_engine.upgrade(engine)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    store_engine.downgrade(engine, "0003")  # and the way down is open again
    store_engine.upgrade(engine)
    engine.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sqlite_walks_list_pages_in_index_order(engine) -> None:  # noqa: ANN001
    """A page is an index range on (datestamp, id), never a sort of the whole format (no statistics needed)."""
    with transaction(engine) as s:
        upsert_records(s, [RecordIn(f"oai:x:{i}", {"oai_dc": b"<x/>"}, sets=("a",)) for i in range(50)])
    for set_id, after in ((None, None), (None, (datetime(2020, 1, 1), 3)), (1, (datetime(2020, 1, 1), 3))):
        q = queries.ListQuery("oai_dc", set_id, None, datetime(2100, 1, 1))
        stmt = queries._list_statement(set_id is not None, False, True, after is not None, True)  # noqa: SLF001
        values = {**queries._values(q), "limit": 10}  # noqa: SLF001
        if after is not None:
            values["after_datestamp"], values["after_id"] = after
        with engine.connect() as conn:
            compiled = stmt.params(values).compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
            plan = " | ".join(row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}"))
        assert "TEMP B-TREE" not in plan, plan


def test_writers_analyze_postgresql_each_time_the_store_grows_by_half(engine) -> None:  # noqa: ANN001
    """Without it a long load keeps the sequential-scan plans made when the tables were empty (statistics.py)."""
    growth = GrowthAnalyzer(engine, at_least=20, share=0.5, base=0)
    ran = []
    for batch in range(6):
        with transaction(engine) as s:
            upsert_records(s, [rec(f"oai:x:g{batch}-{i}") for i in range(20)])
        ran.append(growth.wrote(20))
        if ran[-1]:
            with engine.connect() as conn:
                estimate = conn.exec_driver_sql("SELECT reltuples FROM pg_class WHERE relname = 'record'").scalar()
            assert estimate == 20 * (batch + 1)  # ANALYZE really ran, on this store
    assert ran == ([True, True, True, False, True, False] if engine.dialect.name == "postgresql" else [False] * 6)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_load_vacuum_sets_the_visibility_map_and_leaves_the_toast_table_to_autovacuum(engine) -> None:  # noqa: ANN001
    """completeListSize counts from an index need the tables' visibility map; the TOAST table (the bulk of a
    store's bytes) is not read for it."""
    import os

    big = b"<x>" + os.urandom(6000).hex().encode() + b"</x>"  # stored out of line, in the TOAST table
    with transaction(engine) as s:
        upsert_records(s, [rec(f"oai:x:v{i}", big) for i in range(200)])
    analyze(engine, vacuum=True)
    with engine.connect() as conn:
        all_visible, pages, vacuums, toast_bytes, toast_vacuums = conn.exec_driver_sql(
            "SELECT c.relallvisible, c.relpages, s.vacuum_count, pg_relation_size(c.reltoastrelid), "
            "ts.vacuum_count "
            "FROM pg_class c JOIN pg_stat_all_tables s ON s.relid = c.oid "
            "JOIN pg_stat_all_tables ts ON ts.relid = c.reltoastrelid WHERE c.relname = 'record_metadata'"
        ).one()
    assert vacuums == 1 and pages > 0 and all_visible == pages
    assert toast_bytes > 0 and toast_vacuums == 0


def test_a_batch_waiting_for_the_write_lock_is_stamped_when_it_has_it(tmp_path) -> None:  # noqa: ANN001
    """A datestamp taken before the wait for SQLite's write lock would be older than the commit ahead of it:
    a harvest listed in between gets a responseDate after that stamp, and its next `from` skips the record."""
    import threading
    import time

    from oai.store.engine import make_engine, transaction, upgrade
    from oai.store.records import RecordIn, upsert_records

    engine = make_engine(f"sqlite:///{tmp_path / 'lock.sqlite3'}")
    upgrade(engine)
    released: list[datetime] = []

    def hold_the_lock() -> None:
        with engine.begin() as conn:  # BEGIN IMMEDIATE: the write lock, until the block commits
            conn.exec_driver_sql("SELECT 1")
            time.sleep(1.5)
            released.append(datetime.now(UTC).replace(tzinfo=None, microsecond=0))  # the lock goes right after

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    time.sleep(0.1)  # the holder has the lock: this batch waits for it
    with transaction(engine) as s:
        upsert_records(s, [RecordIn(identifier="oai:example.org:late", metadata={"oai_dc": b""}, deleted=True)])
    holder.join()
    with engine.connect() as conn:
        stamp = conn.exec_driver_sql("SELECT datestamp FROM record").scalar()
    engine.dispose()
    assert datetime.fromisoformat(str(stamp)) >= released[0]


def test_a_command_on_a_missing_sqlite_file_says_so_and_creates_nothing(tmp_path) -> None:  # noqa: ANN001
    from click.testing import CliRunner

    from oai.cli import main

    missing = tmp_path / "nowhere.sqlite3"
    result = CliRunner().invoke(main, ["--database", f"sqlite:///{missing}", "records", "list"])
    assert result.exit_code == 1 and f"there is no database at {missing}: `oai db upgrade` creates it" in result.output
    assert not missing.exists()
    assert CliRunner().invoke(main, ["--database", f"sqlite:///{missing}", "db", "upgrade"]).exit_code == 0
    assert CliRunner().invoke(main, ["--database", f"sqlite:///{missing}", "records", "list"]).exit_code == 0


def test_db_downgrade_takes_a_relative_revision_as_the_readme_says(tmp_path) -> None:  # noqa: ANN001
    from click.testing import CliRunner

    from oai.cli import main

    url = f"sqlite:///{tmp_path / 'steps.sqlite3'}"
    assert CliRunner().invoke(main, ["--database", url, "db", "upgrade"]).exit_code == 0
    stepped = CliRunner().invoke(main, ["--database", url, "db", "downgrade", "-1"])  # click took -1 for an option
    from alembic.script import ScriptDirectory

    before_head = ScriptDirectory(str(store_engine.MIGRATIONS_DIR)).get_revision(store_engine.head_revision())
    assert stepped.exit_code == 0 and f"schema at revision {before_head.down_revision}" in stepped.output, stepped.output


def test_upgrades_run_at_once_from_several_nodes_all_succeed(empty_postgres_database: str) -> None:
    """Each web node's unit runs `oai db upgrade` before it starts (deploy/oai-web.service). An outside audit
    started three at once: on a fresh PostgreSQL database two failed with a traceback (duplicate type), and
    with one migration pending two failed in alembic. They now take turns; the later ones find nothing to do."""
    import os
    import subprocess
    import sys

    url = empty_postgres_database
    oai = os.path.join(os.path.dirname(sys.executable), "oai")
    for step in ("fresh", "one pending"):
        if step == "one pending":
            engine = store_engine.make_engine(url)
            store_engine.downgrade(engine, "-1")
            engine.dispose()
        nodes = [subprocess.Popen([oai, "--database", url, "db", "upgrade"], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True) for _ in range(4)]
        outputs = [(node.communicate(timeout=120)[0], node.returncode)[::-1] for node in nodes]
        assert all(code == 0 for code, _ in outputs), (step, outputs)
        assert not any("Traceback" in out for _, out in outputs), (step, outputs)
        engine = store_engine.make_engine(url)
        assert store_engine.current_revision(engine) == store_engine.head_revision()
        engine.dispose()


def test_record_digests_stay_what_stores_already_hold() -> None:
    """Stored digests decide whether a datestamp moves: a change to how they are computed would make every
    record of every store look changed at its next load or harvest. These are the digests stores hold."""
    items = [RecordIn("oai:x:1", {"oai_dc": "<dc>Ж</dc>".encode(), "jats": b"<article/>" * 300},
                      sets=("b", "a:c", "a:c"), about={"oai_dc": b"<provenance/>"}, upstream_datestamp="2020-01-01"),
             RecordIn("oai:x:2", {"oai_dc": b"x"}, deleted=True)]
    assert [item.digest() for item in items] == [
        "0a1627742a3eaf5dec28666ad71df73e683831eebfc173d5de71a9c7b472e1ce",
        "ab0ac028176fda79bb46cda91be997f989285eeea6f5b5adf2299d1cdf0f8c42",
    ]


def test_stepping_the_schema_down_and_up_keeps_the_harvest_history(database_url: str) -> None:
    """An outside audit: on SQLite the downgrade through 0002 rebuilt `source` and `harvest_run` by copying and
    dropping them, and with foreign keys on, the drops cascaded: every run and checkpoint deleted, every
    harvested record's source_id set to NULL."""
    from oai.store.models import HarvestCheckpoint, HarvestRun, Quarantine, Source

    engine = store_engine.make_engine(database_url)
    with transaction(engine) as s:
        s.add(Source(id=1, name="up", base_url="http://127.0.0.1:9/oai", created=T0))
        s.flush()
        s.add(HarvestRun(id=1, source_id=1, started=T0, status="interrupted"))
        s.flush()
        s.add(HarvestCheckpoint(source_id=1, run_id=1, resumption_token="t", updated=T0))
        s.add(Quarantine(id=1, source_id=1, run_id=1, upstream_identifier="oai:up:1", reason="r", raw=b"x", created=T0))
        upsert_records(s, [rec("oai:x:1"), rec("oai:x:2")], now=T0)
        s.execute(Record.__table__.update().values(source_id=1))
    counts = ("SELECT (SELECT count(*) FROM harvest_run), (SELECT count(*) FROM harvest_checkpoint), "
              "(SELECT count(*) FROM record WHERE source_id = 1), (SELECT count(*) FROM quarantine WHERE run_id = 1)")
    for step in (lambda: store_engine.downgrade(engine, "0001"), lambda: store_engine.upgrade(engine)):
        step()
        with engine.connect() as conn:
            assert tuple(conn.exec_driver_sql(counts).one()) == (1, 1, 2, 1)
    with engine.connect() as conn:  # and the keys are enforced again on the connection the migration used
        with pytest.raises(IntegrityError):
            conn.exec_driver_sql("INSERT INTO harvest_run (id, source_id, started, status, \"full\", pages, seen, new, "
                                 "updated, unchanged, deleted, quarantined) VALUES "
                                 "(2, 99, '2024-01-01 00:00:00', 'x', false, 0, 0, 0, 0, 0, 0, 0)")
    engine.dispose()


def test_schema_commands_say_in_one_line_what_they_cannot_do(tmp_path) -> None:  # noqa: ANN001
    """An outside audit: a revision Alembic does not know, a schema newer than the code (for a downgrade, and for
    `oai demo`), a file that is not a database and another application's Alembic schema ended in tracebacks or
    were called "newer than this code"; `oai db current` on no file made an empty one."""
    import sqlite3
    from contextlib import closing

    from click.testing import CliRunner

    from oai.cli import main

    def oai(url: str, *args: str):  # noqa: ANN202
        return CliRunner().invoke(main, ["--database", url, *args])

    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    assert oai(url, "db", "upgrade").exit_code == 0
    for args in (("db", "upgrade", "0099"), ("db", "downgrade", "0099")):
        result = oai(url, *args)
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), (args, result.exception)
        assert "Can't locate revision identified by '0099'" in result.output.splitlines()[-1]

    def stamp(revision: str) -> None:
        with closing(sqlite3.connect(tmp_path / "store.sqlite3")) as db:
            db.execute("UPDATE alembic_version SET version_num = ?", (revision,))
            db.commit()

    stamp("0099")
    for args in (("db", "downgrade", "-1"), ("demo", "--no-serve"), ("db", "upgrade")):
        result = oai(url, *args)
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), (args, result.exception)
        assert "is at schema revision 0099, newer than this code knows" in result.output, result.output
    stamp("ae1027a6acf")  # Alembic's own kind of id: another application's schema
    result = oai(url, "records", "list")
    assert result.exit_code == 1 and "belongs to another application (its schema revision ae1027a6acf" in result.output

    (tmp_path / "text.sqlite3").write_text("not a database " * 100)
    for args in (("db", "current"), ("db", "upgrade"), ("records", "list"), ("load", str(tmp_path))):
        result = oai(f"sqlite:///{tmp_path / 'text.sqlite3'}", *args)
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), (args, result.exception)
        assert "cannot use the database" in result.output and "file is not a database" in result.output

    for args in (("db", "current"), ("db", "downgrade", "-1")):
        result = oai(f"sqlite:///{tmp_path / 'none.sqlite3'}", *args)
        assert result.exit_code == 1 and "there is no database at" in result.output, result.output
        assert not (tmp_path / "none.sqlite3").exists()


def test_run_and_quarantine_numbers_are_never_reused(database_url: str) -> None:
    """An outside audit: on SQLite, after the newest runs or quarantine entries were deleted (a source removed, an
    entry replaced), their numbers came back for others, and a `--raw ID` noted earlier showed another record. Also
    for a store migrated from 0008 with rows in it."""
    from datetime import datetime

    from sqlalchemy import delete, insert

    from oai.store.models import HarvestRun, Quarantine, Source

    engine = store_engine.make_engine(database_url)
    store_engine.downgrade(engine, "0008")
    now = datetime(2026, 1, 1)
    with engine.begin() as conn:
        source = conn.execute(insert(Source).values(name="s", base_url="http://127.0.0.1:9/oai", prefix="oai_dc",
                                                    created=now).returning(Source.id)).scalar()
        conn.execute(insert(HarvestRun), [{"source_id": source, "started": now} for _ in range(3)])
        conn.execute(insert(Quarantine), [{"source_id": source, "reason": "r", "raw": b"x", "created": now}] * 3)
    store_engine.upgrade(engine)
    with engine.begin() as conn:
        runs = conn.execute(select(HarvestRun.id).where(HarvestRun.source_id == source)).scalars().all()
        entries = conn.execute(select(Quarantine.id).where(Quarantine.source_id == source)).scalars().all()
        conn.execute(delete(HarvestRun).where(HarvestRun.id == max(runs)))  # the newest: SQLite gave its number again
        conn.execute(delete(Quarantine).where(Quarantine.id == max(entries)))
        run = conn.execute(insert(HarvestRun).values(source_id=source, started=now).returning(HarvestRun.id)).scalar()
        entry = conn.execute(insert(Quarantine).values(source_id=source, reason="r", raw=b"x", created=now)
                             .returning(Quarantine.id)).scalar()
        conn.execute(delete(Source).where(Source.id == source))
    assert run > max(runs) and entry > max(entries)
    engine.dispose()


def test_a_postgresql_database_not_yet_created_is_said_with_the_step_that_makes_it(empty_postgres_database) -> None:  # noqa: ANN001
    """An outside audit: 'database "x" does not exist' without the next step, where the README says `oai db upgrade`
    makes the schema (it does not make the database)."""
    from click.testing import CliRunner
    from sqlalchemy.engine import make_url

    from oai.cli import main

    missing = make_url(empty_postgres_database).set(database=make_url(empty_postgres_database).database + "_never")
    url = missing.render_as_string(hide_password=False)
    result = CliRunner().invoke(main, ["--database", url, "db", "upgrade"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    # with where and as whom (createdb alone asks the local socket as the system user), quoted for the shell
    assert f"does not exist; create it first (createdb -h {missing.host} -p {missing.port} -U {missing.username} " \
           f"{missing.database}, or CREATE DATABASE in psql), then run `oai db upgrade`" in result.output, result.output


def test_landing_page_facts_newer_code_derives_are_written_without_moving_the_datestamp(engine) -> None:  # noqa: ANN001
    """Loading or harvesting a record again whose served bytes are unchanged wrote nothing: landing-page facts that
    newer code derives (an article number, the title in other languages) never reached records stored before (an
    outside audit of an upgrade). They are written; the datestamp stays, for no harvester has anything new."""
    old = RecordIn("oai:example.org:c", {"oai_dc": b"<x/>"}, citation='{"title": "T"}')
    with transaction(engine) as s:
        upsert_records(s, [old], now=datetime(2020, 1, 1))
    new = RecordIn("oai:example.org:c", {"oai_dc": b"<x/>"}, citation='{"title": "T", "article_number": "e1"}')
    with transaction(engine) as s:
        assert upsert_records(s, [new], now=datetime(2021, 1, 1)) == [Change.UNCHANGED]
    with transaction(engine) as s:
        row = s.scalar(select(Record))
        assert (row.citation, row.datestamp) == (new.citation, datetime(2020, 1, 1))


def _cli(url: str, *args: str):  # noqa: ANN202
    from click.testing import CliRunner

    from oai.cli import main

    return CliRunner().invoke(main, ["--database", url, *args])


@pytest.mark.parametrize("table", ["record", "users"])
def test_a_database_holding_another_applications_tables_is_refused_in_one_line(tmp_path, table: str) -> None:  # noqa: ANN001
    """An outside upgrade audit: `oai db upgrade` of a SQLite file holding another application's table `record` ended
    in a 122-line traceback (the name taken); holding `users`, it added our tables beside it without a word."""
    import sqlite3
    from contextlib import closing

    path = tmp_path / "theirs.sqlite3"
    with closing(sqlite3.connect(path)) as db:
        db.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT)")
        db.commit()
    for args in (("db", "upgrade"), ("records", "list")):
        result = _cli(f"sqlite:///{path}", *args)
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), (args, result.output)
        assert f"holds tables ({table}) but no schema of ours: it belongs to another application" in result.output
    with closing(sqlite3.connect(path)) as db:
        assert [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == [table]


def test_a_store_an_old_downgrade_emptied_is_upgraded_again(tmp_path) -> None:  # noqa: ANN001
    """An outside review: a downgrade past the first revision (before it was refused) left alembic_version alone, and
    the store was then refused as another application's, by `oai db upgrade` and at boot."""
    from alembic import command

    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    assert _cli(url, "db", "upgrade").exit_code == 0
    engine = store_engine.make_engine(url)
    command.downgrade(store_engine.alembic_config(engine), "base")  # as `oai db downgrade base` did then
    engine.dispose()
    assert "has no schema yet: run `oai db upgrade`" in _cli(url, "records", "list").output
    assert _cli(url, "db", "upgrade").exit_code == 0 and _cli(url, "records", "list").exit_code == 0


def test_a_downgrade_that_would_drop_every_table_is_refused(tmp_path) -> None:  # noqa: ANN001
    """An outside upgrade audit: `oai db downgrade -1` at the first revision dropped every table, records included,
    without a word (the README says it steps back one revision)."""
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    assert _cli(url, "db", "upgrade", "0001").exit_code == 0
    for revision in ("-1", "base"):
        result = _cli(url, "db", "downgrade", revision)
        assert result.exit_code == 1 and "would drop every table" in result.output, result.output
    assert _cli(url, "db", "upgrade").exit_code == 0
    assert _cli(url, "db", "downgrade", f"-{int(store_engine.head_revision()) - 1}").exit_code == 0  # to 0001: kept
    assert "would drop every table" in _cli(url, "db", "downgrade", "-1").output
    assert "database: 0001" in _cli(url, "db", "current").output


def test_an_upgrade_behind_an_open_transaction_on_postgresql_gives_up_and_says_who(empty_postgres_database: str) -> None:
    """An outside upgrade audit: on PostgreSQL `oai db upgrade` waited for ever, silently, behind a session that held
    a table it changes in an open transaction, and every reader of that table queued behind it."""
    import psycopg

    url = empty_postgres_database
    assert _cli(url, "db", "upgrade", "0005").exit_code == 0
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), application_name="idle-reader") as held:
        held.execute("SELECT count(*) FROM record_set")  # its transaction stays open, holding the table
        result = _cli(url, "db", "upgrade")
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "idle-reader" in result.output and "run `oai db upgrade` again" in result.output, result.output
    assert "database: 0005" in _cli(url, "db", "current").output
    assert _cli(url, "db", "upgrade").exit_code == 0


def test_sessions_holding_a_table_are_said_even_where_their_details_are_hidden() -> None:
    """An outside review: to a role that is not a superuser, another role's session shows no state nor transaction
    start (PostgreSQL's docs), and formatting the missing start was a traceback where one line was meant."""
    from datetime import timezone

    began = datetime(2026, 12, 5, 8, 0, tzinfo=timezone.utc)
    assert store_engine.holders_said([(41, "idle in transaction", "psql", began), (42, None, "", None)]) == (
        "PostgreSQL backend 41 (idle in transaction, psql, in a transaction since 2026-12-05 08:00:00 UTC); "
        "PostgreSQL backend 42 (state not shown)")
    assert store_engine.holders_said([]) == "another session"


def test_a_deletion_check_owed_before_0010_is_owed_by_the_sources_newest_complete_run(database_url: str) -> None:
    """Migration 0010 keeps which run owes a source's deletion check, where 0008 kept only that one was owed: the
    newest complete run of the source, as the history then took it; and back."""
    from sqlalchemy import text

    engine = store_engine.make_engine(database_url)
    store_engine.downgrade(engine, "0009")
    with engine.begin() as conn:
        for name, owed in (("owes", True), ("clear", False)):
            conn.execute(text("INSERT INTO source (name, base_url, prefix, created, deletion_check_owed, every_seconds, "
                              "keep_upstream_identifiers, detect_deletions, enabled) VALUES (:n, 'http://127.0.0.1:9/oai', "
                              "'oai_dc', '2026-01-01 00:00:00', :o, NULL, false, false, true)"), {"n": name, "o": owed})
        for name, status in (("owes", "complete"), ("owes", "complete"), ("owes", "failed"), ("clear", "complete")):
            conn.execute(text("INSERT INTO harvest_run (source_id, started, status, \"full\", pages, seen, new, updated, "
                              "unchanged, deleted, quarantined) SELECT id, '2026-01-01 00:00:00', :s, false, 0, 0, 0, "
                              "0, 0, 0, 0 FROM source WHERE name = :n"), {"n": name, "s": status})
        newest = conn.execute(text("SELECT max(r.id) FROM harvest_run r JOIN source s ON s.id = r.source_id WHERE "
                                   "s.name = 'owes' AND r.status = 'complete'")).scalar()
    store_engine.upgrade(engine)
    with engine.begin() as conn:
        assert dict(conn.execute(text("SELECT name, deletion_check_owed_by FROM source")).all()) == {
            "owes": newest, "clear": None}
    store_engine.downgrade(engine, "0009")
    with engine.begin() as conn:
        assert {n: bool(o) for n, o in conn.execute(text("SELECT name, deletion_check_owed FROM source")).all()} == {
            "owes": True, "clear": False}
    store_engine.upgrade(engine)
    engine.dispose()
