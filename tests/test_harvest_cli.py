"""`oai source ...` and `oai harvest ...` through click's CliRunner: messages a librarian understands."""

from __future__ import annotations

import re
from pathlib import Path
from datetime import datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text, update

from harvest_fixtures import MarcRepository, detach_logs, sqlite_only
from harvester.dates import utcnow
from oai.cli import main
from oai.store.engine import transaction
from oai.store.models import OAISet, Source
from upstream import Record, SyntheticRepository, faults, sample_records
from upstream.fixtures import upstream, upstream_factory  # noqa: F401  (fixtures)
from upstream.protocol import oai as oai_element

FAST = {"OAI_HARVEST_DELAY": "0", "OAI_HARVEST_BACKOFF": "0.01", "OAI_HARVEST_ATTEMPTS": "2",
        "OAI_HARVEST_READ_TIMEOUT": "3", "OAI_REPOSITORY_IDENTIFIER": "example.org"}
LOGFMT = re.compile(r'^(\w+=("([^"\\]|\\.)*"|\S*)( |$))+$')


@pytest.fixture(autouse=True)
def _quiet_logs():  # noqa: ANN202
    """The commands attach a log handler to CliRunner's stream; detach it after each test."""
    yield
    detach_logs()


@pytest.fixture
def oai(database_url):  # noqa: ANN001, ANN201
    runner = CliRunner()

    def run(*args: str, input: str | None = None):  # noqa: A002, ANN202
        return runner.invoke(main, ["--database", database_url, *args], env=FAST, input=input,
                             catch_exceptions=False)
    return run


@pytest.fixture
def up(upstream):  # noqa: ANN001, ANN201, F811
    upstream.repo.add(*sample_records(12))
    return upstream


@sqlite_only
def test_source_lifecycle_and_harvest_commands(oai, up) -> None:  # noqa: ANN001
    added = oai("source", "add", "up", up.base_url, "--every", "12h")
    assert added.exit_code == 0, added.output
    assert "added up: Synthetic Upstream (oai_dc; granularity YYYY-MM-DDThh:mm:ssZ; deletedRecord persistent" \
        in added.output
    assert "up\t" + up.base_url in oai("source", "list").output
    shown = oai("source", "show", "up").output
    assert "every:            12h" in shown and "last complete:    never" in shown
    up.add_fault(faults.BrokenRecord(record=4), page=1, verb="ListRecords")
    run = oai("harvest", "up")
    assert run.exit_code == 0, run.output
    assert "run #1 complete: 2 pages, 12 of 12 records (new 11" in run.stderr
    assert ("once that is mended (by the source, or here for an identifier clash), `oai harvest up --full` asks for "
            "them again") in run.stderr
    log_lines = [line for line in run.stderr.splitlines() if line.startswith("ts=")]
    assert log_lines and all(LOGFMT.match(line) for line in log_lines)
    assert any("event=page" in line and "source=up" in line for line in log_lines)
    runs = oai("harvest", "runs", "up").output
    assert re.search(r"\s1 up\s+.*complete\s+2\s+12\s+11\s+0\s+0\s+1", runs), runs
    quarantine = oai("harvest", "quarantine").output
    assert "oai:upstream.test:4" in quarantine and "not well-formed" in quarantine
    entry = re.search(r"#(\d+)", quarantine).group(1)
    assert b"Record 4" in oai("harvest", "quarantine", "--raw", entry).stdout_bytes
    jobs = oai("harvest", "up", "--jobs", "3")  # accepted and ignored, before (an outside audit)
    assert jobs.exit_code == 2 and "--jobs is how many sources --all harvests at once" in jobs.output
    # when the last complete run ended by our clock (it said the source's responseDate, on the source's clock), and
    # a last run that failed (an outside audit found `source list` silent about it)
    today = f"{utcnow():%Y-%m-%d}"
    assert f"last complete {today} " in oai("source", "list").output
    shown = oai("source", "show", "up").output
    assert f"last complete:    {today} " in shown
    # our clock stands in for a responseDate ahead of it: the line says what the next run asks, not whose clock
    said = re.search(r"UTC \(the next run asks `from` (\d{4}-\d\d-\d\dT\S+)\)", shown)
    assert said, shown
    # (an outside audit) it said the last responseDate, not the `from` the run then asks: 5 minutes earlier
    before = len(up.requests)
    assert oai("harvest", "up").exit_code == 0
    assert [q for q in up.requests[before:] if q.get("verb") == "ListRecords"][0]["from"] == said.group(1)
    up.add_fault(faults.InternalServerError(), verb="ListRecords", times=None)
    failed = oai("harvest", "up", "--full")
    assert failed.exit_code == 1 and "did not complete (failed); run it again to go on with it" in failed.output
    listed = oai("source", "list").output
    assert f"last complete {today} " in listed and re.search(r"\tlast run #\d+ failed$", listed, re.M), listed
    up.clear_faults()
    # what the run's hint says: the source mended (the broken copy came once), a full run takes the record in
    assert oai("harvest", "up", "--full").exit_code == 0
    assert "the quarantine is empty" in oai("harvest", "quarantine").output
    removed = oai("source", "remove", "up", "--records", "delete")
    assert removed.exit_code == 0 and "12 records deleted (tombstones)" in removed.output  # record 4 too, now
    assert "no sources yet" in oai("source", "list").output


