"""The browser view (oai/web/static/oai2.xsl): applied with lxml to real OAI-PMH responses.

Browsers run the same XSLT 1.0 that libxslt runs here, so what these tests read in the HTML is
what a person sees: links built from the response's baseURL, percent-encoded arguments,
errors, deleted records, Dublin Core tables, foreign metadata as XML source, paging.
"""

from __future__ import annotations

import copy
import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import lxml.html
import pytest
from lxml import etree

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "oai" / "web" / "static"
XSL = STATIC / "oai2.xsl"
DATA = Path(__file__).resolve().parent / "data" / "oai"

OAI_NS = "http://www.openarchives.org/OAI/2.0/"
XSL_NS = "http://www.w3.org/1999/XSL/Transform"
NS = {"oai": OAI_NS}

SAMPLES = sorted(DATA.rglob("*.xml"))
PARSER = etree.XMLParser(resolve_entities=False, no_network=True)


def _parse(path: Path) -> etree._ElementTree:
    return etree.parse(str(path), PARSER)


def _well_formed(path: Path) -> bool:
    try:
        _parse(path)
    except etree.XMLSyntaxError:
        return False
    return True


WELL_FORMED = [p for p in SAMPLES if _well_formed(p)]
NOT_WELL_FORMED = [p for p in SAMPLES if p not in WELL_FORMED]


def _id(path: Path) -> str:
    return str(path.relative_to(DATA))


def q(value: str) -> str:
    """What the stylesheet's url-encode does for ASCII: RFC 3986 unreserved characters stay."""
    return quote(value, safe="-._~")


@pytest.fixture(scope="module")
def transform() -> etree.XSLT:
    return etree.XSLT(etree.parse(str(XSL)))


class Page:
    """One rendered response: the HTML text and a tree to query."""

    def __init__(self, transform: etree.XSLT, doc: etree._ElementTree | etree._Element) -> None:
        result = transform(doc)
        assert not transform.error_log, list(transform.error_log)
        self.text = str(result)
        self.tree = lxml.html.document_fromstring(self.text)

    def xpath(self, expr: str) -> list:
        return self.tree.xpath(expr)

    def text_of(self, expr: str) -> str:
        nodes = self.xpath(expr)
        assert nodes, f"nothing at {expr}"
        return " ".join(" ".join(n.text_content().split()) for n in nodes)

    def links(self) -> dict[str, str]:
        """href -> link text (the last one wins for duplicates)."""
        return {a.get("href"): " ".join(a.text_content().split()) for a in self.xpath("//a[@href]")}

    def hrefs(self) -> list[str]:
        return [a.get("href") for a in self.xpath("//a[@href]")]


def render(transform: etree.XSLT, name_or_doc: str | etree._ElementTree | etree._Element) -> Page:
    doc = _parse(DATA / name_or_doc) if isinstance(name_or_doc, str) else name_or_doc
    return Page(transform, doc)


def oai_doc(xml: str) -> etree._ElementTree:
    return etree.ElementTree(etree.fromstring(xml.encode("utf-8"), PARSER))


class _TagBalance(HTMLParser):
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.ids: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.ids += [v for k, v in attrs if k == "id"]
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:]} at {self.getpos()}")
        else:
            self.stack.pop()


# --------------------------------------------------------------------------- the stylesheet


XSLT10_ELEMENTS = {
    "apply-imports", "apply-templates", "attribute", "attribute-set", "call-template", "choose",
    "comment", "copy", "copy-of", "decimal-format", "element", "fallback", "for-each", "if",
    "import", "include", "key", "message", "namespace-alias", "number", "otherwise", "output",
    "param", "preserve-space", "processing-instruction", "sort", "strip-space", "stylesheet",
    "template", "text", "transform", "value-of", "variable", "when", "with-param",
}
XPATH10_FUNCTIONS = {
    "last", "position", "count", "id", "local-name", "namespace-uri", "name", "string", "concat",
    "starts-with", "contains", "substring-before", "substring-after", "substring",
    "string-length", "normalize-space", "translate", "boolean", "not", "true", "false", "lang",
    "number", "sum", "floor", "ceiling", "round",
    # XSLT 1.0 additions
    "document", "key", "format-number", "current", "unparsed-entity-uri", "generate-id",
    "system-property", "element-available", "function-available",
    # node tests, not functions
    "node", "text", "comment", "processing-instruction",
}


def _expressions(xsl: etree._ElementTree) -> list[str]:
    exprs = []
    for el in xsl.iter(etree.Element):
        for attr, value in el.attrib.items():
            if el.tag.startswith("{%s}" % XSL_NS) and attr in ("select", "test", "match", "use"):
                exprs.append(value)
            elif not el.tag.startswith("{%s}" % XSL_NS) or attr in ("name", "namespace"):
                exprs += re.findall(r"\{([^{}]*)\}", value)  # attribute value templates
    return exprs


