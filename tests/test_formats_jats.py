"""JATS: every real sample ingests; the oai_dc crosswalk field by field; the served JATS and its schema."""

from __future__ import annotations

import copy
from xml.sax.saxutils import escape
from pathlib import Path

import pytest
from lxml import etree

from oai.formats import dc, jats, jats_crosswalk, registry
from oai.formats.base import SCHEMAS_DIR, FormatError, Ingested, compile_schema, read_schema
from oai.formats.safexml import canonical_bytes, parse_document

TESTS = Path(__file__).resolve().parent
JATS_DIR = TESTS / "data" / "jats"
SAMPLES = sorted(JATS_DIR.glob("*/*.xml"))
SEED = TESTS.parent / "oai" / "demo" / "irkutsk-bulletin-2020-32-44.xml"
J = jats.JATS_NS
NS = {"j": J, "dc": dc.DC_NS, "xml": "http://www.w3.org/XML/1998/namespace"}
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

# Front matter invalid against Publishing 1.4 even after the meaning-preserving reorderings
# (<contrib-id> first in <contrib>, ...): an attribute value 1.4 does not know (fn/@fn-type="fn"),
# an <on-behalf-of> between contribs, <fn> in <history>. They get oai_dc only; the first error says why.
NO_JATS = {
    "elife/elife-00666.xml": "Element 'fn', attribute 'fn-type': [facet 'enumeration'] The value 'fn'",
    "elife/elife-kitchen-sink.xml": "Element 'contrib': This element is not expected.",
}
# Full text invalid against Publishing 1.4 (<x>, invalid MathML, xref/@ref-type="foo"): front matter.
FRONT_ONLY = {
    "elife/elife-02833-v2.xml",
    "nlm-samples/samplesmall-pub1-mathml3_NEG-bad.xml",
    "pmc-oa/1472-6831-8-11_nlm2.3.xml",  # NLM 2.3's <citation>
    "scielo/0034-8910-rsp-48-2-0206_en-pt-trans.xml",
}


def name(path: Path) -> str:
    return path.relative_to(JATS_DIR).as_posix()


@pytest.fixture(scope="module")
def ingested() -> dict[str, Ingested]:
    return {name(p): registry.ingest_document(p.read_bytes(), source=name(p)) for p in SAMPLES}


@pytest.fixture(scope="module")
def wrapper() -> etree.XMLSchema:
    """The namespaced schema records are validated against (the official declarations, unmodified)."""
    return compile_schema(jats.STRICT_SCHEMA_PATH)


@pytest.fixture(scope="module")
def advertised() -> etree.XMLSchema:
    """The schema ListMetadataFormats names: the wrapper, with ID types widened for many-article pages."""
    return compile_schema(SCHEMAS_DIR / jats.SCHEMA_RELPATH)


@pytest.fixture(scope="module")
def official() -> etree.XMLSchema:
    """The unmodified no-namespace NLM driver, to compare the wrapper with."""
    return compile_schema(SCHEMAS_DIR / "jats-oai/1.4-publishing-mathml3/JATS-journalpublishing1-4-mathml3.xsd")


@pytest.fixture(scope="module")
def oai_dc_xsd() -> etree.XMLSchema:
    return compile_schema(SCHEMAS_DIR / "oai/oai_dc.xsd")


def dc_values(record: Ingested, element: str) -> list[tuple[str, str | None]]:
    root = parse_document(record.metadata["oai_dc"])
    return [(e.text, e.get(XML_LANG)) for e in root.findall(f"dc:{element}", NS)]


def texts(record: Ingested, element: str) -> list[str]:
    return [text for text, _lang in dc_values(record, element)]


def served(record: Ingested) -> etree._Element:
    return parse_document(record.metadata["jats"])


# --- every sample -------------------------------------------------------------------------


def test_all_23_samples_are_here() -> None:
    assert len(SAMPLES) == 23


def test_every_sample_gives_valid_oai_dc(ingested: dict[str, Ingested], oai_dc_xsd: etree.XMLSchema) -> None:
    for sample, record in ingested.items():
        root = parse_document(record.metadata["oai_dc"])
        assert oai_dc_xsd.validate(root), (sample, oai_dc_xsd.error_log)
        assert texts(record, "title") and texts(record, "language"), sample
        # the SciELO erratum names no author
        assert bool(texts(record, "creator")) == (sample != "scielo/0034-8910-rsp-48-2-0366_pt-correction-small.xml")
        # a publish-on-accept article has no <pub-date> yet: no dc:date rather than a guess
        assert bool(texts(record, "date")) == (sample != "elife/elife_poa_e06828_FRONT-ONLY.xml"), sample


def test_exactly_21_samples_give_jats_all_valid_against_the_wrapper(
    ingested: dict[str, Ingested], wrapper: etree.XMLSchema
) -> None:
    with_jats = {sample for sample, record in ingested.items() if "jats" in record.metadata}
    assert len(with_jats) == 21
    assert set(ingested) - with_jats == set(NO_JATS)
    for sample in with_jats:
        root = served(ingested[sample])
        assert root.tag == f"{{{J}}}article"
        assert wrapper.validate(root), (sample, wrapper.error_log)
    for sample, error in NO_JATS.items():
        assert error in ingested[sample].warnings[-1] and "oai_dc only" in ingested[sample].warnings[-1], sample
    # 17 full texts (elife07586_correction among them, once its <contrib-id> is first), 4 front matters
    full = {sample for sample in with_jats if len(served(ingested[sample])) > 1}
    assert (len(full), len(with_jats - full), len(NO_JATS)) == (17, 4, 2)
    assert with_jats - full == FRONT_ONLY and "elife/elife07586_correction.xml" in full


def test_full_text_where_valid_front_matter_where_not(ingested: dict[str, Ingested]) -> None:
    for sample, record in ingested.items():
        if sample in NO_JATS:
            continue
        parts = [etree.QName(child).localname for child in served(record)]
        if sample in FRONT_ONLY:
            assert parts == ["front"], sample
            assert "serving front matter only" in record.warnings[0], sample
        else:
            assert record.warnings == (), sample
            assert parts[0] == "front" and len(parts) > 1, sample
    assert "attribute 'name'" in ingested["nlm-samples/samplesmall-pub1-mathml3_NEG-bad.xml"].warnings[0]


def test_served_jats_namespaces(ingested: dict[str, Ingested]) -> None:
    """JATS elements in JATS_NS, MathML/ALI in theirs, declarations on the root only."""
    for sample, record in ingested.items():
        if "jats" not in record.metadata:
            continue
        data = record.metadata["jats"]
        assert data.count(b"xmlns") == data[: data.index(b">")].count(b"xmlns"), sample
        for element in served(record).iter(etree.Element):
            assert etree.QName(element).namespace in (J, jats.MML_NS, jats.ALI_NS), (sample, element.tag)
            for attribute in element.attrib:
                assert etree.QName(attribute).namespace in (None, jats.XLINK_NS, "http://www.w3.org/XML/1998/namespace")
    # the dtd-version is kept; the draft ALI namespace of the NLM 1.1d3 sample became the final one
    sample = served(ingested["nlm-samples/samplesmall-pub1-mathml3.xml"])
    assert sample.get("dtd-version") == "1.1d3"
    assert sample.find(".//{http://www.niso.org/schemas/ali/1.0/}license_ref") is not None
    assert served(ingested["plos/journal.pone.0119074_math.xml"]).get("dtd-version") == "3.0"


def test_ingest_is_idempotent_and_our_output_round_trips(ingested: dict[str, Ingested]) -> None:
    for path in SAMPLES:
        record = ingested[name(path)]
        assert registry.ingest_document(path.read_bytes()) == record
        if "jats" in record.metadata:
            again = registry.ingest_document(record.metadata["jats"])
            assert again.metadata["jats"] == record.metadata["jats"], name(path)
        assert registry.ingest_document(record.metadata["oai_dc"]).metadata["oai_dc"] == record.metadata["oai_dc"]


# --- the wrapper schema -------------------------------------------------------------------


def article(body: str, namespace: str = J) -> etree._Element:
    return etree.fromstring(
        f'<article xmlns="{namespace}" xmlns:mml="{jats.MML_NS}" xmlns:ali="{jats.ALI_NS}"><front>'
        "<journal-meta><journal-id>j</journal-id><issn>1234-5678</issn></journal-meta>"
        f"<article-meta><title-group><article-title>T</article-title></title-group>{body}"
        "</article-meta></front></article>"
    )


def test_wrapper_compiles_offline_with_an_empty_error_log(wrapper: etree.XMLSchema) -> None:
    for path in (SCHEMAS_DIR / jats.SCHEMA_RELPATH, jats.STRICT_SCHEMA_PATH):
        again = etree.XMLSchema(etree.parse(str(path), etree.XMLParser(no_network=True)))
        assert len(again.error_log) == 0, path
    assert jats.FORMAT.schema_path == SCHEMAS_DIR / "jats-oai/jats-publishing-1.4-oai.xsd"


def test_the_advertised_schema_is_the_official_one_with_id_types_widened_and_nothing_else() -> None:
    """relaxed-ids/ holds copies whose only change is the type of ID, IDREF and IDREFS attributes
    (and a comment saying so): a drifted or hand-edited copy fails here."""
    jats_dir = SCHEMAS_DIR / "jats-oai"
    copies = {
        "JATS-journalpublishing1-4-mathml3-elements.xsd": "1.4-publishing-mathml3/JATS-journalpublishing1-4-mathml3-elements.xsd",
        "mathml3-common.xsd": "1.4-publishing-mathml3/standard-modules/mathml3/mathml3-common.xsd",
        "module-ali-jats-oai.xsd": "module-ali-jats-oai.xsd",
    }
    widened = (('type="xsd:IDREFS"', 'type="xsd:NMTOKENS"'), ('type="xsd:IDREF"', 'type="xsd:NCName"'),
               ('type="xsd:ID"', 'type="xsd:NCName"'), ('type="xs:ID"', 'type="xs:NCName"'))
    for copy_name, original in copies.items():
        expected = (jats_dir / original).read_text(encoding="utf-8")
        changes = sum(expected.count(old) for old, _ in widened)
        for old, new in widened:
            expected = expected.replace(old, new)
        got = (jats_dir / "relaxed-ids" / copy_name).read_text(encoding="utf-8")
        note_start = got.index("<!--* jats-oai: MODIFIED copy of")
        got = got[:note_start] + got[got.index("*-->", note_start) + len("*-->\n"):]
        assert got == expected and changes > 0, copy_name
    assert "ID" not in "".join(etree.parse(str(p)).xpath("string(//@type[contains(., 'ID')])")
                               for p in (jats_dir / "relaxed-ids").glob("*.xsd"))


