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
    assert again.exit_code == 1 and "holds a store already (record has rows): copy into an empty one" in again.output
    assert {t: r for t, r in rows(into).items() if t != "setting"} == {t: r for t, r in after.items() if t != "setting"}
    moved = store_engine.make_engine(into)  # new ids go on after the copied ones
    with moved.begin() as conn:
        conn.execute(text("INSERT INTO oai_set (spec, name) VALUES ('new', 'New')"))
        assert conn.scalar(text("SELECT id FROM oai_set WHERE spec = 'new'")) > max(r[0] for r in after["oai_set"])
    moved.dispose()


def _identifiers(url: str) -> list[str]:
    listed = oai(url, "records", "list")
    return [word for line in listed.output.splitlines() for word in line.split() if word.startswith("oai:")]
