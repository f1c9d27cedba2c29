"""ListMetadataFormats (OAI-PMH 4.4) and ListSets (4.6) over HTTP, on both databases."""

from __future__ import annotations

import posixpath
from datetime import timedelta

import pytest
from endpoint_helpers import (
    T0,
    X,
    dc_bytes,
    dc_record,
    errors,
    fetch,
    get,
    jats_record,
    request_attrs,
    token,
    write,
)
from lxml import etree

from oai.formats.registry import FORMATS
from oai.store.engine import transaction
from oai.store.models import ForeignFormat
from oai.store.records import RecordIn, delete_record, set_info, upsert_records


def formats_of(root) -> dict[str, tuple[str, str]]:  # noqa: ANN001
    assert errors(root) == [], errors(root)
    return {
        f.findtext("oai:metadataPrefix", namespaces=X): (f.findtext("oai:metadataNamespace", namespaces=X),
                                                         f.findtext("oai:schema", namespaces=X))
        for f in root.iterfind("oai:ListMetadataFormats/oai:metadataFormat", X)
    }


def test_all_formats_of_the_repository(engine, live_server) -> None:
    with transaction(engine) as s:
        s.add(ForeignFormat(prefix="marcxml", namespace="http://www.loc.gov/MARC21/slim",
                            schema="http://www.loc.gov/standards/marcxml/schema/MARC21slim.xsd"))
    server = live_server()
    _, root = get(server, verb="ListMetadataFormats")
    assert request_attrs(root) == {"verb": "ListMetadataFormats"}
    found = formats_of(root)
    assert set(found) == {"oai_dc", "jats", "marcxml"}
    assert found["oai_dc"] == ("http://www.openarchives.org/OAI/2.0/oai_dc/",
                               "http://www.openarchives.org/OAI/2.0/oai_dc.xsd")
    assert found["marcxml"] == ("http://www.loc.gov/MARC21/slim",
                                "http://www.loc.gov/standards/marcxml/schema/MARC21slim.xsd")
    namespace, schema = found["jats"]
    assert namespace == FORMATS["jats"].namespace
    # a schema only we publish is advertised on our own host, and really served there
    assert schema == f"{server.root}/schemas/{FORMATS['jats'].schema_relpath}"
    reply = fetch(server, schema.removeprefix(server.root))
    assert reply.status == 200
    assert etree.fromstring(reply.body).tag == "{http://www.w3.org/2001/XMLSchema}schema"


@pytest.mark.parametrize(("base_url", "expected_root"), [
    ("https://oai.example.org/oai", "https://oai.example.org"),
    ("https://example.org/repository/oai", "https://example.org/repository"),  # mounted below a path
])
def test_our_schema_is_advertised_at_the_configured_base_url(engine, live_server, base_url: str,
                                                              expected_root: str) -> None:
    """Behind a proxy the request's Host is an internal one; the public address is OAI_BASE_URL."""
    _, root = get(live_server(base_url=base_url), verb="ListMetadataFormats")
    assert formats_of(root)["jats"][1] == f"{expected_root}/schemas/{FORMATS['jats'].schema_relpath}"
    assert root.findtext("oai:request", namespaces=X) == base_url


def test_the_advertised_jats_schema_compiles_from_what_we_serve(engine, live_server, tmp_path) -> None:
    """Every file the advertised schema includes or imports is served beside it (fetched here into a
    folder of the same shape, then compiled offline)."""
    server = live_server()
    _, root = get(server, verb="ListMetadataFormats")
    url = formats_of(root)["jats"][1]
    todo, got = [url.removeprefix(f"{server.root}/schemas/")], set()
    while todo:
        name = todo.pop()
        if name in got:
            continue
        reply = fetch(server, f"/schemas/{name}")
        assert reply.status == 200, name
        got.add(name)
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(reply.body)
        for location in etree.fromstring(reply.body).xpath("//@schemaLocation"):
            todo.append(posixpath.normpath(posixpath.join(posixpath.dirname(name), location)))
    schema = etree.XMLSchema(etree.parse(str(tmp_path / url.removeprefix(f"{server.root}/schemas/"))))
    assert len(schema.error_log) == 0 and any("relaxed-ids/" in n for n in got) and len(got) >= 8


