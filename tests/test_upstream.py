"""Tests of the test upstream itself: protocol semantics, replay, and that each fault happens."""

from __future__ import annotations

import gzip
import pathlib
import re
import time

import pytest
import requests
import sickle
from lxml import etree
from sickle import oaiexceptions

from upstream import DAY, Record, SyntheticRepository, Upstream, faults, sample_records
from upstream.fixtures import upstream, upstream_factory  # noqa: F401  (fixtures)

SCHEMAS = pathlib.Path(__file__).resolve().parents[1] / "schemas" / "oai"
NS = {"o": "http://www.openarchives.org/OAI/2.0/", "dc": "http://purl.org/dc/elements/1.1/"}
STRICT = etree.XMLParser(resolve_entities=False, no_network=True)
RECOVER = etree.XMLParser(recover=True, remove_blank_text=True, resolve_entities=False)


@pytest.fixture(scope="module")
def oai_schema():
    """OAI-PMH.xsd with the payload schemas its strict wildcards demand."""
    imports = "".join(
        f'<xs:import namespace="{ns}" schemaLocation="{(SCHEMAS / name).as_uri()}"/>'
        for ns, name in (("http://www.openarchives.org/OAI/2.0/", "OAI-PMH.xsd"),
                         ("http://www.openarchives.org/OAI/2.0/oai_dc/", "oai_dc.xsd"),
                         ("http://www.openarchives.org/OAI/2.0/oai-identifier", "oai-identifier.xsd")))
    schema = etree.XMLSchema(etree.fromstring(
        f'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">{imports}</xs:schema>'))
    assert not schema.error_log, schema.error_log   # an unresolved import is only a warning
    return schema


def get(up, **params) -> requests.Response:
    return requests.get(up.base_url, params=params, timeout=10)


def parse(response):
    return etree.fromstring(response.content, STRICT)


def error_code(response) -> str | None:
    err = parse(response).find("o:error", NS)
    return None if err is None else err.get("code")


def token_of(response) -> etree._Element | None:
    return parse(response).find(".//o:resumptionToken", NS)


def titles(root) -> list[str | None]:
    return [t.text for t in root.iterfind(".//dc:title", NS)]


def mixed_records(n=23):
    recs = sample_records(n)
    for rec in recs[4::5]:
        rec.deleted, rec.fields = True, {}
    return recs


# -- synthetic repository --

def test_sickle_harvests_every_record_once(upstream):
    upstream.serve(SyntheticRepository(mixed_records(), page_size=5))
    harvested = list(sickle.Sickle(upstream.base_url).ListRecords(
        metadataPrefix="oai_dc", ignore_deleted=False))
    expected = upstream.repo.records
    assert [r.header.identifier for r in harvested] == [r.identifier for r in expected]
    assert [r.header.deleted for r in harvested] == [r.deleted for r in expected]
    assert harvested[0].metadata["title"] == ["Record 1: fish & chips <i>1</i> > 0"]
    assert harvested[0].metadata["creator"][0] == "Müller, Zoë"
    assert len(upstream.requests) == 5 and upstream.log[-1].page == 5