def test_stylesheet_is_plain_xslt_1_0() -> None:
    xsl = etree.parse(str(XSL))
    root = xsl.getroot()
    assert root.tag == "{%s}stylesheet" % XSL_NS and root.get("version") == "1.0"
    assert root.get("extension-element-prefixes") is None
    used = {etree.QName(el).localname for el in root.iter("{%s}*" % XSL_NS)}
    assert used <= XSLT10_ELEMENTS, used - XSLT10_ELEMENTS
    output = root.find("{%s}output" % XSL_NS)
    assert output.get("method") == "html" and output.get("encoding") == "UTF-8"
    for expr in _expressions(xsl):
        bare = re.sub(r"'[^']*'|\"[^\"]*\"", "''", expr)  # string literals may hold anything
        for fn in re.findall(r"([A-Za-z_][\w.:-]*)\s*\(", bare):
            if fn in ("and", "or", "div", "mod"):  # operators before a parenthesis
                continue
            assert fn in XPATH10_FUNCTIONS, f"{fn}() in {expr!r} is not XPath/XSLT 1.0"
    # the page loads nothing from elsewhere: no scripts, no images, one stylesheet link
    literal = [el for el in root.iter(etree.Element) if not el.tag.startswith("{")]
    assert {"script", "img", "iframe", "object", "style"}.isdisjoint(el.tag for el in literal)
    assert [el.get("rel") for el in literal if el.tag == "link"] == ["stylesheet"]
    assert all(el.get("style") is None for el in literal)


def test_css_is_self_contained() -> None:
    css = (STATIC / "oai2.css").read_text(encoding="utf-8")
    assert "@import" not in css and "url(" not in css  # no fonts or images from elsewhere


def test_samples_are_there() -> None:
    verbs = set()
    for path in WELL_FORMED:
        root = _parse(path).getroot()
        verbs.update(etree.QName(child).localname for child in root if isinstance(child.tag, str))
    assert {"Identify", "ListMetadataFormats", "ListSets", "ListIdentifiers", "ListRecords",
            "GetRecord", "error"} <= verbs
    assert NOT_WELL_FORMED, "keep a broken file: the suite must tell it apart"


def test_every_sample_has_its_provenance() -> None:
    notes = (DATA / "PROVENANCE.md").read_text(encoding="utf-8")
    for path in SAMPLES:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        assert re.search(rf"^\| `{re.escape(path.name)}` \|.*`{digest}` \|", notes, re.M), _id(path)


@pytest.mark.parametrize("path", WELL_FORMED, ids=_id)
def test_every_response_renders_to_a_whole_page(transform: etree.XSLT, path: Path) -> None:
    page = render(transform, _parse(path))
    assert page.text.startswith("<!DOCTYPE html")
    balance = _TagBalance()
    balance.feed(page.text)
    balance.close()
    assert not balance.problems, balance.problems[:5]
    assert balance.stack == [], balance.stack
    assert len(balance.ids) == len(set(balance.ids))
    assert len(page.xpath("//h1")) == 1
    assert page.xpath("//header//nav//a[@href]")
    assert page.xpath("//main") and page.xpath("//footer")
    assert not page.xpath("//script | //style | //img | //*[@style]")
    assert all(not h.lower().startswith(("javascript:", "data:")) for h in page.hrefs())
    root = _parse(path).getroot()
    if root.tag == "{%s}OAI-PMH" % OAI_NS:
        verb_elements = [etree.QName(c).localname for c in root if isinstance(c.tag, str)][2:]
        if "error" in verb_elements:
            assert page.xpath("//*[@role='alert']")
    else:
        assert page.text_of("//h1") == "Not an OAI-PMH 2.0 response"


@pytest.mark.parametrize("path", NOT_WELL_FORMED, ids=_id)
def test_broken_files_are_not_xml(path: Path) -> None:
    with pytest.raises(etree.XMLSyntaxError):
        _parse(path)


# --------------------------------------------------------------------------- navigation, CSS


def test_navigation_bar_links_every_verb(transform: etree.XSLT) -> None:
    page = render(transform, "pyoai-dspace-eur/ListSets.xml")
    base = "http://dspace.ubib.eur.nl/oai/"
    nav = [a.get("href") for a in page.xpath("//nav[@aria-label='OAI-PMH requests']//a")]
    assert nav == [
        f"{base}?verb=Identify",
        f"{base}?verb=ListMetadataFormats",
        f"{base}?verb=ListSets",
        f"{base}?verb=ListRecords&metadataPrefix=oai_dc",
        f"{base}?verb=ListIdentifiers&metadataPrefix=oai_dc",
    ]
    assert page.text_of("//nav//a[@aria-current='page']") == "ListSets"


def test_base_url_is_trimmed_and_used_for_links(transform: etree.XSLT) -> None:
    # sickle's badArgument has the baseURL on its own indented line inside <request>
    page = render(transform, "sickle/badArgument.xml")
    assert "http://memory.loc.gov/cgi-bin/oai?verb=Identify" in page.hrefs()


