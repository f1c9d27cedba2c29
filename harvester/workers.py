"""Canonical metadata for harvested records, computed in worker processes beside the page loop.

Validation, crosswalks and canonical serialisation are CPU-bound Python; in the fetching thread
they would hold the GIL that the writes need. Each record travels as the bytes of its metadata
element and comes back as canonical bytes (or the reason it is refused), so a worker needs no
database and no shared state.

The pool is one per process, shared by every run (a scheduler harvesting several sources uses the
same workers), started when a run begins from a fork server: its children begin from a clean,
single-threaded process, not from a copy of a web or scheduler process in mid-flight.
OAI_HARVEST_PROCESSES sets its size; 0 canonicalises in the calling thread instead.
"""

from __future__ import annotations

import atexit
import json
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from itertools import zip_longest
from typing import TypeVar

from lxml import etree

from harvester.parse import OAI_NS, nested_too_deep, strict_parser
from oai.formats import dc, registry
from oai.formats.base import XSI_NS, FormatError
from oai.formats.safexml import TOO_DEEP, TOO_LONG, canonical_bytes, text_too_long, too_deep
from oai.orphans import exit_with as exit_with_parent

T = TypeVar("T")

# Below this many records a page is done in the calling thread: shipping it costs more than it saves.
MIN_BATCH = 16


@dataclass(frozen=True)
class Job:
    """One record's metadata to canonicalise, as `format_prefix` (None: a foreign format, kept as is)."""

    source_prefix: str
    format_prefix: str | None
    data: bytes
    repairs: tuple[str, ...] = ()
    namespace: str | None = None  # of a foreign format, as the source's ListMetadataFormats gives it


@dataclass(frozen=True)
class Canonical:
    """What a record's metadata became, or `refused` (the reason) when it cannot be ingested."""

    metadata: dict[str, bytes]
    altered: dict[str, bool]
    citation: str | None
    notes: tuple[str, ...]
    refused: str | None = None


def canonicalise(job: Job) -> Canonical:
    """The canonical metadata of one record (runs in a worker, or inline)."""
    try:  # its own document: only the namespaces it uses
        element = etree.fromstring(job.data, strict_parser())
    except etree.XMLSyntaxError as exc:  # refused with the reason: lxml's error (its log) does not pickle
        if nested_too_deep(exc):
            return _refused(f"the metadata's {TOO_DEEP}")
        return _refused(f"the metadata does not parse on its own: {exc}")
    if too_deep(element):
        return _refused(f"the metadata's {TOO_DEEP}")
    if text_too_long(element, len(job.data)):
        return _refused(f"the metadata: {TOO_LONG}")
    etree.cleanup_namespaces(element)
    notes = job.repairs
    if job.format_prefix is not None:
        notes += dc.repair_java_locales(element, job.data)
    repaired = bool(notes)
    if job.format_prefix is None:  # a foreign format: stored canonical, served as harvested
        refused, warned = _foreign_namespace_problem(element, job)
        if refused is not None:
            return _refused(refused)
        return Canonical({job.source_prefix: canonical_bytes(element)}, {job.source_prefix: repaired}, None,
                         notes + warned)
    try:
        fmt = registry.detect(element)
    except FormatError as exc:
        return _refused(f"the metadata is not {job.format_prefix}: {exc}")
    if fmt.prefix != job.format_prefix:
        return _refused(f"the metadata is {fmt.prefix} (root {element.tag}), but this source is "
                        f"harvested as {job.source_prefix}")
    original = canonical_bytes(element)
    # A format only we publish is stored without a schema hint (the server adds the one for its own
    # address), so the hint the upstream gave (ours, when harvesting another of our servers) is no change.
    unhinted = _without_schema_hints(element) if fmt.schema_url is None else None
    try:
        ingested = fmt.ingest(element, full_text=True, consume=True)
    except FormatError as exc:
        return _refused(f"{fmt.prefix} metadata refused: {exc}")
    altered = {p: True for p in ingested.metadata}  # derived formats (oai_dc from JATS) are altered
    if fmt.prefix in ingested.metadata:
        ours = ingested.metadata[fmt.prefix]
        altered[fmt.prefix] = repaired or not (unhinted == ours or _equivalent(original, ours)
                                               or _equivalent_but_for_hints(original, ours))
    # vars(), not asdict(): asdict deep-copies every value, and Citation holds only str and tuples
    citation = json.dumps(vars(ingested.citation), ensure_ascii=False)
    return Canonical(dict(ingested.metadata), altered, citation, notes + tuple(ingested.warnings))




