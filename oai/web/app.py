"""The Flask app factory: the /oai endpoint (GET and POST), its stylesheet, schemas and health.

Thin: it turns HTTP into an argument mapping, calls the protocol layer, and sends the bytes.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from html import escape as html_escape
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from flask import Flask, Response, abort, current_app, g, jsonify, request, send_from_directory
from lxml import etree
from sqlalchemy import exc as db_errors
from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix

from oai.config import Config, load_config, unknown_settings
from oai.formats.base import SCHEMAS_DIR
from oai.protocol import dates, render
from oai.protocol.arguments import OAIRequest, parse_request
from oai.protocol.dates import format_datestamp
from oai.protocol.errors import BadArgument, OAIError
from oai.protocol.tokens import TokenCodec
from oai.protocol.verbs import VERBS, Context, FormatInfo, ListResult, RecordResult, Repository
from oai.store import fence, queries
from oai.store.engine import (check_schema, database_unavailable, error_reason, make_engine, session_factory,
                              single_statement_reader, sqlite_file)
from oai.store.models import ForeignFormat
from oai.store.settings import record_secret_fingerprint, shared_secret
from oai.store.validation import in_oai_scheme
from oai.web import compression
from oai.web.flow import FlowControl
from oai.web.lookahead import LatestWrite, LookAhead, Rendered, default_directory
from oai.web.pages import IdentifierConverter, pages

log = logging.getLogger("oai.web")
STATIC_DIR = Path(__file__).resolve().parent / "static"
DATABASE_RETRY_AFTER = 30  # seconds: a database restart or failover, not a long outage


def _warn_of_other_namespaces(sessions: Callable[[], Session], repository_identifier: str) -> None:
    """Say so at boot when our newest records are named in the oai scheme under another repository identifier
    than the one Identify announces: the identifier is written into each record when it is loaded (or harvested),
    and an outside audit set OAI_REPOSITORY_IDENTIFIER after loading, which nothing told."""
    if not repository_identifier:
        return
    ours = f"oai:{repository_identifier}:"
    with sessions() as session:
        newest = queries.newest_own_identifiers(session)
    others = [i for i in newest if in_oai_scheme(i) and not i.startswith(ours)]
    if others:
        log.warning("%d of the %d newest records named here are not under %s, the namespace Identify announces "
                    "(such as %s): loaded or harvested with another OAI_REPOSITORY_IDENTIFIER? Set that one again, "
                    "or load them again under this one (harvesters then see them as new records)",
                    len(others), len(newest), ours, others[0])


def _web_schemes_only(wsgi_app: Callable) -> Callable:
    """Below ProxyFix: the scheme a proxy names is taken when it is http or https, else http. ProxyFix takes any
    value, and a proxy passing on the client's own X-Forwarded-Proto made 'javascript:...' the scheme of every
    landing-page and sitemap link (an outside audit)."""
    def app(environ: dict, start_response: Callable) -> object:
        scheme = str(environ.get("wsgi.url_scheme", "http")).lower()
        environ["wsgi.url_scheme"] = scheme if scheme in ("http", "https") else "http"
        return wsgi_app(environ, start_response)
    return app


def create_app(overrides: Mapping[str, object] | None = None) -> Flask:
    """Build the app; raises ConfigError or SchemaError at boot rather than on the first request."""
    cfg = load_config(overrides)
    _log_with_times()
    for name in unknown_settings():
        log.warning("%s is not a setting of ours, and is ignored (misspelt?)", name)
    engine = make_engine(cfg.database_url, writer=False)
    try:  # a boot that fails leaves no connection open behind it (the caller may go on: a test, a retry)
        check_schema(engine)
        secret = (cfg.secret_key or shared_secret(engine)).encode()
        if record_secret_fingerprint(engine, secret) is not None:
            log.warning("another node sharing this database signs resumption tokens with another secret "
                        "(OAI_SECRET_KEY differs, or is set on one and not the other): each refuses the other's "
                        "tokens, and a harvester sent from one node to the other fails with badResumptionToken. "
                        "Give every node the same one")
        codec = TokenCodec(secret, timedelta(hours=cfg.token_ttl_hours))
        sessions = session_factory(engine)
        _warn_of_other_namespaces(sessions, cfg.repository_identifier)
    except BaseException:
        engine.dispose()
        raise
    # A resumed list page reads with one statement (two for a set: its id, then the page; sets are
    # never removed), so it needs no transaction around them. A first page counts and lists in
    # one snapshot. (The rare resumed page whose window must be extended counts what is left and
    # lists it in two statements; a write between them can only make completeListSize stale by
    # what changed meanwhile, as it may be for any later page.)
    reader = single_statement_reader(engine)
    resumed_sessions = session_factory(reader)
    flow = FlowControl(cfg.rate_limit_per_minute)

    app = Flask(__name__, static_folder=None)
    if cfg.proxy_hops:  # the client and scheme the proxies saw, not the proxy's own address (rate limits, URLs)
        app.wsgi_app = ProxyFix(_web_schemes_only(app.wsgi_app), x_for=cfg.proxy_hops,  # type: ignore[method-assign]
                                x_proto=cfg.proxy_hops)
    app.config["OAI"] = cfg
    # One byte more than a body may have is read, to tell "at most" from "more": a server that ends the input
    # stream itself (gunicorn) had Werkzeug refuse a body of exactly the limit at the probe for one byte more.
    app.config["MAX_CONTENT_LENGTH"] = cfg.max_request_bytes + 1
    app.extensions["oai_engine"] = engine
    app.extensions["oai_sessions"] = sessions
    app.url_map.merge_slashes = False  # an identifier may hold '//' or begin with '/' (its landing page URL)
    app.url_map.converters["identifier"] = IdentifierConverter
    app.register_blueprint(pages)
    path = cfg.endpoint_path

    @app.teardown_appcontext
    def _close_session(_exc: BaseException | None) -> None:
        session = g.pop("oai_session", None)
        if session is not None:
            session.close()

    def base_url() -> str:
        # (the endpoint's URL also when the browser view, at its /view, asks it)
        return cfg.base_url or f"{request.host_url.rstrip('/')}{request.script_root}{path}"

    def stylesheet_url() -> str:
        """The browser view's stylesheet, at the public base URL's path: behind a proxy that adds a prefix
        (/prefix/oai) a browser asks there."""
        return f"{urlsplit(base_url()).path.rstrip('/')}/static/oai2.xsl"

    def site_root() -> str:
        """Where this app's /schemas/ are seen from outside: the configured baseURL without the
        endpoint path (behind a proxy, the request's own host may be an internal one), else the host asked."""
        if cfg.base_url:
            configured = cfg.base_url.rstrip("/")
            if cfg.endpoint_path != "/" and configured.endswith(cfg.endpoint_path):
                return configured[: -len(cfg.endpoint_path)]
            parts = urlsplit(configured)
            return f"{parts.scheme}://{parts.netloc}"
        return request.host_url.rstrip("/")

    app.extensions["oai_site_root"] = site_root
    # Built once per base URL (and formats per host and set of foreign formats), not per request.
    # Both come from the request's Host when not configured, so the caches are kept small.
    repositories: dict[str, Repository] = {}
    known_formats: dict[tuple[str, tuple[FormatInfo, ...]], dict[str, FormatInfo]] = {}
    foreign: dict[str, object] = {"at": -1e9, "rows": ()}

    def repository() -> Repository:
        url = base_url()
        repo = repositories.get(url)
        if repo is None:
            repo = Repository(cfg.repository_name, url, cfg.admin_email, cfg.repository_identifier,
                              cfg.page_sizes(), cfg.compression, cfg.page_max_bytes)
            if len(repositories) >= 64:
                repositories.clear()
            repositories[url] = repo
        return repo

    def formats(session) -> dict[str, FormatInfo]:  # noqa: ANN001
        """Registry formats plus harvested foreign ones (re-read from the database every 30 s)."""
        from oai.formats.registry import FORMATS

        if time.monotonic() - foreign["at"] > 30:
            foreign["rows"] = tuple(
                FormatInfo(r.prefix, r.namespace, r.schema) for r in session.scalars(select(ForeignFormat))
            )
            foreign["at"] = time.monotonic()
        root = site_root()
        key = (root, foreign["rows"])
        found = known_formats.get(key)
        if found is None:
            found = {
                p: FormatInfo(p, f.namespace, f.schema_url or f"{root}/schemas/{f.schema_relpath}",
                              None if f.schema_url else f"<{f.root_tag.rpartition('}')[2]}".encode())
                for p, f in FORMATS.items()
            }
            for info in key[1]:
                found.setdefault(info.prefix, info)
            if len(known_formats) >= 64:
                known_formats.clear()
            known_formats[key] = found
        return found

    lookahead = None
    store = _store_identity(engine)  # in the pages' keys: a token names no database
    if cfg.lookahead:
        directory = Path(cfg.lookahead_dir) if cfg.lookahead_dir else default_directory(store, path)
        lookahead = LookAhead(directory)

    def latest_datestamp() -> datetime | None:
        with resumed_sessions() as session:
            return queries.latest_datestamp(session)

    latest_write = LatestWrite(latest_datestamp)
    app.extensions["oai_lookahead"] = lookahead

    def render_ahead(verb: str, token: str, repo: Repository, fmts: dict[str, FormatInfo],
                     stylesheet: str | None, compressed: bool) -> Rendered | None:
        """The page `token` asks for, as endpoint() would answer it now (None: an OAI-PMH error);
        `compressed`: with its tail compressed ahead (the client asked for compression this time)."""
        session = resumed_sessions()
        try:
            ctx = Context(session, repo, fmts, codec)  # the page's `began`: before the fence is passed
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

    def send(page: Rendered, verb: str, ctx: Context, stylesheet: str | None) -> Response:
        """The page's response; once it is sent, the page its token asks for is rendered ahead (if this
        process is idle)."""
        coding = _content_coding()
        response = _xml_response(page.body, etag=page.etag, cache=page.cacheable, tail=page.tail, coding=coding)
        token = page.next_token
        if lookahead is not None and token and verb in _READ_AHEAD and request.method != "HEAD":
            compressed = coding in compression.ENCODINGS
            start = lookahead.schedule((verb, token, ctx.repository.base_url, site_root(), store),
                                       functools.partial(render_ahead, verb, token, ctx.repository,
                                                         dict(ctx.formats), stylesheet, compressed))
            if start is not None:
                response.call_on_close(start)
        return response

    def rendered_ahead(verb: str, token: str, ctx: Context) -> Rendered | None:
        """The page read ahead for this request, if any and still what it would get now. Not for HEAD, which
        would use up the page the harvester's GET is to get (an outside audit)."""
        if lookahead is None or verb not in _READ_AHEAD or request.method == "HEAD":
            return None
        return lookahead.take((verb, token, ctx.repository.base_url, site_root(), store),
                              lambda page: latest_write.before(page.began))

    @app.route(path, methods=["GET", "POST"])
    def endpoint() -> Response:
        wait = flow.wait(request.remote_addr or "-")  # behind proxies (proxy_hops), the client they name
        if wait:
            return Response("Too many requests; retry later.\n", status=503,
                            headers={"Retry-After": str(wait)}, mimetype="text/plain")
        if lookahead is None:
            return answer()
        with lookahead.serving():
            return answer()

    def answer() -> Response:
        params, problem = _arguments()
        resumed = not problem and params.get("verb") in _PAGED and "resumptionToken" in params
        now = dates.now()  # the responseDate: taken before the fence is passed, and the store read
        session = g.oai_session = (resumed_sessions if resumed else sessions)()
        if not problem and not resumed and params.get("verb") in _DATED:
            fence.wait(session)  # (the session is closed at teardown, should it fail)
        ctx = Context(session, repository(), formats(session), codec, now)
        stylesheet = stylesheet_url() if cfg.stylesheet else None
        try:
            if problem:
                raise BadArgument(problem)
            req = parse_request(params)
            if resumed:
                token = req.args["resumptionToken"]
                page = rendered_ahead(req.verb, token, ctx)
                if page is not None:
                    try:
                        codec.decode(token, verb=req.verb, now=ctx.now)  # it may have expired since
                    except OAIError:
                        lookahead.tidy()
                        raise
                    page = replace(page, body=render.with_response_date(page.body, ctx.now))
                    response = send(page, req.verb, ctx, stylesheet)
                    response.call_on_close(lookahead.tidy)  # the page's file, once it is sent
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
        return send(_rendered(ctx, req, result, stylesheet), req.verb, ctx, stylesheet)

    @app.get(f"{path.rstrip('/')}/view")
    def browser_view() -> Response:
        """The browser view rendered here: the endpoint's answer to the same arguments, through the same
        stylesheet. Browsers are dropping XSLT (Chromium 156 already says so on every page), so the page a
        browser renders from /oai itself may become raw XML; this one is HTML, and its links lead here."""
        g.oai_view = True  # the answer uncompressed (_content_coding)
        response = endpoint()
        if response.status_code != 200 or response.mimetype != "text/xml":
            return response  # 304, 503, a broken request's 400: as the endpoint answers them
        view_url = f"{base_url().rstrip('/')}/view"  # under the public base URL, as the stylesheet is
        try:
            html = _render_view(response.get_data(), stylesheet_url(), view_url)
        except etree.XSLTError as exc:  # libxslt's limits (a DOI of 3,000 '/'s: its recursion depth; a review)
            log.warning("browser view not rendered: %s", exc)
            plain = html_escape(f"{base_url()}?{request.query_string.decode('latin-1')}", quote=True)
            html = (f'<!doctype html><html><head><meta charset="utf-8"><title>OAI-PMH</title></head><body><p>This '
                    f'answer is too large or deep to show as a page here: <a href="{plain}">its XML</a>.</p></body>'
                    "</html>").encode()
        return Response(html, status=200, headers={"Vary": "Accept-Encoding"}, content_type="text/html; charset=utf-8")

    @app.get(f"{path.rstrip('/')}/static/<path:name>")
    def static_file(name: str) -> Response:
        return send_from_directory(STATIC_DIR, name, max_age=3600)

    @app.get("/schemas/<path:name>")
    def schema_file(name: str) -> Response:
        if not name.endswith(".xsd"):
            abort(404)
        return send_from_directory(SCHEMAS_DIR, name, max_age=86400, mimetype="application/xml")

    @app.before_request
    def _a_host_we_can_name() -> None:
        """RFC 9112 3.2: a request whose Host is not a host name, or an HTTP/1.1 request without one, is 400.
        Werkzeug reads such a Host as empty, and the answer's baseURL and links became 'http:///oai' (an
        outside audit). /health is left alone: a load balancer's probe may send no Host."""
        if request.path == "/health":
            return
        sent = "HTTP_HOST" in request.environ  # HTTP/1.0 need not send one: the server's address stands in
        if (sent and not request.host) or (not sent and request.environ.get("SERVER_PROTOCOL") == "HTTP/1.1"):
            abort(400, description="the request's Host header is missing or not a host name")

    @app.errorhandler(HTTPException)
    def plain_http_error(exc: HTTPException) -> Response | HTTPException:
        """HTTP errors outside OAI-PMH (an unknown path, PUT, a body too large) as one line of text, not
        Werkzeug's HTML page; redirects pass."""
        if exc.code is None or exc.code < 400:
            return exc
        headers = [(k, v) for k, v in exc.get_headers() if k.lower() not in ("content-type", "content-length")]
        return Response(f"{exc.code} {exc.name}: {exc.description}\n", status=exc.code, headers=headers,
                        mimetype="text/plain")

    @app.errorhandler(db_errors.OperationalError)
    @app.errorhandler(db_errors.InterfaceError)
    @app.errorhandler(db_errors.TimeoutError)
    def database_error(exc: Exception) -> Response:
        """The database unreachable, restarting, overloaded or locked: 503 with Retry-After, the answer harvesters
        treat as "come back later" (OAI-PMH 3.1.2.2 flow control), not a 500 they take for a broken server.
        Any other database error (a table missing: a schema behind the code) is a bug: a 500, logged
        with its traceback."""
        if not database_unavailable(exc):
            current_app.log_exception(sys.exc_info())
            return Response("500 Internal Server Error\n", status=500, mimetype="text/plain")
        log.warning("database unavailable, answered 503: %s", error_reason(exc))
        return Response("The repository's database is unavailable for a moment; retry later.\n", status=503,
                        headers={"Retry-After": str(DATABASE_RETRY_AFTER)}, mimetype="text/plain")

    @app.after_request
    def security_headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.path == path:  # public metadata, no credentials: browser-based validators may read it
            response.headers.setdefault("Access-Control-Allow-Origin", "*")
        return response

    store_file = sqlite_file(engine)

    @app.get("/health")
    def health() -> Response:
        """The store answers a read of a table of ours (SELECT 1 never touches a SQLite file), and a SQLite store
        is still where it was opened: removed under a running server, its open file went on answering (an
        outside audit)."""
        try:
            if store_file is not None and not os.path.exists(store_file):
                raise FileNotFoundError(f"the SQLite store {store_file} is gone")
            with engine.connect() as conn:
                conn.execute(text("SELECT version_num FROM alembic_version"))
        except Exception as exc:  # noqa: BLE001 - health reports any database failure
            log.warning("health check failed: %s", error_reason(exc) if isinstance(exc, db_errors.DBAPIError) else exc)
            return Response('{"status": "database unavailable"}\n', status=503, mimetype="application/json")
        return jsonify(status="ok")

    if path != "/":
        @app.get("/")
        def index() -> Response:
            # a request sent to the site's root (a base URL given without the endpoint path) keeps its arguments
            query = request.query_string.decode("latin-1") or "verb=Identify"
            return Response(status=302, headers={"Location": f"{path}?{query}"})

    return app


# A harvested record in a format we do not know is served as it came, and may hold XHTML or SVG with scripts:
# a browser showing the raw XML (the stylesheet off, or a browser without XSLT) must run none of them. 'self'
# scripts, because Chromium counts loading the XSLT stylesheet as one; nosniff keeps our XML, JSON and HTML from
# ever running as a script. Inline styles for the landing page's one <style>.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_PAGED = (["ListRecords"], ["ListIdentifiers"], ["ListSets"])
# Answers that hold datestamps or begin a list, whose responseDate a harvester may ask `from` next time: they are
# read only once every write stamped before their responseDate has committed (oai.store.fence). A resumed page
# needs no wait: its list ends at the `until` its first page froze, and that page waited.
_DATED = (["Identify"], ["GetRecord"], ["ListRecords"], ["ListIdentifiers"])
_READ_AHEAD = ("ListRecords", "ListIdentifiers")  # the lists harvesters walk (sets are few)


def _log_with_times() -> None:
    """Our warnings in gunicorn's own line format (time, pid, level), when nothing else formats them: Python's
    last-resort handler wrote bare messages among gunicorn's timed lines (an outside operations review)."""
    ours = logging.getLogger("oai")
    if ours.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s",
                                           "%Y-%m-%d %H:%M:%S %z"))
    ours.addHandler(handler)


