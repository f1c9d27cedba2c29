"""Read-ahead (oai/web/lookahead.py): the next page of a list is rendered while the harvester reads this
one, served once, only as long as nothing changed, and found by whichever process the request reaches.
"""

from __future__ import annotations

import gzip
import os
import shutil
import sqlite3
import threading
import time
import zlib
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from endpoint_helpers import (
    T0,
    X,
    dc_record,
    fetch,
    get,
    headers,
    ident,
    identifiers,
    path_of,
    populate,
    query,
    response_date,
    token,
    write,
)
from lxml import etree
from oaischema import assert_oai
from sickle import Sickle
from sqlalchemy import exc

from oai.protocol import render
from oai.store.engine import transaction
from oai.store.records import delete_record
from oai.web import compression
from oai.web.lookahead import (
    FRESHNESS,
    LatestWrite,
    LookAhead,
    Rendered,
    _write,
    default_directory,
)

BASE = "http://oai.example.org/oai"  # as behind a proxy: every process answers for the same address


def _records(root: etree._Element) -> list[bytes]:
    """A page's records, byte for byte (the page's responseDate and token differ from request to request)."""
    return [etree.tostring(r) for r in root.iterfind(".//oai:record", X)]


def walk(server, **args: str) -> list[etree._Element]:
    """Every page of ListRecords, each request on a new connection (every response schema-checked)."""
    _, root = get(server, verb="ListRecords", **args)
    pages = [root]
    while (tok := token(root)) is not None and tok.text:
        _, root = get(server, verb="ListRecords", resumptionToken=tok.text)
        pages.append(root)
    return pages


def test_a_walk_gets_the_same_records_from_pages_rendered_ahead(engine, live_server, tmp_path: Path) -> None:
    populate(engine, 60)
    ahead = live_server(page_size=7, lookahead_dir=str(tmp_path / "ahead"))
    live = live_server(page_size=7, lookahead=False)
    with_ahead, without = walk(ahead, metadataPrefix="oai_dc"), walk(live, metadataPrefix="oai_dc")
    assert len(with_ahead) == len(without) == 9
    assert [_records(p) for p in with_ahead] == [_records(p) for p in without]
    counts = ahead.app.extensions["oai_lookahead"]
    assert counts.hits == 8 and counts.stale == 0  # every resumed page had been rendered ahead
    assert live.app.extensions["oai_lookahead"] is None
    deadline = time.monotonic() + 10  # each page's file goes once its response is sent
    while os.listdir(tmp_path / "ahead") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert os.listdir(tmp_path / "ahead") == []  # nothing is left after the last page


def test_a_head_request_leaves_the_page_rendered_ahead_to_the_get(engine, live_server, tmp_path: Path) -> None:
    """An outside audit: HEAD with a token took (and so removed) the page rendered ahead for it, and scheduled the
    next; the harvester's GET then rendered the page again."""
    populate(engine, 30)
    server = live_server(page_size=10, lookahead_dir=str(tmp_path / "ahead"))
    _, root = get(server, verb="ListRecords", metadataPrefix="oai_dc")
    target = f"{path_of(server)}?{query({'verb': 'ListRecords', 'resumptionToken': token(root).text})}"
    counts = server.app.extensions["oai_lookahead"]
    deadline = time.monotonic() + 10  # the page is rendered once the first response is sent
    while not os.listdir(tmp_path / "ahead") and time.monotonic() < deadline:
        time.sleep(0.01)
    head = fetch(server, target, method="HEAD")
    assert head.status == 200 and head.body == b"" and counts.hits == 0
    assert fetch(server, target).status == 200 and counts.hits == 1


def test_a_compressed_head_gives_no_length_that_a_get_may_not_have(engine, live_server, tmp_path: Path) -> None:
    """An outside audit: HEAD said Content-Length 902 where the GET, sent the page compressed ahead, had 1018
    (RFC 9110 8.6: a HEAD's Content-Length must be what the GET's would be). Uncompressed, both agree."""
    populate(engine, 30)
    server = live_server(page_size=10, lookahead_dir=str(tmp_path / "ahead"))
    _, root = get(server, verb="ListRecords", metadataPrefix="oai_dc")
    target = f"{path_of(server)}?{query({'verb': 'ListRecords', 'resumptionToken': token(root).text})}"
    _wait_rendered(tmp_path / "ahead")
    gzip = {"Accept-Encoding": "gzip"}
    head = fetch(server, target, method="HEAD", headers=gzip)
    assert head.status == 200 and head.headers.get("Content-Encoding") == "gzip"
    assert head.headers.get("Content-Length") is None
    got = fetch(server, target, headers=gzip)
    assert got.status == 200 and int(got.headers["Content-Length"]) == len(got.body)
    plain = fetch(server, target, method="HEAD", headers={"Accept-Encoding": "identity"})
    assert int(plain.headers["Content-Length"]) == len(fetch(server, target, headers={"Accept-Encoding": "identity"}).body)


