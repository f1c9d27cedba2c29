"""The `jats` format: JATS/NLM articles in, namespaced JATS Publishing 1.4 out (plus oai_dc).

Input: JATS 1.0-1.4 or NLM 2.x/3.0 `<article>`, Publishing or Archiving, with or without a
DOCTYPE (never loaded), in no namespace or in a JATS/NLM namespace (as PubMed Central serves it).

Served: the article with every JATS element moved into JATS_NS; attributes, xlink, MathML, ALI
and xml:* untouched (ALI of the 1.1 drafts, http://www.niso.org/schemas/ali/1.0, is moved to the
final namespace with the trailing slash); dtd-version kept (left out, with a warning, when
JATS 1.4 does not know it, e.g. NLM "2.3"); comments, PIs, xsi hints and whitespace in
element-only content dropped, so that the bytes are canonical. OAI-PMH needs a namespaced root and
JATS has none, so we follow PubMed Central's form (https://jats.nlm.nih.gov/ns/archiving/1.3/ for
pmc/pmc_fm) and name what we validate: Journal Publishing 1.4 (MathML 3). The schema is ours,
schemas/jats-oai/jats-publishing-1.4-oai.xsd: a chameleon include of the unmodified official
XSD. schema_url is None because only we publish it: the web layer advertises
<base>/schemas/<schema_relpath>.

full_text=True serves the whole article, False (full text not ours to share) the article with
its <front> only. What we serve is validated first: an invalid full text falls back to the front
matter, an invalid front matter means no `jats` (only oai_dc), each with a warning. Front matter
drops references (IDREFs) to what it leaves out; libxml2 does not check IDREFs, so we do.
"""

from __future__ import annotations

import copy
import re
from functools import lru_cache
from pathlib import Path

from lxml import etree

from oai.formats import dc
from oai.formats.base import SCHEMAS_DIR, FormatError, Ingested, compile_schema, first_error
from oai.formats.jats_crosswalk import crosswalk
from oai.formats.safexml import canonical_bytes

JATS_NS = "https://jats.nlm.nih.gov/ns/publishing/1.4/"
SCHEMA_RELPATH = "jats-oai/jats-publishing-1.4-oai.xsd"
_ELEMENTS_XSD = SCHEMAS_DIR / "jats-oai/1.4-publishing-mathml3/JATS-journalpublishing1-4-mathml3-elements.xsd"

XLINK_NS = "http://www.w3.org/1999/xlink"
MML_NS = "http://www.w3.org/1998/Math/MathML"
ALI_NS = "http://www.niso.org/schemas/ali/1.0/"
ALI_DRAFT_NS = "http://www.niso.org/schemas/ali/1.0"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
_XSI = {"xsi": XSI_NS}
_TOP_NSMAP = {None: JATS_NS, "xlink": XLINK_NS, "mml": MML_NS, "ali": ALI_NS}

# Namespaces JATS/NLM articles arrive in: PMC's https://jats.nlm.nih.gov/ns/archiving/1.3/,
# the NLM 2.x/3.0 XSD namespaces http://dtd.nlm.nih.gov/..., and our own.
_INPUT_NS = re.compile(r"^https?://(jats\.nlm\.nih\.gov/ns/|dtd\.nlm\.nih\.gov/)")
_BEYOND_FRONT = ("body", "back", "floats-group", "sub-article", "response")


class _SchemaFacts:
    """What we read once from the JATS 1.4 declarations: element-only models, IDREFs, versions."""

    def __init__(self, path: Path) -> None:
        xs = "{http://www.w3.org/2001/XMLSchema}"
        tree = etree.parse(str(path), etree.XMLParser(no_network=True))
        element_only = set()
        for element in tree.getroot().iterchildren(f"{xs}element"):
            complex_type = element.find(f"{xs}complexType")
            if complex_type is not None and complex_type.get("mixed") != "true":
                element_only.add(element.get("name"))
        self.element_only = frozenset(element_only)
        self.idref_attributes = frozenset(
            a.get("name") for a in tree.iter(f"{xs}attribute") if a.get("type") in ("xsd:IDREF", "xsd:IDREFS")
        )
        versions = tree.xpath(
            "/xs:schema/xs:element[@name='article']//xs:attribute[@name='dtd-version']//xs:enumeration/@value",
            namespaces={"xs": xs[1:-1]},
        )
        self.dtd_versions = frozenset(versions)


