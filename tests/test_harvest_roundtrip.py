"""Our harvester harvests our own server; the two stores are compared record by record.

Both directions across engines: a SQLite-file store served to a store on each engine, and a store on
each engine served (live_server) to a SQLite file store. Then a second hop nests the provenance.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import requests
from lxml import etree
from sqlalchemy import select

from conftest import DATA, LiveServer
from harvest_fixtures import REPO_ID, add, options, stored
from harvester import provenance
from harvester.ingest import local_identifier
from harvester.runs import harvest_source
from oai.formats.dc import build_dc
from oai.formats.safexml import canonical_bytes
from oai.store.engine import make_engine, transaction
from oai.store.records import RecordIn, delete_record, upsert_records
from oaischema import NS, assert_oai

PROV = "{http://www.openarchives.org/OAI/2.0/provenance}"
N = 37


def dc(i: int) -> bytes:
    return canonical_bytes(build_dc([("title", f"Data & code <{i}> > none", None),
                                     ("creator", "Müller, Zoë", None), ("date", "2024-05-01", None),
                                     ("identifier", f"https://doi.org/10.5555/rt.{i}", None)]))


def fill(engine) -> None:  # noqa: ANN001
    """N oai_dc records in nested sets, two of them deleted afterwards."""
    items = [RecordIn(f"oai:source.example:{i}", {"oai_dc": dc(i)},
                      sets=("physics:hep",) if i % 3 == 0 else ("physics", "maths") if i % 3 == 1 else ())
             for i in range(1, N + 1)]
    with transaction(engine) as s:
        upsert_records(s, items)
        delete_record(s, "oai:source.example:5")
        delete_record(s, "oai:source.example:6")


def served(url: str, prefix: str = "oai_dc") -> list[etree._Element]:
    """Every record of a ListRecords, each response validated against the OAI-PMH schemas."""
    records, params = [], {"verb": "ListRecords", "metadataPrefix": prefix}
    for _ in range(100):
        root = assert_oai(requests.get(url, params=params, timeout=10).content)
        records += root.findall(".//oai:record", NS)
        token = root.find(".//oai:resumptionToken", NS)
        if token is None or not (token.text or "").strip():
            return records
        params = {"verb": "ListRecords", "resumptionToken": token.text}
    raise AssertionError("the list did not end")


def list_size(url: str, set_spec: str) -> int:
    """How many headers a set's ListIdentifiers holds (completeListSize when the list is paged)."""
    params = {"verb": "ListIdentifiers", "metadataPrefix": "oai_dc", "set": set_spec}
    root = assert_oai(requests.get(url, params=params, timeout=10).content)
    token = root.find(".//oai:resumptionToken", NS)
    if token is not None:
        return int(token.get("completeListSize"))
    return len(root.findall(".//oai:header", NS))


def compare(upstream_engine, target_engine, source: str, base_url: str) -> None:  # noqa: ANN001
    """Every upstream record is held once, same bytes, same deletion, sets below the source's (and in it)."""
    ups, ours = stored(upstream_engine), stored(target_engine, source)
    assert sorted(ours) == sorted(r.identifier for r in ups.values())
    for rec in ups.values():
        got = ours[rec.identifier]
        assert got.identifier == local_identifier(REPO_ID, source, rec.identifier)
        assert got.deleted == rec.deleted
        assert got.metadata == rec.metadata  # canonical bytes, byte for byte (None for tombstones)
        # below the source's set; the header names only what no other of its sets implies (2.6)
        assert got.sets == (tuple(f"{source}:{s}" for s in rec.sets) or (source,))
        assert got.upstream_datestamp == f"{rec.datestamp:%Y-%m-%dT%H:%M:%SZ}"
        if rec.deleted:
            assert got.about == {"oai_dc": None}
            continue
        about = got.about["oai_dc"]
        assert provenance.validate(about) is None
        desc = etree.fromstring(about).find(f"{PROV}originDescription")
        assert desc.get("altered") == "false"
        assert [desc.findtext(f"{PROV}{t}") for t in ("baseURL", "identifier", "datestamp")] == [
            base_url, rec.identifier, got.upstream_datestamp]


@pytest.fixture(scope="module")
def sqlite_upstream(tmp_path_factory, _sqlite_template):  # noqa: ANN001, ANN201
    """Our server on a SQLite file store holding N records (page size 10)."""
    path = tmp_path_factory.mktemp("upstream") / "upstream.sqlite3"
    shutil.copy(_sqlite_template, path)
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    fill(engine)
    server = LiveServer(_app(url))
    yield server, engine
    server.close()
    engine.dispose()


