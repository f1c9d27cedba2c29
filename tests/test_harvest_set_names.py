"""The names of harvested sets, as our own ListSets serves them, on SQLite and PostgreSQL (an outside operator audit).

A source's records are served in `{source}` and `{source}:{upstream set}`. The upstream's ListSets names its sets;
those names used to be read on full runs only, given to the sets a record names but not to their ancestors, and
never to a set that already existed, so a set kept the name it was first given (often its setSpec) for good.
"""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import delete, event

from harvest_fixtures import add, options
from harvester.runs import harvest_source
from oai.store.engine import transaction
from oai.store.models import OAISet
from oai.store.records import set_info
from oaischema import NS, assert_oai
from upstream import SyntheticRepository, faults, sample_records
from upstream.fixtures import upstream, upstream_factory  # noqa: F401  (fixtures)
from upstream.protocol import oai

NAMES = {"journal": "Journals", "journal:a": "Journal A", "journal:b": "Journal B"}


class SometimesUnnamed(SyntheticRepository):
    """Sends an empty setName for the sets it names "" (the element is required, a text is not)."""

    def _ListSets(self, args, base_url):  # noqa: ANN001, ANN202, N802
        el = super()._ListSets(args, base_url)
        for entry in el.iterfind(oai("set")):
            if self.set_names.get(entry.findtext(oai("setSpec"))) == "":
                entry.find(oai("setName")).text = None
        return el


@pytest.fixture
def up(upstream):  # noqa: ANN001, ANN201, F811
    upstream.repo.add(*sample_records(6))  # in journal:a and journal:b, so in journal too
    upstream.repo.set_names.update(NAMES)
    return upstream


def served_sets(live_server) -> dict[str, str]:  # noqa: ANN001
    """setSpec -> setName, as our own ListSets serves them (one page: the tests hold fewer than 100 sets)."""
    body = requests.get(live_server().url, params={"verb": "ListSets"}, timeout=10).content
    root = assert_oai(body)
    return {s.findtext("oai:setSpec", namespaces=NS): s.findtext("oai:setName", namespaces=NS)
            for s in root.iterfind("oai:ListSets/oai:set", NS)}


def books(n: int, start: str = "2030-01-01T00:00:00Z") -> list:
    """n records, newer than sample_records', alternating between two sets the source has not used yet."""
    records = sample_records(n, prefix="oai:upstream.test:book", start=start)
    for i, record in enumerate(records):
        record.sets = ("books:poetry" if i % 2 else "books:prose",)
    return records


def list_sets_asked(up) -> int:  # noqa: ANN001
    return sum(1 for q in up.requests if q.get("verb") == "ListSets")


def test_sets_new_in_an_incremental_run_get_the_upstream_names(engine, up, live_server) -> None:  # noqa: ANN001
    """An incremental run reads ListSets when a page brings a set the store does not have, once a run however
    many pages do, and not at all when nothing is new."""
    add(engine, "up", up.base_url)
    assert harvest_source(engine, "up", options()).status == "complete"
    up.repo.set_names.update({"books": "Books", "books:poetry": "Poetry", "books:prose": "Prose"})
    up.repo.add(*books(14))  # two pages, both with sets new to the store
    up.reset_log()
    summary = harvest_source(engine, "up", options())
    assert (summary.status, summary.full, summary.pages, summary.new) == ("complete", False, 2, 14)
    assert list_sets_asked(up) == 1
    served = served_sets(live_server)
    assert {spec: served[spec] for spec in ("up:books", "up:books:poetry", "up:books:prose")} == {
        "up:books": "Books", "up:books:poetry": "Poetry", "up:books:prose": "Prose"}
    up.repo.update("oai:upstream.test:book3", title="changed")  # in a set the store has now
    up.reset_log()
    again = harvest_source(engine, "up", options())
    assert (again.status, again.updated) == ("complete", 1)
    assert list_sets_asked(up) == 0


def test_a_source_that_cannot_list_its_sets_is_harvested_all_the_same(engine, up, live_server) -> None:  # noqa: ANN001
    add(engine, "up", up.base_url)
    harvest_source(engine, "up", options())
    up.repo.add(*books(2))
    up.add_fault(faults.InternalServerError(), verb="ListSets", times=None)
    summary = harvest_source(engine, "up", options())
    assert (summary.status, summary.new) == ("complete", 2)
    assert served_sets(live_server)["up:books:poetry"] == "up:books:poetry"
    said = [w for w in summary.warnings if w.startswith("set names not read")]
    assert len(said) == 1 and "HTTP 500" in said[0], summary.warnings
    # what ends it, also on a full run (an outside audit found a full run told to run --full)
    assert said[0].startswith("set names not read (the source's ListSets failed: ")
    assert said[0].endswith("until a later run reads them (a full one, or one that brings a set the store does "
                            "not have)")


def test_ancestors_and_the_sources_own_set_are_named_too(engine, up, live_server) -> None:  # noqa: ANN001
    """`up:journal` comes in as the ancestor of `up:journal:a`; the upstream names it. The source's own set, made
    again by a run (a store that lost it), is named after the repository, as `source add` names it."""
    add(engine, "up", up.base_url)
    with transaction(engine) as s:
        s.execute(delete(OAISet).where(OAISet.spec == "up"))
    harvest_source(engine, "up", options())
    served = served_sets(live_server)
    assert served["up"] == "Synthetic Upstream"
    assert {spec: served[spec] for spec in ("up:journal", "up:journal:a", "up:journal:b")} == {
        "up:journal": "Journals", "up:journal:a": "Journal A", "up:journal:b": "Journal B"}