def test_a_source_is_edited_in_place_keeping_its_records_and_history(oai, up, engine) -> None:  # noqa: ANN001
    """An outside audit found no way to change a source's schedule or to pause it but removing and adding it
    again, which lost its run history."""
    from harvester.leases import claim_due

    assert oai("source", "add", "up", up.base_url, "--every", "1w").exit_code == 0
    assert oai("harvest", "up").exit_code == 0
    assert "say what to change" in oai("source", "edit", "up").output and "--base-url" in oai("source", "edit", "up").output
    assert "there is no source 'nope'" in oai("source", "edit", "nope", "--pause").output
    edited = oai("source", "edit", "up", "--every", "1d", "--detect-deletions")
    assert edited.exit_code == 0 and "up: every 1d, next " in edited.output and "detect deletions yes" in edited.output
    shown = oai("source", "show", "up").output
    assert "every:            1d" in shown and "detect deletions: yes" in shown
    assert "#1 complete" in shown  # its history stayed
    paused = oai("source", "edit", "up", "--pause", "--every", "1m")
    assert "(paused)" in paused.output and "(paused)" in oai("source", "list").output
    with transaction(engine) as s:  # due a minute after its last run: as if that minute had passed
        s.execute(update(Source).values(next_due=datetime(2000, 1, 1)))
    assert claim_due(engine, "test:", 5) == []  # the worker leaves a paused source alone
    assert oai("harvest", "up").exit_code == 0  # by hand it still runs
    assert oai("source", "edit", "up", "--resume").exit_code == 0
    with transaction(engine) as s:
        s.execute(update(Source).values(next_due=datetime(2000, 1, 1)))
    assert [c[1] for c in claim_due(engine, "test:", 5)] == ["up"]
    never = oai("source", "edit", "up", "--every", "never")
    assert "up: harvested by hand only, next -" in never.output
    # an outside audit: 99999d overflowed PostgreSQL's column (a traceback), 1000000w a date, and 4193430755m passed
    # edit on SQLite to fail every run after ("internal error: OverflowError")
    for every in ("99999d", "1000000w", "4193430755m"):
        refused = oai("source", "edit", "up", "--every", every)
        assert refused.exit_code == 2 and "is longer than 3650d (ten years)" in refused.output, refused.output
    assert oai("source", "edit", "up", "--every", "3650d").exit_code == 0


def test_a_source_is_pointed_at_a_new_base_url(oai, up, upstream_factory) -> None:  # noqa: ANN001, F811
    assert oai("source", "add", "up", up.base_url, "--every", "1d").exit_code == 0
    assert oai("harvest", "up").exit_code == 0
    refused = oai("source", "edit", "up", "--base-url", f"{up.base_url}?verb=Identify", "--every", "1w")
    assert refused.exit_code == 1 and "carries an OAI-PMH request" in refused.output
    assert "every:            1d" in oai("source", "show", "up").output  # nothing changed
    other = upstream_factory()
    other.repo.add(*sample_records(12))
    edited = oai("source", "edit", "up", "--base-url", other.base_url)
    assert edited.exit_code == 0, edited.output
    assert f"up: base URL {other.base_url} (Synthetic Upstream; granularity YYYY-MM-DDThh:mm:ssZ" in edited.output
    assert "calls itself" not in edited.stderr  # the same repository, moved
    assert f"up\t{other.base_url}\t" in oai("source", "list").output
    again = oai("harvest", "up")  # incremental, as before: the repository moved, its records did not change
    assert again.exit_code == 0 and "up: run #2 complete" in again.stderr, again.stderr
    assert [q.get("from") is not None for q in other.requests if q.get("verb") == "ListRecords"] == [True]
    # a move to an endpoint that keeps no deletions warns, unless the same command turns the check on
    keeps_none = upstream_factory(SyntheticRepository(sample_records(3), deleted_record="no")).base_url
    warned = oai("source", "edit", "up", "--base-url", keeps_none)
    assert warned.exit_code == 0 and "`oai source edit up --detect-deletions` to notice them" in warned.stderr
    keeps_none = upstream_factory(SyntheticRepository(sample_records(3), deleted_record="no")).base_url
    quiet = oai("source", "edit", "up", "--base-url", keeps_none, "--detect-deletions")
    assert quiet.exit_code == 0 and "deletions" not in quiet.stderr and "detect deletions yes" in quiet.output
    # another repository offering the same format (a mistyped URL): said, with the way back (an outside audit)
    elsewhere = upstream_factory(SyntheticRepository(sample_records(3), repository_name="Another Archive")).base_url
    moved = oai("source", "edit", "up", "--base-url", elsewhere)
    assert moved.exit_code == 0 and (f"calls itself 'Another Archive', where 'up' was 'Synthetic Upstream': if it is "
                                     f"not the same repository, `oai source edit up --base-url {keeps_none}` puts it "
                                     "back") in moved.stderr, moved.stderr


@sqlite_only
def test_runs_show_every_warning_when_asked(oai, up) -> None:  # noqa: ANN001
    assert oai("source", "add", "up", up.base_url, "--every", "never").exit_code == 0
    up.add_fault(faults.CompleteListSize(99), verb="ListRecords", times=None)
    up.add_fault(faults.ResponseDate("2099-12-31T23:59:59Z"), verb="ListRecords", times=None)
    oai("harvest", "up")
    brief, full = oai("harvest", "runs", "up").output, oai("harvest", "runs", "up", "--warnings").output
    assert "warning(s), first:" in brief and "all: --warnings" in brief
    assert "completeListSize=99 but sent 12" in full and "ahead of our clock" in full
    # first the likely reason, which needs nothing done (an outside audit was sent to a full harvest for it)
    assert "changed while it was read move past its end, and the next incremental run fetches them" in full