def _app(url: str):  # noqa: ANN202
    from oai.web.app import create_app

    return create_app({"database_url": url, "page_size": 10, "repository_identifier": "source.example"})


def test_our_endpoint_into_a_store_on_each_engine(engine, sqlite_upstream, live_server) -> None:  # noqa: ANN001
    server, upstream_engine = sqlite_upstream
    add(engine, "ours", server.url)
    summary = harvest_source(engine, "ours", options())
    assert (summary.status, summary.seen, summary.new, summary.deleted) == ("complete", N, N - 2, 2)
    assert summary.complete_list_size == N and not summary.warnings
    compare(upstream_engine, engine, "ours", server.url)
    again = harvest_source(engine, "ours", options(full=True))
    assert (again.new, again.updated, again.unchanged) == (0, 0, N)
    # what we serve of them is valid OAI-PMH, and a set below the source's filters as upstream's did
    target = live_server()
    records = served(target.url)
    assert len(records) == N
    assert list_size(target.url, "ours:physics") == list_size(server.url, "physics") > 0
    assert list_size(target.url, "ours") == N  # the source's set holds every record its headers no longer name
    specs = [[s.text for s in r.iterfind("oai:header/oai:setSpec", NS)] for r in records]
    assert ["ours:physics:hep"] in specs and ["ours:physics", "ours:maths"] in specs and ["ours"] in specs