def test_another_process_serves_the_page_one_rendered(engine, live_server, tmp_path: Path) -> None:
    """Two servers (as two gunicorn workers: each its own LookAhead) on one directory; sickle opens a
    connection per request, so requests alternate between them here."""
    populate(engine, 50)
    shared = str(tmp_path / "ahead")
    a = live_server(page_size=10, base_url=BASE, lookahead_dir=shared)
    b = live_server(page_size=10, base_url=BASE, lookahead_dir=shared)
    _, root = get(a, verb="ListRecords", metadataPrefix="oai_dc")
    served = [identifiers(root)]
    while (tok := token(root)) is not None and tok.text:  # pages 2 and 4 from b, 3 and 5 from a
        _, root = get(b if len(served) % 2 else a, verb="ListRecords", resumptionToken=tok.text)
        served.append(identifiers(root))
    assert [i for page in served for i in page] == [ident(i) for i in range(50)]
    ca, cb = a.app.extensions["oai_lookahead"], b.app.extensions["oai_lookahead"]
    assert (ca.hits, cb.hits) == (2, 2)  # pages 2-5, each rendered by the other server


def test_a_change_after_rendering_is_seen(engine, live_server, tmp_path: Path) -> None:
    """A record deleted after its page was rendered ahead: the request gets the page as it is now."""
    populate(engine, 20)
    server = live_server(page_size=5, lookahead_dir=str(tmp_path / "ahead"))
    _, first = get(server, verb="ListRecords", metadataPrefix="oai_dc")
    _wait_rendered(tmp_path / "ahead")
    with transaction(engine) as s:  # dated now: after the page ahead began rendering, in any second
        delete_record(s, ident(6))
    time.sleep(FRESHNESS + 0.1)  # a write is known within FRESHNESS seconds
    _, second = get(server, verb="ListRecords", resumptionToken=token(first).text)
    assert identifiers(second) == [ident(i) for i in (5, 7, 8, 9, 10)]  # 6 moved past the list's `until`
    counts = server.app.extensions["oai_lookahead"]
    assert (counts.hits, counts.stale) == (0, 1)


def test_a_write_open_while_a_page_is_rendered_ahead_is_in_that_page(engine, live_server, tmp_path: Path) -> None:
    """A write stamped before the rendering began and committed after it (an outside audit: a deleted record served
    as live, seconds after its deletion): the page ahead is rendered once that write has committed."""
    populate(engine, 20)
    server = live_server(page_size=5, lookahead_dir=str(tmp_path / "ahead"))
    _, first = get(server, verb="ListRecords", metadataPrefix="oai_dc")
    stamped, commit = threading.Event(), threading.Event()

    def delete_slowly() -> None:
        with transaction(engine) as s:
            delete_record(s, ident(12))  # on the third page
            stamped.set()
            commit.wait(10)

    writer = threading.Thread(target=delete_slowly)
    writer.start()
    try:
        assert stamped.wait(10)
        time.sleep(1.1)  # the page ahead begins in a later second than the write's stamp
        _, second = get(server, verb="ListRecords", resumptionToken=token(first).text)  # the third is rendered ahead
        time.sleep(0.3)
    finally:
        commit.set()
        writer.join(10)
    time.sleep(FRESHNESS + 0.1)
    _, third = get(server, verb="ListRecords", resumptionToken=token(second).text)
    assert identifiers(third) == [ident(i) for i in (10, 11, 13, 14, 15)]  # 12 moved past the list's `until`


def test_sickle_harvests_through_read_ahead(engine, live_server, tmp_path: Path) -> None:
    populate(engine, 45)
    write(engine, [dc_record("oai:example.org:late", title="Лето")], T0)
    server = live_server(page_size=4, lookahead_dir=str(tmp_path / "ahead"))
    got = [r.header.identifier for r in Sickle(server.url, timeout=30).ListRecords(metadataPrefix="oai_dc")]
    assert sorted(got) == sorted([ident(i) for i in range(45)] + ["oai:example.org:late"])
    assert server.app.extensions["oai_lookahead"].hits == 11