@sqlite_only
def test_a_harvest_command_stops_its_worker_processes_before_it_returns(oai, up, monkeypatch) -> None:  # noqa: ANN001
    """The interpreter's exit would stop them with ProcessPoolExecutor's own shutdown, which can wait
    forever for a stuck worker; the command stops them itself, with a bound (workers._stop)."""
    from harvester import workers

    monkeypatch.setenv("OAI_HARVEST_PROCESSES", "2")
    oai("source", "add", "up", up.base_url)
    run = oai("harvest", "up")
    assert run.exit_code == 0, run.output
    assert workers._pool is None  # noqa: SLF001


@sqlite_only
def test_remove_in_a_script_must_say_what_to_do_with_the_records(oai, up) -> None:  # noqa: ANN001
    oai("source", "add", "up", up.base_url)
    result = oai("source", "remove", "up")
    assert result.exit_code == 1 and "--records keep or --records delete" in result.output
    assert oai("source", "remove", "up", "--records", "keep").exit_code == 0


@sqlite_only
@pytest.mark.parametrize("args, message", [
    (("a b", "{url}"), "cannot be used: 'a b' is not a valid setSpec"),
    (("a:b", "{url}"), "cannot contain ':'"),
    (("worker", "{url}"), "is a word of the `oai harvest` command"),
    (("up", "ftp://x/oai"), "is not an http(s) URL"),
    (("up", "{url}", "--prefix", "marc21"), "does not offer the metadata format 'marc21'; it offers: oai_dc"),
    (("up", "{url}", "--set", "nope"), "has no set 'nope'; its sets include: journal, journal:a, journal:b"),
    (("up", "{root}/elsewhere"), "is not an OAI-PMH endpoint we can use: " ),
    (("up", "{url}", "--every", "soon"), "is not an interval"),
    (("up", "{url}", "--every", "1M"), "write minutes as 'm' (30m); for a month, 4w or 30d"),
    (("up", "http://[::1"), "is not a URL"),  # an outside audit met a traceback here
    # an outside audit: the password was then served in Identify and in every harvested record's provenance
    (("up", "http://librarian:s3cret@127.0.0.1:9/oai"), "carries a user name or password (http://...@127.0.0.1)"),
    (("up", "{url}", "--set", "s" * 600), "(600 characters) is not a setSpec we can keep"),
    (("up", "{url}", "--set", "s" * 510), "(513 characters) is not a setSpec we can keep"),  # served as up:sss...
])
def test_add_says_clearly_what_is_wrong(oai, up, args: tuple[str, ...], message: str) -> None:  # noqa: ANN001
    root = up.base_url.rsplit("/", 1)[0]
    result = oai("source", "add", *(a.format(url=up.base_url, root=root) for a in args))
    assert result.exit_code != 0 and message in result.output, result.output


@sqlite_only
@pytest.mark.parametrize("args, env, message", [
    (("--timeout", "0"), {}, "Invalid value for '--timeout'"),
    (("--delay", "-1"), {}, "Invalid value for '--delay': -1.0 is not in the range x>=0"),
    ((), {"OAI_HARVEST_CONNECT_TIMEOUT": "0"}, "the connect timeout (OAI_HARVEST_CONNECT_TIMEOUT) must be more than 0"),
    ((), {"OAI_HARVEST_PROCESSES": "x"}, "OAI_HARVEST_PROCESSES must be a whole number"),
    ((), {"OAI_HARVEST_LEASE_SECONDS": "0"}, "OAI_HARVEST_LEASE_SECONDS must be at least 10"),
    # an outside audit of a deployment: an infinite lease failed every claim, forever ("cannot convert float
    # infinity to integer"), and an infinite delay or timeout waits forever
    ((), {"OAI_HARVEST_LEASE_SECONDS": "inf"}, "OAI_HARVEST_LEASE_SECONDS must be at least 10 and finite"),
    # the options are named as the librarian typed them (they named the environment variable)
    (("--delay", "inf"), {}, "Invalid value for '--delay': 'inf' is not a finite number of seconds"),
    (("--delay", "nan"), {}, "Invalid value for '--delay': 'nan' is not a finite number of seconds"),
    (("--timeout", "inf"), {}, "Invalid value for '--timeout': 'inf' is not a finite number of seconds"),
    ((), {"OAI_HARVEST_RESPONSE_TIMEOUT": "inf"}, "the response timeout (OAI_HARVEST_RESPONSE_TIMEOUT) must be more than 0"),
    ((), {"OAI_HARVEST_BACKOFF_MAX": "inf"}, "the backoff max (OAI_HARVEST_BACKOFF_MAX) must be 0 or more and finite"),
    ((), {"OAI_HARVEST_RETRY_DELAY": "inf"}, "OAI_HARVEST_RETRY_DELAY must be a finite number of seconds"),
])
def test_bad_harvest_settings_are_one_line_errors_before_any_run(oai, up, monkeypatch, args, env, message) -> None:  # noqa: ANN001
    """Found by an outside audit: each of these was a traceback, some with a run left behind as running or
    failed on an internal error; a lease of 0 s was renewed in a busy loop."""
    assert oai("source", "add", "up", up.base_url, "--every", "never").exit_code == 0
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = oai("harvest", "up", *args)
    assert result.exit_code == (2 if args else 1), result.output
    assert message in result.output and "Traceback" not in result.output, result.output
    assert "run #" not in oai("harvest", "runs", "up").output  # nothing was started