def test_responses_are_valid_oai_pmh(upstream, oai_schema):
    upstream.serve(SyntheticRepository(mixed_records(12), page_size=5, compression=("gzip",)))
    first = get(upstream, verb="ListRecords", metadataPrefix="oai_dc")
    cases = [
        ({"verb": "Identify"}, None),
        ({"verb": "ListMetadataFormats"}, None),
        ({"verb": "ListMetadataFormats", "identifier": "oai:upstream.test:1"}, None),
        ({"verb": "ListSets"}, None),
        ({"verb": "ListIdentifiers", "metadataPrefix": "oai_dc", "set": "journal"}, None),
        ({"verb": "ListRecords", "resumptionToken": token_of(first).text}, None),
        ({"verb": "GetRecord", "identifier": "oai:upstream.test:1", "metadataPrefix": "oai_dc"}, None),
        ({"verb": "GetRecord", "identifier": "oai:upstream.test:5", "metadataPrefix": "oai_dc"}, None),
        ({"verb": "Nonsense"}, "badVerb"),
        ({"verb": "ListRecords"}, "badArgument"),
        ({"verb": "ListRecords", "metadataPrefix": "oai_dc", "bogus": "1"}, "badArgument"),
        ({"verb": "ListRecords", "metadataPrefix": "oai_dc", "from": "2024-13-45"}, "badArgument"),
        ({"verb": "ListRecords", "metadataPrefix": "oai_dc", "from": "2024-01-02",
          "until": "2024-01-01"}, "badArgument"),
        ({"verb": "ListRecords", "metadataPrefix": "marc21"}, "cannotDisseminateFormat"),
        ({"verb": "ListRecords", "resumptionToken": "nope"}, "badResumptionToken"),
        ({"verb": "ListRecords", "metadataPrefix": "oai_dc", "from": "2030-01-01"}, "noRecordsMatch"),
        ({"verb": "GetRecord", "identifier": "oai:nowhere:1", "metadataPrefix": "oai_dc"}, "idDoesNotExist"),
    ]
    for params, code in [({"verb": "ListRecords", "metadataPrefix": "oai_dc"}, None), *cases]:
        response = get(upstream, **params)
        assert response.status_code == 200
        oai_schema.assertValid(parse(response))
        assert error_code(response) == code, params
    assert get(upstream, verb="Identify").content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    upstream.serve(SyntheticRepository(sample_records(2)[:0]))
    assert error_code(get(upstream, verb="ListSets")) == "noSetHierarchy"
    response = requests.post(upstream.base_url, data={"verb": "Identify"}, timeout=10)
    oai_schema.assertValid(parse(response))


def test_paging_tokens_and_selection(upstream):
    upstream.serve(SyntheticRepository(sample_records(12), page_size=5))
    page1 = get(upstream, verb="ListIdentifiers", metadataPrefix="oai_dc")
    tok = token_of(page1)
    assert (tok.get("completeListSize"), tok.get("cursor")) == ("12", "0") and tok.text
    page3 = get(upstream, verb="ListIdentifiers", resumptionToken=token_of(
        get(upstream, verb="ListIdentifiers", resumptionToken=tok.text)).text)
    last = token_of(page3)
    assert (last.get("cursor"), last.text) == ("10", None)   # empty token ends the list
    assert len(parse(page3).findall(".//o:header", NS)) == 2
    # from/until inclusive, day-granular until covers the whole day; set hierarchy
    one_day = get(upstream, verb="ListIdentifiers", metadataPrefix="oai_dc",
                  **{"from": "2024-01-02", "until": "2024-01-02"})
    assert [h.text for h in parse(one_day).iterfind(".//o:identifier", NS)] == [
        "oai:upstream.test:2", "oai:upstream.test:3"]
    exact = get(upstream, verb="ListIdentifiers", metadataPrefix="oai_dc",
                **{"from": "2024-01-02T08:00:00Z", "until": "2024-01-02T08:00:00Z"})
    assert len(parse(exact).findall(".//o:header", NS)) == 1
    in_set = list(sickle.Sickle(upstream.base_url).ListIdentifiers(metadataPrefix="oai_dc", set="journal:a"))
    assert len(in_set) == 6 and all(h.setSpecs == ["journal:a"] for h in in_set)
    assert len(list(sickle.Sickle(upstream.base_url).ListIdentifiers(metadataPrefix="oai_dc", set="journal"))) == 12
    assert token_of(get(upstream, verb="ListIdentifiers", metadataPrefix="oai_dc", set="journal:a",
                        until="2024-01-03")) is None   # a single page carries no token


