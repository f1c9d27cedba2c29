"""A source that redirects to another host, on SQLite and PostgreSQL (an outside operator audit): the run's history
says so, once a run, with what to do; the provenance of the records names where they came from when the source has
moved for good (301), and keeps the source's base URL when the redirect is temporary (302, which OAI-PMH offers a
repository for spreading its load over servers)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import update

from harvest_fixtures import add, dc_values, options, policy, stored
from harvester.dates import utcnow
from harvester.errors import SourceError
from harvester.history import list_runs
from harvester.leases import take
from harvester.runs import harvest_source
from harvester.sources import add_source, move_source
from oai.store.engine import transaction
from oai.store.models import HarvestCheckpoint, OAISet, Source
from oaischema import assert_oai
from upstream import SyntheticRepository, faults, sample_records
from upstream.fixtures import upstream, upstream_factory  # noqa: F401  (fixtures)

PROVENANCE = "{http://www.openarchives.org/OAI/2.0/provenance}"


def elsewhere(upstream_factory) -> str:  # noqa: ANN001, F811
    """The base URL of another upstream serving the records, under another host name (localhost, not 127.0.0.1)."""
    other = upstream_factory()
    other.repo.add(*sample_records(25))
    return other.base_url.replace("127.0.0.1", "localhost")


def provenance_base_urls(live_server) -> set[str]:  # noqa: ANN001
    body = requests.get(live_server().url, params={"verb": "ListRecords", "metadataPrefix": "oai_dc"},
                        timeout=10).content
    return {e.text for e in assert_oai(body).iter(f"{PROVENANCE}baseURL")}


@pytest.mark.parametrize("status", [302, 301])
def test_a_redirect_to_another_host_is_said_once_a_run(engine, upstream, upstream_factory, live_server,  # noqa: ANN001, F811
                                                        status: int) -> None:
    add(engine, "up", upstream.base_url)
    moved = elsewhere(upstream_factory)
    upstream.add_fault(faults.Redirect(to=moved, status=status), times=None)
    summary = harvest_source(engine, "up", options())
    assert (summary.status, summary.pages, summary.new) == ("complete", 3, 25)
    said = [w for w in summary.warnings if "redirects to another host" in w]
    assert len(said) == 1, summary.warnings
    assert f"another host, {urlsplit(moved).netloc} (HTTP {status})" in said[0]
    assert f"its records came from {moved}" in said[0]
    if status == 301:
        assert f"if it has moved: `oai source edit up --base-url {moved}`" in said[0]
    else:  # OAI-PMH's load balancing: the source has not moved
        assert "temporary" in said[0] and "nothing to do unless every run says so" in said[0]
        assert "remove" not in said[0]
    assert list_runs(engine, "up")[0].warnings == summary.warnings  # what `oai harvest runs --warnings` shows
    # each page was asked at the source's base URL first and followed there: said once all the same
    assert sum(1 for q in upstream.requests if q.get("verb") == "ListRecords") == 3
    # the provenance guidelines: baseURL is the repository's the record was harvested from; a repository that
    # moved for good is at the new URL, one that sends a request elsewhere for now is still at its own
    assert provenance_base_urls(live_server) == {moved if status == 301 else upstream.base_url}
    again = harvest_source(engine, "up", options())  # each run says it, once
    assert again.status == "complete" and sum("redirects to another host" in w for w in again.warnings) == 1


def test_without_a_redirect_provenance_names_the_sources_base_url(engine, upstream, live_server) -> None:  # noqa: ANN001, F811
    upstream.repo.add(*sample_records(3))
    add(engine, "up", upstream.base_url)
    summary = harvest_source(engine, "up", options())
    assert summary.status == "complete" and not summary.warnings
    assert provenance_base_urls(live_server) == {upstream.base_url}


def test_a_source_that_moved_is_harvested_at_its_new_base_url(engine, upstream, upstream_factory,  # noqa: ANN001, F811
                                                               live_server) -> None:
    """What the permanent redirect's warning advises (`oai source edit NAME --base-url URL`) works, also with a run
    left unfinished: its resumptionToken was issued by the old URL, so its list is asked again at the new one."""
    upstream.repo.add(*sample_records(25))
    add(engine, "up", upstream.base_url)
    upstream.add_fault(faults.InternalServerError(), page=2, verb="ListRecords", times=None)
    failed = harvest_source(engine, "up", options())
    assert (failed.status, failed.new) == ("failed", 10)
    moved = upstream_factory(SyntheticRepository(sample_records(25), repository_name="Moved Upstream")).base_url
    with transaction(engine) as s:
        source_id = s.query(Source.id).filter_by(name="up").scalar()
        assert s.get(HarvestCheckpoint, source_id).resumption_token is not None

    with pytest.raises(SourceError, match="is not an http"):
        move_source(engine, "up", "ftp://example.org/oai", policy=policy())
    with pytest.raises(SourceError, match="is not an OAI-PMH endpoint we can use"):
        move_source(engine, "up", "http://127.0.0.1:9/oai", policy=policy())  # the discard port: refused
    take(engine, source_id, "another-host:1:abc")
    with pytest.raises(SourceError, match="is being harvested by another-host:1:abc"):
        move_source(engine, "up", moved, policy=policy())
    with transaction(engine) as s:
        s.get(Source, source_id).lease_owner = None
        assert s.get(Source, source_id).base_url == upstream.base_url  # nothing changed by the refusals

    view, warnings = move_source(engine, "up", moved, policy=policy())
    assert (view.base_url, view.repository_name) == (moved, "Moved Upstream")
    with transaction(engine) as s:
        assert s.query(OAISet.name).filter_by(spec="up").scalar() == "Moved Upstream"  # the source's own set
    assert any("the unfinished run #1 lists again from the beginning at the new base URL" in w for w in warnings)
    old_requests = len(upstream.requests)
    summary = harvest_source(engine, "up", options())
    # the run goes on (its counts too): the first 10 come again, from where they are now (their provenance)
    assert (summary.run_id, summary.status, summary.seen, summary.new, summary.updated) == (1, "complete", 25, 25, 10)
    assert len(upstream.requests) == old_requests  # the old URL is asked nothing more
    assert not any("redirects" in w for w in summary.warnings)
    assert any(f"the source moved to {moved}" in w for w in list_runs(engine, "up")[0].warnings)
    assert len(stored(engine, "up")) == 25
    assert provenance_base_urls(live_server) == {moved}


def test_moving_a_source_takes_the_lease_a_stalled_harvest_let_lapse(engine, upstream, upstream_factory,  # noqa: ANN001, F811
                                                                     live_server) -> None:
    """A harvest that stalled past its lease (a frozen process, a long GC pause) must not go on after the source
    has moved: it would write the old URL's resumptionToken into the cleared checkpoint (a review found it did).
    The move takes the lease, so the stalled run's next page write finds it gone and stops."""
    upstream.repo.add(*sample_records(25))
    add(engine, "up", upstream.base_url)
    moved = upstream_factory(SyntheticRepository(sample_records(25), repository_name="Moved Upstream")).base_url

    def stall_then_move(progress) -> None:  # noqa: ANN001
        if progress.pages == 1:
            with transaction(engine) as s:  # the stalled run's lease lapses: the move is allowed
                s.execute(update(Source).values(lease_expires=utcnow() - timedelta(seconds=1)))
            move_source(engine, "up", moved, policy=policy())

    stalled = harvest_source(engine, "up", options(), on_progress=stall_then_move)
    assert (stalled.status, stalled.pages, stalled.new) == ("interrupted", 1, 10)
    assert "lease" in stalled.error
    with transaction(engine) as s:
        source = s.query(Source).filter_by(name="up").one()
        assert (source.base_url, source.lease_owner) == (moved, None)
        assert s.get(HarvestCheckpoint, source.id).resumption_token is None  # not the old URL's token again
    old_requests = len(upstream.requests)
    summary = harvest_source(engine, "up", options())
    assert (summary.run_id, summary.status, summary.seen) == (stalled.run_id, "complete", 25)
    assert len(upstream.requests) == old_requests
    assert provenance_base_urls(live_server) == {moved}


