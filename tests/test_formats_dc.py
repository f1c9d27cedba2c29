"""oai_dc: real records ingest, validate, normalise idempotently; the builder and registry behave."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from oai.formats import dc, registry
from oai.formats.base import SCHEMAS_DIR, FormatError
from oai.formats.safexml import canonical_bytes, parse_document

DATA = Path(__file__).resolve().parent / "data" / "dc"
SAMPLES = sorted(DATA.glob("*.xml"))
NS = {"oai_dc": dc.OAI_DC_NS, "dc": dc.DC_NS}
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


@pytest.fixture(scope="module")
def oai_dc_xsd() -> etree.XMLSchema:
    schema = etree.XMLSchema(etree.parse(str(SCHEMAS_DIR / "oai/oai_dc.xsd")))
    assert len(schema.error_log) == 0
    return schema


def test_there_are_dc_samples() -> None:
    assert len(SAMPLES) == 7


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_every_sample_ingests_to_valid_normalised_oai_dc(path: Path, oai_dc_xsd: etree.XMLSchema) -> None:
    ingested = registry.ingest_document(path.read_bytes(), source=path.name)
    assert list(ingested.metadata) == ["oai_dc"]
    served = parse_document(ingested.metadata["oai_dc"])
    assert oai_dc_xsd.validate(served), oai_dc_xsd.error_log
    assert served.text is None and all(child.tail is None for child in served)
    for child in served:
        assert child.text == child.text.strip() and child.text
    # every value and every xml:lang of the input survives
    source = parse_document(path.read_bytes())
    expected = [
        (etree.QName(e).localname, e.text.strip(), e.get(XML_LANG))
        for e in source.iterchildren(etree.Element)
        if e.text and e.text.strip()
    ]
    got = sorted((etree.QName(e).localname, e.text, e.get(XML_LANG)) for e in served)
    people = [field for field in expected if field[0] in ("creator", "contributor")]  # repeats are kept
    others = {field for field in expected if field[0] not in ("creator", "contributor")}
    assert sorted(people + list(others)) == got
    # idempotent: ingesting what we serve gives the same bytes
    assert registry.ingest_document(ingested.metadata["oai_dc"]).metadata == ingested.metadata


def test_whitespace_padding_and_empty_elements_are_dropped_lang_kept() -> None:
    data = f"""<oai_dc:dc xmlns:oai_dc="{dc.OAI_DC_NS}" xmlns:dc="{dc.DC_NS}">
        <dc:title xml:lang="de">  Ein Titel
        </dc:title>
        <dc:creator>   </dc:creator>
        <dc:date>2020-05-01T10:00:00Z</dc:date>
        <dc:identifier>https://doi.org/10.1234/ABC.5</dc:identifier>
    </oai_dc:dc>""".encode()
    ingested = dc.FORMAT.ingest(parse_document(data))
    assert ingested.metadata["oai_dc"] == (
        f'<oai_dc:dc xmlns:oai_dc="{dc.OAI_DC_NS}" xmlns:dc="{dc.DC_NS}" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xsi:schemaLocation="{dc.OAI_DC_NS} {dc.SCHEMA_URL}">'
        '<dc:title xml:lang="de">Ein Titel</dc:title><dc:date>2020-05-01T10:00:00Z</dc:date>'
        "<dc:identifier>https://doi.org/10.1234/ABC.5</dc:identifier></oai_dc:dc>"
    ).encode()
    assert ingested.citation.title == "Ein Titel"
    assert ingested.citation.publication_date == "2020-05-01"
    assert ingested.citation.doi == "10.1234/ABC.5"
    assert ingested.citation.authors == ()


def test_invalid_dc_is_refused_with_the_schema_error() -> None:
    data = f'<oai_dc:dc xmlns:oai_dc="{dc.OAI_DC_NS}" xmlns:dc="{dc.DC_NS}"><dc:titel>x</dc:titel></oai_dc:dc>'
    with pytest.raises(FormatError, match=r"not valid against oai_dc.xsd: line 1: Element .*titel"):
        registry.ingest_document(data.encode())


def test_an_element_the_validator_cannot_read_is_invalid_not_an_exception() -> None:
    """libxml2's validator gives up on an entity reference node (lxml raises): said as the record's error. Our
    parsers make none (no DTD is read), so this guards a tree built some other way."""
    root = dc.build_dc([("title", "x", None)])
    root[0].append(etree.Entity("foo"))
    assert "the schema validator could not read the element" in dc.validate(root)


def test_citation_facts_from_real_records() -> None:
    zenodo = registry.ingest_document((DATA / "zenodo_GetRecord_oai_dc.xml").read_bytes()).citation
    assert zenodo.doi == "10.5281/zenodo.10357859"
    assert zenodo.authors[:2] == ("Klar, Jochen", "Michaelis, Olaf")
    assert zenodo.publication_date == "2023-12-11"
    arxiv = registry.ingest_document((DATA / "arxiv_1207.1019_oai_dc.xml").read_bytes()).citation
    assert arxiv.title == "PAC-Bayesian Majority Vote for Late Classifier Fusion"
    assert arxiv.authors == ("Morvant, Emilie", "Habrard, Amaury", "Ayache, Stéphane")
    assert arxiv.keywords[0] == "Statistics - Machine Learning"
    assert arxiv.abstract.startswith("A lot of attention")
    ojs = registry.ingest_document((DATA / "ojs_expectedResult_oai_dc_PLACEHOLDER-VALUES.xml").read_bytes()).citation
    assert ojs.authors == ("author-lastname, author-firstname",)  # '; affiliation' is not the name


def test_citation_reads_back_our_own_source_field() -> None:
    fields = [
        ("title", "T", "en"),
        ("creator", "Oleynikov, Ilya Vasilyevich; Irkutsk State University", None),
        ("source", "The Bulletin; ISSN 2073-3380; Vol. 32; No. 4; pp. 44-51", None),
        ("identifier", "https://example.org/a.pdf", None),
    ]
    facts = dc.citation_from_fields(fields)
    assert facts.authors == ("Oleynikov, Ilya Vasilyevich",)
    assert (facts.journal_title, facts.issn, facts.volume, facts.issue) == ("The Bulletin", ("2073-3380",), "32", "4")
    assert (facts.firstpage, facts.lastpage, facts.pdf_url) == ("44", "51", "https://example.org/a.pdf")


def test_build_dc_orders_by_element_deduplicates_and_keeps_lang(oai_dc_xsd: etree.XMLSchema) -> None:
    element = dc.build_dc(
        [
            ("identifier", "https://doi.org/10.1/x", None),
            ("title", " Zweiter ", "de"),
            ("title", "First", "en"),
            ("title", "First", "en"),
            ("creator", "", None),
            ("language", "ru", ""),
        ]
    )
    assert oai_dc_xsd.validate(element)
    assert [(etree.QName(e).localname, e.text, e.get(XML_LANG)) for e in element] == [
        ("title", "Zweiter", "de"),
        ("title", "First", "en"),
        ("identifier", "https://doi.org/10.1/x", None),
        ("language", "ru", None),
    ]
    with pytest.raises(ValueError, match="not a Dublin Core element"):
        dc.build_dc([("author", "x", None)])


def test_repeated_creators_and_contributors_are_kept_other_repeats_dropped() -> None:
    """Two authors may share a name: a repeated creator is a second person, a repeated subject a duplicate."""
    data = f"""<oai_dc:dc xmlns:oai_dc="{dc.OAI_DC_NS}" xmlns:dc="{dc.DC_NS}">
        <dc:creator>Wang, Wei</dc:creator><dc:creator>Li, Na</dc:creator><dc:creator>Wang, Wei</dc:creator>
        <dc:contributor>Roe, Jane</dc:contributor><dc:contributor> Roe, Jane</dc:contributor>
        <dc:subject>x</dc:subject><dc:subject>x </dc:subject><dc:subject xml:lang="en">x</dc:subject>
    </oai_dc:dc>""".encode()
    ingested = registry.ingest_document(data)
    served = parse_document(ingested.metadata["oai_dc"])
    assert [(etree.QName(e).localname, e.text, e.get(XML_LANG)) for e in served] == [
        ("creator", "Wang, Wei", None), ("creator", "Li, Na", None), ("creator", "Wang, Wei", None),
        ("subject", "x", None), ("subject", "x", "en"),
        ("contributor", "Roe, Jane", None), ("contributor", "Roe, Jane", None),
    ]
    assert ingested.citation.authors == ("Wang, Wei", "Li, Na", "Wang, Wei")
    assert registry.ingest_document(ingested.metadata["oai_dc"]).metadata == ingested.metadata


def test_registry_knows_both_formats_and_detects_roots() -> None:
    assert sorted(registry.FORMATS) == ["jats", "oai_dc"]
    assert registry.get("oai_dc") is dc.FORMAT
    with pytest.raises(KeyError):
        registry.get("marc21")
    with pytest.raises(FormatError, match=r"^not a JATS article or oai_dc record: root element is \{urn:x\}record$"):
        registry.detect(etree.fromstring(b'<record xmlns="urn:x"/>'))
    with pytest.raises(FormatError, match="root element is dc$"):
        registry.ingest_document(b"<dc/>")


def test_format_attributes() -> None:
    fmt = registry.get("oai_dc")
    assert fmt.namespace == "http://www.openarchives.org/OAI/2.0/oai_dc/"
    assert fmt.schema_url == "http://www.openarchives.org/OAI/2.0/oai_dc.xsd"
    assert fmt.schema_relpath == "oai/oai_dc.xsd" and fmt.schema_path == SCHEMAS_DIR / "oai/oai_dc.xsd"
    assert fmt.schema_path.is_file()
    assert fmt.root_tag == "{http://www.openarchives.org/OAI/2.0/oai_dc/}dc"


# Any character XML 1.0 allows, with the ones that need escaping made likely.
_xml_text = st.text(st.one_of(st.sampled_from("&<>\r\n\t \"'"), st.characters(
    blacklist_categories=("Cs",), blacklist_characters="\ufffe\uffff").filter(lambda c: ord(c) >= 0x20)),
    max_size=40)
_lang = st.one_of(st.none(), st.from_regex(r"[a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8}){0,2}", fullmatch=True),
                  st.sampled_from(["en us", "", "x" * 9, "ru-"]))
_fields = st.lists(st.tuples(st.sampled_from(dc.ELEMENTS), _xml_text, _lang), max_size=8)


@settings(max_examples=400, deadline=None)
@given(fields=_fields)
def test_serialise_writes_the_bytes_of_the_validated_tree(fields: list, oai_dc_xsd: etree.XMLSchema) -> None:
    """serialise() skips the tree and the schema: the bytes must be canonical_bytes(build_dc()) exactly,
    and a record the schema refuses (a bad language tag) must be refused, not written."""
    tree = dc.build_dc(fields)
    if oai_dc_xsd.validate(tree):
        written = dc.serialise(fields)
        assert written == canonical_bytes(tree)
        assert written == canonical_bytes(parse_document(written))
    else:
        with pytest.raises(FormatError, match=r"^line \d+: "):
            dc.serialise(fields)


def test_the_citation_keeps_the_language_of_the_title_and_abstract_it_takes() -> None:
    from oai.formats.dc import citation_from_fields

    c = citation_from_fields([("title", "Заголовок", "ru"), ("title", "A title", "en"), ("language", "ru", None),
                              ("description", "An abstract.", "en"), ("description", "Аннотация.", "ru")])
    assert (c.title, c.title_language, c.abstract, c.abstract_language) == ("Заголовок", "ru", "An abstract.", "en")
    assert citation_from_fields([("title", "Untagged", None)]).title_language is None


def test_the_publication_date_is_the_earliest_dc_date() -> None:
    """DSpace writes dc.date.accessioned and dc.date.available before dc.date.issued, all as dc:date: an outside
    audit found landing pages dating a 1978 report 2005/09/15."""
    fields = [("title", "Energy report", None), ("date", "2005-09-15T14:12:55Z", None),
              ("date", "2005-09-15T14:12:55Z", None), ("date", "1978", None)]
    assert dc.citation_from_fields(fields).publication_date == "1978"
    assert dc.citation_from_fields(fields[:2]).publication_date == "2005-09-15"
    assert dc.citation_from_fields([("date", "spring 1978", None)]).publication_date is None
    # of one year the most precise; what no calendar has is no date (an outside audit: 2020/13/45 on a page)
    assert dc.citation_from_fields([("date", "1999", None), ("date", "1999-05-01T12:00:00Z", None)]
                                   ).publication_date == "1999-05-01"
    assert dc.citation_from_fields([("date", "2020-13-45", None), ("date", "2020-02-30", None),
                                    ("date", "2021-02", None)]).publication_date == "2021-02"


@pytest.mark.parametrize("url, pdf", [
    ("HTTPS://EXAMPLE.ORG/X.PDF", True), ("https://example.org/y.pdf#page=2", True),
    ("https://example.org/y.pdf?download=1", True), ("https://example.org/y.html", False),
    ("ftp://example.org/y.pdf", False), ("https://example.org/pdf", False),
])
def test_a_pdf_is_known_by_its_path_whatever_its_case_query_or_fragment(url: str, pdf: bool) -> None:
    """An outside audit: HTTPS://EXAMPLE.ORG/X.PDF and y.pdf#page=2 were not taken for the PDF (citation_pdf_url)."""
    fields = [("title", "T", None), ("identifier", url, None)]
    assert dc.citation_from_fields(fields).pdf_url == (url if pdf else None)