def test_css_sits_next_to_the_stylesheet(transform: etree.XSLT) -> None:
    doc = _parse(DATA / "zenodo-eperiodica/zenodo_ListMetadataFormats.xml")  # PI: /static/oai2.xsl
    assert render(transform, doc).xpath("//link[@rel='stylesheet']/@href") == ["/static/oai2.css"]
    body = etree.tostring(doc.getroot(), encoding="unicode")
    for pi in ("<?xml-stylesheet type='text/xsl' href='/oai/static/oai2.xsl'?>",
               '<?xml-stylesheet type="text/xsl" href="/oai/static/oai2.xsl"?>'):
        page = render(transform, oai_doc(pi + body))
        assert page.xpath("//link[@rel='stylesheet']/@href") == ["/oai/static/oai2.css"]
    relative = render(transform, oai_doc('<?xml-stylesheet type="text/xsl" href="oai2.xsl"?>' + body))
    assert relative.xpath("//link[@rel='stylesheet']/@href") == ["oai2.css"]
    # no processing instruction (lxml here): fall back to the endpoint's static folder
    bare = render(transform, "sickle/ListRecords.xml")
    assert bare.xpath("//link[@rel='stylesheet']/@href") == ["http://test.example.com/oai/static/oai2.css"]


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("name", "code", "message"), [
    ("sickle/badArgument.xml", "badArgument", None),
    ("sickle/badResumptionToken.xml", "badResumptionToken", "This resumptionToken is invalid"),
    ("phpoaipmh-nsdl-bnf/badVerb.xml", "badVerb", None),
    ("oai-spec-examples/spec4.1c_GetRecord_cannotDisseminateFormat.xml", "cannotDisseminateFormat", None),
    ("sickle/idDoesNotExist.xml", "idDoesNotExist", None),
    ("sickle/noRecordsMatch.xml", "noRecordsMatch", None),
    ("sickle/noSetHierarchy.xml", "noSetHierarchy", None),
    ("zenodo-eperiodica/zenodo_ListRecords_badResumptionToken_HTTP422.xml", "badResumptionToken",
     "The value of the resumptionToken argument is invalid or expired."),
])
def test_error_code_and_message_are_prominent(transform: etree.XSLT, name: str, code: str,
                                              message: str | None) -> None:
    page = render(transform, name)
    box = page.xpath("//main//*[@role='alert']")
    assert len(box) == 1
    assert box[0].xpath("string(.//*[contains(@class, 'error-code')]//code)") == code
    assert box[0].xpath(".//*[contains(@class, 'error-help')]")
    if message is not None:
        assert page.text_of("//*[@class='error-message']") == message
    expected = "Nothing found" if code == "noRecordsMatch" else "Error"
    assert page.text_of("//h1").startswith(expected)


def test_error_without_verb_still_has_a_page(transform: etree.XSLT) -> None:
    page = render(transform, "zenodo-eperiodica/zenodo_ListRecords_badResumptionToken_HTTP422.xml")
    assert page.text_of("//h1") == "Error"
    assert "no valid arguments" in page.text_of("//section[@class='request']")
    assert "https://zenodo.org/oai2d?verb=Identify" in page.hrefs()


# --------------------------------------------------------------------------- Identify


def test_identify_shows_every_field_and_descriptions(transform: etree.XSLT) -> None:
    page = render(transform, "oai-spec-examples/spec4.2_Identify_with-descriptions.xml")
    fields = {" ".join(tr.xpath("string(th)").split()): " ".join(tr.xpath("string(td)").split())
              for tr in page.xpath("//section[@class='identify']/table[@class='fields']//tr")}
    assert fields["Base URL"] == "http://memory.loc.gov/cgi-bin/oai"
    assert fields["Protocol version"] == "2.0"
    assert fields["Administrator e-mail"] == "somebody@loc.gov, anybody@loc.gov"
    assert fields["Earliest datestamp"] == "1990-02-01T12:00:00Z"
    assert fields["Deleted records"].startswith("transient")
    assert fields["Datestamp granularity"] == "YYYY-MM-DDThh:mm:ssZ"
    assert fields["Compression"] == "deflate"
    assert page.text_of("//h2[@id='repo-name']") == "Library of Congress Open Archive Initiative Repository 1"
    assert "mailto:anybody@loc.gov" in page.hrefs()
    # oai-identifier: the sample identifier is a GetRecord link
    links = page.links()
    sample = "oai:lcoa1.loc.gov:loc.music/musdi.002"
    assert links[f"http://memory.loc.gov/cgi-bin/oai?verb=GetRecord&metadataPrefix=oai_dc&identifier={q(sample)}"] == sample
    assert "lcoa1.loc.gov" in page.text_of("//section[@class='description'][1]")
    # friends: their baseURLs, each linked to its Identify
    friends = page.xpath("//ul[@class='friends']//a")
    assert [a.text_content() for a in friends] == [
        "http://oai.east.org/foo/", "http://oai.hq.org/bar/", "http://oai.south.org/repo.cgi"]
    assert friends[0].get("href") == "http://oai.east.org/foo/?verb=Identify"
    # any other description: its XML source
    source = page.text_of("//section[@class='description'][.//code[.='eprints']]//div[@class='xml']")
    assert "<eprints" in source and "<URL>http://memory.loc.gov/ammem/oamh/lcoa1_content.html</URL>" in source
    assert 'xmlns="http://www.openarchives.org/OAI/1.1/eprints"' in source


def test_identify_with_dc_description_and_toolkit(transform: etree.XSLT) -> None:
    nsdl = render(transform, "phpoaipmh-nsdl-bnf/nsdl_Identify_with-oai_dc-description.xml")
    assert "National Science Digital Library (NSDL) is a national network" in nsdl.text_of("//table[@class='dc']")
    dspace = render(transform, "pyoai-dspace-eur/Identify.xml")
    assert dspace.text_of("//td[preceding-sibling::th[.='Compression']]") == "gzip, compress, deflate"
    assert "<title>OCLC's OAICat Repository Framework</title>" in dspace.text_of("//div[@class='xml']")


def test_link_only_to_web_urls_from_the_data(transform: etree.XSLT) -> None:
    doc = _parse(DATA / "oai-spec-examples/spec4.2_Identify_with-descriptions.xml")
    doc.find(".//{http://www.openarchives.org/OAI/2.0/friends/}baseURL").text = "javascript:alert(1)"
    page = render(transform, doc)
    assert "javascript:alert(1)" in page.text_of("//ul[@class='friends']")
    assert not [h for h in page.hrefs() if "javascript" in h]


# --------------------------------------------------------------------------- ListMetadataFormats


