"""Crosswalk from a normalised (no-namespace) JATS article to oai_dc fields and Citation facts.

Choices a harvester should know about (one dc element per line of the README table):
* creator: byline authors as "Surname, Given names[, Suffix]", then "; affiliation" for each of
  their affiliations (the form OJS journals send). ORCIDs and e-mails are NOT put into simple
  DC: a name string with an identifier or address appended breaks the name matching that DC
  aggregators do, dc:identifier identifies the article not a person, and both stay available
  in the `jats` format (contrib-id, email). Other contributors (editors, reviewers, non-byline
  group members) become dc:contributor, same form.
* type: "Text" (DCMI Type), "info:eu-repo/semantics/article" (DRIVER: "an article or an
  editorial published in an academic journal"; "review" for book/product reviews) and the JATS
  article-type itself (e.g. "correction"), which keeps what the eu-repo term flattens.
* description: each abstract except graphical/teaser/toc ones, and each trans-abstract, flattened
  to plain text, paragraphs (and section titles) separated by a blank line.
* xml:lang: every title, description and subject carries the language in effect for it
  (its own xml:lang, its group's, its (sub-)article's, or "en", the JATS default).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

from lxml import etree

from oai.formats.base import Citation

XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
ALI_LICENSE_REF = "{http://www.niso.org/schemas/ali/1.0/}license_ref"
_MML_SKIP = {"{http://www.w3.org/1998/Math/MathML}annotation", "{http://www.w3.org/1998/Math/MathML}annotation-xml"}
_MARKER_XREFS = {"fn", "aff", "author-notes", "corresp", "table-fn", "other"}
_SKIP = frozenset({"label", "fn", "tex-math", "institution-id", "email", "contrib-group", "object-id"} | _MML_SKIP)
_SKIP_ABSTRACTS = frozenset({"graphical", "teaser", "toc"})
_REVIEW_TYPES = frozenset({"book-review", "product-review"})
_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}
_WS = re.compile(r"[ \t\r\n]+")
_SPACE_BEFORE_PUNCTUATION = re.compile(r" +([,;.:)])")
_DOI = re.compile(r"(10\.\d{4,9}/\S+)")

Field = tuple[str, str, str | None]


def text_of(element: etree._Element | None, skip: frozenset[str] = _SKIP) -> str:
    """Plain text of mixed content: markers, labels, footnotes and TeX duplicates left out."""
    if element is None:
        return ""
    if not len(element):  # the common case: text only
        return _WS.sub(" ", element.text).strip() if element.text else ""
    parts: list[str] = []

    def walk(node: etree._Element) -> None:
        if node.text:
            parts.append(node.text)
        for child in node:
            if isinstance(child.tag, str) and child.tag not in skip and not (
                child.tag == "xref" and child.get("ref-type") in _MARKER_XREFS
            ):
                walk(child)
            if child.tail:
                parts.append(child.tail)

    walk(element)
    return _WS.sub(" ", "".join(parts)).strip()


def _paragraphs(abstract: etree._Element) -> str:
    """An abstract as plain text: its paragraphs and section titles, one blank line apart."""
    blocks: list[str] = []

    def walk(container: etree._Element, top: bool) -> None:
        if container.text and container.text.strip():
            blocks.append(_WS.sub(" ", container.text).strip())
        for child in container:
            if child.tag == "sec":
                walk(child, False)
            elif (child.tag == "title" and top) or child.tag in ("label", "object-id"):
                pass
            elif isinstance(child.tag, str):
                blocks.append(text_of(child))

    walk(abstract, True)
    return "\n\n".join(block for block in blocks if block)


@lru_cache(maxsize=256)
def normal_lang(value: str | None) -> str | None:
    """BCP 47 case conventions ("EN" -> "en", "en-us" -> "en-US"); None for empty."""
    if not value or not value.strip():
        return None
    parts = value.strip().replace("_", "-").split("-")
    out = [parts[0].lower()]
    for part in parts[1:]:
        out.append(part.upper() if len(part) == 2 else part.title() if len(part) == 4 else part.lower())
    return "-".join(out)


def lang_of(element: etree._Element) -> str:
    """The xml:lang in effect for `element` (JATS's default for <article> is "en")."""
    node: etree._Element | None = element
    while node is not None:
        value = node.get(XML_LANG)
        if value:
            return normal_lang(value) or "en"
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


def _titles(meta: etree._Element) -> Iterator[tuple[str, str]]:
    for group in meta.findall("title-group"):
        title = group.find("article-title")
        if title is not None:
            yield _with_subtitle(text_of(title), group.find("subtitle")), lang_of(title)
        for trans in group.iter("trans-title"):
            container = trans.getparent()
            subtitle = container.find("trans-subtitle") if container.tag == "trans-title-group" else None
            yield _with_subtitle(text_of(trans), subtitle), lang_of(trans)


def _with_subtitle(title: str, subtitle: etree._Element | None) -> str:
    sub = text_of(subtitle)
    if not sub:
        return title
    return f"{title} {sub}" if title.endswith((":", "?", "!", ".")) or sub.startswith("(") else f"{title}: {sub}"


def _abstracts(meta: etree._Element) -> Iterator[tuple[str, str]]:
    for abstract in meta:
        if abstract.tag in ("abstract", "trans-abstract") and abstract.get("abstract-type") not in _SKIP_ABSTRACTS:
            yield _paragraphs(abstract), lang_of(abstract)


def _keywords(meta: etree._Element) -> Iterator[tuple[str, str]]:
    for group in meta.findall("kwd-group"):
        for kwd in group.iter("kwd", "compound-kwd"):
            if kwd.tag == "compound-kwd":
                yield " – ".join(text_of(part) for part in kwd.findall("compound-kwd-part")), lang_of(kwd)
            else:
                yield text_of(kwd), lang_of(kwd)


def person_name(contrib: etree._Element) -> str:
    """'Surname, Given names[, Suffix]' (or the group or string name) of a <contrib>."""
    for child in contrib:
        if child.tag == "name-alternatives":
            child = child.find("name") if child.find("name") is not None else child.find("string-name")
            if child is None:
                continue
        if child.tag in ("name", "string-name") and child.find("surname") is not None:
            surname, given = text_of(child.find("surname")), text_of(child.find("given-names"))
            suffix = text_of(child.find("suffix"))
            return ", ".join(part for part in (surname, given, suffix) if part)
        if child.tag in ("string-name", "collab"):
            return text_of(child)
        if child.tag == "collab-alternatives" and len(child):
            return text_of(child[0])
    return ""


def affiliations(contrib: etree._Element, meta: etree._Element, index: _AffIndex | None = None) -> list[str]:
    """Affiliation texts of a contrib: its own <aff>, those it points to, or its group's."""
    index = index or _AffIndex(meta)
    found = list(contrib.findall("aff"))
    refs = (contrib.get("rid") or "").split()
    refs += [ref for xref in contrib.findall("xref") for ref in (xref.get("rid") or "").split()]
    found += [index.by_id[ref] for ref in refs if ref in index.by_id]
    if not found:
        found = [aff for aff in contrib.getparent().findall("aff") if aff.get("id") not in index.referenced]
    texts = []
    for aff in found:
        text = _aff_text(aff)
        if text and text not in texts:
            texts.append(text)
    return texts


class _AffIndex:
    """Affiliations of an article-meta by id, and the ids something points to."""

    def __init__(self, meta: etree._Element) -> None:
        self.by_id = {aff.get("id"): aff for aff in meta.iter("aff") if aff.get("id")}
        self.referenced = {ref for x in meta.iter("xref", "contrib") for ref in (x.get("rid") or "").split()}


def _aff_text(aff: etree._Element) -> str:
    """An affiliation as one line: SciELO's 'original' string, else the (joined) parts."""
    if aff.tag == "aff-alternatives":
        aff = aff.find("aff") if aff.find("aff") is not None else aff
    original = aff.find("institution[@content-type='original']")
    text = text_of(original) if original is not None else _joined(aff)
    return _SPACE_BEFORE_PUNCTUATION.sub(r"\1", text).strip(" .,;")


def _joined(element: etree._Element) -> str:
    """Text of tagged parts; parts with no punctuation between them are joined with ', '."""
    children = [c for c in element if isinstance(c.tag, str) and c.tag not in _SKIP and c.tag != "xref"]
    loose = (element.text or "") + "".join(c.tail or "" for c in element)
    if not children or loose.strip():
        return text_of(element)
    return ", ".join(part for part in (_joined(c) for c in children) if part)


def _contributors(meta: etree._Element) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """(byline authors with affiliations, other contributors) from article-meta contrib-groups."""
    authors, others = [], []
    index = _AffIndex(meta)
    for group in meta.findall("contrib-group"):
        for contrib in group.findall("contrib"):
            name = person_name(contrib)
            if not name:
                continue
            kind = (contrib.get("contrib-type") or group.get("content-type") or "author").strip().lower()
            if kind in ("author", "authors"):
                authors.append((name, affiliations(contrib, meta, index)))
            else:
                others.append(name)
    return authors, others


def _date_rank(pub_date: etree._Element) -> int:
    kind = (pub_date.get("pub-type") or pub_date.get("date-type") or "").lower()
    medium = (pub_date.get("publication-format") or "").lower()
    if kind in ("epub", "epreprint") or medium in ("electronic", "epub", "online") and kind in ("", "pub", "publication"):
        return 0
    if kind == "ppub" or medium in ("print", "ppub") and kind in ("", "pub", "publication"):
        return 1
    if kind in ("epub-ppub", "pub", "publication", ""):
        return 2
    if kind in ("collection", "ecorrected", "pcorrected"):
        return 3
    return 9  # update, retracted, ...: not the publication date


def iso_date(date: etree._Element) -> str | None:
    """YYYY[-MM[-DD]] from <year>/<month>/<day>, else from @iso-8601-date."""
    year = text_of(date.find("year"))
    if not re.fullmatch(r"\d{4}", year):
        m = re.match(r"(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?", date.get("iso-8601-date") or "")
        if not m:
            return None
        year, month, day = m.group(1), m.group(2) or "", m.group(3) or ""
    else:
        month, day = text_of(date.find("month")), text_of(date.find("day"))
    if month and not month.isdigit():
        month = str(_MONTHS.get(month[:3].lower(), ""))
    if not month.isdigit() or not 1 <= int(month) <= 12:
        return year
    if not day.isdigit() or not 1 <= int(day) <= 31:
        return f"{year}-{int(month):02d}"
    return f"{year}-{int(month):02d}-{int(day):02d}"


def publication_date(meta: etree._Element) -> str | None:
    """The article's publication date: electronic first, then print, then the issue's."""
    dates = sorted((d for d in meta.findall("pub-date") if _date_rank(d) < 9), key=_date_rank)
    return next((iso for d in dates if (iso := iso_date(d))), None)


def _doi(meta: etree._Element) -> str | None:
    for article_id in meta.findall("article-id"):
        if article_id.get("pub-id-type") == "doi" and (m := _DOI.search(text_of(article_id))):
            return m.group(1)
    return None


def _self_uris(meta: etree._Element) -> tuple[list[str], str | None]:
    """(absolute article URLs, absolute PDF URL) from <self-uri>."""
    pages, pdf = [], None
    for uri in meta.findall("self-uri"):
        href = (uri.get(XLINK_HREF) or text_of(uri)).strip()
        if not re.match(r"https?://", href):
            continue
        if uri.get("content-type") == "pdf" or href.lower().endswith(".pdf"):
            pdf = pdf or href
        else:
            pages.append(href)
    return pages, pdf


def _issns(journal: etree._Element) -> list[str]:
    out = []
    for issn in journal.findall("issn"):
        value = text_of(issn)
        if value and value not in out:
            out.append(value)
    return out


def _journal_title(journal: etree._Element) -> str:
    return text_of(journal.find("journal-title-group/journal-title")) or text_of(journal.find("journal-title"))


def source_text(article: etree._Element) -> str:
    """'Journal; ISSN x; Vol. v; No. n; pp. a-b' (the parts that are known)."""
    meta, journal = _article_meta(article), _journal_meta(article)
    parts = [_journal_title(journal)] + [f"ISSN {issn}" for issn in _issns(journal)]
    volume, issue = text_of(meta.find("volume")), text_of(meta.find("issue"))
    first, last = text_of(meta.find("fpage")), text_of(meta.find("lpage"))
    parts += [f"Vol. {volume}" if volume else "", f"No. {issue}" if issue else ""]
    if first:
        parts.append(f"pp. {first}-{last}" if last and last != first else f"p. {first}")
    elif elocation := text_of(meta.find("elocation-id")):
        parts.append(f"Article {elocation}")
    return "; ".join(part for part in parts if part)


def _rights(meta: etree._Element) -> Iterator[Field]:
    holders = [meta] + meta.findall("permissions")
    for holder in holders:
        for statement in holder.findall("copyright-statement"):
            yield "rights", text_of(statement), normal_lang(statement.get(XML_LANG))
        for license_ in holder.findall("license"):
            urls = [license_.get(XLINK_HREF) or ""] + [text_of(ref) for ref in license_.iter(ALI_LICENSE_REF)]
            urls = [url.strip() for url in urls if url and url.strip()]
            for url in urls:
                yield "rights", url, None
            if not urls:
                for paragraph in license_.findall("license-p"):
                    yield "rights", text_of(paragraph), lang_of(paragraph)
        for ref in holder.findall(ALI_LICENSE_REF):
            yield "rights", text_of(ref), None


def _relations(meta: etree._Element) -> Iterator[Field]:
    for related in meta.findall("related-article"):
        href = (related.get(XLINK_HREF) or "").strip()
        if related.get("ext-link-type") == "doi" or (href and _DOI.fullmatch(href)):
            if m := _DOI.search(href):
                yield "relation", f"https://doi.org/{m.group(1)}", None
        elif re.match(r"https?://", href):
            yield "relation", href, None


def crosswalk(article: etree._Element) -> tuple[list[Field], Citation]:
    """The oai_dc (element, text, lang) triples and the Citation facts of a normalised article."""
    meta, journal = _article_meta(article), _journal_meta(article)
    metas = [meta, *_translations(article)]
    titles = [title for m in metas for title in _titles(m)]
    keywords = [kwd for m in metas for kwd in _keywords(m)]
    abstracts = [abstract for m in metas for abstract in _abstracts(m)]
    authors, others = _contributors(meta)
    date, doi, language = publication_date(meta), _doi(meta), lang_of(article)
    pages, pdf = _self_uris(meta)
    article_type = (article.get("article-type") or "").strip()
    eu_repo = "review" if article_type in _REVIEW_TYPES else "article"

    fields: list[Field] = [("title", text, lang) for text, lang in titles]
    fields += [("creator", "; ".join([name, *affs]), None) for name, affs in authors]
    fields += [("subject", text, lang) for text, lang in keywords]
    fields += [("description", text, lang) for text, lang in abstracts]
    fields += [("publisher", text_of(p), None) for p in journal.findall("publisher/publisher-name")]
    fields += [("contributor", name, None) for name in others]
    fields.append(("date", date or "", None))
    fields += [("type", "Text", None), ("type", f"info:eu-repo/semantics/{eu_repo}", None), ("type", article_type, None)]
    fields += [("identifier", f"https://doi.org/{doi}", None)] if doi else []
    fields += [("identifier", url, None) for url in pages]
    fields.append(("source", source_text(article), None))
    fields.append(("language", language, None))
    fields += list(_relations(meta))
    fields += list(_rights(meta))

    main_abstracts = [text for text, _lang in _abstracts(meta) if text]
    facts = Citation(
        title=titles[0][0] if titles else None,
        authors=tuple(name for name, _affs in authors),
        publication_date=date,
        journal_title=_journal_title(journal) or None,
        issn=tuple(_issns(journal)),
        volume=text_of(meta.find("volume")) or None,
        issue=text_of(meta.find("issue")) or None,
        firstpage=text_of(meta.find("fpage")) or None,
        lastpage=text_of(meta.find("lpage")) or None,
        doi=doi,
        pdf_url=pdf,
        language=language,
        keywords=tuple(dict.fromkeys(text for text, _lang in keywords if text)),
        abstract=main_abstracts[0] if main_abstracts else None,
    )
    return fields, facts
