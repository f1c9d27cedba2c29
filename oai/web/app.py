"""The Flask app factory: the store checked at boot, the endpoint (oai.web.endpoint), the landing pages
(oai.web.pages), and the rest of the site: schemas, health, and what every response gets."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping
from datetime import timedelta

from flask import Flask, Response, abort, current_app, g, jsonify, request, send_from_directory
from sqlalchemy import exc as db_errors
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from oai.config import Config, load_config, unknown_settings
from oai.formats.base import SCHEMAS_DIR
from oai.protocol.tokens import TokenCodec
from oai.store import queries
from oai.store.engine import check_schema, database_unavailable, error_reason, make_engine, session_factory, sqlite_file
from oai.store.settings import record_secret_fingerprint, shared_secret
from oai.store.validation import in_oai_scheme
from oai.web.endpoint import Endpoint
from oai.web.pages import IdentifierConverter, pages

log = logging.getLogger("oai.web")
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
    endpoint = Endpoint(cfg, engine, sessions, codec)

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
    app.extensions["oai_site_root"] = endpoint.site_root
    app.extensions["oai_lookahead"] = endpoint.lookahead
    app.url_map.merge_slashes = False  # an identifier may hold '//' or begin with '/' (its landing page URL)
    app.url_map.converters["identifier"] = IdentifierConverter
    app.register_blueprint(pages)
    endpoint.register(app)
    _register_site(app, cfg, engine)
    return app


def _register_site(app: Flask, cfg: Config, engine: Engine) -> None:
    """What the site has besides the endpoint: its schemas, health, the root's redirect, and what every
    response gets (security headers, plain-text HTTP errors, 503 while the database is away)."""
    path = cfg.endpoint_path

    @app.teardown_appcontext
    def _close_session(_exc: BaseException | None) -> None:
        session = g.pop("oai_session", None)
        if session is not None:
            session.close()

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
