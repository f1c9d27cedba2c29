"""Helpers for the endpoint tests: raw HTTP against a live server, every answer schema-checked,
records generated straight into the store, and a Context for calling the verbs directly.
"""

from __future__ import annotations

import functools
import http.client
import socket
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from lxml import etree
from oaischema import OAI, assert_oai, error_codes
from sickle import Sickle

from oai.formats.dc import build_dc
from oai.formats.registry import FORMATS, ingest_document
from oai.protocol.dates import format_datestamp
from oai.protocol.tokens import TokenCodec
from oai.protocol.verbs import Context, FormatInfo, Repository
from oai.store.engine import session_factory, transaction
from oai.store.records import RecordIn, upsert_records

T0 = datetime(2024, 3, 1, 10, 0, 0)
SECRET = b"endpoint-tests-secret-0123456789"
JATS_SAMPLE = Path(__file__).resolve().parent / "data" / "jats" / "plos" / "journal.pone.0108198_correction.xml"
X = {"oai": OAI}


# --- HTTP ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


def path_of(server) -> str:  # noqa: ANN001
    return urlsplit(server.url).path


def fetch(
    server,  # noqa: ANN001 - anything with .port and .url
    target: str | bytes,
    *,
    method: str = "GET",
    body: bytes | None = None,
    headers: Mapping[str, str | None] | None = None,
) -> Reply:
    """One raw HTTP/1.1 exchange: the request target is sent byte for byte, nothing is decoded."""
    if isinstance(target, str):
        target = target.encode("ascii")
    lines = [method.encode("ascii") + b" " + target + b" HTTP/1.1",
             f"Host: 127.0.0.1:{server.port}".encode(), b"Connection: close"]
    extra = dict(headers or {})
    if body is not None:
        extra.setdefault("Content-Length", str(len(body)))
    lines += [f"{k}: {v}".encode("latin-1") for k, v in extra.items() if v is not None]  # None: not sent
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + (body or b""))
        response = http.client.HTTPResponse(sock, method=method)
        response.begin()
        payload = response.read()
    return Reply(response.status, response.headers, payload)


def query(args: Mapping[str, str | Sequence[str]]) -> str:
    """A query string; a list value repeats the argument."""
    return urlencode([(k, v) for k, vs in args.items() for v in ([vs] if isinstance(vs, str) else vs)])


def check(reply: Reply) -> etree._Element:
    """Every OAI-PMH answer: HTTP 200, text/xml in UTF-8, valid against the schemas."""
    assert reply.status == 200, (reply.status, reply.body[:500])
    assert reply.header("Content-Type") == "text/xml; charset=utf-8"
    assert reply.header("Content-Encoding") is None
    return assert_oai(reply.body)


def get(server, **args: str | Sequence[str]) -> tuple[Reply, etree._Element]:  # noqa: ANN001
    reply = fetch(server, f"{path_of(server)}?{query(args)}")
    return reply, check(reply)


def post(server, body: bytes | str | Mapping[str, str | Sequence[str]],  # noqa: ANN001
         content_type: str = "application/x-www-form-urlencoded") -> tuple[Reply, etree._Element]:
    if isinstance(body, Mapping):
        body = query(body)
    if isinstance(body, str):
        body = body.encode("utf-8")
    reply = fetch(server, path_of(server), method="POST", body=body, headers={"Content-Type": content_type})
    return reply, check(reply)


# --- reading responses -------------------------------------------------------------------------

def errors(root: etree._Element) -> list[str]:
    return error_codes(root)


def request_attrs(root: etree._Element) -> dict[str, str]:
    return dict(root.find("oai:request", X).attrib)


@dataclass(frozen=True)
class Header:
    identifier: str
    datestamp: str
    deleted: bool
    sets: tuple[str, ...]


def headers(root: etree._Element) -> list[Header]:
    return [
        Header(h.findtext("oai:identifier", namespaces=X), h.findtext("oai:datestamp", namespaces=X),
               h.get("status") == "deleted", tuple(s.text for s in h.findall("oai:setSpec", X)))
        for h in root.iterfind(".//oai:header", X)
    ]


def identifiers(root: etree._Element) -> list[str]:
    return [h.identifier for h in headers(root)]


def token(root: etree._Element) -> etree._Element | None:
    return root.find(".//oai:resumptionToken", X)


def response_date(root: etree._Element) -> datetime:
    return datetime.strptime(root.findtext("oai:responseDate", namespaces=X), "%Y-%m-%dT%H:%M:%SZ")