def _store_identity(engine: Engine) -> str:
    """The database, named the same way by every process that uses it: a relative SQLite path names a
    different file in each working directory."""
    path = sqlite_file(engine)
    return "sqlite:" + path if path is not None else engine.url.render_as_string(hide_password=True)


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


@functools.cache
def _view_transform() -> etree.XSLT:
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    return etree.XSLT(etree.parse(str(STATIC_DIR / "oai2.xsl"), parser),
                      access_control=etree.XSLTAccessControl.DENY_ALL)


def _render_view(body: bytes, stylesheet: str, view_url: str) -> bytes:
    """An OAI-PMH answer as the browser view's HTML, its links to `view_url`. The stylesheet's address is given
    as the answer's own instruction names it (the page takes its CSS from beside it), also where answers carry
    none (OAI_STYLESHEET=false)."""
    # huge_tree: a text node over 10 MB, which the harvester takes and /oai serves (a review found a 500)
    document = etree.fromstring(body, etree.XMLParser(no_network=True, resolve_entities=False, huge_tree=True))
    if not any(isinstance(node, etree._ProcessingInstruction) and node.target == "xml-stylesheet"  # noqa: SLF001
               for node in document.itersiblings(preceding=True)):
        document.addprevious(etree.ProcessingInstruction("xml-stylesheet", f'type="text/xsl" href="{stylesheet}"'))
    namespaces = "true()" if _namespace_work(document) <= NAMESPACE_WORK else "false()"
    result = _view_transform()(document, linkBase=etree.XSLT.strparam(view_url), showNamespaces=namespaces)
    return bytes(result)


# The stylesheet finds an element's namespace declarations by comparing each namespace in scope with each of its
# parent's: this many comparisons take about two seconds. A page of 100 JATS articles with full text makes 210,000.
NAMESPACE_WORK = 300_000


def _namespace_work(document: etree._Element) -> int:
    """How many comparisons the stylesheet would make to show `document`'s namespace declarations."""
    work, scope = 0, {document: len(document.nsmap)}
    for element in document.iterdescendants(etree.Element):
        scope[element] = len(element.nsmap)
        work += scope[element] * scope[element.getparent()]
    return work


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
