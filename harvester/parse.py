"""Strict reading of OAI-PMH responses from their raw bytes; sickle's lenient tree is never trusted.

A page is believed only once a strict parser accepts it. When it does not, the envelope is parsed
without the records and each record on its own: XML-illegal characters become U+FFFD, a record
that still fails is returned as `Broken` (raw bytes, reason), and the rest of the page is kept.
"""

from __future__ import annotations

import codecs
import io
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO
from xml.sax.saxutils import quoteattr, unescape

from lxml import etree

from harvester import dates
from harvester.errors import PageError
from oai.formats import dc
from oai.formats.safexml import TOO_DEEP

OAI_NS = "http://www.openarchives.org/OAI/2.0/"
PROV_NS = "http://www.openarchives.org/OAI/2.0/provenance"
ITEM_TAG = {"ListRecords": "record", "GetRecord": "record", "ListIdentifiers": "header"}
_O = f"{{{OAI_NS}}}"

_local = threading.local()


def strict_parser() -> etree.XMLParser:
    """A strict parser per thread: no DTD, no entities, no network; huge_tree so no text node is cut."""
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
            huge_tree=True, recover=False, remove_blank_text=False,
        )
    return parser


@dataclass(frozen=True)
class Token:
    """A resumptionToken element; `value` None means the list is complete."""

    value: str | None
    cursor: int | None = None
    complete_list_size: int | None = None
    expiration: str | None = None


@dataclass(frozen=True)
class Header:
    identifier: str
    datestamp: str  # normalised (YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ)
    deleted: bool
    set_specs: tuple[str, ...]


@dataclass(frozen=True)
class UpstreamRecord:
    """One record as the source sent it; `metadata` is the element inside <metadata> (None if deleted)."""

    header: Header
    metadata: etree._Element | None = field(compare=False, repr=False)
    provenance: etree._Element | None = field(compare=False, repr=False)  # upstream originDescription
    repairs: tuple[str, ...] = ()
    element: etree._Element | None = field(default=None, compare=False, repr=False)
    about: tuple[etree._Element, ...] = field(default=(), compare=False, repr=False)  # its other about-containers

    def raw(self) -> bytes:
        """The record's XML (as repaired), for the quarantine: UTF-8, its characters as they came, not the
        character references lxml's default ASCII output writes (an outside audit saw Cyrillic as &#1078;)."""
        return b"" if self.element is None else etree.tostring(self.element, encoding="utf-8", with_tail=False)


@dataclass(frozen=True)
class Broken:
    """A record we could not read: kept with its raw bytes for the quarantine."""

    raw: bytes
    reason: str
    identifier: str | None


@dataclass(frozen=True)
class Page:
    verb: str
    response_date: str | None
    errors: tuple[tuple[str, str], ...]
    records: tuple[UpstreamRecord, ...] = ()
    headers: tuple[Header, ...] = ()
    broken: tuple[Broken, ...] = ()
    token: Token | None = None
    repairs: int = 0  # records whose characters we repaired
    root: etree._Element | None = field(default=None, compare=False, repr=False)
    moved_to: str | None = None  # the base URL a permanent redirect to another host took the request to (client.py)
    # A large response read in parts (read_large): `parts()` gives them, in order, each a Page of some of its
    # records; every part but the last has `more` set, and only the last carries the token.
    parts: Callable[[], Iterator[Page]] | None = field(default=None, compare=False, repr=False)
    more: bool = False

    @property
    def size(self) -> int:
        """Items on the page, readable or not."""
        return len(self.records) + len(self.headers) + len(self.broken)


# -- raw bytes --------------------------------------------------------------------------------

_DECL = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._\-]+)[\"'][^>]*\?>")
_ILLEGAL_RAW = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]|\xef\xbf[\xbe\xbf]")
_CHARREF = re.compile(rb"&#(x[0-9a-fA-F]+|[0-9]+);")
REPLACEMENT = "\ufffd".encode()


def _legal(code: int) -> bool:
    """XML 1.0 production [2] Char."""
    return (code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD
            or 0x10000 <= code <= 0x10FFFF)


