"""`oai load` with worker processes loads what it loads without them, in the same order of events."""

from __future__ import annotations

import json
import shutil

import pytest
from sqlalchemy import select

from oai.formats.dc import build_dc
from oai.formats.safexml import canonical_bytes
from oai.loader import CHUNK, load
from oai.store.engine import make_engine, transaction
from oai.store.models import OAISet, Record, RecordMetadata

N = 3 * CHUNK + 7  # several chunks in flight, the last one short


def _corpus(root) -> None:  # noqa: ANN001
    for i in range(N):
        sub = root / f"{i // 100:02d}"
        sub.mkdir(exist_ok=True)
        fields = [("title", f"Article {i} & <its> title", "en"), ("identifier", f"https://doi.org/10.5555/load.{i}", None)]
        (sub / f"{i:04d}.xml").write_bytes(canonical_bytes(build_dc(fields)))
    (root / "00" / "0005.xml").write_bytes(b"<not-closed>")  # a bad file is reported, the rest load
    (root / "01" / "0150.xml").write_bytes((root / "01" / "0149.xml").read_bytes())  # same DOI twice


def _stored(engine) -> dict:  # noqa: ANN001
    with transaction(engine) as s:
        rows = s.execute(select(Record.identifier, Record.citation, RecordMetadata.prefix, RecordMetadata.xml)
                         .join(RecordMetadata, RecordMetadata.record_id == Record.id))
        return {(r.identifier, r.prefix): (r.citation, r.xml) for r in rows}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_parallel_load_matches_a_serial_one(engine, tmp_path, _sqlite_template) -> None:  # noqa: ANN001
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    _corpus(corpus)
    results = {}
    for workers in (1, 2):
        path = tmp_path / f"store-{workers}.sqlite3"
        shutil.copy(_sqlite_template, path)
        target = make_engine(f"sqlite:///{path}")
        summary = load(target, [str(corpus)], repository_identifier="example.org", workers=workers)
        results[workers] = (summary.new, summary.failed, summary.warnings, _stored(target))
        target.dispose()
    serial, parallel = results[1], results[2]
    assert serial[0] == N - 2 and len(serial[3]) == N - 2
    assert [name.rsplit("/", 2)[-2:] for name, _ in serial[1]] == [["00", "0005.xml"], ["01", "0150.xml"]]
    assert "already used by" in serial[1][1][1]
    assert parallel == serial


def test_directories_are_listed_in_path_order(tmp_path) -> None:  # noqa: ANN001
    from pathlib import Path

    from oai.loader import SUFFIXES, discover

    for rel in ("a/x.xml", "a-b/x.xml", "a.xml", "A/z.XML", "a/b/c/d.nxml", "a/b.jats", "a/notes.txt", "b/.hidden.xml"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"<x/>")
    expected = [str(p) for p in sorted(Path(tmp_path).rglob("*"))
                if p.is_file() and p.suffix.lower() in SUFFIXES and not p.name.startswith(".")]  # hidden: left out
    assert list(discover([str(tmp_path)])) == expected and len(expected) == 6


def test_identifiers_made_from_odd_dois_are_served_and_fetchable(engine, live_server, tmp_path) -> None:  # noqa: ANN001
    """A DOI may hold '%', '[' or '#' as they are; our identifiers must still be URIs (OAI-PMH 2.4, and
    OAI-PMH.xsd's anyURI rejects a lone '%'), or every page listing the item fails validation and
    GetRecord cannot ask for it. A '%' that already starts an escape is kept: identifiers made before stay.
    (Given bare: in a URI, https://doi.org/..., a DOI is percent-encoded, and read decoded; see test_pages.)"""
    from endpoint_helpers import errors, get, headers

    dois = {"10.5555/50%off": "oai:example.org:10.5555/50%25off",
            "10.5555/a%2Fb": "oai:example.org:10.5555/a%2fb",
            "10.5555/x[1]#y#z": "oai:example.org:10.5555/x%5B1%5D%23y%23z"}
    for i, doi in enumerate(dois):
        fields = [("title", f"Odd DOI {i}", "en"), ("identifier", doi, None)]
        (tmp_path / f"odd{i}.xml").write_bytes(canonical_bytes(build_dc(fields)))
    summary = load(engine, [str(tmp_path)], repository_identifier="example.org", workers=1)
    assert summary.failed == [] and summary.new == 3
    server = live_server()
    _, root = get(server, verb="ListIdentifiers", metadataPrefix="oai_dc")  # validated against OAI-PMH.xsd
    assert sorted(h.identifier for h in headers(root)) == sorted(dois.values())
    for identifier in dois.values():
        _, root = get(server, verb="GetRecord", metadataPrefix="oai_dc", identifier=identifier)
        assert errors(root) == [] and [h.identifier for h in headers(root)] == [identifier]


