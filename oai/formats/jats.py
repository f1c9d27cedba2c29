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
schemas/jats-oai/jats-publishing-1.4-oai.xsd: a chameleon include of the official XSD with ID,
IDREF and IDREFS typed as names (IDs are unique per document, and a response holds many articles);
records are validated against the unmodified official XSD. schema_url is None because only we
publish it: the web layer advertises <base>/schemas/<schema_relpath>.

Archiving-style element orders that Publishing 1.4 forbids are repaired where moving changes no
meaning (normalise: <contrib-id> to the start of its <contrib>, group information before the
first <contrib> of a <contrib-group> after the contribs); nothing else is changed to make an
article valid: what cannot be served as it is falls back, as below.

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
from oai.formats.base import (SCHEMAS_DIR, XSI_NS, FormatError, Ingested, compile_schema, first_error, read_schema,
                              schema_of)
from oai.formats.jats_crosswalk import crosswalk
from oai.formats.safexml import canonical_bytes

JATS_NS = "https://jats.nlm.nih.gov/ns/publishing/1.4/"
SCHEMA_RELPATH = "jats-oai/jats-publishing-1.4-oai.xsd"
_ELEMENTS_XSD = SCHEMAS_DIR / "jats-oai/1.4-publishing-mathml3/JATS-journalpublishing1-4-mathml3-elements.xsd"

XLINK_NS = "http://www.w3.org/1999/xlink"
MML_NS = "http://www.w3.org/1998/Math/MathML"
ALI_NS = "http://www.niso.org/schemas/ali/1.0/"
ALI_DRAFT_NS = "http://www.niso.org/schemas/ali/1.0"
XSD_NS = "http://www.w3.org/2001/XMLSchema"
_XSI = {"xsi": XSI_NS}
_TOP_NSMAP = {None: JATS_NS, "xlink": XLINK_NS, "mml": MML_NS, "ali": ALI_NS}

# Namespaces JATS/NLM articles arrive in (JATS has none; a namespace around it changes nothing of what it says):
# PMC's https://jats.nlm.nih.gov/ns/archiving/1.3/, the NLM 2.x/3.0 XSD namespaces http://dtd.nlm.nih.gov/...,
# ours, and any other that names JATS: Janeway's https://jats.nlm.nih.gov/publishing/1.2/, Silverchair's
# http://specifications.silverchair.com/xsd/1/42/SCJATS-journalpublishing-mathml3.xsd (an outside audit found
# both refused as not JATS).
_INPUT_NS = re.compile(r"jats|^https?://dtd\.nlm\.nih\.gov/", re.IGNORECASE)
_BEYOND_FRONT = frozenset(("body", "back", "floats-group", "sub-article", "response"))

# Compiled once: schema hints to drop, IDs (document-wide, as libxml2 sees them), namespaced elements.
_SCHEMA_HINTS = etree.XPath(
    "//*/@xsi:*[local-name() = 'schemaLocation' or local-name() = 'noNamespaceSchemaLocation']", namespaces=_XSI
)
_IDS = etree.XPath("//@id")


class _SchemaFacts:
    """What we read once from the JATS 1.4 declarations: element-only models, IDREFs, versions."""

    def __init__(self, path: Path) -> None:
        xs = "{http://www.w3.org/2001/XMLSchema}"
        tree = read_schema(path)
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
        types = tree.xpath(
            "/xs:schema/xs:element[@name='article-id']//xs:attribute[@name='pub-id-type']//xs:enumeration/@value",
            namespaces={"xs": xs[1:-1]},
        )
        self.pub_id_types = frozenset(types)  # pub-id's are the same (a test checks)
        # every IDREF(S) attribute (all unqualified) of `tree` and below, in document order
        paths = (f"descendant-or-self::*/@{name}" for name in sorted(self.idref_attributes))
        self.idrefs = etree.XPath(" | ".join(paths))


@lru_cache(maxsize=1)
def _facts() -> _SchemaFacts:
    return _SchemaFacts(_ELEMENTS_XSD)


def _is_jats_namespace(namespace: str | None) -> bool:
    return namespace is None or namespace == JATS_NS or bool(_INPUT_NS.search(namespace))


