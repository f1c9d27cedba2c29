"""The one parser for untrusted XML (no DTD, no entity expansion, no I/O) and canonical bytes.

Named entities declared only in an external DTD we never load (``&mdash;`` in JATS) are
replaced by their characters from the HTML5/ISO/MathML set before parsing; others are refused.
"""

from __future__ import annotations

import codecs
import re
import threading
import unicodedata
from html.entities import html5

from lxml import etree

from oai.formats.base import FormatError

MAX_BYTES = 50 * 1024 * 1024

_XML_PREDEFINED = frozenset({"amp", "lt", "gt", "quot", "apos"})


def _iso_greek() -> dict[str, str]:
    """The ISO 8879 Greek entity sets the JATS DTD declares beside HTML's (xmlchars/isogrk1, 2 and 4), which HTML5's
    table lacks (an outside audit: &agr; and &b.alpha; refused): name -> character, by its Unicode name, as W3C's
    XML entity definitions for characters map them."""
    letters = {"a": "ALPHA", "b": "BETA", "g": "GAMMA", "d": "DELTA", "e": "EPSILON", "z": "ZETA", "ee": "ETA",
               "th": "THETA", "i": "IOTA", "k": "KAPPA", "l": "LAMDA", "m": "MU", "n": "NU", "x": "XI", "o": "OMICRON",
               "p": "PI", "r": "RHO", "s": "SIGMA", "t": "TAU", "u": "UPSILON", "ph": "PHI", "kh": "CHI", "ps": "PSI",
               "oh": "OMEGA"}
    names = {"sfgr": "GREEK SMALL LETTER FINAL SIGMA"}
    for short, letter in letters.items():  # isogrk1: agr, Agr, eegr, EEgr, ...
        names[f"{short}gr"] = f"GREEK SMALL LETTER {letter}"
        names[f"{short[0].upper()}{short[1:].upper() if len(short) > 1 else ''}gr"] = f"GREEK CAPITAL LETTER {letter}"
    for short, letter in (("a", "ALPHA"), ("e", "EPSILON"), ("ee", "ETA"), ("i", "IOTA"), ("o", "OMICRON"),
                          ("u", "UPSILON"), ("oh", "OMEGA")):  # isogrk2: accented (tonos)
        names[f"{short}acgr"] = f"GREEK SMALL LETTER {letter} WITH TONOS"
        names[f"{short[0].upper()}{short[1:].upper()}acgr"] = f"GREEK CAPITAL LETTER {letter} WITH TONOS"
    for short, letter in (("i", "IOTA"), ("u", "UPSILON")):  # isogrk2: dialytika, and with tonos
        names[f"{short}digr"] = f"GREEK SMALL LETTER {letter} WITH DIALYTIKA"
        names[f"{short.upper()}digr"] = f"GREEK CAPITAL LETTER {letter} WITH DIALYTIKA"
        names[f"{short}diagr"] = f"GREEK SMALL LETTER {letter} WITH DIALYTIKA AND TONOS"
    for name in ("alpha", "beta", "gamma", "delta", "zeta", "eta", "iota", "kappa", "lambda", "mu", "nu", "xi", "pi",
                 "rho", "sigma", "tau", "chi", "psi", "omega", "upsi", "epsi", "thetas", "phi"):  # isogrk4: bold
        letter = {"lambda": "LAMDA", "upsi": "UPSILON", "epsi": "EPSILON", "thetas": "THETA"}.get(name, name.upper())
        names[f"b.{name}"] = f"MATHEMATICAL BOLD SMALL {letter}"
    for name in ("Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsi", "Phi", "Psi", "Omega"):
        letter = {"Lambda": "LAMDA", "Upsi": "UPSILON"}.get(name, name.upper())
        names[f"b.{name}"] = f"MATHEMATICAL BOLD CAPITAL {letter}"
    for name in ("epsiv", "thetav", "kappav", "phiv", "piv", "rhov"):  # the variant forms: Unicode's symbols
        names[f"b.{name}"] = f"MATHEMATICAL BOLD {name[:-1].upper()} SYMBOL".replace("EPSI ", "EPSILON ")
    names |= {"b.sigmav": "MATHEMATICAL BOLD SMALL FINAL SIGMA", "b.Gammad": "GREEK LETTER DIGAMMA",
              "b.gammad": "GREEK SMALL LETTER DIGAMMA"}  # (as W3C's entity definitions give them)
    return {name: unicodedata.lookup(character) for name, character in names.items()}


# name (without ";") -> numeric character references, for the ISO/HTML/MathML names.
_NAMED = {
    name: "".join(f"&#{ord(ch)};" for ch in chars).encode("ascii")
    for name, chars in [(n[:-1], c) for n, c in html5.items() if n.endswith(";")] + list(_iso_greek().items())
    if name not in _XML_PREDEFINED
}

