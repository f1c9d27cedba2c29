"""Gunicorn settings for the OAI-PMH web nodes: `gunicorn -c deploy/gunicorn.conf.py 'oai:create_app()'`."""

import multiprocessing
import os
import sys


def _count(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    if not raw.strip().isdigit() or int(raw) < 1:
        sys.exit(f"Error: {name} must be a whole number, 1 or more, not {raw!r}")
    return int(raw)


def on_starting(server) -> None:  # noqa: ANN001, ARG001 - gunicorn's hook, in the master before any worker
    """The settings and the store checked once: a bad setting, a database not reachable or not migrated is one
    line and exit 1, not a traceback from every worker (an outside operations review)."""
    from oai.config import ConfigError, load_config
    from oai.store.engine import SchemaError, check_schema, make_engine

    try:
        engine = make_engine(load_config().database_url, writer=False)
        try:
            check_schema(engine)
        finally:
            engine.dispose()  # nothing of it crosses into the forked workers
    except (ConfigError, SchemaError) as exc:
        sys.exit(f"Error: {exc}")


bind = os.environ.get("OAI_BIND", "127.0.0.1:8000")
workers = _count("OAI_WORKERS", multiprocessing.cpu_count() * 2)
worker_class = "gthread"
threads = _count("OAI_THREADS", 4)
timeout = 120  # a page of 500 JATS records on a slow disk still fits
graceful_timeout = 30
keepalive = 5
max_requests = 10000  # recycle workers now and then
max_requests_jitter = 1000
accesslog = "-"
errorlog = "-"
# The units run under ProtectSystem=strict: nothing is writable but /srv/oai/data, a private /tmp and /dev/shm.
worker_tmp_dir = "/dev/shm"  # the workers' heartbeat files (a tmpfs: no disk writes either)
control_socket_disable = True  # newer gunicorn (27) opens a control socket in $HOME, read-only there
# X-Forwarded-Proto and friends are believed by the app alone, as OAI_PROXY_HOPS says; gunicorn's own default
# believes them from 127.0.0.1, where nginx is, but so is any local client (an outside audit got https baseURLs).
secure_scheme_headers: dict[str, str] = {}
# A GET's request line holds the identifier or the resumptionToken: gunicorn's largest, not its 4094 bytes.
limit_request_line = 8190