def normalise(root: etree._Element, *, in_place: bool = False) -> etree._Element:
    """A no-namespace copy of a JATS article, without comments, PIs, schema hints or padding.

    Element orders that Archiving (and JATS before 1.4) allow and Publishing 1.4 does not are
    put right where moving elements changes no meaning; see _reorder(). in_place=True
    normalises `root` itself instead of a copy (for a tree nobody else uses).
    """
    article = root if in_place else copy.deepcopy(root)
    article.tail = None
    etree.strip_tags(article, etree.Comment, etree.ProcessingInstruction)
    for hint in _SCHEMA_HINTS(article):
        del hint.getparent().attrib[hint.attrname]
    element_only = _facts().element_only
    noted: dict[str, list[etree._Element]] = {name: [] for name in _NOTED}
    for element in article.iter(etree.Element):
        tag = element.tag
        if tag[0] == "{":
            namespace, _, local = tag[1:].partition("}")
            if namespace == ALI_DRAFT_NS:
                element.tag = f"{{{ALI_NS}}}{local}"
            elif _is_jats_namespace(namespace):
                element.tag = tag = local
        if tag in element_only:  # whitespace there is insignificant (XSD, not mixed)
            text = element.text
            if text is not None and not text.strip():
                element.text = None
            for child in element:
                tail = child.tail
                if tail is not None and not tail.strip():
                    child.tail = None
        found = noted.get(tag)  # one lookup an element: this loop runs over every element of every article
        if found is not None:
            found.append(element)
    etree.cleanup_namespaces(article)
    if noted["contrib-id"] or noted["contrib-group"]:
        _reorder(noted["contrib-id"], noted["contrib-group"])
    _respell(noted)
    return article


# Elements normalise() notes for _reorder() and _respell().
_NOTED = ("contrib-id", "contrib-group", "article-id", "pub-id", "journal-meta", "license", "fn")


def _respell(noted: dict[str, list[etree._Element]]) -> None:
    """Names JATS spelt anew, written as Publishing 1.4 spells them: the same facts in the same order."""
    known = _facts().pub_id_types
    for element in noted["article-id"] + noted["pub-id"]:
        kind = element.get("pub-id-type")
        if kind == "pmc":  # NLM 2.x/3.0's name of what JATS 1.0 on calls pmcid
            element.set("pub-id-type", "pmcid")
        elif kind is not None and kind not in known and element.get("custom-type") is None:
            # a type JATS does not list (eLibrary's EDN in Russian journals): JATS names it so, "custom"
            element.set("pub-id-type", "custom")
            element.set("custom-type", kind)
    for element in noted["fn"]:
        if element.get("fn-type") == "COI-statement":  # NLM 3.0's spelling
            element.set("fn-type", "coi-statement")
    for journal_meta in noted["journal-meta"]:
        _group_journal_titles(journal_meta)
    for license_ in noted["license"]:  # NLM 2.x/3.0's license paragraphs, <license-p> since JATS 1.0
        for child in license_:
            if child.tag == "p":
                child.tag = "license-p"


_JOURNAL_TITLES = frozenset(("journal-title", "journal-subtitle", "trans-title", "abbrev-journal-title"))


def _group_journal_titles(journal_meta: etree._Element) -> None:
    """NLM 2.x's journal titles, children of <journal-meta>, into the <journal-title-group> JATS 1.0 put them in
    (where the first of them stood; each <trans-title> in a <trans-title-group> of its own). The same titles
    in the same order: what NLM 2.x said, in the form JATS says it."""
    titles = [child for child in journal_meta if child.tag in _JOURNAL_TITLES]
    if not titles or not _element_only(journal_meta):
        return
    group = etree.Element("journal-title-group")
    titles[0].addprevious(group)
    for title in titles:
        if title.tag == "trans-title":
            wrapper = etree.SubElement(group, "trans-title-group")
            wrapper.append(title)
        else:
            group.append(title)


