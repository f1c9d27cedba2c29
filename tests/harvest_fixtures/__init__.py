"""Helpers shared by the harvester's tests: tiny fetch policies, source set-up, reading the store back.

Also `MarcRepository`: the synthetic upstream serving MARCXML (a format outside our registry, whose
<record> elements nest inside OAI <record> elements) next to oai_dc.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lxml import etree
from sqlalchemy import select

from harvester.client import FetchPolicy
from harvester.runs import RunOptions
from harvester.sources import add_source
from oai.store.engine import transaction
from oai.store.models import Record, RecordMetadata, Source
from upstream import SyntheticRepository
from upstream.protocol import OAIError, oai

REPO_ID = "example.org"
DC = "http://purl.org/dc/elements/1.1/"
MARC_NS = "http://www.loc.gov/MARC21/slim"
MARC_SCHEMA = "http://www.loc.gov/standards/marcxml/schema/MARC21slim.xsd"


def policy(**overrides: object) -> FetchPolicy:
    """Fast but real: no politeness delay, millisecond backoff, short timeouts."""
    values = dict(delay=0.0, backoff=0.01, backoff_max=0.05, connect_timeout=2.0, read_timeout=3.0,
                  attempts=4, retry_after_max=3.0)
    values.update(overrides)
    return FetchPolicy(**values)


def options(**overrides: object) -> RunOptions:
    values: dict = dict(policy=policy(), repository_identifier=REPO_ID, lease_seconds=30.0, retry_delay=0.0)
    values.update(overrides)
    return RunOptions(**values)


def add(engine, name: str, base_url: str, **kwargs: object):  # noqa: ANN001, ANN201
    """add_source with the fast policy; returns the SourceView."""
    view, _warnings = add_source(engine, name, base_url, policy=policy(), **kwargs)
    return view


@dataclass(frozen=True)
class Stored:
    identifier: str
    deleted: bool
    datestamp: object
    sets: tuple[str, ...]
    upstream_identifier: str | None
    upstream_datestamp: str | None
    metadata: dict
    about: dict


def stored(engine, source: str | None = None) -> dict[str, Stored]:  # noqa: ANN001
    """upstream identifier (or identifier, for local records) -> what the store holds."""
    out: dict[str, Stored] = {}
    with transaction(engine) as s:
        stmt = select(Record)
        if source is not None:
            sid = s.scalar(select(Source.id).where(Source.name == source))
            stmt = stmt.where(Record.source_id == sid)
        records = list(s.scalars(stmt))
        children: dict[int, list] = {}
        for m in s.scalars(select(RecordMetadata)):
            children.setdefault(m.record_id, []).append(m)
        for rec in records:
            meta = {m.prefix: m.xml for m in children.get(rec.id, [])}
            about = {m.prefix: m.about for m in children.get(rec.id, [])}
            key = rec.upstream_identifier or rec.identifier
            out[key] = Stored(rec.identifier, rec.deleted, rec.datestamp, tuple(rec.set_specs.split()),
                              rec.upstream_identifier, rec.upstream_datestamp, meta, about)
    return out


def dc_values(xml: bytes, element: str = "title") -> list[str]:
    root = etree.fromstring(xml, etree.XMLParser(huge_tree=True))
    return [e.text or "" for e in root.iter(f"{{{DC}}}{element}")]


class MarcRepository(SyntheticRepository):
    """Serves `marc21` (MARCXML, a foreign format) as well as oai_dc; the title goes to 245 $a."""

    def _ListMetadataFormats(self, args, base_url):  # noqa: ANN001, ANN202, N802
        el = super()._ListMetadataFormats(args, base_url)
        fmt = etree.SubElement(el, oai("metadataFormat"))
        for tag, text in (("metadataPrefix", "marc21"), ("schema", MARC_SCHEMA), ("metadataNamespace", MARC_NS)):
            etree.SubElement(fmt, oai(tag)).text = text
        return el

    def _check_prefix(self, prefix):  # noqa: ANN001, ANN202
        if prefix not in ("oai_dc", "marc21"):
            raise OAIError("cannotDisseminateFormat", f"metadataPrefix {prefix!r} is not supported")

    def _list(self, verb, args):  # noqa: ANN001, ANN202
        self._prefix = args.get("metadataPrefix") or self._prefix_of(args)
        return super()._list(verb, args)

    def _prefix_of(self, args) -> str:  # noqa: ANN001
        try:
            return self._decode(args["resumptionToken"], "ListRecords")[1]
        except (OAIError, KeyError):
            return "oai_dc"

    def _record(self, rec):  # noqa: ANN001, ANN202
        el = super()._record(rec)
        if getattr(self, "_prefix", "oai_dc") != "marc21" or rec.deleted:
            return el
        metadata = el.find(oai("metadata"))
        metadata.clear()
        marc = etree.SubElement(metadata, f"{{{MARC_NS}}}record", nsmap={None: MARC_NS})
        etree.SubElement(marc, f"{{{MARC_NS}}}leader").text = "00000nam a2200000 a 4500"
        field = etree.SubElement(marc, f"{{{MARC_NS}}}datafield", tag="245", ind1="0", ind2="0")
        etree.SubElement(field, f"{{{MARC_NS}}}subfield", code="a").text = rec.fields.get("title", [""])[0]
        return el


def sqlite_only(test):  # noqa: ANN001, ANN201
    """For tests of upstream behaviour that the store does not take part in: SQLite is enough."""
    import pytest

    return pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)(test)


def detach_logs() -> None:
    """CLI commands attach a log handler to CliRunner's stream; take it off again."""
    import logging

    logger = logging.getLogger("harvester")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.propagate = True


def running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (a fork server and the workers forked from it, say)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def until(condition: Callable[[], bool], timeout: float, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(step)
