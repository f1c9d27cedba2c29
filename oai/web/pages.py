"""Pages for people and indexing crawlers: landing pages with citation meta tags, and a sitemap.

Reads the citation facts computed at ingest; never parses metadata per request.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date
from urllib.parse import quote

from flask import Blueprint, Response, abort, current_app, render_template, request, url_for
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session
from werkzeug.routing import PathConverter

from oai.formats.jats_crosswalk import doi_url, normal_lang
from oai.protocol.dates import format_datestamp
from oai.store.models import Record

# Record ids per sitemap file. The protocol allows 50,000 URLs and 50 MB a file; a URL of ours is at most about
# 6.3 KB (an identifier of 512 characters, each up to 12 once percent-encoded, after the site root), so 5,000
# keep a file under 32 MB, and a worker's memory for one with it (an outside audit made 50,000 weigh 123 MB).
SITEMAP_PAGE = 5_000
SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"

pages = Blueprint("pages", __name__, template_folder="templates")
pages.add_app_template_filter(doi_url, "doi_url")


def _session() -> Session:
    return current_app.extensions["oai_sessions"]()


def _site_root() -> str:
    """Where the site is seen from outside: the configured baseURL's, else the host asked (see create_app)."""
    return current_app.extensions["oai_site_root"]()


def landing_url(identifier: str) -> str:
    """The identifier's '/'s are kept (a DOI's), unless a browser or crawler would rewrite the path they make:
    `a/../b` is another record's URL to it, `a//b` or `/a` another path (a review found a harvested identifier
    could point its sitemap entry at someone else's page). Then they are escaped as well."""
    normalised = any(part in ("", ".", "..") for part in identifier.split("/")) and "/" in identifier
    return f"{_site_root()}/record/{quote(identifier, safe=_PATH_SAFE if normalised else _PATH_SAFE + '/')}"


_PATH_SAFE = ":@!$&()*+,;="


class IdentifierConverter(PathConverter):
    """A path that may begin with '/' or hold '//' (an identifier's, escaped in its URL as %2F)."""

    regex = ".+?"
    part_isolating = False


@pages.get("/record/<identifier:identifier>")
def landing(identifier: str) -> Response:
    """The record's page; a deleted record's says so, with 410 Gone, which crawlers take as removed for good."""
    if "\x00" in identifier:  # no identifier holds one (PostgreSQL's text cannot), and asking would be a 500
        abort(404)
    with _session() as session:
        rec = session.scalar(select(Record).where(Record.identifier == identifier))
        if rec is None:
            abort(404)
        citation = json.loads(rec.citation) if rec.citation else {}
        endpoint = current_app.config["OAI"].endpoint_path
        oai_url = f"{_site_root()}{endpoint}?verb=GetRecord&metadataPrefix=oai_dc&identifier={quote(identifier, safe='')}"
        html = render_template("landing.html", record=rec, c=citation, oai_url=oai_url,
                               datestamp=format_datestamp(rec.datestamp), canonical=landing_url(identifier),
                               language=html_language(citation.get("language")),
                               published=scholar_date(citation.get("publication_date")))
    return _conditional(Response(html, status=410 if rec.deleted else 200, content_type="text/html; charset=utf-8"))


def html_language(value: str | None) -> str | None:
    """A record's language as the BCP 47 tag HTML's lang and citation_language want, or None where it is not
    one: en_US as en-US, fre as fr, "English" none (an outside audit found lang="fre", "en_US", "English")."""
    tag = normal_lang(value)
    return None if tag is None or tag.startswith("x-") else tag


_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")


def scholar_date(value: str | None) -> str | None:
    """A publication date as Google Scholar takes it: 2010/05/12 where the whole date is known (and is one),
    else the year alone (an outside audit found 2020/13/45)."""
    m = _DATE.match(value or "")
    if m is None:
        return None
    if m[3]:
        try:
            return date(int(m[1]), int(m[2]), int(m[3])).strftime("%Y/%m/%d")
        except ValueError:
            pass
    return m[1]