def test_the_advertised_schema_differs_from_the_strict_one_only_in_id_uniqueness(
    wrapper: etree.XMLSchema, advertised: etree.XMLSchema
) -> None:
    for path in SAMPLES:
        normalised = jats.normalise(parse_document(path.read_bytes()))
        for tree in (normalised, jats.front_matter(normalised)):
            served = jats.into_namespace(copy.deepcopy(tree))
            assert wrapper.validate(served) == advertised.validate(served), name(path)
    twice = article('<contrib-group><contrib><string-name>A</string-name><xref ref-type="aff" rid="a1"/></contrib>'
                    '<aff id="a1">X</aff><aff id="a1">Y</aff></contrib-group>')
    assert not wrapper.validate(twice) and "a1" in str(wrapper.error_log[0].message)
    assert advertised.validate(twice), advertised.error_log


def test_wrapper_really_validates_what_we_send(wrapper: etree.XMLSchema) -> None:
    license_ref = "<permissions><license><ali:license_ref>https://creativecommons.org/licenses/by/4.0/</ali:license_ref></license></permissions>"
    assert wrapper.validate(article(license_ref)), wrapper.error_log
    rejected = {
        "no namespace": article("", namespace=""),
        "another namespace": article("", namespace="https://jats.nlm.nih.gov/ns/archiving/1.3/"),
        "unknown element": article("<bogus/>"),
        "element out of the namespace": article('<volume xmlns="">3</volume>'),
        "misplaced element": article("<volume>3</volume><pub-date><year>2020</year></pub-date>"),
        "bad attribute value": article('<pub-date publication-format="print" date-type="pub"><year>2020</year></pub-date>'
                                       '<kwd-group><kwd>a</kwd></kwd-group><title-group/>'),
        "bad MathML": article('<abstract><p><inline-formula><mml:math><mml:mi mathvariant="blood-italic">Q</mml:mi>'
                              "</mml:math></inline-formula></p></abstract>"),
        "element inside ali:license_ref": article(
            "<permissions><license><ali:license_ref><bold>x</bold></ali:license_ref></license></permissions>"),
    }
    for reason, element in rejected.items():
        assert not wrapper.validate(element), reason


def test_wrapper_agrees_with_the_official_schema_on_every_sample(
    wrapper: etree.XMLSchema, official: etree.XMLSchema
) -> None:
    """The chameleon include accepts exactly what the official XSD accepts, without a namespace."""
    verdicts = []
    for path in SAMPLES:
        normalised = jats.normalise(parse_document(path.read_bytes()))
        for tree in (normalised, jats.front_matter(normalised)):
            plain = official.validate(tree)
            assert plain == wrapper.validate(jats.into_namespace(copy.deepcopy(tree))), name(path)
            verdicts.append(plain)
    assert verdicts.count(True) == 17 + 21


def test_jats_refers_to_mathml_only_through_mml_math() -> None:
    """What makes the MathML stand-in sound: no other MathML declaration is reachable from JATS."""
    elements = read_schema(SCHEMAS_DIR / "jats-oai/1.4-publishing-mathml3/JATS-journalpublishing1-4-mathml3-elements.xsd")
    uses = {(a.getparent().tag.split("}")[1], a.attrname, a) for a in elements.xpath("//@*")
            if "mml:" in a or jats.MML_NS in a}
    assert uses == {("import", "namespace", jats.MML_NS), ("element", "ref", "mml:math")}
    assert elements.xpath("//*[local-name() = 'any' or local-name() = 'anyAttribute']") == []


def test_schema_without_mathml_gives_the_wrappers_verdict_and_first_error(wrapper: etree.XMLSchema) -> None:
    """Every sample without MathML, and broken variants of each, get the same verdict and the same first error."""
    stand_in = jats._schema_without_mathml()  # noqa: SLF001 - the optimisation under test
    breakages = (
        lambda a: a.find(f"{{{J}}}front").insert(0, etree.Element(f"{{{J}}}bogus")),
        lambda a: a.find(f"{{{J}}}front").remove(a.find(f"{{{J}}}front/{{{J}}}journal-meta")),
        lambda a: a.set("article-type", ""),
        lambda a: a.find(f".//{{{J}}}article-meta").append(etree.Element("{http://www.w3.org/1998/Math/MathML}math")),
    )
    compared, invalid = 0, 0
    for path in SAMPLES:
        normalised = jats.normalise(parse_document(path.read_bytes()))
        for tree in (normalised, jats.front_matter(normalised)):
            served = jats.into_namespace(copy.deepcopy(tree))
            variants = [served]
            for breakage in breakages:
                variants.append(copy.deepcopy(served))
                breakage(variants[-1])
            for variant in variants:
                if jats._USES_MATHML(variant):  # noqa: SLF001
                    assert any(True for _ in variant.iter(f"{{{jats.MML_NS}}}*"))
                    continue
                expected = None if wrapper.validate(variant) else str(wrapper.error_log[0].message)
                got = None if stand_in.validate(variant) else str(stand_in.error_log[0].message)
                assert got == expected, name(path)
                compared, invalid = compared + 1, invalid + (expected is not None)
    assert compared >= 100 and invalid >= 60


def test_served_bytes_are_those_of_the_namespaced_tree_with_its_verdict() -> None:
    """The fast path (no-namespace tree, official schema, our namespace declared on the root) gives the
    bytes, the verdict and the first error of moving every element into JATS_NS and validating that."""
    breakages = (
        lambda a: a.find("front").insert(0, etree.Element("bogus")),
        lambda a: a.find("front").remove(a.find("front/journal-meta")),
        lambda a: a.set("article-type", ""),
        lambda a: a.find(".//article-meta").append(etree.Element("{http://www.w3.org/1998/Math/MathML}math")),
        lambda a: a.find(".//article-meta").insert(0, etree.Element("article-id")),  # dangling nothing, invalid
        lambda a: a.find(".//article-meta").append(etree.Element("xref", rid="nowhere")),  # dangling IDREF
        # a default namespace inside (no-namespace children below it), xsi attributes: the slow path
        lambda a: a.find(".//title-group").append(etree.fromstring(
            '<x xmlns="http://example.org/x"><y xmlns=""/></x>')),
        lambda a: a.set("{http://www.w3.org/2001/XMLSchema-instance}type", "article-type"),
    )
    compared, fast, invalid = 0, 0, 0
    for path in SAMPLES:
        normalised = jats.normalise(parse_document(path.read_bytes()))
        for tree, idrefs in ((normalised, True), (jats.front_matter(normalised), False)):
            variants = [tree]
            for breakage in breakages:
                variants.append(copy.deepcopy(tree))
                breakage(variants[-1])
            for variant in variants:
                slow = jats.into_namespace(copy.deepcopy(variant))
                error = jats._validate(slow, idrefs=idrefs)  # noqa: SLF001 - what the fast path must agree with
                expected = (None, error) if error else (canonical_bytes(slow), None)
                assert jats._served_bytes(copy.deepcopy(variant), idrefs=idrefs) == expected, name(path)  # noqa: SLF001
                fast += jats._declaring_ours_suffices(canonical_bytes(jats._rooted(copy.deepcopy(variant))))  # noqa: SLF001
                compared, invalid = compared + 1, invalid + (error is not None)
    assert compared >= 350 and invalid >= 250 and fast == compared - 2 * 2 * len(SAMPLES)  # all but the last two


def test_articles_with_mathml_are_validated_against_mathml_3() -> None:
    bad = SEED.read_bytes().replace(
        b"</title-group>",
        b'<trans-title-group xml:lang="ru"><trans-title><inline-formula><mml:math xmlns:mml="http://www.w3.org/1998/Math/MathML">'
        b'<mml:mi mathvariant="blood-italic">Q</mml:mi></mml:math></inline-formula></trans-title></trans-title-group></title-group>', 1)
    assert bad != SEED.read_bytes()
    record = registry.ingest_document(bad)
    assert "jats" not in record.metadata and "mathvariant" in " ".join(record.warnings)
    good = bad.replace(b"blood-italic", b"bold-italic")
    assert "jats" in registry.ingest_document(good).metadata


# --- the seed article ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed() -> Ingested:
    return registry.ingest_document(SEED.read_bytes(), source=SEED.name)


def test_seed_is_valid_jats_14_without_and_with_namespace(seed: Ingested, official: etree.XMLSchema) -> None:
    assert official.validate(parse_document(SEED.read_bytes())), official.error_log
    assert seed.warnings == ()
    root = served(seed)
    assert root.get("dtd-version") == "1.4" and root.get(XML_LANG) == "ru"
    assert [etree.QName(c).localname for c in root] == ["front"]


SEED_TITLE = (
    "The Compromise Partnership: The Association of North East Asia Regional Governments "
    "as an Institute for International Cooperation Development"
)
SEED_AFFS = [
    "Department of Political Science, History and Regional Studies, History Faculty, Irkutsk State University, "
    "1, K. Marx st., Irkutsk, 664003, Russian Federation",
    "Department of World History and International Relations, History Faculty, Irkutsk State University, "
    "1, K. Marx st., Irkutsk, 664003, Russian Federation",
]
SEED_EMAILS = ["oleynikov@isu.ru", "anna_iakimova@bk.ru"]
SEED_KEYWORDS = [
    "institutional development", "region", "integration", "international organization", "NEAR", "Irkutsk region",
    "PRC", "Republic of Korea", "Japan", "Mongolia", "international cooperation",
]
SEED_JOURNAL = "The Bulletin of Irkutsk State University. Series Political Science and Religion Studies"