def test_our_endpoint_on_each_engine_into_a_sqlite_store(engine, live_server, tmp_path, _sqlite_template) -> None:  # noqa: ANN001
    fill(engine)
    server = live_server(page_size=10)
    shutil.copy(_sqlite_template, tmp_path / "target.sqlite3")
    target = make_engine(f"sqlite:///{tmp_path / 'target.sqlite3'}")
    try:
        add(target, "ours", server.url)
        assert harvest_source(target, "ours", options()).status == "complete"
        compare(engine, target, "ours", server.url)
    finally:
        target.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_second_hop_nests_the_upstream_provenance(engine, sqlite_upstream, tmp_path, _sqlite_template) -> None:  # noqa: ANN001
    server, _ = sqlite_upstream
    add(engine, "ours", server.url)
    harvest_source(engine, "ours", options())
    middle = LiveServer(_app(engine.url.render_as_string(hide_password=False)))
    shutil.copy(_sqlite_template, tmp_path / "far.sqlite3")
    far = make_engine(f"sqlite:///{tmp_path / 'far.sqlite3'}")
    try:
        add(far, "agg", middle.url)
        assert harvest_source(far, "agg", options()).new == N - 2
        rec = stored(far, "agg")[local_identifier(REPO_ID, "ours", "oai:source.example:7")]
        about = rec.about["oai_dc"]
        assert provenance.validate(about) is None
        outer = etree.fromstring(about).find(f"{PROV}originDescription")
        inner = outer.find(f"{PROV}originDescription")
        assert outer.findtext(f"{PROV}baseURL") == middle.url
        assert inner.findtext(f"{PROV}baseURL") == server.url
        assert inner.findtext(f"{PROV}identifier") == "oai:source.example:7"
        assert outer.get("altered") == "false"
    finally:
        middle.close()
        far.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_harvested_jats_keeps_jats_and_yields_dublin_core(engine, tmp_path, _sqlite_template) -> None:  # noqa: ANN001
    from oai.loader import load

    jats_dir = Path(DATA) / "jats"
    if not jats_dir.is_dir():
        pytest.skip("no JATS samples in tests/data/jats")
    shutil.copy(_sqlite_template, tmp_path / "jats.sqlite3")
    url = f"sqlite:///{tmp_path / 'jats.sqlite3'}"
    source_engine = make_engine(url)
    summary = load(source_engine, [str(jats_dir / "plos"), str(jats_dir / "elife")],
                   repository_identifier="source.example", workers=1)
    assert summary.new >= 5
    server = LiveServer(_app(url))
    try:
        add(engine, "journals", server.url, prefix="jats")
        run = harvest_source(engine, "journals", options())
        assert run.status == "complete" and run.quarantined == 0
        ups = stored(source_engine)
        ours = stored(engine, "journals")
        with_jats = [r for r in ups.values() if r.metadata.get("jats")]
        assert with_jats and len(ours) == len(with_jats)
        for rec in with_jats:
            got = ours[rec.identifier]
            assert got.metadata["jats"] == rec.metadata["jats"]  # served JATS is ingested unchanged
            assert got.metadata["oai_dc"] == rec.metadata["oai_dc"]  # the same crosswalk both sides
            dc_desc = etree.fromstring(got.about["oai_dc"]).find(f"{PROV}originDescription")
            jats_desc = etree.fromstring(got.about["jats"]).find(f"{PROV}originDescription")
            assert dc_desc.get("altered") == "true" and jats_desc.get("altered") == "false"
            assert jats_desc.findtext(f"{PROV}metadataNamespace") == "https://jats.nlm.nih.gov/ns/publishing/1.4/"
    finally:
        server.close()
        source_engine.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_two_aggregators_harvesting_each_other_stop_at_one_copy(engine, sqlite_upstream, tmp_path,
                                                               _sqlite_template) -> None:  # noqa: ANN001
    """An outside audit: B harvests the source, C harvests B, and B then harvests C. Each round brought B's own
    records back under a longer name (115 more a round, identifiers of 40, 63, 86 ... characters). A record of
    any of our sources that comes back through another repository is quarantined as a cycle."""
    from harvester.history import list_quarantine

    server, _ = sqlite_upstream
    add(engine, "ours", server.url)  # B (REPO_ID) harvests the source
    assert harvest_source(engine, "ours", options()).new == N - 2
    with transaction(engine) as s:  # and holds records of its own (a review found those stored again too)
        upsert_records(s, [RecordIn(f"oai:{REPO_ID}:local-{i}", {"oai_dc": dc(i)}) for i in range(3)])
    b = LiveServer(_app(engine.url.render_as_string(hide_password=False)))
    shutil.copy(_sqlite_template, tmp_path / "c.sqlite3")
    c_engine = make_engine(f"sqlite:///{tmp_path / 'c.sqlite3'}")
    try:
        add(c_engine, "b", b.url)  # C harvests B
        assert harvest_source(c_engine, "b", options(repository_identifier="c.example.org")).new == N - 2 + 3
        c = LiveServer(_app(f"sqlite:///{tmp_path / 'c.sqlite3'}"))
        try:
            add(engine, "c", c.url)  # and B harvests C
            for _ in range(2):
                back = harvest_source(engine, "c", options(full=True))
                assert (back.status, back.new, back.quarantined) == ("complete", 0, N + 3)  # tombstones too
            assert len(stored(engine)) == N + 3  # the source's, tombstones included, and our own, once
            reasons = sorted({q.reason for q in list_quarantine(engine, "c")})
            assert len(reasons) == 4, reasons
            assert reasons[-1] == (f"it is our own record (named oai:{REPO_ID}:ours:...), come back through the source: "
                                  "the source harvests this repository, directly or not, and serving it again would "
                                  "start a cycle")
            assert reasons[:-1] == [f"it is named as our own record oai:{REPO_ID}:local-{i}: the source harvests this "
                                   "repository, directly or not, and serving it again would start a cycle; or the "
                                   f"source names its records in our repository identifier ({REPO_ID}), which only "
                                   "this repository should" for i in range(3)]
        finally:
            c.close()
    finally:
        b.close()
        c_engine.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_oai_dc_source_beside_a_jats_source_of_one_repository_is_warned_of(engine, sqlite_upstream) -> None:  # noqa: ANN001
    """An outside audit: a jats source yields oai_dc too, so an oai_dc source of the same repository beside it served
    every article twice in oai_dc, under two names, and `source add` said nothing (it compared one format only)."""
    from harvester.sources import add_source
    from harvest_fixtures import policy

    server, _ = sqlite_upstream
    add(engine, "j", server.url, prefix="jats", set_spec="physics")

    def said(name: str, set_spec: str | None) -> list[str]:
        _view, warnings = add_source(engine, name, server.url, set_spec=set_spec, policy=policy())
        return [w for w in warnings if "served twice in oai_dc" in w]

    assert said("below", "physics:hep") == [
        f"the source 'j' harvests {server.url} in jats, set 'physics'; jats yields oai_dc too, so each record the "
        "repository has in both formats is served twice in oai_dc, under each source's name: take with the oai_dc "
        "source only a set of the records that have no jats"]
    assert said("apart", "maths") == []  # no record in both
    assert len(said("all", None)) == 1
    # (an outside audit) their own sets are told apart in ListSets by the format and set each takes
    from oai.store.models import OAISet

    with transaction(engine) as s:
        names = {o.spec: o.name for o in s.scalars(select(OAISet).where(OAISet.spec.in_(["j", "below", "all"])))}
    repository = names["all"]
    assert names == {"all": repository, "j": f"{repository} (jats, set physics)",
                     "below": f"{repository} (set physics:hep)"}
    for name in ("j", "below"):  # a full run brings set names up to date: to the same names
        assert harvest_source(engine, name, options()).status == "complete"
    with transaction(engine) as s:
        assert {o.spec: o.name for o in s.scalars(select(OAISet).where(OAISet.spec.in_(names)))} == names
