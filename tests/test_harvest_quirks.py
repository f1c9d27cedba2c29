"""Each quirk in tests/data/quirks (see its README), read or harvested the way the harvester handles it."""

from __future__ import annotations

from datetime import datetime

import pytest
import requests
from lxml import etree

from conftest import DATA
from harvest_fixtures import add, options, policy, sqlite_only, stored
from harvester import provenance
from harvester.client import HarvestClient, HostPacer
from harvester.errors import PageError, UpstreamOAIError
from harvester.ingest import Ingestor
from harvester.parse import identity, read_page
from harvester.runs import harvest_source
from harvester.sources import SourceView
from oaischema import NS, assert_oai
from upstream import Upstream, faults
from upstream.fixtures import upstream  # noqa: F401  (fixture)

QUIRKS = DATA / "quirks"
PROV = "{http://www.openarchives.org/OAI/2.0/provenance}"


class Canned(faults.Fault):
    """Answer with a fixture's bytes and a given HTTP status."""

    def __init__(self, body: bytes, status: int) -> None:
        self.body, self.status = body, status

    def apply(self, reply, ctx) -> bool:  # noqa: ANN001
        reply.status, reply.body, reply.headers = self.status, self.body, {"Content-Type": "text/xml"}
        return True


def quirk(name: str) -> bytes:
    return (QUIRKS / name).read_bytes()


def test_every_quirk_fixture_has_a_note() -> None:
    notes = (QUIRKS / "README.md").read_text(encoding="utf-8")
    files = sorted(p.name for p in QUIRKS.iterdir() if p.name != "README.md")
    assert files and [f for f in files if f"`{f}`" not in notes] == []


def test_zenodo_errors_with_http_422_are_read_as_oai_errors(upstream) -> None:  # noqa: ANN001, F811
    body = quirk("zenodo_badResumptionToken_HTTP422.xml")
    assert read_page(body, "ListRecords").errors == (
        ("badResumptionToken", "The value of the resumptionToken argument is invalid or expired."),)
    upstream.add_fault(Canned(body, 422), verb="ListRecords")
    client = HarvestClient(upstream.base_url, policy(), pacer=HostPacer())
    with pytest.raises(UpstreamOAIError) as info:
        client.fetch("ListRecords", resumptionToken="x")
    assert info.value.code == "badResumptionToken" and info.value.status == 422
    assert [e.status for e in upstream.log] == [422]  # read, not retried


def test_tethys_counts_pages_in_completelistsize() -> None:
    page = read_page(quirk("tethys_completeListSize-counts-pages.xml"), "ListRecords")
    assert len(page.records) == 3 and (page.token.complete_list_size, page.token.cursor) == (3, 1)


@sqlite_only
def test_tethys_harvest_completes_with_a_warning_about_the_count(engine) -> None:  # noqa: ANN001
    with Upstream.replay("tethys") as up:
        add(engine, "tethys", up.base_url)
        summary = harvest_source(engine, "tethys", options())
    assert summary.status == "complete" and summary.new == 9
    assert any("completeListSize=3 but sent 9" in w for w in summary.warnings)


def test_dspace_deleted_header_despite_deletedrecord_no() -> None:
    assert identity(read_page(quirk("dspace-eur_Identify_deletedRecord-no.xml"), "Identify")).deleted_record == "no"
    page = read_page(quirk("dspace-eur_GetRecord_deleted-despite-no.xml"), "GetRecord")
    [rec] = page.records
    assert rec.header.deleted and rec.header.set_specs == ("1:1", "1:1") and rec.metadata is None


@sqlite_only
def test_dspace_harvest_makes_tombstones_although_identify_says_no(engine) -> None:  # noqa: ANN001
    with Upstream.replay("dspace-eur") as up:
        add(engine, "eur", up.base_url)
        summary = harvest_source(engine, "eur", options())
    assert summary.status == "complete" and summary.deleted == 2 and summary.seen == 81
    tombstones = [r for r in stored(engine, "eur").values() if r.deleted]
    assert len(tombstones) == 2 and all(len(set(r.sets)) == len(r.sets) for r in tombstones)