def _foreign_namespace_problem(element: etree._Element, job: Job) -> tuple[str | None, tuple[str, ...]]:
    """(why a foreign format's record cannot be served as `job.source_prefix`, or None; notes). OAI-PMH.xsd holds
    metadata as ##other: in a namespace, and not OAI-PMH's (an element whose namespace declaration the source
    forgot falls into OAI-PMH's, and every page serving it would be invalid). A root in another namespace than
    the one the source gives for the prefix is kept, with a note: sources do declare one namespace and write
    another (DSpace's qdc, declared http://purl.org/dc/terms/, rooted in http://dspace.org/qualifieddc/)."""
    namespace = etree.QName(element).namespace
    if namespace is None or namespace == OAI_NS:
        where = "no namespace" if namespace is None else "the OAI-PMH namespace (a namespace declaration missing?)"
        return f"the metadata's root element <{etree.QName(element).localname}> is in {where}", ()
    if job.namespace and namespace != job.namespace:
        return None, (f"the metadata's root element {element.tag} is not in {job.namespace}, the namespace the "
                      f"source gives for {job.source_prefix}; kept as it came",)
    return None, ()


_HINTS = (f"{{{XSI_NS}}}schemaLocation", f"{{{XSI_NS}}}noNamespaceSchemaLocation")


def _without_schema_hints(element: etree._Element) -> bytes | None:
    """The canonical bytes of `element` once the schema hints on it are removed (from it), or None if it
    has none. A hint says where a schema is, not what the record says."""
    attributes = element.attrib
    if not any(name in attributes for name in _HINTS):
        return None
    for name in _HINTS:
        attributes.pop(name, None)
    etree.cleanup_namespaces(element)
    return canonical_bytes(element)


def _equivalent_but_for_hints(original: bytes, ingested: bytes) -> bool:
    """_equivalent() once the schema hints on either root are removed: a record the source sent without one, which
    we serve with oai_dc's, is not altered (an outside audit found altered="true" for that alone)."""
    theirs, ours = etree.fromstring(original, strict_parser()), etree.fromstring(ingested, strict_parser())
    theirs_bare, ours_bare = _without_schema_hints(theirs), _without_schema_hints(ours)
    if theirs_bare is None and ours_bare is None:
        return False  # no hint on either: _equivalent() has said
    return _equivalent(theirs_bare or canonical_bytes(theirs), ours_bare or canonical_bytes(ours))


def _refused(reason: str) -> Canonical:
    return Canonical({}, {}, None, (), reason)


def _equivalent(original: bytes, ingested: bytes) -> bool:
    """True when the stored bytes differ from the upstream's only in namespace declarations and in
    white space around text: what comparing their C14N 2.0 forms with strip_text tells (c14n_equivalent).

    Both trees are walked together, stopping at the first difference: most harvested records differ
    (padding dropped, fields reordered), and serialising both (lxml's C14N 2.0 writer is Python) cost
    more than the rest of their canonicalisation. tests/test_harvest_workers.py checks the two agree.
    """
    if original == ingested:
        return True
    theirs = etree.fromstring(original, strict_parser()).iter()
    ours = etree.fromstring(ingested, strict_parser()).iter()
    for a, b in zip_longest(theirs, ours):
        if a is None or b is None or a.tag != b.tag or _stripped(a.tail) != _stripped(b.tail):
            return False
        if not isinstance(a.tag, str):  # a comment or processing instruction: C14N keeps its text as it is
            if a.text != b.text or (isinstance(a, etree._ProcessingInstruction) and a.target != b.target):  # noqa: SLF001
                return False
            continue
        if _stripped(a.text) != _stripped(b.text) or a.prefix != b.prefix or len(a) != len(b) or a.attrib != b.attrib:
            return False
        if _attribute_prefixes(a) != _attribute_prefixes(b):  # rare: let C14N itself decide
            return c14n_equivalent(original, ingested)
    return True


def c14n_equivalent(original: bytes, ingested: bytes) -> bool:
    """_equivalent(), by serialising both documents in C14N 2.0 with strip_text (slow, exact)."""
    theirs, ours = etree.fromstring(original, strict_parser()), etree.fromstring(ingested, strict_parser())
    return (etree.tostring(theirs, method="c14n2", strip_text=True)
            == etree.tostring(ours, method="c14n2", strip_text=True))


def _stripped(text: str | None) -> str:
    return text.strip() if text else ""