def _reorder(contrib_ids: list[etree._Element], groups: list[etree._Element]) -> None:
    """Meaning-preserving moves into the Publishing 1.4 order (Archiving allows any order).

    * <contrib-id> after the name in a <contrib> (eLife, JATS 1.1 Archiving): every contrib-id
      moves to the start of its contrib, in their order. A contrib's parts are identified by
      their names, not their positions.
    * <role>, <aff>, ... before the first <contrib> of a <contrib-group> (eLife's group-author
      sub-groups, "<role>Writing group</role>" first): they move after the contribs, in their
      order; group-level information applies to the whole group wherever it stands. Not when
      such elements also stand between contribs (an <on-behalf-of> there is read as applying to
      the authors before it): that order is left as is, and fails validation.
    Nothing moves in an element with text of its own (element-only content keeps none).
    """
    contribs = {id(parent): parent for parent in (e.getparent() for e in contrib_ids) if parent is not None}
    for contrib in contribs.values():
        if contrib.tag != "contrib" or not _element_only(contrib):
            continue
        ids = [child for child in contrib if child.tag == "contrib-id"]
        if any(child.tag != "contrib-id" for child in contrib[: len(ids)]):
            for position, contrib_id in enumerate(ids):
                contrib.insert(position, contrib_id)
    for group in groups:
        children = list(group)
        tags = [child.tag for child in children]
        if "contrib" not in tags or tags[0] == "contrib" or not _element_only(group):
            continue
        first = tags.index("contrib")
        last = len(tags) - 1 - tags[::-1].index("contrib")
        if all(tag == "contrib" for tag in tags[first : last + 1]):
            group[:] = children[first : last + 1] + children[:first] + children[last + 1 :]


def _element_only(element: etree._Element) -> bool:
    """True when `element` holds elements only: no text, no tails of its children."""
    return element.text is None and all(child.tail is None for child in element)


def front_matter(article: etree._Element, *, consume: bool = False) -> etree._Element:
    """The article with <front> only; references to what was left out are dropped. With consume=True `article`
    may be reused or emptied (no copy made)."""
    front = article.find("front")
    if front is None:
        raise FormatError("JATS article without <front>")
    if consume and len(article) == 1 and article.text is None:
        result = article  # already nothing but its <front>
    else:
        result = etree.Element(article.tag, attrib=dict(article.attrib), nsmap=article.nsmap)
        result.append(front if consume else copy.deepcopy(front))
    _drop_dangling_idrefs(result)
    return result


def _drop_dangling_idrefs(tree: etree._Element) -> None:
    """Remove IDREFs to elements not in `tree`; an <xref> left pointing nowhere is unwrapped."""
    ids = set(_IDS(tree))
    orphans = []
    for value in _facts().idrefs(tree):
        refs = value.split()
        kept = [ref for ref in refs if ref in ids]
        if kept and len(kept) == len(refs) and value == " ".join(refs):
            continue  # every reference resolves and the value is already in normal form
        element, name = value.getparent(), value.attrname
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


def _served_nsmap(article: etree._Element) -> dict[str | None, str]:
    """The namespaces a served article declares on its root: ours (default), xlink, MathML, ALI, then
    any other prefix the article uses, so that the bytes stand alone."""
    nsmap = dict(_TOP_NSMAP)
    for prefix, uri in article.nsmap.items():
        if prefix is not None and prefix not in nsmap and uri not in nsmap.values():
            nsmap[prefix] = uri
    for element in article.iter(etree.Element):  # namespaces declared further down
        if element.prefix and element.prefix not in nsmap:
            uri = etree.QName(element).namespace
            if uri not in nsmap.values():
                nsmap[element.prefix] = uri
    return nsmap


def into_namespace(article: etree._Element) -> etree._Element:
    """A self-contained article with its JATS elements in JATS_NS (consumes `article`'s content)."""
    nsmap = _served_nsmap(article)
    served = etree.Element(_ARTICLE, attrib=article.attrib, nsmap=nsmap)
    served.text = article.text
    served.extend(list(article))
    prefix = f"{{{JATS_NS}}}"
    for element in served.iter("{}*"):  # every element in no namespace is a JATS element
        element.tag = prefix + element.tag
    etree.cleanup_namespaces(served, top_nsmap=nsmap)
    return served


def _rooted(article: etree._Element) -> etree._Element:
    """The no-namespace article under a new root that declares what the served root will (but ours),
    (consumes `article`'s content): the tree that _served_bytes() validates and writes."""
    nsmap = _served_nsmap(article)
    del nsmap[None]
    root = etree.Element("article", attrib=article.attrib, nsmap=nsmap)
    root.text = article.text
    root.extend(list(article))
    etree.cleanup_namespaces(root, top_nsmap=nsmap)
    return root


_OUR_ROOT = f'<article xmlns="{JATS_NS}"'.encode()
_XSI_URI = XSI_NS.encode()