@sqlite_only
def test_dspace_languages_written_as_java_locales_are_taken_as_bcp47(engine, upstream) -> None:  # noqa: ANN001, F811
    """An outside audit saw every record of a DSpace harvest with xml:lang="en_US" quarantined."""
    upstream.add_fault(Canned(quirk("dspace_xml-lang-underscore.xml"), 200), verb="ListRecords", times=None)
    add(engine, "dspace", upstream.base_url)
    summary = harvest_source(engine, "dspace", options())
    assert (summary.status, summary.new, summary.quarantined) == ("complete", 2, 1)
    # one warning a page for each value, naming it (an outside audit: the warning named en_US whatever it was)
    assert sorted(w for w in summary.warnings if "xml:lang" in w) == [
        "oai:repository.example.edu:123456789/101: xml:lang 'pt_BR' written with '_' (a Java locale) taken as the "
        "BCP 47 tag it means ('pt-BR')",
        "xml:lang 'en_US' written with '_' (a Java locale) taken as the BCP 47 tag it means ('en-US'), in 2 records "
        "of the page (oai:repository.example.edu:123456789/101, ...)"]
    got = stored(engine, "dspace")
    first = got["oai:repository.example.edu:123456789/101"]
    assert b'<dc:title xml:lang="en-US">Sediment' in first.metadata["oai_dc"]
    assert b'<dc:description xml:lang="pt-BR">' in first.metadata["oai_dc"]
    assert b'altered="true"' in first.about["oai_dc"]
    assert "oai:repository.example.edu:123456789/103" not in got  # "en_US (old)" is no tag either way


def test_gallica_day_datestamps_without_declaration() -> None:
    page = read_page(quirk("bnf-gallica_day-granularity_no-declaration.xml"), "ListRecords")
    assert page.records and all(len(r.header.datestamp) == 10 for r in page.records)
    assert page.token.expiration == "2015-07-29T20:57:07Z"


@sqlite_only
def test_gallica_token_that_always_expires_stops_instead_of_looping(engine) -> None:  # noqa: ANN001
    with Upstream.replay("bnf-gallica") as up:
        add(engine, "gallica", up.base_url)
        summary = harvest_source(engine, "gallica", options())
        requests_made = len(up.log)
    assert summary.status == "failed" and "keep expiring" in summary.error
    assert len(stored(engine, "gallica")) > 0 and requests_made < 12  # what came is kept; bounded


def test_nakala_badargument_is_an_oai_error() -> None:
    assert read_page(quirk("nakala_badArgument_time-in-from.xml"), "ListRecords").errors[0][0] == "badArgument"


def test_nsdl_empty_final_token_ends_the_list() -> None:
    page = read_page(quirk("nsdl_empty-final-resumptionToken.xml"), "ListIdentifiers")
    assert len(page.headers) == 2 and page.token.value is None and page.token.complete_list_size == 733


def test_control_characters_become_replacement_characters() -> None:
    page = read_page(quirk("control-characters-in-metadata.xml"), "ListRecords")
    titles = [r.metadata.findtext("{http://purl.org/dc/elements/1.1/}title") for r in page.records]
    assert titles == ["Fish & chips: a \ufffdstudy", "Heat <> light\ufffd revisited"]
    assert all(r.repairs for r in page.records)


def test_proxy_error_page_with_200_is_an_error() -> None:
    with pytest.raises(PageError, match="HTML page") as info:
        read_page(quirk("proxy-error-page-with-200.html"), "ListRecords")
    assert info.value.retry


def test_inspire_marcxml_records_are_split_correctly_even_when_one_is_broken() -> None:
    body = quirk("inspire_marcxml-foreign-format.xml")
    page = read_page(body, "ListRecords")
    broken = body.replace(b"Reno, Nevada", b"Reno & Nevada", 1)
    salvaged = read_page(broken, "ListRecords")
    assert [r.header.identifier for r in salvaged.records] == [r.header.identifier for r in page.records][1:]
    assert salvaged.broken[0].identifier == page.records[0].header.identifier
    assert all(r.metadata.tag == "{http://www.loc.gov/MARC21/slim}record" for r in salvaged.records)


def test_pmc_identify_without_namespace_is_refused_with_the_reason() -> None:
    with pytest.raises(PageError, match="not in the OAI-PMH 2.0 namespace") as info:
        read_page(quirk("pmc_Identify_missing-namespace.xml"), "Identify")
    assert not info.value.retry