def test_a_page_rendered_ahead_is_sent_compressed_from_its_tail_compressed_ahead(engine, live_server,
                                                                                tmp_path: Path) -> None:
    """A client that asks for compression gets the next page with all but its head compressed ahead (compressing
    cost more than the rest of a page served ahead); decoded, it is the page an uncompressed walk gets."""
    populate(engine, 30)
    ahead = tmp_path / "ahead"
    server = live_server(page_size=7, lookahead_dir=str(ahead))
    plain = [_records(root) for root in walk(server, metadataPrefix="oai_dc")]
    for encoding in ("gzip", "deflate"):
        hits = server.app.extensions["oai_lookahead"].hits
        decode = gzip.decompress if encoding == "gzip" else zlib.decompress
        args, got = {"verb": "ListRecords", "metadataPrefix": "oai_dc"}, []
        while True:
            reply = fetch(server, f"{path_of(server)}?{query(args)}", headers={"Accept-Encoding": encoding})
            assert reply.header("Content-Encoding") == encoding
            body = decode(reply.body)
            root = assert_oai(body)
            got.append(_records(root))
            if "resumptionToken" in args:  # served ahead: its tail was compressed then, its head now
                tail = compression.tail_of(body, render.response_date_end(body))
                assert reply.body == compression.encode(body, encoding, tail) != compression.encode(body, encoding)
            if (tok := token(root)) is None or not tok.text:
                break
            args = {"verb": "ListRecords", "resumptionToken": tok.text}
            _wait_rendered(ahead)
        assert got == plain
        assert server.app.extensions["oai_lookahead"].hits - hits == len(plain) - 1


def test_a_page_rendered_ahead_says_when_it_is_sent(engine, live_server, tmp_path: Path) -> None:
    """3.2: responseDate is when the response was sent, not when a page read ahead was rendered."""
    populate(engine, 20)
    ahead = tmp_path / "ahead"
    server = live_server(page_size=7, lookahead_dir=str(ahead))
    _, first = get(server, verb="ListRecords", metadataPrefix="oai_dc")
    _wait_rendered(ahead)
    time.sleep(1.2)
    asked = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    _, second = get(server, verb="ListRecords", resumptionToken=token(first).text)
    assert server.app.extensions["oai_lookahead"].hits == 1
    assert response_date(second) >= asked > response_date(first)


# -- the store of pages itself -----------------------------------------------------------------

def _page(body: bytes = b"<page/>") -> Rendered:
    return Rendered(body, 'W/"x"', True, "next", datetime(2024, 1, 1))


def _start(start) -> bool:
    """Start what schedule() gave, as the endpoint does once its response is sent."""
    if start is None:
        return False
    start()
    return True


def _wait_rendered(directory: Path) -> None:
    deadline = time.monotonic() + 10
    while not [n for n in os.listdir(directory) if not n.startswith(".")]:
        assert time.monotonic() < deadline, "nothing was rendered ahead"
        time.sleep(0.01)


def test_the_latest_write_is_asked_at_most_once_a_second() -> None:
    asked: list[float] = []
    latest = [datetime(2024, 1, 1)]

    def ask() -> datetime:
        asked.append(time.monotonic())
        return latest[0]

    known = LatestWrite(ask, interval=0.3)
    assert known.before(datetime(2024, 1, 2)) and len(asked) == 1
    latest[0] = datetime(2024, 1, 3)  # written now
    assert known.before(datetime(2024, 1, 2)) and len(asked) == 1  # not known yet
    time.sleep(0.35)
    assert not known.before(datetime(2024, 1, 2)) and len(asked) == 2
    assert not known.before(datetime(2024, 1, 3))  # written in the second the rendering began: stale


def test_a_page_is_served_once_and_only_while_young(tmp_path: Path) -> None:
    ahead = LookAhead(tmp_path / "a", max_age=0.3)
    assert _start(ahead.schedule("k", _page))
    assert ahead.take("k", lambda page: True) == _page()
    assert ahead.take("k", lambda page: True) is None  # taken once
    assert _start(ahead.schedule("k", _page))
    time.sleep(0.5)
    assert ahead.take("k", lambda page: True) is None  # too old
    assert _start(ahead.schedule("k", _page))
    assert ahead.take("k", lambda page: False) is None  # not fresh
    assert (ahead.hits, ahead.stale, ahead.misses) == (1, 2, 1)


def test_a_page_keeps_its_compressed_tail(tmp_path: Path) -> None:
    body = b"<responseDate>2024-01-01T00:00:00Z</responseDate><p>" + b"x" * 1000 + b"</p>"
    page = replace(_page(body), tail=compression.tail_of(body, 51))
    ahead = LookAhead(tmp_path / "a")
    assert _start(ahead.schedule("k", lambda: page))
    assert ahead.take("k", lambda page: True) == page
    # a file whose compressed tail is cut short is no page
    with open(ahead._path("k"), "wb") as f:
        _write(f, page)
        f.truncate(f.tell() - 1)
    assert ahead.take("k", lambda page: True) is None and ahead.stale == 1