def _declaring_ours_suffices(data: bytes) -> bool:
    """True when the bytes of a _rooted() article, with JATS_NS declared on the root, are those of
    into_namespace(): no default namespace is declared or undeclared inside, no xsi attribute
    (xsi:type names a type by QName, which the default namespace would change)."""
    return data.startswith((b"<article ", b"<article>", b"<article/")) and b'xmlns="' not in data and _XSI_URI not in data


def _served_bytes(article: etree._Element, *, idrefs: bool) -> tuple[bytes | None, str | None]:
    """(the canonical bytes of into_namespace(article), None) when it is valid, else (None, its first error).

    Consumes `article`. Moving every element into JATS_NS one by one was the costliest step of
    ingest after the crosswalk; instead the no-namespace tree is validated against the official
    no-namespace XSD (which our schema includes unchanged under JATS_NS, so the verdict is the
    same) and written with our namespace declared on its root: every element in no namespace is
    then in JATS_NS, and the bytes are those into_namespace() gives. Where that could differ (a
    default namespace declared inside the article, xsi attributes), the slow path is taken.
    tests/test_formats_jats.py checks both the bytes and the verdicts against the slow path.
    """
    root = _rooted(article)
    data = canonical_bytes(root)
    if _declaring_ours_suffices(data):
        error = _validate(root, idrefs=idrefs, plain=True)
        return (None, error) if error else (_OUR_ROOT + data[len(b"<article"):], None)
    served = into_namespace(root)
    error = _validate(served, idrefs=idrefs)
    return (None, error) if error else (canonical_bytes(served), None)


_ARTICLE = f"{{{JATS_NS}}}article"
_USES_MATHML = etree.XPath("boolean(//mml:* | //@mml:*)", namespaces={"mml": MML_NS})
_MATHML_STAND_IN = "mathml-math-any.xsd"  # beside our schema


# The official no-namespace driver, which our schemas include under JATS_NS (a chameleon include).
_PLAIN_SCHEMA_PATH = SCHEMAS_DIR / "jats-oai/1.4-publishing-mathml3/JATS-journalpublishing1-4-mathml3.xsd"
# The namespaced schema records are validated against: the advertised one, but with the official ID
# types (the advertised one widens them so that a page of many articles is valid as one document).
STRICT_SCHEMA_PATH = SCHEMAS_DIR / "jats-oai/jats-publishing-1.4-oai-strict.xsd"


@lru_cache(maxsize=2)
def _schema_without_mathml(plain: bool = False) -> etree.XMLSchema:
    """Our schema (plain: the official no-namespace one) with the MathML 3 import pointed at a
    stand-in, for articles with no MathML in them.

    JATS refers to MathML only through mml:math, so such an article gets the official schema's
    verdict (tests check both); libxml2 compiles this in about 0.1 s, the MathML 3 models in about 5 s.
    """
    tree = read_schema(_PLAIN_SCHEMA_PATH if plain else STRICT_SCHEMA_PATH)
    (mathml,) = tree.getroot().iterfind(f"{{{XSD_NS}}}import[@namespace='{MML_NS}']")
    mathml.set("schemaLocation", "../" + _MATHML_STAND_IN if plain else _MATHML_STAND_IN)
    return schema_of(tree)


def validate(served: etree._Element) -> str | None:
    """The first error of namespaced JATS against the strict form of the schema we advertise, or None."""
    return _validate(served, idrefs=True)


def _validate(served: etree._Element, *, idrefs: bool, plain: bool = False) -> str | None:
    """validate(); idrefs=False when every IDREF is known to resolve (dangling ones dropped);
    plain=True for an article in no namespace, against the official no-namespace schema."""
    if _USES_MATHML(served):
        schema = compile_schema(_PLAIN_SCHEMA_PATH if plain else STRICT_SCHEMA_PATH)
    else:
        schema = _schema_without_mathml(plain)
    error = first_error(schema, served)
    if error:
        return _said_plainly(error.replace(f"{{{JATS_NS}}}", ""), served)
    return _dangling_idref(served) if idrefs else None


_NOT_AN_ID = re.compile(r"attribute '[^']*': '([^']*)' is not a valid value of the atomic type 'xs:ID'")


