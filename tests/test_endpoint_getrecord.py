"""GetRecord (OAI-PMH 4.1) over HTTP, on both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from endpoint_helpers import T0, X, dc_record, errors, get, headers, jats_record, request_attrs, stamp, write

from oai.formats.registry import FORMATS
from oai.store.engine import transaction
from oai.store.records import delete_record

DC = {"oai_dc": "http://www.openarchives.org/OAI/2.0/oai_dc/", "dc": "http://purl.org/dc/elements/1.1/"}
ODD = "oai:example.org:10.1234/a&b?c=d;e'h%2Fi(j)*k!l~m"  # legal URI characters, & needs escaping in XML


@pytest.fixture
def store(engine) -> None:  # noqa: ANN001
    write(engine, [dc_record("oai:example.org:dc", sets=("x:y", "z")), jats_record("oai:example.org:article")], T0)
    write(engine, [dc_record(ODD), dc_record("oai:example.org:gone", sets=("z",))],
          T0 + timedelta(hours=1))
    with transaction(engine) as s:
        delete_record(s, "oai:example.org:gone", now=T0 + timedelta(hours=2))


def test_get_record_serves_header_and_metadata(store, live_server) -> None:
    _, root = get(live_server(), verb="GetRecord", identifier="oai:example.org:dc", metadataPrefix="oai_dc")
    assert errors(root) == []
    assert request_attrs(root) == {"verb": "GetRecord", "identifier": "oai:example.org:dc", "metadataPrefix": "oai_dc"}
    records = root.findall("oai:GetRecord/oai:record", X)
    assert len(records) == 1
    (header,) = headers(root)
    assert header.identifier == "oai:example.org:dc" and header.datestamp == stamp(T0)
    assert header.sets == ("x:y", "z") and not header.deleted
    dc = records[0].find("oai:metadata/oai_dc:dc", {**X, **DC})
    assert dc.findtext("dc:title", namespaces=DC) == "Title of oai:example.org:dc"
    assert dc.findtext("dc:identifier", namespaces=DC) == "oai:example.org:dc"


XSI_LOCATION = "{http://www.w3.org/2001/XMLSchema-instance}schemaLocation"


def test_get_record_in_each_format_the_item_has(store, live_server) -> None:
    """Every metadata part carries xsi:schemaLocation (OAI-PMH 2.5): jats names our schema on this host."""
    server = live_server()
    _, formats = get(server, verb="ListMetadataFormats")
    schemas = {f.findtext("oai:metadataPrefix", namespaces=X): (f.findtext("oai:metadataNamespace", namespaces=X),
                                                                f.findtext("oai:schema", namespaces=X))
               for f in formats.iterfind("oai:ListMetadataFormats/oai:metadataFormat", X)}
    for prefix in ("jats", "oai_dc"):
        for verb, args in (("GetRecord", {"identifier": "oai:example.org:article"}), ("ListRecords", {})):
            _, root = get(server, verb=verb, metadataPrefix=prefix, **args)
            payloads = [m[0] for m in root.iterfind(f"oai:{verb}/oai:record/oai:metadata", X)]
            assert payloads and all(p.tag == FORMATS[prefix].root_tag for p in payloads)
            assert {p.get(XSI_LOCATION) for p in payloads} == {" ".join(schemas[prefix])}, (prefix, verb)


def test_identifiers_with_reserved_characters_round_trip(store, live_server) -> None:
    _, root = get(live_server(), verb="GetRecord", identifier=ODD, metadataPrefix="oai_dc")
    assert [h.identifier for h in headers(root)] == [ODD]
    assert request_attrs(root)["identifier"] == ODD


def test_a_deleted_record_has_a_header_only(store, live_server) -> None:
    _, root = get(live_server(), verb="GetRecord", identifier="oai:example.org:gone", metadataPrefix="oai_dc")
    (header,) = headers(root)
    assert header.deleted and header.datestamp == stamp(T0 + timedelta(hours=2)) and header.sets == ("z",)
    assert root.find("oai:GetRecord/oai:record/oai:metadata", X) is None


def test_unknown_identifier_is_id_does_not_exist(store, live_server) -> None:
    server = live_server()
    for identifier in ("oai:example.org:nope", "oai:example.org:DC", "oai:example.org:dc/", "urn:x"):
        _, root = get(server, verb="GetRecord", identifier=identifier, metadataPrefix="oai_dc")
        assert errors(root) == ["idDoesNotExist"], identifier
        # 3.2: arguments are echoed for every error but badVerb and badArgument
        assert request_attrs(root) == {"verb": "GetRecord", "identifier": identifier, "metadataPrefix": "oai_dc"}


def test_formats_the_item_lacks_are_cannot_disseminate_format(store, live_server) -> None:
    server = live_server()
    for ident, prefix in (("oai:example.org:dc", "jats"), ("oai:example.org:dc", "marc21"),
                          ("oai:example.org:gone", "jats")):
        _, root = get(server, verb="GetRecord", identifier=ident, metadataPrefix=prefix)
        assert errors(root) == ["cannotDisseminateFormat"], (ident, prefix)
        assert request_attrs(root) == {"verb": "GetRecord", "identifier": ident, "metadataPrefix": prefix}


def test_unknown_identifier_and_format_reports_both(store, live_server) -> None:
    """OAI-PMH 3.6: repositories "should report all errors" that arise from processing the request."""
    _, root = get(live_server(), verb="GetRecord", identifier="oai:example.org:nope", metadataPrefix="marc21")
    assert errors(root) == ["idDoesNotExist", "cannotDisseminateFormat"]
    assert request_attrs(root) == {"verb": "GetRecord", "identifier": "oai:example.org:nope", "metadataPrefix": "marc21"}


BAD = [
    {"identifier": "oai:example.org:dc"},
    {"metadataPrefix": "oai_dc"},
    {},
    {"identifier": "oai:example.org:dc", "metadataPrefix": "oai_dc", "set": "z"},
    {"identifier": "oai:example.org:dc", "metadataPrefix": "oai_dc", "resumptionToken": "x"},
    {"identifier": ["oai:example.org:dc", "oai:example.org:dc"], "metadataPrefix": "oai_dc"},
    {"identifier": "oai:example.org:dc", "metadataPrefix": ""},
    {"identifier": "not a uri", "metadataPrefix": "oai_dc"},  # 2.4: identifiers are URIs
    {"identifier": "oai:example.org:a#b#c", "metadataPrefix": "oai_dc"},
    {"identifier": "oai:example.org:100%", "metadataPrefix": "oai_dc"},
    {"identifier": "oai:example.org:[x]", "metadataPrefix": "oai_dc"},
    {"identifier": "oai:example.org:dc", "metadataPrefix": "oai dc"},
]


def test_bad_arguments(store, live_server) -> None:  # noqa: ANN001
    server = live_server()
    for args in BAD:
        _, root = get(server, verb="GetRecord", **args)
        assert errors(root) == ["badArgument"], args
        assert request_attrs(root) == {}, args
