"""pyoai's server (`oaipmh.server.BatchingServer`) over OUR store, as a WSGI app, for side-by-side runs.

Bench only. Metadata goes through pyoai's registry: oai_dc via its oai_dc_reader/oai_dc_writer, jats by
appending the parsed stored element. Paging is pyoai's (cursor + batch size, hence OFFSET).
"""

from __future__ import annotations

import os
import sys
import types
import urllib.parse
from collections.abc import Callable, Iterable
from datetime import datetime

from lxml import etree


def _shim_py311() -> None:
    """pyoai 2.5 calls cgi.parse_qs (gone since Python 3.8) and imports pkg_resources and cgi (gone in 3.13).

    Shims for pyoai only, in the bench only; see also _XPathEvaluator below.
    """
    try:
        import cgi  # noqa: F401 - deprecated; removed in 3.13
    except ImportError:
        sys.modules["cgi"] = types.ModuleType("cgi")
    import cgi

    if not hasattr(cgi, "parse_qs"):
        cgi.parse_qs = lambda qs, keep_blank_values=False, strict_parsing=False: urllib.parse.parse_qs(  # type: ignore[attr-defined]
            qs, keep_blank_values, strict_parsing)
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        fake = types.ModuleType("pkg_resources")
        fake.Requirement = types.SimpleNamespace(parse=lambda name: name)  # type: ignore[attr-defined]
        fake.working_set = types.SimpleNamespace(find=lambda req: None)  # type: ignore[attr-defined]
        sys.modules["pkg_resources"] = fake


class _XPathEvaluator:
    """lxml 5+ dropped XPathEvaluator.evaluate, which pyoai's MetadataReader calls; the evaluator is callable."""

    def __init__(self, element: etree._Element, namespaces: dict | None = None) -> None:
        self._evaluate = etree.XPathEvaluator(element, namespaces=namespaces)

    def evaluate(self, expr: str) -> object:
        return self._evaluate(expr)


_shim_py311()

import oaipmh.metadata  # noqa: E402
from oaipmh import common, error  # noqa: E402
from oaipmh.metadata import MetadataRegistry, oai_dc_reader  # noqa: E402

oaipmh.metadata.etree = types.SimpleNamespace(XPathEvaluator=_XPathEvaluator)  # the module uses nothing else of etree
from oaipmh.server import BatchingServer, oai_dc_writer  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from oai.store.engine import make_engine, session_factory  # noqa: E402
from oai.store.models import OAISet, Record, RecordMetadata, RecordSet  # noqa: E402

JATS_NS = "https://jats.nlm.nih.gov/ns/publishing/1.4/"
FORMATS = [
    ("oai_dc", "http://www.openarchives.org/OAI/2.0/oai_dc.xsd", "http://www.openarchives.org/OAI/2.0/oai_dc/"),
    ("jats", "https://jats.nlm.nih.gov/publishing/1.4/xsd/JATS-journalpublishing1-4.xsd", JATS_NS),
]


def _jats_writer(element: etree._Element, metadata: common.Metadata) -> None:
    element.append(metadata.element())


def _metadata(prefix: str, xml: bytes | None) -> common.Metadata | None:
    """What pyoai's writers take: oai_dc read into its field map by oai_dc_reader; jats as an element."""
    if xml is None:
        return None
    root = etree.fromstring(xml)
    if prefix == "oai_dc":
        holder = etree.Element("metadata")
        holder.append(root)
        return oai_dc_reader(holder)
    return common.Metadata(root, {})