# Markup where "&" or "<!ENTITY" is not a reference/declaration, then the two things we look for.
# (Written "[<&]" first, then the rest by which of the two it was: the regex engine then skips
# everything else quickly, twice as fast as the plain alternation on a large article.)
_SCAN = re.compile(
    rb"[<&](?:(?<=<)(?:!--.*?-->|!\[CDATA\[.*?\]\]>|\?.*?\?>|(?P<decl>!ENTITY))"
    rb"|(?<=&)(?P<name>[^;&<>\s\"'#][^;&<>\s\"']{0,63});)",
    re.DOTALL,
)
_STR_SCAN = re.compile(_SCAN.pattern.decode("ascii"), re.DOTALL)
# An "&" that is neither one of the five XML references nor a character reference: without one
# (and without "<!ENTITY") a byte document needs no scan at all.
_OTHER_AMPERSAND = re.compile(rb"&(?!(?:amp|lt|gt|quot|apos);|#)")


class _DenyResolver(etree.Resolver):
    """Answers every attempt to load an external resource with nothing, and remembers it."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts: list[str] = []

    def resolve(self, system_url, public_id, context):  # type: ignore[override]
        self.attempts.append(str(system_url or public_id))
        return self.resolve_string("", context)


_local = threading.local()


def _parser() -> tuple[etree.XMLParser, _DenyResolver]:
    """One hardened parser per thread (lxml parsers must not be shared across threads)."""
    cached = getattr(_local, "parser", None)
    if cached is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            attribute_defaults=False,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
            strip_cdata=True,
            # NOT collect_ids=False: lxml 6 / libxml2 2.14 then sets XML_SKIP_IDS in
            # ctxt->loadsubset, which makes libxml2 fetch the external DTD.
        )
        resolver = _DenyResolver()
        parser.resolvers.add(resolver)
        cached = _local.parser = (parser, resolver)
    return cached


def _line_of(data: bytes | str, offset: int) -> int:
    """1-based line number of `offset`, for error messages."""
    newline = b"\n" if isinstance(data, bytes) else "\n"
    return data.count(newline, 0, offset) + 1  # type: ignore[arg-type]


def _replace_named_entities(data: bytes, source: str) -> bytes:
    """Refuse entity declarations and unknown entities; turn known names into char refs."""
    encoding = _wide_encoding(data)
    if encoding is None:
        text: bytes | str = data
        pattern: re.Pattern = _SCAN
        named: dict = _NAMED
    else:
        try:
            text = codecs.decode(data, encoding)
        except UnicodeDecodeError as exc:
            raise FormatError(f"{_where(source)}cannot decode the document as {encoding}: {exc}") from None
        pattern = _STR_SCAN
        named = {k: v.decode("ascii") for k, v in _NAMED.items()}

    def substitute(match: re.Match) -> bytes | str:
        if match.group("decl") is not None:
            raise FormatError(
                f"{_where(source)}the document type declaration declares entities "
                f"(line {_line_of(text, match.start())}); entity declarations are refused "
                "(external entities, entity expansion)"
            )
        name = match.group("name")
        if name is None:  # comment, CDATA section or processing instruction: keep as is
            return match.group(0)
        key = name.decode("ascii", "replace") if isinstance(name, bytes) else name
        key = key if key.isprintable() else ascii(key)[1:-1]  # (binary input: no raw bytes to the terminal)
        if key in _XML_PREDEFINED:
            return match.group(0)
        if key in named:
            return named[key]
        raise FormatError(
            f"{_where(source)}undefined entity &{key}; at line {_line_of(text, match.start())} "
            "(only the XML, HTML and ISO/MathML named character entities are known)"
        )

    if encoding is None and b"<!ENTITY" not in data and (b"&" not in data or not _OTHER_AMPERSAND.search(data)):
        return data  # nothing to look at (the common case)
    result = pattern.sub(substitute, text)
    return result if encoding is None else codecs.encode(result, encoding)


def _wide_encoding(data: bytes) -> str | None:
    """The codec for UTF-16/32 input (where a byte scan would be blind), else None."""
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if data.startswith(b"<\x00\x00\x00"):
        return "utf-32-le"
    if data.startswith(b"\x00\x00\x00<"):
        return "utf-32-be"
    if data.startswith(b"<\x00"):
        return "utf-16-le"
    if data.startswith(b"\x00<"):
        return "utf-16-be"
    return None


_ARCHIVES = ((b"PK\x03\x04", "a zip archive"), (b"\x1f\x8b", "a gzip file"), (b"BZh", "a bzip2 file"),
             (b"\xfd7zXZ\x00", "an xz file"), (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"), (b"%PDF-", "a PDF"))


def _archive_kind(data: bytes) -> str | None:
    """What a file that is not XML but a known container is (a publisher's zip of articles, a .xml.gz), or None."""
    return next((kind for magic, kind in _ARCHIVES if data.startswith(magic)), None)


def _where(source: str) -> str:
    return f"{source}: " if source else ""


def parse_document(data: bytes, *, max_bytes: int = MAX_BYTES, source: str = "") -> etree._Element:
    """Parse untrusted bytes into a root element, or raise FormatError saying why not."""
    if not isinstance(data, bytes):
        raise TypeError("parse_document takes bytes")
    if len(data) > max_bytes:
        raise FormatError(f"{_where(source)}document too large: {len(data)} bytes (limit {max_bytes})")
    if not data.strip():
        raise FormatError(f"{_where(source)}empty document")
    if kind := _archive_kind(data):  # (read as XML, an archive's bytes gave an 'undefined entity' of line noise)
        todo = "give the article's XML (JATS) instead" if kind == "a PDF" else "unpack it and give the XML files it holds"
        raise FormatError(f"{_where(source)}not XML but {kind}: {todo}")
    prepared = _replace_named_entities(data, source)
    parser, resolver = _parser()
    resolver.attempts.clear()
    try:
        root = etree.fromstring(prepared, parser)
    except etree.XMLSyntaxError as exc:
        line, column = exc.position
        message = exc.msg.split(", line ")[0] if exc.msg else "syntax error"
        if "Text node too long" in message:  # (libxml2's words name an option no librarian has: see MAX_TEXT)
            raise FormatError(f"{_where(source)}{TOO_LONG} (line {line})") from None
        raise FormatError(
            f"{_where(source)}not well-formed XML at line {line}, column {column}: {message}"
        ) from None
    finally:
        attempts = list(resolver.attempts)
        resolver.attempts.clear()
    if attempts:  # cannot happen with these options; refuse rather than trust
        raise FormatError(f"{_where(source)}document tried to load external resources: {attempts}")
    if root is None:
        raise FormatError(f"{_where(source)}no root element")
    _refuse_declared_entities(root, source)
    return root


def _refuse_declared_entities(root: etree._Element, source: str) -> None:
    """Second line of defence after the byte scan: no entity declarations, no entity nodes."""
    dtd = root.getroottree().docinfo.internalDTD
    if dtd is not None:
        names = [entity.name for entity in dtd.iterentities()]
        if names:
            raise FormatError(
                f"{_where(source)}the document type declaration declares entities ({', '.join(names)}); "
                "entity declarations are refused"
            )
    for node in root.iter(etree.Entity):
        raise FormatError(f"{_where(source)}undefined entity &{node.name}; at line {node.sourceline}")


MAX_DEPTH = 200  # levels of elements in a record's metadata, its root the first
# Served, a record sits 4 levels down a page (OAI-PMH, ListRecords, record, metadata), and libxml2 without its
# huge-document option (lxml's default, most harvesters built on either) refuses a document nested past 256
# levels: one record nested deeper would make every page serving it unreadable to them (an outside audit).
_DEEPER = etree.XPath("boolean(" + "/".join(["*"] * MAX_DEPTH) + ")")


TOO_DEEP = (f"elements nest more than {MAX_DEPTH} levels deep; a page serving it would be refused by parsers that "
            "keep libxml2's default limit")


MAX_TEXT = 10_000_000  # characters of one text: libxml2 without its huge-document option (lxml's default, sickle)
# stops reading a page at a longer one, and drops the rest of the page, its resumptionToken too (an outside audit)
TOO_LONG = (f"it holds a text of more than {MAX_TEXT:,} characters; a page serving it would be cut short by "
            "parsers that keep libxml2's default limit")


def text_too_long(element: etree._Element, size: int) -> bool:
    """True when a text (or tail) in `element` passes MAX_TEXT; `size` is its document's bytes, under which none
    can (so that a record of the usual size costs nothing here)."""
    if size <= MAX_TEXT:
        return False
    return any(len(node.text or "") > MAX_TEXT or len(node.tail or "") > MAX_TEXT for node in element.iter())


def too_deep(element: etree._Element) -> bool:
    """True when elements nest in `element` more than MAX_DEPTH levels deep (itself the first): TOO_DEEP says why
    it is refused."""
    return bool(_DEEPER(element))


def canonical_bytes(element: etree._Element) -> bytes:
    """UTF-8 bytes of one element, no XML declaration: same tree, same bytes (for digests).

    The formats pass the root of a tree they built with every namespace declared on it (and
    cleaned up), so the bytes stand alone inside <metadata>; lxml adds the in-scope declarations
    of a non-root element to it, so a sub-element serialises self-contained too.
    """
    return etree.tostring(element, encoding="UTF-8", xml_declaration=False, with_tail=False)


_TEXT_SPECIAL = re.compile("[&<>\r]")
_TEXT_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"}


def text_bytes_escape(value: str) -> str:
    """Character data exactly as libxml2 (canonical_bytes) writes it, for bytes written without a tree."""
    if "&" in value or "<" in value or ">" in value or "\r" in value:  # str's own search: 5x a regex scan
        return _TEXT_SPECIAL.sub(lambda m: _TEXT_ESCAPES[m.group()], value)
    return value
