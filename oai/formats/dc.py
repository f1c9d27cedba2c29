"""The `oai_dc` format: validation and normalisation of simple Dublin Core, and its builder.

schema_url is the official OAI URL (harvesters know it); schema_relpath is our local copy,
which the web layer also serves at /schemas/<schema_relpath>.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote

from lxml import etree

from oai.formats.base import SCHEMAS_DIR, XSI_NS, Citation, FormatError, Ingested, compile_schema, first_error
from oai.formats.safexml import canonical_bytes, text_bytes_escape

OAI_DC_NS = "http://www.openarchives.org/OAI/2.0/oai_dc/"
DC_NS = "http://purl.org/dc/elements/1.1/"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
SCHEMA_URL = "http://www.openarchives.org/OAI/2.0/oai_dc.xsd"

# The fifteen elements, in the order the builder writes them (the schema allows any order).
ELEMENTS = (
    "title", "creator", "subject", "description", "publisher", "contributor", "date", "type",
    "format", "identifier", "source", "language", "relation", "coverage", "rights",
)
_ORDER = {name: index for index, name in enumerate(ELEMENTS)}

DOI_RE = re.compile(r"\b(10\.\d{4,9}/[^\s\"<>]+)")
_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_ISO_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")

Field = tuple[str, str, str | None]  # (element name, text, xml:lang or None)

_ROOT_TAG = f"{{{OAI_DC_NS}}}dc"
_NSMAP = {"oai_dc": OAI_DC_NS, "dc": DC_NS, "xsi": XSI_NS}
_SCHEMA_LOCATION = f"{{{XSI_NS}}}schemaLocation"
_SCHEMA_LOCATION_VALUE = f"{OAI_DC_NS} {SCHEMA_URL}"
_TAGS = {name: f"{{{DC_NS}}}{name}" for name in ELEMENTS}
_DC_BRACE = f"{{{DC_NS}}}"


# Two people may share a name: a repeated creator or contributor is another person, not a duplicate.
_REPEATABLE = frozenset(("creator", "contributor"))


def normalise_fields(fields: Iterable[Field]) -> list[Field]:
    """Trimmed, without empty texts or repeats (creators and contributors may repeat), in the
    builder's element order (stable)."""
    seen: set[Field] = set()
    clean: list[Field] = []
    for name, text, lang in fields:
        if name not in _ORDER:
            raise ValueError(f"not a Dublin Core element: {name!r}")
        text = (text or "").strip()
        lang = (lang or "").strip() or None
        if text and (name in _REPEATABLE or (name, text, lang) not in seen):
            seen.add((name, text, lang))
            clean.append((name, text, lang))
    clean.sort(key=lambda field: _ORDER[field[0]])
    return clean


def build_dc(fields: Iterable[Field], *, normalised: bool = False) -> etree._Element:
    """An oai_dc:dc element from (element-name, text, lang) triples; empty texts are skipped.

    normalised=True: `fields` already come from normalise_fields() (not done twice).
    """
    root = etree.Element(_ROOT_TAG, nsmap=_NSMAP)
    root.set(_SCHEMA_LOCATION, _SCHEMA_LOCATION_VALUE)
    sub = etree.SubElement
    for name, text, lang in fields if normalised else normalise_fields(fields):
        child = sub(root, _TAGS[name], {XML_LANG: lang}) if lang else sub(root, _TAGS[name])
        child.text = text
    return root


# What canonical_bytes(build_dc(...)) starts with.
_HEAD = (f'<oai_dc:dc xmlns:oai_dc="{OAI_DC_NS}" xmlns:dc="{DC_NS}" xmlns:xsi="{XSI_NS}" '
         f'xsi:schemaLocation="{_SCHEMA_LOCATION_VALUE}"')
# xml:lang is xs:language (or empty) in xml.xsd; characters lxml would refuse in a text node.
LANGUAGE_TAG = re.compile(r"[a-zA-Z]{1,8}(?:-[a-zA-Z0-9]{1,8})*")

# DSpace writes a field's language as a Java locale, xml:lang="en_US", which xs:language refuses (so the
# whole record would be); written "en-US" it is the BCP 47 tag it means. Harvested and loaded records alike.
_UNDERSCORED_LANGUAGE = re.compile(rb"""xml:lang\s*=\s*["'][^"'_]*_""")


def repair_java_locales(root: etree._Element, data: bytes) -> tuple[str, ...]:
    """Rewrite each xml:lang="ll_CC" under `root` (parsed from `data`) as "ll-CC" where that is a language tag;
    a note for each value rewritten (a page's records that share one are said once). The tree is walked only
    when a cheap look at the bytes finds such a value."""
    if _UNDERSCORED_LANGUAGE.search(data) is None:
        return ()
    fixed: dict[str, str] = {}
    for node in root.iter(etree.Element):
        value = node.get(XML_LANG)
        if value and "_" in value and LANGUAGE_TAG.fullmatch(tag := value.strip().replace("_", "-")):
            node.set(XML_LANG, tag)
            fixed[value] = tag
    return tuple(f"xml:lang {value!r} written with '_' (a Java locale) taken as the BCP 47 tag it means ({tag!r})"
                 for value, tag in fixed.items())