def test_day_granularity_repository(upstream):
    upstream.serve(SyntheticRepository(sample_records(4), granularity=DAY))
    identify = parse(get(upstream, verb="Identify"))
    assert identify.findtext(".//o:granularity", namespaces=NS) == "YYYY-MM-DD"
    listing = parse(get(upstream, verb="ListIdentifiers", metadataPrefix="oai_dc"))
    assert [d.text for d in listing.iterfind(".//o:datestamp", NS)] == [
        "2024-01-01", "2024-01-02", "2024-01-02", "2024-01-03"]
    for arg in ("from", "until"):
        assert error_code(get(upstream, verb="ListRecords", metadataPrefix="oai_dc",
                              **{arg: "2024-01-02T00:00:00Z"})) == "badArgument"
    assert error_code(get(upstream, verb="ListRecords", metadataPrefix="oai_dc",
                          **{"from": "2024-01-02"})) is None


def test_deleted_record_policies(upstream):
    upstream.serve(SyntheticRepository(mixed_records(10), deleted_record="no"))
    assert parse(get(upstream, verb="Identify")).findtext(".//o:deletedRecord", namespaces=NS) == "no"
    headers = list(sickle.Sickle(upstream.base_url).ListIdentifiers(metadataPrefix="oai_dc"))
    assert len(headers) == 8 and not any(h.deleted for h in headers)
    assert error_code(get(upstream, verb="GetRecord", identifier="oai:upstream.test:5",
                          metadataPrefix="oai_dc")) == "idDoesNotExist"
    upstream.serve(SyntheticRepository(mixed_records(10), deleted_record="transient"))
    record = parse(get(upstream, verb="GetRecord", identifier="oai:upstream.test:5", metadataPrefix="oai_dc"))
    assert record.find(".//o:header", NS).get("status") == "deleted"
    assert record.find(".//o:metadata", NS) is None


def test_records_mutate_between_harvests(upstream):
    upstream.serve(SyntheticRepository(sample_records(3)))
    repo = upstream.repo
    before = get(upstream, verb="Identify")
    repo.update("oai:upstream.test:1", title="Corrected title")
    repo.delete("oai:upstream.test:2")
    repo.add(Record("oai:upstream.test:new", "2030-05-05T05:05:05Z", ("journal:c",), False, {"title": "New"}))
    since = parse(before).findtext("o:responseDate", namespaces=NS)
    changed = {r.header.identifier: r for r in sickle.Sickle(upstream.base_url).ListRecords(
        metadataPrefix="oai_dc", ignore_deleted=False, **{"from": since})}
    assert set(changed) == {"oai:upstream.test:1", "oai:upstream.test:2", "oai:upstream.test:new"}
    assert changed["oai:upstream.test:1"].metadata["title"] == ["Corrected title"]
    assert changed["oai:upstream.test:2"].deleted


@pytest.mark.parametrize("paging, missed", [("keyset", set()), ("offset", {"oai:upstream.test:5"})])
def test_record_changed_during_harvest(upstream, paging, missed):
    upstream.serve(SyntheticRepository(sample_records(9), page_size=4, paging=paging))
    upstream.add_fault(faults.Mutate(lambda repo: repo.update("oai:upstream.test:1", title="moved")), page=2)
    seen = [r.header.identifier for r in sickle.Sickle(upstream.base_url).ListRecords(metadataPrefix="oai_dc")]
    assert seen.count("oai:upstream.test:1") == 2 and seen[-1] == "oai:upstream.test:1"
    assert {f"oai:upstream.test:{i}" for i in range(1, 10)} - set(seen) == missed
    assert upstream.log[1].faults == ("Mutate",)


def test_expire_tokens_then_relist(upstream):
    upstream.serve(SyntheticRepository(sample_records(6), page_size=2))
    old = token_of(get(upstream, verb="ListRecords", metadataPrefix="oai_dc")).text
    upstream.expire_tokens()
    assert error_code(get(upstream, verb="ListRecords", resumptionToken=old)) == "badResumptionToken"
    assert len(list(sickle.Sickle(upstream.base_url).ListRecords(metadataPrefix="oai_dc"))) == 6


# -- replay --

