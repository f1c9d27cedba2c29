"""The OAI-PMH endpoint (GET and POST) and its browser view: HTTP turned into an argument mapping, the protocol
layer called, the bytes sent; pages a harvester walks are rendered ahead (oai.web.lookahead)."""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from html import escape as html_escape
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from flask import Flask, Response, abort, current_app, g, request, send_from_directory
from lxml import etree
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.exceptions import RequestEntityTooLarge

from oai.config import Config
from oai.protocol import dates, render
from oai.protocol.arguments import OAIRequest, parse_request
from oai.protocol.dates import format_datestamp
from oai.protocol.errors import BadArgument, OAIError
from oai.protocol.tokens import TokenCodec
from oai.protocol.verbs import VERBS, Context, FormatInfo, ListResult, RecordResult, Repository
from oai.store import fence, queries
from oai.store.engine import session_factory, single_statement_reader, sqlite_file
from oai.store.models import ForeignFormat
from oai.store.validation import METADATA_PREFIX, absolute_uri
from oai.web import compression
from oai.web.flow import FlowControl
from oai.web.lookahead import LatestWrite, LookAhead, Rendered, default_directory
from oai.web.view import STATIC_DIR, render_view

log = logging.getLogger("oai.web")

_PAGED = (["ListRecords"], ["ListIdentifiers"], ["ListSets"])
# Answers that hold datestamps or begin a list, whose responseDate a harvester may ask `from` next time: they are
# read only once every write stamped before their responseDate has committed (oai.store.fence). A resumed page
# needs no wait: its list ends at the `until` its first page froze, and that page waited.
_DATED = (["Identify"], ["GetRecord"], ["ListRecords"], ["ListIdentifiers"])
_READ_AHEAD = ("ListRecords", "ListIdentifiers")  # the lists harvesters walk (sets are few)
CACHED_HOSTS = 64  # base URLs (and site roots) whose Repository and formats are kept: from the Host when not set
FOREIGN_FORMATS_TTL = 30.0  # seconds between reads of the harvested formats we serve as they came