def test_the_citation_read_back_from_derived_dc_is_the_one_jats_gave() -> None:
    """A record harvested as oai_dc has only dc:source for its landing page: what the crosswalk writes there must
    read back whole. An outside audit found every ISSN with its medium ('ISSN x (print)') lost, both titles of
    'Title = Parallel title' in one tag, and article numbers (eLife's e00666) gone."""
    keys = ("journal_title", "issn", "volume", "issue", "firstpage", "lastpage", "article_number")
    samples = sorted((DATA.parents[0] / "jats").rglob("*.xml"))
    checked = 0
    for path in samples:
        ingested = registry.ingest_document(path.read_bytes())
        back = registry.ingest_document(ingested.metadata["oai_dc"]).citation
        given = {key: getattr(ingested.citation, key) for key in keys}
        given["issn"] = tuple(i for i in given["issn"] if re.fullmatch(r"\d{4}-\d{3}[\dX]", i))  # (placeholders)
        assert {key: getattr(back, key) for key in keys} == given, path.name
        checked += bool(given["issn"] and given["journal_title"])
    assert checked >= 15
    numbered = registry.ingest_document((DATA.parents[0] / "jats" / "elife" / "elife-02833-v2.xml").read_bytes())
    assert numbered.citation.article_number == "e02833" and numbered.citation.firstpage is None
    russian = dc.citation_from_fields([("source", "Известия = The Bulletin; ISSN 2073-3380 (print); "
                                                  "ISSN 2307-4582 (online); Vol. 32", None)])
    assert (russian.journal_title, russian.issn) == ("Известия", ("2073-3380", "2307-4582"))
    untitled = dc.citation_from_fields([("source", "ISSN 2073-3380; Vol. 3", None)])
    assert (untitled.journal_title, untitled.issn, untitled.volume) == (None, ("2073-3380",), "3")
    # a title that starts as a part does is a title all the same (an outside review)
    for title in ("ISSN Newsletter", "Article 19 Review", "No. 1 Quarterly"):
        assert dc.citation_from_fields([("source", f"{title}; Vol. 2", None)]).journal_title == title


def test_a_doi_given_as_openaires_alternative_identifier_is_the_records() -> None:
    """An outside audit: dc:relation info:eu-repo/semantics/altIdentifier/doi/10.24341/tethys.1 (OpenAIRE's way) was
    ignored: no DOI in the citation, and the file's stem for an identifier. A DOI among the identifiers comes first."""
    relation = ("relation", "info:eu-repo/semantics/altIdentifier/doi/10.24341/tethys.1", None)
    assert dc.citation_from_fields([("title", "T", None), relation]).doi == "10.24341/tethys.1"
    assert dc.citation_from_fields([("identifier", "https://doi.org/10.1234/first", None), relation]).doi == "10.1234/first"
    assert dc.citation_from_fields([("relation", "https://doi.org/10.1234/cited", None)]).doi is None  # cites another