def test_an_incremental_run_names_the_ancestors_of_a_new_set(engine, up, live_server) -> None:  # noqa: ANN001
    add(engine, "up", up.base_url)
    harvest_source(engine, "up", options())
    up.repo.set_names.update({"books": "Books", "books:poetry": "Poetry"})
    up.repo.add(*books(2))
    harvest_source(engine, "up", options())
    assert served_sets(live_server)["up:books"] == "Books"


def test_a_full_run_brings_the_names_of_the_sources_sets_up_to_date(engine, upstream, upstream_factory,  # noqa: ANN001, F811
                                                                      live_server) -> None:
    """Renamed upstream sets are renamed here by the next full run; a set the upstream gives no name keeps its
    own, and the sets of other sources and local sets are left alone, whatever their specs."""
    repo = upstream.serve(SometimesUnnamed(sample_records(6), sets=dict(NAMES)))
    other = upstream_factory(SyntheticRepository(sample_records(2), sets={"journal:a": "Other A"}))
    add(engine, "up", upstream.base_url)
    add(engine, "other", other.base_url)
    harvest_source(engine, "up", options())
    harvest_source(engine, "other", options())
    with transaction(engine) as s:
        set_info(s, "journal:a", "Local A")
    repo.set_names.update({"journal": "All journals", "journal:a": "Journal A, renamed", "journal:b": ""})
    summary = harvest_source(engine, "up", options(full=True))
    assert summary.status == "complete" and not summary.warnings
    served = served_sets(live_server)
    assert {spec: served[spec] for spec in ("up", "up:journal", "up:journal:a", "up:journal:b")} == {
        "up": "Synthetic Upstream", "up:journal": "All journals", "up:journal:a": "Journal A, renamed",
        "up:journal:b": "Journal B"}
    assert served["other:journal:a"] == "Other A" and served["journal:a"] == "Local A"


def test_a_page_that_brings_no_new_set_costs_no_set_query_beyond_its_write(engine, up) -> None:  # noqa: ANN001
    """The write path of a page runs ensure_sets (one lookup of the page's sets); knowing which sets are new takes
    one query a run, not one a page."""
    add(engine, "up", up.base_url)
    harvest_source(engine, "up", options())
    for i in range(1, 7):
        up.repo.update(f"oai:upstream.test:{i}", title=f"changed {i}")
    up.repo.page_size = 2
    asked: list[str] = []

    def count(conn, cursor, statement, *args) -> None:  # noqa: ANN001, ANN002
        if "oai_set" in statement:
            asked.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        summary = harvest_source(engine, "up", options())
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert (summary.pages, summary.updated) == (3, 6)
    assert len(asked) <= summary.pages + 1, asked


class Described(SyntheticRepository):
    """Gives its sets a setDescription: Dublin Core for those in `descriptions`, another kind for "other"."""

    descriptions: dict[str, str] = {}

    def _ListSets(self, args, base_url):  # noqa: ANN001, ANN202, N802
        from lxml import etree

        el = super()._ListSets(args, base_url)
        for entry in el.iterfind(oai("set")):
            spec = entry.findtext(oai("setSpec"))
            text = self.descriptions.get(spec)
            if text is None:
                continue
            holder = etree.SubElement(entry, oai("setDescription"))
            if spec.startswith("journal:"):  # a kind of description we do not take; journal:a's DC follows it
                etree.SubElement(holder, "{http://example.org/branding}logo").text = text
                if spec == "journal:b":
                    continue
                holder = etree.SubElement(entry, oai("setDescription"))
            dc_el = etree.SubElement(holder, "{http://www.openarchives.org/OAI/2.0/oai_dc/}dc", nsmap={
                "oai_dc": "http://www.openarchives.org/OAI/2.0/oai_dc/", "dc": "http://purl.org/dc/elements/1.1/"})
            etree.SubElement(dc_el, "{http://purl.org/dc/elements/1.1/}description").text = text
        return el


def served_descriptions(live_server) -> dict[str, list[str]]:  # noqa: ANN001
    body = requests.get(live_server().url, params={"verb": "ListSets"}, timeout=10).content
    root = assert_oai(body)
    return {s.findtext("oai:setSpec", namespaces=NS): [d.text for d in s.iter("{http://purl.org/dc/elements/1.1/}description")]
            for s in root.iterfind("oai:ListSets/oai:set", NS)}


def test_the_upstreams_set_descriptions_are_served_with_its_sets(engine, upstream_factory, live_server) -> None:  # noqa: ANN001, F811
    """An outside audit: the upstream's setDescription (Dublin Core, as the protocol's examples give it) was
    dropped; it is the only place a set says what it holds. A full run brings a changed one, as it does names."""
    repo = Described(sample_records(6))
    repo.set_names.update(NAMES)
    repo.descriptions = {"journal:a": "Papers of journal A", "journal:b": "<b>brand</b>"}
    up = upstream_factory(repo)
    add(engine, "up", up.base_url)
    assert harvest_source(engine, "up", options()).status == "complete"
    served = served_descriptions(live_server)
    assert served["up:journal:a"] == ["Papers of journal A"]
    assert served["up:journal:b"] == [] and served["up:journal"] == []  # another kind; none given
    repo.descriptions = {"journal:a": "Papers of journal A, since 2020"}
    assert harvest_source(engine, "up", options(full=True)).status == "complete"
    assert served_descriptions(live_server)["up:journal:a"] == ["Papers of journal A, since 2020"]