def test_metadata_formats_link_to_their_lists(transform: etree.XSLT) -> None:
    page = render(transform, "zenodo-eperiodica/zenodo_ListMetadataFormats.xml")
    rows = page.xpath("//table[contains(@class, 'list')]/tbody/tr")
    assert len(rows) == 8
    prefixes = [r.xpath("string(th)") for r in rows]
    assert prefixes[:3] == ["marcxml", "oai_dc", "dcat"]
    oai_dc = rows[1]
    assert oai_dc.xpath("string(td[1])") == "http://www.openarchives.org/OAI/2.0/oai_dc/"
    assert oai_dc.xpath("td[2]/a/@href") == ["http://www.openarchives.org/OAI/2.0/oai_dc.xsd"]
    assert oai_dc.xpath("td[3]/a/@href") == [
        "https://zenodo.org/oai2d?verb=ListRecords&metadataPrefix=oai_dc",
        "https://zenodo.org/oai2d?verb=ListIdentifiers&metadataPrefix=oai_dc"]
    assert "8 formats supported by this repository" == page.text_of("//p[@class='summary']")


def test_metadata_formats_of_one_item_link_to_its_records(transform: etree.XSLT) -> None:
    doc = _parse(DATA / "pyoai-dspace-eur/ListMetadataFormats.xml")
    doc.find("{%s}request" % OAI_NS).set("identifier", "hdl:1765/315")
    page = render(transform, doc)
    assert "available for the item hdl:1765/315" in page.text_of("//p[@class='summary']")
    assert page.xpath("//td[@class='actions']/a/@href") == [
        "http://dspace.ubib.eur.nl/oai/?verb=GetRecord&metadataPrefix=oai_dc&identifier=hdl%3A1765%2F315"]


# --------------------------------------------------------------------------- ListSets


def test_sets_link_to_their_records(transform: etree.XSLT) -> None:
    page = render(transform, "pyoai-dspace-eur/ListSets.xml")
    rows = page.xpath("//table[contains(@class, 'sets')]/tbody/tr")
    assert len(rows) == 10
    row = [r for r in rows if r.xpath("string(th)") == "1:2"][0]
    assert row.xpath("string(td[1])") == "ERIM Inaugural Addresses Research in Management Series"
    base = "http://dspace.ubib.eur.nl/oai/"
    assert row.xpath("td[@class='actions']/a/@href") == [
        f"{base}?verb=ListRecords&metadataPrefix=oai_dc&set=1%3A2",
        f"{base}?verb=ListIdentifiers&metadataPrefix=oai_dc&set=1%3A2"]
    assert page.text_of("//p[@class='summary']") == "10 sets (complete list)"


def test_set_descriptions_are_text_never_markup(transform: etree.XSLT) -> None:
    page = render(transform, "zenodo-eperiodica/zenodo_ListSets_page1.xml")
    cell = page.text_of("//tr[th='user-harmonic-radar']/td[@class='set-description']")
    assert cell == "<p>Radar using a non-linear element with the radar receiver at a multiple of the transmitter frequency.</p>"
    assert not page.xpath("//td[@class='set-description']//strong | //td[@class='set-description']//p//a")
    # long descriptions are folded, the whole text one click away
    folded = page.xpath("//tr[th='user-sciencedomain-international']//details[@class='more']")
    assert folded and "Fast and Open access principle of SDI" in folded[0].text_content()
    assert page.text_of("//p[@class='summary']") == "Showing sets 1–5 of 42,068"


# --------------------------------------------------------------------------- ListIdentifiers


def test_identifiers_are_getrecord_links_and_sets_are_list_links(transform: etree.XSLT) -> None:
    doc = _parse(DATA / "pyoai-dspace-eur/ListIdentifiers.xml")
    page = render(transform, doc)
    base = "http://dspace.ubib.eur.nl/oai/"
    rows = page.xpath("//table[contains(@class, 'headers')]/tbody/tr")
    headers = doc.findall(".//oai:header", NS)
    assert len(rows) == len(headers) == 16
    for row, header in zip(rows, headers):
        identifier = header.findtext("oai:identifier", namespaces=NS)
        link = row.xpath("th/a")[0]
        assert link.text_content() == identifier
        assert link.get("href") == f"{base}?verb=GetRecord&metadataPrefix=oai_dc&identifier={q(identifier)}"
        assert row.xpath("string(td[1])") == header.findtext("oai:datestamp", namespaces=NS)
        spec = header.findtext("oai:setSpec", namespaces=NS)
        assert row.xpath("td[2]/a/@href") == [f"{base}?verb=ListIdentifiers&metadataPrefix=oai_dc&set={q(spec)}"]
    assert rows[0].xpath("th/a/@href") == [f"{base}?verb=GetRecord&metadataPrefix=oai_dc&identifier=hdl%3A1765%2F308"]
    assert page.text_of("//p[@class='summary']") == "16 headers (complete list) · format oai_dc"


def test_deleted_headers_are_marked(transform: etree.XSLT) -> None:
    doc = _parse(DATA / "pyoai-dspace-eur/ListIdentifiers.xml")
    doc.findall(".//oai:header", NS)[2].set("status", "deleted")
    page = render(transform, doc)
    deleted = page.xpath("//table[contains(@class, 'headers')]/tbody/tr[@class='deleted']")
    assert len(deleted) == 1
    assert deleted[0].xpath("string(th)") == "hdl:1765/311"
    assert deleted[0].xpath("string(.//span[contains(@class, 'badge-deleted')])") == "deleted"