def test_a_source_cannot_take_a_set_of_records_loaded_here(oai, up, engine) -> None:  # noqa: ANN001
    """Found by an outside audit: a source named like a local set served its records in that set and
    renamed it. Records a removed source left behind are still taken back (another test)."""
    from oai.store.engine import transaction
    from oai.store.records import RecordIn, upsert_records

    with transaction(engine) as s:
        upsert_records(s, [RecordIn("oai:example.org:local", {"oai_dc": b"<x/>"}, sets=("journals:ours",))])
    for name in ("journals", "journal_"):  # "_" is no wildcard in the look
        result = oai("source", "add", name, up.base_url)
        assert (result.exit_code == 1) == (name == "journals"), result.output
    assert "holds records loaded into this repository" in oai("source", "add", "journals", up.base_url).output
    # ...nor, the other way round, local records or sets into a source's set (found by a review)
    demo = str(Path(__file__).resolve().parents[1] / "oai" / "demo")
    for args in (("load", "--set", "journal_", demo), ("load", "--set", "journal_:ours=Ours", demo),
                 ("sets", "add", "journal_:x", "X")):
        refused = oai(*args)
        assert refused.exit_code == 1 and "is where the harvest source 'journal_' serves its records" in refused.output
    with transaction(engine) as s:
        assert s.scalar(select(OAISet.name).where(OAISet.spec == "journal_")) == "Synthetic Upstream"
    assert oai("load", "--set", "journal", demo).exit_code == 0  # a name that only begins like it is another set


@sqlite_only
def test_add_says_why_it_retried(oai, up) -> None:  # noqa: ANN001
    """An outside audit saw a bare "retry" on the terminal: the line says what was asked, why and how long it waits."""
    up.add_fault(faults.ServiceUnavailable(retry_after=0), verb="Identify")
    added = oai("source", "add", "up", up.base_url)
    assert added.exit_code == 0, added.output
    retry = [line for line in added.stderr.splitlines() if "msg=retry" in line]
    assert len(retry) == 1 and LOGFMT.match(retry[0]), added.stderr
    assert "verb=Identify" in retry[0] and 'reason="HTTP 503 (busy)"' in retry[0]


def test_add_refuses_what_is_not_oai_pmh(oai, up) -> None:  # noqa: ANN001
    up.add_fault(faults.NotXml(), verb="Identify", times=None)
    result = oai("source", "add", "up", up.base_url)
    assert result.exit_code == 1
    assert "is not an OAI-PMH endpoint we can use" in result.output and "HTML page" in result.output


@sqlite_only
def test_add_registers_a_foreign_format_and_warns_about_deletions(oai, upstream_factory) -> None:  # noqa: ANN001, F811
    from upstream import SyntheticRepository

    up = upstream_factory(MarcRepository(sample_records(3), deleted_record="transient"))
    result = oai("source", "add", "marc", up.base_url, "--prefix", "marc21")
    assert result.exit_code == 0, result.output
    assert "--detect-deletions" in result.stderr
    # said at once: nothing of it is served as oai_dc (an outside audit found out after harvesting)
    assert "'marc21' is not a format we know" in result.stderr and "asking for oai_dc" in result.stderr
    other = upstream_factory(SyntheticRepository(sample_records(2)))
    again = oai("source", "add", "marc", other.base_url)
    assert again.exit_code == 1 and "there is already a source named 'marc'" in again.output


def test_harvest_all_runs_every_due_source_at_once(oai, upstream_factory) -> None:  # noqa: ANN001, F811
    from upstream import SyntheticRepository

    ups = [upstream_factory(SyntheticRepository(sample_records(8), page_size=3)) for _ in range(3)]
    for i, u in enumerate(ups):
        assert oai("source", "add", f"s{i}", u.base_url).exit_code == 0
    result = oai("harvest", "--all", "--jobs", "3")
    assert result.exit_code == 0, result.stderr
    assert sorted(re.findall(r"(s\d): run #\d+ complete: 3 pages, 8 of 8", result.stderr)) == ["s0", "s1", "s2"]
    again = oai("harvest", "--all")
    assert again.exit_code == 0 and "no source is due" in again.stderr


@sqlite_only
def test_harvest_needs_a_name_or_all(oai) -> None:  # noqa: ANN001
    assert "give a source NAME or --all" in oai("harvest", "run").output
    assert "give a source NAME or --all, not both" in oai("harvest", "run", "up", "--all").output
    missing = oai("harvest", "nowhere")
    assert missing.exit_code == 1 and "there is no source 'nowhere'" in missing.output


