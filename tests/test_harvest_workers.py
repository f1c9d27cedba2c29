"""Canonicalisation in worker processes gives what the calling thread gives, record for record.

Pages of 40 records go to the worker pool (harvester.workers.MIN_BATCH is lower); the same
harvest with OAI_HARVEST_PROCESSES=0 runs inline. Both stores must hold the same bytes, the same
quarantine reasons and the same warnings, and a dead worker must not lose a page.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest

from conftest import DATA, LiveServer
from harvest_fixtures import add, options, running, stored, until
from harvester import workers
from harvester.runs import harvest_source
from harvester.history import list_quarantine
from oai.store.engine import make_engine
from upstream import faults
from upstream.repository import sample_records
from upstream.server import Upstream

assert workers.MIN_BATCH < 40


class InvalidDublinCore(faults.Fault):
    """Rename the n-th record's dc:type to dc:typo: well-formed XML that oai_dc.xsd refuses."""

    stage = "body"

    def __init__(self, record: int) -> None:
        self.record = record

    def apply(self, reply, ctx):  # noqa: ANN001, ANN201
        starts = [m.start() for m in re.finditer(rb"<record>", reply.body)]
        if len(starts) < self.record:
            return False
        at = reply.body.index(b"<dc:type>", starts[self.record - 1])
        end = reply.body.index(b"</dc:type>", at) + len(b"</dc:type>")
        value = reply.body[at + len(b"<dc:type>"):end - len(b"</dc:type>")]
        reply.body = reply.body[:at] + b"<dc:typo>" + value + b"</dc:typo>" + reply.body[end:]
        return True


def _without_harvest_dates(about: dict) -> dict:
    return {p: re.sub(rb'harvestDate="[^"]*"', b"", a) if a else a for p, a in about.items()}


def _snapshot(engine, source: str) -> dict:  # noqa: ANN001
    return {key: (r.identifier, r.deleted, r.sets, r.metadata, _without_harvest_dates(r.about))
            for key, r in stored(engine, source).items()}


def _harvest(monkeypatch, processes: str, tmp_path, template, url: str, prefix: str = "oai_dc"):  # noqa: ANN001, ANN202
    """A full harvest of `url` into a fresh SQLite store with OAI_HARVEST_PROCESSES=processes:
    (summary, quarantine reasons, what the store holds)."""
    monkeypatch.setenv("OAI_HARVEST_PROCESSES", processes)
    path = tmp_path / f"target-{prefix}-{processes}.sqlite3"
    shutil.copy(template, path)
    target = make_engine(f"sqlite:///{path}")
    try:
        add(target, "up", url, prefix=prefix)
        summary = harvest_source(target, "up", options())
        reasons = {q.upstream_identifier: q.reason for q in list_quarantine(target, "up")}
        return summary, reasons, _snapshot(target, "up")
    finally:
        target.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_oai_dc_in_workers_matches_inline(engine, monkeypatch, tmp_path, _sqlite_template) -> None:  # noqa: ANN001
    records = sample_records(90)
    workers.shutdown()
    with Upstream.synthetic(records, page_size=40) as up:
        up.add_fault(InvalidDublinCore(record=7), page=1, times=None)
        results = {}
        for processes in ("0", "2"):
            summary, reasons, snapshot = _harvest(monkeypatch, processes, tmp_path, _sqlite_template, up.base_url)
            results[processes] = (summary.seen, summary.new, summary.quarantined, summary.warnings, reasons, snapshot)
            assert (workers._pool is not None) == (processes != "0")  # noqa: SLF001 - which path ran
    inline, pooled = results["0"], results["2"]
    assert inline[:3] == (90, 89, 1)
    assert "oai_dc metadata refused" in inline[4]["oai:upstream.test:7"]
    assert pooled == inline


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_jats_in_workers_matches_inline(engine, monkeypatch, tmp_path, _sqlite_template) -> None:  # noqa: ANN001
    from oai.loader import load

    shutil.copy(_sqlite_template, tmp_path / "jats.sqlite3")
    url = f"sqlite:///{tmp_path / 'jats.sqlite3'}"
    source_engine = make_engine(url)
    loaded = load(source_engine, [str(Path(DATA) / "jats")], repository_identifier="source.example", workers=1)
    assert loaded.new >= workers.MIN_BATCH
    from oai.web.app import create_app

    server = LiveServer(create_app({"database_url": url, "page_size": 40, "repository_identifier": "source.example"}))
    try:
        results = {}
        for processes in ("0", "2"):
            summary, reasons, snapshot = _harvest(monkeypatch, processes, tmp_path, _sqlite_template, server.url,
                                                  prefix="jats")
            results[processes] = (summary.status, summary.seen, summary.quarantined, summary.warnings, snapshot)
    finally:
        server.close()
        source_engine.dispose()
    status, seen, quarantined = results["0"][:3]
    assert status == "complete" and quarantined == 0 and seen >= workers.MIN_BATCH
    assert results["2"] == results["0"]