def _said_plainly(error: str, tree: etree._Element) -> str:
    """`error`, with what a librarian can mend where libxml2 says it in the schema's terms: an id given to two
    elements is "not a valid value of the atomic type 'xs:ID'", which reads as a malformed id (an outside audit)."""
    match = _NOT_AN_ID.search(error)
    if match is None:
        return error
    lines = [value.getparent().sourceline for value in _IDS(tree) if value == match.group(1)]
    if len(lines) < 2:
        return error
    return (f"{error} (the id {match.group(1)!r} is given to {len(lines)} elements, on lines "
            f"{', '.join(map(str, dict.fromkeys(lines)))}: an id names one element)")


def _dangling_idref(tree: etree._Element) -> str | None:
    """The first IDREF without its ID: XSD requires the match, libxml2 does not check it."""
    ids = set(_IDS(tree))
    for value in _facts().idrefs(tree):
        for ref in value.split():
            if ref not in ids:
                element = value.getparent()
                return f"line {element.sourceline}: attribute {value.attrname!r}: IDREF {ref!r} has no matching ID"
    return None


def serve(article: etree._Element, *, full_text: bool) -> tuple[bytes | None, list[str]]:
    """The bytes of the namespaced JATS to serve for a normalised article (or None), and warnings why not."""
    return _serve(copy.deepcopy(article), full_text=full_text)


def _serve(article: etree._Element, *, full_text: bool) -> tuple[bytes | None, list[str]]:
    """serve(), consuming `article`: its content moves into what is served (no copy of it)."""
    warnings: list[str] = []
    version = article.get("dtd-version")
    unknown_version = version is not None and version not in _facts().dtd_versions
    if unknown_version:
        warnings.append(f"jats: dtd-version {version!r} is not a JATS 1.4 value; left out of the served copy")

    def served(tree: etree._Element, *, idrefs: bool) -> tuple[bytes | None, str | None]:
        if unknown_version:
            del tree.attrib["dtd-version"]
        return _served_bytes(tree, idrefs=idrefs)

    if full_text and any(child.tag in _BEYOND_FRONT for child in article):
        front = article.find("front")
        spare = copy.deepcopy(front) if front is not None else None  # in case the full text fails
        shell = etree.Element(article.tag, attrib=dict(article.attrib), nsmap=article.nsmap)
        data, error = served(article, idrefs=True)  # consumes article
        if data is not None:
            return data, warnings
        warnings.append(f"jats: full text not valid against JATS Publishing 1.4 ({error}); serving front matter only")
        if spare is not None:
            shell.append(spare)
        article = shell
    data, error = served(front_matter(article, consume=True), idrefs=False)
    if data is not None:
        return data, warnings
    warnings.append(f"jats: front matter not valid against JATS Publishing 1.4 ({error}); no jats record, oai_dc only")
    return None, warnings


# libxml2 sets attributes one by one, each after a scan of those set before: copying the <article>'s (as normalising
# and serving do) took 27 s for 40,000, and 300,000 (a 3 MB file) would take half an hour (an outside audit stalled
# `oai load` so). JATS gives <article> a handful.
MAX_ROOT_ATTRIBUTES = 100


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

    def warm(self) -> None:
        """The schema facts, the schema for articles without MathML, and oai_dc's (the full one stays lazy)."""
        _facts()
        _schema_without_mathml(True)  # positional, as _validate() calls it: lru_cache keys differ otherwise
        dc.FORMAT.warm()

    def ingest(self, root: etree._Element, *, full_text: bool = True, consume: bool = False) -> Ingested:
        """Crosswalk to oai_dc, and serve valid namespaced JATS when we can (consume: see MetadataFormat)."""
        if not self.recognise(root):
            raise FormatError(f"not a JATS article: root element is {root.tag}")
        if len(root.attrib) > MAX_ROOT_ATTRIBUTES:  # before anything copies them
            raise FormatError(f"the <article> element has {len(root.attrib)} attributes; JATS gives it a few")
        article = normalise(root, in_place=consume)
        if article.find("front") is None:
            raise FormatError("JATS article without <front>: nothing to describe it with")
        fields, facts = crosswalk(article)
        try:
            metadata = {dc.FORMAT.prefix: dc.serialise(fields)}
        except FormatError as exc:  # a crosswalk bug, never the input's fault
            raise FormatError(f"crosswalk JATS -> oai_dc produced invalid oai_dc: {exc}") from None
        served, warnings = _serve(article, full_text=full_text)  # the crosswalk is done with article
        if served is not None:
            metadata[self.prefix] = served
        return Ingested(metadata=metadata, citation=facts, warnings=tuple(warnings))


FORMAT = Jats()