def repair(data: bytes) -> tuple[bytes, tuple[str, ...]]:
    """UTF-8 bytes with invalid sequences and XML-illegal characters (raw or as references) as U+FFFD."""
    notes = []
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", "replace")
        data = text.encode("utf-8")
        notes.append("invalid UTF-8 replaced by U+FFFD")
    data, n = _ILLEGAL_RAW.subn(REPLACEMENT, data)
    if n:
        notes.append(f"{n} XML-illegal character(s) replaced by U+FFFD")

    count = 0

    def ref(match: re.Match) -> bytes:
        nonlocal count
        body = match.group(1)
        code = int(body[1:], 16) if body[:1] in (b"x",) else int(body)
        if _legal(code):
            return match.group(0)
        count += 1
        return REPLACEMENT

    if b"&#" in data:
        data = _CHARREF.sub(ref, data)
    if count:
        notes.append(f"{count} reference(s) to XML-illegal characters replaced by U+FFFD")
    return data, tuple(notes)


def _as_utf8(data: bytes) -> bytes:
    """The document re-encoded as UTF-8 (declaration rewritten), for byte-level salvage."""
    recoded = False  # by its byte order mark: the declaration is then only rewritten, not decoded again
    for bom, codec in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16"),
                       (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            recoded = codec != "utf-8"
            data = data.decode(codec, "replace").encode("utf-8") if recoded else data[len(bom):]
            break
    m = _DECL.match(data)
    if m and m.group(1).lower() not in (b"utf-8", b"utf8", b"us-ascii", b"ascii"):
        if not recoded:
            try:
                text = data.decode(m.group(1).decode("ascii"), "replace")
            except LookupError:
                raise PageError(f"the response declares an unknown encoding {m.group(1).decode()!r}",
                                retry=False) from None
            except UnicodeError:  # a codec that refuses even with "replace" (idna: an audit found a traceback)
                raise PageError(f"the response declares an encoding, {m.group(1).decode()!r}, that it cannot be "
                                "read in", retry=False) from None
            data = text.encode("utf-8")
            m = _DECL.match(data)
        if m:  # (a declaration that does not survive its own encoding is left to the parser to refuse)
            data = data[:m.start(1)] + b"UTF-8" + data[m.end(1):]
    return data


def _check_plausible(data: bytes) -> None:
    """Refuse what cannot be an OAI-PMH document before parsing; raises PageError (retried)."""
    head = data.lstrip()[:512]
    if not head:
        raise PageError("the source sent an empty response")
    if head.startswith(codecs.BOM_UTF8):
        head = head[3:]
    if not head.startswith(b"<") and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise PageError(f"the source sent something that is not XML: {head[:60]!r}")
    lowered = head.lower()
    if lowered.startswith(b"<!doctype html") or lowered.startswith(b"<html"):
        raise PageError("the source sent an HTML page instead of OAI-PMH XML (an error or login page?)")


_DOCTYPE = re.compile(rb"<!DOCTYPE[^>\[]*\[", re.I)
_ANY_DOCTYPE = re.compile(rb"<!DOCTYPE", re.I)


def _parse(data: bytes) -> etree._Element:
    """Strict parse; a DOCTYPE (a DTD, its entity declarations) is refused outright."""
    prolog_end = data.find(b"<OAI-PMH")
    prolog = data[: prolog_end if prolog_end > 0 else 2048]
    if _DOCTYPE.search(prolog):  # the cheap look, before parsing
        raise PageError(_WITH_DTD, retry=False)
    try:
        root = etree.fromstring(data, strict_parser())
    except etree.XMLSyntaxError:
        # a DOCTYPE past the look (libxml2 stops an entity bomb in an attribute value): refused, not a broken page
        # asked for again on every attempt
        if _ANY_DOCTYPE.search(prolog):
            raise PageError(_WITH_DTD, retry=False) from None
        raise
    # What decides: the parsed document (a '>' inside the DOCTYPE's system literal or a comment before it
    # passes the look above, and libxml2 still replaces entities the subset declares in attribute values).
    if root.getroottree().docinfo.internalDTD is not None:
        raise PageError(_WITH_DTD, retry=False)
    return root


# Any DOCTYPE, even a bare one: lxml lists no ATTLIST or NOTATION declarations (an ATTLIST default applies to
# every element it names: status="deleted" on every header), nor says whether a subset was there at all.
_WITH_DTD = ("the response carries a DOCTYPE; OAI-PMH responses have none, and no declaration of a source's "
             "(entities, attribute defaults) is taken")


# -- salvage: envelope and records parsed apart ------------------------------------------------

_ROOT = re.compile(rb"<(?:([A-Za-z_][\w.\-]*):)?OAI-PMH[\s>/]")
_IDENT = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?identifier\b[^>]*>\s*([^<]+?)\s*</")


def _spans(data: bytes, qname: bytes) -> list[tuple[int, int]]:
    """Byte spans of the top-level <qname> elements (a nested MARC <record> stays inside its parent)."""
    tag = re.compile(rb"<(/?)" + re.escape(qname) + rb"(?=[\s/>])[^>]*?(/?)>")
    spans, depth, start = [], 0, 0
    for m in tag.finditer(data):
        closing, empty = m.group(1), m.group(2)
        if closing:
            if depth == 0:
                continue
            depth -= 1
            if depth == 0:
                spans.append((start, m.end()))
        elif empty:
            if depth == 0:
                spans.append((m.start(), m.end()))
        else:
            if depth == 0:
                start = m.start()
            depth += 1
    return spans


def _ns_declarations(element: etree._Element) -> bytes:
    decls = []
    for prefix, uri in element.nsmap.items():
        name = "xmlns" if prefix is None else f"xmlns:{prefix}"
        decls.append(f"{name}={quoteattr(uri)}")
    return " ".join(decls).encode("utf-8")


def _salvage(data: bytes, verb: str, first_error: str) -> tuple[etree._Element, list, list[Broken]]:
    """Parse envelope and records separately; returns (root, [(item element, repairs)], broken)."""
    data = _as_utf8(data)
    root_match = _ROOT.search(data)
    item = ITEM_TAG.get(verb)
    if root_match is not None and item is None:  # ListSets, Identify, ...: XML-illegal characters as U+FFFD, as in
        try:                                      # records (one in a set's name lost every name, an outside audit)
            return _parse(repair(data)[0]), [], []
        except etree.XMLSyntaxError:
            pass
    if root_match is None or item is None:
        raise PageError(f"the response is not well-formed XML ({first_error})")
    prefix = root_match.group(1)
    qname = (prefix + b":" if prefix else b"") + item.encode()
    spans = [s for s in _spans(data, qname) if s[0] > root_match.start()]
    pieces, last = [], 0
    for start, end in spans:
        pieces.append(data[last:start])
        last = end
    pieces.append(data[last:])
    skeleton, _ = repair(b"".join(pieces))
    try:
        root = _parse(skeleton)
    except etree.XMLSyntaxError as exc:
        raise PageError(f"the response is not well-formed XML outside its records, so it was cut short "
                        f"or is broken ({exc})") from None
    container = root.find(f"{_O}{verb}")
    if container is None:
        if spans:
            raise PageError(f"the response has {item} elements but no {verb} element ({first_error})")
        return root, [], []
    _check_namespaces(container)
    declarations = _ns_declarations(container)
    token = container.find(f"{_O}resumptionToken")
    position = list(container).index(token) if token is not None else len(container)
    items, broken = [], []
    for number, (start, end) in enumerate(spans, start=1):
        raw = data[start:end]
        fixed, notes = repair(raw)
        try:
            wrapper = etree.fromstring(b"<w " + declarations + b">" + fixed + b"</w>", strict_parser())
        except etree.XMLSyntaxError as exc:
            ident = _IDENT.search(raw)
            broken.append(Broken(raw, f"{item} {number} on the page " + (
                f"is not well-formed XML: {exc}" if not nested_too_deep(exc) else f"is unreadable: its {TOO_DEEP}"),
                                 unescape(ident.group(1).decode("utf-8", "replace")) if ident else None))
            continue
        element = wrapper[0]
        container.insert(position, element)
        position += 1
        items.append((element, notes))
    return root, items, broken


def nested_too_deep(exc: etree.XMLSyntaxError) -> bool:
    """libxml2's refusal of a document nested past its limit, whose words ('use XML_PARSE_HUGE option') name a
    remedy no librarian has (an outside audit found them in the quarantine): said as TOO_DEEP instead."""
    return "Excessive depth in document" in str(exc)


# -- reading a page ---------------------------------------------------------------------------

def _text(element: etree._Element | None) -> str | None:
    if element is None or element.text is None:
        return None
    return element.text.strip() or None


MAX_COUNT = 2**31 - 1  # what the run's columns hold (PostgreSQL's integer)


def _int(value: str | None) -> int | None:
    """A token's cursor or completeListSize, or None where it is none (an outside audit saw completeListSize -5 and
    10**26 believed: "3 of -5 records", and a count no integer column holds)."""
    try:
        number = int(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and 0 <= number <= MAX_COUNT else None


_IDENTIFIER, _DATESTAMP, _SET_SPEC = f"{_O}identifier", f"{_O}datestamp", f"{_O}setSpec"


def _header(el: etree._Element) -> Header:
    """A header element as a Header (the first identifier and datestamp, every setSpec); raises ValueError
    saying what is missing. One pass over its children: it runs for every record of every page."""
    identifier_el = date_el = None
    specs = []
    for child in el:
        tag = child.tag
        if tag == _SET_SPEC:
            spec = _text(child)
            if spec:
                specs.append(spec)
        elif tag == _IDENTIFIER and identifier_el is None:
            identifier_el = child
        elif tag == _DATESTAMP and date_el is None:
            date_el = child
    identifier = _text(identifier_el)
    if not identifier:
        raise ValueError("its header has no identifier")
    raw_date = _text(date_el)
    if raw_date is None:
        raise ValueError("its header has no datestamp")
    datestamp = dates.normalise(raw_date)
    if datestamp is None:
        raise ValueError(f"its datestamp {raw_date!r} is not a date")
    status = el.get("status")
    if status is not None and status != "deleted":
        status = status.strip().lower() or None  # an empty one says nothing: live (a source may write it always)
        if status not in (None, "deleted"):
            # the only status OAI-PMH has: a record said to be something else is neither served as live nor deleted
            raise ValueError(f"its header's status {el.get('status')!r} is not 'deleted', the only status OAI-PMH "
                             "defines")
    return Header(identifier, datestamp, status is not None, tuple(specs))


def _first_child(el: etree._Element | None) -> etree._Element | None:
    if el is None:
        return None
    return next(el.iterchildren(etree.Element), None)


_HEADER, _METADATA, _ABOUT = f"{_O}header", f"{_O}metadata", f"{_O}about"
_PROVENANCE, _ORIGIN = f"{{{PROV_NS}}}provenance", f"{{{PROV_NS}}}originDescription"


# Namespaces in scope around a page's records. Each record is written out (for the workers, the quarantine, a part of
# a large page) with every declaration in scope: an outside audit's page declaring 20,000 on its root took 0.65 s a
# record of 10 bytes, growing as the square of the count. Honest pages declare a handful.
MAX_NAMESPACES = 256


def _check_namespaces(container: etree._Element) -> None:
    if (count := len(container.nsmap)) > MAX_NAMESPACES:
        raise PageError(f"the response declares {count} namespaces around its records (more than {MAX_NAMESPACES}); "
                        "each record would carry them all: refused", retry=False)


def _oai_element_in(metadata: etree._Element) -> str | None:
    """The first element of OAI-PMH's own namespace inside a record's metadata, if any: served again, a
    <resumptionToken> or <error> there is what sickle finds first (`.//`), and a harvester of ours followed a
    token that was not ours and stopped, or took a record for an error (an outside audit)."""
    if metadata.tag.startswith(_O):  # the root itself: refused by the workers, which say why (a declaration missing)
        return None
    found = next(metadata.iter(f"{_O}*"), None)
    return None if found is None else etree.QName(found).localname


def _record(el: etree._Element, notes: tuple[str, ...]) -> UpstreamRecord:
    """A record element as an UpstreamRecord; raises ValueError for one we cannot use. The first header and
    metadata count, the upstream provenance of the first about that holds one, and the other abouts' containers
    (one pass)."""
    header_el = metadata_el = provenance = None
    about: list[etree._Element] = []
    for child in el:
        tag = child.tag
        if tag == _HEADER and header_el is None:
            header_el = child
        elif tag == _METADATA and metadata_el is None:
            metadata_el = child
        elif tag == _ABOUT:
            first = _first_child(child)
            if first is None:
                continue
            if first.tag == _PROVENANCE and provenance is None:
                provenance = first
            elif first.tag != _PROVENANCE:
                about.append(first)
    if header_el is None:
        raise ValueError("the record has no header")
    header = _header(header_el)
    metadata = _first_child(metadata_el)
    if metadata is not None and not header.deleted and metadata.getnext() is not None and any(
            True for _ in metadata.itersiblings(etree.Element)):  # (the second was dropped unsaid, an outside audit)
        raise ValueError("its <metadata> holds more than one element; OAI-PMH allows one")
    if metadata is None and not header.deleted:
        raise ValueError("the record has no metadata and is not marked deleted")
    if any(True for _ in el.iter(etree.Entity)):
        raise ValueError("the record contains an undefined entity reference")
    if metadata is not None and not header.deleted and (oai := _oai_element_in(metadata)) is not None:
        raise ValueError(f"its metadata holds an element of OAI-PMH's own namespace (<{oai}>), which a harvester of "
                         "ours would take for part of the response")
    origin = provenance.find(_ORIGIN) if provenance is not None else None
    return UpstreamRecord(header, None if header.deleted else metadata, origin, notes, el, tuple(about))


def read_page(data: bytes, verb: str) -> Page:
    """Read one response strictly; raises PageError for a response that is not a usable OAI-PMH page."""
    _check_plausible(data)
    try:
        root = _parse(data)
        items: list = []
        broken: list[Broken] = []
        salvaged = False
    except etree.XMLSyntaxError as exc:
        root, items, broken = _salvage(data, verb, str(exc))
        salvaged = True
    if root.tag != f"{_O}OAI-PMH":
        if etree.QName(root).localname == "OAI-PMH":
            raise PageError(f"the response's OAI-PMH element is not in the OAI-PMH 2.0 namespace {OAI_NS} "
                            f"(it is {etree.QName(root).namespace or 'in no namespace'})", retry=False)
        raise PageError(f"the response is XML but not OAI-PMH: its root element is {root.tag}")
    response_date = _text(root.find(f"{_O}responseDate"))
    if response_date is not None:  # in UTC: one with an offset compared as text with ours went wrong
        response_date = dates.normalise(response_date)
    errors = tuple((e.get("code") or "unknown", (e.text or "").strip()) for e in root.findall(f"{_O}error"))
    container = root.find(f"{_O}{verb}")
    token = None
    records: list[UpstreamRecord] = []
    headers: list[Header] = []
    repaired = 0
    if container is not None:
        _check_namespaces(container)
        tag = ITEM_TAG.get(verb)
        if tag is not None and not salvaged:
            items = [(el, ()) for el in container.iterchildren(f"{_O}{tag}")]
        for el, notes in items:
            try:
                if tag == "header":
                    headers.append(_header(el))
                else:
                    records.append(_record(el, notes))
                    repaired += bool(notes)
            except ValueError as exc:
                ident = _text(el.find(f".//{_O}identifier"))
                broken.append(Broken(etree.tostring(el, encoding="utf-8", with_tail=False), str(exc), ident))
        token_el = container.find(f"{_O}resumptionToken")
        if token_el is not None:
            token = Token(_text(token_el), _int(token_el.get("cursor")),
                          _int(token_el.get("completeListSize")), token_el.get("expirationDate"))
    if errors and (records or headers or broken):
        # an error says there is no answer (OAI-PMH 3.6): with records beside it, neither can be believed, and
        # taking the error (noRecordsMatch) ended the list "complete" without them (an outside audit)
        items = len(records) + len(headers) + len(broken)
        raise PageError(f"the response holds both an error ({errors[0][0]}) and {items} {ITEM_TAG.get(verb, 'item')}(s); "
                        "neither can be believed", retry=False)
    if container is None and not errors:
        names = (etree.QName(c).localname for c in root.iterchildren(etree.Element))  # no comments, PIs
        answered = [name for name in names if name not in ("responseDate", "request")]
        raise PageError(f"the response holds neither {verb} nor an error (it holds {', '.join(answered) or 'nothing'}"
                        "): it answers another request (a redirect that dropped the arguments?)", retry=False)
    return Page(verb, response_date, errors, tuple(records), tuple(headers), tuple(broken), token,
                repaired, root)


# -- a large ListRecords or ListIdentifiers response, in parts ------------------------------------

STREAM_BYTES = 2 * 1024 * 1024  # a ListRecords or ListIdentifiers response larger than this is read in parts
PART_BYTES = 1024 * 1024  # of the response's bytes a part holds records from (the one that passes it too)
_ITERPARSE = {"resolve_entities": False, "no_network": True, "load_dtd": False, "huge_tree": True, "recover": False}
_TOKEN = f"{_O}resumptionToken"
_IN_PARTS = ("ListRecords", "ListIdentifiers")


def read_large(data: bytes | BinaryIO, verb: str) -> Page | None:
    """A large, well-formed ListRecords (or ListIdentifiers) response without errors as a Page whose records
    (headers) come in parts (Page.parts), or None: read_page reads it (smaller, broken, an error, a DOCTYPE,
    another encoding).
    `data` may be a file (a body the client spooled to disk): closed once its parts are read; when this gives
    None, left at its start for read_page's reader.

    A page's tree takes about seven times its bytes (a response of 10,000 JATS records, 51 MB: 367 MB), and the
    page loop holds a page while the next is fetched: an outside measurement found the harvester at 1.1 GB on
    a source serving such pages (issue 5: under 250 MB whatever the page size). Here the response is read twice
    with iterparse, each record's tree let go once read: first to check it and find its token, then a part at a
    time, so that only about PART_BYTES of it is a tree at once. The checks are read_page's, so that a response
    reads the same either way (tests/test_harvest_parse.py compares the two)."""
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        size = source.seek(0, io.SEEK_END)
        source.seek(0)
        if verb not in _IN_PARTS or size <= STREAM_BYTES or _ROOT.search(source.read(4096)) is None:
            raise _NotPlain  # (read_page says why: not OAI-PMH, another encoding, a long prolog)
        source.seek(0)
        response_date, token = _scan(source, verb)
    except (etree.LxmlError, _NotPlain, LookupError, ValueError):  # read_page says what is wrong
        source.seek(0)
        return None
    if response_date is not None:
        response_date = dates.normalise(response_date)
    return Page(verb, response_date, (), token=token, parts=lambda: _parts(source, verb, token, response_date))


class _NotPlain(Exception):
    """Not a plain list page (another root, an error, no list element): read_page reads it."""


def _levels(source: BinaryIO) -> Iterator[tuple[str, int, etree._Element]]:
    """(event, level, element) of the document's start and end events, level 1 its root; the root must be
    OAI-PMH's. A record's tree, and anything else read at level 2 or 3, is the caller's to let go."""
    level = 0
    for event, element in etree.iterparse(source, events=("start", "end"), **_ITERPARSE):
        if event == "start":
            level += 1
            if level == 1:
                docinfo = element.getroottree().docinfo  # a DOCTYPE the look in read_large missed (in a comment)
                if element.tag != f"{_O}OAI-PMH" or docinfo.internalDTD is not None or docinfo.doctype:
                    raise _NotPlain
            yield event, level, element
        else:
            yield event, level, element
            level -= 1


def _scan(source: BinaryIO, verb: str) -> tuple[str | None, Token | None]:
    """(responseDate, token) of a plain `verb` page, read without keeping its items."""
    response_date, token, container = None, None, False
    item = f"{_O}{ITEM_TAG[verb]}"
    for event, level, element in _levels(source):
        if event != "end" or level > 3:
            continue
        if level == 3 and element.tag == item:
            element.clear()
            while element.getprevious() is not None:
                del element.getparent()[0]
        elif level == 3 and element.tag == _TOKEN:
            token = Token(_text(element), _int(element.get("cursor")), _int(element.get("completeListSize")),
                          element.get("expirationDate"))
        elif level == 2:
            if element.tag == f"{_O}error":
                raise _NotPlain
            if element.tag == f"{_O}responseDate":
                response_date = _text(element)
            container = container or element.tag == f"{_O}{verb}"
    if not container:
        raise _NotPlain
    return response_date, token


def _parts(source: BinaryIO, verb: str, token: Token | None, response_date: str | None) -> Iterator[Page]:
    """The items of a response read_large accepted, as Pages of about PART_BYTES of it each; the last one
    (never empty but for an empty list) carries the token. Closes `source` when done."""
    with source:
        source.seek(0)
        yield from _parts_of(source, verb, token, response_date)


def _parts_of(source: BinaryIO, verb: str, token: Token | None, response_date: str | None) -> Iterator[Page]:
    item, container = f"{_O}{ITEM_TAG[verb]}", f"{_O}{verb}"
    level = 0
    done: list | None = None  # a full part, handed over once a record after it shows it is not the last
    current: list = []
    began = 0
    # read no further ahead than a part, so that where the parser is tells where a part ends
    for event, element in etree.iterparse(source, events=("start", "end"), chunk_size=min(32768, PART_BYTES),
                                          **_ITERPARSE):
        if event == "start":
            level += 1
            if level == 2 and element.tag == container:
                _check_namespaces(element)
            continue
        level -= 1
        if level != 2 or element.tag != item or element.getparent().tag != container:
            continue
        if done is not None:
            yield _part(verb, done, response_date, None, more=True)
            done = None
        # a tree of its own, from the record's bytes as read_page's tree writes them (every declaration in scope
        # on its root): taken out of the parser's tree it wrote the default namespace as ns0, and a deep copy
        # drops declarations (what only values use, xsi:type's); the parser's tree lets the record go
        current.append(etree.fromstring(etree.tostring(element, with_tail=False), strict_parser()))
        element.clear()
        while element.getprevious() is not None:
            del element.getparent()[0]
        if source.tell() - began >= PART_BYTES:
            done, current, began = current, [], source.tell()
    if done is not None and current:
        yield _part(verb, done, response_date, None, more=True)
        done = None
    yield _part(verb, done if done is not None else current, response_date, token, more=False)


def _part(verb: str, elements: list, response_date: str | None, token: Token | None, *, more: bool) -> Page:
    records, headers, broken = [], [], []
    for el in elements:
        try:
            if verb == "ListIdentifiers":
                headers.append(_header(el))
            else:
                records.append(_record(el, ()))
        except ValueError as exc:
            broken.append(Broken(etree.tostring(el, encoding="utf-8", with_tail=False), str(exc),
                                 _text(el.find(f".//{_O}identifier"))))
    return Page(verb, response_date, (), tuple(records), tuple(headers), tuple(broken), token, more=more)


# -- the other verbs --------------------------------------------------------------------------

@dataclass(frozen=True)
class Identity:
    repository_name: str | None
    base_url: str | None
    protocol_version: str | None
    granularity: str | None
    deleted_record: str | None
    earliest_datestamp: str | None
    compression: tuple[str, ...]
    repository_identifier: str | None = None  # of its oai-identifier description, if it gives one


_OAI_IDENTIFIER = "{http://www.openarchives.org/OAI/2.0/oai-identifier}"


@dataclass(frozen=True)
class FormatOffer:
    prefix: str
    schema: str | None
    namespace: str | None


def identity(page: Page) -> Identity:
    """What an Identify response says; raises PageError if it has no Identify element."""
    el = page.root.find(f"{_O}Identify") if page.root is not None else None
    if el is None:
        raise PageError("the Identify response has no Identify element")
    return Identity(
        _name(el.find(f"{_O}repositoryName")), _text(el.find(f"{_O}baseURL")),
        _text(el.find(f"{_O}protocolVersion")), _text(el.find(f"{_O}granularity")),
        _text(el.find(f"{_O}deletedRecord")), _text(el.find(f"{_O}earliestDatestamp")),
        tuple(t for t in (_text(c) for c in el.findall(f"{_O}compression")) if t),
        _text(el.find(f"{_O}description/{_OAI_IDENTIFIER}oai-identifier/{_OAI_IDENTIFIER}repositoryIdentifier")),
    )


def format_offers(page: Page) -> list[FormatOffer]:
    """The metadataFormat entries of a ListMetadataFormats response."""
    el = page.root.find(f"{_O}ListMetadataFormats") if page.root is not None else None
    if el is None:
        return []
    return [FormatOffer(_text(f.find(f"{_O}metadataPrefix")) or "", _text(f.find(f"{_O}schema")),
                        _text(f.find(f"{_O}metadataNamespace")))
            for f in el.findall(f"{_O}metadataFormat")]


def set_entries(page: Page) -> list[tuple[str, str | None]]:
    """(setSpec, setName) pairs of a ListSets response."""
    el = page.root.find(f"{_O}ListSets") if page.root is not None else None
    if el is None:
        return []
    found = []
    for s in el.findall(f"{_O}set"):
        spec = _text(s.find(f"{_O}setSpec"))
        if spec:
            found.append((spec, _name(s.find(f"{_O}setName"))))
    return found


MAX_NAME = 1000  # characters of a set's or repository's name kept from a source


def _name(element: etree._Element | None) -> str | None:
    """A name a source gives (a set's, its own), cut to MAX_NAME characters: names of megabytes made our ListSets
    a page of 198 MB and a server worker 900 MB (an outside audit)."""
    text = _text(element)
    return text if text is None or len(text) <= MAX_NAME else text[:MAX_NAME - 1].rstrip() + "\u2026"


MAX_SET_DESCRIPTION = 64 * 1024  # bytes of a set's description kept from a source


def set_descriptions(page: Page) -> dict[str, str]:
    """setSpec -> the setDescription of a ListSets response, where it is Dublin Core valid against oai_dc.xsd (what
    the protocol's examples and most repositories give), rewritten as ours is written; any other kind, or one past
    MAX_SET_DESCRIPTION, is left out (an outside audit found every description dropped)."""
    el = page.root.find(f"{_O}ListSets") if page.root is not None else None
    found: dict[str, str] = {}
    for s in el.iterfind(f"{_O}set") if el is not None else ():
        spec = _text(s.find(f"{_O}setSpec"))
        payloads = [_first_child(d) for d in s.iterfind(f"{_O}setDescription")]  # (repeatable: the first in DC)
        payload = next((p for p in payloads if p is not None and p.tag == dc.FORMAT.root_tag), None)
        if not spec or payload is None or dc.validate(payload):
            continue
        text = dc.serialise(dc.normalise_fields(dc.fields_of(payload)), normalised=True)
        if len(text) <= MAX_SET_DESCRIPTION and dc.fields_of(etree.fromstring(text)):
            found[spec] = text.decode("utf-8")
    return found


def list_token(page: Page, verb: str) -> Token | None:
    """The resumptionToken of any list response (ListSets included)."""
    el = page.root.find(f"{_O}{verb}/{_O}resumptionToken") if page.root is not None else None
    if el is None:
        return None
    return Token(_text(el), _int(el.get("cursor")), _int(el.get("completeListSize")), el.get("expirationDate"))