def test_seed_dublin_core_has_every_fact_of_the_record(seed: Ingested) -> None:
    assert dc_values(seed, "title") == [(SEED_TITLE, "en")]
    # each author with their affiliation and e-mail (see oai/formats/jats_crosswalk.py)
    assert texts(seed, "creator") == [
        f"Oleynikov, Ilya Vasilyevich; {SEED_AFFS[0]}; {SEED_EMAILS[0]}",
        f"Yakimova, Anna Alexeevna; {SEED_AFFS[1]}; {SEED_EMAILS[1]}",
    ]
    oai_dc = seed.metadata["oai_dc"].decode()
    assert all(fact in oai_dc for fact in SEED_AFFS + SEED_EMAILS)
    assert dc_values(seed, "subject") == [(k, "en") for k in SEED_KEYWORDS]
    [(abstract, lang)] = dc_values(seed, "description")
    assert lang == "en" and abstract.startswith("The paper presents the analysis of the activities of the Siberian")
    assert abstract.endswith("which sporadically develops into a pragmatic cooperation filled with real economic content.")
    assert texts(seed, "publisher") == ["Irkutsk State University"]
    assert texts(seed, "date") == ["2020"]
    assert texts(seed, "type") == ["Text", "info:eu-repo/semantics/article", "research-article"]
    assert texts(seed, "identifier") == ["https://doi.org/10.26516/2073-3380.2020.32.44"]
    assert texts(seed, "source") == [f"{SEED_JOURNAL}; ISSN 2073-3380 (print); Vol. 32; pp. 44-51"]
    assert texts(seed, "language") == ["ru"]


def test_seed_jats_has_every_fact_of_the_record(seed: Ingested) -> None:
    root = served(seed)
    meta = root.find("j:front/j:article-meta", NS)
    assert root.findtext("j:front/j:journal-meta/j:journal-title-group/j:journal-title", namespaces=NS) == SEED_JOURNAL
    issn = root.find("j:front/j:journal-meta/j:issn", NS)
    assert (issn.text, issn.get("pub-type"), issn.get("publication-format")) == ("2073-3380", "ppub", "print")
    title = meta.find("j:title-group/j:article-title", NS)
    assert (title.text, title.get(XML_LANG)) == (SEED_TITLE, "en")
    names = [(c.findtext("j:name/j:surname", namespaces=NS), c.findtext("j:name/j:given-names", namespaces=NS))
             for c in meta.findall("j:contrib-group/j:contrib", NS)]
    assert names == [("Oleynikov", "Ilya Vasilyevich"), ("Yakimova", "Anna Alexeevna")]
    assert [e.text for e in meta.iterfind(".//j:email", NS)] == SEED_EMAILS
    affs = ["".join(aff.itertext()) for aff in meta.iterfind("j:contrib-group/j:aff", NS)]
    assert affs == SEED_AFFS
    assert meta.findtext("j:article-id[@pub-id-type='doi']", namespaces=NS) == "10.26516/2073-3380.2020.32.44"
    assert [meta.findtext(f"j:{e}", namespaces=NS) for e in ("volume", "fpage", "lpage")] == ["32", "44", "51"]
    assert meta.findtext("j:pub-date/j:year", namespaces=NS) == "2020"
    assert [k.text for k in meta.iterfind("j:kwd-group[@xml:lang='en']/j:kwd", NS)] == SEED_KEYWORDS
    assert meta.find("j:abstract", NS).get(XML_LANG) == "en"
    assert root.findtext("j:front/j:journal-meta/j:publisher/j:publisher-name", namespaces=NS) == "Irkutsk State University"


def test_seed_citation(seed: Ingested) -> None:
    c = seed.citation
    assert (c.title, c.authors) == (SEED_TITLE, ("Oleynikov, Ilya Vasilyevich", "Yakimova, Anna Alexeevna"))
    assert (c.journal_title, c.issn, c.volume, c.issue) == (SEED_JOURNAL, ("2073-3380",), "32", None)
    assert (c.firstpage, c.lastpage, c.publication_date) == ("44", "51", "2020")
    assert (c.doi, c.language, c.pdf_url) == ("10.26516/2073-3380.2020.32.44", "ru", None)
    assert list(c.keywords) == SEED_KEYWORDS and c.abstract.startswith("The paper presents")


def test_seed_reindented_or_namespaced_as_pmc_gives_the_same_bytes(seed: Ingested) -> None:
    compact = etree.tostring(jats.normalise(parse_document(SEED.read_bytes())))
    doctype = b'<!DOCTYPE article PUBLIC "-//NLM//DTD JATS (Z39.96) Journal Publishing DTD v1.4//EN" "JATS.dtd">'
    assert registry.ingest_document(b"<?xml version='1.0'?>" + doctype + compact) == seed
    for namespace in (b"https://jats.nlm.nih.gov/ns/archiving/1.3/",  # PMC's
                      b"https://jats.nlm.nih.gov/publishing/1.2/",  # Janeway's OAI jats (refused, an outside audit)
                      b"http://specifications.silverchair.com/xsd/1/42/SCJATS-journalpublishing-mathml3.xsd"):
        namespaced = compact.replace(b"<article ", b'<article xmlns="' + namespace + b'" ', 1)
        assert registry.ingest_document(namespaced) == seed, namespace
    erudit = compact.replace(b"<article ", b'<article xmlns="http://www.erudit.org/xsd/article" ', 1)
    with pytest.raises(FormatError, match="not a JATS article"):  # another vocabulary's <article>
        registry.ingest_document(erudit)


# --- other articles, field by field -------------------------------------------------------


def test_scielo_translations_keep_every_language(ingested: dict[str, Ingested]) -> None:
    record = ingested["scielo/0034-8910-rsp-48-2-0206_en-pt-trans.xml"]
    assert dc_values(record, "title") == [
        ("HIV/AIDS knowledge among men who have sex with men: applying the item response theory", "en"),
        ("Conhecimento de HIV/Aids entre homens que fazem sexo com homens: teoria de resposta ao item", "pt"),
    ]
    descriptions = dc_values(record, "description")
    assert [lang for _text, lang in descriptions] == ["en", "pt"]
    assert descriptions[0][0].startswith("OBJECTIVE\n\nTo evaluate the level of HIV/AIDS knowledge")
    assert descriptions[1][0].startswith("OBJETIVO\n\nAvaliar o nível de conhecimento")
    subjects = dc_values(record, "subject")
    assert ("Homosexuality, Male", "en") in subjects and ("Homossexualidade Masculina", "pt") in subjects
    assert texts(record, "source") == ["Revista de Saúde Pública; ISSN 0034-8910 (print); ISSN 1518-8787 (online); Vol. 48; No. 2; pp. 206-215"]
    assert texts(record, "creator")[1] == (
        "Batista, José Rodrigues; Grupo de Avaliação e Medidas Educacionais. Faculdade de Educação. "
        "Universidade Federal de Minas Gerais. Belo Horizonte, MG, Brasil"
    )
    assert texts(record, "date") == ["2014-04"] and texts(record, "language") == ["en"]
    assert texts(record, "rights") == ["http://creativecommons.org/licenses/by-nc/3.0/", OPEN]


def test_scielo_translation_sub_article_gives_the_english_title(ingested: dict[str, Ingested]) -> None:
    record = ingested["scielo/0034-8910-rsp-48-2-0322_es.xml"]
    assert dc_values(record, "title") == [
        ("Brote de faringo-amigdalítis por estreptococo β-hemolítico grupo A", "es"),
        ("Group A β-hemolytic streptococcal pharyngotonsillitis outbreak", "en"),
    ]
    assert {lang for _text, lang in dc_values(record, "subject")} == {"es", "en"}
    assert texts(record, "language") == ["es"] and texts(record, "type")[2] == "rapid-communication"


def test_orcids_and_emails_in_dc_creators_and_in_jats(ingested: dict[str, Ingested]) -> None:
    record = ingested["scielo/2236-8906-hoehnea-49-e762021_pt-orcid.xml"]
    creators = texts(record, "creator")
    assert [c.split(";")[0] for c in creators] == ["Santos, Igor Soares dos", "Silva, Marcos José da"]
    # the bare iDs of the file become ORCID URLs, last; Santos alone points to the <corresp> with the e-mail
    assert creators[0].endswith("; igorsoares@discente.ufg.br; https://orcid.org/0000-0002-6067-8409")
    assert creators[1].endswith("Brasil; https://orcid.org/0000-0001-9717-5701")
    orcids = [e.text for e in served(record).iterfind(".//j:contrib-id[@contrib-id-type='orcid']", NS)]
    assert orcids == ["0000-0002-6067-8409", "0000-0001-9717-5701"]  # the jats format keeps them as published
    assert dc_values(record, "title")[1] == (
        "Campylocentrum Benth. (Orchidaceae, Epidendroideae) in the Federal District and Goiás State, Brazil", "en")
    assert texts(record, "relation") == ["https://doi.org/10.1590/2236-8906-76/2021"]
    assert texts(record, "source") == ["Hoehnea; ISSN 0073-2877 (print); ISSN 2236-8906 (online); Vol. 49; Article e762021"]
    assert texts(record, "date") == ["2022-11-28"]


def test_elife_article_without_jats_still_has_full_dublin_core(ingested: dict[str, Ingested]) -> None:
    record = ingested["elife/elife-00666.xml"]
    assert texts(record, "title") == ["The eLife research article"]
    assert texts(record, "creator")[0] == (
        "Harrison, Melissa, Jnr; Department of Production, eLife, Cambridge, United Kingdom; "
        "m.harrison@elifesciences.org; https://orcid.org/0000-0003-3523-4408"
    )
    assert texts(record, "creator")[2].startswith("eLife Editorial Production Group")  # a collab
    assert "Collings, Andrew" in texts(record, "contributor")  # (and the group authors' members: below)
    assert texts(record, "date") == ["2016-04-25"]  # electronic publication, not the update or collection
    assert texts(record, "identifier") == ["https://doi.org/10.7554/eLife.00666"]
    assert texts(record, "source") == ["eLife; ISSN 2050-084X (online); Vol. 5; Article e00666"]
    assert texts(record, "rights") == ["© 2016, Harrison et al", "http://creativecommons.org/licenses/by/4.0/", OPEN]
    assert texts(record, "language") == ["en"]  # JATS default, no xml:lang in the file
    assert record.citation.pdf_url is None  # self-uri "elife-00666.pdf" is relative