def pages(server, verb: str, **args: str) -> Iterator[etree._Element]:  # noqa: ANN001
    """Every page of a list, following resumptionTokens until the empty one."""
    _, root = get(server, verb=verb, **args)
    while True:
        assert not errors(root), errors(root)
        yield root
        tok = token(root)
        if tok is None or not (tok.text or ""):
            return
        _, root = get(server, verb=verb, resumptionToken=tok.text)


# --- generating records ----------------------------------------------------------------------

def dc_bytes(title: str, identifier: str) -> bytes:
    return etree.tostring(build_dc([("title", title, "en"), ("identifier", identifier, None),
                                    ("type", "Text", None)]), encoding="UTF-8")


def dc_record(ident: str, *, sets: tuple[str, ...] = (), title: str | None = None) -> RecordIn:
    return RecordIn(identifier=ident, metadata={"oai_dc": dc_bytes(title or f"Title of {ident}", ident)}, sets=sets)


@functools.cache
def _jats_metadata() -> dict[str, bytes]:
    ingested = ingest_document(JATS_SAMPLE.read_bytes(), source=JATS_SAMPLE.name)
    assert set(ingested.metadata) == {"oai_dc", "jats"}
    return dict(ingested.metadata)


def jats_record(ident: str, *, sets: tuple[str, ...] = ()) -> RecordIn:
    """A JATS article (served as jats and as oai_dc)."""
    return RecordIn(identifier=ident, metadata=_jats_metadata(), sets=sets)


def ident(i: int) -> str:
    return f"oai:example.org:rec-{i:05d}"


def write(engine, records: Iterable[RecordIn], now: datetime) -> None:  # noqa: ANN001
    with transaction(engine) as session:
        upsert_records(session, list(records), now=now)


@dataclass(frozen=True)
class Generated:
    identifier: str
    datestamp: datetime
    sets: tuple[str, ...]


def populate(
    engine,  # noqa: ANN001
    n: int,
    *,
    per_stamp: int = 100,
    start: datetime = T0,
    step: timedelta = timedelta(hours=7),
    sets: Sequence[tuple[str, ...]] = ((),),
    batch: int = 500,
) -> list[Generated]:
    """`n` small oai_dc records, `per_stamp` of them per datestamp, sets assigned round-robin."""
    made: list[Generated] = []
    pending: list[tuple[RecordIn, datetime]] = []

    def flush() -> None:
        with transaction(engine) as session:
            by_stamp: dict[datetime, list[RecordIn]] = {}
            for rec, stamp in pending:
                by_stamp.setdefault(stamp, []).append(rec)
            for stamp, recs in by_stamp.items():
                upsert_records(session, recs, now=stamp)
        pending.clear()

    for i in range(n):
        stamp = start + step * (i // per_stamp)
        spec = tuple(sets[i % len(sets)])
        pending.append((dc_record(ident(i), sets=spec), stamp))
        made.append(Generated(ident(i), stamp, spec))
        if len(pending) >= batch:
            flush()
    if pending:
        flush()
    return made


def stamp(value: datetime) -> str:
    return format_datestamp(value)


# --- calling the verbs directly --------------------------------------------------------------

def formats() -> dict[str, FormatInfo]:
    return {p: FormatInfo(p, f.namespace, f.schema_url or f"http://127.0.0.1/schemas/{f.schema_relpath}")
            for p, f in FORMATS.items()}


def repository(page_size: int = 10) -> Repository:
    return Repository("Test repository", "http://127.0.0.1/oai", ("admin@example.org",), "example.org",
                      {"ListRecords": page_size, "ListIdentifiers": page_size, "ListSets": page_size})


def context(engine, *, now: datetime, page_size: int = 10, secret: bytes = SECRET,  # noqa: ANN001
            ttl: timedelta = timedelta(hours=72)) -> Context:
    """A Context as the web layer builds one, with our own clock (close the session after use)."""
    return Context(session_factory(engine)(), repository(page_size), formats(), TokenCodec(secret, ttl), now)


class CheckedSickle(Sickle):
    """sickle, with every response validated and kept, and a hook between pages."""

    def __init__(self, url: str, on_page=None) -> None:  # noqa: ANN001
        super().__init__(url, timeout=30)
        self.pages: list = []
        self.on_page = on_page

    def harvest(self, **kwargs):  # noqa: ANN003, ANN201
        response = super().harvest(**kwargs)
        assert response.http_response.status_code == 200
        self.pages.append(assert_oai(response.http_response.content))
        if self.on_page:
            self.on_page(len(self.pages))
        return response
