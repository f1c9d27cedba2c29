"""`oai db copy`: a store begun on SQLite moved whole to PostgreSQL (or another SQLite file), as it was."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from sqlalchemy import select, text

from conftest import LiveServer
from harvest_fixtures import add, options
from harvester.runs import harvest_source
from oai.cli import main
from oai.store import engine as store_engine
from oai.store.models import Base
from upstream import sample_records
from upstream.fixtures import upstream  # noqa: F401  (fixtures)


def oai(url: str, *args: str):  # noqa: ANN201
    return CliRunner().invoke(main, ["--database", url, *args])


def rows(url: str) -> dict[str, list[tuple]]:
    engine = store_engine.make_engine(url)
    with engine.connect() as conn:
        found = {t.name: sorted(tuple(r) for r in conn.execute(select(t)).all()) for t in Base.metadata.sorted_tables}
    engine.dispose()
    return found


@pytest.mark.parametrize("target", ["sqlite", "postgresql"])
def test_a_store_is_copied_whole_and_served_as_it_was(tmp_path: Path, target: str, upstream, request) -> None:  # noqa: ANN001, F811
    """A repository begun on SQLite (`oai demo`, as the README's first command) had no way to PostgreSQL but
    loading its files again and harvesting its sources afresh: new datestamps, no history, tokens refused."""
    source = f"sqlite:///{tmp_path / 'begun.sqlite3'}"
    assert oai(source, "demo", "--no-serve").exit_code == 0
    assert oai(source, "delete", next(iter(_identifiers(source)))).exit_code == 0
    upstream.repo.add(*sample_records(7))
    engine = store_engine.make_engine(source)
    add(engine, "up", upstream.base_url)
    assert harvest_source(engine, "up", options()).status == "complete"
    engine.dispose()
    into = (f"sqlite:///{tmp_path / 'moved.sqlite3'}" if target == "sqlite"
            else request.getfixturevalue("empty_postgres_database"))

    copied = oai(source, "db", "copy", into)
    assert copied.exit_code == 0, copied.output
    assert re.search(r"copied \d+ records into ", copied.output) and "record_metadata: " in copied.output
    before, after = rows(source), rows(into)
    assert before == after and before["record"] and before["harvest_run"] and before["setting"]

    # served as it was: a token the old store's server handed out is good on the new one's
    from oai.web.app import create_app

    pages = []
    for url in (source, into):
        server = LiveServer(create_app({"database_url": url, "page_size": 5, "lookahead": False,
                                        "base_url": "https://repository.example.org/oai"}))
        try:
            if not pages:
                first = requests.get(server.url, params={"verb": "ListRecords", "metadataPrefix": "oai_dc"}, timeout=10)
                token = re.search(r"<resumptionToken[^>]*>([^<]+)<", first.text).group(1)
            page = requests.get(server.url, params={"verb": "ListRecords", "resumptionToken": token}, timeout=10)
            pages.append(re.sub(r"<responseDate>[^<]*</responseDate>|<resumptionToken[^>]*>[^<]*<", "", page.text))
        finally:
            server.close()
    assert pages[0] == pages[1] and "<record>" in pages[1]

    again = oai(source, "db", "copy", into)  # it holds a store now: not written over
    assert again.exit_code == 1 and "holds rows already (oai_set): copy into an empty one" in again.output
    assert {t: r for t, r in rows(into).items() if t != "setting"} == {t: r for t, r in after.items() if t != "setting"}
    moved = store_engine.make_engine(into)  # new ids go on after the copied ones
    with moved.begin() as conn:
        conn.execute(text("INSERT INTO oai_set (spec, name) VALUES ('new', 'New')"))
        assert conn.scalar(text("SELECT id FROM oai_set WHERE spec = 'new'")) > max(r[0] for r in after["oai_set"])
    moved.dispose()


def _identifiers(url: str) -> list[str]:
    listed = oai(url, "records", "list")
    return [word for line in listed.output.splitlines() for word in line.split() if word.startswith("oai:")]


@pytest.mark.parametrize("target", ["sqlite", "postgresql"])
def test_a_copy_numbers_on_after_every_number_given_and_refuses_any_row(tmp_path: Path, target: str, request) -> None:  # noqa: ANN001
    """An outside audit of `oai db copy`: a removed source's last run number was given again on the copy (the copy
    carried rows, not the numbers given out); a target holding only a stray quarantine row was merged into (or
    failed with a traceback); a hard link to the store itself passed for another file."""
    from datetime import datetime

    from sqlalchemy import delete, insert

    from oai.store.models import HarvestRun, Quarantine, Source

    source = f"sqlite:///{tmp_path / 'begun.sqlite3'}"
    assert oai(source, "db", "upgrade").exit_code == 0
    engine = store_engine.make_engine(source)
    now = datetime(2026, 1, 1)
    with engine.begin() as conn:
        kept = conn.execute(insert(Source).values(name="kept", base_url="http://127.0.0.1:9/oai", prefix="oai_dc",
                                                  created=now).returning(Source.id)).scalar()
        gone = conn.execute(insert(Source).values(name="gone", base_url="http://127.0.0.1:8/oai", prefix="oai_dc",
                                                  created=now).returning(Source.id)).scalar()
        conn.execute(insert(HarvestRun), [{"source_id": kept, "started": now}, {"source_id": gone, "started": now}])
        conn.execute(insert(Quarantine), [{"source_id": gone, "reason": "r", "raw": b"x", "created": now}] * 2)
        conn.execute(delete(Source).where(Source.id == gone))  # its runs go with it; run 2 is never given again
        conn.execute(delete(Quarantine).where(Quarantine.id == 2))
    engine.dispose()

    into = (f"sqlite:///{tmp_path / 'moved.sqlite3'}" if target == "sqlite"
            else request.getfixturevalue("empty_postgres_database"))
    assert oai(into, "db", "upgrade").exit_code == 0
    stray = store_engine.make_engine(into)
    with stray.begin() as conn:  # what a removed source leaves behind in a store: a quarantine entry of no source
        conn.execute(insert(Quarantine).values(id=50, reason="r", raw=b"x", created=now))
    refused = oai(source, "db", "copy", into)
    assert refused.exit_code == 1 and "holds rows already (quarantine): copy into an empty one" in refused.output
    with stray.begin() as conn:
        conn.execute(delete(Quarantine))
    copied = oai(source, "db", "copy", into)
    assert copied.exit_code == 0, copied.output
    with stray.begin() as conn:
        run = conn.execute(insert(HarvestRun).values(source_id=kept, started=now).returning(HarvestRun.id)).scalar()
        entry = conn.execute(insert(Quarantine).values(reason="r", raw=b"x", created=now)
                             .returning(Quarantine.id)).scalar()
    stray.dispose()
    assert (run, entry) == (3, 3)

    if target == "sqlite":
        (tmp_path / "linked.sqlite3").hardlink_to(tmp_path / "begun.sqlite3")
        itself = oai(source, "db", "copy", f"sqlite:///{tmp_path / 'linked.sqlite3'}")
        assert itself.exit_code == 1 and "the target is the store itself" in itself.output


def test_a_copy_leaves_the_store_it_reads_free_to_write(tmp_path: Path) -> None:
    """An outside audit of `oai db copy`: it read the store inside the write lock (BEGIN IMMEDIATE) for the whole copy,
    so a server serving that store answered 503 after 30 s, and a load failed, where the README says a server may go
    on serving it."""
    import sqlite3
    from contextlib import closing

    from oai.store.copy import copy_store

    path = tmp_path / "begun.sqlite3"
    assert oai(f"sqlite:///{path}", "demo", "--no-serve").exit_code == 0
    wrote = []

    def write_meanwhile(_table: str, _rows: int) -> None:
        with closing(sqlite3.connect(path, timeout=0.5, isolation_level=None)) as db:
            db.execute("BEGIN IMMEDIATE")  # a writer of the store: 'database is locked' if the copy held it
            db.execute("ROLLBACK")
        wrote.append(1)

    source, target = (store_engine.make_engine(f"sqlite:///{p}") for p in (path, tmp_path / "moved.sqlite3"))
    copy_store(source, target, write_meanwhile)
    source.dispose()
    target.dispose()
    assert len(wrote) == len(Base.metadata.sorted_tables)


def test_a_target_behind_or_ahead_says_what_makes_it_usable(tmp_path: Path) -> None:
    """An outside audit of `oai db copy`: a target at an older schema was told to run `oai db upgrade`, which (with
    OAI_DATABASE_URL naming the store) upgrades the store, not the target; one made by newer code was told the same."""
    import sqlite3
    from contextlib import closing

    source, behind, ahead = (f"sqlite:///{tmp_path / name}" for name in ("s.sqlite3", "b.sqlite3", "a.sqlite3"))
    for url in (source, ahead):
        assert oai(url, "db", "upgrade").exit_code == 0
    assert oai(behind, "db", "upgrade", "0008").exit_code == 0
    said = oai(source, "db", "copy", behind)
    assert said.exit_code == 1 and "the target: " in said.output and "`oai --database TARGET db upgrade`" in said.output
    with closing(sqlite3.connect(tmp_path / "a.sqlite3")) as db:
        db.execute("UPDATE alembic_version SET version_num = '0099'")
        db.commit()
    said = oai(source, "db", "copy", ahead)
    assert said.exit_code == 1 and "newer than this code knows" in said.output and "db upgrade`" not in said.output