def test_an_already_aggregated_record_gets_its_provenance_nested() -> None:
    page = read_page(quirk("provenance-already-aggregated.xml"), "ListRecords")
    source = SourceView(1, "agg", "http://an.oa.org/OAI-script", "oai_dc", None, None, False, False, "YYYY-MM-DD",
                        "no", None, "http://www.openarchives.org/OAI/2.0/oai_dc/", None, True, None, None, None,
                        None, None)
    ready, rejected, _ = Ingestor(source, "example.org").start(page.records)()
    assert not rejected
    item = Ingestor(source, "example.org")._item(ready[0], datetime(2024, 1, 1))
    about = item.about["oai_dc"]
    assert provenance.validate(about) is None
    outer = etree.fromstring(about).find(f"{PROV}originDescription")
    chain = [outer.findtext(f"{PROV}baseURL"), outer.findtext(f"{PROV}originDescription/{PROV}baseURL"),
             outer.findtext(f"{PROV}originDescription/{PROV}originDescription/{PROV}baseURL")]
    assert chain == ["http://an.oa.org/OAI-script", "http://the.oa.org", "http://some.oa.org"]


@sqlite_only
def test_an_upstream_provenance_left_out_is_said_on_the_run(engine, upstream) -> None:  # noqa: ANN001, F811
    """A review found an invalid upstream provenance dropped without a word: the chain is lost, so the run says."""
    body = quirk("provenance-already-aggregated.xml").replace(b'harvestDate="2002-01-01T11:10:01Z"',
                                                             b'harvestDate="yesterday"')
    add(engine, "agg", upstream.base_url)
    upstream.add_fault(Canned(body, 200), verb="ListRecords", times=None)
    summary = harvest_source(engine, "agg", options())
    assert (summary.status, summary.new) == ("complete", 1)
    [said] = [w for w in summary.warnings if "provenance" in w]
    assert said.startswith("a record of the page carried an upstream provenance that is not valid, left out of "
                           "what we serve (the first: oai:r2.org:klik001: the upstream provenance was not valid")
    about = stored(engine, "agg")["oai:r2.org:klik001"].about["oai_dc"]
    assert provenance.validate(about) is None and b"yesterday" not in about and b"http://the.oa.org" not in about


RIGHTS = "{http://www.openarchives.org/OAI/2.0/rights/}"


def test_rights_statements_in_about_are_served_again_and_the_rest_is_said(engine, upstream, live_server) -> None:  # noqa: ANN001, F811
    """An outside audit found every about-container but the provenance dropped without a word: a record's
    licence (the OAI rights guidelines put it there) was lost to whoever harvests us, and the provenance
    said the record was not altered."""
    add(engine, "rights", upstream.base_url)
    upstream.add_fault(Canned(quirk("rights-about-containers.xml"), 200), verb="ListRecords", times=None)
    summary = harvest_source(engine, "rights", options())
    assert (summary.status, summary.new, summary.quarantined) == ("complete", 2, 0)
    assert sorted(w for w in summary.warnings if "about" in w or "rights" in w) == [
        "oai:rights.example.org:2: an about-container {http://www.openarchives.org/OAI/2.0/branding/}branding is "
        "not served again (only provenance and OAI rights statements are)",
        "oai:rights.example.org:2: the upstream rights statement is not valid and is left out (line 49: Element "
        "'{http://www.openarchives.org/OAI/2.0/rights/}rightsReference': The attribute 'ref' is required but "
        "missing.)"], summary.warnings
    server = live_server()
    root = assert_oai(requests.get(server.url, params={"verb": "ListRecords", "metadataPrefix": "oai_dc"},
                                   timeout=10).content)  # rights.xsd and oai_dc.xsd validate them strictly
    records = {r.findtext("oai:header/oai:identifier", namespaces=NS): r for r in root.iterfind(".//oai:record", NS)}
    first, second = (records[f"oai:example.org:rights:oai:rights.example.org:{n}"] for n in (1, 2))
    assert [etree.QName(a[0]).localname for a in first.iterfind("oai:about", NS)] == ["provenance", "rights"]
    assert first.find(f"oai:about/{RIGHTS}rights/{RIGHTS}rightsReference", NS).get("ref") == \
        "http://creativecommons.org/licenses/by-nd/2.0/rdf"
    assert [etree.QName(a[0]).localname for a in second.iterfind("oai:about", NS)] == ["provenance", "rights"]
    assert second.findtext(f"oai:about/{RIGHTS}rights/{RIGHTS}rightsDefinition/oai_dc:dc/dc:title", namespaces=NS) \
        == "GNU Free Documentation License"
    again = harvest_source(engine, "rights", options(full=True))  # what is carried is part of what is compared
    assert (again.unchanged, again.updated) == (2, 0)