def test_elife_editorial(ingested: dict[str, Ingested]) -> None:
    record = ingested["elife/elife00270_editorial.xml"]
    assert texts(record, "title") == ["Launching eLife, Part 1"]
    assert [c for c in texts(record, "creator")] == [
        "Schekman, Randy; editorial@elifesciences.org", "Patterson, Mark", "Watt, Fiona", "Weigel, Detlef"]
    assert texts(record, "subject") == ["publishing", "peer review", "open access", "eLife"]
    assert texts(record, "type") == ["Text", "info:eu-repo/semantics/article", "editorial"]


def test_plos_article(ingested: dict[str, Ingested]) -> None:
    record = ingested["plos/journal.pcbi.1004692.xml"]
    assert texts(record, "title") == ["Ensemble Tractography"]
    creators = texts(record, "creator")
    assert [c.split(";")[0] for c in creators] == [
        "Takemura, Hiromasa", "Caiafa, Cesar F.", "Wandell, Brian A.", "Pestilli, Franco"]
    assert creators[2] == "Wandell, Brian A.; Department of Psychology, Stanford University, Stanford, California, United States of America"
    assert creators[1].endswith("Argentina; https://orcid.org/0000-0001-5437-6095")  # http://orcid.org/... in the file
    # "* E-mail: htakemur@... (HT); franpest@... (FP)": one note, two addresses, whose is whose only in prose
    assert not any("@" in creator for creator in creators)
    assert texts(record, "contributor") == ["Jbabdi, Saad"]  # the academic editor
    assert texts(record, "publisher") == ["Public Library of Science"]
    assert texts(record, "source") == [
        "PLOS Computational Biology; ISSN 1553-734X (print); ISSN 1553-7358 (online); Vol. 12; No. 2; Article e1004692"]
    assert texts(record, "date") == ["2016-02-04"]
    assert texts(record, "description")[0].startswith("Tractography uses diffusion MRI")
    c = record.citation
    assert (c.doi, c.volume, c.issue, c.issn) == ("10.1371/journal.pcbi.1004692", "12", "2", ("1553-734X", "1553-7358"))
    assert len(served(record).find("j:body", NS)) > 0


# --- front matter, fallbacks, odd input ---------------------------------------------------


def test_front_matter_only_when_full_text_is_withheld() -> None:
    for sample in ("plos/journal.pone.0119074_math.xml", "scielo/MNHpJQpnjvSX6pkKCg37yTJ_pt-letter-subarticles.xml",
                   "elife/elife00270_editorial.xml"):
        record = registry.ingest_document((JATS_DIR / sample).read_bytes(), full_text=False)
        root = served(record)
        assert [etree.QName(c).localname for c in root] == ["front"], sample
        assert root.find(".//j:body", NS) is None and root.find(".//j:sub-article", NS) is None
        assert record.warnings == ()
        full = registry.ingest_document((JATS_DIR / sample).read_bytes())
        assert full.metadata["oai_dc"] == record.metadata["oai_dc"]  # same description either way
    # the editorial's authors point to competing-interest footnotes in <back>: those links go
    editorial = served(registry.ingest_document((JATS_DIR / "elife/elife00270_editorial.xml").read_bytes(), full_text=False))
    assert editorial.find(".//j:xref", NS) is None
    assert jats.validate(editorial) is None


def test_dangling_references_are_refused_or_unwrapped() -> None:
    tree = jats.normalise(parse_document(SEED.read_bytes()))
    tree.find(".//article-title").append(etree.fromstring('<xref ref-type="fn" rid="fn1">*</xref>'))
    assert "IDREF 'fn1' has no matching ID" in jats.validate(jats.into_namespace(copy.deepcopy(tree)))
    tree.append(etree.fromstring('<back><fn-group><fn id="fn1"><p>Note</p></fn></fn-group></back>'))
    data = etree.tostring(tree)
    full = registry.ingest_document(data)
    assert served(full).find(".//j:article-title/j:xref", NS) is not None
    front = served(registry.ingest_document(data, full_text=False))
    title = front.find(".//j:article-title", NS)
    assert len(title) == 0 and title.text == SEED_TITLE + "*"


def test_contrib_ids_move_to_the_start_of_their_contrib() -> None:
    record = registry.ingest_document((JATS_DIR / "elife/elife07586_correction.xml").read_bytes())
    assert record.warnings == ()
    [contrib] = [c for c in served(record).iterfind(".//j:contrib", NS) if c.find("j:contrib-id", NS) is not None]
    assert [etree.QName(c).localname for c in contrib][:2] == ["contrib-id", "name"]
    assert contrib[0].text == "http://orcid.org/0000-0002-0375-2764"
    # every contrib of the kitchen sink (whose front matter fails for other reasons), ids in their order
    original = parse_document((JATS_DIR / "elife/elife-kitchen-sink.xml").read_bytes())
    misplaced = [c for c in original.iter("contrib") if c.find("contrib-id") is not None and c[0].tag != "contrib-id"]
    assert len(misplaced) == 1
    article = jats.normalise(original)
    for contrib in article.iter("contrib"):
        tags = [child.tag for child in contrib]
        assert tags[: tags.count("contrib-id")] == ["contrib-id"] * tags.count("contrib-id")
    assert [c.text for c in original.iter("contrib-id")] == [c.text for c in article.iter("contrib-id")]
    assert len(list(original.iter())) == len(list(article.iter()))  # moved, nothing dropped


def test_reordering_moves_group_information_after_the_contribs_never_between() -> None:
    group = (
        "<contrib-group><role>Writing group</role><contrib><name><surname>A</surname></name>"
        "<contrib-id contrib-id-type='orcid'>0000-0002-1825-0097</contrib-id></contrib>"
        "<contrib><name><surname>B</surname></name></contrib><aff>X</aff></contrib-group>"
    )
    interleaved = (
        "<contrib-group><role>R</role><contrib><name><surname>C</surname></name></contrib>"
        "<on-behalf-of>G</on-behalf-of><contrib><name><surname>D</surname></name></contrib></contrib-group>"
    )
    tree = jats.normalise(etree.fromstring(
        f"<article><front><article-meta>{group}{interleaved}</article-meta></front></article>"))
    first, second = tree.iter("contrib-group")
    assert [c.tag for c in first] == ["contrib", "contrib", "role", "aff"]
    assert [c.tag for c in first[0]] == ["contrib-id", "name"]
    assert [c.tag for c in second] == ["role", "contrib", "on-behalf-of", "contrib"]  # left as published


def test_emails_that_are_clearly_an_authors_go_into_their_creator() -> None:
    def creators(contribs: str, notes: str = "") -> list[str]:
        data = (
            "<article><front><journal-meta><journal-id>j</journal-id></journal-meta><article-meta>"
            f"<title-group><article-title>T</article-title></title-group><contrib-group>{contribs}</contrib-group>"
            f"<author-notes>{notes}</author-notes></article-meta></front></article>"
        )
        return texts(registry.ingest_document(data.encode()), "creator")

    def contrib(surname: str, inside: str = "") -> str:
        return f'<contrib contrib-type="author"><name><surname>{surname}</surname></name>{inside}</contrib>'

    one = '<corresp id="c1">Correspondence: <email>a@x.org</email></corresp>'
    assert creators(contrib("A", '<xref ref-type="corresp" rid="c1">*</xref>') + contrib("B"), one) == ["A; a@x.org", "B"]
    assert creators(contrib("A", '<xref ref-type="corresp" rid="c1"/>') + contrib("B", '<xref ref-type="corresp" rid="c1"/>'),
                    one) == ["A", "B"]  # shared: nobody's in particular
    two = '<corresp id="c1"><email>a@x.org</email> (AA); <email>b@y.org</email> (BB)</corresp>'
    assert creators(contrib("A", '<xref ref-type="corresp" rid="c1"/>'), two) == ["A"]
    assert creators(contrib("A", "<address><email>a@x.org</email></address>"), one) == ["A; a@x.org"]
    assert creators(contrib("A", "<aff>Univ <email>mailto:a@x.org</email></aff>"
                                 '<contrib-id contrib-id-type="orcid">https://orcid.org/0000-0002-1825-009x</contrib-id>')) == [
        "A; Univ; a@x.org; https://orcid.org/0000-0002-1825-009X"]
    assert creators(contrib("A", "<email>a@x.org</email>"), one) == ["A; a@x.org"]  # the note is not A's
    assert creators(contrib("A", '<contrib-id contrib-id-type="orcid">not an iD</contrib-id>')) == ["A"]


def test_ingest_and_serve_leave_the_callers_tree_alone() -> None:
    """Only registry.ingest_document, which parsed the tree itself, lets the format reuse it."""
    data = (JATS_DIR / "elife/elife07586_correction.xml").read_bytes()
    root = parse_document(data)
    before = etree.tostring(root)
    assert jats.FORMAT.ingest(root) == registry.ingest_document(data)
    assert etree.tostring(root) == before
    article = jats.normalise(root)
    normalised = etree.tostring(article)
    served, _warnings = jats.serve(article, full_text=True)
    assert etree.tostring(article) == normalised and served is not None
    registry.preload()  # compiles nothing twice


def test_unknown_dtd_version_is_left_out_with_a_warning() -> None:
    data = SEED.read_bytes().replace(b'dtd-version="1.4"', b'dtd-version="2.3"')
    record = registry.ingest_document(data)
    assert served(record).get("dtd-version") is None
    assert record.warnings == ("jats: dtd-version '2.3' is not a JATS 1.4 value; left out of the served copy",)


def test_article_that_cannot_be_described_is_refused() -> None:
    with pytest.raises(FormatError, match="without <front>"):
        registry.ingest_document(b"<article><body><p>x</p></body></article>")
    with pytest.raises(FormatError, match="root element is front"):
        registry.ingest_document(b"<front/>")
    assert not jats.FORMAT.recognise(etree.fromstring(b'<article xmlns="http://www.w3.org/1999/xhtml"/>'))
    assert jats.FORMAT.recognise(etree.fromstring(b'<article xmlns="http://dtd.nlm.nih.gov/2.0/xsd/archivearticle"/>'))