def test_replay_tethys_through_sickle(upstream):
    upstream.serve("tethys")
    client = sickle.Sickle(upstream.base_url)
    records = list(client.ListRecords(metadataPrefix="oai_dc", ignore_deleted=False))
    assert [r.header.identifier for r in records] == [f"oai:tethys.at:{i}" for i in range(1, 10)]
    assert [q.get("resumptionToken") for q in upstream.requests] == [None, "177435798600000", "177435798700000"]
    assert client.Identify().repositoryName == "Tethys RDR"
    assert error_code(get(upstream, verb="ListRecords", resumptionToken="177435798700001")) == "badResumptionToken"
    assert error_code(get(upstream, verb="ListRecords", metadataPrefix="marc21")) == "cannotDisseminateFormat"


def test_replay_dspace_with_deleted_records(upstream_factory):
    up = upstream_factory("dspace-eur")
    records = list(sickle.Sickle(up.base_url).ListRecords(metadataPrefix="oai_dc", ignore_deleted=False))
    assert len(records) == 81
    assert [r.header.identifier for r in records if r.deleted] == ["hdl:1765/1160", "hdl:1765/1161"]
    older = list(sickle.Sickle(up.base_url).ListRecords(metadataPrefix="oai_dc", **{"from": "2003-04-10"}))
    assert len(older) == 16
    gone = sickle.Sickle(up.base_url).GetRecord(identifier="hdl:1765/1160", metadataPrefix="oai_dc")
    assert gone.deleted
    assert len(list(sickle.Sickle(up.base_url).ListSets())) > 5


def test_replay_bnf_day_granularity_and_nsdl(upstream_factory, oai_schema):
    bnf = upstream_factory("bnf-gallica")
    identify = parse(get(bnf, verb="Identify"))
    oai_schema.assertValid(identify)
    assert identify.findtext(".//o:granularity", namespaces=NS) == "YYYY-MM-DD"
    assert error_code(get(bnf, verb="ListRecords", metadataPrefix="oai_dc",
                          **{"from": "2010-06-09T00:00:00Z"})) == "badArgument"
    page = get(bnf, verb="ListRecords", metadataPrefix="oai_dc", **{"from": "2010-06-09"})
    assert parse(page).findtext(".//o:datestamp", namespaces=NS) == "2010-06-09"
    assert error_code(get(bnf, verb="ListRecords", resumptionToken=token_of(page).text)) == "badResumptionToken"
    nsdl = upstream_factory("nsdl")
    headers = list(sickle.Sickle(nsdl.base_url).ListIdentifiers(metadataPrefix="nsdl_dc", **{"from": "2012-07-26"}))
    assert len(headers) == 733 and len(nsdl.requests) == 4


# -- faults --

def test_503_with_retry_after_then_recovers(upstream):
    upstream.repo.add(*sample_records(3))
    upstream.add_fault(faults.ServiceUnavailable(retry_after=7), request=1)
    response = get(upstream, verb="Identify")
    assert (response.status_code, response.headers["Retry-After"]) == (503, "7")
    assert get(upstream, verb="Identify").status_code == 200
    upstream.add_fault(faults.ServiceUnavailable(retry_after=0), verb="ListRecords", times=2)
    client = sickle.Sickle(upstream.base_url, max_retries=2)
    assert len(list(client.ListRecords(metadataPrefix="oai_dc"))) == 3
    assert [e.status for e in upstream.log[2:]] == [503, 503, 200]


def test_500_reset_empty_and_html(upstream):
    upstream.repo.add(*sample_records(3))
    upstream.add_fault(faults.InternalServerError(), request=1)
    upstream.add_fault(faults.ConnectionReset(), request=2)
    upstream.add_fault(faults.EmptyBody(), request=3)
    upstream.add_fault(faults.NotXml(), request=4)
    assert get(upstream, verb="Identify").status_code == 500
    with pytest.raises(requests.ConnectionError):
        get(upstream, verb="Identify")
    empty = get(upstream, verb="Identify")
    assert (empty.status_code, empty.content) == (200, b"")
    html = get(upstream, verb="Identify")
    assert html.status_code == 200 and html.headers["Content-Type"].startswith("text/html")
    with pytest.raises(etree.XMLSyntaxError):
        parse(html)
    assert get(upstream, verb="Identify").status_code == 200   # every fault fired once only
    assert [e.status for e in upstream.log] == [500, None, 200, 200, 200]