def _dc_jobs(n: int) -> list[workers.Job]:
    from oai.formats import dc

    return [workers.Job("oai_dc", "oai_dc", dc.serialise([("title", f"t{i}", None)])) for i in range(n)]


def test_a_killed_worker_is_replaced_and_nothing_is_lost(monkeypatch) -> None:
    monkeypatch.setenv("OAI_HARVEST_PROCESSES", "2")
    jobs = _dc_jobs(40)
    first = workers.start(jobs)()
    pool = workers._shared_pool(2)  # noqa: SLF001 - the running pool, to kill one of its workers
    victim = next(iter(pool._processes))  # noqa: SLF001
    os.kill(victim, signal.SIGKILL)
    again = workers.start(jobs)()
    assert again == first and all(r.refused is None for r in again)
    workers.shutdown()


def test_a_pool_broken_between_runs_is_replaced_when_the_next_run_starts(monkeypatch) -> None:
    """A worker killed while no run was going (the OOM killer, an operator) leaves the shared pool
    broken; the next run's warm() starts a new one instead of failing."""
    monkeypatch.setenv("OAI_HARVEST_PROCESSES", "2")
    workers.shutdown()
    workers.warm()
    pool = workers._shared_pool(2)  # noqa: SLF001 - the running pool, to kill one of its workers
    victim = next(iter(pool._processes))  # noqa: SLF001
    os.kill(victim, signal.SIGKILL)
    until(lambda: pool._broken, 30)  # noqa: SLF001 - noticed by its own thread
    try:
        workers.warm()
        assert workers._shared_pool(2) is not pool  # noqa: SLF001
        assert all(r.refused is None for r in workers.start(_dc_jobs(workers.MIN_BATCH))())
    finally:
        workers.shutdown()


def _variants(data: bytes) -> list[bytes]:
    """`data` and changed copies of it: some C14N 2.0 (strip_text) still equates with it, some it does not."""
    from lxml import etree

    def edited(change) -> bytes:  # noqa: ANN001
        root = etree.fromstring(data)
        change(root)
        return etree.tostring(root)

    first = lambda root: next(e for e in root.iter() if isinstance(e.tag, str) and e.text and e.text.strip())  # noqa: E731
    out = [data, etree.tostring(etree.fromstring(data), pretty_print=True)]  # re-indented
    out.append(data.replace(b">", b' xmlns:unused="urn:x">', 1))  # an unused declaration
    out.append(edited(lambda r: setattr(first(r), "text", f"  {first(r).text}\n ")))  # padded text
    out.append(edited(lambda r: setattr(first(r), "text", first(r).text + "!")))  # changed text
    out.append(edited(lambda r: r[0].set("extra", "1")))
    out.append(edited(lambda r: r.insert(0, etree.Comment(" note "))))
    out.append(edited(lambda r: r.insert(0, etree.Comment("note"))))  # the same comment, unpadded
    if len(etree.fromstring(data)) > 1:
        out.append(edited(lambda r: r[0].append(r[1])))  # the same elements in document order, nested
    out.append(edited(lambda r: r.append(etree.ProcessingInstruction("pi", "x"))))
    out.append(edited(lambda r: r.append(r[0])))  # an element moved
    out.append(edited(lambda r: r.remove(r[-1])))
    prefix = etree.fromstring(data).prefix
    if prefix is None:  # the default namespace given a prefix: C14N 2.0 tells the two apart
        ns = etree.QName(etree.fromstring(data)).namespace
        out.append(data.replace(f'xmlns="{ns}"'.encode(), f'xmlns:p="{ns}"'.encode(), 1)
                   .replace(b"<", b"<p:").replace(b"<p:/", b"</p:").replace(b"<p:?", b"<?").replace(b"<p:!", b"<!"))
    if b"xmlns:xlink=" in data:  # xlink attributes under another prefix
        out.append(data.replace(b"xmlns:xlink=", b"xmlns:xl=").replace(b"xlink:", b"xl:"))
    return out


def test_fast_equivalence_agrees_with_c14n2() -> None:
    """harvester.workers._equivalent decides `altered` as comparing C14N 2.0 forms would, on real records."""
    from lxml import etree

    from harvester.parse import read_page
    from oai.formats import registry

    documents = []
    for path in sorted((DATA / "oai").rglob("*.xml")):
        try:
            page = read_page(path.read_bytes(), "ListRecords")
        except Exception:  # noqa: BLE001, S112 - not a ListRecords page
            continue
        documents += [etree.tostring(r.metadata) for r in page.records if r.metadata is not None][:3]
    for path in sorted((DATA / "jats").rglob("*.xml"))[:8]:
        ingested = registry.ingest_document(path.read_bytes())
        documents += list(ingested.metadata.values())
    verdicts = []
    for original in documents:
        ingested = workers.canonicalise(workers.Job("x", None, original)).metadata["x"]  # canonical bytes
        variants = _variants(ingested) + [original]
        for variant, other in [(v, ingested) for v in variants] + list(zip(variants, variants[1:])):
            expected = workers.c14n_equivalent(variant, other)
            assert workers._equivalent(variant, other) is expected, (variant[:300], other[:300])  # noqa: SLF001
            verdicts.append(expected)
    assert len(documents) >= 30 and verdicts.count(True) >= 60 and verdicts.count(False) >= 200


