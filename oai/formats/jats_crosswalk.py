"""Crosswalk from a normalised (no-namespace) JATS article to oai_dc fields and Citation facts.

Choices a harvester should know about (one dc element per line of the README table):
* creator: one per byline author (two of the same name stay two), "; "-separated parts in a
  fixed order: "Surname, Given names[, Suffix]" (or the collab/string name; a <name> without a
  surname gives its given names), then each other form of a <name-alternatives> with other words
  (e.g. the Latin form of a Cyrillic name, not "Jane Doe" beside "Doe, Jane"), then each of their
  affiliations (the form OJS journals send; each distinct <aff> of an <aff-alternatives>; an
  author with none of their own or in their <contrib-group> gets those of <article-meta> when
  nobody points to any affiliation), then each of their e-mail addresses, then each ORCID iD as an https://orcid.org/ URL, e.g.
  "Oleynikov, Ilya Vasilyevich; Department of ..., Irkutsk State University, ...; oleynikov@isu.ru".
  Simple DC has nowhere else to put them (dc:identifier identifies the article, not a person),
  and oai_dc must carry every fact of the record; the first name form stays first, so whoever
  takes the part before the first ";" still gets the name alone (as dc.citation_from_fields
  does). An e-mail is an author's when it is in their <contrib> (also in its <address> or own
  <aff>), or is the only <email> of an <aff>/<corresp>/<fn> that they alone point to (xref or
  @rid); an address shared by several authors, or a note listing several addresses
  ("a@x (AB); c@y (CD)"), is left to the `jats` format, which keeps every <email> and
  <contrib-id> as published. Other contributors (editors, reviewers, non-byline group members)
  become dc:contributor, their name forms only.
* type: "Text" (DCMI Type), "info:eu-repo/semantics/article" (DRIVER: "an article or an
  editorial published in an academic journal"; "review" for book/product reviews) and the JATS
  article-type itself (e.g. "correction"), which keeps what the eu-repo term flattens.
* description: each abstract except graphical/teaser/toc ones, and each trans-abstract, flattened
  to plain text, paragraphs (and section titles) separated by a blank line.
* plain text (titles, descriptions, subjects): labels, footnotes and footnote/affiliation markers
  left out; a formula gives its MathML's text (x², y_i, a/(b+1), √2), or else its TeX (the body of a
  LaTeX file, without $ delimiters); a <tex-math> beside MathML in <alternatives> is a duplicate and left out; a line
  break or a block (p, list, list-item, disp-quote, def-list, statement, boxed-text, table-wrap,
  fig, disp-formula, ...) is a space; <sup>/<sub> in Unicode super-/subscripts where each
  character has one ("10⁻¹⁵M", "CO₂"), else as written.
* relation: each related-article as https://doi.org/... for a DOI (ext-link-type "doi", a bare
  DOI, or PLOS's info:doi/... URI), else its http(s) URL; an <ext-link> in it when it has no href.
* rights: each copyright statement; each licence's URL (license/@xlink:href, ali:license_ref),
  or where it has none its prose, plus the http(s) links of that prose (PLOS links the licence
  only there); then info:eu-repo/semantics/openAccess where the article says it is open (see _access).
* xml:lang: every title, description and subject carries the language in effect for it
  (its own xml:lang, its group's, its (sub-)article's, or "en", the JATS default), except a
  translation (trans-title, trans-subtitle, trans-abstract) with no xml:lang of its own or on
  its trans-title-group: it has none, since it is by definition not in the article's language;
  and none where the value is no language tag or is empty (xml:lang="": unknown, XML 1.0 2.12).
"""

from __future__ import annotations

import calendar
import copy
import operator
import re
from collections.abc import Iterator
from functools import lru_cache
from urllib.parse import quote

from lxml import etree

from oai.formats.base import Citation
from oai.formats.dc import LANGUAGE_TAG, is_pdf_url, others_than_first

XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
ALI_LICENSE_REF = "{http://www.niso.org/schemas/ali/1.0/}license_ref"
_MML = "{http://www.w3.org/1998/Math/MathML}"
_MML_SKIP = {f"{_MML}annotation", f"{_MML}annotation-xml"}
_MARKER_XREFS = {"fn", "aff", "author-notes", "corresp", "table-fn", "other"}
_SKIP = frozenset({"label", "fn", "institution-id", "email", "contrib-group", "object-id"} | _MML_SKIP)
_NO_SKIP: frozenset[str] = frozenset()
# Markup that is more than its text: blocks and line breaks (a space around them), scripts, TeX.
_BLOCKS = frozenset({"break", "p", "list", "list-item", "disp-quote", "def-list", "def-item", "term", "def",
                     "statement", "boxed-text", "table-wrap", "fig", "disp-formula"})