class Endpoint:
    """The endpoint of one app: its settings, the store's sessions, the token codec, flow control, and the
    pages read ahead. Built once per app; each request is answered by `endpoint` (or `browser_view`)."""

    def __init__(self, cfg: Config, engine: Engine, sessions: sessionmaker[Session], codec: TokenCodec) -> None:
        self.cfg, self.sessions, self.codec = cfg, sessions, codec
        self.path = cfg.endpoint_path
        # A resumed list page reads with one statement (two for a set: its id, then the page; sets are
        # never removed), so it needs no transaction around them. A first page counts and lists in
        # one snapshot. (The rare resumed page whose window must be extended counts what is left and
        # lists it in two statements; a write between them can only make completeListSize stale by
        # what changed meanwhile, as it may be for any later page.)
        self.resumed_sessions = session_factory(single_statement_reader(engine))
        self.flow = FlowControl(cfg.rate_limit_per_minute)
        self.store = store_identity(engine)  # in the pages' keys: a token names no database
        self.lookahead: LookAhead | None = None
        if cfg.lookahead:
            directory = Path(cfg.lookahead_dir) if cfg.lookahead_dir else default_directory(self.store, self.path)
            self.lookahead = LookAhead(directory)
        self.latest_write = LatestWrite(self._latest_datestamp)
        # Built once per base URL (and formats per host and set of foreign formats), not per request.
        # Both come from the request's Host when not configured, so the caches are kept small.
        self._repositories: dict[str, Repository] = {}
        self._known_formats: dict[tuple[str, tuple[FormatInfo, ...]], dict[str, FormatInfo]] = {}
        self._foreign: tuple[float, tuple[FormatInfo, ...]] = (-1e9, ())

    def register(self, app: Flask) -> None:
        """The endpoint, its browser view and the stylesheet's files, under the endpoint's path."""
        base = self.path.rstrip("/")
        app.add_url_rule(self.path, "endpoint", self.endpoint, methods=["GET", "POST"])
        app.add_url_rule(f"{base}/view", "browser_view", self.browser_view)
        app.add_url_rule(f"{base}/static/<path:name>", "static_file", _static_file)

    # -- where the endpoint is seen from outside --

    def base_url(self) -> str:
        """The baseURL (the endpoint's URL also when the browser view, at its /view, asks it)."""
        return self.cfg.base_url or f"{request.host_url.rstrip('/')}{request.script_root}{self.path}"

    def stylesheet_url(self) -> str:
        """The browser view's stylesheet, at the public base URL's path: behind a proxy that adds a prefix
        (/prefix/oai) a browser asks there."""
        return f"{urlsplit(self.base_url()).path.rstrip('/')}/static/oai2.xsl"

    def site_root(self) -> str:
        """Where this app's /schemas/ are seen from outside: the configured baseURL without the
        endpoint path (behind a proxy, the request's own host may be an internal one), else the host asked."""
        if self.cfg.base_url:
            configured = self.cfg.base_url.rstrip("/")
            if self.path != "/" and configured.endswith(self.path):
                return configured[: -len(self.path)]
            parts = urlsplit(configured)
            return f"{parts.scheme}://{parts.netloc}"
        return request.host_url.rstrip("/")

    def repository(self) -> Repository:
        url = self.base_url()
        repo = self._repositories.get(url)
        if repo is None:
            cfg = self.cfg
            repo = Repository(cfg.repository_name, url, cfg.admin_email, cfg.repository_identifier,
                              cfg.page_sizes(), cfg.compression, cfg.page_max_bytes)
            if len(self._repositories) >= CACHED_HOSTS:
                self._repositories.clear()
            self._repositories[url] = repo
        return repo

    def formats(self, session: Session) -> dict[str, FormatInfo]:
        """Registry formats plus harvested foreign ones (re-read from the database every FOREIGN_FORMATS_TTL)."""
        from oai.formats.registry import FORMATS

        read_at, foreign = self._foreign
        if time.monotonic() - read_at > FOREIGN_FORMATS_TTL:
            # (what a harvest registered before it was checked, as OAI-PMH.xsd has them: one made every
            # ListMetadataFormats invalid, an outside audit)
            foreign = tuple(FormatInfo(r.prefix, r.namespace, r.schema) for r in session.scalars(select(ForeignFormat))
                            if METADATA_PREFIX.fullmatch(r.prefix) and absolute_uri(r.namespace)
                            and absolute_uri(r.schema))
            self._foreign = (time.monotonic(), foreign)
        root = self.site_root()
        key = (root, foreign)
        found = self._known_formats.get(key)
        if found is None:
            found = {
                p: FormatInfo(p, f.namespace, f.schema_url or f"{root}/schemas/{f.schema_relpath}",
                              None if f.schema_url else f"<{f.root_tag.rpartition('}')[2]}".encode())
                for p, f in FORMATS.items()
            }
            for info in foreign:
                found.setdefault(info.prefix, info)
            if len(self._known_formats) >= CACHED_HOSTS:
                self._known_formats.clear()
            self._known_formats[key] = found
        return found

    # -- requests --

    def endpoint(self) -> Response:
        wait = self.flow.wait(request.remote_addr or "-")  # behind proxies (proxy_hops), the client they name
        if wait:
            return Response("Too many requests; retry later.\n", status=503,
                            headers={"Retry-After": str(wait)}, mimetype="text/plain")
        if self.lookahead is None:
            return self.answer()
        with self.lookahead.serving():
            return self.answer()

    def answer(self) -> Response:
        params, problem = _arguments()
        resumed = not problem and params.get("verb") in _PAGED and "resumptionToken" in params
        now = dates.now()  # the responseDate: taken before the fence is passed, and the store read
        session = g.oai_session = (self.resumed_sessions if resumed else self.sessions)()
        if not problem and not resumed and params.get("verb") in _DATED:
            fence.wait(session)  # (the session is closed at teardown, should it fail)
        ctx = Context(session, self.repository(), self.formats(session), self.codec, now)
        stylesheet = self.stylesheet_url() if self.cfg.stylesheet else None
        try:
            if problem:
                raise BadArgument(problem)
            req = parse_request(params)
            if resumed:
                token = req.args["resumptionToken"]
                page = self.rendered_ahead(req.verb, token, ctx)
                if page is not None:
                    try:
                        self.codec.decode(token, verb=req.verb, now=ctx.now)  # it may have expired since
                    except OAIError:
                        self.lookahead.tidy()
                        raise
                    page = replace(page, body=render.with_response_date(page.body, ctx.now))
                    response = self.send(page, req.verb, ctx, stylesheet)
                    response.call_on_close(self.lookahead.tidy)  # the page's file, once it is sent
                    return response
            result = VERBS[req.verb](req, ctx)
        except OAIError as err:
            flat = {k: v[0] for k, v in params.items() if k != "verb" and len(v) == 1}
            if "verb" in params and len(params["verb"]) == 1:
                flat = {"verb": params["verb"][0], **flat}
            body = render.error_response(ctx, err.all(), flat, stylesheet)
            return _xml_response(body, etag=None)
        finally:
            session.close()
        return self.send(_rendered(ctx, req, result, stylesheet), req.verb, ctx, stylesheet)

    def browser_view(self) -> Response:
        """The browser view rendered here (oai.web.view): the endpoint's answer to the same arguments, through
        the same stylesheet."""
        g.oai_view = True  # the answer uncompressed (_content_coding)
        response = self.endpoint()
        if response.status_code != 200 or response.mimetype != "text/xml":
            return response  # 304, 503, a broken request's 400: as the endpoint answers them
        view_url = f"{self.base_url().rstrip('/')}/view"  # under the public base URL, as the stylesheet is
        try:
            html = render_view(response.get_data(), self.stylesheet_url(), view_url)
        except etree.XSLTError as exc:  # libxslt's limits (a DOI of 3,000 '/'s: its recursion depth; a review)
            log.warning("browser view not rendered: %s", exc)
            plain = html_escape(f"{self.base_url()}?{request.query_string.decode('latin-1')}", quote=True)
            html = (f'<!doctype html><html><head><meta charset="utf-8"><title>OAI-PMH</title></head><body><p>This '
                    f'answer is too large or deep to show as a page here: <a href="{plain}">its XML</a>.</p></body>'
                    "</html>").encode()
        return Response(html, status=200, headers={"Vary": "Accept-Encoding"}, content_type="text/html; charset=utf-8")

    # -- read-ahead --

    def send(self, page: Rendered, verb: str, ctx: Context, stylesheet: str | None) -> Response:
        """The page's response; once it is sent, the page its token asks for is rendered ahead (if this
        process is idle)."""
        coding = _content_coding()
        response = _xml_response(page.body, etag=page.etag, cache=page.cacheable, tail=page.tail, coding=coding)
        token = page.next_token
        if self.lookahead is not None and token and verb in _READ_AHEAD and request.method != "HEAD":
            compressed = coding in compression.ENCODINGS
            start = self.lookahead.schedule(self._ahead_key(verb, token, ctx),
                                            functools.partial(self.render_ahead, verb, token, ctx.repository,
                                                              dict(ctx.formats), stylesheet, compressed))
            if start is not None:
                response.call_on_close(start)
        return response

    def rendered_ahead(self, verb: str, token: str, ctx: Context) -> Rendered | None:
        """The page read ahead for this request, if any and still what it would get now. Not for HEAD, which
        would use up the page the harvester's GET is to get (an outside audit)."""
        if self.lookahead is None or verb not in _READ_AHEAD or request.method == "HEAD":
            return None
        return self.lookahead.take(self._ahead_key(verb, token, ctx), lambda page: self.latest_write.before(page.began))

    def render_ahead(self, verb: str, token: str, repo: Repository, fmts: dict[str, FormatInfo],
                     stylesheet: str | None, compressed: bool) -> Rendered | None:
        """The page `token` asks for, as endpoint() would answer it now (None: an OAI-PMH error);
        `compressed`: with its tail compressed ahead (the client asked for compression this time)."""
        session = self.resumed_sessions()
        try:
            ctx = Context(session, repo, fmts, self.codec)  # the page's `began`: before the fence is passed
            # A write stamped before then but not yet committed would be missing from the page, yet older than
            # it, so the page would pass for fresh (an outside audit: a deleted record served as live). Here,
            # unlike a request, nobody waits.
            fence.wait(session)
            req = parse_request({"verb": [verb], "resumptionToken": [token]})
            result = VERBS[verb](req, ctx)
        except OAIError:
            return None
        finally:
            session.close()
        page = _rendered(ctx, req, result, stylesheet)
        if not compressed:
            return page
        return replace(page, tail=compression.tail_of(page.body, render.response_date_end(page.body)))

    def _ahead_key(self, verb: str, token: str, ctx: Context) -> tuple[str, ...]:
        """What shapes a page rendered ahead, besides its token: the base URL and site root it names, the store."""
        return (verb, token, ctx.repository.base_url, self.site_root(), self.store)

    def _latest_datestamp(self) -> datetime | None:
        with self.resumed_sessions() as session:
            return queries.latest_datestamp(session)