@lru_cache(maxsize=1)
def _facts() -> _SchemaFacts:
    return _SchemaFacts(_ELEMENTS_XSD)


def _is_jats_namespace(namespace: str | None) -> bool:
    return namespace is None or namespace == JATS_NS or bool(_INPUT_NS.match(namespace))


def normalise(root: etree._Element) -> etree._Element:
    """A no-namespace copy of a JATS article, without comments, PIs, schema hints or padding."""
    article = copy.deepcopy(root)
    article.tail = None
    etree.strip_tags(article, etree.Comment, etree.ProcessingInstruction)
    for hint in article.xpath("//@xsi:schemaLocation | //@xsi:noNamespaceSchemaLocation", namespaces=_XSI):
        del hint.getparent().attrib[hint.attrname]
    element_only = _facts().element_only
    for element in article.iter(etree.Element):
        tag = element.tag
        if tag[0] == "{":
            namespace, _, local = tag[1:].partition("}")
            if namespace == ALI_DRAFT_NS:
                element.tag = f"{{{ALI_NS}}}{local}"
            elif _is_jats_namespace(namespace):
                element.tag = tag = local
        if tag in element_only:  # whitespace there is insignificant (XSD, not mixed)
            if element.text is not None and not element.text.strip():
                element.text = None
            for child in element:
                if child.tail is not None and not child.tail.strip():
                    child.tail = None
    etree.cleanup_namespaces(article)
    return article


def front_matter(article: etree._Element) -> etree._Element:
    """The article with <front> only; references to what was left out are dropped."""
    front = article.find("front")
    if front is None:
        raise FormatError("JATS article without <front>")
    result = etree.Element(article.tag, attrib=dict(article.attrib), nsmap=article.nsmap)
    result.append(copy.deepcopy(front))
    _drop_dangling_idrefs(result)
    return result


def _drop_dangling_idrefs(tree: etree._Element) -> None:
    """Remove IDREFs to elements not in `tree`; an <xref> left pointing nowhere is unwrapped."""
    ids = set(tree.xpath("//@id"))
    attributes = _facts().idref_attributes
    orphans = []
    for element in tree.iter(etree.Element):
        for name in [name for name in element.attrib if name in attributes]:
            kept = [ref for ref in element.get(name).split() if ref in ids]
            if kept:
                element.set(name, " ".join(kept))
            else:
                del element.attrib[name]
                if element.tag == "xref" and name == "rid":
                    orphans.append(element)
    for xref in orphans:
        _unwrap(xref)


def _unwrap(element: etree._Element) -> None:
    """Replace `element` by its content (text and children), keeping its tail."""
    parent = element.getparent()
    index = parent.index(element)

    def add_text(position: int, text: str | None) -> None:
        if not text:
            return
        if position == 0:
            parent.text = (parent.text or "") + text
        else:
            before = parent[position - 1]
            before.tail = (before.tail or "") + text

    add_text(index, element.text)
    children, tail = list(element), element.tail
    parent.remove(element)
    for offset, child in enumerate(children):
        parent.insert(index + offset, child)
    add_text(index + len(children), tail)


def into_namespace(article: etree._Element) -> etree._Element:
    """A self-contained article with its JATS elements in JATS_NS (consumes `article`'s content)."""
    nsmap = dict(_TOP_NSMAP)
    for prefix, uri in article.nsmap.items():
        if prefix is not None and prefix not in nsmap and uri not in nsmap.values():
            nsmap[prefix] = uri
    for element in article.iter(etree.Element):  # namespaces declared further down
        if element.tag[0] == "{" and element.prefix and element.prefix not in nsmap:
            uri = etree.QName(element).namespace
            if uri not in nsmap.values():
                nsmap[element.prefix] = uri
    served = etree.Element(f"{{{JATS_NS}}}article", nsmap=nsmap)
    for name, value in article.attrib.items():
        served.set(name, value)
    served.text = article.text
    for child in list(article):
        served.append(child)
    for element in served.iter(etree.Element):
        if element.tag[0] != "{":
            element.tag = f"{{{JATS_NS}}}{element.tag}"
    etree.cleanup_namespaces(served, top_nsmap=nsmap)
    return served