def test_an_articles_oai_dc_loaded_after_its_jats_names_the_same_record(engine, tmp_path) -> None:  # noqa: ANN001
    """An outside audit: a JATS article with an old SICI DOI (10.1002/(SICI)...:8<693::AID-ASI4>...) and the oai_dc
    our server derives from it (its DOI URL percent-encoded) were loaded as two records, ...%3C693... and
    ...%3c693...; so were two oai_dc files naming https://doi.org/10.9999/%C3%BCn and .../10.9999/ün."""
    from pathlib import Path

    from oai.formats.jats_crosswalk import doi_url

    seed = (Path(__file__).resolve().parents[1] / "oai" / "demo" / "irkutsk-bulletin-2020-32-44.xml").read_bytes()
    sici = "10.1002/(SICI)1097-4571(199806)49:8<693::AID-ASI4>3.0.CO;2-0"
    (tmp_path / "a.xml").write_bytes(seed.replace(b"10.26516/2073-3380.2020.32.44", sici.replace("<", "&lt;").encode()))
    (tmp_path / "b.xml").write_bytes(canonical_bytes(build_dc([("title", "Same", "en"),
                                                               ("identifier", doi_url(sici), None)])))
    (tmp_path / "c.xml").write_bytes(canonical_bytes(build_dc([("title", "Ü", "en"),
                                                               ("identifier", "https://doi.org/10.9999/%C3%BCn", None)])))
    (tmp_path / "d.xml").write_bytes(canonical_bytes(build_dc([("title", "Ü", "en"),
                                                               ("identifier", "https://doi.org/10.9999/ün", None)])))
    assert load(engine, [str(tmp_path / "a.xml")], repository_identifier="example.org", workers=1).new == 1
    again = load(engine, [str(tmp_path / "b.xml"), str(tmp_path / "c.xml")], repository_identifier="example.org",
                 workers=1)
    assert (again.new, again.failed) == (1, [])  # b replaces a's record; c is new
    assert load(engine, [str(tmp_path / "d.xml")], repository_identifier="example.org", workers=1).new == 0
    with engine.connect() as conn:
        assert len(conn.execute(select(Record.identifier)).all()) == 2


def test_a_template_that_makes_no_uri_fails_that_input(engine, tmp_path) -> None:  # noqa: ANN001
    (tmp_path / "a.xml").write_bytes(canonical_bytes(build_dc([("title", "A", "en")])))
    summary = load(engine, [str(tmp_path)], repository_identifier="example.org", identifier_template="my {stem}",
                   workers=1)
    assert summary.new == 0 and len(summary.failed) == 1
    assert "cannot serve it" in summary.failed[0][1] and "'my a'" in summary.failed[0][1]
    # a URI, but not an oai-identifier (an outside audit found it served under Identify's oai-identifier scheme)
    for template in ("oai:example.org:café/{stem}", "oai:example.org:{stem}#x", "OAI:example.org:{stem}"):
        summary = load(engine, [str(tmp_path)], repository_identifier="example.org", identifier_template=template,
                       workers=1)
        assert summary.new == 0 and "is in the oai scheme but not in its syntax" in summary.failed[0][1], template
    for template in ("oai:example.org:{stem.__class__}", "oai:example.org:{stem[0]}", "oai:example.org:{}"):
        summary = load(engine, [str(tmp_path)], repository_identifier="example.org", identifier_template=template,
                       workers=1)
        assert summary.new == 0 and "is not one of {repository_identifier}" in summary.failed[0][1], template