def test_format_attributes() -> None:
    fmt = registry.get("jats")
    assert fmt is jats.FORMAT
    assert (fmt.namespace, fmt.root_tag) == (J, f"{{{J}}}article")
    assert fmt.schema_url is None and fmt.schema_relpath == "jats-oai/jats-publishing-1.4-oai.xsd"
    assert (SCHEMAS_DIR / fmt.schema_relpath).is_file()


# --- audit of the crosswalk: nothing of the article lost ----------------------------------


def inline(meta: str, lang: str = "en") -> Ingested:
    """A small article: `meta` inside <article-meta>, after a title unless it has its own title-group."""
    title = "" if "<title-group>" in meta else "<title-group><article-title>T</article-title></title-group>"
    return registry.ingest_document(
        f'<article xmlns:xlink="http://www.w3.org/1999/xlink" xmlns:mml="http://www.w3.org/1998/Math/MathML" '
        f'xml:lang="{lang}"><front><journal-meta><journal-id>j</journal-id></journal-meta>'
        f"<article-meta>{title}{meta}</article-meta></front></article>".encode()
    )


def author(name: str, inside: str = "") -> str:
    return f'<contrib contrib-type="author">{name}{inside}</contrib>'


def test_two_authors_with_the_same_name_are_two_creators() -> None:
    wang = author("<name><surname>Wang</surname><given-names>Wei</given-names></name>", '<xref ref-type="aff" rid="a1"/>')
    li = author("<name><surname>Li</surname><given-names>Na</given-names></name>", '<xref ref-type="aff" rid="a1"/>')
    record = inline(f'<contrib-group>{wang}{li}{wang}<aff id="a1">Peking University</aff></contrib-group>')
    assert texts(record, "creator") == ["Wang, Wei; Peking University", "Li, Na; Peking University",
                                        "Wang, Wei; Peking University"]
    assert record.citation.authors == ("Wang, Wei", "Li, Na", "Wang, Wei")


def test_aff_alternatives_give_each_of_their_affiliations() -> None:
    alternatives = (
        '<aff-alternatives id="aff1"><aff xml:lang="ru"><institution>Иркутский университет</institution>, '
        '<city>Иркутск</city></aff><aff xml:lang="en"><institution>Irkutsk University</institution>, '
        "<city>Irkutsk</city></aff><aff>Irkutsk University, Irkutsk</aff></aff-alternatives>"
    )
    pointed = author("<name><surname>Ivanov</surname></name>", '<xref ref-type="aff" rid="aff1"/>')
    by_rid = '<contrib contrib-type="author" rid="aff1"><name><surname>Petrov</surname></name></contrib>'
    assert texts(inline(f"<contrib-group>{pointed}{by_rid}{alternatives}</contrib-group>"), "creator") == [
        "Ivanov; Иркутский университет, Иркутск; Irkutsk University, Irkutsk",
        "Petrov; Иркутский университет, Иркутск; Irkutsk University, Irkutsk",
    ]
    # found by the fallbacks: inside the contrib, or in its group with nobody pointing to it
    own = author("<name><surname>Sidorov</surname></name>", alternatives.replace(' id="aff1"', ""))
    assert texts(inline(f"<contrib-group>{own}</contrib-group>"), "creator") == [
        "Sidorov; Иркутский университет, Иркутск; Irkutsk University, Irkutsk"]
    group = author("<name><surname>Sidorov</surname></name>") + alternatives.replace(' id="aff1"', "")
    assert texts(inline(f"<contrib-group>{group}</contrib-group>"), "creator") == [
        "Sidorov; Иркутский университет, Иркутск; Irkutsk University, Irkutsk"]


def test_name_alternatives_keep_every_form_the_first_alone_first() -> None:
    alternatives = (
        '<name-alternatives><name xml:lang="ru"><surname>Олейников</surname><given-names>Илья</given-names></name>'
        '<name xml:lang="en"><surname>Oleynikov</surname><given-names>Ilya</given-names></name>'
        "<string-name>Ilya Oleynikov</string-name>"
        '<name xml:lang="en"><surname>Oleynikov</surname><given-names>Ilya</given-names></name></name-alternatives>'
    )
    editor = alternatives.replace("Олейников", "Якимова").replace("Oleynikov", "Yakimova")
    group = (f'<contrib-group>{author(alternatives, "<aff>Irkutsk State University</aff>")}'
             f'<contrib contrib-type="editor">{editor}<aff>Irkutsk</aff></contrib></contrib-group>')
    record = inline(group, lang="ru")
    # (review) a form with the same words as one before ("Ilya Oleynikov", OJS's display name) adds nothing
    assert texts(record, "creator") == ["Олейников, Илья; Oleynikov, Ilya; Irkutsk State University"]
    assert texts(record, "contributor") == ["Якимова, Илья; Yakimova, Ilya"]
    assert record.citation.authors == ("Олейников, Илья",)
    # an article in English names them in its language first, on its landing page too (an outside audit found
    # a page with English and Cyrillic authors); an article in neither language, by the first <name>
    english = inline(group, lang="en")
    assert texts(english, "creator") == ["Oleynikov, Ilya; Олейников, Илья; Irkutsk State University"]
    assert texts(english, "contributor") == ["Yakimova, Ilya; Якимова, Илья"]
    assert english.citation.authors == ("Oleynikov, Ilya",)
    assert inline(group, lang="de").citation.authors == ("Олейников, Илья",)
    # a <string-name> in the article's language comes before a <name> in another
    belarusian = ('<name-alternatives><string-name xml:lang="be">Алесь Лукашэвіч</string-name><name xml:lang="en">'
                  "<surname>Lukashevich</surname><given-names>Ales</given-names></name></name-alternatives>")
    record = inline(f"<contrib-group>{author(belarusian)}</contrib-group>", lang="be")
    assert texts(record, "creator") == ["Алесь Лукашэвіч; Lukashevich, Ales"]
    # a <name> comes first even after a <string-name>
    reordered = "<name-alternatives><string-name>I. Oleynikov</string-name><name><surname>Oleynikov</surname></name>"
    assert texts(inline(f"<contrib-group>{author(reordered + '</name-alternatives>')}</contrib-group>"),
                 "creator") == ["Oleynikov; I. Oleynikov"]


def test_an_author_with_given_names_only_is_named_by_them() -> None:
    record = inline(
        "<contrib-group>"
        + author("<name><given-names>Sukarno</given-names></name>", '<xref ref-type="aff" rid="a1"/>')
        + author("<string-name><given-names>Plato</given-names></string-name>")
        + author("<name-alternatives><name><given-names>Сукарно</given-names></name>"
                 "<name><given-names>Sukarno</given-names></name></name-alternatives>")
        + author("<string-name><given-names>Jane</given-names> <surname>Roe</surname></string-name>")
        + '<aff id="a1">Universitas Indonesia</aff></contrib-group>'
    )
    assert texts(record, "creator") == ["Sukarno; Universitas Indonesia", "Plato", "Сукарно; Sukarno", "Roe, Jane"]
    assert record.citation.authors == ("Sukarno", "Plato", "Сукарно", "Roe, Jane")


def test_tex_math_is_left_out_only_beside_another_form_of_the_formula() -> None:
    mathml = '<mml:math><mml:msup><mml:mi>y</mml:mi><mml:mn>3</mml:mn></mml:msup></mml:math>'
    title = (
        r"<title-group><article-title>Bounds for <inline-formula><tex-math>\alpha > \beta_2</tex-math>"
        r"</inline-formula> and <inline-formula><alternatives><tex-math>y^3</tex-math>"
        f"{mathml}</alternatives></inline-formula></article-title></title-group>"
        r"<abstract><p>Let <inline-formula><alternatives><tex-math>\pi</tex-math></alternatives></inline-formula>"
        r" be.</p></abstract>"
    )
    record = inline(title)
    assert texts(record, "title") == [r"Bounds for \alpha > \beta_2 and y³"]  # MathML's superscript (it was "y3")
    assert texts(record, "description") == [r"Let \pi be."]  # alone in its <alternatives>: kept
    # (review) beside a graphic the TeX is still the only text; a whole LaTeX file (PMC's form) gives its body
    record = inline(
        r"<abstract><p>Let <inline-formula><alternatives><tex-math>\pi</tex-math><inline-graphic "
        r'xlink:href="pi.gif"/></alternatives></inline-formula> and <inline-formula><tex-math>'
        r"\documentclass[12pt]{minimal}\usepackage{amsmath}\begin{document}$$\sigma^2$$\end{document}"
        r"</tex-math></inline-formula> be.</p></abstract>")
    assert texts(record, "description") == [r"Let \pi and \sigma^2 be."]


def test_inline_markup_keeps_word_breaks_and_scripts() -> None:
    record = inline(
        "<title-group><article-title>CO<sub>2</sub> at 10<sup>\u221215</sup>M, x<sup>2</sup>, "
        "x<sup>a+1</sup>, y<sub>max</sub> and 10<sup>6</sup><break/>Second line</article-title></title-group>"
        "<abstract><p>First para.<list><list-item><p>Item one</p></list-item><list-item><p>Item two</p>"
        "</list-item></list>, then <disp-quote><p>a quote</p></disp-quote>.</p>"
        "<p>Potency 10<sup>-15</sup>M; H<sub>2</sub>O<sub>(l)</sub>.</p></abstract>"
        "<kwd-group><kwd>CO<sub>2</sub></kwd><kwd>x<sup>n</sup> <bold>bold</bold></kwd><kwd>38<sup>o</sup>C"
        "</kwd></kwd-group>"
    )
    # (review) what has no Unicode form is written as it is: "x^(a+1)" and "38^(o)C" read worse than "xa+1", "38oC"
    assert texts(record, "title") == ["CO₂ at 10⁻¹⁵M, x², xa+1, ymax and 10⁶ Second line"]
    assert texts(record, "description") == [
        "First para. Item one Item two, then a quote.\n\nPotency 10⁻¹⁵M; H₂O(l)."]  # no subscript l: as is
    assert texts(record, "subject") == ["CO₂", "xⁿ bold", "38oC"]