def test_slow_responses(upstream):
    upstream.add_fault(faults.Slow(0.4), times=2)
    with pytest.raises(requests.Timeout):
        requests.get(upstream.base_url, params={"verb": "Identify"}, timeout=0.1)
    started = time.monotonic()
    assert get(upstream, verb="Identify").status_code == 200
    assert time.monotonic() - started >= 0.4
    upstream.add_fault(faults.Slow(0.4, in_body=True))
    with pytest.raises(requests.ConnectionError):   # read timeout in the middle of the body
        requests.get(upstream.base_url, params={"verb": "Identify"}, timeout=0.1)
    with pytest.raises(ValueError):
        faults.Slow(3600)


def _undated(body: bytes) -> bytes:
    """`body` with its responseDate's 20 characters masked (same length, so truncation points agree)."""
    return re.sub(rb"(<responseDate>)[^<]{20}(</responseDate>)", rb"\g<1>" + b"?" * 20 + rb"\g<2>", body, count=1)


def test_truncated_bodies(upstream):
    upstream.repo.add(*sample_records(5))
    full = get(upstream, verb="ListRecords", metadataPrefix="oai_dc").content
    upstream.add_fault(faults.Truncated(0.5, content_length="full"))
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        get(upstream, verb="ListRecords", metadataPrefix="oai_dc")
    for mode in ("sent", None):
        upstream.add_fault(faults.Truncated(1000, content_length=mode))
        cut = get(upstream, verb="ListRecords", metadataPrefix="oai_dc")
        # the two responses may fall in different seconds: compare them without their responseDate
        assert cut.status_code == 200 and _undated(cut.content) == _undated(full)[:1000]
        assert cut.headers.get("Content-Length") == ("1000" if mode else None)
        with pytest.raises(etree.XMLSyntaxError):
            parse(cut)


def test_illegal_character_in_one_record(upstream):
    upstream.repo.add(*sample_records(3))
    upstream.add_fault(faults.IllegalCharacter("\x0b", record=2))
    body = get(upstream, verb="ListRecords", metadataPrefix="oai_dc").content
    assert b"<dc:title>\x0bRecord 2:" in body and body.count(b"\x0b") == 1
    with pytest.raises(etree.XMLSyntaxError, match="[Cc]har"):
        etree.fromstring(body, STRICT)


@pytest.mark.parametrize("kind", ["ampersand", "stray-tag"])
def test_broken_record_makes_recover_mode_lossy(upstream, kind):
    upstream.repo.add(*sample_records(4))
    upstream.add_fault(faults.BrokenRecord(record=2, kind=kind))
    body = get(upstream, verb="ListRecords", metadataPrefix="oai_dc").content
    assert body.count(b"&amp;") >= 3 and b"&lt;" in body and b"&gt;" in body
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(body, STRICT)
    recovered = titles(etree.fromstring(body, RECOVER))
    assert recovered[0] == "Record 1: fish & chips <i>1</i> > 0"
    assert recovered[3] != "Record 4: fish & chips <i>4</i> > 3"   # lossy after the break


def test_oai_errors_with_http_status(upstream, oai_schema):
    upstream.repo.add(*sample_records(3))
    upstream.add_fault(faults.OAIErrorReply("noRecordsMatch", status=500))
    response = get(upstream, verb="ListRecords", metadataPrefix="oai_dc")
    assert response.status_code == 500 and error_code(response) == "noRecordsMatch"
    oai_schema.assertValid(parse(response))
    upstream.add_fault(faults.ErrorStatus(400), times=None)
    bad = get(upstream, verb="ListRecords", resumptionToken="nope")
    assert (bad.status_code, error_code(bad)) == (400, "badResumptionToken")
    assert get(upstream, verb="Identify").status_code == 200