def test_formats_of_one_item_are_the_ones_it_has(engine, live_server) -> None:
    write(engine, [dc_record("oai:example.org:dc"), jats_record("oai:example.org:article"),
                   RecordIn("oai:example.org:marc-only", metadata={"marc21": b"<record/>"})], T0)
    with transaction(engine) as s:
        delete_record(s, "oai:example.org:article", now=T0 + timedelta(hours=1))
    server = live_server()
    _, root = get(server, verb="ListMetadataFormats", identifier="oai:example.org:dc")
    assert request_attrs(root) == {"verb": "ListMetadataFormats", "identifier": "oai:example.org:dc"}
    assert set(formats_of(root)) == {"oai_dc"}
    # a deleted item still names the formats it was available in
    _, root = get(server, verb="ListMetadataFormats", identifier="oai:example.org:article")
    assert set(formats_of(root)) == {"oai_dc", "jats"}
    # an item whose only format this repository cannot disseminate
    _, root = get(server, verb="ListMetadataFormats", identifier="oai:example.org:marc-only")
    assert errors(root) == ["noMetadataFormats"]
    assert request_attrs(root) == {"verb": "ListMetadataFormats", "identifier": "oai:example.org:marc-only"}


def test_list_metadata_formats_errors(engine, live_server) -> None:
    write(engine, [dc_record("oai:example.org:dc")], T0)
    server = live_server()
    _, root = get(server, verb="ListMetadataFormats", identifier="oai:example.org:nope")
    assert errors(root) == ["idDoesNotExist"]
    assert request_attrs(root) == {"verb": "ListMetadataFormats", "identifier": "oai:example.org:nope"}
    for args in ({"identifier": "a b"}, {"metadataPrefix": "oai_dc"}, {"set": "a"}, {"identifier": ""},
                 {"identifier": ["oai:example.org:dc", "oai:example.org:x"]}, {"resumptionToken": "x"}):
        _, root = get(server, verb="ListMetadataFormats", **args)
        assert errors(root) == ["badArgument"], args
        assert request_attrs(root) == {}


def sets_of(root) -> list[tuple[str, str]]:  # noqa: ANN001
    assert errors(root) == [], errors(root)
    return [(s.findtext("oai:setSpec", namespaces=X), s.findtext("oai:setName", namespaces=X))
            for s in root.iterfind("oai:ListSets/oai:set", X)]


def test_no_sets_is_no_set_hierarchy(engine, live_server) -> None:
    write(engine, [dc_record("oai:example.org:dc")], T0)
    _, root = get(live_server(), verb="ListSets")
    assert errors(root) == ["noSetHierarchy"]
    assert request_attrs(root) == {"verb": "ListSets"}


def test_sets_with_names_and_descriptions(engine, live_server) -> None:
    description = dc_bytes("Articles about physics", "set:phys").decode()
    with transaction(engine) as s:
        set_info(s, "phys:astro", "Astrophysics & <cosmology>")
        set_info(s, "phys", "Physics", description)
        upsert_records(s, [dc_record("oai:example.org:1", sets=("bio",))], now=T0)
    _, root = get(live_server(), verb="ListSets")
    assert sets_of(root) == [("bio", "bio"), ("phys", "Physics"), ("phys:astro", "Astrophysics & <cosmology>")]
    assert token(root) is None  # one page: no resumptionToken
    desc = root.find("oai:ListSets/oai:set[oai:setSpec='phys']/oai:setDescription", X)
    assert desc[0].findtext("{http://purl.org/dc/elements/1.1/}title") == "Articles about physics"


def test_long_set_lists_are_paged(engine, live_server) -> None:
    specs = ["a", "a:b", "a:b:c", "b", "c", "d", "d:e", "f"]
    with transaction(engine) as s:
        for spec in ("a:b:c", "b", "c", "d:e", "f"):  # a, a:b and d come in as ancestors
            set_info(s, spec, f"Set {spec}")
    server = live_server(page_size_listsets=3)
    _, root = get(server, verb="ListSets")
    seen, cursors = [], []
    while True:
        seen += [spec for spec, _ in sets_of(root)]
        tok = token(root)
        assert tok is not None
        assert tok.get("completeListSize") == "8"
        cursors.append(tok.get("cursor"))
        if not tok.text:
            assert tok.get("expirationDate") is None
            break
        assert tok.get("expirationDate")
        _, root = get(server, verb="ListSets", resumptionToken=tok.text)
        assert request_attrs(root) == {"verb": "ListSets", "resumptionToken": tok.text}
    assert seen == specs
    assert cursors == ["0", "3", "6"]


def test_list_sets_arguments(engine, live_server) -> None:
    with transaction(engine) as s:
        set_info(s, "a", "A")
    server = live_server(page_size_listsets=1)
    _, root = get(server, verb="ListSets", resumptionToken="not-a-token")
    assert errors(root) == ["badResumptionToken"]
    assert request_attrs(root) == {"verb": "ListSets", "resumptionToken": "not-a-token"}
    for args in ({"set": "a"}, {"metadataPrefix": "oai_dc"}, {"resumptionToken": ""},
                 {"resumptionToken": ["x", "x"]}):
        _, root = get(server, verb="ListSets", **args)
        assert errors(root) == ["badArgument"], args
        assert request_attrs(root) == {}