@sqlite_only
def test_removing_a_source_dates_each_batch_once_it_holds_the_write_fence(oai, up, engine, monkeypatch) -> None:  # noqa: ANN001
    """A tombstone must not be dated before the transactions committed ahead of it: a harvester given a
    responseDate in between would take it as its next `from` and never see that tombstone (2.7.1). The
    removal dated every batch with the moment the removal began; now each batch is dated once it holds the write
    fence (after the batch before it committed; answers wait for it to commit). The store's clock ticks here."""
    from collections import Counter
    from datetime import datetime, timedelta

    from sqlalchemy import select

    from harvester import sources
    from oai.store import fence
    from oai.store.models import Record

    assert oai("source", "add", "up", up.base_url).exit_code == 0
    assert oai("harvest", "up").exit_code == 0
    ticks = iter(range(1000))
    monkeypatch.setattr(fence, "utcnow", lambda: datetime(2031, 1, 1) + timedelta(seconds=next(ticks)))
    monkeypatch.setattr(sources, "REMOVE_BATCH", 5)  # three transactions: 5, 5 and 2
    assert sources.remove_source(engine, "up", "delete") == 12
    with engine.connect() as conn:
        stamps = list(conn.scalars(select(Record.datestamp).where(Record.deleted.is_(True))))
    assert sorted(Counter(stamps).values()) == [2, 5, 5] and min(stamps) >= datetime(2031, 1, 1)  # batch by batch


def test_a_base_url_with_a_request_in_it_gets_a_hint(oai, up) -> None:  # noqa: ANN001
    result = oai("source", "add", "up", up.base_url + "?verb=Identify")
    assert result.exit_code == 1 and "the base URL is the part before '?'" in result.output
    assert up.base_url in result.output and not up.log  # nothing was asked


@sqlite_only
@pytest.mark.parametrize("records", ["keep", "delete"])
@pytest.mark.parametrize("keep_identifiers", [False, True])
def test_a_source_removed_and_added_again_takes_its_records_back(oai, up, records, keep_identifiers) -> None:  # noqa: ANN001
    """Removing and adding a source again is how its settings change (found by an outside audit: after `keep`
    the records stayed nobody's, so a later `--records delete` deleted none; with --keep-identifiers every
    record was quarantined as a clash with 'a record loaded locally')."""
    flags = ["--keep-identifiers"] if keep_identifiers else []
    assert oai("source", "add", "up", up.base_url, *flags).exit_code == 0
    assert oai("harvest", "up").exit_code == 0
    assert oai("source", "remove", "up", "--records", records).exit_code == 0
    assert oai("source", "add", "up", up.base_url, *flags).exit_code == 0
    run = oai("harvest", "up", "--full")
    assert run.exit_code == 0 and "quarantined 0" in run.stderr, run.stderr
    assert "records:          12 (+ 0 deleted)" in oai("source", "show", "up").output
    removed = oai("source", "remove", "up", "--records", "delete")
    assert "12 records deleted (tombstones)" in removed.output


@sqlite_only
def test_removing_a_source_another_harvest_holds_says_when_its_lease_lapses(oai, up, engine) -> None:  # noqa: ANN001
    from datetime import timedelta

    from sqlalchemy import update

    from harvester.dates import utcnow
    from oai.store.engine import transaction
    from oai.store.models import Source

    assert oai("source", "add", "up", up.base_url).exit_code == 0
    until = utcnow() + timedelta(minutes=5)
    with transaction(engine) as s:  # as a harvest on another machine holds it
        s.execute(update(Source).values(lease_owner="elsewhere:1", lease_expires=until))
    refused = oai("source", "remove", "up", "--records", "keep")
    assert refused.exit_code == 1 and "being harvested by elsewhere:1" in refused.output
    assert f"its lease lapses at {until:%H:%M:%S} UTC" in refused.output


@sqlite_only
def test_a_source_whose_harvest_was_killed_on_this_machine_can_be_removed_at_once(oai, up, engine) -> None:  # noqa: ANN001
    """A harvest killed with kill -9 leaves its lease; the next run takes the source over at once (the process
    is gone), and so may `source remove`, not only once the lease lapses (an outside operator audit)."""
    import subprocess
    import sys
    from datetime import timedelta

    from harvester import leases
    from harvester.dates import utcnow

    assert oai("source", "add", "up", up.base_url).exit_code == 0
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with transaction(engine) as s:
        s.execute(update(Source).values(lease_owner=f"{leases.this_host()}:{gone.pid}:abcdef",
                                        lease_expires=utcnow() + timedelta(minutes=5)))
    removed = oai("source", "remove", "up", "--records", "keep")
    assert removed.exit_code == 0, removed.output


@sqlite_only
def test_records_list_says_when_it_shows_only_the_newest(oai, up) -> None:  # noqa: ANN001
    assert oai("source", "add", "up", up.base_url).exit_code == 0 and oai("harvest", "up").exit_code == 0
    shown = oai("records", "list", "--limit", "5").output
    assert len(shown.splitlines()) == 6 and "(the newest 5 of 12 records; --limit N shows more)" in shown
    assert "of 12 records" not in oai("records", "list").output  # all of them: nothing to say


@pytest.mark.parametrize("command", [("harvest", "worker"), ("source", "list"), ("records", "list"),
                                     ("db", "upgrade"), ("db", "current"), ("demo", "--no-serve")])
def test_an_unreachable_database_is_one_line_not_a_traceback(command: tuple[str, ...]) -> None:
    """An outside audit of a deployment: `oai harvest worker` against a database it cannot reach printed the
    driver's traceback. Every command now says which database and why, in one line (password hidden)."""
    import socket

    with socket.socket() as s:  # a port on loopback where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://someone:s3cret@127.0.0.1:{port}/nowhere"
    result = CliRunner().invoke(main, ["--database", url, *command], env=FAST, catch_exceptions=True)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit), result.exception
    assert f"Error: cannot reach the database postgresql+psycopg://someone:***@127.0.0.1:{port}/nowhere" \
        in result.output and "s3cret" not in result.output, result.output