_NOT_XML_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def serialise(fields: Iterable[Field], *, normalised: bool = False) -> bytes:
    """canonical_bytes() of a valid build_dc(fields), written directly: no tree, no validation to do.

    Every name is one of the fifteen and every text legal XML, so only a language tag can make the
    record invalid; a field that is not plainly safe takes the tree and the schema instead (FormatError
    with the schema's first error). tests/test_formats_dc.py checks the bytes agree on arbitrary text.
    """
    fields = fields if normalised else normalise_fields(fields)
    parts = [_HEAD]
    for name, text, lang in fields:
        # A printable text has none of those characters (they are all Cc, Cs or Cn), and isprintable() is
        # cheaper than the scan; texts with line breaks take the scan.
        if (lang is not None and not LANGUAGE_TAG.fullmatch(lang)) or (
                not text.isprintable() and _NOT_XML_CHAR.search(text)):
            return _checked_bytes(fields)
        attribute = f' xml:lang="{lang}"' if lang is not None else ""
        parts.append(f"><dc:{name}{attribute}>{text_bytes_escape(text)}</dc:{name}")
    parts.append("></oai_dc:dc>" if len(parts) > 1 else "/>")
    return "".join(parts).encode("utf-8")


def _checked_bytes(fields: list[Field]) -> bytes:
    record = build_dc(fields, normalised=True)
    error = validate(record)
    if error:
        raise FormatError(error)
    return canonical_bytes(record)


def validate(element: etree._Element) -> str | None:
    """The first oai_dc.xsd error of `element`, or None when it is valid."""
    return first_error(compile_schema(FORMAT.schema_path), element)


def fields_of(root: etree._Element) -> list[Field]:
    """The (name, text, lang) triples of a valid oai_dc:dc element, in document order."""
    n = len(_DC_BRACE)
    return [(child.tag[n:], child.text or "", child.get(XML_LANG))
            for child in root.iterchildren(etree.Element) if child.tag.startswith(_DC_BRACE)]


def _doi_in(identifier: str) -> str | None:
    """The DOI an identifier gives, if any. In a URI (https://doi.org/..., info:doi/...) it is
    percent-encoded, as a DOI with '#', '<' or a space must be: taken as it was written, `10.1234/ab%23cd` became
    the page's citation_doi and its link doi.org/10.1234/ab%2523cd, a DOI that does not exist (an outside audit:
    so also every such DOI our own oai_dc gives, harvested by another of our servers)."""
    if (found := DOI_RE.search(identifier)) is None:
        return None
    doi = found.group(1).rstrip(".,;")
    if _URI_SCHEME.match(identifier) and "%" in doi:
        try:
            return unquote(doi, errors="strict")
        except UnicodeDecodeError:  # escapes of no UTF-8: not an encoded DOI, taken as it is
            return doi
    return doi


def citation_from_fields(fields: Iterable[Field]) -> Citation:
    """Citation facts a landing page needs, read back from Dublin Core values."""
    values: dict[str, list[str]] = {}
    languages: dict[str, str | None] = {}  # of the first value of each element
    titles: list[tuple[str, str | None]] = []
    descriptions: list[tuple[str, str | None]] = []
    keywords: dict[str, str | None] = {}
    for name, text, lang in fields:
        text = text.strip()
        if text:
            values.setdefault(name, []).append(text)
            languages.setdefault(name, lang)
            if name == "title":
                titles.append((text, lang))
            elif name == "description":
                descriptions.append((text, lang))
            elif name == "subject":
                keywords.setdefault(text, lang)

    def first(name: str) -> str | None:
        return values.get(name, [None])[0]

    identifiers = values.get("identifier", [])
    # else OpenAIRE's way to give it, in a relation (an outside audit found it ignored: no DOI, no identifier by it)
    alt = [r for r in values.get("relation", []) if r.startswith("info:eu-repo/semantics/altIdentifier/doi/")]
    doi = next((found for i in identifiers + alt if (found := _doi_in(i)) is not None), None)
    pdf = next((i for i in identifiers if is_pdf_url(i)), None)
    # The earliest: DSpace lists the dates it accessioned and made available the item before the one it was
    # issued (1978 after 2005-09-15, an outside audit); a publication comes before those, and before an embargo.
    # Of one year, the most precise; a date no calendar has (2020-13-45) is none.
    dated = [(key, m.group(0)) for d in values.get("date", []) if (m := _ISO_DATE.match(d)) and (key := _date_key(m))]
    date = min(dated)[1] if dated else None
    source = _parse_source(first("source") or "")
    return Citation(
        title=first("title"),
        authors=tuple(c.split(";")[0].strip() for c in values.get("creator", [])),
        publication_date=date,
        doi=doi,
        pdf_url=pdf,
        language=first("language"),
        keywords=tuple(keywords),
        abstract=first("description"),
        title_language=languages.get("title"),
        abstract_language=languages.get("description"),
        other_titles=others_than_first(titles),
        other_abstracts=others_than_first(descriptions),
        keyword_languages=tuple(keywords.values()),
        **source,
    )


