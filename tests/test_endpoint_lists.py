"""ListIdentifiers and ListRecords (OAI-PMH 4.3, 4.5): selective harvesting by date (2.7.1) and
by set (2.7.2), deleted records (2.5.1), over HTTP on both databases.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from endpoint_helpers import (
    T0,
    X,
    dc_record,
    errors,
    get,
    headers,
    identifiers,
    jats_record,
    request_attrs,
    stamp,
    token,
    write,
)

from oai.formats.registry import FORMATS
from oai.store.engine import transaction
from oai.store.records import delete_record

LISTS = ["ListIdentifiers", "ListRecords"]
DC = {"oai_dc": "http://www.openarchives.org/OAI/2.0/oai_dc/", "dc": "http://purl.org/dc/elements/1.1/"}


def ids(root) -> list[str]:  # noqa: ANN001
    assert errors(root) == [], errors(root)
    return identifiers(root)


@pytest.mark.parametrize("verb", LISTS)
def test_a_list_holds_every_record_in_datestamp_order(engine, live_server, verb: str) -> None:
    write(engine, [dc_record("oai:example.org:b"), dc_record("oai:example.org:a")], T0 + timedelta(hours=1))
    write(engine, [dc_record("oai:example.org:c", title="C & <c>")], T0)
    _, root = get(live_server(), verb=verb, metadataPrefix="oai_dc")
    assert request_attrs(root) == {"verb": verb, "metadataPrefix": "oai_dc"}
    # (datestamp, insertion) order; one page, so no resumptionToken at all
    assert ids(root) == ["oai:example.org:c", "oai:example.org:b", "oai:example.org:a"]
    assert [h.datestamp for h in headers(root)] == [stamp(T0)] + [stamp(T0 + timedelta(hours=1))] * 2
    assert token(root) is None
    records = root.findall(f"oai:{verb}/oai:record", X)
    if verb == "ListIdentifiers":
        assert records == [] and root.find(".//oai:metadata", X) is None
        assert len(root.findall("oai:ListIdentifiers/oai:header", X)) == 3
    else:
        assert len(records) == 3
        titles = [r.findtext("oai:metadata/oai_dc:dc/dc:title", namespaces={**X, **DC}) for r in records]
        assert titles == ["C & <c>", "Title of oai:example.org:b", "Title of oai:example.org:a"]


@pytest.fixture
def seconds_store(engine) -> list[datetime]:  # noqa: ANN001
    """Five records one second apart: rec-0 at T0 ... rec-4 at T0+4s."""
    stamps = [T0 + timedelta(seconds=i) for i in range(5)]
    for i, at in enumerate(stamps):
        write(engine, [dc_record(f"oai:example.org:s{i}")], at)
    return stamps


@pytest.mark.parametrize("verb", LISTS)
def test_seconds_granularity_bounds_are_inclusive(seconds_store, live_server, verb: str) -> None:
    server = live_server()
    t = seconds_store
    cases = [
        ({"from": stamp(t[1]), "until": stamp(t[3])}, [1, 2, 3]),
        ({"from": stamp(t[2]), "until": stamp(t[2])}, [2]),
        ({"from": stamp(t[3])}, [3, 4]),
        ({"until": stamp(t[1])}, [0, 1]),
        ({"from": stamp(t[0] - timedelta(seconds=1)), "until": stamp(t[4] + timedelta(seconds=1))}, [0, 1, 2, 3, 4]),
    ]
    for args, expected in cases:
        _, root = get(server, verb=verb, metadataPrefix="oai_dc", **args)
        assert ids(root) == [f"oai:example.org:s{i}" for i in expected], args
        assert request_attrs(root) == {"verb": verb, "metadataPrefix": "oai_dc", **args}


@pytest.mark.parametrize("verb", LISTS)
def test_day_granularity_covers_whole_days(engine, live_server, verb: str) -> None:
    # 2.7.1 + 3.3.1: until=2024-03-01 means up to and including 2024-03-01T23:59:59Z
    at = {
        "feb29-last": datetime(2024, 2, 29, 23, 59, 59),
        "mar01-first": datetime(2024, 3, 1, 0, 0, 0),
        "mar01-last": datetime(2024, 3, 1, 23, 59, 59),
        "mar02-first": datetime(2024, 3, 2, 0, 0, 0),
    }
    for name, when in at.items():
        write(engine, [dc_record(f"oai:example.org:{name}")], when)
    server = live_server()
    cases = [
        ({"from": "2024-03-01", "until": "2024-03-01"}, ["mar01-first", "mar01-last"]),
        ({"until": "2024-03-01"}, ["feb29-last", "mar01-first", "mar01-last"]),
        ({"from": "2024-03-01"}, ["mar01-first", "mar01-last", "mar02-first"]),
        ({"from": "2024-03-02", "until": "9999-12-31"}, ["mar02-first"]),
        ({"from": "0001-01-01", "until": "2024-02-29"}, ["feb29-last"]),
    ]
    for args, expected in cases:
        _, root = get(server, verb=verb, metadataPrefix="oai_dc", **args)
        assert ids(root) == [f"oai:example.org:{n}" for n in expected], args


@pytest.mark.parametrize("verb", LISTS)
def test_bad_date_ranges_are_bad_arguments(seconds_store, live_server, verb: str) -> None:
    server = live_server()
    bad = [
        {"from": "2024-03-01", "until": "2024-03-02T00:00:00Z"},  # mixed granularities
        {"from": "2024-03-01T00:00:00Z", "until": "2024-03-02"},
        {"from": "2024-03-02", "until": "2024-03-01"},  # from > until
        {"from": "2024-03-01T10:00:01Z", "until": "2024-03-01T10:00:00Z"},
        {"from": "2024-02-30"}, {"until": "2024-3-01"}, {"from": "2024-03-01T10:00:00"},
        {"from": "2024-03-01T10:00Z"}, {"until": "2024-03-01 10:00:00Z"}, {"from": "2024-03-01T24:00:00Z"},
        {"from": "2024-03-01T10:00:00+01:00"}, {"until": "2024-03-01T10:00:00.5Z"}, {"from": "20240301"},
        {"from": "\u0662\u0660\u0662\u0664-03-01"},  # Arabic-Indic digits are not ISO 8601 digits
        {"until": "\uff12\uff10\uff12\uff14-03-01"},  # nor are full-width ones
        {"from": "0000-01-01"}, {"from": "yesterday"},
    ]
    for args in bad:
        _, root = get(server, verb=verb, metadataPrefix="oai_dc", **args)
        assert errors(root) == ["badArgument"], args
        assert request_attrs(root) == {}, args  # 3.2: no attributes on badArgument


@pytest.mark.parametrize("verb", LISTS)
def test_date_checks_come_before_format_checks(seconds_store, live_server, verb: str) -> None:
    # an illegal date is badArgument even when the prefix is unknown, so the echo never carries it
    server = live_server()
    _, root = get(server, verb=verb, metadataPrefix="nope", **{"from": "garbage"})
    assert errors(root) == ["badArgument"]
    # a range that is bad only as a whole, with an unknown prefix: both said (3.6), and the request element is
    # bare, as for any badArgument (3.2; an outside review found cannotDisseminateFormat alone, echoed)
    for dates in ({"from": "2024-01-02", "until": "2024-01-01"}, {"from": "2024-01-01", "until": "2024-01-01T00:00:00Z"}):
        _, root = get(server, verb=verb, metadataPrefix="nope", **dates)
        assert errors(root) == ["badArgument", "cannotDisseminateFormat"], dates
        assert request_attrs(root) == {}, dates


@pytest.mark.parametrize("verb", LISTS)
def test_empty_ranges_are_no_records_match(seconds_store, live_server, verb: str) -> None:
    server = live_server()
    t = seconds_store
    for args in ({"from": stamp(t[4] + timedelta(seconds=1))}, {"until": stamp(t[0] - timedelta(seconds=1))},
                 {"from": "9999-12-31"}, {"until": "2024-02-29"}):
        _, root = get(server, verb=verb, metadataPrefix="oai_dc", **args)
        assert errors(root) == ["noRecordsMatch"], args
        assert request_attrs(root) == {"verb": verb, "metadataPrefix": "oai_dc", **args}


@pytest.fixture
def set_store(engine) -> None:  # noqa: ANN001
    write(engine, [
        dc_record("oai:example.org:in-a", sets=("a",)),
        dc_record("oai:example.org:in-ab", sets=("a:b",)),
        dc_record("oai:example.org:in-abc", sets=("a:b:c",)),
        dc_record("oai:example.org:in-c", sets=("c",)),
        dc_record("oai:example.org:in-ab-and-ad", sets=("a:b", "a:d")),
        dc_record("oai:example.org:nowhere"),
    ], T0)
    write(engine, [dc_record("oai:example.org:later-in-ab", sets=("a:b",))], T0 + timedelta(days=1))


@pytest.mark.parametrize("verb", LISTS)
def test_sets_are_hierarchical(set_store, live_server, verb: str) -> None:
    server = live_server()
    expected = {
        "a": ["in-a", "in-ab", "in-abc", "in-ab-and-ad", "later-in-ab"],  # listed once, not per subset
        "a:b": ["in-ab", "in-abc", "in-ab-and-ad", "later-in-ab"],
        "a:b:c": ["in-abc"],
        "a:d": ["in-ab-and-ad"],
        "c": ["in-c"],
    }
    for spec, names in expected.items():
        _, root = get(server, verb=verb, metadataPrefix="oai_dc", set=spec)
        assert ids(root) == [f"oai:example.org:{n}" for n in names], spec
    # headers carry the setSpecs the record was given, not the ancestors used for filtering
    _, root = get(server, verb=verb, metadataPrefix="oai_dc", set="a")
    by_id = {h.identifier: h.sets for h in headers(root)}
    assert by_id["oai:example.org:in-abc"] == ("a:b:c",)
    assert by_id["oai:example.org:in-ab-and-ad"] == ("a:b", "a:d")
    # set and date together
    _, root = get(server, verb=verb, metadataPrefix="oai_dc", set="a:b", **{"from": "2024-03-02"})
    assert ids(root) == ["oai:example.org:later-in-ab"]


@pytest.mark.parametrize("verb", LISTS)
def test_unknown_or_illegal_sets(set_store, live_server, verb: str) -> None:
    server = live_server()
    for spec in ("zzz", "a:zzz", "a:b:c:d", "b"):  # "b" is only a part of a:b, not a set
        _, root = get(server, verb=verb, metadataPrefix="oai_dc", set=spec)
        assert errors(root) == ["noRecordsMatch"], spec
        assert request_attrs(root) == {"verb": verb, "metadataPrefix": "oai_dc", "set": spec}
    for spec in ("a b", "a::b", ":a", "a:", "a/b", "ä"):  # not setSpec syntax (2.6)
        _, root = get(server, verb=verb, metadataPrefix="oai_dc", set=spec)
        assert errors(root) == ["badArgument"], spec
        assert request_attrs(root) == {}


@pytest.mark.parametrize("verb", LISTS)
def test_set_without_set_hierarchy(engine, live_server, verb: str) -> None:
    write(engine, [dc_record("oai:example.org:1")], T0)
    _, root = get(live_server(), verb=verb, metadataPrefix="oai_dc", set="a")
    assert errors(root) == ["noSetHierarchy"]
    assert request_attrs(root) == {"verb": verb, "metadataPrefix": "oai_dc", "set": "a"}


@pytest.mark.parametrize("verb", LISTS)
def test_deleted_records_are_listed_at_their_deletion(engine, live_server, verb: str) -> None:
    write(engine, [dc_record("oai:example.org:kept", sets=("s",)), dc_record("oai:example.org:gone", sets=("s",))], T0)
    deleted_at = T0 + timedelta(days=2)
    with transaction(engine) as s:
        delete_record(s, "oai:example.org:gone", now=deleted_at)
    server = live_server()
    _, root = get(server, verb=verb, metadataPrefix="oai_dc")
    assert ids(root) == ["oai:example.org:kept", "oai:example.org:gone"]
    gone = headers(root)[1]
    assert gone.deleted and gone.datestamp == stamp(deleted_at) and gone.sets == ("s",)
    assert not headers(root)[0].deleted
    if verb == "ListRecords":
        kept_rec, gone_rec = root.findall("oai:ListRecords/oai:record", X)
        assert kept_rec.find("oai:metadata", X) is not None
        assert gone_rec.find("oai:metadata", X) is None  # 2.5.1: a deleted record has no metadata
    # selective harvesting sees the deletion in the range holding its new datestamp, and in its sets
    day = deleted_at.strftime("%Y-%m-%d")
    for args in ({"from": day, "until": day}, {"from": day, "set": "s"}):
        _, root = get(server, verb=verb, metadataPrefix="oai_dc", **args)
        assert ids(root) == ["oai:example.org:gone"] and headers(root)[0].deleted, args
    _, root = get(server, verb=verb, metadataPrefix="oai_dc", until=T0.strftime("%Y-%m-%d"))
    assert ids(root) == ["oai:example.org:kept"]


@pytest.mark.parametrize("verb", LISTS)
def test_lists_are_per_metadata_format(engine, live_server, verb: str) -> None:
    write(engine, [dc_record("oai:example.org:dc-only"), jats_record("oai:example.org:article")], T0)
    server = live_server()
    _, root = get(server, verb=verb, metadataPrefix="jats")
    assert ids(root) == ["oai:example.org:article"]
    if verb == "ListRecords":
        payload = root.find("oai:ListRecords/oai:record/oai:metadata", X)[0]
        assert payload.tag == FORMATS["jats"].root_tag
    _, root = get(server, verb=verb, metadataPrefix="oai_dc")
    assert ids(root) == ["oai:example.org:dc-only", "oai:example.org:article"]
    for prefix in ("marc21", "OAI_DC"):  # unknown (prefixes are case-sensitive)
        _, root = get(server, verb=verb, metadataPrefix=prefix)
        assert errors(root) == ["cannotDisseminateFormat"], prefix
        assert request_attrs(root) == {"verb": verb, "metadataPrefix": prefix}
    for prefix in ("oai dc", "oai_dc/", "<x>"):  # not metadataPrefix syntax (3.4)
        _, root = get(server, verb=verb, metadataPrefix=prefix)
        assert errors(root) == ["badArgument"], prefix


@pytest.mark.parametrize("verb", LISTS)
def test_a_supported_format_nobody_has_is_no_records_match(engine, live_server, verb: str) -> None:
    write(engine, [dc_record("oai:example.org:dc-only")], T0)
    _, root = get(live_server(), verb=verb, metadataPrefix="jats")
    assert errors(root) == ["noRecordsMatch"]


def test_a_page_of_many_jats_articles_is_valid_as_one_document(engine, live_server) -> None:
    """Articles reuse the same IDs (aff1, fn1, ...): a page holding several of them must still validate
    against OAI-PMH.xsd with the advertised schema, where IDs are unique per document (cvc-id.2)."""
    from pathlib import Path

    from oai.loader import load

    loaded = load(engine, [str(Path(__file__).resolve().parent / "data" / "jats")],
                  repository_identifier="example.org", workers=1)
    assert loaded.new >= 20 and not loaded.failed
    _, root = get(live_server(page_size=100), verb="ListRecords", metadataPrefix="jats")  # validated whole
    articles = [r.find("oai:metadata", X)[0] for r in root.iterfind("oai:ListRecords/oai:record", X)]
    ids = [i for a in articles for i in a.xpath(".//@id")]
    assert len(articles) >= 18 and len(ids) > len(set(ids))  # the same IDs, in more than one article


@pytest.mark.parametrize("verb", LISTS)
def test_a_format_withdrawn_from_an_item_is_served_as_deleted_in_that_format(engine, live_server, verb: str) -> None:
    """OAI-PMH 2.5.1: "deleted" is the withdrawal of the metadata format for the item. An article whose
    new version is no longer valid JATS keeps oai_dc only; a jats harvester must see its jats record
    deleted (at the new datestamp), not silently keep the old one (deletedRecord is persistent)."""
    article = jats_record("oai:example.org:article")
    write(engine, [article], T0)
    later = T0 + timedelta(days=1)
    write(engine, [replace(article, metadata={"oai_dc": article.metadata["oai_dc"]})], later)
    server = live_server()
    for args in ({}, {"from": stamp(later)}):
        _, root = get(server, verb=verb, metadataPrefix="jats", **args)
        (header,) = headers(root)
        assert header.identifier == "oai:example.org:article" and header.deleted and header.datestamp == stamp(later)
        assert root.find(f"oai:{verb}/oai:record/oai:metadata", X) is None
    _, root = get(server, verb="GetRecord", identifier="oai:example.org:article", metadataPrefix="jats")
    assert headers(root)[0].deleted and root.find("oai:GetRecord/oai:record/oai:metadata", X) is None
    _, root = get(server, verb=verb, metadataPrefix="oai_dc")
    assert not headers(root)[0].deleted  # the item and its other format are still there
    _, root = get(server, verb="ListMetadataFormats", identifier="oai:example.org:article")
    assert errors(root) == []
    # the same version again changes nothing; a valid article again brings jats back
    with transaction(engine) as session:
        from oai.store.records import Change, upsert_records

        again = upsert_records(session, [replace(article, metadata={"oai_dc": article.metadata["oai_dc"]})],
                               now=later + timedelta(days=1))
        assert again == [Change.UNCHANGED]
    write(engine, [article], later + timedelta(days=2))
    _, root = get(server, verb=verb, metadataPrefix="jats")
    assert not headers(root)[0].deleted and headers(root)[0].datestamp == stamp(later + timedelta(days=2))
