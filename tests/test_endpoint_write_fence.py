"""A responseDate that a harvester can ask `from` next time: a record stamped before it is in the answer, even when
its write commits after the request came (oai.store.fence). An outside audit found the gap: `oai load` batches
stamped in one second and committed in the next were missed for good by 5 of 10 harvests asking `from` the
previous responseDate. Here a real writer holds its transaction open across a second boundary while a request
comes in, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time

import pytest
from endpoint_helpers import T0, dc_record, get, headers, ident, write
from oaischema import OAI

from oai.store.engine import transaction
from oai.store.records import upsert_records

HELD = "oai:example.org:held"


def _held_write(engine, stamped: threading.Event, release: threading.Event) -> None:  # noqa: ANN001
    with transaction(engine) as session:
        upsert_records(session, [dc_record(HELD)])  # stamped now, inside the fence
        stamped.set()
        release.wait(30)


@pytest.mark.parametrize("args", [
    {"verb": "ListIdentifiers", "metadataPrefix": "oai_dc"},
    {"verb": "ListRecords", "metadataPrefix": "oai_dc"},
    {"verb": "GetRecord", "metadataPrefix": "oai_dc", "identifier": HELD},
], ids=lambda args: args["verb"])
def test_an_answer_waits_for_a_write_stamped_before_its_response_date(live_server, engine, args) -> None:  # noqa: ANN001
    server = live_server()
    write(engine, [dc_record(ident(0))], T0)
    stamped, release = threading.Event(), threading.Event()
    writer = threading.Thread(target=_held_write, args=(engine, stamped, release))
    writer.start()
    try:
        assert stamped.wait(30)
        time.sleep(1.05 - time.time() % 1)  # into the next second: the record's datestamp is before the answer's
        answers: list = []
        asker = threading.Thread(target=lambda: answers.append(get(server, **args)))
        asker.start()
        asker.join(0.5)
        assert asker.is_alive(), "answered while a write stamped before its responseDate was still open"
    finally:
        release.set()
        writer.join(30)
    asker.join(30)
    _, root = answers[0]
    held = [h for h in headers(root) if h.identifier == HELD]
    assert held, "a record stamped before the responseDate is missing: asking `from` it would never list it"
    assert held[0].datestamp < root.findtext(f"{{{OAI}}}responseDate")  # the case that such a harvest misses


def test_lists_without_datestamps_do_not_wait_for_writers(live_server, engine) -> None:  # noqa: ANN001
    """ListSets and ListMetadataFormats hold no datestamps: they are answered while a write is open."""
    server = live_server()
    write(engine, [dc_record(ident(0), sets=("a",))], T0)
    stamped, release = threading.Event(), threading.Event()
    writer = threading.Thread(target=_held_write, args=(engine, stamped, release))
    writer.start()
    try:
        assert stamped.wait(30)
        for verb in ("ListSets", "ListMetadataFormats"):
            reply, _ = get(server, verb=verb)
            assert reply.status == 200
    finally:
        release.set()
        writer.join(30)