def test_a_request_waits_for_the_page_being_rendered(tmp_path: Path) -> None:
    ahead = LookAhead(tmp_path / "a")
    started = threading.Event()

    def slow() -> Rendered:
        started.set()
        time.sleep(0.4)
        return _page(b"<slow/>")

    assert _start(ahead.schedule("k", slow))
    started.wait(5)
    t = time.monotonic()
    assert ahead.take("k", lambda page: True).body == b"<slow/>"
    assert time.monotonic() - t > 0.2


def test_a_request_does_not_wait_for_a_stuck_renderer(tmp_path: Path) -> None:
    """A renderer stuck (on the database, say) holds its page's file locked: the request for that page
    waits a bounded time, then is answered as if nothing had been rendered ahead."""
    ahead = LookAhead(tmp_path / "a", wait=0.3)
    release = threading.Event()

    def stuck() -> Rendered:
        release.wait(10)
        return _page(b"<late/>")

    assert _start(ahead.schedule("k", stuck))
    t = time.monotonic()
    assert ahead.take("k", lambda page: True) is None
    assert 0.25 < time.monotonic() - t < 5 and ahead.stale == 1
    release.set()  # the renderer ends into the file the request gave up on: nothing is served from it
    time.sleep(0.2)
    assert _start(ahead.schedule("k", _page))
    assert ahead.take("k", lambda page: True) == _page()


def test_a_page_never_started_is_a_miss(tmp_path: Path) -> None:
    """Its response dropped without being closed: no request waits on its file, and the process
    renders ahead again."""
    ahead = LookAhead(tmp_path / "a")
    assert ahead.schedule("k", _page) is not None  # dropped at once, never started
    assert ahead.take("k", lambda page: True) is None and ahead.stale == 1
    assert _start(ahead.schedule("k", _page))
    assert ahead.take("k", lambda page: True) == _page()


def test_nothing_is_rendered_ahead_while_busy(tmp_path: Path) -> None:
    ahead = LookAhead(tmp_path / "a")
    with ahead.serving():
        arrived, done = threading.Event(), threading.Event()

        def another() -> None:  # a request served meanwhile, in a thread of its own
            with ahead.serving():
                arrived.set()
                done.wait(5)

        other = threading.Thread(target=another)
        other.start()
        arrived.wait(5)
        assert ahead.schedule("k", _page) is None  # busy now
        done.set()
        other.join()
        assert ahead.schedule("k", _page) is None  # alone again, but this request was not served alone
    with ahead.serving():
        assert _start(ahead.schedule("k", _page))


def test_failures_are_misses(tmp_path: Path, caplog) -> None:  # noqa: ANN001
    ahead = LookAhead(tmp_path / "error")
    assert _start(ahead.schedule("k", lambda: None))  # an OAI-PMH error: answered when asked
    assert ahead.take("k", lambda page: True) is None

    def broken() -> Rendered:
        raise RuntimeError("boom")

    ahead = LookAhead(tmp_path / "broken")
    with caplog.at_level("WARNING", logger="oai.web"):
        assert _start(ahead.schedule("k", broken))
        assert ahead.take("k", lambda page: True) is None
        assert [r.exc_info is not None for r in caplog.records] == [True]  # a bug: its traceback
        caplog.clear()

        def database_gone() -> Rendered:  # what a backend terminated mid-render raised (an outside audit)
            raise exc.OperationalError("SELECT 1", None, sqlite3.OperationalError("database is locked"))

        assert _start(ahead.schedule("k2", database_gone))
        assert ahead.take("k2", lambda page: True) is None
        assert [(r.exc_info, "the database unavailable" in r.getMessage()) for r in caplog.records] == [(None, True)]
    # a renderer killed half-way leaves its file cut short
    ahead = LookAhead(tmp_path / "cut")
    with open(ahead._path("k"), "wb") as f:
        _write(f, _page(b"<p>" + b"x" * 1000 + b"</p>"))
        f.truncate(f.tell() - 10)
    assert ahead.take("k", lambda page: True) is None and ahead.stale == 1


