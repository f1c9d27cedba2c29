"""The HTTP side of the test upstream: a threaded server on 127.0.0.1 and its control object.

Owns the socket, the request log, the fault pipeline (which rule fires on which request)
and the byte-level sending (delays, truncation, RST). What a request means belongs to
the content (repository.py or replay.py); how a fault bends a reply belongs to faults.py.
"""

from __future__ import annotations

import dataclasses
import socket
import struct
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from . import faults as _faults
from .faults import STAGES, Context, Fault, FaultRule
from .protocol import Reply, flatten_query
from .replay import Replay
from .repository import SyntheticRepository

PATH = "/oai"


@dataclasses.dataclass(frozen=True)
class LogEntry:
    """One request as the upstream saw and answered it (status None: connection reset)."""

    number: int
    method: str
    query: dict
    headers: dict
    page: int | None
    status: int | None
    faults: tuple[str, ...]
    body_size: int


class Upstream:
    """A real OAI-PMH server on 127.0.0.1:<free port>, serving `content` with faults on demand.

    Use as a context manager (or the `upstream` fixture); `stop()` is idempotent.
    """

    def __init__(self, content=None):
        """content: a SyntheticRepository (default: an empty one), a Replay or a dataset name."""
        self.content = (SyntheticRepository() if content is None
                        else Replay(content) if isinstance(content, str) else content)
        self.errors: list[str] = []   # tracebacks of bugs in the upstream itself
        self._rules: list[FaultRule] = []
        self._log: list[LogEntry] = []
        self._count = 0
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._url = ""

    @classmethod
    def synthetic(cls, records=(), **options) -> Upstream:
        """Serve a SyntheticRepository(records, **options) (page_size, granularity, ...)."""
        return cls(SyntheticRepository(records, **options))

    @classmethod
    def replay(cls, dataset: str) -> Upstream:
        """Serve the real sample files of replay.DATASETS[dataset]."""
        return cls(Replay(dataset))

    # -- lifecycle --

    def start(self) -> Upstream:
        if self._server is None:
            self._stopping.clear()
            self._server = _Server(("127.0.0.1", 0), _Handler)
            self._server.upstream = self
            self._url = f"http://127.0.0.1:{self._server.server_address[1]}{PATH}"
            self._thread = threading.Thread(target=self._server.serve_forever,
                                            kwargs={"poll_interval": 0.05},
                                            name="upstream-oai", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:   # wake handlers idling on keep-alive connections
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Upstream:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the upstream is not running")
        return self._url

    # -- configuration --

    def serve(self, content):
        """Switch what is served: a SyntheticRepository, a Replay or a dataset name."""
        with self._lock:
            self.content = Replay(content) if isinstance(content, str) else content
            return self.content

    @property
    def repo(self) -> SyntheticRepository:
        """The synthetic repository being served (add/update/delete records through it)."""
        if not isinstance(self.content, SyntheticRepository):
            raise TypeError(f"serving {type(self.content).__name__}, not a SyntheticRepository")
        return self.content

    def add_fault(self, fault: Fault, *, request=None, page: int | None = None,
                  verb: str | None = None, when=None, times: int | None = 1) -> FaultRule:
        """Fire `fault` on matching requests, `times` times (None: every time).

        request: request number(s), 1-based since start or reset_log(); page: page of a
        list request (1 = the request without resumptionToken); verb: only this verb;
        when: a predicate over faults.Context. All given conditions must hold.
        """
        rule = FaultRule(fault, request=request, page=page, verb=verb, when=when, times=times)
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear_faults(self) -> None:
        with self._lock:
            self._rules.clear()

    def expire_tokens(self) -> None:
        """Invalidate the resumption tokens handed out so far (see the content's expire_tokens)."""
        self.content.expire_tokens()

    # -- observation --

    @property
    def log(self) -> list[LogEntry]:
        with self._lock:
            return list(self._log)

    @property
    def requests(self) -> list[dict]:
        """The query of every request received, in order (single values unwrapped)."""
        return [entry.query for entry in self.log]

    def reset_log(self) -> None:
        """Forget the log; request numbers count from 1 again."""
        with self._lock:
            self._log.clear()
            self._count = 0

    # -- used by the handler --

    def _answer(self, method: str, query: dict[str, list[str]], headers) -> Reply:
        with self._lock:
            self._count += 1
            number, content = self._count, self.content
        fired: list[str] = []
        try:
            ctx = Context(query, headers, self._url, number, content.page_of(query), content)
            self._run("before", Reply(), ctx, fired)
            reply = content.respond(query, self._url)
            replaced = self._run("replace", reply, ctx, fired, first_only=True)
            for stage in STAGES[2:]:
                if stage != "body" or not replaced:
                    self._run(stage, reply, ctx, fired)
        except Exception:
            self.errors.append(traceback.format_exc())
            reply, page = Reply(), None
            _faults.InternalServerError().apply(reply, None)
        else:
            page = ctx.page
        with self._lock:
            self._log.append(LogEntry(number, method, flatten_query(query), dict(headers.items()),
                                      page, None if reply.reset else reply.status,
                                      tuple(fired), len(reply.body)))
        return reply

    def _run(self, stage, reply, ctx, fired, first_only=False) -> bool:
        any_fired = False
        with self._lock:   # one request at a time through the faults: counts stay exact
            for rule in self._rules:
                if rule.fault.stage != stage or not rule.matches(ctx):
                    continue
                if rule.fault.apply(reply, ctx):
                    rule.fired += 1
                    fired.append(type(rule.fault).__name__)
                    any_fired = True
                    if first_only:
                        break
        return any_fired

    def _wait(self, seconds: float) -> None:
        if seconds:
            self._stopping.wait(seconds)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    upstream: Upstream

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], OSError):   # a client that went away is no bug
            self.upstream.errors.append(traceback.format_exc())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "UpstreamOAI/1.0"
    timeout = 10   # idle keep-alive connections are closed after this

    def setup(self):
        super().setup()
        with self.server.upstream._lock:
            self.server.upstream._connections.add(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            with self.server.upstream._lock:
                self.server.upstream._connections.discard(self.connection)

    def log_message(self, format, *args):   # keep test output quiet
        pass

    def do_GET(self):
        url = urlsplit(self.path)
        self._dispatch("GET", url.path, url.query)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        self._dispatch("POST", urlsplit(self.path).path, body)

    def _dispatch(self, method: str, path: str, query_string: str):
        if path != PATH:
            self._send(Reply(status=404, body=b"not found",
                             headers={"Content-Type": "text/plain; charset=utf-8"}))
            return
        query = parse_qs(query_string, keep_blank_values=True)
        self._send(self.server.upstream._answer(method, query, self.headers))

    def _send(self, reply: Reply):
        upstream = self.server.upstream
        if reply.reset:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()   # RST, no response
            self.close_connection = True
            return
        upstream._wait(reply.delay)
        body = reply.body
        sent = body if reply.truncate_at is None else body[:reply.truncate_at]
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.content_length is not None:
            self.send_header("Content-Length", str(len(body if reply.content_length == "full" else sent)))
        if reply.content_length is None or reply.truncate_at is not None:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if reply.stall:
            half = len(sent) // 2
            self.wfile.write(sent[:half])
            self.wfile.flush()
            upstream._wait(reply.stall)
            sent = sent[half:]
        if reply.drip:
            for i in range(0, len(sent), 256):
                self.wfile.write(sent[i:i + 256])
                self.wfile.flush()
                upstream._wait(reply.drip)
            return
        self.wfile.write(sent)