def test_text_written_straight_into_an_abstract_or_section_is_a_paragraph() -> None:
    # (outside audit) NLM 2.x exports write the abstract's text in <abstract> itself: it gave "We measured\n\nin vivo"
    record = inline("<abstract>We measured <italic>in vivo</italic> uptake of CO<sub>2</sub> in 12 plants"
                    "<xref ref-type='fn' rid='f1'>*</xref> and found nothing.</abstract>")
    assert texts(record, "description") == ["We measured in vivo uptake of CO₂ in 12 plants and found nothing."]
    record = inline("<abstract><label>A</label> Lead <bold>in</bold>.<p>Para one.</p>Between <italic>x</italic>."
                    "<sec><title>Methods</title>We used <italic>y</italic>.<p>Para two.</p></sec>After.</abstract>")
    assert texts(record, "description") == [
        "Lead in.\n\nPara one.\n\nBetween x.\n\nMethods\n\nWe used y.\n\nPara two.\n\nAfter."]


def test_an_affiliation_of_the_article_meta_is_every_unaffiliated_authors() -> None:
    record = inline(
        "<contrib-group>"
        + author("<name><surname>Roe</surname></name>")
        + author("<name><surname>Doe</surname></name>", '<xref ref-type="aff" rid="a2"/>')
        + author("<name><surname>Poe</surname></name>", "<aff>Own University</aff>")
        + "</contrib-group><contrib-group>"
        + '<contrib contrib-type="editor"><name><surname>Ed</surname></name></contrib>'
        + "</contrib-group>"
        '<aff><institution-wrap><institution-id institution-id-type="ror">https://ror.org/02mhbdp94</institution-id>'
        "<institution>University of Somewhere</institution></institution-wrap>, <country>Germany</country></aff>"
        '<aff-alternatives><aff xml:lang="de">Universität Irgendwo</aff><aff xml:lang="en">University of Somewhere, '
        'Germany</aff></aff-alternatives><aff id="a2">Pointed-to Institute</aff>'
    )
    # (review) some authors point to their affiliation: one who points nowhere gets none, not a guess
    assert texts(record, "creator") == ["Roe", "Doe; Pointed-to Institute", "Poe; Own University"]
    assert texts(record, "contributor") == ["Ed"]
    nobody_points = inline(
        "<contrib-group>" + author("<name><surname>Roe</surname></name>")
        + author("<name><surname>Poe</surname></name>", "<aff>Own University</aff>") + "</contrib-group>"
        '<aff><institution-wrap><institution-id institution-id-type="ror">https://ror.org/02mhbdp94</institution-id>'
        "<institution>University of Somewhere</institution></institution-wrap>, <country>Germany</country></aff>"
        '<aff-alternatives><aff xml:lang="de">Universität Irgendwo</aff><aff xml:lang="en">University of Somewhere, '
        'Germany</aff></aff-alternatives>'
    )
    assert texts(nobody_points, "creator") == [
        "Roe; University of Somewhere, Germany; Universität Irgendwo", "Poe; Own University"]


def test_plos_info_doi_relations_and_a_licence_linked_only_from_its_prose() -> None:
    record = inline(
        '<permissions><license><license-p>Open access under the <ext-link ext-link-type="uri" '
        'xlink:href="https://creativecommons.org/licenses/by/4.0/">CC BY licence</ext-link>.</license-p></license>'
        "</permissions>"
        '<related-article related-article-type="corrected-article" ext-link-type="uri" '
        'xlink:href="info:doi/10.1371/journal.pone.0103411"/>'
        '<related-article related-article-type="companion"><ext-link ext-link-type="uri" '
        'xlink:href="INFO:DOI/10.1371/journal.pmed.0020312">the article</ext-link></related-article>'
        '<related-article related-article-type="companion" xlink:href="https://doi.org/10.9999/other"/>'
        '<related-article related-article-type="companion" xlink:href="info:pmid/12345"/>'
    )
    assert texts(record, "relation") == [
        "https://doi.org/10.1371/journal.pone.0103411", "https://doi.org/10.1371/journal.pmed.0020312",
        "https://doi.org/10.9999/other"]
    assert dc_values(record, "rights") == [("Open access under the CC BY licence.", "en"),
                                           ("https://creativecommons.org/licenses/by/4.0/", None), (OPEN, None)]
    # a licence with its own URL gives that URL, not its prose or its links, as before
    linked = inline('<permissions><license xlink:href="https://creativecommons.org/licenses/by/4.0/">'
                    '<license-p>See <ext-link xlink:href="https://example.org/">here</ext-link>.</license-p>'
                    "</license></permissions>")
    assert texts(linked, "rights") == ["https://creativecommons.org/licenses/by/4.0/", OPEN]


def test_a_translation_without_its_own_language_gets_none_not_the_articles() -> None:
    record = inline(
        "<title-group><article-title>Deutscher Titel</article-title>"
        "<trans-title-group><trans-title>English title</trans-title><trans-subtitle>A study</trans-subtitle>"
        '</trans-title-group><trans-title-group xml:lang="FR"><trans-title>Titre</trans-title></trans-title-group>'
        '<trans-title-group><trans-title xml:lang="es">Título</trans-title></trans-title-group></title-group>'
        '<abstract><p>Deutsch.</p></abstract><trans-abstract><p>English.</p></trans-abstract>'
        '<trans-abstract xml:lang="fr"><p>Français.</p></trans-abstract>',
        lang="de",
    )
    assert dc_values(record, "title") == [("Deutscher Titel", "de"), ("English title: A study", None),
                                          ("Titre", "fr"), ("Título", "es")]
    assert dc_values(record, "description") == [("Deutsch.", "de"), ("English.", None), ("Français.", "fr")]


def test_a_language_that_is_no_language_tag_loses_its_label_not_the_article() -> None:
    """An outside audit: one trans-abstract with xml:lang="en US" refused the whole article ("crosswalk JATS
    -> oai_dc produced invalid oai_dc"), though only the label is wrong. The text is kept without one; the
    JATS itself is not valid (xs:language), so only oai_dc is served, with the reason."""
    record = inline('<abstract><p>Русский.</p></abstract><trans-abstract xml:lang="en US"><p>English.</p>'
                    '</trans-abstract><kwd-group xml:lang="r u"><kwd>слово</kwd></kwd-group>', lang="ru")
    assert dc_values(record, "description") == [("Русский.", "ru"), ("English.", None)]
    assert dc_values(record, "subject") == [("слово", None)]
    assert "jats" not in record.metadata and any("not valid" in w for w in record.warnings)
    broken = inline("<abstract><p>Text.</p></abstract>", lang="english please")  # the article's own language
    assert dc_values(broken, "title") == [("T", None)] and dc_values(broken, "language") == []


def test_a_language_named_in_words_is_no_language_tag() -> None:
    """An outside audit: xml:lang="English" (a tag's form, 1-8 letters, but a name) became xml:lang="english" and
    dc:language "english", where the README says an unknown language gives none. A language is 2 or 3 letters."""
    record = inline('<abstract><p>Text.</p></abstract><trans-abstract xml:lang="Russian"><p>Текст.</p>'
                    '</trans-abstract>', lang="English")
    assert dc_values(record, "language") == [] and dc_values(record, "title") == [("T", None)]
    assert dc_values(record, "description") == [("Text.", None), ("Текст.", None)]
    assert [jats_crosswalk.normal_lang(v) for v in ("eng", "haw", "x-klingon", "EN_us", "qaa", "abcd")] == [
        "en", "haw", "x-klingon", "en-US", "qaa", None]


OPEN = "info:eu-repo/semantics/openAccess"


def test_open_access_is_said_the_way_openaire_asks_where_the_article_says_it() -> None:
    """OpenAIRE's guidelines for literature repositories make the access level mandatory (dc:rights
    info:eu-repo/semantics/openAccess), and Zenodo's and other repositories' oai_dc carry it; an outside audit
    found it never emitted. Said where the article says so, never guessed from silence."""
    def rights(permissions: str) -> list[str]:
        return texts(inline(f"<permissions>{permissions}</permissions>"), "rights")

    assert rights('<license xlink:href="https://creativecommons.org/publicdomain/zero/1.0/"/>')[-1] == OPEN
    assert rights('<license license-type="open-access"><license-p>Free.</license-p></license>')[-1] == OPEN
    assert rights("<license><license-p>This is an open-access article distributed under the terms of the "
                  "Creative Commons Attribution License.</license-p></license>")[-1] == OPEN  # older PLOS
    assert rights('<ali:free_to_read xmlns:ali="http://www.niso.org/schemas/ali/1.0/"/>') == [OPEN]
    embargoed = '<ali:free_to_read xmlns:ali="http://www.niso.org/schemas/ali/1.0/" start_date="2030-01-01" ' \
                'end_date="2031-01-01"/>'
    assert OPEN not in rights(embargoed)
    assert OPEN not in rights('<ali:free_to_read xmlns:ali="http://www.niso.org/schemas/ali/1.0/" start_date="2030-01-01"/>')
    assert OPEN not in rights("<copyright-statement>© 2020 The Publisher. All rights reserved.</copyright-statement>")
    assert OPEN not in rights('<license xlink:href="https://publisher.example/terms"/>')
    assert OPEN not in texts(inline(""), "rights")


def test_an_empty_xml_lang_is_an_unknown_language_not_english() -> None:
    """XML 1.0 (2.12): xml:lang="" says the language is unknown; an outside audit saw such an article's Cyrillic
    text tagged en, and dc:language "en". Only an article with no xml:lang at all is English (JATS's default)."""
    record = inline("<abstract><p>Аннотация.</p></abstract>", lang="")
    assert dc_values(record, "title") == [("T", None)] and dc_values(record, "description") == [("Аннотация.", None)]
    assert dc_values(record, "language") == []