def test_a_directory_not_ours_alone_turns_read_ahead_off(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    os.chmod(shared, 0o777)
    ahead = LookAhead(shared)
    assert not ahead.usable and not ahead.schedule("k", _page) and ahead.take("k", lambda p: True) is None
    assert LookAhead(tmp_path / "private").usable
    # removed while in use (a cleaner of the temporary directory): made again
    ahead = LookAhead(tmp_path / "removed")
    (tmp_path / "removed").rmdir()
    assert ahead.take("k", lambda p: True) is None
    assert _start(ahead.schedule("k", _page)) and ahead.take("k", lambda p: True) == _page()


def test_a_directory_made_again_by_someone_else_is_not_used(tmp_path: Path) -> None:
    """Removed, then made again open to others (another user taking the name): nothing is read from it
    or written into it, though a page planted there looks fresh."""
    directory = tmp_path / "ahead"
    ahead = LookAhead(directory)
    assert _start(ahead.schedule("k", _page)) and ahead.take("k", lambda p: True) == _page()
    shutil.rmtree(directory)
    directory.mkdir()
    os.chmod(directory, 0o777)
    _plant(ahead._path("k"))
    assert ahead.take("k", lambda p: True) is None
    assert ahead.schedule("other", _page) is None and not ahead.usable


def _plant(path: Path, body: bytes = b"<planted/>", mode: int = 0o600) -> None:
    """A page file as another writer could make it: valid, and fresh for ever."""
    with open(os.open(path, os.O_WRONLY | os.O_CREAT, mode), "wb") as f:
        _write(f, Rendered(body, 'W/"p"', True, None, datetime(2099, 1, 1)))
    os.chmod(path, mode)


def test_only_files_of_ours_are_read(tmp_path: Path) -> None:
    ahead = LookAhead(tmp_path / "ahead")
    _plant(ahead._path("readable"), mode=0o644)  # not as we write them (0600)
    assert ahead.take("readable", lambda p: True) is None
    os.mkfifo(ahead._path("fifo"), 0o600)  # would block a reader for ever
    assert ahead.take("fifo", lambda p: True) is None
    _plant(tmp_path / "elsewhere")
    os.symlink(tmp_path / "elsewhere", ahead._path("link"))
    assert ahead.take("link", lambda p: True) is None
    if os.getuid() == 0:  # another user's file (as root, CI can make one)
        _plant(ahead._path("theirs"))
        os.chown(ahead._path("theirs"), 65534, 65534)
        assert ahead.take("theirs", lambda p: True) is None
    for head in (b"[1]\n", b'{"length": "12"}\n', b'{"length": 5}\nabc', b"\xff\n", b'{"length": 0, "etag": 1}\n'):
        ahead._path("bad").write_bytes(head)
        os.chmod(ahead._path("bad"), 0o600)
        assert ahead.take("bad", lambda p: True) is None, head
    assert ahead.hits == 0


def test_the_sweep_removes_only_old_files_of_ours(tmp_path: Path) -> None:
    directory = tmp_path / "ahead"
    ahead = LookAhead(directory, max_age=30)
    _plant(ahead._path("old"))
    _plant(ahead._path("young"))
    (directory / "notes.txt").write_text("not ours")
    old = time.time() - 60
    for name in (ahead._path("old").name, "notes.txt"):
        os.utime(directory / name, (old, old))
    ahead.sweep()
    assert sorted(os.listdir(directory)) == sorted(["notes.txt", ahead._path("young").name])
    assert default_directory("db", "/oai") != default_directory("db", "/other")


def test_list_identifiers_reads_ahead_too(engine, live_server, tmp_path: Path) -> None:
    kind = "ListIdentifiers"
    populate(engine, 12)
    server = live_server(page_size=5, lookahead_dir=str(tmp_path / "ahead"))
    _, root = get(server, verb=kind, metadataPrefix="oai_dc")
    got = [h.identifier for h in headers(root)]
    while (tok := token(root)) is not None and tok.text:
        _, root = get(server, verb=kind, resumptionToken=tok.text)
        got += [h.identifier for h in headers(root)]
    assert got == [ident(i) for i in range(12)]
    assert server.app.extensions["oai_lookahead"].hits == 2


def test_pages_are_keyed_by_the_database_file_not_its_url(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """`sqlite:///oai.sqlite3` names another file in each working directory (two servers started from two
    directories must not serve each other's pages); one file is one store whatever the URL says."""
    from sqlalchemy import create_engine

    from oai.web.endpoint import store_identity

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    in_a = store_identity(create_engine("sqlite:///oai.sqlite3"))
    monkeypatch.chdir(tmp_path / "b")
    in_b = store_identity(create_engine("sqlite:///oai.sqlite3"))
    assert in_a != in_b
    assert in_b == store_identity(create_engine(f"sqlite:///{tmp_path / 'b' / 'oai.sqlite3'}"))
    assert "secret" not in store_identity(create_engine("postgresql+psycopg://u:secret@127.0.0.1/db"))