def test_next_page_link_carries_the_encoded_token(transform: etree.XSLT) -> None:
    page = render(transform, "phpoaipmh-nsdl-bnf/nsdl_ListIdentifiers_page3.xml")
    token = "400/600/733/nsdl_dc/null/2012-07-26/null"
    href = f"http://nsdl.org/oai?verb=ListIdentifiers&resumptionToken={q(token)}"
    assert href == "http://nsdl.org/oai?verb=ListIdentifiers&resumptionToken=400%2F600%2F733%2Fnsdl_dc%2Fnull%2F2012-07-26%2Fnull"
    assert set(page.xpath("//a[@rel='next']/@href")) == {href}
    assert page.text_of("//p[@class='summary']") == "Showing headers 401–600 of 733"
    assert token in page.text_of("//p[@class='token']")
    assert "2099-01-01T01:30:28Z" in page.text_of("//p[@class='token']")


def test_last_page_has_no_next_link(transform: etree.XSLT) -> None:
    page = render(transform, "phpoaipmh-nsdl-bnf/nsdl_ListIdentifiers_page4.xml")
    assert not page.xpath("//a[@rel='next']")
    assert page.text_of("//p[@class='summary']") == "Showing headers 601–733 of 733"
    assert page.text_of("//p[@class='end-of-list']") == "This is the last page of the list."


@pytest.mark.parametrize("token", [
    "a+b/c=d&e%f#g h?i",
    "eyJ2IjoxLCJ2ZXJiIjoiTGlzdFJlY29yZHMifQ.ZXhhbXBsZQ-_sig",  # ours: URL-safe base64 and '.'
    "1!53691!20513471!2505879!100!2402263!oai_dc",
    "'quoted\"<tag>;:@[x]{y}|z\\^`,*()$",
])
def test_token_encoding(transform: etree.XSLT, token: str) -> None:
    doc = _parse(DATA / "sickle/ListRecords.xml")
    doc.find(".//oai:resumptionToken", NS).text = token
    page = render(transform, doc)
    assert set(page.xpath("//a[@rel='next']/@href")) == {
        f"http://test.example.com/oai?verb=ListRecords&resumptionToken={q(token)}"}


def test_resumed_list_links_with_the_verb_of_the_request(transform: etree.XSLT) -> None:
    page = render(transform, "zenodo-eperiodica/zenodo_ListRecords_oai_dc_page1.xml")
    token = _parse(DATA / "zenodo-eperiodica/zenodo_ListRecords_oai_dc_page1.xml").findtext(".//oai:resumptionToken", namespaces=NS)
    assert token.startswith(".eJ")
    assert set(page.xpath("//a[@rel='next']/@href")) == {f"https://zenodo.org/oai2d?verb=ListRecords&resumptionToken={token}"}
    assert page.text_of("//p[@class='summary']") == "Showing records 1–3 of 8,091,628 · format oai_dc"
    # in a list, long abstracts are folded; the whole text is still in the page
    folded = page.xpath("//table[@class='dc']//details[@class='more']")
    assert folded and "PocketCoffea defines a configuration scheme" in folded[0].text_content()


# --------------------------------------------------------------------------- ListRecords, GetRecord


def test_dc_records_show_titles_and_a_table_with_languages(transform: etree.XSLT) -> None:
    page = render(transform, "tethys/ListRecords_page1.xml")
    records = page.xpath("//article[contains(@class, 'record')]")
    assert len(records) == 3
    first = records[0]
    assert first.xpath("string(.//h2)").strip() == "GEOFAST 1:50.000, Blatt 53 – Amstetten, Stand 2019"
    assert first.xpath(".//h2/@lang") == ["de"]
    rows = first.xpath(".//table[@class='dc']/tbody/tr")
    cells = [(r.xpath("string(th)"), " ".join(r.xpath("string(td[1])").split()), r.xpath("string(td[2])").strip())
             for r in rows]
    assert cells[0] == ("title", "GEOFAST 1:50.000, Blatt 53 – Amstetten, Stand 2019", "de")
    assert cells[1] == ("title", "GEOFAST 1:50,000. Map Nr. 53 – Amstetten, stand 2019", "en")
    assert rows[1].xpath("th/span[@class='visually-hidden']")  # repeated label, hidden from sight
    assert ("creator", "Linner, Manfred", "") in cells
    assert rows[1].xpath("td[1]/@lang") == ["en"]
    base = "https://www.tethys.at/oai"
    assert first.xpath(".//a[@class='identifier']/@href") == [
        f"{base}?verb=GetRecord&metadataPrefix=oai_dc&identifier=oai%3Atethys.at%3A1"]
    assert f"{base}?verb=ListIdentifiers&metadataPrefix=oai_dc&set=data-type%3Agis" in first.xpath(".//a[@class='set']/@href")


def test_dc_urls_become_links(transform: etree.XSLT) -> None:
    page = render(transform, "pyoai-dspace-eur/GetRecord.xml")
    assert page.links()["http://hdl.handle.net/1765/315"] == "http://hdl.handle.net/1765/315"
    assert page.text_of("//h2").startswith("De vrouwenbeweging online.")


def test_deleted_records_are_marked(transform: etree.XSLT) -> None:
    page = render(transform, "sickle/ListRecords.xml")
    deleted = page.xpath("//article[contains(@class, 'deleted')]")
    assert len(deleted) == 1
    assert deleted[0].xpath("string(.//span[contains(@class, 'badge-deleted')])") == "deleted"
    assert "has been deleted" in deleted[0].xpath("string(.//p[@class='deleted-note'])")
    assert not deleted[0].xpath(".//table[@class='dc']")
    single = render(transform, "pyoai-dspace-eur/GetRecord_deleted.xml")
    assert single.xpath("//article[@class='record deleted']//span[contains(@class, 'badge-deleted')]")
    assert single.xpath("//a[@class='set']/@href") == [
        "http://dspace.ubib.eur.nl/oai/?verb=ListIdentifiers&metadataPrefix=oai_dc&set=1%3A1"] * 2