class OutsizedRepository(MarcRepository):
    """Declares values longer than the store's columns: a deletedRecord of 29 characters (16 fit), and a format
    whose namespace has 619 (512 fit)."""

    def _Identify(self, args, base_url):  # noqa: ANN001, ANN202, N802
        el = super()._Identify(args, base_url)
        el.find(oai_element("deletedRecord")).text = "persistent-except-on-tuesdays"
        return el

    def _ListMetadataFormats(self, args, base_url):  # noqa: ANN001, ANN202, N802
        el = super()._ListMetadataFormats(args, base_url)
        for fmt in el:
            if fmt.findtext(oai_element("metadataPrefix")) == "marc21":
                fmt.find(oai_element("metadataNamespace")).text = "http://example.org/" + "n" * 600
        return el


def test_values_too_long_for_the_store_are_refused_with_the_reason(oai, upstream_factory) -> None:  # noqa: ANN001, F811
    """An operator audit: PostgreSQL refuses a value longer than its column (SQLite keeps it), and the command died
    with the database's error."""
    up = upstream_factory(OutsizedRepository(sample_records(3)))
    added = oai("source", "add", "odd", up.base_url)
    assert added.exit_code == 0 and "deletedRecord 'persistent-except-on-tuesdays'; treated as 'no'" in added.output
    assert "deletedRecord no;" in added.output
    refused = {
        ("--prefix", "marc21"): "the store keeps namespaces of at most 512 characters",
        ("--prefix", "p" * 70): "(70 characters) is longer than the 64 characters the store keeps",
        ("--set", "s" * 508): "(513 characters) is not a setSpec we can keep",  # served as odd2:sss...
    }
    for args, message in refused.items():
        result = oai("source", "add", "odd2", up.base_url, *args)
        assert result.exit_code == 1 and message in result.output, result.output
    result = oai("sets", "add", "s" * 600, "Too long")
    assert result.exit_code == 2 and "(600 characters) is not a setSpec we can keep" in result.output, result.output


@pytest.mark.parametrize("url", ["nonsense", "foo://x/y", "mysql://someone@127.0.0.1/db"])
def test_a_database_url_we_cannot_use_is_one_line(url: str) -> None:
    """An outside operations review: these were tracebacks (ArgumentError, NoSuchModuleError, no MySQLdb)."""
    for command in (("records", "list"), ("db", "upgrade")):
        result = CliRunner().invoke(main, ["--database", url, *command], env=FAST, catch_exceptions=True)
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), (url, result.exception)
        assert "Error: the database URL is not one we can use (sqlite:///FILE or postgresql://" in result.output


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_schema_newer_than_the_code_says_so(database_url: str, engine) -> None:  # noqa: ANN001
    """An outside operations review: a store another node's newer code had upgraded was said to be "behind",
    with `oai db upgrade` to run, which then failed with a traceback."""
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    for command in (("records", "list"), ("db", "upgrade")):
        result = CliRunner().invoke(main, ["--database", database_url, *command], env=FAST, catch_exceptions=True)
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
        assert "is at schema revision 9999, newer than this code knows" in result.output, result.output


def test_a_misspelt_setting_is_said_not_ignored(oai, monkeypatch) -> None:  # noqa: ANN001
    """An outside operations review: OAI_PAGESIZE=5 (for OAI_PAGE_SIZE) was ignored without a word."""
    monkeypatch.setenv("OAI_PAGESIZE", "5")
    monkeypatch.setenv("OAI_HARVEST_DELAYS", "0")  # for OAI_HARVEST_DELAY: an outside audit found it unsaid
    monkeypatch.setenv("OAI_HARVEST_DELAY", "0")
    result = oai("records", "list")
    assert result.exit_code == 0 and "warning: OAI_PAGESIZE is not a setting of ours, and is ignored" in result.stderr
    assert "warning: OAI_HARVEST_DELAYS is not a setting of ours" in result.stderr
    assert "OAI_HARVEST_DELAY " not in result.stderr and "OAI_TEST_DATABASE_URL" not in result.stderr


def test_the_harvest_settings_oai_knows_of_are_the_harvesters() -> None:
    """oai.config names the harvester's settings (it cannot import the harvester) to warn of misspelt ones: the
    list must be the one the harvester reads, or a real setting would be called misspelt."""
    import dataclasses
    import re

    from harvester.client import FetchPolicy
    from oai.config import HARVEST_SETTINGS

    read = {f"OAI_HARVEST_{f.name.upper()}" for f in dataclasses.fields(FetchPolicy)}
    for path in (Path(__file__).parents[1] / "harvester").glob("*.py"):
        read |= set(re.findall(r"OAI_HARVEST_[A-Z][A-Z_]*[A-Z]", path.read_text(encoding="utf-8")))
    assert HARVEST_SETTINGS == read