# Sitemaps change as records come and go, and crawlers read them seldom; each costs a scan of its ids (the index,
# of every id), so a proxy or crawler may keep one an hour (an outside audit: six clients held two cores).
SITEMAP_CACHE = "public, max-age=3600"


def _xml(body: str) -> Response:
    return _conditional(Response('<?xml version="1.0" encoding="UTF-8"?>\n' + body,
                                 content_type="application/xml; charset=utf-8", headers={"Cache-Control": SITEMAP_CACHE}))


def _conditional(response: Response) -> Response:
    """`response` with an ETag of its bytes, or 304 Not Modified to a crawler that holds them (If-None-Match): crawlers
    revalidate rather than fetch again (an outside audit). Of the bytes, not the record's datestamp: a page also
    changes when the code that renders it does."""
    response.set_etag(hashlib.sha256(response.get_data()).hexdigest()[:32])
    return response.make_conditional(request) if response.status_code == 200 else response  # (304 stands for a 200)


def _esc(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@pages.get("/robots.txt")
def robots() -> Response:
    """Where the sitemap is: crawlers (Google Scholar's) find the landing pages through it, and nothing linked to it
    (an outside audit)."""
    return Response(f"User-agent: *\nDisallow:\n\nSitemap: {_site_root()}/sitemap.xml\n", mimetype="text/plain")


@pages.get("/sitemap.xml")
def sitemap_index() -> Response:
    """A sitemap index with one sitemap per SITEMAP_PAGE record ids (stable URLs, keyed by id range), for the ranges
    that hold a record to show: a sitemap must hold a url (the schema), and an outside audit found an empty one listed.
    Each says when a record of its range last changed, a deletion included (the sitemap then lists one page fewer),
    so that a crawler fetches only those that did. None at all (an empty store): nothing to index, 404."""
    with _session() as session:
        page_of = (Record.id - 1) // SITEMAP_PAGE
        live = func.max(case((Record.deleted.is_(False), 1), else_=0))
        held = session.execute(select(page_of, func.max(Record.datestamp)).group_by(page_of).having(live == 1)
                               .order_by(page_of)).all()
    if not held:
        abort(404)
    parts = [
        f"<sitemap><loc>{_esc(_site_root() + url_for('pages.sitemap_page', page=p))}</loc>"
        f"<lastmod>{format_datestamp(newest)}</lastmod></sitemap>"
        for p, newest in held
    ]
    return _xml(f'<sitemapindex xmlns="{SITEMAP_NS}">' + "".join(parts) + "</sitemapindex>\n")


# At the site's root, beside the landing pages: a sitemap may list only URLs below its own directory (sitemaps.org,
# "Sitemap file location"), and an outside audit found /sitemap/0.xml listing /record/... pages.
@pages.get("/sitemap-<int:page>.xml")
def sitemap_page(page: int) -> Response:
    if not request.path.endswith(f"/sitemap-{page}.xml"):  # /sitemap-00.xml: not a second URL of one sitemap
        abort(404)
    lo, hi = page * SITEMAP_PAGE, (page + 1) * SITEMAP_PAGE
    with _session() as session:
        # a page past the ids is not there (nor one past what a database integer holds: a 500 it was)
        if page > 0 and lo >= (session.scalar(select(func.max(Record.id))) or 0):
            abort(404)
        rows = session.execute(
            select(Record.identifier, Record.datestamp)
            .where(Record.id > lo, Record.id <= hi, Record.deleted.is_(False))
            .order_by(Record.id)
        ).all()
    if not rows:  # nothing to show in this range: not listed in the index either
        abort(404)
    urls = "".join(
        f"<url><loc>{_esc(landing_url(r.identifier))}</loc><lastmod>{format_datestamp(r.datestamp)}</lastmod></url>"
        for r in rows
    )
    return _xml(f'<urlset xmlns="{SITEMAP_NS}">{urls}</urlset>\n')