def test_record_without_metadata_says_so(transform: etree.XSLT) -> None:
    page = render(transform, "tethys/GetRecord_SEMANTIC-NEG_no-metadata.xml")
    assert "This record has no metadata." in page.text_of("//article")


def test_foreign_metadata_is_shown_as_xml_source(transform: etree.XSLT) -> None:
    page = render(transform, "arxiv-inspire/inspire_ListRecords_marcxml.xml")
    source = page.text_of("(//div[@class='xml'])[1]")
    assert source.startswith('<marc:record xmlns:marc="http://www.loc.gov/MARC21/slim" type="Bibliographic"')
    assert '<marc:subfield code="a">2000 IEEE Nuclear and Space Radiation Effects Conference</marc:subfield>' in source
    assert source.endswith("</marc:record>")
    assert page.xpath("//section[@class='metadata']/h3/span[@class='ns']/text()")[0] == "http://www.loc.gov/MARC21/slim"
    # the record in its own format, next to the oai_dc link
    assert "http://inspirehep.net/oai2d?verb=GetRecord&metadataPrefix=marcxml&identifier=oai%3Ainspirehep.net%3A972855" in page.hrefs()
    arxiv = render(transform, "arxiv-inspire/arxiv_GetRecord_arXivFormat.xml")
    assert arxiv.text_of("//h2").startswith("The Distribution of Star Formation and Metals")
    assert "<keyname>de Naray</keyname>" in arxiv.text_of("//div[@class='xml']")


def test_about_dc_and_rfc1807_metadata(transform: etree.XSLT) -> None:
    page = render(transform, "oai-spec-examples/spec4.5a_ListRecords_deleted-and-about.xml")
    first, second = page.xpath("//article")
    assert first.xpath("string(.//h2)").strip() == "Investigations of Radioactivity"
    assert "<author>Ernest Rutherford</author>" in first.xpath("string(.//div[@class='xml'])")
    about = first.xpath(".//section[@class='about']")[0]
    assert "Los Alamos arXiv" in about.text_content()
    assert "deleted" in second.get("class")
    assert [a.text_content() for a in first.xpath(".//a[@class='set']")] == ["physics:hep", "math"]
    assert "http://an.oa.org/OAI-script?verb=ListIdentifiers&metadataPrefix=oai_rfc1807&set=physics%3Ahep" in page.hrefs()


def _jats_getrecord(article: etree._Element | None = None) -> etree._ElementTree:
    """A GetRecord as our server sends a JATS record (eLife's correction unless given): the article in no namespace
    inside the default OAI namespace (xmlns=""), with a provenance container about where it came from."""
    article = article if article is not None else _parse(DATA / "jats/elife07586_correction.xml").getroot()
    provenance = _parse(DATA / "oai-spec-examples/provenance-container_example.xml").getroot()
    body = etree.tostring(article, encoding="unicode").replace("<article ", '<article xmlns="" ', 1)
    return oai_doc(
        '<?xml-stylesheet type="text/xsl" href="/oai/static/oai2.xsl"?>'
        f'<OAI-PMH xmlns="{OAI_NS}"><responseDate>2026-12-01T10:00:00Z</responseDate>'
        '<request verb="GetRecord" identifier="oai:example.org:elife-07586" metadataPrefix="jats">'
        "http://127.0.0.1:8000/oai</request><GetRecord><record><header>"
        "<identifier>oai:example.org:elife-07586</identifier><datestamp>2026-11-30T09:15:00Z</datestamp>"
        "<setSpec>elife:corrections</setSpec></header>"
        f"<metadata>{body}</metadata>"
        f"<about>{etree.tostring(provenance, encoding='unicode')}</about>"
        "</record></GetRecord></OAI-PMH>")