def store_identity(engine: Engine) -> str:
    """The database, named the same way by every process that uses it: a relative SQLite path names a
    different file in each working directory."""
    path = sqlite_file(engine)
    return "sqlite:" + path if path is not None else engine.url.render_as_string(hide_password=True)


def _static_file(name: str) -> Response:
    return send_from_directory(STATIC_DIR, name, max_age=3600)


def _rendered(ctx: Context, req: OAIRequest, result: object, stylesheet: str | None) -> Rendered:
    """A verb's result as the bytes and headers the endpoint sends (now, or later if rendered ahead)."""
    out = render.render(ctx, req.verb, dict(req.args), result, stylesheet)
    return Rendered(out.body, _etag(req.verb, dict(req.args), result, out.headers), _cacheable(req.args, ctx),
                    _next_token(result), ctx.now)


def _next_token(result: object) -> str | None:
    """The resumptionToken a list page hands out, if the list goes on."""
    token = result.token if isinstance(result, ListResult) else None
    return token.value if token is not None and token.value else None


def _arguments() -> tuple[dict[str, list[str]], str | None]:
    """The request's arguments (query string for GET, form body for POST), or why they are unusable.

    Read from the raw bytes, strictly: an argument that is not UTF-8 once percent-decoded (a raw byte
    0xFF, or %FF) is badArgument, not a Latin-1 guess or the escape taken literally, for GET and POST alike.
    """
    if request.method == "POST":
        ctype = (request.mimetype or "").lower()
        if ctype != "application/x-www-form-urlencoded":
            return {}, "POST requests must be application/x-www-form-urlencoded"
        if request.query_string:
            return {}, "a POST request carries its arguments in the body, not the URL"
        limit = current_app.config["OAI"].max_request_bytes
        try:  # a chunked body has no Content-Length to refuse up front: get_data stops one byte past the limit
            raw = request.get_data(cache=False)
        except RequestEntityTooLarge:
            raw = None
        except _MALFORMED_BODY:  # gunicorn's parser, on a chunked body not framed as HTTP/1.1 says: was a 500
            abort(400, "the request body is not framed as HTTP/1.1 says (its chunks)")
        if raw is None or len(raw) > limit:
            _drop_the_rest_of_the_body()
            return {}, f"the request body is larger than {limit} bytes"
    else:
        raw = _query_bytes()
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        return {}, "the arguments are not UTF-8 (percent-encoded or not)"
    args: dict[str, list[str]] = {}
    for key, value in pairs:
        args.setdefault(key, []).append(value)
    return args, None