_SCRIPTS = {  # every character with a Unicode form, and the table to it
    "sup": (frozenset("0123456789+\u2212-=()ni"), str.maketrans("0123456789+\u2212-=()ni", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁻⁼⁽⁾ⁿⁱ")),
    "sub": (frozenset("0123456789+\u2212-=()"), str.maketrans("0123456789+\u2212-=()", "₀₁₂₃₄₅₆₇₈₉₊₋₋₌₍₎")),
}
# MathML layout whose plain text needs a mark: x² (not "x2"), y_i, a/b, √2 (an outside audit found "x2+yi=0")
_MML_LAYOUT = frozenset(f"{_MML}{name}" for name in ("msup", "msub", "msubsup", "mfrac", "msqrt", "mroot"))
_MARKUP = _BLOCKS | set(_SCRIPTS) | {"tex-math"} | _MML_LAYOUT
_SEPARATOR = "\x00"  # where a block starts or ends; never in XML text
_SEPARATOR_BEFORE_PUNCTUATION = re.compile("[ \t\r\n\x00]*\x00[ \t\r\n\x00]*(?=[,;.:)])")
_NOTES = frozenset({"aff", "corresp", "fn"})  # where an author's e-mail may be, pointed to by id
_SKIP_ABSTRACTS = frozenset({"graphical", "teaser", "toc"})
_REVIEW_TYPES = frozenset({"book-review", "product-review"})
_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}
_WS = re.compile(r"[ \t\r\n]+")
_SPACE_BEFORE_PUNCTUATION = re.compile(r" +([,;.:)])")
_first_group = operator.itemgetter(1)  # as a re.sub replacement: no template to expand per call
_DOI = re.compile(r"(10\.\d{4,9}/\S+)")
_YEAR = re.compile(r"\d{4}")
_WORD = re.compile(r"\w+")
_ISO_PREFIX = re.compile(r"(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?")
_HTTP = re.compile(r"https?://", re.IGNORECASE)
_ORCID = re.compile(r"(?<![\dA-Za-z-])(\d{4}-\d{4}-\d{4}-\d{3}[\dXx])(?![\dA-Za-z-])")
_MAILTO = re.compile(r"^mailto:", re.IGNORECASE)

Field = tuple[str, str, str | None]


def squash(text: str) -> str:
    """Runs of XML white space as one space, then stripped (str.strip: any Unicode space)."""
    if "\n" in text or "\t" in text or "\r" in text or "  " in text:
        text = _WS.sub(" ", text)
    return text.strip()


def text_of(element: etree._Element | None, skip: frozenset[str] = _SKIP) -> str:
    """Plain text of mixed content: markers, labels, footnotes and TeX duplicates left out.

    A <tex-math> is a duplicate beside MathML in <alternatives>: the MathML gives the text. Otherwise its
    TeX is the only text of the formula, so it stays (without a LaTeX file's preamble or $ delimiters).
    A line break or a block (paragraph, list item, ...) is a space, or words run together
    ("First para.Item one"); none before the punctuation that follows it. Superscripts and
    subscripts in Unicode where every character has a form there ("10⁻¹⁵", "CO₂"), else as written
    ("38oC", "21st").
    """
    if element is None:
        return ""
    if not len(element):  # the common case: text only
        text = element.text
        return squash(text) if text else ""
    parts: list[str] = []
    separated = False

    def walk(node: etree._Element) -> None:
        nonlocal separated
        if node.text:
            parts.append(node.text)
        for child in node:
            tag = child.tag
            if isinstance(tag, str) and tag not in skip and not (
                tag == "xref" and child.get("ref-type") in _MARKER_XREFS
            ):
                if tag not in _MARKUP:
                    walk(child)
                elif tag in _SCRIPTS:
                    script = text_of(child, skip)
                    forms, table = _SCRIPTS[tag]
                    # "38<sup>o</sup>C", "21<sup>st</sup>": as written reads better than any mark
                    parts.append(script.translate(table) if set(script) <= forms else script)
                elif tag == "tex-math":
                    if not (node.tag == "alternatives" and _has_mathml(node)):
                        parts.append(_tex(child))
                elif tag in _MML_LAYOUT:
                    parts.append(_math_layout(child, skip))
                else:  # a block or a line break
                    separated = True
                    parts.append(_SEPARATOR)
                    walk(child)
                    parts.append(_SEPARATOR)
            if child.tail:
                parts.append(child.tail)

    walk(element)
    text = "".join(parts)
    if separated:
        text = _SEPARATOR_BEFORE_PUNCTUATION.sub("", text).replace(_SEPARATOR, " ")
    return squash(text)


def _script(text: str, kind: str) -> str:
    """`text` as a super- or subscript: in Unicode where every character has a form, else after ^ or _."""
    forms, table = _SCRIPTS[kind]
    if text and set(text) <= forms:
        return text.translate(table)
    return ("^" if kind == "sup" else "_") + _grouped(text)


def _grouped(text: str) -> str:
    """`text` as one operand: in parentheses unless it is a single character, a number or a name."""
    return text if len(text) <= 1 or text.isalnum() or (text[0] == "(" and text[-1] == ")") else f"({text})"


def _math_layout(node: etree._Element, skip: frozenset[str]) -> str:
    """The plain text of a MathML script, fraction or root: x², y_i, a/b, √2, ³√x."""
    args = [text_of(child, skip) for child in node if isinstance(child.tag, str) and child.tag not in skip]
    name = node.tag[len(_MML):]
    if name == "msqrt":
        return "√" + _grouped("".join(args))
    if len(args) < 2:  # not as MathML has it: its text as it is
        return "".join(args)
    if name == "msup":
        return args[0] + _script(args[1], "sup")
    if name == "msub":
        return args[0] + _script(args[1], "sub")
    if name == "msubsup":
        return args[0] + _script(args[1], "sub") + (_script(args[2], "sup") if len(args) > 2 else "")
    if name == "mfrac":
        return f"{_grouped(args[0])}/{_grouped(args[1])}"
    return _script(args[1], "sup") + "√" + _grouped(args[0])  # mroot: base, index


_MML_MATH = f"{_MML}math"
_TEX_DOCUMENT = re.compile(r"\\begin\{document\}(.*?)\\end\{document\}", re.DOTALL)
_TEX_DELIMITERS = re.compile(r"^\s*(?:\$\$?|\\\[|\\\()(.*?)(?:\$\$?|\\\]|\\\))\s*$", re.DOTALL)


def _has_mathml(alternatives: etree._Element) -> bool:
    """True when an <alternatives> holds MathML, whose text stands for the formula (a graphic has none)."""
    return any(child.tag == _MML_MATH for child in alternatives)


def _tex(tex_math: etree._Element) -> str:
    """A formula's TeX as text: the body of a whole \\documentclass ... \\begin{document} file (PMC writes
    those), without its $ or \\[ \\] delimiters."""
    text = "".join(tex_math.itertext())
    if (document := _TEX_DOCUMENT.search(text)) is not None:
        text = document.group(1)
    if (delimited := _TEX_DELIMITERS.match(text)) is not None:
        text = delimited.group(1)
    return text.strip()


def _paragraphs(abstract: etree._Element) -> str:
    """An abstract as plain text: its paragraphs and section titles, one blank line apart.

    Text written straight into an <abstract> or <sec> (NLM 2.x and small publishers' exports) is a
    paragraph of its own, inline markup and all: an outside audit found "We measured\\n\\nin vivo\\n\\n2"
    where the abstract said "We measured <italic>in vivo</italic> uptake of CO<sub>2</sub> ...".
    """
    blocks: list[str] = []

    def walk(container: etree._Element, top: bool) -> None:
        run = etree.Element("p")  # the inline content between blocks, copied (rare: most abstracts are <p>s)
        run.text = container.text

        def end_run() -> None:
            nonlocal run
            if len(run) or (run.text and run.text.strip()):
                blocks.append(text_of(run))
            run = etree.Element("p")

        def add_text(text: str | None) -> None:
            if not text:
                return
            if len(run):
                run[-1].tail = (run[-1].tail or "") + text
            else:
                run.text = (run.text or "") + text

        for child in container:
            tag = child.tag
            if tag == "sec":
                end_run()
                walk(child, False)
            elif (tag == "title" and top) or tag in ("label", "object-id") or not isinstance(tag, str):
                pass
            elif tag in ("p", "title") or (tag in _BLOCKS and tag != "break"):
                end_run()
                blocks.append(text_of(child))
            else:
                run.append(copy.copy(child))
                continue
            add_text(child.tail)
        end_run()

    walk(abstract, True)
    return "\n\n".join(block for block in blocks if block)


# ISO 639-2 codes (bibliographic and terminological) of languages with an ISO 639-1 code, which BCP 47 takes
# instead (RFC 5646 2.2.1): repositories write dc:language "fre", "ger", "rus".
ISO_639_1 = {
    "ara": "ar", "bel": "be", "bul": "bg", "cat": "ca", "ces": "cs", "cze": "cs", "chi": "zh", "zho": "zh",
    "dan": "da", "deu": "de", "ger": "de", "dut": "nl", "nld": "nl", "ell": "el", "gre": "el", "eng": "en",
    "est": "et", "fas": "fa", "per": "fa", "fin": "fi", "fra": "fr", "fre": "fr", "heb": "he", "hin": "hi",
    "hrv": "hr", "hun": "hu", "ind": "id", "ita": "it", "jpn": "ja", "kaz": "kk", "kor": "ko", "lat": "la",
    "lav": "lv", "lit": "lt", "nor": "no", "pol": "pl", "por": "pt", "ron": "ro", "rum": "ro", "rus": "ru",
    "slk": "sk", "slo": "sk", "slv": "sl", "spa": "es", "srp": "sr", "swe": "sv", "tur": "tr", "ukr": "uk",
    "vie": "vi",
}


@lru_cache(maxsize=256)
def normal_lang(value: str | None) -> str | None:
    """BCP 47 case conventions ("EN" -> "en", "en-us" -> "en-US") and its shortest code ("rus" -> "ru", which an
    outside audit found served as it came); None for empty, and for what is no language tag at all ("en US",
    "English"): oai_dc's xml:lang (xs:language) would refuse the whole record for it, and the text is worth more
    than its label."""
    if not value or not value.strip():
        return None
    parts = value.strip().replace("_", "-").split("-")
    out = [ISO_639_1.get(parts[0].lower(), parts[0].lower())]
    for part in parts[1:]:
        out.append(part.upper() if len(part) == 2 else part.title() if len(part) == 4 else part.lower())
    tag = "-".join(out)
    primary = out[0]
    # A language is named by 2 or 3 letters (ISO 639; 4 to 8 are reserved or unassigned): "English" is a name, not
    # a tag (an outside audit found it served as xml:lang="english" and dc:language); "x-..." is private use.
    if not (2 <= len(primary) <= 3 or (primary == "x" and len(out) > 1)):
        return None
    return tag if LANGUAGE_TAG.fullmatch(tag) else None


def lang_of(element: etree._Element) -> str | None:
    """The xml:lang in effect for `element` (JATS's default for <article> is "en"); None where that is no
    language tag, or where xml:lang="" says the language is unknown (XML 1.0, 2.12)."""
    node: etree._Element | None = element
    while node is not None:
        value = node.get(XML_LANG)
        if value is not None:
            return normal_lang(value)
        node = node.getparent()
    return "en"


def _article_meta(article: etree._Element) -> etree._Element:
    found = article.find("front/article-meta")
    return found if found is not None else etree.Element("article-meta")


def _journal_meta(article: etree._Element) -> etree._Element:
    found = article.find("front/journal-meta")
    return found if found is not None else etree.Element("journal-meta")


def _translations(article: etree._Element) -> Iterator[etree._Element]:
    """Front matter of translation sub-articles (SciELO): their titles, abstracts, keywords."""
    for sub in article.iter("sub-article"):
        if sub.get("article-type") == "translation":
            for name in ("front-stub", "front"):
                front = sub.find(name)
                if front is not None:
                    meta = front.find("article-meta")
                    yield meta if meta is not None else front
                    break


def _titles(meta: etree._Element) -> Iterator[tuple[str, str | None]]:
    for group in meta.findall("title-group"):
        title = group.find("article-title")
        if title is not None:
            yield _with_subtitle(text_of(title), group.find("subtitle")), lang_of(title)
        for trans in group.iter("trans-title"):
            container = trans.getparent()
            in_group = container.tag == "trans-title-group"
            subtitle = container.find("trans-subtitle") if in_group else None
            # a translation's own language or its group's, never the article's (which it is not in)
            lang = trans.get(XML_LANG) or (container.get(XML_LANG) if in_group else None)
            yield _with_subtitle(text_of(trans), subtitle), normal_lang(lang)


def _with_subtitle(title: str, subtitle: etree._Element | None) -> str:
    sub = text_of(subtitle)
    if not sub:
        return title
    return f"{title} {sub}" if title.endswith((":", "?", "!", ".")) or sub.startswith("(") else f"{title}: {sub}"


def _abstracts(meta: etree._Element) -> Iterator[tuple[str, str | None]]:
    for abstract in meta:
        if abstract.tag in ("abstract", "trans-abstract") and abstract.get("abstract-type") not in _SKIP_ABSTRACTS:
            # a trans-abstract: its own language or none, as a translated title
            lang = lang_of(abstract) if abstract.tag == "abstract" else normal_lang(abstract.get(XML_LANG))
            yield _paragraphs(abstract), lang


def _keywords(meta: etree._Element) -> Iterator[tuple[str, str]]:
    for group in meta.findall("kwd-group"):
        for kwd in group.iter("kwd", "compound-kwd"):
            if kwd.tag == "compound-kwd":
                yield " – ".join(text_of(part) for part in kwd.findall("compound-kwd-part")), lang_of(kwd)
            else:
                yield text_of(kwd), lang_of(kwd)


def person_names(contrib: etree._Element, lang: str | None = None) -> list[str]:
    """The distinct name forms of a <contrib>, 'Surname, Given names[, Suffix]' (or the group or
    string name); [] for none.

    Of a <name-alternatives>, the first <name> (else <string-name>) in the article's language `lang`, else
    the first <name> (else <string-name>), comes first, and alone is what a citation takes: a landing page
    in one language names its authors in that script (an outside audit found Latin and Cyrillic authors on
    one page). Every other form follows (the Latin form of a Cyrillic name is how most readers will search
    for the author).
    """
    for child in contrib:
        tag = child.tag
        if tag == "name-alternatives":
            forms = [form for form in child if form.tag == "name" or form.tag == "string-name"]
            primary = _primary_subtag(lang)
            # (a form's own xml:lang: one without says nothing of its script, whatever the article's language)
            in_lang = [form for form in forms if primary and _primary_subtag(form.get(XML_LANG)) == primary]
            first = _first_name_form(in_lang)
            if first is None:
                first = _first_name_form(forms)
            if first is None:
                continue
            names: dict[tuple[str, ...], str] = {}  # one per set of words: OJS adds "Jane Doe" to "Doe, Jane"
            for form in [first] + [form for form in forms if form is not first]:
                if name := _name_form(form):
                    names.setdefault(tuple(sorted(_WORD.findall(name.casefold()))), name)
            if names:
                return list(names.values())
        elif tag == "name" or tag == "string-name" or tag == "collab":
            if name := _name_form(child):
                return [name]
        elif tag == "collab-alternatives":  # every form, the article's language first, as for persons
            forms = [form for form in child if form.tag == "collab"]
            primary = _primary_subtag(lang)
            forms.sort(key=lambda form: not (primary and _primary_subtag(form.get(XML_LANG)) == primary))
            if groups := list(dict.fromkeys(name for form in forms if (name := text_of(form)))):
                return groups
    return []


def _first_name_form(forms: list[etree._Element]) -> etree._Element | None:
    """The first <name> of `forms`, else the first of them (a <string-name>), else None."""
    return next((form for form in forms if form.tag == "name"), forms[0] if forms else None)


def _primary_subtag(lang: str | None) -> str | None:
    return lang.partition("-")[0].lower() if lang else None


def _name_form(name: etree._Element) -> str:
    """One <name>, <string-name> or <collab> as text: 'Surname, Given names[, Suffix]' where there
    is a surname; a <name> without one (a mononym tagged as given names) is its given names."""
    if name.tag == "collab":
        return text_of(name)
    parts = {"surname": None, "given-names": None, "suffix": None}
    for part in name:  # the first of each, as find() would
        if part.tag in parts and parts[part.tag] is None:
            parts[part.tag] = part
    if parts["surname"] is not None:
        names = (text_of(parts["surname"]), text_of(parts["given-names"]), text_of(parts["suffix"]))
        return ", ".join(part for part in names if part)
    if name.tag == "name":
        return text_of(parts["given-names"])
    return text_of(name)


def affiliations(
    contrib: etree._Element, meta: etree._Element, index: _AffIndex | None = None, refs: list[str] | None = None
) -> list[str]:
    """Affiliation texts of a contrib: its own <aff>, those it points to, or its group's, or else
    the article's (an <aff> in <article-meta> that nobody points to is everybody's).

    An <aff-alternatives> (the same affiliation in several languages or forms) gives each of its
    <aff>s: which form a reader wants is not ours to choose.
    """
    index = index or _AffIndex(meta)
    tags = index.aff_tags
    texts: list[str] = []
    for aff in contrib.iterchildren(*tags):
        texts += _aff_texts(aff)
    for ref in _refs(contrib) if refs is None else refs:
        if ref in index.by_id:
            texts += index.texts(ref)
    if not texts:
        for aff in contrib.getparent().iterchildren(*tags):
            if aff.get("id") not in index.referenced:
                texts += _aff_texts(aff)
    if not texts:
        texts = index.article_texts()
    return list(dict.fromkeys(text for text in texts if text))


class _AffIndex:
    """Affiliations of an article-meta by id (their texts worked out once), and the ids something points to."""

    def __init__(self, meta: etree._Element) -> None:
        self.meta = meta
        affs = list(meta.iter("aff", "aff-alternatives"))
        self.by_id = {aff.get("id"): aff for aff in affs if aff.get("id")}
        # what to look for in a contrib or its group: one tag is quicker, and most articles have no alternatives
        self.aff_tags = ("aff", "aff-alternatives") if any(aff.tag == "aff-alternatives" for aff in affs) else ("aff",)
        self.referenced = {ref for x in meta.iter("xref", "contrib") for ref in (x.get("rid") or "").split()}
        self._texts: dict[str, list[str]] = {}
        self._emails: dict[str, list[etree._Element]] | None = None
        self._users: dict[str, int] = {}
        self._article_texts: list[str] | None = None

    def article_texts(self) -> list[str]:
        """Texts of the <aff>s of <article-meta> itself, when nobody points to any affiliation: then they are
        everybody's. Where some authors point to theirs, an author who points nowhere has none (giving them the
        others' would be a guess). Worked out when first asked."""
        if self._article_texts is None:
            pointed = any(ref in self.by_id for ref in self.referenced)
            self._article_texts = [] if pointed else [
                text for aff in self.meta.iterchildren(*self.aff_tags) for text in _aff_texts(aff)]
        return self._article_texts

    def note_emails(self) -> tuple[dict[str, list[etree._Element]], dict[str, int]]:
        """(the <email>s in each aff/corresp/fn with an id, how many contribs point to each of those
        ids); worked out when first asked."""
        if self._emails is None:
            self._emails = {}
            for email in self.meta.iter("email"):
                node = email.getparent()
                while node is not None and node.tag != "article-meta":
                    if node.tag in _NOTES and (note_id := node.get("id")):
                        self._emails.setdefault(note_id, []).append(email)
                    node = node.getparent()
            if self._emails:
                for contrib in self.meta.iter("contrib"):
                    for ref in set(_refs(contrib)):
                        self._users[ref] = self._users.get(ref, 0) + 1
        return self._emails, self._users

    def texts(self, ref: str) -> list[str]:
        texts = self._texts.get(ref)
        if texts is None:
            texts = self._texts[ref] = _aff_texts(self.by_id[ref])
        return texts


def _aff_texts(aff: etree._Element) -> list[str]:
    """The texts of an <aff>, or of each <aff> of an <aff-alternatives>."""
    if aff.tag == "aff-alternatives":
        return [_aff_text(alternative) for alternative in aff.iterchildren("aff")]
    return [_aff_text(aff)]


def _aff_text(aff: etree._Element) -> str:
    """An affiliation as one line: SciELO's 'original' string, else the (joined) parts."""
    original = next((i for i in aff.iterchildren("institution") if i.get("content-type") == "original"), None)
    text = text_of(original) if original is not None else _joined(aff)
    return _SPACE_BEFORE_PUNCTUATION.sub(_first_group, text).strip(" .,;")


def _joined(element: etree._Element) -> str:
    """Text of tagged parts; parts with no punctuation between them are joined with ', '."""
    loose = (element.text or "") + "".join(c.tail or "" for c in element)
    if loose.strip():
        return text_of(element)
    children = [c for c in element if isinstance(c.tag, str) and c.tag not in _SKIP and c.tag != "xref"]
    if not children:
        return text_of(element)
    return ", ".join(part for part in (_joined(c) for c in children) if part)


def _refs(contrib: etree._Element) -> list[str]:
    """The ids a contrib points to: its @rid, then those of its <xref>s."""
    refs = (contrib.get("rid") or "").split()
    for xref in contrib.iterchildren("xref"):
        refs += (xref.get("rid") or "").split()
    return refs


def emails(contrib: etree._Element, index: _AffIndex, refs: list[str] | None = None) -> list[str]:
    """E-mail addresses that are clearly this contributor's.

    Its own <email> (also in its <address> or in an <aff> inside it), and the single <email> of
    an <aff>, <corresp> or <fn> that it points to and no other contributor points to. An
    address shared by several authors, or a note listing several addresses, is nobody's in
    particular (which of them is whose is only said in prose): those stay in the `jats` format.
    """
    found = []
    for child in contrib:
        tag = child.tag
        if tag == "email":
            found.append(child)
        elif tag == "address" or tag == "aff" or tag == "aff-alternatives":
            found += child.iter("email")
    refs = _refs(contrib) if refs is None else refs
    if refs:
        notes, users = index.note_emails()
        for ref in refs:
            addresses = notes.get(ref)
            if addresses is not None and len(addresses) == 1 and users.get(ref) == 1:
                found.append(addresses[0])
    texts = [_MAILTO.sub("", text_of(e, _NO_SKIP) or (e.get(XLINK_HREF) or "").strip()) for e in found]
    return list(dict.fromkeys(text for text in texts if text))


def orcids(contrib: etree._Element) -> list[str]:
    """The contributor's ORCID iDs as https://orcid.org/ URLs (bare or http:// iDs normalised)."""
    found = []
    for contrib_id in contrib.iterchildren("contrib-id"):
        text = text_of(contrib_id)
        if (contrib_id.get("contrib-id-type") or "").strip().lower() == "orcid" or "orcid.org/" in text:
            if m := _ORCID.search(text):
                found.append(f"https://orcid.org/{m.group(1).upper()}")
    return list(dict.fromkeys(found))


Author = tuple[list[str], list[str], list[str], list[str]]  # name forms, affiliations, e-mails, ORCID URLs


def _contributors(meta: etree._Element, lang: str | None) -> tuple[list[Author], list[list[str]]]:
    """(byline authors with affiliations, e-mails and ORCIDs, other contributors' name forms) from
    article-meta contrib-groups; each name first in the article's language `lang` where it has that form."""
    authors, others = [], []
    index = _AffIndex(meta)
    for group in meta.findall("contrib-group"):
        for contrib in group.findall("contrib"):
            names = person_names(contrib, lang)
            if not names:
                continue
            kind = (contrib.get("contrib-type") or group.get("content-type") or "author").strip().lower()
            if kind in ("author", "authors"):
                refs = _refs(contrib)
                authors.append(
                    (names, affiliations(contrib, meta, index, refs), emails(contrib, index, refs), orcids(contrib))
                )
            else:
                others.append(names)
            # the named members of a group author (<collab><contrib-group>): the group is the creator, they
            # contribute (an outside audit found eLife's nine group members nowhere in oai_dc)
            for member in contrib.iterfind("collab//contrib"):
                if member_names := person_names(member, lang):
                    others.append(member_names)
    return authors, others


# pub-date kinds (pub-type, or date-type as JATS 1.1 on and JATS4R write it) that date the published article
_PUBLISHED = frozenset(("", "pub", "publication", "version-of-record", "vor"))


def _date_rank(pub_date: etree._Element) -> int:
    kind = (pub_date.get("pub-type") or pub_date.get("date-type") or "").lower()
    medium = (pub_date.get("publication-format") or "").lower()
    if kind == "epub" or medium in ("electronic", "epub", "online") and kind in _PUBLISHED:
        return 0
    if kind == "ppub" or medium in ("print", "ppub") and kind in _PUBLISHED:
        return 1
    if kind == "epub-ppub" or kind in _PUBLISHED:
        return 2
    if kind in ("collection", "ecorrected", "pcorrected", "corrected-version-of-record"):
        return 3
    # a preprint's or accepted manuscript's date, before the article was published (an outside audit)
    if kind in ("epreprint", "preprint", "accepted-manuscript", "am"):
        return 4
    return 9  # update, retracted, ...: not the publication date


def iso_date(date: etree._Element) -> str | None:
    """YYYY[-MM[-DD]] from <year>/<month>/<day>, else from @iso-8601-date."""
    year = text_of(date.find("year"))
    if not _YEAR.fullmatch(year):
        m = _ISO_PREFIX.match(date.get("iso-8601-date") or "")
        if not m:
            return None
        year, month, day = m.group(1), m.group(2) or "", m.group(3) or ""
    else:
        month, day = text_of(date.find("month")), text_of(date.find("day"))
    if month and not month.isdigit():
        month = str(_MONTHS.get(month[:3].lower(), ""))
    if not month.isdigit() or not 1 <= int(month) <= 12:
        return year
    if not day.isdigit() or not 1 <= int(day) <= calendar.monthrange(int(year), int(month))[1]:
        return f"{year}-{int(month):02d}"  # (2021-02-31 is no date: an outside audit found it served)
    return f"{year}-{int(month):02d}-{int(day):02d}"


def publication_date(meta: etree._Element) -> str | None:
    """The article's publication date: electronic first, then print, then the issue's."""
    dates = sorted((d for d in meta.findall("pub-date") if _date_rank(d) < 9), key=_date_rank)
    return next((iso for d in dates if (iso := iso_date(d))), None)


_DOI_SAFE = "/:;()-._~!$&'*+,=@"  # RFC 3986 path characters: '#', '?', '%', '<', '>' and the like are escaped


def doi_url(doi: str) -> str:
    """The DOI's https://doi.org/ link; a '#' or '?' in it would end the path and lead to another DOI, and old
    DOIs with '<' or '>' made dc:identifier no URI (an outside audit)."""
    return "https://doi.org/" + quote(doi, safe=_DOI_SAFE)


def _doi(meta: etree._Element) -> str | None:
    for article_id in meta.findall("article-id"):
        if article_id.get("pub-id-type") == "doi" and (m := _DOI.search(text_of(article_id))):
            return m.group(1)
    return None


_ALT_SCHEMES = frozenset({"pmid", "arxiv", "isbn"})  # JATS pub-id-types that are OpenAIRE's scheme names too


def _alternative_ids(meta: etree._Element) -> Iterator[Field]:
    """The article's PubMed, arXiv and ISBN ids as OpenAIRE's alternative identifiers (dc:relation
    info:eu-repo/semantics/altIdentifier/<scheme>/<id>); the DOI is dc:identifier already."""
    for article_id in meta.findall("article-id"):
        scheme, value = article_id.get("pub-id-type"), text_of(article_id)
        if scheme in _ALT_SCHEMES and value and " " not in value:
            yield "relation", f"info:eu-repo/semantics/altIdentifier/{scheme}/{value}", None


# (NLM's pub-id-type "pmc" arrives here as "pmcid": jats.normalise respells it)
_PUBMED_PAGES = (("pmcid", re.compile(r"(?:PMC)?(\d{1,10})"), "https://www.ncbi.nlm.nih.gov/pmc/articles/PMC{}/"),
                 ("pmid", re.compile(r"(\d{1,10})"), "https://pubmed.ncbi.nlm.nih.gov/{}/"))


def _fallback_links(meta: etree._Element, pdf: str | None) -> list[str]:
    """For an article with neither DOI nor page of its own: its PDF, else its PubMed Central or PubMed page."""
    if pdf:
        return [pdf]
    for scheme, form, page in _PUBMED_PAGES:
        for article_id in meta.findall("article-id"):
            if article_id.get("pub-id-type") == scheme and (m := form.fullmatch(text_of(article_id))):
                return [page.format(m.group(1))]
    return []


def _self_uris(meta: etree._Element) -> tuple[list[str], str | None]:
    """(absolute article URLs, absolute PDF URL) from <self-uri>."""
    pages, pdf = [], None
    for uri in meta.findall("self-uri"):
        href = (uri.get(XLINK_HREF) or text_of(uri)).strip()
        if not _HTTP.match(href):
            continue
        if (uri.get("content-type") or "").strip().lower() in ("pdf", "application/pdf") or is_pdf_url(href):
            pdf = pdf or href
        else:
            pages.append(href)
    return pages, pdf


def _issns(journal: etree._Element) -> list[tuple[str, str]]:
    """(ISSN, "print" or "online" or "") of each distinct ISSN: the medium is a fact of the record (the seed's
    journal gives its print ISSN)."""
    out: dict[str, str] = {}
    for issn in journal.findall("issn"):
        value = text_of(issn)
        if value and value not in out:
            medium = f"{issn.get('publication-format') or ''} {issn.get('pub-type') or ''}".lower().split()
            out[value] = ("print" if {"print", "ppub"} & set(medium) else
                          "online" if {"electronic", "online", "epub"} & set(medium) else "")
    return list(out.items())


def _journal_title(journal: etree._Element) -> str:
    return text_of(journal.find("journal-title-group/journal-title")) or text_of(journal.find("journal-title"))


def _journal_titles(journal: etree._Element) -> list[str]:
    """The journal's title and its titles in other languages (journal-title, trans-title), each once."""
    found = journal.findall("journal-title-group/journal-title") + journal.findall(
        "journal-title-group/trans-title-group/trans-title") or journal.findall("journal-title")
    return list(dict.fromkeys(title for title in map(text_of, found) if title))


def _numbering(meta: etree._Element) -> tuple[str, str, str, str]:
    """(volume, issue, fpage, lpage) texts, "" for those not given."""
    found: dict[str, str | None] = dict.fromkeys(("volume", "issue", "fpage", "lpage"))
    for child in meta:  # the first of each, as find() would
        if child.tag in found and found[child.tag] is None:
            found[child.tag] = text_of(child)
    return found["volume"] or "", found["issue"] or "", found["fpage"] or "", found["lpage"] or ""


def _source(journal_titles: list[str], issns: list[tuple[str, str]], numbering: tuple[str, str, str, str],
            meta: etree._Element) -> str:
    """'Journal = Its title in another language; ISSN x (print); Vol. v; No. n; pp. a-b', the parts known (a
    title in several languages as ISBD writes parallel titles)."""
    volume, issue, first, last = numbering
    parts = [" = ".join(journal_titles)]
    parts += [f"ISSN {issn} ({medium})" if medium else f"ISSN {issn}" for issn, medium in issns]
    parts += [f"Vol. {volume}" if volume else "", f"No. {issue}" if issue else ""]
    if first:
        parts.append(f"pp. {first}-{last}" if last and last != first else f"p. {first}")
    elif elocation := text_of(meta.find("elocation-id")):
        parts.append(f"Article {elocation}")
    return "; ".join(part for part in parts if part)


def _rights(meta: etree._Element) -> Iterator[Field]:
    holders = [meta] + meta.findall("permissions")
    for holder in holders:
        statements, licenses, refs = [], [], []
        for child in holder:  # one pass; yielded statements first, then licences, then ALI refs
            tag = child.tag
            if tag == "copyright-statement":
                statements.append(child)
            elif tag == "license":
                licenses.append(child)
            elif tag == ALI_LICENSE_REF:
                refs.append(child)
        for statement in statements:
            yield "rights", text_of(statement), normal_lang(statement.get(XML_LANG))
        for license_ in licenses:
            urls = [license_.get(XLINK_HREF) or ""] + [text_of(ref) for ref in license_.iter(ALI_LICENSE_REF)]
            urls = [url.strip() for url in urls if url and url.strip()]
            for url in urls:
                yield "rights", url, None
            if not urls:
                paragraphs = license_.findall("license-p")
                for paragraph in paragraphs:
                    yield "rights", text_of(paragraph), lang_of(paragraph)
                for paragraph in paragraphs:  # PLOS: the licence's URL only as a link in its prose
                    for link in paragraph.iter("ext-link"):
                        href = (link.get(XLINK_HREF) or "").strip()
                        if _HTTP.match(href):
                            yield "rights", href, None
        for ref in refs:
            yield "rights", text_of(ref), None


_OPEN_LICENCE = re.compile(r"https?://(?:www\.)?creativecommons\.org/(?:licenses|publicdomain)/", re.IGNORECASE)
_OPEN_PROSE = re.compile(r"\bopen[- ]access\b|\bcreative commons\b", re.IGNORECASE)  # older PLOS: prose only
_FREE_TO_READ = "{http://www.niso.org/schemas/ali/1.0/}free_to_read"
OPEN_ACCESS = "info:eu-repo/semantics/openAccess"


def _access(meta: etree._Element, rights: list[Field]) -> Iterator[Field]:
    """info:eu-repo/semantics/openAccess where the article says it is open: a Creative Commons licence or public
    domain mark, <license license-type="open-access">, a licence whose text says open access or Creative
    Commons, or <ali:free_to_read> without dates (one with dates is a window: whether it is open now is not a
    fact of the record). OpenAIRE's guidelines make the access level mandatory; an article that says nothing
    gets none (closed or embargoed access cannot be told from silence)."""
    permissions = meta.findall("permissions")
    open_url = any(_OPEN_LICENCE.match(text) for name, text, _ in rights if name == "rights")
    open_licence = any(licence.get("license-type") == "open-access" or _OPEN_PROSE.search(text_of(licence))
                       for p in permissions for licence in p.iter("license"))
    free_to_read = any(free.get("start_date") is None and free.get("end_date") is None
                       for p in permissions for free in p.iter(_FREE_TO_READ))
    if open_url or open_licence or free_to_read:
        yield "rights", OPEN_ACCESS, None


def _relations(meta: etree._Element) -> Iterator[Field]:
    """Related articles as https://doi.org/ URLs or their own http(s) URLs.

    The address is the <related-article>'s xlink:href, else that of an <ext-link> in it; PLOS
    writes DOIs as info:doi/10.... URIs (with ext-link-type "uri"), which are DOIs all the same.
    """
    for related in meta.findall("related-article"):
        href = (related.get(XLINK_HREF) or "").strip()
        if not href and (link := related.find("ext-link")) is not None:
            href = (link.get(XLINK_HREF) or "").strip()
        info_doi = href[:9].lower() == "info:doi/"
        if info_doi:
            href = href[9:]
        if info_doi or related.get("ext-link-type") == "doi" or (href and _DOI.fullmatch(href)):
            if m := _DOI.search(href):
                yield "relation", doi_url(m.group(1)), None
        elif _HTTP.match(href):
            yield "relation", href, None


def crosswalk(article: etree._Element) -> tuple[list[Field], Citation]:
    """The oai_dc (element, text, lang) triples and the Citation facts of a normalised article."""
    meta, journal = _article_meta(article), _journal_meta(article)
    metas = [meta, *_translations(article)]
    titles = [title for m in metas for title in _titles(m)]
    keywords = [kwd for m in metas for kwd in _keywords(m)]
    abstracts = [abstract for m in metas for abstract in _abstracts(m)]
    language = lang_of(article)
    authors, others = _contributors(meta, language)
    journal_title, issns, numbering = _journal_title(journal), _issns(journal), _numbering(meta)
    journal_titles = _journal_titles(journal)
    volume, issue, first, last = numbering
    date, doi = publication_date(meta), _doi(meta)
    pages, pdf = _self_uris(meta)
    article_type = (article.get("article-type") or "").strip()
    eu_repo = "review" if article_type in _REVIEW_TYPES else "article"

    fields: list[Field] = [("title", text, lang) for text, lang in titles]
    fields += [("creator", "; ".join([*names, *affs, *mails, *ids]), None) for names, affs, mails, ids in authors]
    fields += [("subject", text, lang) for text, lang in keywords]
    fields += [("description", text, lang) for text, lang in abstracts]
    # each name in its own language where it says one (a Russian journal names its publisher in ru and in en)
    fields += [("publisher", text_of(p), normal_lang(p.get(XML_LANG) or p.getparent().get(XML_LANG)))
               for p in journal.findall("publisher/publisher-name")]
    fields += [("contributor", "; ".join(names), None) for names in others]
    fields.append(("date", date or "", None))
    fields += [("type", "Text", None), ("type", f"info:eu-repo/semantics/{eu_repo}", None), ("type", article_type, None)]
    fields += [("identifier", doi_url(doi), None)] if doi else []
    fields += [("identifier", url, None) for url in pages]
    if not doi and not pages:  # a link to the item for aggregators all the same (BASE, OpenAIRE need one)
        fields += [("identifier", url, None) for url in _fallback_links(meta, pdf)]
    fields.append(("source", _source(journal_titles, issns, numbering, meta), None))
    fields.append(("language", language, None))
    fields += list(_relations(meta)) + list(_alternative_ids(meta))
    rights = list(_rights(meta))
    fields += rights + list(_access(meta, rights))

    every_abstract = [(text, lang) for text, lang in abstracts if text]  # the article's own first, translations after
    first_keywords: dict[str, str | None] = {}
    for text, lang in keywords:
        if text:
            first_keywords.setdefault(text, lang)
    facts = Citation(
        title=titles[0][0] if titles else None,
        authors=tuple(author[0][0] for author in authors),
        publication_date=date,
        journal_title=journal_title or None,
        issn=tuple(issn for issn, _ in issns),
        volume=volume or None,
        issue=issue or None,
        firstpage=first or None,
        lastpage=last or None,
        article_number=None if first else text_of(meta.find("elocation-id")) or None,
        doi=doi,
        pdf_url=pdf,
        language=language,
        keywords=tuple(first_keywords),
        keyword_languages=tuple(first_keywords.values()),
        abstract=every_abstract[0][0] if every_abstract else None,
        title_language=titles[0][1] if titles else None,
        abstract_language=every_abstract[0][1] if every_abstract else None,
        other_titles=others_than_first(titles),
        other_abstracts=others_than_first(every_abstract),
    )
    return fields, facts