def test_jats_record_summary_source_and_provenance(transform: etree.XSLT) -> None:
    doc = _jats_getrecord()
    assert doc.find(".//oai:metadata/article", NS) is not None  # really in no namespace
    page = render(transform, doc)
    assert page.text_of("//h2") == "Correction: Mucosal effects for tenofovir 1% gel"
    summary = {r.xpath("string(th)"): " ".join(r.xpath("string(td)").split())
               for r in page.xpath("//table[contains(@class, 'jats-summary')]//tr")}
    assert summary["Journal"] == "eLife"
    assert summary["Authors"].startswith("Hladik, Florian; ")
    # OJS writes every author's name inside name-alternatives, and NLM's samples give no contrib-type: the cell was
    # empty, or missing, or began with a stray "; " (an outside audit)
    ojs = _parse(DATA.parent / "jats" / "ojs" / "ojs-jatsTemplate_ie1.xml").getroot()
    untyped = _parse(DATA / "jats/elife07586_correction.xml").getroot()
    for contrib in untyped.iter("contrib"):
        contrib.attrib.pop("contrib-type", None)
    for article, authors in ((ojs, "author-lastname, author-firstname"), (untyped, summary["Authors"])):
        cells = {r.xpath("string(th)"): " ".join(r.xpath("string(td)").split())
                 for r in render(transform, _jats_getrecord(article)).xpath("//table[contains(@class, 'jats-summary')]//tr")}
        assert cells.get("Authors") == authors, cells
    assert summary["DOI"] == "10.7554/eLife.07586"
    assert page.links()["https://doi.org/10.7554/eLife.07586"] == "10.7554/eLife.07586"
    # a '#', '?' or '%' in a DOI is escaped in its link, as in oai_dc (an outside audit: the link led elsewhere)
    odd = _parse(DATA / "jats/elife07586_correction.xml").getroot()
    [doi] = [e for e in odd.iter("article-id") if e.get("pub-id-type") == "doi"]
    doi.text = "10.9999/a#b?x=1&y=50%off"
    links = render(transform, _jats_getrecord(odd)).links()
    assert links["https://doi.org/10.9999/a%23b%3Fx%3D1%26y%3D50%25off"] == "10.9999/a#b?x=1&y=50%off"
    source = page.xpath("//details[@class='source' and @open]//div[@class='xml']")[0].text_content()
    assert "<article-title>Correction: Mucosal effects for tenofovir 1% gel</article-title>" in source
    assert page.xpath("//section[@class='metadata']/h3/span[@class='ns']")[0].text_content() == ""
    # a JATS record also links to its JATS GetRecord; the oai_dc one is the identifier itself
    base = "http://127.0.0.1:8000/oai"
    assert f"{base}?verb=GetRecord&metadataPrefix=jats&identifier=oai%3Aexample.org%3Aelife-07586" in page.hrefs()
    assert f"{base}?verb=GetRecord&metadataPrefix=oai_dc&identifier=oai%3Aexample.org%3Aelife-07586" in page.hrefs()
    assert f"{base}?verb=ListIdentifiers&metadataPrefix=jats&set=elife%3Acorrections" in page.hrefs()
    # provenance: two nested origins, each with its repository and record linked
    origins = page.xpath("//div[@class='provenance']//li")
    assert len(origins) == 2
    assert "http://the.oa.org?verb=Identify" in page.hrefs()
    assert "http://some.oa.org?verb=GetRecord&metadataPrefix=oai_dc&identifier=oai%3Ar2.org%3Aklik001" in page.hrefs()
    assert origins[0].xpath("string(.//span[contains(@class, 'badge')])") == "altered"
    assert origins[1].xpath("string(.//span[contains(@class, 'badge')])") == "unaltered"
    assert page.xpath("//link[@rel='stylesheet']/@href") == ["/oai/static/oai2.css"]


def test_untrusted_text_stays_text(transform: etree.XSLT) -> None:
    doc = _parse(DATA / "sickle/GetRecord_utf8test.xml")
    title = doc.find(".//{http://purl.org/dc/elements/1.1/}title")
    title.text = '<script>alert("x")</script> & <b>bold</b>'
    page = render(transform, doc)
    assert not page.xpath("//script | //main//b")
    assert page.text_of("//h2") == '<script>alert("x")</script> & <b>bold</b>'
    assert "某人" in page.text_of("//table[@class='dc']")


# --------------------------------------------------------------------------- not OAI-PMH


def test_not_oai_documents_are_explained(transform: etree.XSLT) -> None:
    page = render(transform, "misc/pmc_Identify_2006_NEG_missing-default-namespace.xml")
    assert "in no namespace" in page.text_of("//*[@role='alert']")
    assert "<repositoryName>PubMed Central (PMC3 - NLM DTD)</repositoryName>" in page.text_of("//div[@class='xml']")
    assert page.xpath("//nav//a/@href")[0] == "?verb=Identify"  # relative to the page itself
    container = render(transform, "oai-spec-examples/provenance-container_example.xml")
    assert len(container.xpath("//div[@class='provenance']//li")) == 2


def test_namespace_declarations_are_not_repeated_in_source(transform: etree.XSLT) -> None:
    doc = _parse(DATA / "phpoaipmh-nsdl-bnf/nsdl_GetRecord_nsdl_dc.xml")
    page = render(transform, copy.deepcopy(doc))
    source = page.text_of("//div[@class='xml']")
    md_root = doc.find(".//oai:metadata/*", NS)
    assert source.startswith(f"<{md_root.prefix}:{etree.QName(md_root).localname}"
                             if md_root.prefix else f"<{etree.QName(md_root).localname}")
    for prefix, uri in md_root.nsmap.items():
        decl = f'xmlns:{prefix}="{uri}"' if prefix else f'xmlns="{uri}"'
        inherited = doc.getroot().nsmap.get(prefix) == uri
        assert source.count(decl) == (0 if inherited else 1), decl


def test_the_view_is_rendered_here_and_its_links_stay_in_it(engine, live_server) -> None:  # noqa: ANN001
    """Browsers are dropping XSLT (Chromium 156 says so on every page; an outside audit): /oai/view renders the
    same answer with the same stylesheet here, as HTML, and its links (the next page's included) lead to it."""
    import requests

    from endpoint_helpers import T0, dc_record, write

    write(engine, [dc_record(f"oai:example.org:{i}", title=f"Title <{i}> & more") for i in range(12)], T0)
    for public in (None, "https://repo.example.org/oai"):
        server = live_server(page_size=5, **({"base_url": public} if public else {}))
        view, public_view = f"{server.url}/view", f"{public or server.url}/view"
        reply = requests.get(view, params={"verb": "ListRecords", "metadataPrefix": "oai_dc"}, timeout=10,
                             headers={"Accept-Encoding": "gzip"})
        assert reply.status_code == 200 and reply.headers["Content-Type"] == "text/html; charset=utf-8"
        page = lxml.html.fromstring(reply.content)
        assert "Title <0> & more" in page.text_content() and "Title <5> & more" not in page.text_content()
        assert [link.get("href") for link in page.iter("link") if link.get("rel") == "stylesheet"] == [
            "/oai/static/oai2.css"]
        following = [a.get("href") for a in page.iter("a") if "resumptionToken=" in (a.get("href") or "")]
        assert following and all(href.startswith(f"{public_view}?") for href in following), following
        nxt = requests.get(following[0].replace(public_view, view), timeout=10)
        assert nxt.status_code == 200 and "Title <5> & more" in lxml.html.fromstring(nxt.content).text_content()
        # an error is a page too; the endpoint itself still answers XML, naming itself as the baseURL
        error = requests.get(view, params={"verb": "Nonsense"}, timeout=10)
        assert error.status_code == 200 and "badVerb" in error.text
        identify = requests.get(server.url, params={"verb": "Identify"}, timeout=10).content
        assert f"<baseURL>{public or server.url}</baseURL>".encode() in identify