try:
    from gunicorn.http.errors import ParseException as _MALFORMED_BODY
except ImportError:  # (gunicorn is how we deploy, not what the development server needs)
    _MALFORMED_BODY = ()

DRAIN_BYTES = 2 * 1024 * 1024  # above nginx's client_max_body_size in deploy/nginx.conf (1 MB)


def _drop_the_rest_of_the_body() -> None:
    """Read what is left of a body too large to take, and drop it, so that the connection stays in step with the
    client: left unread, gunicorn answered keep-alive and then closed the connection, and nginx, which keeps
    connections to the nodes for other clients' requests, sent one of those on it (502 for an innocent client,
    the node marked down: an outside audit took the whole site down that way). A body past DRAIN_BYTES (a
    client with no proxy between) is left: its connection is the only one it can spoil."""
    stream = request.environ.get("wsgi.input")
    length = request.content_length
    if stream is None or (length is None and not request.environ.get("wsgi.input_terminated")):
        return
    remaining = length if length is not None else DRAIN_BYTES  # with a length, nothing was read yet
    if remaining > DRAIN_BYTES:
        return
    while remaining > 0:
        chunk = stream.read(min(64 * 1024, remaining))
        if not chunk:
            return
        remaining -= len(chunk)


def _query_bytes() -> bytes:
    """The query string's bytes as the client sent them. Werkzeug's development server (`oai serve`, `oai demo`)
    reads the request line as Latin-1 and hands the query on re-encoded as UTF-8, so a raw UTF-8 'é' arrived as
    'Ã©' (an outside audit asked for an item that way and was told it does not exist) and a raw byte 0xE9 as 'é':
    that step is undone here, for that server only (gunicorn refuses raw non-ASCII bytes itself)."""
    raw = request.query_string
    if raw.isascii() or not request.environ.get("SERVER_SOFTWARE", "").startswith("Werkzeug/"):
        return raw
    try:
        return raw.decode("utf-8").encode("latin-1")
    except (UnicodeDecodeError, UnicodeEncodeError):  # not what that server does: taken as it is
        return raw


