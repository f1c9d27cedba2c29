"""Landing pages carry the citation meta tags crawlers read; the sitemap lists them and is valid."""

from __future__ import annotations

import json
import re
import time
from urllib.parse import quote
from pathlib import Path

import requests
from lxml import etree
from sqlalchemy import select

from oai.formats.base import SCHEMAS_DIR
from oai.loader import load
from oai.store.engine import transaction
from oai.protocol.dates import format_datestamp
from oai.store.models import Record
from oai.store.records import delete_record

SEED = Path(__file__).resolve().parents[1] / "oai" / "demo" / "irkutsk-bulletin-2020-32-44.xml"
SEED_ID = "oai:example.org:10.26516/2073-3380.2020.32.44"


def _meta(html: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, content in re.findall(r'<meta name="(citation_[a-z_]+)" content="([^"]*)">', html):
        found.setdefault(name, []).append(content)
    return found


def test_landing_page_has_citation_meta_tags(engine, live_server) -> None:
    load(engine, [str(SEED)], repository_identifier="example.org")
    server = live_server()
    r = requests.get(f"{server.root}/record/{SEED_ID}", timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    meta = _meta(r.text)
    assert meta["citation_title"][0].startswith("The Compromise Partnership")
    assert meta["citation_author"] == ["Oleynikov, Ilya Vasilyevich", "Yakimova, Anna Alexeevna"]
    assert meta["citation_publication_date"] == ["2020"]
    assert meta["citation_journal_title"] == [
        "The Bulletin of Irkutsk State University. Series Political Science and Religion Studies"]
    assert meta["citation_issn"] == ["2073-3380"]
    assert meta["citation_volume"] == ["32"]
    assert meta["citation_firstpage"] == ["44"] and meta["citation_lastpage"] == ["51"]
    assert meta["citation_doi"] == ["10.26516/2073-3380.2020.32.44"]
    assert '<a href="https://doi.org/10.26516/2073-3380.2020.32.44">' in r.text  # (a '#' in one: escaped, as in oai_dc)
    assert requests.get(f"{server.root}/record/oai:example.org:nope", timeout=10).status_code == 404
    # a Russian article with an English title and abstract: the page is in Russian, those two say they are not
    # (an outside audit: everything on the page was marked Russian)
    page = etree.fromstring(r.content, etree.HTMLParser())
    assert page.get("lang") == "ru"
    assert page.find(".//head/title").get("lang") == "en" and page.find(".//h1").get("lang") == "en"
    abstract = page.xpath("//h2[.='Abstract']/following-sibling::div[1]")[0]
    assert abstract.get("lang") == "en" and abstract.find("p").text.startswith("The paper presents")


def test_deleted_record_page_is_not_indexed(engine, live_server) -> None:
    load(engine, [str(SEED)], repository_identifier="example.org")
    with transaction(engine) as s:
        delete_record(s, SEED_ID)
    server = live_server()
    r = requests.get(f"{server.root}/record/{SEED_ID}", timeout=10)
    assert r.status_code == 410  # Gone: crawlers drop it (an outside audit saw 200)
    assert "noindex" in r.text and not _meta(r.text)
    # no record to show: no sitemap, and no index of none (a sitemap must hold a url; an outside audit found one
    # that did not listed)
    assert requests.get(f"{server.root}/sitemap-0.xml", timeout=10).status_code == 404
    assert requests.get(f"{server.root}/sitemap.xml", timeout=10).status_code == 404


def test_a_date_of_year_and_month_is_given_as_the_year(engine, live_server) -> None:
    """Google Scholar takes a whole date or the year alone; SciELO's articles give year and month (2014/04 it was,
    an outside audit)."""
    article = SEED.parents[2] / "tests" / "data" / "jats" / "scielo" / "0034-8910-rsp-48-2-0322_es.xml"
    load(engine, [str(article)], repository_identifier="example.org")
    with transaction(engine) as s:
        ident = s.scalar(select(Record.identifier))
    r = requests.get(f"{live_server().root}/record/{ident}", timeout=10)
    assert _meta(r.text)["citation_publication_date"] == ["2014"], _meta(r.text)


def test_robots_txt_names_the_sitemap(engine, live_server) -> None:
    server = live_server()
    reply = requests.get(f"{server.root}/robots.txt", timeout=10)
    assert reply.status_code == 200 and reply.headers["Content-Type"].startswith("text/plain")
    assert f"Sitemap: {server.root}/sitemap.xml" in reply.text.splitlines() and "Disallow:" in reply.text


def test_sitemap_is_valid_and_lists_landing_pages(engine, live_server) -> None:
    load(engine, [str(SEED), str(Path(__file__).parent / "data" / "jats" / "plos")], repository_identifier="example.org")
    server = live_server()
    reply = requests.get(f"{server.root}/sitemap.xml", timeout=10)
    index = etree.fromstring(reply.content)
    assert etree.XMLSchema(file=str(SCHEMAS_DIR / "sitemaps" / "siteindex.xsd")).validate(index)
    # a proxy may keep it an hour: each is a scan of the ids (an outside audit: six clients held two cores)
    assert reply.headers["Cache-Control"] == "public, max-age=3600"
    assert requests.get(f"{server.root}/sitemap-0.xml", timeout=10).headers["Cache-Control"] == "public, max-age=3600"
    locs = index.findall("{http://www.sitemaps.org/schemas/sitemap/0.9}sitemap/{http://www.sitemaps.org/schemas/sitemap/0.9}loc")
    assert [loc.text for loc in locs] == [f"{server.root}/sitemap-0.xml"]
    page = etree.fromstring(requests.get(locs[0].text, timeout=10).content)
    assert etree.XMLSchema(file=str(SCHEMAS_DIR / "sitemaps" / "sitemap.xsd")).validate(page)
    urls = [u.text for u in page.iter("{http://www.sitemaps.org/schemas/sitemap/0.9}loc")]
    assert len(urls) == 6 and f"{server.root}/record/{SEED_ID}" in urls
    for url in urls:
        assert requests.get(url, timeout=10).status_code == 200
    # (an outside crawler audit) each sitemap sits beside the pages it lists, as sitemaps.org requires of a sitemap's
    # URLs, says when its newest record changed, and a crawler revalidates a sitemap or a page it holds
    assert all(url.startswith(locs[0].text.rsplit("/", 1)[0] + "/") for url in urls)
    assert index.findtext("{*}sitemap/{*}lastmod") == max(u.text for u in page.iter("{*}lastmod"))
    for url in (locs[0].text, f"{server.root}/record/{SEED_ID}"):
        first = requests.get(url, timeout=10)
        again = requests.get(url, headers={"If-None-Match": first.headers["ETag"]}, timeout=10)
        assert (again.status_code, again.content) == (304, b""), url
    # a deletion changes the sitemap (one page fewer): its lastmod says so
    time.sleep(1.1)
    with transaction(engine) as s:
        deleted_at = delete_record(s, SEED_ID) and s.scalar(select(Record.datestamp).where(Record.identifier == SEED_ID))
    index = etree.fromstring(requests.get(f"{server.root}/sitemap.xml", timeout=10).content)
    assert index.findtext("{*}sitemap/{*}lastmod") == format_datestamp(deleted_at) > max(
        u.text for u in page.iter("{*}lastmod"))


def test_pages_past_the_records_are_not_found_not_server_errors(engine, live_server) -> None:
    """A review found 500s (with a traceback logged) for a sitemap page past what a database integer holds, and
    on PostgreSQL for a landing page asked with a NUL in it."""
    load(engine, [str(SEED)], repository_identifier="example.org")
    server = live_server()
    for target in ("/sitemap-1.xml", "/sitemap-184467440737095.xml", "/sitemap-99999999999999999999999.xml", "/sitemap-00.xml",
                   "/record/%00", "/record/a%00b", "/record/nothing-here"):
        reply = requests.get(f"{server.root}{target}", timeout=10)
        assert reply.status_code == 404, target
        assert reply.headers["X-Content-Type-Options"] == "nosniff"
    landing = requests.get(f"{server.root}/record/{SEED_ID}", timeout=10)
    assert landing.status_code == 200 and "style-src 'self' 'unsafe-inline'" in landing.headers["Content-Security-Policy"]


def test_a_landing_url_is_not_rewritten_into_another_records(engine, live_server) -> None:
    """A review: an identifier with `..`, `.` or empty path segments (harvested with --keep-identifiers) made a
    sitemap URL that a browser or crawler normalises into another record's page, or into none."""
    from oai.store.records import RecordIn, upsert_records

    from endpoint_helpers import dc_bytes

    identifiers = ["oai:x:b", "oai:x:a/../oai:x:b", "oai:x:a/./b", "oai:x:a//b", "/oai:x:c", "oai:x:10.1/2"]
    with transaction(engine) as s:
        upsert_records(s, [RecordIn(i, {"oai_dc": dc_bytes(f"Title of {i}", i)}) for i in identifiers])
    server = live_server()
    page = etree.fromstring(requests.get(f"{server.root}/sitemap-0.xml", timeout=10).content)
    locs = [u.text for u in page.iter("{http://www.sitemaps.org/schemas/sitemap/0.9}loc")]
    assert f"{server.root}/record/oai:x:10.1/2" in locs  # a DOI's slash kept where nothing rewrites it
    for loc in locs:  # requests (urllib3) removes dot segments, as browsers do
        reply = requests.get(loc, timeout=10)
        assert reply.status_code == 200, loc
        shown = re.search(r"OAI identifier <bdi>(.*?)</bdi> ·", reply.text)[1]
        assert shown.replace("&#34;", '"') in identifiers and loc.endswith(
            quote(shown, safe=":@!$&()*+,;=" + ("" if "%2F" in loc else "/"))), loc


def test_pages_are_named_at_the_configured_base_url(engine, live_server) -> None:
    """A review: behind a proxy the sitemap listed the internal host's http:// URLs, which crawlers reject
    (a sitemap's URLs must be on its own site), while OAI responses used OAI_BASE_URL."""
    load(engine, [str(SEED)], repository_identifier="example.org")
    server = live_server(base_url="https://repository.example.org/oai")
    index = requests.get(f"{server.root}/sitemap.xml", timeout=10).text
    assert "<loc>https://repository.example.org/sitemap-0.xml</loc>" in index
    page = requests.get(f"{server.root}/sitemap-0.xml", timeout=10).text
    assert f"<loc>https://repository.example.org/record/{SEED_ID}</loc>" in page
    landing = requests.get(f"{server.root}/record/{SEED_ID}", timeout=10).text
    assert 'href="https://repository.example.org/oai?verb=GetRecord&amp;metadataPrefix=oai_dc' in landing


def test_right_to_left_overrides_in_a_record_stay_inside_their_value(engine, live_server, tmp_path: Path) -> None:
    """A review: a U+202E (right-to-left override) in a harvested author's name or identifier reversed the text
    after it, so a page could be made to seem to say something else. Each such value is isolated (<bdi>)."""
    from oai.formats.dc import build_dc
    from oai.formats.safexml import canonical_bytes

    doc = canonical_bytes(build_dc([("title", "A title", "en"), ("creator", "Smith, J.\u202e gnp.exe", None),
                                    ("creator", "Doe, A.", None), ("subject", "fish\u202e", None)]))
    (tmp_path / "rlo.xml").write_bytes(doc)
    load(engine, [str(tmp_path / "rlo.xml")], repository_identifier="example.org")
    page = requests.get(f"{live_server().root}/record/oai:example.org:rlo", timeout=10).text
    assert "<bdi>Smith, J.\u202e gnp.exe</bdi>; <bdi>Doe, A.</bdi>" in page
    assert "<bdi>fish\u202e</bdi>" in page and "OAI identifier <bdi>oai:example.org:rlo</bdi>" in page


def test_a_sitemap_file_stays_under_50_mb_whatever_the_identifiers(engine, live_server) -> None:
    """An outside audit: 50,000 identifiers of 480 characters made a sitemap file of 123 MB (the protocol allows
    50 MB) and a worker of 593 MB. A file now lists SITEMAP_PAGE ids: at the widest URL an identifier makes (512
    characters, each 12 once percent-encoded, under a long base URL) it stays under the limit."""
    from oai.store.records import RecordIn, upsert_records
    from oai.store.validation import MAX_IDENTIFIER
    from oai.web.pages import SITEMAP_PAGE

    from endpoint_helpers import dc_bytes

    widest = "urn:x:" + "\U0001f600" * (MAX_IDENTIFIER - len("urn:x:"))  # 4 bytes in UTF-8, each %XX
    with transaction(engine) as s:
        upsert_records(s, [RecordIn(widest, {"oai_dc": dc_bytes("Widest", "x")})])
    server = live_server(base_url="https://repository.example.org/" + "p" * 200 + "/oai")
    page = requests.get(f"{server.root}/sitemap-0.xml", timeout=10).content
    [entry] = re.findall(rb"<url>.*?</url>", page)
    assert len(entry) > 6000 and SITEMAP_PAGE * len(entry) + len(page) < 50 * 1024 * 1024


def test_a_page_says_its_language_and_date_as_html_and_scholar_read_them(engine, live_server) -> None:
    """An outside audit: lang="fre", "ger", "en_US" and "English" (dc:language as repositories write it) on pages
    and in citation_language; lang="en" for a record that names no language; citation_publication_date
    2020/13/45; no canonical link, while the page answers at several URLs."""
    from oai.store.records import RecordIn, upsert_records

    from oai.formats.dc import build_dc, citation_from_fields
    from oai.formats.safexml import canonical_bytes

    cases = {"oai:x:fre": ("fre", "1889-04", "fr", "1889"), "oai:x:us": ("en_US", "2020-02-29", "en-US", "2020/02/29"),
             "oai:x:english": ("English", "2020-13-45", None, None), "oai:x:none": (None, "2019-07-04", None, "2019/07/04"),
             "oai:x:haw": ("haw", "2001", "haw", "2001")}
    records = []
    for ident, (language, day, _, _) in cases.items():
        fields = [("title", f"Title {ident}", None), ("date", day, None)] + ([("language", language, None)] if language else [])
        records.append(RecordIn(ident, {"oai_dc": canonical_bytes(build_dc(fields))},
                                citation=json.dumps(vars(citation_from_fields(fields)))))
    with transaction(engine) as s:
        upsert_records(s, records)
    server = live_server(base_url="https://repository.example.org/oai")
    for ident, (_, _, lang, published) in cases.items():
        for asked in (ident, quote(ident, safe="")):  # two URLs of one page: one canonical
            html = requests.get(f"{server.root}/record/{asked}", timeout=10).text
            page = etree.fromstring(html.encode(), etree.HTMLParser())
            assert page.get("lang") == lang, (ident, html[:200])
            assert _meta(html).get("citation_language") == ([lang] if lang else None), ident
            assert _meta(html).get("citation_publication_date") == ([published] if published else None), ident
            assert page.xpath("//link[@rel='canonical']/@href") == [f"https://repository.example.org/record/{ident}"]


def test_a_page_gives_an_article_number_and_a_single_page_as_such(engine, live_server) -> None:
    """An outside audit: eLife's article number (elocation-id e02833) was on no page and in no meta tag, and a one-
    page erratum read 'pp. 366–366'. Scholar takes an article number as the first page, as PLOS's pages give it."""
    jats_dir = SEED.parents[2] / "tests" / "data" / "jats"
    load(engine, [str(jats_dir / "elife" / "elife-02833-v2.xml"),
                  str(jats_dir / "scielo" / "0034-8910-rsp-48-2-0366_pt-correction-small.xml")],
         repository_identifier="example.org")
    with transaction(engine) as s:
        idents = s.scalars(select(Record.identifier).order_by(Record.identifier)).all()
    root = live_server().root
    pages = {ident: requests.get(f"{root}/record/{ident}", timeout=10).text for ident in idents}
    elife = next(text for ident, text in pages.items() if "02833" in ident)
    assert _meta(elife)["citation_firstpage"] == ["e02833"] and "citation_lastpage" not in _meta(elife)
    assert ", vol. 3, article e02833" in elife
    erratum = next(text for ident, text in pages.items() if "02833" not in ident)
    assert ", p. 366\n" in erratum and "pp. 366" not in erratum


def test_a_page_shows_the_title_in_every_language_the_record_gives(engine, live_server) -> None:
    """An outside audit: a Russian article's page showed its Russian title only, its English title nowhere (not for
    a reader, not for a crawler). Each other title is shown once, marked with its language, from JATS and from
    oai_dc alike."""
    article = SEED.parents[2] / "tests" / "data" / "jats" / "scielo" / "0034-8910-rsp-48-2-0322_es.xml"
    load(engine, [str(article)], repository_identifier="example.org")
    dc_record = ('<oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/" '
                 'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title xml:lang="ru">Заголовок</dc:title>'
                 '<dc:title xml:lang="en">A title</dc:title><dc:title xml:lang="ru">Заголовок</dc:title>'
                 '<dc:identifier>oai:example.org:ru-dc</dc:identifier></oai_dc:dc>')
    with transaction(engine) as s:
        ident = s.scalar(select(Record.identifier))
    root = live_server().root
    page = etree.fromstring(requests.get(f"{root}/record/{ident}", timeout=10).content, etree.HTMLParser())
    assert page.find(".//h1").get("lang") == "es"
    others = [(p.get("lang"), "".join(p.itertext())) for p in page.iterfind(".//p[@class='title']")]
    assert others == [("en", "Group A β-hemolytic streptococcal pharyngotonsillitis outbreak")]
    from oai.formats import dc

    facts = dc.citation_from_fields(dc.fields_of(etree.fromstring(dc_record.encode())))
    assert facts.other_titles == (("A title", "en"),)
    # each text once, whatever languages it is given in (an outside review saw "Title" twice)
    again = dc.citation_from_fields([("title", "Заглавие", "ru"), ("title", "Title", "en"), ("title", "Title", None)])
    assert again.other_titles == (("Title", "en"),)


def test_a_page_shows_every_abstract_by_paragraph_and_each_keywords_language(engine, live_server) -> None:
    """An outside audit: a structured abstract ran together as one paragraph ("OBJECTIVE To evaluate ... METHODS"),
    the Portuguese abstract oai_dc carries was not on the page, and English keywords on a page in another language
    were not marked English."""
    article = SEED.parents[2] / "tests" / "data" / "jats" / "scielo" / "0034-8910-rsp-48-2-0206_en-pt-trans.xml"
    load(engine, [str(article)], repository_identifier="example.org")
    root = live_server().root
    page = etree.fromstring(requests.get(f"{root}/record/oai:example.org:10.1590/s0034-8910.2014048004911",
                                         timeout=10).content, etree.HTMLParser())
    english, portuguese = page.xpath("//h2[.='Abstract']/following-sibling::div")
    assert (english.get("lang"), portuguese.get("lang")) == ("en", "pt")
    assert [p.text for p in english.findall("p")][:2] == ["OBJECTIVE", english.findall("p")[1].text]
    assert english.findall("p")[1].text.startswith("To evaluate the level of HIV/AIDS knowledge")
    assert portuguese.find("p").text == "OBJETIVO" and len(portuguese.findall("p")) == len(english.findall("p"))
    keywords = {k.text: k.get("lang") for k in page.xpath("//p[strong='Keywords:']/bdi")}
    assert keywords and set(keywords.values()) == {"en", "pt"}, keywords
    # the same facts from oai_dc alone
    from oai.formats import dc

    facts = dc.citation_from_fields([("description", "Resumo.", "pt"), ("description", "Abstract.", "en"),
                                     ("subject", "saúde", "pt"), ("subject", "health", "en")])
    assert facts.abstract == "Resumo." and facts.other_abstracts == (("Abstract.", "en"),)
    assert facts.keywords == ("saúde", "health") and facts.keyword_languages == ("pt", "en")


def test_a_record_without_a_title_is_not_offered_for_indexing(engine, live_server, tmp_path: Path) -> None:
    """An outside crawler audit: an oai_dc record holding only a subject made an indexable page titled with its
    identifier, with no citation_title; Scholar and search engines would list it as an article named so."""
    (tmp_path / "notitle.xml").write_bytes(
        b'<oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/" '
        b'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:subject>nothing</dc:subject></oai_dc:dc>')
    load(engine, [str(tmp_path / "notitle.xml"), str(SEED)], repository_identifier="example.org")
    root = live_server().root
    untitled = requests.get(f"{root}/record/oai:example.org:notitle", timeout=10)
    assert untitled.status_code == 200 and '<meta name="robots" content="noindex, follow">' in untitled.text
    assert "noindex" not in requests.get(f"{root}/record/{SEED_ID}", timeout=10).text


def test_a_doi_given_as_a_uri_is_read_percent_decoded(engine, live_server, tmp_path: Path) -> None:
    """An outside audit: an oai_dc identifier https://doi.org/10.1234/ab%23cd (the DOI 10.1234/ab#cd, written as a
    URI must write it) gave citation_doi "10.1234/ab%23cd" and a link to doi.org/10.1234/ab%2523cd, a DOI that does
    not exist; so did every such DOI of our own oai_dc, harvested by another of our servers."""
    from oai.formats.dc import build_dc, citation_from_fields
    from oai.formats.jats_crosswalk import doi_url
    from oai.formats.safexml import canonical_bytes

    sici = "10.9999/(SICI)1234-5678(1997)35:4<497::AID-X1>3.0.CO;2-F"
    assert citation_from_fields([("identifier", doi_url(sici), None)]).doi == sici  # our own oai_dc, read again
    assert citation_from_fields([("identifier", "10.1234/50%25", None)]).doi == "10.1234/50%25"  # no URI: as it is
    (tmp_path / "hash.xml").write_bytes(canonical_bytes(build_dc([("title", "Hash", "en"),
                                                                  ("identifier", "https://doi.org/10.1234/ab%23cd", None)])))
    load(engine, [str(tmp_path / "hash.xml")], repository_identifier="example.org",
         identifier_template="oai:{repository_identifier}:{stem}")
    html = requests.get(f"{live_server().root}/record/oai:example.org:hash", timeout=10).text
    assert _meta(html)["citation_doi"] == ["10.1234/ab#cd"]
    assert '<a href="https://doi.org/10.1234/ab%23cd">' in html


def test_right_to_left_text_takes_its_own_direction_and_the_facts_line_starts_with_a_fact(engine, live_server,
                                                                                            tmp_path: Path) -> None:
    """An outside audit: an Arabic title and abstract were laid out left to right (no dir anywhere), and a record with
    a date but no journal showed ", 2020-01-01"."""
    from oai.formats.dc import build_dc
    from oai.formats.safexml import canonical_bytes
    from oai.web.view import render_view

    (tmp_path / "ar.xml").write_bytes(canonical_bytes(build_dc([
        ("title", "دراسة الحالة", "ar"), ("description", "ملخص البحث.", "ar"), ("date", "2020-01-01", None),
        ("language", "ar", None)])))
    load(engine, [str(tmp_path / "ar.xml")], repository_identifier="example.org")
    server = live_server()
    page = etree.fromstring(requests.get(f"{server.root}/record/oai:example.org:ar", timeout=10).content,
                            etree.HTMLParser())
    assert page.xpath("//h1/@dir") == ["auto"] and page.xpath("//h2/following-sibling::div[1]/@dir") == ["auto"]
    assert [p.xpath("string()").strip() for p in page.xpath("//p[@class='meta']")][0] == "2020-01-01"
    body = requests.get(f"{server.url}?verb=GetRecord&metadataPrefix=oai_dc&identifier=oai:example.org:ar",
                        timeout=10).content
    view = etree.fromstring(render_view(body, "/oai/static/oai2.xsl", "http://127.0.0.1/oai/view"), etree.HTMLParser())
    assert view.xpath("//h2[@class='record-title']/@dir") == ["auto"]
    assert view.xpath("//td[@lang='ar']/@dir") == ["auto", "auto"]