@sqlite_only
def test_a_bad_harvest_setting_is_a_one_line_error_when_a_source_is_added_or_moved(oai, up, monkeypatch) -> None:  # noqa: ANN001
    """An outside audit: `oai harvest` said it in a line, `source add` and `source edit --base-url` (which fetch too)
    with a 40-line traceback."""
    assert oai("source", "add", "up", up.base_url, "--every", "never").exit_code == 0
    monkeypatch.setenv("OAI_HARVEST_CONNECT_TIMEOUT", "abc")
    for args in (("source", "add", "up2", up.base_url), ("source", "edit", "up", "--base-url", up.base_url)):
        result = oai(*args)
        assert result.exit_code == 1, result.output
        assert "OAI_HARVEST_CONNECT_TIMEOUT must be a number, not 'abc'" in result.output, result.output
        assert "Traceback" not in result.output, result.output
    assert "up2" not in oai("source", "list").output


def test_a_key_of_the_config_file_that_names_no_setting_stops_the_start(oai, monkeypatch, tmp_path) -> None:  # noqa: ANN001
    """An outside audit: page_sise, harvest_delay and OAI_PAGE_SIZE in the OAI_CONFIG_FILE were ignored without a
    word, where the same misspelling in the environment is warned about."""
    config = tmp_path / "oai.toml"
    monkeypatch.setenv("OAI_CONFIG_FILE", str(config))
    for line, said in (("page_sise = 5", "has a key 'page_sise': it names no setting"),
                       ("OAI_PAGE_SIZE = 7", "has a key 'OAI_PAGE_SIZE': write it page_size (lower case, without OAI_)"),
                       ("harvest_delay = 0", "OAI_HARVEST_DELAY is read from the environment only"),
                       ("workers = 4", "OAI_WORKERS is read from the environment only")):
        config.write_text(f"page_size = 5\n{line}\n", encoding="utf-8")
        result = oai("records", "list")
        assert result.exit_code == 1 and said in result.output and "Traceback" not in result.output, result.output
    config.write_text("page_size = 5\nPage_Size_ListRecords = 3\n", encoding="utf-8")
    assert oai("records", "list").exit_code == 0


@sqlite_only
def test_the_same_repository_format_and_set_cannot_be_added_twice(oai, up, upstream_factory) -> None:  # noqa: ANN001, F811
    """An outside audit: `source add y` with the URL, format and set of source `upa` was taken without a word, and
    every record was served twice. The same repository in another format stays allowed (jats beside oai_dc)."""
    assert oai("source", "add", "upa", up.base_url, "--every", "never").exit_code == 0
    for url in (up.base_url, up.base_url.replace("http://127.0.0.1", "HTTP://127.0.0.1")):
        again = oai("source", "add", "y", url)
        assert again.exit_code == 1, again.output
        assert "the source 'upa' already harvests" in again.output and "(oai_dc, every set)" in again.output
    assert not any(line.startswith("y\t") for line in oai("source", "list").output.splitlines())
    part = oai("source", "add", "part", up.base_url, "--set", "journal")
    assert part.exit_code == 0 and "the source 'upa' harvests" in part.output and "served twice" in part.output
    # nor moved onto it (an outside review): `source edit --base-url` checks as `source add` does
    other = upstream_factory()
    other.repo.add(*sample_records(3))
    assert oai("source", "add", "b", other.base_url, "--every", "never").exit_code == 0
    moved = oai("source", "edit", "b", "--base-url", up.base_url)
    assert moved.exit_code == 1 and "the source 'upa' already harvests" in moved.output, moved.output
    assert oai("source", "edit", "upa", "--base-url", up.base_url).exit_code == 0  # itself is no other


@sqlite_only
def test_a_base_url_the_source_calls_otherwise_is_said_with_the_command_that_changes_it(oai, up) -> None:  # noqa: ANN001
    """An outside audit: 'the source calls its base URL X' said nothing of what to do, and the URL given is the one
    every record's provenance names."""
    up.repo.announced_base_url = up.base_url + "/elsewhere"
    added = oai("source", "add", "up", up.base_url, "--every", "never")
    assert added.exit_code == 0, added.output
    assert f"`oai source edit up --base-url {up.base_url}/elsewhere`" in added.output, added.output


@sqlite_only
def test_a_removed_source_leaves_no_empty_set_behind(oai, up, engine) -> None:  # noqa: ANN001
    """An outside audit: a source whose every record was quarantined, removed, left its set in ListSets, naming a
    source that was gone. Sets that hold its records (kept, or tombstoned) stay."""
    from sqlalchemy import select

    from oai.store.engine import transaction
    from oai.store.models import OAISet

    def specs() -> set[str]:
        with transaction(engine) as s:
            return set(s.scalars(select(OAISet.spec)))

    assert oai("source", "add", "up", up.base_url, "--every", "never").exit_code == 0
    assert "up" in specs()  # made when the source is added, named after its repository
    assert oai("source", "remove", "up", "--records", "delete").exit_code == 0
    assert not {spec for spec in specs() if spec == "up" or spec.startswith("up:")}
    assert oai("source", "add", "up", up.base_url, "--every", "never").exit_code == 0
    assert oai("harvest", "up").exit_code == 0
    held = {spec for spec in specs() if spec == "up" or spec.startswith("up:")}
    assert oai("source", "remove", "up", "--records", "delete").exit_code == 0
    assert {spec for spec in specs() if spec == "up" or spec.startswith("up:")} == held  # its tombstones' sets