class StoreBackend:
    """pyoai's IBatchingOAI interface, reading the same tables our server reads."""

    def __init__(self, url: str, base_url: str) -> None:
        self._sessions = session_factory(make_engine(url, writer=False))
        with self._sessions() as s:
            earliest = s.scalar(select(func.min(Record.datestamp))) or datetime(2000, 1, 1)
        # Built once: pyoai's Identify looks up its own version through pkg_resources on every construction.
        self._identify = common.Identify(
            repositoryName="pyoai over the bench store", baseURL=base_url, protocolVersion="2.0",
            adminEmails=["admin@example.org"], earliestDatestamp=earliest, deletedRecord="persistent",
            granularity="YYYY-MM-DDThh:mm:ssZ", compression=["identity"])

    def identify(self) -> common.Identify:
        return self._identify

    def listMetadataFormats(self, identifier: str | None = None) -> list[tuple[str, str, str]]:  # noqa: N802
        return FORMATS

    def listSets(self, cursor: int = 0, batch_size: int = 10) -> list[tuple[str, str, None]]:  # noqa: N802
        with self._sessions() as s:
            rows = s.execute(select(OAISet.spec, OAISet.name).order_by(OAISet.spec).offset(cursor).limit(batch_size))
            return [(r.spec, r.name, None) for r in rows]

    def _rows(self, prefix: str, set_spec: str | None, from_: datetime | None, until: datetime | None,
              cursor: int, batch_size: int, with_xml: bool) -> list:
        if prefix not in dict((p, 1) for p, _, _ in FORMATS):
            raise error.CannotDisseminateFormatError(f"unknown metadata format {prefix}")
        cols = [Record.identifier, Record.datestamp, Record.deleted, Record.set_specs]
        if with_xml:
            cols.append(RecordMetadata.xml)
        stmt = (select(*cols).join(RecordMetadata, (RecordMetadata.record_id == Record.id) & (RecordMetadata.prefix == prefix))
                .order_by(Record.datestamp, Record.id).offset(cursor).limit(batch_size))
        if set_spec is not None:
            stmt = stmt.join(RecordSet, RecordSet.record_id == Record.id).join(OAISet, OAISet.id == RecordSet.set_id) \
                       .where(OAISet.spec == set_spec)
        if from_ is not None:
            stmt = stmt.where(Record.datestamp >= from_)
        if until is not None:
            stmt = stmt.where(Record.datestamp <= until)
        with self._sessions() as s:
            return list(s.execute(stmt))

    @staticmethod
    def _header(r) -> common.Header:  # noqa: ANN001
        return common.Header(None, r.identifier, r.datestamp, r.set_specs.split(), r.deleted)

    def listIdentifiers(self, metadataPrefix: str, set: str | None = None, from_: datetime | None = None,  # noqa: N802, N803, A002
                        until: datetime | None = None, cursor: int = 0, batch_size: int = 10) -> list[common.Header]:
        return [self._header(r) for r in self._rows(metadataPrefix, set, from_, until, cursor, batch_size, False)]

    def listRecords(self, metadataPrefix: str, set: str | None = None, from_: datetime | None = None,  # noqa: N802, N803, A002
                    until: datetime | None = None, cursor: int = 0, batch_size: int = 10) -> list[tuple]:
        rows = self._rows(metadataPrefix, set, from_, until, cursor, batch_size, True)
        return [(self._header(r), _metadata(metadataPrefix, r.xml), None) for r in rows]

    def getRecord(self, metadataPrefix: str, identifier: str) -> tuple:  # noqa: N802, N803
        stmt = (select(Record.identifier, Record.datestamp, Record.deleted, Record.set_specs, RecordMetadata.xml)
                .join(RecordMetadata, (RecordMetadata.record_id == Record.id) & (RecordMetadata.prefix == metadataPrefix))
                .where(Record.identifier == identifier))
        with self._sessions() as s:
            r = s.execute(stmt).one_or_none()
        if r is None:
            raise error.IdDoesNotExistError(identifier)
        return self._header(r), _metadata(metadataPrefix, r.xml), None


def create_app() -> Callable:
    """The WSGI app: GET/POST arguments -> pyoai's handleRequest -> the bytes it renders."""
    registry = MetadataRegistry()
    registry.registerWriter("oai_dc", oai_dc_writer)
    registry.registerWriter("jats", _jats_writer)
    base_url = os.environ.get("BENCH_PYOAI_BASE_URL", "http://127.0.0.1/oai")
    backend = StoreBackend(os.environ["OAI_DATABASE_URL"], base_url)
    server = BatchingServer(backend, metadata_registry=registry,
                            resumption_batch_size=int(os.environ.get("BENCH_PYOAI_BATCH", "100")))

    def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] == "POST":
            size = int(environ.get("CONTENT_LENGTH") or 0)
            query = environ["wsgi.input"].read(size).decode("utf-8", "replace")
        else:
            query = environ.get("QUERY_STRING", "")
        args = {k: v[0] for k, v in urllib.parse.parse_qs(query).items()}
        body = server.handleRequest(args)
        start_response("200 OK", [("Content-Type", "text/xml; charset=utf-8"), ("Content-Length", str(len(body)))])
        return [body]

    return app