def test_pages_in_flight_from_two_threads_survive_a_killed_worker(monkeypatch) -> None:
    """The page loop collects one page while the prefetch thread submits the next (and several runs
    share the pool): the thread that replaces a broken pool must not stop the new one under the other."""
    monkeypatch.setenv("OAI_HARVEST_PROCESSES", "2")
    jobs = _dc_jobs(40)
    expected = workers.start(jobs)()
    outcomes: list[bool] = []
    errors: list[BaseException] = []

    def pages() -> None:
        try:
            for _ in range(40):
                outcomes.append(workers.start(jobs)() == expected)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=pages) for _ in range(2)]
    for thread in threads:
        thread.start()
    killed = []
    try:
        for _ in range(3):  # kill a worker of whichever pool is running, three times over
            time.sleep(0.1)
            pool = workers._shared_pool(2)  # noqa: SLF001 - the running pool, to kill one of its workers
            for victim in list(pool._processes)[:1]:  # noqa: SLF001
                try:
                    os.kill(victim, signal.SIGKILL)
                    killed.append(pool)
                except ProcessLookupError:  # that pool was being replaced already
                    pass
        for thread in threads:
            thread.join(120)
    finally:
        # Shut down only once each pool has noticed its dead worker: a pool shut down before that waits
        # for a worker that waits on a queue lock the killed one held (ProcessPoolExecutor, CPython 3.11).
        deadline = time.monotonic() + 30
        while not all(p._broken for p in killed) and time.monotonic() < deadline:  # noqa: SLF001
            time.sleep(0.05)
        workers.shutdown()
    assert not errors and len(outcomes) == 80 and all(outcomes)


def test_shutdown_does_not_wait_forever_for_a_worker_that_does_not_stop(monkeypatch) -> None:
    """A worker that never takes its stop signal (in CPython 3.11: one left waiting on the task queue's lock
    by a worker killed while holding it) is killed after the grace period, so that a harvest always exits."""
    monkeypatch.setenv("OAI_HARVEST_PROCESSES", "2")
    monkeypatch.setattr(workers, "SHUTDOWN_GRACE", 1.0)
    workers.shutdown()
    pool = workers._shared_pool(2)  # noqa: SLF001 - the running pool, to give one worker a task without end
    stuck = pool.submit(time.sleep, 300)
    until(stuck.running, 30)
    pids = list(pool._processes)  # noqa: SLF001
    finished = threading.Event()
    started = time.monotonic()
    threading.Thread(target=lambda: (workers.shutdown(), finished.set()), daemon=True).start()
    try:
        assert finished.wait(60), "shutdown() is still waiting for the worker"
        assert time.monotonic() - started < 30
        until(lambda: not any(running(pid) for pid in pids), 10)
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_metadata_nested_too_deep_to_be_served_readably_is_refused() -> None:
    """Foreign formats too, which no schema checks (an outside audit: 1,500 levels, stored and served)."""
    def nested(levels: int) -> bytes:
        return b'<r xmlns="urn:x">' + b"<i>" * (levels - 1) + b"x" + b"</i>" * (levels - 1) + b"</r>"

    deep = workers.canonicalise(workers.Job("x", None, nested(201), namespace="urn:x"))
    assert deep.refused and "more than 200 levels deep" in deep.refused
    kept = workers.canonicalise(workers.Job("x", None, nested(200), namespace="urn:x"))
    assert kept.refused is None and kept.metadata["x"].count(b"<i>") == 199


def test_metadata_with_a_text_too_long_to_be_served_readably_is_refused() -> None:
    """An outside audit on PostgreSQL: a harvested dc:title of 40 MiB was stored and served, and sickle (lxml's
    10,000,000-character limit) cut that page short, the record truncated and the rest of the list lost without an
    error. Loaded here, the same is refused by `oai load`."""
    from oai.formats import registry
    from oai.formats.base import FormatError
    from oai.formats.dc import build_dc
    from oai.formats.safexml import MAX_TEXT, canonical_bytes

    def dc_of(title: str) -> bytes:
        return canonical_bytes(build_dc([("title", title, None)]))

    long = workers.canonicalise(workers.Job("oai_dc", "oai_dc", dc_of("x" * (MAX_TEXT + 1))))
    assert long.refused and "a text of more than 10,000,000 characters" in long.refused
    assert workers.canonicalise(workers.Job("oai_dc", "oai_dc", dc_of("x" * MAX_TEXT))).refused is None
    with pytest.raises(FormatError, match="a text of more than 10,000,000 characters"):
        registry.ingest_document(dc_of("y" * (MAX_TEXT + 1)))