def test_a_directory_with_nothing_to_load_and_a_dangling_link_are_failures_said(engine, tmp_path) -> None:  # noqa: ANN001
    """An outside audit: both were passed over in silence, exit code 0, as if the load had done what was asked."""
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "notes.txt").write_text("not an input")
    (tmp_path / "some").mkdir()
    (tmp_path / "some" / "gone.xml").symlink_to(tmp_path / "nowhere.xml")
    (tmp_path / "some" / "blank.xml").write_bytes(b"")  # its reason does not name it again (it was said twice)
    summary = load(engine, [str(tmp_path / "empty"), str(tmp_path / "some")], repository_identifier="example.org",
                   workers=1)
    assert summary.failed == [(str(tmp_path / "empty"), "no .jats, .nxml or .xml file below this directory"),
                              (str(tmp_path / "some" / "blank.xml"), "empty document"),
                              (str(tmp_path / "some" / "gone.xml"), "cannot read: No such file or directory")]


def test_a_set_name_given_again_renames_the_set(engine, tmp_path) -> None:  # noqa: ANN001
    """`--set A:B=Sub` made A too (named A); a later `--set A=Top` names it (an outside audit found it kept 'A')."""
    (tmp_path / "a.xml").write_bytes(canonical_bytes(build_dc([("title", "A", "en")])))
    load(engine, [str(tmp_path)], repository_identifier="example.org", sets=[("A:B", "Sub")], workers=1)
    load(engine, [str(tmp_path)], repository_identifier="example.org", sets=[("A", "Top"), ("A:B", None)],
         workers=1)
    with engine.connect() as conn:
        names = dict(conn.execute(select(OAISet.spec, OAISet.name)).all())
    assert names == {"A": "Top", "A:B": "Sub"}


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite takes one writer at a time
def test_loads_of_the_same_files_at_once_all_finish(database_url, engine, tmp_path) -> None:  # noqa: ANN001
    """Two machines (or cron jobs) loading the same files into one database: an outside audit saw two of three
    `oai load`s abort with a traceback (a unique violation: each had found the records missing, then both
    inserted them). A batch that meets a concurrent writer's rows is written again, and finds them there.
    The test holds back every load's first insert until all of them have looked (a table lock that lets
    reads through), so that they always meet."""
    import os
    import subprocess
    import sys
    import time

    from sqlalchemy import text

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(300):
        fields = [("title", f"Article {i}", "en"), ("identifier", f"https://doi.org/10.5555/race.{i}", None)]
        (corpus / f"{i:04d}.xml").write_bytes(canonical_bytes(build_dc(fields)))
    oai = os.path.join(os.path.dirname(sys.executable), "oai")
    env = {**os.environ, "OAI_REPOSITORY_IDENTIFIER": "example.org"}
    with engine.connect() as gate:
        gate.execute(text("LOCK TABLE record IN EXCLUSIVE MODE"))  # reads pass, inserts wait
        loads = [subprocess.Popen([oai, "--database", database_url, "load", str(corpus)], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(3)]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with engine.connect() as probe:
                waiting = probe.scalar(text("SELECT count(*) FROM pg_locks WHERE NOT granted "
                                            "AND relation = 'record'::regclass"))
            if waiting == 3 or any(load.poll() is not None for load in loads):
                break
            time.sleep(0.1)
        gate.rollback()
    outputs = [(load.communicate(timeout=300)[0], load.returncode)[::-1] for load in loads]
    assert waiting == 3, outputs
    assert all(code == 0 for code, _ in outputs), outputs
    assert not any("Traceback" in out for _, out in outputs), outputs
    stored = _stored(engine)
    assert len(stored) == 300 and len({ident for ident, _ in stored}) == 300


def test_a_java_locale_is_taken_as_its_language_tag_when_loading_too(engine, tmp_path) -> None:  # noqa: ANN001
    """An outside audit: the harvester took DSpace's xml:lang="en_US" as en-US, but `oai load` of the same
    record refused it (xs:language). Both now repair it the same way, and say so."""
    record = tmp_path / "dspace.xml"
    record.write_bytes(
        b'<oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/" '
        b'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title xml:lang="en_US">A title</dc:title>'
        b'<dc:identifier>https://doi.org/10.5555/locale.1</dc:identifier></oai_dc:dc>')
    summary = load(engine, [str(record)], repository_identifier="example.org", workers=1)
    assert (summary.new, summary.failed) == (1, [])
    assert [w for _, w in summary.warnings if "Java locale" in w] == [
        "xml:lang 'en_US' written with '_' (a Java locale) taken as the BCP 47 tag it means ('en-US')"]
    stored = _stored(engine)
    (citation, xml), = stored.values()
    assert b'xml:lang="en-US">A title<' in xml


def test_a_document_from_stdin_is_named_by_its_doi_or_refused(engine, tmp_path) -> None:  # noqa: ANN001
    """Without a DOI, every stdin document would be `oai:...:stdin` and overwrite the one before (an audit)."""
    with_doi = canonical_bytes(build_dc([("title", "A", "en"), ("identifier", "https://doi.org/10.5555/Stdin.1", None)]))
    no_doi = canonical_bytes(build_dc([("title", "B", "en")]))
    summary = load(engine, ["-"], repository_identifier="example.org", workers=1, stdin=lambda: with_doi)
    assert summary.new == 1 and not summary.failed
    summary = load(engine, ["-"], repository_identifier="example.org", workers=1, stdin=lambda: no_doi)
    assert summary.new == 0 and len(summary.failed) == 1 and "needs a DOI" in summary.failed[0][1]
    for spelled in ("oai:example.org:{stem!s}", "oai:example.org:{stem:}", "oai:example.org:{doi_or_stem!s}"):
        summary = load(engine, ["-"], repository_identifier="example.org", workers=1, stdin=lambda: no_doi,
                       identifier_template=spelled)
        assert summary.new == 0 and "needs a DOI" in summary.failed[0][1], spelled
    summary = load(engine, ["-"], repository_identifier="example.org", workers=1, stdin=lambda: no_doi,
                   identifier_template="oai:example.org:{doi!s}")
    assert summary.new == 0 and "needs a DOI" in summary.failed[0][1]
    (tmp_path / "b.xml").write_bytes(no_doi)
    assert load(engine, [str(tmp_path / "b.xml")], repository_identifier="example.org", workers=1).new == 1
    with engine.connect() as conn:
        stored = sorted(conn.execute(select(Record.identifier)).scalars())
    assert stored == ["oai:example.org:10.5555/stdin.1", "oai:example.org:b"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_load_stopped_with_sigterm_leaves_no_worker_behind(database_url, engine, tmp_path) -> None:  # noqa: ANN001
    """An outside audit killed `oai load` with SIGTERM (a cron job's timeout does): its parser processes stayed,
    waiting forever for work. Here a worker is held reading a named pipe when the load is stopped."""
    import os
    import signal
    import subprocess
    import sys

    from harvest_fixtures import descendants, running, until

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    _corpus(corpus)
    fifo = tmp_path / "held.xml"
    os.mkfifo(fifo)  # opened by a worker, it blocks until a writer comes: none does
    oai = os.path.join(os.path.dirname(sys.executable), "oai")
    load_ = subprocess.Popen([oai, "--database", database_url, "load", "--jobs", "2", str(corpus), str(fifo)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env={**os.environ, "OAI_REPOSITORY_IDENTIFIER": "example.org"})
    workers: set[int] = set()
    try:
        until(lambda: len(workers.update(descendants(load_.pid)) or workers) >= 2 or load_.poll() is not None, 30)
        assert len(workers) >= 2 and load_.poll() is None
        load_.send_signal(signal.SIGTERM)
        assert load_.wait(10) == -signal.SIGTERM
        until(lambda: not any(running(pid) for pid in workers), 10)  # they follow it
    finally:
        for pid in workers | descendants(load_.pid):
            if running(pid):
                os.kill(pid, signal.SIGKILL)
        if load_.poll() is None:
            load_.kill()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_load_the_database_fails_ends_with_a_message_not_a_traceback(database_url, engine, tmp_path) -> None:  # noqa: ANN001
    """The database failing a batch (here its table renamed away while the load waits for its next input, a named
    pipe) ends `oai load` with one line saying so and what to do, exit 1: a PostgreSQL session ended under a stopped
    load (the write fence's limit) printed a traceback."""
    import os
    import sqlite3
    import subprocess
    import sys

    from oai.store.engine import sqlite_file

    fifo = tmp_path / "later.xml"
    os.mkfifo(fifo)
    oai = os.path.join(os.path.dirname(sys.executable), "oai")
    load_ = subprocess.Popen([oai, "--database", database_url, "load", "--jobs", "1", str(fifo)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "OAI_REPOSITORY_IDENTIFIER": "example.org"})
    try:
        with open(fifo, "wb") as pipe:  # opened once the load reads it: the store is then already checked
            db = sqlite3.connect(sqlite_file(engine))
            db.execute("ALTER TABLE record RENAME TO record_gone")
            db.commit()
            db.close()
            pipe.write(canonical_bytes(build_dc([("title", "A", "en")])))
        out, err = load_.communicate(timeout=60)
    finally:
        if load_.poll() is None:
            load_.kill()
    assert load_.returncode == 1 and "Traceback" not in err, err
    assert err.startswith("Error: the database failed the load: ") and "load the same paths again" in err, err


def test_a_record_a_harvest_source_holds_is_not_loaded_over(engine, tmp_path) -> None:  # noqa: ANN001
    """An outside audit: `oai load` under a harvested record's identifier took it over silently ("updated 1"): it
    lost its source, sets and provenance, and the source's next versions were quarantined as clashes for good.
    A harvest does not write over a record loaded here either."""
    from datetime import datetime

    from sqlalchemy import insert

    from oai.store.models import Source
    from oai.store.records import RecordIn, upsert_records

    with transaction(engine) as s:
        source = s.execute(insert(Source).values(name="up", base_url="http://127.0.0.1:9/oai", prefix="oai_dc",
                                                 created=datetime(2026, 1, 1)).returning(Source.id)).scalar()
        upsert_records(s, [RecordIn("oai:example.org:harvested", {"oai_dc": canonical_bytes(build_dc(
            [("title", "As harvested", None)]))}, sets=("up",), source_id=source, upstream_identifier="oai:u:1")])
    for stem in ("harvested", "fresh"):
        (tmp_path / f"{stem}.xml").write_bytes(canonical_bytes(build_dc([("title", f"Loaded {stem}", None)])))
    summary = load(engine, [str(tmp_path)], repository_identifier="example.org", workers=1,
                   identifier_template="oai:{repository_identifier}:{stem}")
    assert (summary.new, summary.updated) == (1, 0)
    assert summary.failed == [(str(tmp_path / "harvested.xml"), "its identifier oai:example.org:harvested is a record "
                               "harvested by source up; not loaded over it (load it under another identifier, or "
                               "remove the source first)")]
    with transaction(engine) as s:
        kept = s.scalar(select(Record).where(Record.identifier == "oai:example.org:harvested"))
        assert (kept.source_id, kept.upstream_identifier) == (source, "oai:u:1")
    # a load whose every record is refused so leaves no set of its own (an outside review)
    refused = load(engine, [str(tmp_path / "harvested.xml")], repository_identifier="example.org", workers=1,
                   identifier_template="oai:{repository_identifier}:{stem}", sets=[("mistyped", None)])
    assert refused.failed and not refused.new + refused.updated + refused.unchanged
    with transaction(engine) as s:
        assert s.scalar(select(OAISet.id).where(OAISet.spec == "mistyped")) is None


def test_records_show_names_a_format_the_record_lacks(database_url, engine, tmp_path) -> None:  # noqa: ANN001
    """An outside audit: `oai records show ID --prefix marc` printed the header, no metadata and no word, exit 0."""
    from click.testing import CliRunner

    from oai.cli import main

    (tmp_path / "b.xml").write_bytes(canonical_bytes(build_dc([("title", "B", "en")])))
    load(engine, [str(tmp_path / "b.xml")], repository_identifier="example.org", workers=1)
    env = {"OAI_REPOSITORY_IDENTIFIER": "example.org"}
    shown = CliRunner().invoke(main, ["--database", database_url, "records", "show", "oai:example.org:b"], env=env)
    assert shown.exit_code == 0 and "<dc:title xml:lang=\"en\">B</dc:title>" in shown.output, shown.output
    for prefix in ("jats", "marc"):
        result = CliRunner().invoke(main, ["--database", database_url, "records", "show", "oai:example.org:b",
                                           "--prefix", prefix], env=env)
        assert result.exit_code == 1 and f"oai:example.org:b has no {prefix} metadata; its formats: oai_dc" \
            in result.output, result.output
    # a format withdrawn (a version without it loaded since) is said so, not left blank (an outside audit)
    from pathlib import Path

    seed = Path(__file__).resolve().parents[1] / "oai" / "demo" / "irkutsk-bulletin-2020-32-44.xml"
    load(engine, [str(seed)], repository_identifier="example.org", workers=1)
    (tmp_path / "export.xml").write_bytes(canonical_bytes(build_dc([
        ("title", "The Compromise Partnership", "en"), ("identifier", "https://doi.org/10.26516/2073-3380.2020.32.44",
                                                         None)])))
    load(engine, [str(tmp_path / "export.xml")], repository_identifier="example.org", workers=1)
    withdrawn = CliRunner().invoke(main, ["--database", database_url, "records", "show",
                                          "oai:example.org:10.26516/2073-3380.2020.32.44", "--prefix", "jats"], env=env)
    assert withdrawn.exit_code == 0 and "(jats withdrawn: served as deleted for this record" in withdrawn.output


def test_a_file_name_that_is_not_utf8_is_loaded_under_its_bytes(engine, tmp_path) -> None:  # noqa: ANN001
    """An outside audit: a name from a zip made on Windows (caf\\xe9.xml) stopped the load with a traceback, the good
    files of its batch lost with it."""
    import os

    good = canonical_bytes(build_dc([("title", "A", "en")]))
    (tmp_path / "a.xml").write_bytes(good)
    with open(os.path.join(os.fsencode(tmp_path), b"caf\xe9.xml"), "wb") as f:
        f.write(canonical_bytes(build_dc([("title", "B", "en")])))
    summary = load(engine, [str(tmp_path)], repository_identifier="example.org", workers=1)
    assert (summary.new, summary.failed) == (2, [])
    with engine.connect() as conn:
        assert sorted(conn.execute(select(Record.identifier)).scalars()) == [
            "oai:example.org:a", "oai:example.org:caf%E9"]


def test_links_to_directories_are_followed_each_directory_read_once(engine, tmp_path) -> None:  # noqa: ANN001
    """An outside audit: a link to the directory itself looped until the OS refused (a traceback, nothing loaded), and
    `current -> 2024-1` loaded each file twice, as an identifier collision on every run; a review then found a tree
    of links to storage (journals/jA -> /mnt/...) loaded nothing of it once links were no longer followed."""
    tree, storage = tmp_path / "tree", tmp_path / "storage"
    (tree / "2024-1").mkdir(parents=True)
    storage.mkdir()
    (tree / "2024-1" / "a.xml").write_bytes(canonical_bytes(build_dc([("title", "A", "en")])))
    (storage / "b.xml").write_bytes(canonical_bytes(build_dc([("title", "B", "en")])))
    (tree / "current").symlink_to(tree / "2024-1", target_is_directory=True)
    (tree / "journal").symlink_to(storage, target_is_directory=True)
    (tree / "self").symlink_to(tree, target_is_directory=True)
    summary = load(engine, [str(tree)], repository_identifier="example.org", workers=1)
    assert (summary.new, summary.failed) == (2, [])
    assert load(engine, [str(tree / "current")], repository_identifier="example.org", workers=1).unchanged == 1
    # a directory given again, or below another given, is not "a directory with nothing to load" (an outside audit)
    again = load(engine, [str(tree), str(tree / "2024-1"), str(tree)], repository_identifier="example.org", workers=1)
    assert (again.unchanged, again.failed) == (2, [])


def test_a_file_reached_twice_in_one_load_is_read_once(engine, tmp_path) -> None:  # noqa: ANN001
    """An outside audit: a link to a file (latest.xml -> 2024-1/a.xml), or a file given twice, failed as an identifier
    colliding with itself (exit 1 on a good load), or, for a file without a DOI, was published twice."""
    (tmp_path / "2024-1").mkdir()
    article = tmp_path / "2024-1" / "a.xml"
    article.write_bytes(canonical_bytes(build_dc([("title", "A", "en")])))
    (tmp_path / "latest.xml").symlink_to(article)
    # and what a Mac's archive holds beside each file, or hidden files, are no inputs (an outside audit: "Document is
    # empty" for each resource fork, the load failed)
    for hidden in (tmp_path / "__MACOSX" / "2024-1" / "._a.xml", tmp_path / ".git" / "x.xml", tmp_path / ".b.xml"):
        hidden.parent.mkdir(parents=True, exist_ok=True)
        hidden.write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X")
    summary = load(engine, [str(tmp_path), str(article)], repository_identifier="example.org", workers=1)
    assert (summary.new, summary.failed) == (1, []), summary
    assert summary.warnings == [(str(tmp_path / "latest.xml"), f"the same file as {article}: read once"),
                                (str(article), f"the same file as {article}: read once")]


def test_a_load_that_replaces_another_document_or_a_format_says_so(engine, tmp_path) -> None:  # noqa: ANN001
    """An outside audit: loaded apart, vol2/1.xml replaced vol1/1.xml (the same stem, another article), and an
    article's oai_dc export withdrew the JATS loaded before under its DOI, each without a word. A correction (the
    same title, the same formats) is said nothing of."""
    from pathlib import Path

    jats = Path(__file__).resolve().parents[1] / "oai" / "demo" / "irkutsk-bulletin-2020-32-44.xml"
    for issue, title in (("vol1", "The first article"), ("vol2", "Another article")):
        (tmp_path / issue).mkdir()
        (tmp_path / issue / "1.xml").write_bytes(canonical_bytes(build_dc([("title", title, "en")])))
    assert not load(engine, [str(tmp_path / "vol1")], repository_identifier="example.org", workers=1).warnings
    fixed = build_dc([("title", " the FIRST  article", "en"), ("description", "now with an abstract", "en")])
    (tmp_path / "vol1" / "1.xml").write_bytes(canonical_bytes(fixed))
    corrected = load(engine, [str(tmp_path / "vol1")], repository_identifier="example.org", workers=1)
    assert corrected.updated == 1 and not corrected.warnings
    other = load(engine, [str(tmp_path / "vol2")], repository_identifier="example.org", workers=1)
    assert other.updated == 1 and len(other.warnings) == 1
    assert other.warnings[0] == (str(tmp_path / "vol2" / "1.xml"), "it replaces oai:example.org:1, which was titled "
                                 "'the FIRST  article': if it is another document, give it an identifier of its own "
                                 "with --identifier-template, and load the other again")
    assert load(engine, [str(jats)], repository_identifier="example.org", workers=1).new == 1
    export = tmp_path / "export.xml"
    export.write_bytes(canonical_bytes(build_dc([
        ("title", "The Compromise Partnership: The Association of North East Asia Regional Governments as an "
                  "Institute for International Cooperation Development", "en"),
        ("identifier", "https://doi.org/10.26516/2073-3380.2020.32.44", None)])))
    dc_only = load(engine, [str(export)], repository_identifier="example.org", workers=1)
    assert [w for _, w in dc_only.warnings] == [
        "it replaces oai:example.org:10.26516/2073-3380.2020.32.44, which had jats too: jats is now served as "
        "deleted for it (if it is another document, give it an identifier of its own with --identifier-template)"]


def test_stdin_by_any_name_needs_a_doi_and_a_load_that_writes_nothing_makes_no_set(engine, tmp_path) -> None:  # noqa: ANN001
    """An outside audit: `oai load <(cat a.xml)` (/dev/fd/63) and /dev/stdin were named by their "stem", which the
    next such load overwrote; and `--set typo=Wrong` made the set though every input failed, a set that could not
    be taken back."""
    from oai.loader import LoadError, make_identifier

    for name in ("/dev/stdin", "/dev/fd/63", "/proc/self/fd/0"):
        with pytest.raises(LoadError, match="read from stdin has no file name"):
            make_identifier("oai:example.org:{doi_or_stem}", repository_identifier="example.org", name=name, doi=None)
    assert make_identifier("oai:example.org:{doi_or_stem}", repository_identifier="example.org", name="/dev/fd/63",
                           doi="10.1/A") == "oai:example.org:10.1/a"
    summary = load(engine, [str(tmp_path / "nothere.xml")], repository_identifier="example.org", workers=1,
                   sets=[("typo-set", "Wrong Name")])
    assert summary.failed and summary.new == 0
    with engine.connect() as conn:
        assert list(conn.execute(select(OAISet.spec)).scalars()) == []
    (tmp_path / "a.xml").write_bytes(canonical_bytes(build_dc([("title", "A", "en")])))
    load(engine, [str(tmp_path / "a.xml")], repository_identifier="example.org", workers=1, sets=[("s", "Named")])
    with engine.connect() as conn:
        assert list(conn.execute(select(OAISet.spec, OAISet.name))) == [("s", "Named")]


def test_a_bad_identifier_template_is_a_usage_error_before_anything_is_read(database_url, engine, tmp_path) -> None:  # noqa: ANN001
    """An outside audit: a misspelt field was said once for every file (3,000 lines, after parsing them all), and
    `{stem!r}` or `{stem:>40}` made identifiers with quotes or spaces."""
    from click.testing import CliRunner

    from oai.cli import main

    for i in range(3):
        (tmp_path / f"{i}.xml").write_bytes(canonical_bytes(build_dc([("title", f"T{i}", "en")])))
    for template in ("oai:{repository_identifier}:{dio}", "oai:x:{stem!r}", "oai:x:{stem:>40}"):
        result = CliRunner().invoke(main, ["--database", database_url, "load", "--identifier-template", template,
                                           str(tmp_path)])
        assert result.exit_code == 2 and result.output.count("bad identifier template") == 1, result.output
    assert CliRunner().invoke(main, ["--database", database_url, "load", "--identifier-template",
                                     "oai:example.org:{stem!s}-{doi_or_stem:}", str(tmp_path)]).exit_code == 0
    with transaction(engine) as s:
        assert sorted(s.scalars(select(Record.identifier))) == ["oai:example.org:0-0", "oai:example.org:1-1", "oai:example.org:2-2"]


def test_a_file_whose_bytes_contradict_its_declared_encoding_is_read_as_they_say(engine, tmp_path) -> None:  # noqa: ANN001
    """An outside audit: UTF-8 declared ISO-8859-1 was stored as "SÃ£o Paulo", windows-1252 declared ISO-8859-1 with
    U+0093 for a quote, each without a word. A true ISO-8859-1 file is read as declared, and said nothing of."""
    def dc_file(name: str, title: str, declared: str, codec: str) -> None:
        xml = (f'<?xml version="1.0" encoding="{declared}"?>\n<oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/'
               f'2.0/oai_dc/" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>{title}</dc:title></oai_dc:dc>')
        (tmp_path / name).write_bytes(xml.encode(codec))

    dc_file("utf8.xml", "Efeito em São Paulo", "ISO-8859-1", "utf-8")
    dc_file("cp1252.xml", "O “efeito” – São Paulo", "iso-8859-1", "cp1252")
    dc_file("latin1.xml", "Café em São Paulo", "ISO-8859-1", "latin-1")
    summary = load(engine, [str(tmp_path)], repository_identifier="example.org", workers=1)
    assert (summary.new, summary.failed) == (3, [])
    assert sorted(summary.warnings) == [
        (str(tmp_path / "cp1252.xml"), "it declares the encoding iso-8859-1, but holds bytes ISO-8859-1 has as control "
                                       "characters (windows-1252's quotes and dashes): read as windows-1252"),
        (str(tmp_path / "utf8.xml"), "it declares the encoding ISO-8859-1, but its bytes are UTF-8: read as UTF-8")]
    with transaction(engine) as s:
        stored = {r.identifier: r.citation for r in s.scalars(select(Record))}
    titles = {i.rsplit(":", 1)[1]: json.loads(c)["title"] for i, c in stored.items()}
    assert titles == {"utf8": "Efeito em São Paulo", "cp1252": "O “efeito” – São Paulo", "latin1": "Café em São Paulo"}


def test_devices_are_not_read_and_no_file_further_than_a_document_may_hold(engine, tmp_path) -> None:  # noqa: ANN001
    """An outside security audit: a link named zero.xml to /dev/zero was read until 10 GB were in memory. A file over
    the limit is read no further than it. (A named pipe is read: test_a_load_the_database_fails_... uses one.)"""
    from oai.formats.safexml import MAX_BYTES

    (tmp_path / "zero.xml").symlink_to("/dev/zero")
    big = tmp_path / "big.xml"
    with big.open("wb") as out:
        out.truncate(MAX_BYTES + 10)  # sparse: no disk used
    summary = load(engine, [str(tmp_path)], repository_identifier="example.org", workers=1)
    assert sorted(summary.failed) == [
        (str(big), f"document too large: more than {MAX_BYTES} bytes (the limit)"),
        (str(tmp_path / "zero.xml"), "not a file (a device or a socket): nothing to load")]