def test_expired_tokens_fault_and_day_only(upstream):
    upstream.serve("tethys")
    upstream.add_fault(faults.ExpiredTokens(), times=None)
    with pytest.raises(oaiexceptions.BadResumptionToken):
        list(sickle.Sickle(upstream.base_url).ListRecords(metadataPrefix="oai_dc"))
    assert get(upstream, verb="ListRecords", metadataPrefix="oai_dc").status_code == 200
    upstream.add_fault(faults.DayGranularityOnly())
    assert error_code(get(upstream, verb="ListRecords", metadataPrefix="oai_dc",
                          **{"from": "2020-01-01T00:00:00Z"})) == "badArgument"


def test_repeating_token(upstream):
    upstream.serve(SyntheticRepository(sample_records(6), page_size=2))
    upstream.add_fault(faults.RepeatingToken(), times=2)
    seen = [r.header.identifier for r in sickle.Sickle(upstream.base_url).ListRecords(metadataPrefix="oai_dc")]
    assert len(seen) == 10 and seen.count("oai:upstream.test:3") == 3
    tokens = [q.get("resumptionToken") for q in upstream.requests]
    assert tokens[1] == tokens[2] == tokens[3] != tokens[4]


def test_gzip_when_asked(upstream):
    upstream.repo.add(*sample_records(3))
    upstream.add_fault(faults.Gzip(), times=None)
    zipped = get(upstream, verb="ListRecords", metadataPrefix="oai_dc")
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert len(parse(zipped).findall(".//o:record", NS)) == 3
    assert int(zipped.headers["Content-Length"]) < len(zipped.content)
    plain = requests.get(upstream.base_url, params={"verb": "Identify"},
                         headers={"Accept-Encoding": "identity"}, timeout=10)
    assert "Content-Encoding" not in plain.headers
    upstream.clear_faults()
    upstream.add_fault(faults.Gzip(force=True))
    raw = requests.get(upstream.base_url, params={"verb": "Identify"},
                       headers={"Accept-Encoding": "identity"}, stream=True, timeout=10)
    with raw:
        assert gzip.decompress(raw.raw.read()).startswith(b"<?xml")


def test_huge_page(upstream):
    upstream.repo.add(*sample_records(3))
    upstream.add_fault(faults.HugePage())
    huge = get(upstream, verb="ListRecords", metadataPrefix="oai_dc")
    assert len(huge.content) > 10_000_000 and huge.headers["Content-Length"] == str(len(huge.content))
    root = parse(huge)
    assert [r.findtext(".//o:identifier", namespaces=NS) for r in root.iterfind(".//o:record", NS)] == [
        "oai:upstream.test:1", "oai:upstream.test:2", "oai:upstream.test:3"]
    added = "".join(d.text for d in root.iterfind(".//dc:description", NS))
    assert len(added) == 11 * 1024 * 1024
    upstream.add_fault(faults.HugePage(piece=None))   # one text node beyond libxml2's limit
    with pytest.raises(etree.XMLSyntaxError, match="huge|too long"):
        parse(get(upstream, verb="ListRecords", metadataPrefix="oai_dc"))


def test_fault_rules_by_page_and_verb(upstream):
    upstream.serve(SyntheticRepository(sample_records(6), page_size=2))
    rule = upstream.add_fault(faults.InternalServerError(), page=2, verb="ListRecords", times=2)
    client = sickle.Sickle(upstream.base_url, max_retries=3, retry_status_codes=[500], default_retry_after=0)
    assert len(list(client.ListRecords(metadataPrefix="oai_dc"))) == 6
    assert rule.exhausted and [e.status for e in upstream.log] == [200, 500, 500, 200, 200]
    assert [e.page for e in upstream.log] == [1, 2, 2, 2, 3]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/oai", upstream.base_url)


def test_server_stops_even_when_the_test_fails():
    with pytest.raises(AssertionError):
        with Upstream.synthetic(sample_records(1)) as up:
            url = up.base_url
            raise AssertionError("boom")
    with pytest.raises(requests.ConnectionError):
        requests.get(url, params={"verb": "Identify"}, timeout=2)