def others_than_first(texts: list[tuple[str, str | None]]) -> tuple[tuple[str, str | None], ...]:
    """The (text, language) pairs after the first (of titles, of abstracts), each text once, with the language it
    first comes with: a landing page in Russian shows its English title and abstract too (outside audits found a
    Russian article's page without a word of English, then without its English abstract)."""
    others: dict[str, tuple[str, str | None]] = {}
    for text, lang in texts[1:]:
        if text and text != texts[0][0]:
            others.setdefault(text, (text, lang))
    return tuple(others.values())


def _date_key(m: re.Match) -> tuple[int, int, int] | None:
    """(year, month, day) of an _ISO_DATE match, 13 and 32 standing for what it leaves out; None if no real date."""
    year, month, day = int(m[1]), int(m[2] or 0), int(m[3] or 0)
    try:
        _dt.date(year, month or 1, day or 1)
    except ValueError:
        return None
    return year, month or 13, day or 32


_HTTP = re.compile(r"https?://", re.IGNORECASE)


def is_pdf_url(url: str) -> bool:
    """An absolute http(s) URL whose path ends in .pdf, whatever its case, query or fragment (a.pdf#page=2; an
    outside audit found HTTPS://X/Y.PDF and y.pdf#page=2 not taken for a PDF)."""
    lowered = url.lower()  # (no urlsplit: this runs for every identifier of every record ingested)
    return ".pdf" in lowered and bool(_HTTP.match(url)) and lowered.split("#", 1)[0].split("?", 1)[0].endswith(".pdf")


# The parts of a source text as jats_crosswalk writes it.
_ISSN_PART = re.compile(r"ISSN (\d{4}-\d{3}[\dXx])(?: \([^()]*\))?")  # (print), (online): the medium
_VOLUME_PART = re.compile(r"Vol\. (\S+)")
_ISSUE_PART = re.compile(r"No\. (\S+)")
_PAGES_PART = re.compile(r"pp?\. (\w+)(?:-(\w+))?")
_ARTICLE_PART = re.compile(r"Article (\S+)")  # an article number (elocation-id) where there are no pages
# what the first part is when the journal has no title (an ISSN as the source wrote it, valid or not)
_PARTS = (re.compile(r"ISSN [\dXx-]+(?: \([^()]*\))?"), _VOLUME_PART, _ISSUE_PART, _PAGES_PART, _ARTICLE_PART)


def _parse_source(source: str) -> dict:
    """Journal, ISSN, volume, issue and pages from a '<journal>; ISSN x; Vol. v; No. n; pp. a-b' source."""
    parts = [part.strip() for part in source.split(";") if part.strip()]
    facts: dict = {}
    issns = []
    # a source whose journal has no title starts with one of the other parts (whole: "ISSN Newsletter" is a title)
    titled = bool(parts) and not any(pattern.fullmatch(parts[0]) for pattern in _PARTS)
    for part in parts[1:] if titled else parts:
        if m := _ISSN_PART.fullmatch(part):
            issns.append(m.group(1).upper())
        elif m := _VOLUME_PART.fullmatch(part):
            facts["volume"] = m.group(1)
        elif m := _ISSUE_PART.fullmatch(part):
            facts["issue"] = m.group(1)
        elif m := _PAGES_PART.fullmatch(part):
            facts["firstpage"], facts["lastpage"] = m.group(1), m.group(2) or m.group(1)
        elif m := _ARTICLE_PART.fullmatch(part):
            facts["article_number"] = m.group(1)
    if facts or issns:
        facts["issn"] = tuple(issns)
        if titled:  # of 'Title = Parallel title' (ISBD), the first: an outside audit found both in one tag
            facts["journal_title"] = parts[0].split(" = ", 1)[0]
    return facts


class DublinCore:
    """Simple Dublin Core as OAI-PMH defines it (every repository must serve it)."""

    prefix = "oai_dc"
    namespace = OAI_DC_NS
    schema_url: str | None = SCHEMA_URL
    schema_relpath = "oai/oai_dc.xsd"
    schema_path: Path = SCHEMAS_DIR / schema_relpath
    root_tag = f"{{{OAI_DC_NS}}}dc"

    def recognise(self, root: etree._Element) -> bool:
        """True for an oai_dc:dc root element."""
        return root.tag == self.root_tag

    def warm(self) -> None:
        compile_schema(self.schema_path)

    def ingest(self, root: etree._Element, *, full_text: bool = True, consume: bool = False) -> Ingested:
        """Validate, drop empty values, whitespace padding and repeats (not of creators or contributors),
        keep xml:lang (full_text is moot)."""
        if not self.recognise(root):
            raise FormatError(f"not an oai_dc record: root element is {root.tag}")
        error = validate(root)
        if error:
            raise FormatError(f"oai_dc record not valid against oai_dc.xsd: {error}")
        fields = normalise_fields(fields_of(root))
        return Ingested(
            metadata={self.prefix: serialise(fields, normalised=True)},
            citation=citation_from_fields(fields),
        )


FORMAT = DublinCore()
