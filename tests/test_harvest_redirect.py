"""A source that redirects to another host, on SQLite and PostgreSQL (an outside operator audit): the run's history
says so, once a run, with what to do; the provenance of the records names where they came from when the source has
moved for good (301), and keeps the source's base URL when the redirect is temporary (302, which OAI-PMH offers a
repository for spreading its load over servers)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests

from harvest_fixtures import add, options
from harvester.history import list_runs
from harvester.runs import harvest_source
from oaischema import assert_oai
from upstream import faults, sample_records
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
        assert "update its base URL if it has moved" in said[0]
        assert "`oai source remove up --records keep`" in said[0] and f"`oai source add up {moved}`" in said[0]
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