def test_a_move_to_an_endpoint_that_keeps_no_deletions_says_how_to_notice_them(engine, upstream,  # noqa: ANN001
                                                                               upstream_factory) -> None:  # noqa: ANN001, F811
    """As `source add` does (a review found `source edit --base-url` silent): deletions there would go unnoticed."""
    upstream.repo.add(*sample_records(3))
    _, warnings = add_source(engine, "up", upstream.base_url, policy=policy())
    assert not any("deletions" in w for w in warnings)  # the upstream keeps them (persistent)
    keeps_none = upstream_factory(SyntheticRepository(sample_records(3), deleted_record="no")).base_url
    _, warnings = add_source(engine, "other", keeps_none, policy=policy())
    assert [w for w in warnings if "deletions" in w] == [
        "the source keeps no records of deletions: add it with --detect-deletions to notice them"]
    for kept, said in (("no", "keeps no records"), ("transient", "keeps only transient records")):
        moved = upstream_factory(SyntheticRepository(sample_records(3), deleted_record=kept)).base_url
        _, warnings = move_source(engine, "up", moved, policy=policy())
        assert [w for w in warnings if "deletions" in w] == [
            f"the source {said} of deletions: `oai source edit up --detect-deletions` to notice them"]
    elsewhere = upstream_factory(SyntheticRepository(sample_records(3), deleted_record="no")).base_url
    view, warnings = move_source(engine, "up", elsewhere, policy=policy(), detect_deletions=True)
    assert view.deleted_record == "no" and not any("deletions" in w for w in warnings)


def test_an_encoding_http_corrects_is_said_on_the_run_once(engine, upstream) -> None:  # noqa: ANN001, F811
    """The run's history says that HTTP's charset was taken over the documents' declarations (an outside audit:
    mojibake stored unsaid), once however many pages said it; the records are stored right."""
    upstream.repo.add(*sample_records(25))
    add(engine, "up", upstream.base_url)
    upstream.add_fault(faults.DeclarationDisagrees("ISO-8859-1", "utf-8", "UTF-8"), verb="ListRecords", times=None)
    summary = harvest_source(engine, "up", options())
    assert (summary.status, summary.pages, summary.new) == ("complete", 3, 25)
    said = [w for w in summary.warnings if "declare the encoding iso-8859-1 but are UTF-8" in w]
    assert len(said) == 1, summary.warnings
    creators = [dc_values(r.metadata["oai_dc"], "creator") for r in stored(engine).values()]
    assert all(names[0] == "Müller, Zoë" for names in creators if names)