def test_the_view_renders_what_the_endpoint_serves_or_says_it_cannot(engine, live_server) -> None:  # noqa: ANN001
    """A review of the view: a text node over 10 MB (which the harvester takes and /oai serves) and a DOI of
    3,200 '/'s (past libxslt's recursion depth) were 500s; links left OAI_BASE_URL's path (/pmh) for /oai."""
    import requests

    from oai.formats import registry
    from oai.formats.dc import build_dc
    from oai.formats.safexml import canonical_bytes
    from oai.store.engine import transaction
    from oai.store.records import RecordIn, upsert_records

    seed = registry.ingest_document((Path(__file__).parents[1] / "oai/demo/irkutsk-bulletin-2020-32-44.xml").read_bytes())
    deep = seed.metadata["jats"].replace(b"10.26516/2073-3380.2020.32.44", b"10.1234/" + b"a/" * 3200 + b"z")
    huge = canonical_bytes(build_dc([("title", "Huge", None), ("description", "x" * 10_500_000, None)]))
    with transaction(engine) as s:
        upsert_records(s, [RecordIn("oai:example.org:deep", {"jats": deep, "oai_dc": seed.metadata["oai_dc"]}),
                           RecordIn("oai:example.org:huge", {"oai_dc": huge})])
    server = live_server(base_url="https://example.org/pmh")
    view = f"{server.url}/view"
    got = requests.get(view, params={"verb": "GetRecord", "metadataPrefix": "oai_dc",
                                     "identifier": "oai:example.org:huge"}, timeout=30)
    assert got.status_code == 200 and "x" * 1000 in got.text
    links = [a.get("href") for a in lxml.html.fromstring(got.content).iter("a")]
    assert any(href.startswith("https://example.org/pmh/view?verb=") for href in links), links
    assert not any(href.startswith("https://example.org/oai/") for href in links), links
    got = requests.get(view, params={"verb": "GetRecord", "metadataPrefix": "jats",
                                     "identifier": "oai:example.org:deep"}, timeout=30)
    assert got.status_code == 200 and "too large or deep to show as a page" in got.text
    assert ('href="https://example.org/pmh?verb=GetRecord&amp;metadataPrefix=jats&amp;identifier=oai%3Aexample.org'
            '%3Adeep"') in got.text


def _get_record(metadata: str) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?><OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">'
            '<responseDate>2026-01-01T00:00:00Z</responseDate><request verb="GetRecord" metadataPrefix="xh" '
            'identifier="oai:example.org:x">http://127.0.0.1/oai</request><GetRecord><record><header>'
            '<identifier>oai:example.org:x</identifier><datestamp>2026-01-01T00:00:00Z</datestamp></header>'
            f'<metadata>{metadata}</metadata></record></GetRecord></OAI-PMH>').encode()


def test_a_record_declaring_a_flood_of_namespaces_is_shown_without_them() -> None:
    """An outside security audit: one 71 KB record of a format we keep as it came, declaring 2,000 namespaces it uses
    over 200 children, held a core for hours in the browser view (each element's declarations are found by comparing
    its namespaces with its parent's). Past a budget the view leaves declarations out; a record of ours shows them."""
    from oai.web.view import NAMESPACE_WORK, namespace_work, render_view

    used = " ".join(f'xmlns:n{i}="urn:n{i}" n{i}:a="1"' for i in range(600))
    flood = _get_record(f'<x:r xmlns:x="urn:x" {used}>' + "<x:c/>" * 20 + "</x:r>")
    assert namespace_work(etree.fromstring(flood)) > NAMESPACE_WORK
    html = render_view(flood, "/oai/static/oai2.xsl", "http://127.0.0.1/oai/view").decode()
    assert "n599:a" in html and "urn:n599" not in html  # its attributes shown, its declarations not
    small = _get_record('<x:r xmlns:x="urn:x" xmlns:y="urn:y"><y:c/></x:r>')
    assert "urn:y" in render_view(small, "/oai/static/oai2.xsl", "http://127.0.0.1/oai/view").decode()


def test_a_process_renders_one_browser_view_at_a_time_and_hands_the_memory_back(monkeypatch) -> None:
    """An outside soak audit: a page of 100 JATS articles takes libxslt about 50 MB; a gunicorn worker's four threads
    rendering views at once, the allocator keeping what they freed, left each worker at 275 MB (75 serving alone)."""
    import threading
    import time

    from oai.web import view

    busy, most, trimmed = [0], [0], []
    lock = threading.Lock()

    def transform(document, **_params):  # noqa: ANN001, ANN202
        with lock:
            busy[0] += 1
            most[0] = max(most[0], busy[0])
        time.sleep(0.1)
        with lock:
            busy[0] -= 1
        return b"<html/>"

    monkeypatch.setattr(view, "_view_transform", lambda: transform)
    monkeypatch.setattr(view, "_give_back", lambda: trimmed.append(1))
    page = _get_record('<x:r xmlns:x="urn:x"/>')
    threads = [threading.Thread(target=view.render_view, args=(page, "/s.xsl", "http://127.0.0.1/oai/view"))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert most[0] == 1 and len(trimmed) == 4