def _etag(verb: str, args: dict[str, str], result: object, headers: bytes) -> str:
    """A weak validator of a page: its request, every header it serves (so every item and its
    datestamp), the digest of every record whose metadata it serves, and what its token means; empty
    for responses that serve no item. The digests, because datestamps are in seconds: two versions of a
    record written in the same second had one validator, and a revalidating cache kept the first (an
    outside audit)."""
    if not headers or not isinstance(result, ListResult | RecordResult):
        return ""
    h = hashlib.sha256(verb.encode() + repr(sorted(args.items())).encode())
    h.update(headers)
    if isinstance(result, RecordResult):
        h.update((result.item.digest or "").encode())
    elif result.with_metadata:
        h.update("".join(row.digest for row in result.items).encode())
    if isinstance(result, ListResult) and result.token:
        # Not the token's text, which changes every second (it says when it was issued): what it
        # means, i.e. the place in the list and, to the hour, its expiry. So the validator holds
        # across requests, and a page revalidated from a cache still has a long-lived token.
        tok = result.token
        expires = tok.expiration.strftime("%Y%m%d%H") if tok.expiration else ""
        h.update(f"|{tok.cursor}|{tok.complete_list_size}|{bool(tok.value)}|{expires}".encode())
    return 'W/"' + h.hexdigest()[:32] + '"'


def _cacheable(args: Mapping[str, str], ctx: Context) -> bool:
    """A list whose window lies in the past (every resumed page: `until` was frozen) may be cached."""
    if "resumptionToken" in args:
        return True
    until = args.get("until")
    return until is not None and until < format_datestamp(ctx.now - timedelta(hours=1))[: len(until)]


def _content_coding() -> str:
    """The coding this request's response is sent in: gzip, deflate (if enabled and asked for) or identity
    (always for the browser view, which renders the answer)."""
    cfg: Config = current_app.config["OAI"]
    if g.get("oai_view"):
        return "identity"
    return request.accept_encodings.best_match([*cfg.compression, "identity"], default="identity")


def _xml_response(body: bytes, *, etag: str | None, cache: bool = False,
                  tail: compression.Tail | None = None, coding: str | None = None) -> Response:
    """The body in one piece (so with a Content-Length: one write, no chunked encoding); `tail`: its end,
    compressed ahead; `coding`: _content_coding(), when the caller has it already."""
    headers = {"Vary": "Accept-Encoding"}
    if etag:
        headers["ETag"] = etag
        headers["Cache-Control"] = "public, max-age=300" if cache else "no-cache"
        if etag in request.if_none_match or request.if_none_match.contains_weak(etag.removeprefix("W/").strip('"')):
            # RFC 9110 13.1.2: 304 answers a GET or HEAD; another method whose precondition fails gets 412
            return Response(status=304 if request.method in ("GET", "HEAD") else 412, headers=headers)
    encoding = coding or _content_coding()
    if encoding in compression.ENCODINGS:
        headers["Content-Encoding"] = encoding
        body = compression.encode(body, encoding, tail)
        if request.method == "HEAD":
            # A GET may be sent a page rendered (and compressed) ahead, of another length than this one: a HEAD
            # may leave the length out, and must not give a wrong one (RFC 9110, 8.6). An outside audit saw both.
            response = Response(body, status=200, headers=headers, content_type="text/xml; charset=utf-8")
            response.automatically_set_content_length = False
            del response.headers["Content-Length"]
            return response
    return Response(body, status=200, headers=headers, content_type="text/xml; charset=utf-8")