def validate(served: etree._Element) -> str | None:
    """The first error of namespaced JATS against the schema we advertise, or None."""
    error = first_error(compile_schema(FORMAT.schema_path), served)
    if error:
        return error.replace(f"{{{JATS_NS}}}", "")
    return _dangling_idref(served)


def _dangling_idref(tree: etree._Element) -> str | None:
    """The first IDREF without its ID: XSD requires the match, libxml2 does not check it."""
    ids = set(tree.xpath("//@id"))
    attributes = _facts().idref_attributes
    for element in tree.iter(etree.Element):
        for name, value in element.attrib.items():
            if name in attributes:
                for ref in value.split():
                    if ref not in ids:
                        return f"line {element.sourceline}: attribute {name!r}: IDREF {ref!r} has no matching ID"
    return None


def serve(article: etree._Element, *, full_text: bool) -> tuple[etree._Element | None, list[str]]:
    """The namespaced JATS to serve for a normalised article (or None), and warnings why not."""
    warnings: list[str] = []
    version = article.get("dtd-version")
    unknown_version = version is not None and version not in _facts().dtd_versions
    if unknown_version:
        warnings.append(f"jats: dtd-version {version!r} is not a JATS 1.4 value; left out of the served copy")

    def namespaced(tree: etree._Element) -> etree._Element:
        if unknown_version:
            del tree.attrib["dtd-version"]
        return into_namespace(tree)

    if full_text and any(article.find(name) is not None for name in _BEYOND_FRONT):
        served = namespaced(copy.deepcopy(article))
        error = validate(served)
        if error is None:
            return served, warnings
        warnings.append(f"jats: full text not valid against JATS Publishing 1.4 ({error}); serving front matter only")
    served = namespaced(front_matter(article))
    error = validate(served)
    if error is None:
        return served, warnings
    warnings.append(f"jats: front matter not valid against JATS Publishing 1.4 ({error}); no jats record, oai_dc only")
    return None, warnings


class Jats:
    """JATS journal articles, served as namespaced JATS Journal Publishing 1.4."""

    prefix = "jats"
    namespace = JATS_NS
    schema_url: str | None = None
    schema_relpath = SCHEMA_RELPATH
    schema_path: Path = SCHEMAS_DIR / SCHEMA_RELPATH
    root_tag = f"{{{JATS_NS}}}article"

    def recognise(self, root: etree._Element) -> bool:
        """True for an <article> in no namespace, a JATS/NLM namespace or ours."""
        if not isinstance(root.tag, str):
            return False
        qname = etree.QName(root)
        return qname.localname == "article" and _is_jats_namespace(qname.namespace)

    def ingest(self, root: etree._Element, *, full_text: bool = True) -> Ingested:
        """Crosswalk to oai_dc, and serve valid namespaced JATS when we can."""
        if not self.recognise(root):
            raise FormatError(f"not a JATS article: root element is {root.tag}")
        article = normalise(root)
        if article.find("front") is None:
            raise FormatError("JATS article without <front>: nothing to describe it with")
        fields, facts = crosswalk(article)
        record = dc.build_dc(fields)
        error = dc.validate(record)
        if error:  # a crosswalk bug, never the input's fault
            raise FormatError(f"crosswalk JATS -> oai_dc produced invalid oai_dc: {error}")
        metadata = {dc.FORMAT.prefix: canonical_bytes(record)}
        served, warnings = serve(article, full_text=full_text)
        if served is not None:
            metadata[self.prefix] = canonical_bytes(served)
        return Ingested(metadata=metadata, citation=facts, warnings=tuple(warnings))


FORMAT = Jats()
