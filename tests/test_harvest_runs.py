"""Harvest runs against the fake upstream, on SQLite and PostgreSQL: faults, resume, re-list, quirks."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
import requests
from lxml import etree
from sqlalchemy import func, select, update

from harvest_fixtures import REPO_ID, add, dc_values, options, policy, sqlite_only, stored
from harvester.sources import add_source
from harvester import dates
from harvester.history import list_quarantine, list_runs
from harvester.ingest import local_identifier
from harvester.listed import ListedIdentifiers
from harvester.runs import INCREMENTAL_OVERLAP, SHIFTED, EndlessList, harvest_source
from oai.store.engine import transaction
from oai.store.models import HarvestCheckpoint, HarvestRun, OAISet, Source
from oai.store.models import Record as StoredRecord
from oai.store.records import RecordIn, upsert_records
from oaischema import NS, assert_oai
from upstream import DAY, Record, SyntheticRepository, faults, sample_records
from upstream.fixtures import upstream, upstream_factory  # noqa: F401  (fixtures)

FFFD = "\ufffd"


def title(i: int) -> str:
    return f"Record {i}: fish & chips <i>{i}</i> > {i - 1}"


@pytest.fixture
def up(upstream):  # noqa: ANN001, ANN201, F811
    upstream.repo.add(*sample_records(25))
    upstream.repo.set_names["journal:a"] = "Journal A"
    return upstream


def stop_after(pages: int) -> tuple[threading.Event, object]:
    """A stop event set once `pages` pages are committed (what SIGTERM does, at a page boundary)."""
    stop = threading.Event()

    def progress(p) -> None:  # noqa: ANN001
        if p.pages >= pages:
            stop.set()
    return stop, progress


def listed(up) -> list[dict]:  # noqa: ANN001
    """The ListRecords requests the upstream received, in order."""
    return [q for q in up.requests if q.get("verb") == "ListRecords"]


def run_row(engine, run_id: int) -> HarvestRun:  # noqa: ANN001
    with transaction(engine) as s:
        return s.get(HarvestRun, run_id)


def test_full_harvest_keeps_every_record_once_with_sets_and_provenance(engine, up, live_server) -> None:  # noqa: ANN001
    add(engine, "up", up.base_url)
    summary = harvest_source(engine, "up", options())
    assert (summary.status, summary.pages, summary.seen, summary.new) == ("complete", 3, 25, 25)
    assert summary.complete_list_size == 25 and not summary.warnings
    got = stored(engine, "up")
    assert sorted(got) == sorted(f"oai:upstream.test:{i}" for i in range(1, 26))
    first = got["oai:upstream.test:1"]
    assert first.identifier == local_identifier(REPO_ID, "up", "oai:upstream.test:1")
    assert first.sets == ("up:journal:a",)  # in "up" too, which it implies
    assert first.upstream_datestamp == "2024-01-01T20:00:00Z"
    assert dc_values(first.metadata["oai_dc"]) == [title(1)]
    assert b'altered="false"' in first.about["oai_dc"]
    with transaction(engine) as s:
        names = dict(s.execute(select(OAISet.spec, OAISet.name)).all())
    assert names["up"] == "Synthetic Upstream" and names["up:journal:a"] == "Journal A"
    # served again: valid OAI-PMH (provenance about-container included), in the source's set
    server = live_server()
    body = requests.get(server.url, params={"verb": "ListRecords", "metadataPrefix": "oai_dc",
                                            "set": "up:journal:b"}, timeout=10).content
    root = assert_oai(body)
    assert len(root.findall(".//oai:record", NS)) == 12
    assert root.find(".//{http://www.openarchives.org/OAI/2.0/provenance}baseURL").text == up.base_url


def test_upstream_identifiers_that_are_no_uris_are_served_in_valid_pages(engine, upstream, live_server) -> None:  # noqa: ANN001, F811
    """An outside audit harvested a record named oai:fake:100% and one named by a SICI (with [ ]): the provenance
    held them as they came, not xs:anyURI, and every page serving them failed the schema."""
    odd = ["oai:fake:100%", "0002-9939(1999)127:1[1:AT]2.0.CO;2-Q"]
    upstream.repo.add(*[Record(ident, "2024-01-02", fields={"title": f"Odd {i}"}) for i, ident in enumerate(odd)])
    add(engine, "up", upstream.base_url)
    assert harvest_source(engine, "up", options()).new == 2
    server = live_server()
    root = assert_oai(requests.get(server.url, params={"verb": "ListRecords", "metadataPrefix": "oai_dc"},
                                   timeout=10).content)
    held = [e.text for e in root.iter("{http://www.openarchives.org/OAI/2.0/provenance}identifier")]
    assert sorted(held) == ["0002-9939(1999)127%3A1%5B1%3AAT%5D2.0.CO;2-Q", "oai:fake:100%25"]
    ours = local_identifier(REPO_ID, "up", odd[0])
    assert_oai(requests.get(server.url, params={"verb": "GetRecord", "metadataPrefix": "oai_dc", "identifier": ours},
                            timeout=10).content)


def test_the_same_pages_twice_change_nothing(engine, up) -> None:  # noqa: ANN001
    add(engine, "up", up.base_url)
    harvest_source(engine, "up", options())
    before = stored(engine, "up")
    again = harvest_source(engine, "up", options(full=True))
    assert (again.new, again.updated, again.unchanged, again.deleted) == (0, 0, 25, 0)
    assert stored(engine, "up") == before  # datestamps, provenance harvestDate and all


def test_incremental_run_picks_up_updates_additions_and_deletions(engine, up, live_server) -> None:  # noqa: ANN001
    add(engine, "up", up.base_url)
    harvest_source(engine, "up", options())
    before = stored(engine, "up")
    up.repo.update("oai:upstream.test:3", title="Changed & <new>")
    up.repo.delete("oai:upstream.test:4")
    up.repo.add(*sample_records(1, prefix="oai:upstream.test:new", start="2030-01-01T00:00:00Z"))
    up.reset_log()
    summary = harvest_source(engine, "up", options())
    with transaction(engine) as s:
        last = s.scalar(select(HarvestRun).where(HarvestRun.id == summary.run_id - 1))
    # from = the last complete run's responseDate, or when that run began by our clock if that is earlier,
    # less the overlap
    window = min(last.response_date, last.started.strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert listed(up)[0]["from"] == dates.format_moment(dates.to_datetime(window) - INCREMENTAL_OVERLAP)
    assert (summary.new, summary.updated, summary.deleted) == (1, 1, 1)
    after = stored(engine, "up")
    assert dc_values(after["oai:upstream.test:3"].metadata["oai_dc"]) == ["Changed & <new>"]
    assert after["oai:upstream.test:3"].datestamp >= before["oai:upstream.test:3"].datestamp
    assert after["oai:upstream.test:4"].deleted and after["oai:upstream.test:4"].metadata == {"oai_dc": None}
    assert after["oai:upstream.test:5"] == before["oai:upstream.test:5"]
    server = live_server()
    body = requests.get(server.url, params={"verb": "GetRecord", "metadataPrefix": "oai_dc",
                                            "identifier": after["oai:upstream.test:4"].identifier}, timeout=10).content
    header = assert_oai(body).find(".//oai:header", NS)
    assert header.get("status") == "deleted"


def test_a_deletion_whose_header_lists_no_sets_stays_in_the_records_sets(engine, up, live_server) -> None:  # noqa: ANN001
    """Deleted headers seldom list their sets; the tombstone must stay where the record was, or a harvester that
    selects by set never hears of the deletion (a review found it left only in the source's own set)."""
    add(engine, "up", up.base_url)
    harvest_source(engine, "up", options())
    assert stored(engine, "up")["oai:upstream.test:6"].sets == ("up:journal:b",)  # up and up:journal implied
    up.repo.delete("oai:upstream.test:6").sets = ()  # status="deleted" and no setSpec, as many repositories send
    up.repo.delete("oai:upstream.test:7")  # and one that lists them: those are taken, as ever
    up.repo.update("oai:upstream.test:7", sets=("journal:c",))
    up.repo.delete("oai:upstream.test:7")
    summary = harvest_source(engine, "up", options())
    assert (summary.deleted, summary.unchanged) == (2, 0)
    after = stored(engine, "up")
    assert after["oai:upstream.test:6"].deleted and after["oai:upstream.test:6"].sets == ("up:journal:b",)
    assert after["oai:upstream.test:7"].deleted and after["oai:upstream.test:7"].sets == ("up:journal:c",)
    body = requests.get(live_server().url, params={"verb": "ListIdentifiers", "metadataPrefix": "oai_dc",
                                                   "set": "up:journal:b"}, timeout=10).content
    headers = {h.findtext("oai:identifier", namespaces=NS): h for h in assert_oai(body).iterfind(".//oai:header", NS)}
    gone = headers[after["oai:upstream.test:6"].identifier]
    assert gone.get("status") == "deleted" and [e.text for e in gone.iterfind("oai:setSpec", NS)] == ["up:journal:b"]
    again = harvest_source(engine, "up", options(full=True))  # the same tombstone again changes nothing
    assert (again.updated, again.deleted) == (0, 0) and stored(engine, "up") == after


def test_a_list_cut_short_by_no_records_match_keeps_the_incremental_window(engine, up) -> None:  # noqa: ANN001
    """noRecordsMatch to a resumptionToken, well short of the completeListSize announced: the run keeps what came,
    but the next incremental run asks from the same date again (a review found the window moved past what the
    list never sent, lost until a --full run)."""
    add(engine, "up", up.base_url)
    harvest_source(engine, "up", options())
    window = "2025-01-01T00:00:00Z"  # as if harvested then: the runs below are within a second of it otherwise
    with transaction(engine) as s:
        s.execute(update(Source).values(last_complete_response_date=window))
    for i in range(1, 26):
        up.repo.update(f"oai:upstream.test:{i}", title=f"changed {i}")
    up.add_fault(faults.OAIErrorReply("noRecordsMatch"), page=2, verb="ListRecords")
    short = harvest_source(engine, "up", options())
    assert (short.status, short.updated) == ("complete", 10)
    assert any("noRecordsMatch to a resumptionToken after 10 of the 25 records it announced" in w
               and "the next incremental run lists again from" in w for w in short.warnings), short.warnings
    with transaction(engine) as s:
        assert s.query(Source.last_complete_response_date).filter_by(name="up").scalar() == window
    again = harvest_source(engine, "up", options())
    assert (again.status, again.updated, again.unchanged) == ("complete", 15, 10)
    assert all(dc_values(r.metadata["oai_dc"])[0].startswith("changed") for r in stored(engine, "up").values())
    with transaction(engine) as s:
        assert s.query(Source.last_complete_response_date).filter_by(name="up").scalar() > window
    up.add_fault(faults.OAIErrorReply("noRecordsMatch"), page=2, verb="ListRecords")
    assert harvest_source(engine, "up", options(full=True)).status == "complete"  # a full list cut short
    up.reset_log()
    assert harvest_source(engine, "up", options()).status == "complete"
    assert "from" not in listed(up)[0]  # the next run lists everything again, not from the old window


def test_a_record_committed_after_the_datestamp_it_carries_is_still_harvested(engine, up) -> None:  # noqa: ANN001
    """An outside audit of a deployment: a record whose datestamp was taken before a list was served, but
    committed after it (a write waiting on a lock, a writer's clock behind), was not in that list, and a next
    `from` of exactly the list's responseDate skipped it for good. The next run asks from a little earlier."""
    add(engine, "up", up.base_url)
    first = harvest_source(engine, "up", options())
    listed_at = run_row(engine, first.run_id).response_date
    late = dates.format_moment(dates.to_datetime(listed_at) - timedelta(seconds=90))
    up.repo.add(*sample_records(1, prefix="oai:upstream.test:late", start=late))  # committed now, stamped before
    up.reset_log()
    second = harvest_source(engine, "up", options())
    assert listed(up)[0]["from"] <= late
    assert second.new == 1 and any("late" in ident for ident in stored(engine, "up"))


def test_a_responsedate_in_the_future_does_not_become_the_next_from(engine, up) -> None:  # noqa: ANN001
    """Found by an outside audit: responseDate 2099 made the next run ask from=2099 and call 'nothing new'
    complete, for good. The next window never starts after the run began by our clock."""
    add(engine, "up", up.base_url)
    up.add_fault(faults.ResponseDate("2099-12-31T23:59:59Z"), verb="ListRecords", times=None)
    first = harvest_source(engine, "up", options())
    assert any("ahead of our clock" in w for w in first.warnings)
    up.repo.update("oai:upstream.test:3", title="Changed later")
    up.reset_log()
    second = harvest_source(engine, "up", options())
    assert listed(up)[0]["from"] < "2099" and second.updated == 1


def test_a_run_resumed_before_its_first_page_asks_its_list_now_and_its_source_is_not_ahead(engine, up) -> None:  # noqa: ANN001
    """An outside audit: a run that failed before any page (the source down), resumed three hours later, compared the
    responseDate of the list it then asked for with when it had first begun: "the source's clock is ahead of ours",
    and the next run's window reached back three hours."""
    add(engine, "up", up.base_url)
    up.add_fault(faults.InternalServerError(), verb="ListRecords", times=None)
    failed = harvest_source(engine, "up", options())
    assert failed.status == "failed" and failed.pages == 0
    with transaction(engine) as s:
        run = s.get(HarvestRun, failed.run_id)
        run.started -= timedelta(hours=3)
    up.clear_faults()
    resumed = harvest_source(engine, "up", options())
    assert resumed.run_id == failed.run_id and resumed.status == "complete", resumed
    assert not any("ahead of our clock" in w for w in resumed.warnings), resumed.warnings
    listed_at = run_row(engine, resumed.run_id).response_date
    with transaction(engine) as s:
        assert s.scalar(select(Source.last_complete_response_date)) == listed_at


@sqlite_only
def test_a_responsedate_ahead_written_with_an_offset_is_seen_as_ahead(engine, up) -> None:  # noqa: ANN001
    """Found by an outside audit: a clock 5 hours fast, written as local time with -05:00, shows our own
    wall-clock time; compared as text with ours it passed as not ahead, the next run asked from 5 hours on,
    and the change made meanwhile was never harvested. The date is taken in UTC first."""
    ahead = datetime.now(UTC) + timedelta(hours=5)
    local = ahead.astimezone(timezone(timedelta(hours=-5))).strftime("%Y-%m-%dT%H:%M:%S-05:00")
    add(engine, "up", up.base_url)
    up.add_fault(faults.ResponseDate(local), verb="ListRecords", times=None)
    first = harvest_source(engine, "up", options())
    assert any("ahead of our clock" in w for w in first.warnings), first.warnings
    with transaction(engine) as s:
        assert s.scalar(select(Source.last_complete_response_date)).endswith("Z")
    up.repo.update("oai:upstream.test:3", title="Changed later")
    up.reset_log()
    second = harvest_source(engine, "up", options())
    assert listed(up)[0]["from"] <= dates.format_moment(dates.utcnow()) and second.updated == 1


def test_no_records_match_on_an_incremental_run_is_success(engine, up) -> None:  # noqa: ANN001
    add(engine, "up", up.base_url)
    harvest_source(engine, "up", options())
    # the upstream's clock a minute slow: on time, its responseDate could fall in the second after our run began,
    # and the window is then taken from our clock instead (a clock ahead), which made this test fail at random
    behind = dates.format_moment(dates.utcnow() - timedelta(minutes=1))
    up.add_fault(faults.ResponseDate(behind), verb="ListRecords", times=None)
    summary = harvest_source(engine, "up", options())
    assert (summary.status, summary.seen, summary.error) == ("complete", 0, None)
    run = run_row(engine, summary.run_id)
    with transaction(engine) as s:  # the window moves on to the upstream's clock, from its error response
        assert run.response_date == behind and s.scalar(select(Source.last_complete_response_date)) == behind


def test_a_stopped_run_resumes_from_its_checkpoint(engine, up) -> None:  # noqa: ANN001
    add(engine, "up", up.base_url)
    stop, progress = stop_after(1)
    first = harvest_source(engine, "up", options(), stop=stop, on_progress=progress)
    assert (first.status, first.pages, first.new) == ("interrupted", 1, 10)
    with transaction(engine) as s:
        cp = s.get(HarvestCheckpoint, s.scalar(select(Source.id)))
        token = cp.resumption_token
    assert token and cp.cursor == 10
    up.reset_log()
    second = harvest_source(engine, "up", options())
    assert second.run_id == first.run_id and second.status == "complete"
    assert listed(up)[0] == {"verb": "ListRecords", "resumptionToken": token}
    assert (second.pages, second.seen, second.new) == (3, 25, 25)  # counted once over both sessions
    assert len(stored(engine, "up")) == 25
    # the interruption stays in the run's history (an outside audit: it had become plain "complete")
    with transaction(engine) as s:
        warnings = s.get(HarvestRun, first.run_id).warnings or ""
    assert "resumed from its checkpoint after it was interrupted" in warnings and "asked to stop" in warnings


def test_large_responses_are_read_in_parts_and_a_run_stopped_inside_one_resumes_at_its_start(
        engine, up, monkeypatch) -> None:  # noqa: ANN001
    """Every response read in parts of one record (harvester.parse.read_large, made to take every response): the
    run counts responses as pages, and a stop inside a response leaves the checkpoint where it began, so that the
    next session asks for it again and nothing is skipped or counted twice."""
    import harvester.parse as parse

    monkeypatch.setattr(parse, "STREAM_BYTES", 0)
    monkeypatch.setattr(parse, "PART_BYTES", 1)
    add(engine, "up", up.base_url)
    stop = threading.Event()
    first = harvest_source(engine, "up", options(), stop=stop,
                           on_progress=lambda p: p.records >= 13 and stop.set())
    assert (first.status, first.pages, first.seen, first.new) == ("interrupted", 1, 13, 13)
    with transaction(engine) as s:
        cp = s.get(HarvestCheckpoint, s.scalar(select(Source.id)))
        token, cursor = cp.resumption_token, cp.cursor
    assert token and cursor == 10  # the start of the second response (records 11-20)
    asked = listed(up)
    assert len(asked) >= 2 and asked[1] == {"verb": "ListRecords", "resumptionToken": token}
    up.reset_log()
    second = harvest_source(engine, "up", options())
    assert second.run_id == first.run_id and second.status == "complete"
    assert listed(up)[0] == {"verb": "ListRecords", "resumptionToken": token}
    assert (second.pages, second.seen, second.new, second.updated) == (3, 25, 25, 0)
    got = stored(engine, "up")
    assert sorted(got) == sorted(f"oai:upstream.test:{i}" for i in range(1, 26))
    assert dc_values(got["oai:upstream.test:17"].metadata["oai_dc"]) == [title(17)]


def test_a_harvest_under_another_repository_identifier_is_refused_not_doubled(engine, up) -> None:  # noqa: ANN001
    """An outside audit: a run from cron without the settings file (another OAI_REPOSITORY_IDENTIFIER) wrote every
    record of the source again under a second name, each then served twice."""
    from harvester.errors import SourceError

    add(engine, "up", up.base_url)
    assert harvest_source(engine, "up", options()).new == 25
    with pytest.raises(SourceError, match=r"named in the repository identifier 'example.org', but "
                                          r"OAI_REPOSITORY_IDENTIFIER is 'other.example' here.*"
                                          r"Set OAI_REPOSITORY_IDENTIFIER=example.org"):
        harvest_source(engine, "up", options(repository_identifier="other.example"))
    with transaction(engine) as s:
        assert s.scalar(select(func.count()).select_from(StoredRecord)) == 25  # (stored() keys by upstream id)
    assert harvest_source(engine, "up", options()).status == "complete"


def test_harvesting_this_repository_itself_does_not_grow_without_end(engine, live_server) -> None:  # noqa: ANN001
    """An outside audit added our own endpoint as a source (the site's root redirects to /oai): each run served the
    last run's records again under a longer name, 6, 12, 18 records. Adding it now warns; a record of ours that
    comes back is quarantined (a review: a copy of each was stored once), so the store keeps our records alone."""
    from endpoint_helpers import dc_record, write

    from harvester.history import list_quarantine

    write(engine, [dc_record(f"oai:{REPO_ID}:local-{i}") for i in range(3)], datetime(2024, 1, 1))
    _view, warnings = add_source(engine, "me", live_server().url, policy=policy())
    assert any(f"the source names itself '{REPO_ID}', as this repository is named" in w for w in warnings)
    for _ in range(3):
        summary = harvest_source(engine, "me", options(full=True))
        assert summary.status == "complete"
    with transaction(engine) as s:
        assert s.scalar(select(func.count()).select_from(StoredRecord)) == 3
    reasons = {q.reason for q in list_quarantine(engine, "me")}
    assert reasons == {f"it is named as our own record oai:{REPO_ID}:local-{i}: the source harvests this repository, "
                       "directly or not, and serving it again would start a cycle; or the source names its records in "
                       f"our repository identifier ({REPO_ID}), which only this repository should" for i in range(3)}


def test_a_killed_run_resumed_says_so_in_its_history(engine, up) -> None:  # noqa: ANN001
    """A review: a run whose process was killed (kill -9, out of memory) is still marked running with no error,
    and resumed it read as plainly complete."""
    add(engine, "up", up.base_url)
    stop, progress = stop_after(1)
    first = harvest_source(engine, "up", options(), stop=stop, on_progress=progress)
    with transaction(engine) as s:  # what a killed process leaves: the run running, its lease lapsed
        run = s.get(HarvestRun, first.run_id)
        run.status, run.ended, run.error, run.worker = "running", None, None, "otherhost:4242:ab12cd"
        s.execute(update(Source).values(lease_owner=None, lease_expires=None))
    second = harvest_source(engine, "up", options())
    assert second.run_id == first.run_id and second.status == "complete"
    warnings = run_row(engine, first.run_id).warnings or ""
    assert "resumed from its checkpoint after the process running it (otherhost:4242:ab12cd) ended without " \
           "finishing" in warnings, warnings


def test_a_run_whose_checkpoint_disappears_stops_without_writing_the_page(engine, up) -> None:  # noqa: ANN001
    """No page is committed without the point to resume from."""
    add(engine, "up", up.base_url)

    def remove_checkpoint(p) -> None:  # noqa: ANN001
        if p.pages == 1:
            with transaction(engine) as s:
                s.execute(HarvestCheckpoint.__table__.delete())

    summary = harvest_source(engine, "up", options(), on_progress=remove_checkpoint)
    assert summary.status == "failed" and "checkpoint of this run is gone" in summary.error
    assert (summary.pages, summary.seen) == (1, 10) and len(stored(engine, "up")) == 10


def test_expired_token_on_resume_relists_from_the_lists_start(engine, up) -> None:  # noqa: ANN001
    add(engine, "up", up.base_url)
    stop, progress = stop_after(2)
    harvest_source(engine, "up", options(), stop=stop, on_progress=progress)
    up.expire_tokens()
    up.reset_log()
    summary = harvest_source(engine, "up", options())
    assert summary.status == "complete"
    relist = listed(up)[1]
    assert "from" not in relist and "resumptionToken" not in relist  # the run's own list, from its start
    assert any("listing again from the beginning (the list's start)" in w for w in summary.warnings)
    assert len(stored(engine, "up")) == 25 and summary.new == 25
    # seen is how far into the list the run got: the 20 records listed again are not 20 more ("45 of 25")
    assert summary.seen == 25 and summary.complete_list_size == 25


def test_an_expired_token_in_a_list_not_in_datestamp_order_loses_nothing(engine, upstream_factory) -> None:  # noqa: ANN001, F811
    """OAI-PMH promises no order (DSpace lists by item id): a first page that happens to rise must not make
    the re-list start after its last datestamp, or the older records further on are never fetched."""
    records = sample_records(25)
    for rec in records[10:]:  # pages 2 and 3 hold records older than anything on page 1
        rec.datestamp -= timedelta(days=365)
    up = upstream_factory(SyntheticRepository(records, order="added"))
    add(engine, "up", up.base_url)
    up.add_fault(faults.ExpiredTokens(), page=2)
    summary = harvest_source(engine, "up", options())
    assert (summary.status, summary.new) == ("complete", 25)
    assert len(stored(engine, "up")) == 25
    assert not any("shifted" in w for w in summary.warnings)  # a list asked again is no list that shifted


@sqlite_only
def test_expired_token_with_a_422_mid_run_still_ends_complete(engine, up) -> None:  # noqa: ANN001
    add(engine, "up", up.base_url)
    up.add_fault(faults.ExpiredTokens(status=422), page=2)
    summary = harvest_source(engine, "up", options())
    assert summary.status == "complete" and summary.new == 25
    assert len(stored(engine, "up")) == 25


def test_unparsable_record_is_quarantined_and_the_page_kept_intact(engine, up) -> None:  # noqa: ANN001
    add(engine, "up", up.base_url)
    up.add_fault(faults.BrokenRecord(record=3, kind="stray-tag"), page=1, verb="ListRecords")
    summary = harvest_source(engine, "up", options())
    assert (summary.new, summary.quarantined) == (24, 1)
    got = stored(engine, "up")
    assert "oai:upstream.test:3" not in got
    assert [dc_values(got[f"oai:upstream.test:{i}"].metadata["oai_dc"])[0] for i in (1, 2, 4, 5)] == [
        title(i) for i in (1, 2, 4, 5)]
    [q] = list_quarantine(engine, "up")
    assert (q.upstream_identifier, q.run_id, q.source) == ("oai:upstream.test:3", summary.run_id, "up")
    assert "not well-formed" in q.reason
    # fixed upstream: the next full harvest ingests it and clears the quarantine entry
    assert harvest_source(engine, "up", options(full=True)).new == 1 and not list_quarantine(engine, "up")


@sqlite_only
def test_invalid_characters_are_repaired_and_the_record_marked_altered(engine, up) -> None:  # noqa: ANN001
    add(engine, "up", up.base_url)
    up.add_fault(faults.IllegalCharacter("\x0c", record=2), page=1, verb="ListRecords")
    summary = harvest_source(engine, "up", options())
    assert summary.new == 25 and any("U+FFFD" in w for w in summary.warnings)
    rec = stored(engine, "up")["oai:upstream.test:2"]
    assert dc_values(rec.metadata["oai_dc"]) == [FFFD + title(2)]
    assert b'altered="true"' in rec.about["oai_dc"]


def test_identifiers_that_only_a_repair_makes_alike_are_quarantined_not_merged(engine, up) -> None:  # noqa: ANN001
    """An outside audit: a&#0;b and a&#x1F;b were both repaired to a\ufffdb and written as one record."""
    class TwoIllegalIdentifiers(faults.Fault):
        stage = "body"

        def apply(self, reply, ctx) -> bool:  # noqa: ANN001, ARG002
            reply.body = (reply.body.replace(b"oai:upstream.test:1<", b"oai:upstream.test:a&#0;b<")
                          .replace(b"oai:upstream.test:2<", b"oai:upstream.test:a&#x1F;b<"))
            return True

    add(engine, "up", up.base_url)
    up.add_fault(TwoIllegalIdentifiers(), page=1, verb="ListRecords")
    summary = harvest_source(engine, "up", options())
    assert (summary.new, summary.quarantined) == (23, 2)
    assert not any(FFFD in identifier for identifier in stored(engine, "up"))
    reasons = {q.reason for q in list_quarantine(engine, "up")}
    assert reasons == {"its identifier held characters XML cannot carry (replaced by U+FFFD), so it would not tell "
                       "this record from others reliably"}


@sqlite_only
@pytest.mark.parametrize("piece", [1_000_000, None])
def test_huge_page_records_all_arrive_whole(engine, up, piece) -> None:  # noqa: ANN001
    """Records past 10 MB of a page arrive whole (sickle's recover mode cuts a page there). A record holding one text
    of more than 10,000,000 characters is quarantined, the rest of its page kept: served, a page holding it would
    be cut short by parsers that keep libxml2's default limit (an outside audit on PostgreSQL: a 40 MiB title)."""
    add(engine, "up", up.base_url)
    fault = faults.HugePage(11 * 1024 * 1024, piece=piece)
    up.add_fault(fault, page=1, verb="ListRecords")
    summary = harvest_source(engine, "up", options())
    got = stored(engine, "up")
    assert dc_values(got["oai:upstream.test:10"].metadata["oai_dc"]) == [title(10)]
    if piece is None:
        assert (summary.new, summary.quarantined) == (24, 1) and "oai:upstream.test:1" not in got
        [held] = list_quarantine(engine, "up")
        assert "a text of more than 10,000,000 characters" in held.reason
        return
    assert summary.new == 25
    descriptions = dc_values(got["oai:upstream.test:1"].metadata["oai_dc"], "description")
    assert descriptions == [text.strip() for text in fault.pieces()]  # (each trimmed, as oai_dc is written)


@sqlite_only
def test_a_large_response_that_cannot_wait_in_a_temporary_file_fails_the_run_saying_so(engine, up, monkeypatch,  # noqa: ANN001
                                                                                       tmp_path) -> None:
    """A response over 2 MiB is spooled to a temporary file as it arrives (memory, issue 5); a temporary directory
    that cannot be written is said, not an internal error."""
    import harvester.client

    add(engine, "up", up.base_url)
    up.add_fault(faults.HugePage(3 * 1024 * 1024, piece=None), page=1, verb="ListRecords")
    monkeypatch.setattr(harvester.client, "SPOOL_DIR", str(tmp_path / "gone"))
    summary = harvest_source(engine, "up", options())
    assert summary.status == "failed" and "waits in a temporary file" in summary.error
    assert "set TMPDIR to a directory the harvester can write" in summary.error and "internal" not in summary.error


@sqlite_only
def test_transport_faults_during_a_run(engine, up) -> None:  # noqa: ANN001
    add(engine, "up", up.base_url)
    up.add_fault(faults.ServiceUnavailable(retry_after=0), page=2)
    up.add_fault(faults.EmptyBody(), page=2)
    up.add_fault(faults.InternalServerError(), page=3)
    up.add_fault(faults.ConnectionReset(), page=3)
    up.add_fault(faults.NotXml(), page=3)
    up.add_fault(faults.Slow(1.0), page=3)
    up.add_fault(faults.Truncated(0.5, content_length="sent"), page=1, verb="ListRecords")
    up.add_fault(faults.Gzip(), times=None)
    summary = harvest_source(engine, "up", options(policy=policy(read_timeout=0.4, attempts=6)))
    assert (summary.status, summary.new) == ("complete", 25) and len(stored(engine, "up")) == 25
    fired = [name for e in up.log if e.query.get("verb") == "ListRecords" for name in e.faults if name != "Gzip"]
    assert fired == ["Truncated", "ServiceUnavailable", "EmptyBody", "InternalServerError", "Slow",
                     "ConnectionReset", "NotXml"]  # each retried, and nothing lost


def test_a_full_harvest_replacing_a_failed_run_keeps_why_it_failed(engine, up) -> None:  # noqa: ANN001
    """`--full` is what a librarian runs after trouble; an outside audit found it wiped the failed run's error and
    end time from the history (abandoned, "replaced by a full harvest")."""
    add(engine, "up", up.base_url)
    up.add_fault(faults.InternalServerError(), page=2, times=None)
    failed = harvest_source(engine, "up", options())
    assert failed.status == "failed" and "500" in failed.error
    before = run_row(engine, failed.run_id)
    up.clear_faults()
    assert harvest_source(engine, "up", options(full=True)).status == "complete"
    after = run_row(engine, failed.run_id)
    assert (after.status, after.error, after.ended) == ("abandoned", before.error, before.ended)
    assert "after it failed: replaced by a full harvest" in after.warnings


@sqlite_only
def test_a_repeating_token_stops_the_run_and_keeps_what_came(engine, up) -> None:  # noqa: ANN001
    add(engine, "up", up.base_url)
    up.add_fault(faults.RepeatingToken(), page=2, times=None)
    summary = harvest_source(engine, "up", options())
    assert summary.status == "failed" and "resumptionToken" in summary.error
    assert len(stored(engine, "up")) == 20
    # Found by an outside audit: each rerun resumed inside the loop and added the same page to the same run's
    # counts (120 of 100 records). The next run starts the list again, as a run of its own.
    again = harvest_source(engine, "up", options())
    assert again.status == "failed" and again.run_id != summary.run_id and again.seen == summary.seen == 20
    assert "lists again from the start" in again.error


@sqlite_only
def test_a_cycle_of_tokens_stops_a_resumed_run_as_cleanly_as_the_first(engine, up) -> None:  # noqa: ANN001
    add(engine, "up", up.base_url)
    up.add_fault(faults.CyclingToken(), verb="ListRecords", times=None)
    for _ in range(2):  # the second run lists again from the start, into the same cycle
        summary = harvest_source(engine, "up", options())
        assert summary.status == "failed" and "handed back the resumptionToken" in summary.error, summary.error
    assert len(stored(engine, "up")) == 25  # every page came (the last one handed back the first token)


@sqlite_only
def test_a_list_far_longer_than_it_announced_is_resumed_by_the_next_run(engine, upstream_factory) -> None:  # noqa: ANN001, F811
    """A completeListSize that is wrong is no loop: the run stops, and the next one resumes from its
    checkpoint (a review found it starting the list again, and so never finishing)."""
    from upstream import SyntheticRepository

    up = upstream_factory(SyntheticRepository(sample_records(1300), page_size=100))
    up.add_fault(faults.CompleteListSize(50), verb="ListRecords", times=None)
    add(engine, "up", up.base_url)
    first = harvest_source(engine, "up", options())
    assert first.status == "failed" and "announced as 50" in first.error
    second = harvest_source(engine, "up", options())
    assert second.status == "complete" and second.run_id == first.run_id and len(stored(engine, "up")) == 1300


@sqlite_only
@pytest.mark.parametrize("empty", [False, True])
def test_a_list_without_end_is_stopped(engine, up, empty) -> None:  # noqa: ANN001
    """Fresh tokens that never repeat, over the same page again or over empty pages: stopped, not followed
    until someone kills the harvester; what came is kept."""
    add(engine, "up", up.base_url)
    fault = faults.EndlessList(empty=empty)
    up.add_fault(fault, times=None)
    summary = harvest_source(engine, "up", options())
    assert summary.status == "failed", summary
    assert ("empty pages in a row" if empty else "the same pages again") in summary.error
    # (an outside audit) the repeats are the loop: no "list shifted, --full fetches them" beside it, and no resuming
    assert not [w for w in summary.warnings if w.startswith(SHIFTED)] and not summary.resumable, summary.warnings
    assert len(stored(engine, "up")) == 10  # the first page
    limit = EndlessList.EMPTY if empty else EndlessList.REPEATS
    assert limit <= fault.sent <= limit + 2  # the prefetcher may have asked for a page or two more


@sqlite_only
def test_a_list_far_longer_than_announced_is_stopped(engine, upstream_factory) -> None:  # noqa: ANN001, F811
    up = upstream_factory(SyntheticRepository(sample_records(1300), page_size=100))
    add(engine, "up", up.base_url)
    up.add_fault(faults.CompleteListSize(50), times=None)
    summary = harvest_source(engine, "up", options())
    assert summary.status == "failed" and "in a list it announced as 50" in summary.error
    assert len(stored(engine, "up")) == 1200  # stopped after the page that went past 2 x 50 + 1000


@sqlite_only
def test_an_item_twice_on_a_page_is_written_once_from_its_newest_copy(engine, up) -> None:  # noqa: ANN001
    add(engine, "up", up.base_url)
    # record 3 (2024-01-02T20:00:00Z) again on its page: deleted and later; then record 5 again, older
    up.add_fault(faults.DuplicateRecord("oai:upstream.test:3", "2024-06-01T00:00:00Z", deleted=True), page=1)
    up.add_fault(faults.DuplicateRecord("oai:upstream.test:5", "2023-01-01T00:00:00Z"), page=1)
    summary = harvest_source(engine, "up", options())
    assert (summary.new, summary.deleted, summary.seen) == (24, 1, 27)  # 25 items, each counted once
    got = stored(engine, "up")
    assert got["oai:upstream.test:3"].deleted and not got["oai:upstream.test:5"].deleted
    assert dc_values(got["oai:upstream.test:5"].metadata["oai_dc"])[0] == title(5)
    assert sum("more than once" in w for w in summary.warnings) == 2


@sqlite_only
def test_an_item_twice_in_a_response_read_in_parts_is_no_shift_of_the_list(engine, up, monkeypatch) -> None:  # noqa: ANN001
    """An outside audit: one large page holding an item twice (read in parts of about 1 MiB) said "the source's list
    shifted while it was harvested ... --full fetches them" on a run of one page. The parts are one page: its
    repeat is kept once, from its newest copy, as within a page."""
    import harvester.parse as parse

    monkeypatch.setattr(parse, "STREAM_BYTES", 0)
    monkeypatch.setattr(parse, "PART_BYTES", 1)  # every record a part of its own
    add(engine, "up", up.base_url)
    up.add_fault(faults.DuplicateRecord("oai:upstream.test:3", "2024-06-01T00:00:00Z", deleted=True), page=1)
    summary = harvest_source(engine, "up", options())
    assert summary.status == "complete" and not any("shifted" in w for w in summary.warnings), summary.warnings
    assert stored(engine, "up")["oai:upstream.test:3"].deleted


@sqlite_only
def test_an_older_copy_on_a_later_page_does_not_overwrite_the_newer_one(engine, up) -> None:  # noqa: ANN001
    add(engine, "up", up.base_url)  # record 2 (2024-01-02T08:00:00Z) is on page 1; an older tombstone on page 2
    up.add_fault(faults.DuplicateRecord("oai:upstream.test:2", "2020-01-01T00:00:00Z", deleted=True), page=2,
                 verb="ListRecords", times=None)
    summary = harvest_source(engine, "up", options())
    got = stored(engine, "up")["oai:upstream.test:2"]
    assert not got.deleted and got.upstream_datestamp == "2024-01-02T08:00:00Z"
    assert dc_values(got.metadata["oai_dc"])[0] == title(2)
    assert (summary.new, summary.deleted) == (25, 0) and any("older datestamp" in w for w in summary.warnings)
    # In the next runs the newer copy is unchanged, so not written again: the older one must not win then
    # either (a review found the record flipped between the two copies from one run to the next).
    for _ in range(2):
        time.sleep(1.1)  # a run in a later second than the write (times are kept to the second)
        again = harvest_source(engine, "up", options(full=True))
        assert (again.status, again.updated, again.deleted) == ("complete", 0, 0)
        assert any("older datestamp" in w for w in again.warnings)
        got = stored(engine, "up")["oai:upstream.test:2"]
        assert not got.deleted and got.upstream_datestamp == "2024-01-02T08:00:00Z"


@sqlite_only
def test_day_granularity_sources_get_day_dates(engine, upstream_factory) -> None:  # noqa: ANN001, F811
    from upstream import SyntheticRepository

    up = upstream_factory(SyntheticRepository(sample_records(8), granularity=DAY, page_size=5))
    add(engine, "days", up.base_url)
    harvest_source(engine, "days", options())
    up.reset_log()
    assert harvest_source(engine, "days", options()).status == "complete"
    assert len(listed(up)[0]["from"]) == 10  # YYYY-MM-DD


def test_a_day_granular_from_reaches_back_over_every_time_zone() -> None:
    """An outside dates audit: a source of day granularity that stamps its local date (west of UTC) still writes
    yesterday's date after our midnight; a `from` of our new day skipped the rest of its day."""
    from harvester.runs import incremental_from

    assert incremental_from("2026-12-05T00:30:00Z", DAY) == "2026-12-04"
    assert incremental_from("2026-12-05T13:30:00Z", DAY) == "2026-12-04"  # until 14:05 UTC, the day before
    assert incremental_from("2026-12-05T14:06:00Z", DAY) == "2026-12-05"
    assert incremental_from("2026-12-05T00:30:00Z", "YYYY-MM-DDThh:mm:ssZ") == "2026-12-05T00:25:00Z"


@sqlite_only
def test_a_source_that_refuses_times_despite_its_identify_is_asked_by_day(engine, up) -> None:  # noqa: ANN001
    add(engine, "up", up.base_url)
    harvest_source(engine, "up", options())
    up.add_fault(faults.DayGranularityOnly(), verb="ListRecords", times=None)
    up.reset_log()
    summary = harvest_source(engine, "up", options())
    assert summary.status == "complete" and any("accepts days only" in w for w in summary.warnings)
    assert len(listed(up)[-1]["from"]) == 10
    with transaction(engine) as s:
        assert s.scalar(select(Source.granularity)) == DAY


@sqlite_only
def test_completelistsize_shortfall_is_reported_on_the_run(engine, upstream_factory) -> None:  # noqa: ANN001, F811
    from upstream import SyntheticRepository

    up = upstream_factory(SyntheticRepository(sample_records(25), deleted_record="no"))
    add(engine, "up", up.base_url)
    gone = [f"oai:upstream.test:{i}" for i in (24, 25)]
    up.add_fault(faults.Mutate(lambda repo: [repo.delete(g) for g in gone]), page=2)
    summary = harvest_source(engine, "up", options())
    assert summary.status == "complete"
    assert any("completeListSize=25 but sent 23" in w for w in summary.warnings)
    assert any("changed from 25 to 23" in w for w in summary.warnings)
    assert list_runs(engine, "up")[0].warnings == summary.warnings


@pytest.mark.parametrize("in_parts", [False, True])
def test_detect_deletions_for_a_source_that_keeps_none(engine, upstream_factory, monkeypatch,  # noqa: ANN001, F811
                                                        in_parts: bool) -> None:
    """Also with every response read in parts of one item (as a large one is), its identifier lists included."""
    import harvester.parse as parse
    from upstream import SyntheticRepository

    if in_parts:
        monkeypatch.setattr(parse, "STREAM_BYTES", 0)
        monkeypatch.setattr(parse, "PART_BYTES", 1)
    up = upstream_factory(SyntheticRepository(sample_records(12), deleted_record="no"))
    add(engine, "up", up.base_url, detect_deletions=True)
    harvest_source(engine, "up", options())
    up.repo.purge("oai:upstream.test:5")
    summary = harvest_source(engine, "up", options())
    assert summary.deleted == 1
    got = stored(engine, "up")
    assert got["oai:upstream.test:5"].deleted and sum(r.deleted for r in got.values()) == 1


def test_a_deletion_check_cut_short_is_done_by_the_next_complete_run(engine, upstream_factory) -> None:  # noqa: ANN001, F811
    """An outside audit killed `oai harvest --detect-deletions` during its check: the run had already said
    complete, and since the request lived only on the command line, no later run checked; the records the source
    had dropped were never tombstoned. The completion now says the check is owed, and only its end settles it."""
    from upstream import SyntheticRepository

    up = upstream_factory(SyntheticRepository(sample_records(12), deleted_record="no"))
    add(engine, "up", up.base_url)  # the source does not check for deletions: only this run was asked to
    harvest_source(engine, "up", options())
    up.repo.purge("oai:upstream.test:5")
    up.add_fault(faults.InternalServerError(), verb="ListIdentifiers", times=None)
    summary = harvest_source(engine, "up", options(detect_deletions=True))
    assert (summary.status, summary.deleted) == ("complete", 0)
    assert any("deletion check not finished" in w and "the next complete run of this source does it" in w
               for w in summary.warnings), summary.warnings
    up.clear_faults()
    summary = harvest_source(engine, "up", options())  # not asked, but owed
    assert summary.deleted == 1 and stored(engine, "up")["oai:upstream.test:5"].deleted
    up.repo.purge("oai:upstream.test:6")  # settled: the next run does not check again
    assert harvest_source(engine, "up", options()).deleted == 0
    assert not stored(engine, "up")["oai:upstream.test:6"].deleted


def test_the_history_says_a_deletion_check_is_under_way_or_unfinished_and_who_did_it(engine, upstream_factory) -> None:  # noqa: ANN001, F811
    """An outside audit: a run showed "complete" in `harvest runs` while its deletion check went on (and `source
    remove` was refused for the lease it held); killed in its check, it stayed "complete" with no word, and the next
    run tombstoned a record of a source whose check was off, saying nothing of why."""
    from harvester.history import CHECK_UNFINISHED
    from harvester.sources import show_source
    from upstream import SyntheticRepository

    up = upstream_factory(SyntheticRepository(sample_records(12), deleted_record="no"))
    add(engine, "up", up.base_url)
    first = harvest_source(engine, "up", options())
    with transaction(engine) as s:  # as the run's process leaves it between its list's completion and its check
        worker = s.get(HarvestRun, first.run_id).worker
        s.execute(update(Source).values(deletion_check_owed_by=first.run_id, lease_owner=worker,
                                        lease_expires=dates.utcnow() + timedelta(minutes=5)))
    assert list_runs(engine, "up")[0].status == "checking"
    with transaction(engine) as s:  # and as it leaves it killed there (the lease lapsed)
        s.execute(update(Source).values(lease_expires=dates.utcnow() - timedelta(minutes=1)))
    killed = list_runs(engine, "up")[0]
    assert killed.status == "complete" and CHECK_UNFINISHED in killed.warnings
    assert show_source(engine, "up").source.deletion_check_owed_by == first.run_id
    with transaction(engine) as s:
        s.execute(update(Source).values(lease_owner=None, lease_expires=None))
    up.repo.purge("oai:upstream.test:5")
    # (an outside review) a run asked not to check completes without the check, which stays the first run's
    skipped = harvest_source(engine, "up", options(detect_deletions=False))
    assert skipped.deleted == 0 and show_source(engine, "up").source.deletion_check_owed_by == first.run_id
    runs = list_runs(engine, "up")
    assert CHECK_UNFINISHED in runs[1].warnings and CHECK_UNFINISHED not in runs[0].warnings
    third = harvest_source(engine, "up", options())
    assert third.deleted == 1 and f"deletion check: owed by run #{first.run_id}, which did not finish it" in \
        third.warnings
    runs = list_runs(engine, "up")
    assert not any(CHECK_UNFINISHED in r.warnings for r in runs) and \
        show_source(engine, "up").source.deletion_check_owed_by is None


def test_a_deletion_check_on_a_list_cut_short_tombstones_nothing(engine, upstream_factory) -> None:  # noqa: ANN001, F811
    """An identifier list that ends before the completeListSize it announced is not the source's whole
    list: what it left out was not deleted (an outside audit lost 77 of 97 records this way)."""
    from upstream import SyntheticRepository

    up = upstream_factory(SyntheticRepository(sample_records(25), deleted_record="no"))
    add(engine, "up", up.base_url, detect_deletions=True)
    harvest_source(engine, "up", options())
    up.add_fault(faults.CutShort(), page=1, verb="ListIdentifiers")
    summary = harvest_source(engine, "up", options())
    assert summary.status == "complete" and summary.deleted == 0
    assert any("ended after 10 of the 25 identifiers it announced" in w for w in summary.warnings)
    assert not any(r.deleted for r in stored(engine, "up").values())
    up.repo.purge("oai:upstream.test:5")  # the next whole list is believed again
    assert harvest_source(engine, "up", options()).deleted == 1


def test_a_deletion_check_on_a_list_that_shifted_tombstones_nothing(engine, upstream_factory) -> None:  # noqa: ANN001, F811
    """A record changed while the check reads the list moves to its end (a list in datestamp order, paged by
    offset): the record after it is never listed, though it lives, and the count still matches. The repeat is the
    sign; the check believes no such list (found by a review)."""
    from upstream import SyntheticRepository

    up = upstream_factory(SyntheticRepository(sample_records(25), deleted_record="no"))
    add(engine, "up", up.base_url, detect_deletions=True)
    harvest_source(engine, "up", options())
    up.add_fault(faults.Mutate(lambda repo: repo.update("oai:upstream.test:2", title="changed")), page=2,
                 verb="ListIdentifiers")
    summary = harvest_source(engine, "up", options())
    assert summary.status == "complete" and summary.deleted == 0, summary
    assert any("deletion check skipped: 1 identifiers came again" in w for w in summary.warnings), summary.warnings
    assert not any(r.deleted for r in stored(engine, "up").values())


def test_a_deletion_check_believes_no_identifier_list_that_contradicts_the_records(engine, upstream_factory) -> None:  # noqa: ANN001, F811
    """An outside audit harvested a source whose ListIdentifiers named none of the records its ListRecords gave: the
    check tombstoned the whole source, and every run brought it back and tombstoned it again. A list that names
    none of what we hold is not believed; a record this run's ListRecords gave live is never tombstoned by it."""
    from upstream import SyntheticRepository

    up = upstream_factory(SyntheticRepository(sample_records(12), deleted_record="no"))
    add(engine, "up", up.base_url, detect_deletions=True)
    up.add_fault(faults.Rewrite(b"oai:upstream.test:", b"oai:elsewhere.test:"), verb="ListIdentifiers", times=None)
    summary = harvest_source(engine, "up", options())
    assert (summary.status, summary.new, summary.deleted) == ("complete", 12, 0)
    assert any("names none of the 12 records we hold" in w for w in summary.warnings), summary.warnings
    up.clear_faults()
    # a list that leaves out a record the same run's ListRecords gave (a full run gives them all)
    up.add_fault(faults.Rewrite(b"oai:upstream.test:5<", b"oai:upstream.test:500<"), verb="ListIdentifiers")
    summary = harvest_source(engine, "up", options(full=True))
    assert summary.deleted == 0 and any("1 record(s) that this run's ListRecords gave" in w for w in summary.warnings)
    assert not any(r.deleted for r in stored(engine, "up").values())
    up.repo.purge("oai:upstream.test:5")  # gone from both lists: an incremental run tombstones it
    assert harvest_source(engine, "up", options()).deleted == 1


def test_a_record_quarantined_and_read_again_good_in_the_same_run_leaves_the_quarantine(engine, upstream) -> None:  # noqa: ANN001, F811
    """A record changed while we harvest comes again at the end of a keyset-paged list: its good copy
    clears the entry its broken copy made earlier in the same run (the page writes skip that delete
    while the source holds nothing in quarantine)."""
    upstream.repo.paging = "keyset"
    upstream.repo.add(*sample_records(45))
    add(engine, "up", upstream.base_url)
    upstream.add_fault(faults.BrokenRecord(record=3, kind="stray-tag"), page=1, verb="ListRecords")

    def progress(p) -> None:  # noqa: ANN001 - after page 1 is committed; pages 4 and 5 are not fetched yet
        if p.pages == 1:
            upstream.repo.update("oai:upstream.test:3", title="Record 3, corrected")

    summary = harvest_source(engine, "up", options(), on_progress=progress)
    assert (summary.status, summary.seen, summary.quarantined, summary.new) == ("complete", 46, 1, 45)
    assert not list_quarantine(engine, "up")
    assert dc_values(stored(engine, "up")["oai:upstream.test:3"].metadata["oai_dc"])[0] == "Record 3, corrected"


def test_identifier_clashes_between_sources_are_quarantined_never_overwritten(engine, up, upstream_factory) -> None:  # noqa: ANN001, F811
    twin = upstream_factory()  # another repository with the same identifiers (the same one twice is refused)
    twin.repo.add(*sample_records(25))
    add(engine, "one", up.base_url, keep_identifiers=True)
    add(engine, "two", twin.base_url, keep_identifiers=True)
    with transaction(engine) as s:  # and a local record that happens to use an upstream identifier
        upsert_records(s, [RecordIn("oai:upstream.test:7", {"oai_dc": b"<x/>"})])
    assert harvest_source(engine, "one", options()).quarantined == 1
    summary = harvest_source(engine, "two", options())
    assert (summary.new, summary.quarantined) == (0, 25)
    reasons = {q.upstream_identifier: q.reason for q in list_quarantine(engine, "two")}
    assert "already belongs to source one" in reasons["oai:upstream.test:1"]
    assert "loaded locally" in reasons["oai:upstream.test:7"]
    assert len(stored(engine, "one")) == 24 and stored(engine)["oai:upstream.test:7"].metadata == {"oai_dc": b"<x/>"}


def test_a_kept_upstream_identifier_in_our_own_namespace_is_quarantined(engine, upstream_factory) -> None:  # noqa: ANN001, F811
    """An outside hostile-source audit: a --keep-identifiers source serving oai:<our repository identifier>:10.9999/x
    had it stored as its record, and `oai load` of the real article with that DOI was then refused as loading over
    a harvested record; Identify's sampleIdentifier could be it too."""
    up = upstream_factory()
    up.repo.add(*sample_records(2), Record(f"OAI:{REPO_ID.upper()}:10.9999/squat", "2024-01-02T00:00:00Z",
                                           fields={"title": "Squatter"}))
    add(engine, "keep", up.base_url, keep_identifiers=True)
    summary = harvest_source(engine, "keep", options())
    assert (summary.new, summary.quarantined) == (2, 1)
    [entry] = list_quarantine(engine, "keep")
    assert entry.reason == (f"cannot keep the upstream identifier: it is in our own namespace (oai:{REPO_ID}:), "
                            "where only records made here are named")


def test_foreign_formats_are_stored_canonical_and_registered(engine, upstream_factory, live_server) -> None:  # noqa: ANN001, F811
    from harvest_fixtures import MARC_NS, MarcRepository

    up = upstream_factory(MarcRepository(sample_records(6), page_size=4))
    add(engine, "marc", up.base_url, prefix="marc21")
    summary = harvest_source(engine, "marc", options())
    assert summary.new == 6
    rec = stored(engine, "marc")["oai:upstream.test:2"]
    assert rec.metadata["marc21"].startswith(f'<record xmlns="{MARC_NS}">'.encode())
    assert b"fish &amp; chips &lt;i&gt;2" in rec.metadata["marc21"]
    server = live_server()
    formats = requests.get(server.url, params={"verb": "ListMetadataFormats"}, timeout=10).content
    assert b"<metadataPrefix>marc21</metadataPrefix>" in formats


def test_foreign_records_in_no_namespace_of_their_own_are_quarantined(engine, upstream_factory, live_server) -> None:  # noqa: ANN001, F811
    """Found by an outside audit: a record whose namespace declaration was forgotten (so in OAI-PMH's own) was
    stored and served as marc21, and every page serving it was invalid OAI-PMH. One in another namespace than
    the source declares for the prefix is kept, with a warning (sources do that: DSpace's qdc)."""
    from harvest_fixtures import MarcRepository
    from upstream.protocol import oai

    from oai.formats.dc import build_dc

    class Careless(MarcRepository):
        def _record(self, rec):  # noqa: ANN001, ANN202
            el = super()._record(rec)
            if getattr(self, "_prefix", "oai_dc") != "marc21" or rec.identifier[-2:] not in (":2", ":3", ":4"):
                return el
            metadata = el.find(oai("metadata"))
            metadata.clear()
            if rec.identifier.endswith(":2"):
                metadata.append(build_dc([("title", "not MARC", None)]))
            elif rec.identifier.endswith(":4"):  # its namespace in the warning: one line, bounded (an audit: 4 MB)
                etree.SubElement(metadata, "{urn:x:" + "y" * 5000 + "}record").text = "long namespace"
            else:
                etree.SubElement(etree.SubElement(metadata, oai("record")), oai("title")).text = "no namespace"
            return el

    up = upstream_factory(Careless(sample_records(6), page_size=4))
    add(engine, "marc", up.base_url, prefix="marc21")
    summary = harvest_source(engine, "marc", options())
    assert (summary.new, summary.quarantined) == (5, 1)
    reasons = {q.upstream_identifier: q.reason for q in list_quarantine(engine, "marc")}
    assert list(reasons) == ["oai:upstream.test:3"] and "the OAI-PMH namespace" in reasons["oai:upstream.test:3"]
    assert any(w.startswith("oai:upstream.test:2: the metadata's root element {http://www.openarchives.org/OAI/2.0/"
                            "oai_dc/}dc is not in http://www.loc.gov/MARC21/slim") for w in summary.warnings)
    long = [w for w in summary.warnings if w.startswith("oai:upstream.test:4: the metadata's root element {urn:x:y")]
    assert len(long) == 1 and len(long[0]) == 1000 and long[0].endswith("yyy...")
    assert all(len(w) <= 1000 and "\n" not in w for w in summary.warnings)
    assert len(run_row(engine, summary.run_id).warnings) < 5000
    body = requests.get(live_server().url, params={"verb": "ListRecords", "metadataPrefix": "marc21"},
                        timeout=10).content
    root = etree.fromstring(body)  # (MARC has no schema here for assert_oai to check it with)
    assert len(root.findall(".//oai:record", NS)) == 5 and not root.findall(".//oai:metadata/oai:*", NS)


# -- values longer than the store's columns (PostgreSQL enforces VARCHAR(n); SQLite does not) --

def one_record(identifier: str, datestamp: str, *sets: str) -> Record:
    return Record(identifier, datestamp, sets or ("journal:a",), fields={"title": f"Record & <b>{len(identifier)}</b>"})


@pytest.mark.parametrize("keep", [False, True])
def test_an_identifier_too_long_to_store_is_quarantined_and_the_run_goes_on(engine, up, keep) -> None:  # noqa: ANN001
    """Found by an operator audit: on PostgreSQL a record whose identifier is longer than the 512 characters the
    store keeps failed its page (its quarantine entry did not fit either); the page rolled back, and every run of
    the source died on the same page. Two such identifiers that begin alike keep an entry each."""
    first, second = "oai:upstream.test:" + "x" * 600 + "/1", "oai:upstream.test:" + "x" * 600 + "/2"
    up.repo.add(one_record(first, "2024-01-01T00:00:00Z"), one_record(second, "2024-01-01T00:00:01Z"))
    up.add_fault(faults.BrokenRecord(record=2, kind="stray-tag"), page=1, verb="ListRecords")  # unreadable too
    add(engine, "up", up.base_url, keep_identifiers=keep)
    summary = harvest_source(engine, "up", options())
    assert (summary.status, summary.new, summary.quarantined) == ("complete", 25, 2), summary
    [warning] = [w for w in summary.warnings if "longer than the 512" in w]
    assert "2 records of the page" in warning
    entries = list_quarantine(engine, "up")
    assert len({q.upstream_identifier for q in entries}) == 2
    for q in entries:
        assert len(q.upstream_identifier) <= 512 and q.upstream_identifier.startswith(first[:400])
    assert any("characters" in q.reason for q in entries)
    # the next run replaces the entries it made (one per record), and still completes
    again = harvest_source(engine, "up", options(full=True))
    assert (again.status, again.quarantined) == ("complete", 2)
    assert sorted(q.upstream_identifier for q in list_quarantine(engine, "up")) == sorted(
        q.upstream_identifier for q in entries)


def test_a_setspec_too_long_to_store_leaves_its_membership_out_with_a_warning(engine, up) -> None:  # noqa: ANN001
    """Found by an operator audit: on PostgreSQL a setSpec that does not fit the store's 512 characters (with the
    source's name before it) failed the page, every run. Its membership is left out, as an invalid one is."""
    fits_alone = "s" * 510  # "up:" + 510 characters is one too many
    up.repo.add(one_record("oai:upstream.test:long-set", "2024-01-01T00:00:00Z", "journal:a", fits_alone,
                            "t" * 600))
    add(engine, "up", up.base_url)
    summary = harvest_source(engine, "up", options())
    assert (summary.status, summary.new, summary.quarantined) == ("complete", 26, 0), summary
    assert stored(engine, "up")["oai:upstream.test:long-set"].sets == ("up:journal:a",)
    assert sum("membership left out" in w and "512" in w for w in summary.warnings) == 2, summary.warnings
    with transaction(engine) as s:
        assert max(len(spec) for spec in s.scalars(select(OAISet.spec))) <= 512


# -- a list that shifts while it is harvested --

def adding_at_the_front(*datestamps: str):  # noqa: ANN201
    """For faults.Mutate: each time it fires, a record dated before all others (by the next of `datestamps`)."""
    upcoming = iter(datestamps)

    def add_one(repo) -> None:  # noqa: ANN001
        stamp = next(upcoming)
        repo.add(one_record(f"oai:upstream.test:front-{stamp[:10]}", stamp))
    return add_one


class OnlyTheLastAgain(faults.Fault):
    """The list's last page holds only the record that ended the page before: how a server ends a list whose
    remaining records all left it while it was walked (ours does, as OAI-PMH asks an empty token on a page
    that cannot be empty)."""

    stage = "body"

    def __init__(self, identifier: str) -> None:
        self.identifier = identifier

    def apply(self, reply, ctx) -> bool:  # noqa: ANN001
        start, end = reply.body.find(b"<record"), reply.body.rfind(b"</record>") + len(b"</record>")
        again = etree.tostring(ctx.content._record(ctx.content._records[self.identifier]))
        reply.body = reply.body[:start] + again + reply.body[end:]
        return True


def test_a_list_ended_by_its_last_record_again_is_no_shift(engine, up) -> None:  # noqa: ANN001
    """A review found our harvester warn "list shifted ... --full" when our own server ended a list so."""
    add(engine, "up", up.base_url)
    up.add_fault(OnlyTheLastAgain("oai:upstream.test:20"), page=3, verb="ListRecords")
    summary = harvest_source(engine, "up", options())
    assert (summary.status, summary.seen, summary.new) == ("complete", 21, 20)
    assert not any(w.startswith("the source's list shifted") for w in summary.warnings), summary.warnings


def test_a_list_that_shifts_between_pages_is_reported_once_with_a_count(engine, upstream) -> None:  # noqa: ANN001, F811
    """Found by an operator audit: an upstream that pages by offset, whose list gained a record at its front
    between two pages, listed one record twice and never listed the new one, and the run said "30 of 30"
    without a word. Each record added at the front makes the record ending the page before come again."""
    upstream.repo.add(*sample_records(30))
    add(engine, "up", upstream.base_url)
    add_one = adding_at_the_front("2020-01-02T00:00:00Z", "2020-01-01T00:00:00Z")
    upstream.add_fault(faults.Mutate(add_one), page=2, verb="ListRecords")
    upstream.add_fault(faults.Mutate(add_one), page=3, verb="ListRecords")
    summary = harvest_source(engine, "up", options())
    assert summary.status == "complete" and summary.new == 30
    shifted = [w for w in summary.warnings if "shifted" in w]
    assert len(shifted) == 1, summary.warnings
    assert "2 identifiers" in shifted[0] and "skipped" in shifted[0] and "oai harvest up --full" in shifted[0]
    assert list_runs(engine, "up")[0].warnings[0] == shifted[0]  # what `oai harvest runs` shows first
    # the full harvest it asks for fetches what was skipped (and finds the list unchanged now)
    again = harvest_source(engine, "up", options(full=True))
    assert again.new == 2 and not any("shifted" in w for w in again.warnings)


def test_a_resumed_run_goes_on_counting_the_repeats(engine, upstream) -> None:  # noqa: ANN001, F811
    """The warning is restated as the count grows, still one line; a run resumed by another process goes on from
    the count its history holds (the identifiers it remembers are those of its own pages)."""
    upstream.repo.add(*sample_records(50))
    add(engine, "up", upstream.base_url)
    add_one = adding_at_the_front("2020-01-02T00:00:00Z", "2020-01-01T00:00:00Z")
    upstream.add_fault(faults.Mutate(add_one), page=2, verb="ListRecords")
    stop, progress = stop_after(2)
    first = harvest_source(engine, "up", options(), stop=stop, on_progress=progress)
    assert first.status == "interrupted"
    assert [w for w in first.warnings if "shifted" in w][0].startswith(
        "the source's list shifted while it was harvested: 1 identifier came again")
    upstream.add_fault(faults.Mutate(add_one), page=4, verb="ListRecords")  # not before: the first run may have asked
    second = harvest_source(engine, "up", options())
    assert (second.run_id, second.status) == (first.run_id, "complete")
    [shifted] = [w for w in second.warnings if "shifted" in w]
    assert shifted.startswith("the source's list shifted while it was harvested: 2 identifiers came again")


def test_listed_identifiers_count_repeats_across_pages_only() -> None:
    listed = ListedIdentifiers(slots=8)
    assert listed.again(["a", "b", "a"]) == []  # twice on one page is another warning's business
    pages = [[f"oai:x:{p}-{i}" for i in range(100)] for p in range(100)]
    assert sum(len(listed.again(page)) for page in pages) == 0 and len(listed) == 10_002
    assert listed.again(["b", "oai:x:7-7", "oai:x:99-99", "new"]) == ["b", "oai:x:7-7", "oai:x:99-99"]
    assert listed.nbytes == 8 * 16_384  # grown by doubling, never more than 3/4 full
    assert all(page[0] in listed and page[-1] in listed for page in pages) and "a" in listed
    assert "oai:x:100-0" not in listed and "" not in listed


@pytest.mark.parametrize("hint", [b"", b'xsi:schemaLocation="http://www.openarchives.org/OAI/2.0/oai_dc/ '
                                       b'https://mirror.example.org/oai_dc.xsd"'])
def test_a_record_whose_schema_hint_alone_differs_is_not_altered(engine, up, hint: bytes) -> None:  # noqa: ANN001
    """An outside audit: oai_dc sent without xsi:schemaLocation (or naming another copy of the schema), which we serve
    with oai_dc's, was said altered="true" for that alone; a hint says where a schema is, not what the record says."""
    ours = (b'xsi:schemaLocation="http://www.openarchives.org/OAI/2.0/oai_dc/ '
            b'http://www.openarchives.org/OAI/2.0/oai_dc.xsd"')
    up.add_fault(faults.Rewrite(ours, hint), verb="ListRecords", times=None)
    add(engine, "up", up.base_url)
    assert harvest_source(engine, "up", options()).new == 25
    first = stored(engine, "up")["oai:upstream.test:1"]
    assert ours in first.metadata["oai_dc"] and b'altered="false"' in first.about["oai_dc"]


@sqlite_only
def test_a_response_date_that_is_no_date_is_said_as_such(engine, up) -> None:  # noqa: ANN001
    """An outside audit: a responseDate of year 10000 was reported as "the source sent no responseDate"."""
    add(engine, "up", up.base_url)
    up.add_fault(faults.ResponseDate("10000-01-01T00:00:00Z"), verb="ListRecords", times=None)
    summary = harvest_source(engine, "up", options())
    assert summary.status == "complete" and summary.new == 25
    assert any("or one that is no date (year 10000, say); our own clock is used instead" in w
               for w in summary.warnings), summary.warnings