def test_pubmed_and_arxiv_ids_are_openaire_alternative_identifiers() -> None:
    """An outside audit: an article's PMID was in no oai_dc element. OpenAIRE's guidelines for literature
    repositories give alternative identifiers as dc:relation info:eu-repo/semantics/altIdentifier/<scheme>/<id>."""
    record = inline('<article-id pub-id-type="doi">10.5555/x.1</article-id><article-id pub-id-type="pmid">'
                    '25187957</article-id><article-id pub-id-type="arxiv">2101.00001</article-id>'
                    '<article-id pub-id-type="publisher-id">e12</article-id>')
    assert texts(record, "relation") == ["info:eu-repo/semantics/altIdentifier/pmid/25187957",
                                         "info:eu-repo/semantics/altIdentifier/arxiv/2101.00001"]
    assert texts(record, "identifier") == ["https://doi.org/10.5555/x.1"]


@pytest.mark.parametrize("levels, refused", [(150, False), (250, True)])
def test_an_article_nested_too_deep_to_be_served_readably_is_refused(levels: int, refused: bool) -> None:
    """An outside audit: a record nested 1,500 levels deep was stored and served, and every page holding it was then
    refused by lxml's and libxml2's default parsers ("Excessive depth in document: 256")."""
    data = SEED.read_bytes().replace(b"<article-title xml:lang=\"en\">The Compromise",
                                     b"<article-title xml:lang=\"en\">" + b"<italic>" * levels + b"deep"
                                     + b"</italic>" * levels + b" The Compromise", 1)
    assert data.count(b"<italic>") >= levels
    if refused:
        with pytest.raises(FormatError, match="nest more than 200 levels deep"):
            registry.ingest_document(data, source="deep.xml")
        return
    served = registry.ingest_document(data, source="deep.xml").metadata["jats"]
    page = (b'<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/"><ListRecords><record><metadata>' + served
            + b"</metadata></record></ListRecords></OAI-PMH>")
    etree.fromstring(page)  # lxml's default parser, its depth limit kept


def test_an_article_element_with_a_flood_of_attributes_is_refused_at_once() -> None:
    """An outside audit: 40,000 attributes on <article> took 27 s to ingest (copied one by one, each after a scan of
    the others), 300,000 about half an hour: `oai load` and a harvest's worker stalled on one record."""
    attributes = b" ".join(b'a%d="1"' % i for i in range(40_000))
    data = SEED.read_bytes().replace(b"<article ", b"<article " + attributes + b" ", 1)
    with pytest.raises(FormatError, match="the <article> element has 40003 attributes; JATS gives it a few"):
        registry.ingest_document(data, source="flood.xml")  # (before: oai_dc only, after 27 s)


def test_the_named_members_of_a_group_author_are_contributors(ingested: dict[str, Ingested]) -> None:
    """An outside audit: eLife's nine group members (<collab><contrib-group><contrib>) were in no dc field, and
    elife-00666's front matter is not valid JATS 1.4, so oai_dc is all that is served of it."""
    record = ingested["elife/elife-00666.xml"]
    contributors = texts(record, "contributor")
    assert len(contributors) == 10 and "Collings, Andrew" in contributors  # the editor, and the nine members
    assert "Shearer, Alistair" in {c.split(";")[0] for c in contributors}
    assert [c for c in texts(record, "creator") if c.startswith("eLife")] == [
        "eLife Editorial Production Group; Department of Production, eLife, Cambridge, United Kingdom",
        "eLife Technology Group; Department of Technology, eLife, Cambridge, United Kingdom"]


def test_a_preprint_date_is_the_date_only_when_there_is_no_other() -> None:
    dates = ('<pub-date pub-type="epreprint"><year>2019</year></pub-date>'
             '<pub-date pub-type="ppub"><year>2020</year><month>3</month></pub-date>')
    assert texts(inline(dates), "date") == ["2020-03"]
    assert texts(inline('<pub-date pub-type="epreprint"><year>2019</year></pub-date>'), "date") == ["2019"]


@pytest.mark.parametrize("meta, identifiers", [
    ('<article-id pub-id-type="pmid">123</article-id><article-id pub-id-type="pmcid">PMC456</article-id>',
     ["https://www.ncbi.nlm.nih.gov/pmc/articles/PMC456/"]),
    ('<article-id pub-id-type="pmc">456</article-id>', ["https://www.ncbi.nlm.nih.gov/pmc/articles/PMC456/"]),
    ('<article-id pub-id-type="pmid">123</article-id>', ["https://pubmed.ncbi.nlm.nih.gov/123/"]),
    ('<article-id pub-id-type="pmid">123</article-id><self-uri content-type="pdf" '
     'xlink:href="https://example.org/a.pdf"/>', ["https://example.org/a.pdf"]),
    ('<article-id pub-id-type="pmid">not a number</article-id>', []),
    ('<article-id pub-id-type="doi">10.1234/x</article-id><article-id pub-id-type="pmid">123</article-id>',
     ["https://doi.org/10.1234/x"]),
])
def test_an_article_without_doi_or_page_is_linked_by_its_pdf_or_pubmed_page(meta: str, identifiers: list) -> None:
    """An outside audit: an article without a DOI had no dc:identifier, and aggregators (BASE, OpenAIRE) need a
    link to the item."""
    assert texts(inline(meta), "identifier") == identifiers


@pytest.mark.parametrize("doi, url", [
    ("10.1234/abc.5", "https://doi.org/10.1234/abc.5"),
    ("10.1234/a#b?c%d", "https://doi.org/10.1234/a%23b%3Fc%25d"),  # '#', '?' would end the path
    ("10.1002/(SICI)1097-4636(199709)36:3<316::AID-JBM6>3.0.CO;2-C",
     "https://doi.org/10.1002/(SICI)1097-4636(199709)36:3%3C316::AID-JBM6%3E3.0.CO;2-C"),
])
def test_a_doi_link_escapes_what_would_end_or_break_it(doi: str, url: str) -> None:
    """An outside audit: '#' and '?' in a DOI sent the link to another DOI, and old Wiley DOIs with '<' and '>'
    made dc:identifier no URI."""
    assert texts(inline(f'<article-id pub-id-type="doi">{escape(doi)}</article-id>'), "identifier") == [url]


def test_mathml_scripts_fractions_and_roots_keep_their_marks_in_plain_text() -> None:
    """An outside audit: x² + y_i = 0 read "x2+yi=0", a/b "ab" and √2 "2" in dc:title."""
    m = "<mml:math>{}</mml:math>"
    formula = m.format(
        "<mml:msup><mml:mi>x</mml:mi><mml:mn>2</mml:mn></mml:msup><mml:mo>+</mml:mo>"
        "<mml:msub><mml:mi>y</mml:mi><mml:mi>i</mml:mi></mml:msub><mml:mo>=</mml:mo>"
        "<mml:mfrac><mml:mi>a</mml:mi><mml:mrow><mml:mi>b</mml:mi><mml:mo>+</mml:mo><mml:mn>1</mml:mn></mml:mrow>"
        "</mml:mfrac><mml:mo>-</mml:mo><mml:msqrt><mml:mn>2</mml:mn></mml:msqrt><mml:mo>+</mml:mo>"
        "<mml:mroot><mml:mi>x</mml:mi><mml:mn>3</mml:mn></mml:mroot><mml:mo>+</mml:mo>"
        "<mml:msubsup><mml:mi>z</mml:mi><mml:mn>0</mml:mn><mml:mi>k</mml:mi></mml:msubsup>")
    record = inline(f"<title-group><article-title>On <inline-formula>{formula}</inline-formula> only"
                    "</article-title></title-group>")
    assert texts(record, "title") == ["On x²+y_i=a/(b+1)-√2+³√x+z₀^k only"]


def test_nlm_2_and_3_names_jats_renamed_are_written_as_jats_names_them(ingested: dict[str, Ingested]) -> None:
    """An outside audit loaded PubMed Central's open-access files: every one got no jats at all, only oai_dc, for
    pub-id-type="pmc" (NLM 2.x/3.0's name of JATS's pmcid); NLM 2.3 articles also for their journal titles,
    children of <journal-meta> before JATS 1.0 grouped them, and their licence paragraphs (<p>, now <license-p>).
    The same facts, written as Publishing 1.4 names them; nothing else is rewritten."""
    nlm = served(ingested["pmc-oa/1472-6831-8-11_nlm2.3.xml"])
    ids = {e.get("pub-id-type"): e.text for e in nlm.iterfind(f".//{{{J}}}article-id")}
    assert ids == {"pmid": "18405359", "pmcid": "2329613", "publisher-id": "1472-6831-8-11",
                   "doi": "10.1186/1472-6831-8-11"}
    meta = nlm.find(f"{{{J}}}front/{{{J}}}journal-meta")
    assert [etree.QName(c).localname for c in meta] == ["journal-id", "journal-title-group", "issn", "publisher"]
    assert meta.findtext(f"{{{J}}}journal-title-group/{{{J}}}journal-title") == "BMC Oral Health"
    licence = nlm.find(f".//{{{J}}}license")
    assert [etree.QName(c).localname for c in licence] == ["license-p"]
    record = ingested["pmc-oa/1472-6831-8-11_nlm2.3.xml"]
    assert "https://doi.org/10.1186/1472-6831-8-11" in texts(record, "identifier")
    assert texts(record, "source")[0].startswith("BMC Oral Health")
    archiving = served(ingested["pmc-oa/1471-2180-11-174_jats1.0-archiving.xml"])
    assert [e.get("pub-id-type") for e in archiving.iterfind(f".//{{{J}}}article-id")] == [
        "pmid", "pmcid", "publisher-id", "doi"]


@pytest.mark.parametrize("names, expected", [
    ('<journal-title>J</journal-title><journal-subtitle>S</journal-subtitle>'
     '<trans-title xml:lang="fr">T</trans-title><abbrev-journal-title>A</abbrev-journal-title>',
     "<journal-title-group><journal-title>J</journal-title><journal-subtitle>S</journal-subtitle><trans-title-group>"
     '<trans-title xml:lang="fr">T</trans-title></trans-title-group><abbrev-journal-title>A</abbrev-journal-title>'
     "</journal-title-group>"),
])
def test_nlm_journal_titles_are_grouped_in_order(names: str, expected: str) -> None:
    tree = jats.normalise(etree.fromstring(
        f"<article><front><journal-meta><journal-id>j</journal-id>{names}<issn>1234-5678</issn></journal-meta>"
        "</front></article>".encode()))
    meta = etree.tostring(tree.find("front/journal-meta"), encoding="unicode")
    assert meta == f"<journal-meta><journal-id>j</journal-id>{expected}<issn>1234-5678</issn></journal-meta>"