def test_a_limit_beyond_what_a_query_takes_is_a_usage_error(oai) -> None:  # noqa: ANN001
    """An outside review: --limit 9223372036854775808 was a traceback (OverflowError from the database driver)."""
    huge = str(2**63)
    for command in (("records", "list"), ("harvest", "runs"), ("harvest", "quarantine", "x")):
        result = oai(*command, "--limit", huge)
        assert result.exit_code == 2 and "is not in the range 1<=x<=2147483647" in result.output, (command, result.output)


@sqlite_only
def test_a_source_whose_paging_loops_is_not_said_to_go_on_when_run_again(oai, up) -> None:  # noqa: ANN001
    """An outside audit: a list that looped ended with "run it again to go on with it", which loops again."""
    assert oai("source", "add", "up", up.base_url).exit_code == 0
    up.add_fault(faults.EndlessList(), times=None)
    run = oai("harvest", "up")
    assert run.exit_code == 1 and "run it again to go on with it" not in run.output, run.output
    assert "lists again from the start, and loops again unless the source is mended" in run.output
    said = [line for line in run.output.splitlines() if not line.startswith("ts=")]  # (not the log, written as it went)
    assert not [line for line in said if "list shifted" in line], said


@sqlite_only
def test_records_show_says_where_a_harvested_record_came_from(oai, up) -> None:  # noqa: ANN001
    """An outside audit: the source, upstream identifier and datestamp were stored and served as provenance, but
    `records show` did not say them."""
    assert oai("source", "add", "up", up.base_url).exit_code == 0
    assert oai("harvest", "up").exit_code == 0
    ours = "oai:example.org:up:oai:upstream.test:3"
    assert ours in oai("records", "list").output
    shown = oai("records", "show", ours).output
    assert re.search(rf"harvested:  from up \({re.escape(up.base_url)}\) as oai:upstream\.test:3, datestamp "
                     r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ, on \d{4}-", shown), shown
    assert oai("source", "remove", "up", "--records", "keep").exit_code == 0
    assert "harvested:  from a source removed since as oai:upstream.test:3" in oai("records", "show", ours).output


@sqlite_only
def test_the_quarantine_listing_shows_an_identifiers_control_characters_escaped(oai, upstream) -> None:  # noqa: ANN001, F811
    """An outside audit: an upstream identifier holding NEL or a C1 CSI (both XML 1.0 characters) was printed raw,
    where a terminal acts on it; the reason beside it was escaped. Times there and in `harvest runs` say UTC."""
    upstream.repo.add(*sample_records(2), Record("oai:upstream.test:nel\u0085csi\u009bx", "2024-01-02T00:00:00Z",
                                                 fields={"title": "Controls"}))
    assert oai("source", "add", "up", upstream.base_url, "--keep-identifiers").exit_code == 0  # (no URI: refused)
    assert oai("harvest", "up").exit_code == 0
    listed = oai("harvest", "quarantine").output
    assert "oai:upstream.test:nel\\x85csi\\x9bx" in listed and "\x85" not in listed and "\x9b" not in listed, listed
    assert re.search(r"^#\d+ \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC up run 1 ", listed, re.M), listed
    assert "started (UTC)" in oai("harvest", "runs").output


def test_a_prefix_or_format_outside_oai_pmhs_syntax_is_refused_and_never_served(oai, up, engine, live_server) -> None:  # noqa: ANN001
    """An outside hostile-source audit: `source add --prefix 'we ird'` (a format the source offered) was taken, and
    every ListMetadataFormats after failed OAI-PMH.xsd; nor were a format's namespace and schema checked as URIs.
    What a store holds from before is left out of ListMetadataFormats."""
    from endpoint_helpers import get

    from harvester.errors import SourceError
    from harvester.parse import FormatOffer
    from harvester.sources import _register_foreign
    from oai.store.models import ForeignFormat

    refused = oai("source", "add", "weird", up.base_url, "--prefix", "we ird")
    assert refused.exit_code == 1 and "'we ird' is no metadataPrefix OAI-PMH allows" in refused.output, refused.output
    with transaction(engine) as s:
        for offer in (FormatOffer("fx", "http://s.example/fx.xsd", "urn:a b"), FormatOffer("fx", "not a uri", "urn:fx")):
            with pytest.raises(SourceError, match="that is no URI"):
                _register_foreign(s, offer)
        s.add(ForeignFormat(prefix="we ird", namespace="urn:weird", schema="http://s.example/w.xsd"))
        s.add(ForeignFormat(prefix="fine", namespace="urn:fine", schema="http://s.example/f.xsd"))
    _, root = get(live_server(), verb="ListMetadataFormats")  # validated against OAI-PMH.xsd
    prefixes = [e.text for e in root.iter("{http://www.openarchives.org/OAI/2.0/}metadataPrefix")]
    assert "fine" in prefixes and "we ird" not in prefixes


@sqlite_only
def test_source_show_says_a_deletion_check_is_owed_and_by_which_run(oai, up, engine) -> None:  # noqa: ANN001
    """An outside jobs audit: a run killed in its deletion check left `source show` silent about the check it owed."""
    assert oai("source", "add", "up", up.base_url).exit_code == 0
    assert oai("harvest", "up").exit_code == 0
    assert "deletion check:" not in oai("source", "show", "up").output
    with transaction(engine) as s:  # as a run killed between its list's completion and its check leaves it
        s.execute(update(Source).values(deletion_check_owed_by=1))
    assert "deletion check:   owed: run #1 did not finish it; the next complete run does it" in \
        oai("source", "show", "up").output
