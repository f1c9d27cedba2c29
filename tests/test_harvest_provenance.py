"""The provenance about-container written without a tree is byte for byte what lxml writes, and valid."""

from __future__ import annotations

from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from harvester import provenance

# Any character XML 1.0 allows (what a parsed upstream value can hold), markup characters and CR included.
xml_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\ufffe\uffff")
                   .filter(lambda c: c in "\t\n\r" or ord(c) >= 0x20), max_size=40)


@settings(max_examples=300, deadline=None)
@given(base_url=xml_text, identifier=xml_text, datestamp=xml_text, namespace=xml_text, altered=st.booleans())
def test_direct_bytes_equal_the_tree_bytes(base_url: str, identifier: str, datestamp: str, namespace: str,
                                           altered: bool) -> None:
    origin = provenance.Origin(base_url, identifier, datestamp, namespace)
    when = datetime(2026, 12, 1, 8, 30, 5)
    direct, _ = provenance.build(origin, harvest_date=when, altered=altered)
    tree, _ = provenance.build_tree(origin, harvest_date=when, altered=altered)
    assert direct == tree


def test_direct_bytes_are_valid_provenance() -> None:
    origin = provenance.Origin("http://example.org/oai?x=1&y=<2>", "oai:example.org:a&b", "2024-01-01",
                               "http://www.openarchives.org/OAI/2.0/oai_dc/")
    data, warning = provenance.build(origin, harvest_date=datetime(2026, 1, 2, 3, 4, 5), altered=True)
    assert warning is None and provenance.validate(data) is None
    assert b'harvestDate="2026-01-02T03:04:05Z" altered="true"' in data and b"a&amp;b" in data


@settings(max_examples=300, deadline=None)
@given(identifier=xml_text.filter(bool), namespace=xml_text)
def test_any_upstream_identifier_and_namespace_make_valid_provenance(identifier: str, namespace: str) -> None:
    """An outside audit harvested oai:fake:100% and a SICI with [ ]: the provenance held them as they came, not
    valid xs:anyURI, and every page serving those records failed the schema."""
    origin = provenance.Origin("http://example.org/oai", identifier, "2024-01-01T00:00:00Z", namespace)
    data, warning = provenance.build(origin, harvest_date=datetime(2026, 1, 2, 3, 4, 5), altered=False)
    assert warning is None and provenance.validate(data) is None


def test_an_identifier_that_is_a_uri_is_kept_as_it_came_and_another_is_percent_encoded() -> None:
    assert provenance.as_uri("oai:example.org:Статья-1?a=b&c") == "oai:example.org:Статья-1?a=b&c"
    assert provenance.as_uri("oai:fake:100%") == "oai:fake:100%25"
    assert provenance.as_uri("0002-9939(1999)127:1[1:AT]2.0.CO;2-Q") == "0002-9939(1999)127%3A1%5B1%3AAT%5D2.0.CO;2-Q"  # no scheme: its colons too