def _attribute_prefixes(element: etree._Element) -> dict[str, list[str]] | None:
    """The prefixes in scope for the namespaces of `element`'s qualified attributes (C14N writes them)."""
    uris = {key[1:].partition("}")[0] for key in element.attrib.keys() if key[0] == "{"}
    if not uris:
        return None
    return {uri: sorted(str(p) for p, u in element.nsmap.items() if u == uri) for uri in uris}


# -- the shared pool ----------------------------------------------------------------------------

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None


def processes() -> int:
    """Worker processes to use: OAI_HARVEST_PROCESSES, else one per core (at most 4)."""
    raw = os.environ.get("OAI_HARVEST_PROCESSES")
    if raw is not None and raw.strip():
        if not raw.strip().isdecimal():
            raise ValueError(f"OAI_HARVEST_PROCESSES must be a whole number, 0 or more, not {raw!r}")
        return int(raw)
    return min(4, os.cpu_count() or 1)


def _shared_pool(size: int) -> ProcessPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["harvester.workers"])
            _pool = ProcessPoolExecutor(max_workers=size, mp_context=context, initializer=exit_with_parent,
                                        initargs=(os.getpid(),))
        return _pool


def warm() -> None:
    """Start the workers now (without waiting), so that they are ready when the first page arrives."""
    size = processes()
    if size:
        _on_pool(size, lambda pool: [pool.submit(int) for _ in range(size)])


POOL_TRIES = 4  # pools a page is tried on: workers killed again and again (the OOM killer) fail it only then


def _on_pool(size: int, use: Callable[[ProcessPoolExecutor], T]) -> T:
    """use(the shared pool); a pool broken by a dead worker (killed, out of memory, also between runs)
    is replaced and `use` tried again, up to POOL_TRIES pools in all (a test killing three workers in a row
    broke a page's second pool too, now and then)."""
    for _ in range(POOL_TRIES - 1):
        pool = _shared_pool(size)
        try:
            return use(pool)
        except BrokenProcessPool:
            _drop(pool)
    return use(_shared_pool(size))


def _drop(broken: ProcessPoolExecutor) -> None:
    """Stop a broken pool. Only that one: other threads use the pool too (the page loop collects
    while the prefetch thread submits, and several runs share it), and one of them may already have
    replaced it with a new pool, whose work must go on. One thread shuts it down: ProcessPoolExecutor's
    shutdown is not safe to run twice at once."""
    global _pool
    with _lock:
        if _pool is not broken:  # already dropped (and shut down) by another thread
            return
        _pool = None
    _stop(broken)


def shutdown() -> None:
    """Stop the workers (they are started again when next needed)."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        _stop(pool)


SHUTDOWN_GRACE = 10.0  # seconds a worker has to finish its task and exit before it is killed


def _stop(pool: ProcessPoolExecutor) -> None:
    """Shut `pool` down, waiting at most SHUTDOWN_GRACE for its workers, then killing what is left.

    ProcessPoolExecutor.shutdown(wait=True) can wait forever (CPython 3.11): a worker killed (the OOM
    killer) while it held the task queue's lock, just before a shutdown that came before the pool
    noticed, leaves the others waiting on that lock for the stop signal. The harvester would then
    never exit. Nothing is lost by the kill: no run is waiting for these workers any more.
    """
    processes = list((pool._processes or {}).values())  # noqa: SLF001 - before shutdown forgets them
    manager = pool._executor_manager_thread  # noqa: SLF001
    pool.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + SHUTDOWN_GRACE
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.exitcode is None:
            process.kill()
            process.join(5)
    if manager is not None:
        manager.join(5)  # it closes the queues once the workers are gone


atexit.register(shutdown)


def start(jobs: Sequence[Job]) -> Callable[[], list[Canonical]]:
    """Start canonicalising `jobs` and return what waits for their results, in order.

    The workers go on while the caller does something else (the page loop fetches the next page);
    a page too small to ship is done here and now. A pool that breaks before the results are in
    (a worker killed) is replaced and the jobs are done again.
    """
    size = processes()
    if size == 0 or len(jobs) < MIN_BATCH:
        done = [canonicalise(job) for job in jobs]
        return lambda: done
    chunk = max(1, -(-len(jobs) // (2 * size)))

    used: list[ProcessPoolExecutor] = []

    def submit(pool: ProcessPoolExecutor) -> Iterator[Canonical]:
        used[:] = [pool]
        return pool.map(canonicalise, jobs, chunksize=chunk)  # submits every chunk now

    results = _on_pool(size, submit)

    def collect() -> list[Canonical]:
        try:
            return list(results)
        except BrokenProcessPool:
            _drop(used[0])
            return _on_pool(size, lambda pool: list(submit(pool)))

    return collect