def test_nlm_3_coi_statement_is_spelt_as_jats_spells_it() -> None:
    """NLM 3.0's fn-type "COI-statement" (PubMed Central's files still carry it) is JATS's "coi-statement"."""
    tree = jats.normalise(etree.fromstring(b'<article><front><article-meta><author-notes><fn fn-type="COI-statement">'
                                           b"<p>None declared.</p></fn></author-notes></article-meta></front></article>"))
    assert tree.find(".//fn").get("fn-type") == "coi-statement"


def test_an_id_given_twice_is_said_so() -> None:
    """An outside audit: libxml2 says "'AFF1' is not a valid value of the atomic type 'xs:ID'" for an id two
    elements share, which reads as a malformed id; the warning names the lines."""
    article = (JATS_DIR / "pmc-oa/1471-2180-11-174_jats1.0-archiving.xml").read_bytes()
    assert registry.ingest_document(article).warnings == ()
    twice = article.replace(b'<aff id="I2">', b'<aff id="I1">', 1).replace(b'rid="I2"', b'rid="I1"')
    [warning] = registry.ingest_document(twice).warnings[-1:]
    assert "'I1' is not a valid value of the atomic type 'xs:ID'. (the id 'I1' is given to 2 elements, on lines 2: " \
           "an id names one element)" in warning, warning


def test_a_publisher_named_in_two_languages_keeps_each_language() -> None:
    """An outside audit: <publisher-name xml:lang="ru"> and its English twin became two dc:publisher without
    xml:lang; a name without one of its own does not take the article's."""
    record = registry.ingest_document(
        '<article xml:lang="ru"><front><journal-meta><journal-id>j</journal-id><publisher>'
        '<publisher-name xml:lang="ru">Издательство ИГУ</publisher-name>'
        '<publisher-name xml:lang="en">Irkutsk State University Press</publisher-name>'
        "<publisher-name>ISU</publisher-name></publisher></journal-meta><article-meta><title-group>"
        "<article-title>T</article-title></title-group></article-meta></front></article>".encode())
    dc = parse_document(record.metadata["oai_dc"])
    assert [(e.text, e.get(XML_LANG)) for e in dc.iter("{http://purl.org/dc/elements/1.1/}publisher")] == [
        ("Издательство ИГУ", "ru"), ("Irkutsk State University Press", "en"), ("ISU", None)]


def test_an_identifier_of_a_type_jats_does_not_list_is_named_as_jats_names_such_types() -> None:
    """An outside audit: Russian journals' JATS (Naukaru, Elpub) carries eLibrary's EDN as
    <article-id pub-id-type="edn">, which Publishing 1.4's list refuses, and every such article was served as
    oai_dc only. JATS gives such types as pub-id-type="custom" with custom-type naming them."""
    edn = b'<article-id pub-id-type="edn">ZQHWVB</article-id>'
    article = SEED.read_bytes().replace(b'<article-id pub-id-type="doi">', edn + b'<article-id pub-id-type="doi">', 1)
    assert edn in article
    record = registry.ingest_document(article)
    assert record.warnings == ()
    [served_edn] = [e for e in served(record).iterfind(f".//{{{J}}}article-id") if e.text == "ZQHWVB"]
    assert dict(served_edn.attrib) == {"pub-id-type": "custom", "custom-type": "edn"}
    tree = jats.normalise(etree.fromstring(
        b'<article><front><article-meta><article-id pub-id-type="edn" custom-type="x">A</article-id>'
        b'<article-id pub-id-type="doi">10.1/b</article-id></article-meta></front><back><ref-list><ref>'
        b'<element-citation><pub-id pub-id-type="edn">C</pub-id></element-citation></ref></ref-list></back></article>'))
    assert [dict(e.attrib) for e in tree.iter("article-id", "pub-id")] == [
        {"pub-id-type": "edn", "custom-type": "x"},  # it names a custom type already: left for the schema to judge
        {"pub-id-type": "doi"}, {"pub-id-type": "custom", "custom-type": "edn"}]


def test_pub_id_takes_the_types_article_id_takes() -> None:
    """_respell reads the list from article-id's declaration and applies it to pub-id too."""
    xs = {"xs": "http://www.w3.org/2001/XMLSchema"}
    tree = read_schema(SCHEMAS_DIR / "jats-oai/1.4-publishing-mathml3/JATS-journalpublishing1-4-mathml3-elements.xsd")
    pub_id = tree.xpath("/xs:schema/xs:element[@name='pub-id']//xs:attribute[@name='pub-id-type']//xs:enumeration/@value",
                        namespaces=xs)
    assert frozenset(pub_id) == jats._facts().pub_id_types and "pmcid" in pub_id  # noqa: SLF001


def test_the_source_gives_the_journal_in_every_language_and_each_issn_its_medium() -> None:
    """An outside audit of Russian journals' JATS: the journal's English title was nowhere in oai_dc, and which
    ISSN is the print one was lost (the seed's record says "ISSN 2073-3380 (Print)")."""
    record = registry.ingest_document(
        '<article xml:lang="ru"><front><journal-meta><journal-id>j</journal-id><journal-title-group>'
        '<journal-title xml:lang="ru">Электронные библиотеки</journal-title>'
        '<trans-title-group xml:lang="en"><trans-title>Russian Digital Libraries Journal</trans-title>'
        '</trans-title-group></journal-title-group><issn publication-format="print">1562-5419</issn>'
        '<issn pub-type="epub">1562-5420</issn><issn>1562-5421</issn></journal-meta><article-meta><title-group>'
        "<article-title>T</article-title></title-group><volume>26</volume></article-meta></front></article>".encode())
    assert texts(record, "source") == ["Электронные библиотеки = Russian Digital Libraries Journal; ISSN 1562-5419 "
                                       "(print); ISSN 1562-5420 (online); ISSN 1562-5421; Vol. 26"]
    assert record.citation.journal_title == "Электронные библиотеки"
    assert record.citation.issn == ("1562-5419", "1562-5420", "1562-5421")


def test_a_self_uri_said_to_be_application_pdf_is_the_pdf() -> None:
    """An outside audit: content-type="application/pdf" (the media type) was not taken as content-type="pdf"."""
    meta = ('<self-uri content-type="application/pdf" xlink:href="https://example.org/download/123"/>'
            '<self-uri xlink:href="https://example.org/article/123"/>')
    record = inline(meta)
    assert record.citation.pdf_url == "https://example.org/download/123"
    assert texts(record, "identifier") == ["https://example.org/article/123"]


def test_a_three_letter_language_code_with_a_two_letter_one_is_written_short() -> None:
    """BCP 47 takes the shortest code (RFC 5646 2.2.1): xml:lang="rus" and "RUS" were served as dc:language rus
    (an outside audit); a code without a two-letter one stays."""
    assert texts(inline("", lang="RUS"), "language") == ["ru"]
    record = inline('<title-group><article-title xml:lang="fre">Titre</article-title></title-group>', lang="rus")
    dc_root = parse_document(record.metadata["oai_dc"])
    assert [(e.text, e.get(XML_LANG)) for e in dc_root.iter("{http://purl.org/dc/elements/1.1/}title")] == [
        ("Titre", "fr")]
    assert texts(inline("", lang="haw"), "language") == ["haw"]


def test_jats4r_date_types_date_the_version_of_record() -> None:
    """An outside audit: JATS4R's publication-history example (date-type="version-of-record", "corrected-version-
    of-record", "accepted-manuscript") gave no dc:date at all; the version of record online is the date."""
    dates = ('<pub-date date-type="corrected-version-of-record" publication-format="online"><day>30</day>'
             '<month>03</month><year>2016</year></pub-date>'
             '<pub-date date-type="version-of-record" publication-format="print"><month>03</month><year>2016</year>'
             '</pub-date><pub-date date-type="version-of-record" publication-format="online"><day>16</day>'
             '<month>02</month><year>2016</year></pub-date>'
             '<pub-date date-type="accepted-manuscript"><day>10</day><month>01</month><year>2016</year></pub-date>')
    assert texts(inline(dates), "date") == ["2016-02-16"]
    manuscript = '<pub-date date-type="accepted-manuscript"><day>10</day><month>01</month><year>2016</year></pub-date>'
    assert texts(inline(manuscript), "date") == ["2016-01-10"]  # the only date there is


def test_a_date_no_calendar_has_is_dated_by_its_month() -> None:
    """An outside audit: 31 February 2021 was served as dc:date 2021-02-31, no W3CDTF date (OpenAIRE and BASE check);
    29 February is a date in a leap year only."""
    def dated(day: int, month: int, year: int) -> list[str]:
        return texts(inline(f'<pub-date date-type="pub" publication-format="electronic"><day>{day}</day>'
                            f'<month>{month:02d}</month><year>{year}</year></pub-date>'), "date")

    assert dated(31, 2, 2021) == ["2021-02"]
    assert dated(29, 2, 2021) == ["2021-02"] and dated(29, 2, 2024) == ["2024-02-29"]
    assert dated(31, 4, 2021) == ["2021-04"] and dated(31, 5, 2021) == ["2021-05-31"]


def test_a_group_author_keeps_every_language_form_the_articles_first() -> None:
    """An outside audit: of <collab-alternatives>, only the first form reached dc:creator ('NEAR Working Group' lost
    for a Russian article), where a person's name-alternatives keep every form."""
    group = ('<contrib-group>' + author('<collab-alternatives><collab xml:lang="en">NEAR Working Group</collab>'
                                        '<collab xml:lang="ru">Рабочая группа АРАСВА</collab>'
                                        '<collab xml:lang="ru">Рабочая группа АРАСВА</collab></collab-alternatives>')
             + '</contrib-group>')
    assert texts(inline(group, lang="ru"), "creator") == ["Рабочая группа АРАСВА; NEAR Working Group"]
    assert texts(inline(group, lang="en"), "creator") == ["NEAR Working Group; Рабочая группа АРАСВА"]
    assert inline(group, lang="ru").citation.authors == ("Рабочая группа АРАСВА",)
