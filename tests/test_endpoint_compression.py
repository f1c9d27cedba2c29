"""Response compression (OAI-PMH 3.1.3) negotiated from Accept-Encoding, and HTTP caching of
list pages (ETag, Cache-Control, If-None-Match), on both databases.
"""

from __future__ import annotations

import gzip
import io
import random
import re
import subprocess
import time
import zlib
from datetime import timedelta

import pytest
import urllib3
from endpoint_helpers import T0, X, dc_record, errors, fetch, get, path_of, query, token, write
from oaischema import assert_oai

from oai.web import compression

LIST = {"verb": "ListRecords", "metadataPrefix": "oai_dc"}


@pytest.fixture
def server(engine, live_server):  # noqa: ANN001, ANN201
    write(engine, [dc_record(f"oai:example.org:{i}", title="word " * 200) for i in range(8)], T0)
    return live_server(page_size=5)


def ask(server, accept: str | None, args=LIST):  # noqa: ANN001, ANN201
    headers = {} if accept is None else {"Accept-Encoding": accept}
    return fetch(server, f"{path_of(server)}?{query(args)}", headers=headers)


def without_date(body: bytes) -> bytes:
    body = re.sub(rb"<responseDate>[^<]*</responseDate>", b"", body)
    return re.sub(rb"<resumptionToken[^>]*>[^<]*</resumptionToken>", b"", body)


NEGOTIATED = [
    ("gzip", "gzip"),
    ("deflate", "deflate"),
    ("gzip, deflate", "gzip"),
    ("deflate;q=0.5, gzip;q=1.0", "gzip"),
    ("gzip;q=0.2, deflate;q=0.9", "deflate"),
    ("br, gzip;q=0.5", "gzip"),
    ("*", "gzip"),
]
IDENTITY = [None, "", "identity", "br", "gzip;q=0", "gzip;q=0, deflate;q=0", "compress"]


def test_compression_is_negotiated(server) -> None:  # noqa: ANN001
    plain = ask(server, None)
    for accept, encoding in NEGOTIATED:
        reply = ask(server, accept)
        assert reply.status == 200
        assert reply.header("Content-Encoding") == encoding, accept
        assert reply.header("Content-Type") == "text/xml; charset=utf-8"
        assert "Accept-Encoding" in reply.header("Vary")
        body = gzip.decompress(reply.body) if encoding == "gzip" else zlib.decompress(reply.body)
        assert_oai(body)
        assert without_date(body) == without_date(plain.body), accept
        assert len(reply.body) < len(body) / 4  # repetitive text really is compressed


def test_identity_otherwise(server) -> None:  # noqa: ANN001
    for accept in IDENTITY:
        reply = ask(server, accept)
        assert reply.status == 200
        assert reply.header("Content-Encoding") is None, accept
        assert "Accept-Encoding" in reply.header("Vary")
        assert_oai(reply.body)


def test_errors_are_compressed_too(server) -> None:  # noqa: ANN001
    reply = ask(server, "gzip", {"verb": "Nonsense"})
    assert reply.status == 200 and reply.header("Content-Encoding") == "gzip"
    assert "Accept-Encoding" in reply.header("Vary")
    root = assert_oai(gzip.decompress(reply.body))
    assert errors(root) == ["badVerb"]


def test_no_encoding_that_identify_does_not_declare(engine, live_server) -> None:
    write(engine, [dc_record("oai:example.org:1")], T0)
    server = live_server(compression="gzip")
    _, root = get(server, verb="Identify")
    assert [c.text for c in root.findall("oai:Identify/oai:compression", X)] == ["gzip"]
    reply = ask(server, "deflate")
    assert reply.header("Content-Encoding") is None
    assert_oai(reply.body)
    server = live_server(compression="")
    _, root = get(server, verb="Identify")
    assert root.findall("oai:Identify/oai:compression", X) == []
    reply = ask(server, "gzip, deflate")
    assert reply.header("Content-Encoding") is None
    assert_oai(reply.body)


def test_list_pages_carry_validators(engine, server) -> None:  # noqa: ANN001
    first = ask(server, None)
    etag = first.header("ETag")
    assert etag and first.header("Cache-Control") == "no-cache"
    root = assert_oai(first.body)
    args = {"verb": "ListRecords", "resumptionToken": token(root).text}
    page2 = fetch(server, f"{path_of(server)}?{query(args)}")
    assert page2.status == 200 and page2.header("ETag") and page2.header("ETag") != etag
    assert "max-age" in page2.header("Cache-Control")  # a resumed page lies in a frozen window
    assert_oai(page2.body)
    # the same pages seconds later (their tokens' text differs): same validators; with them,
    # 304 and no body
    time.sleep(1.1)
    again = ask(server, None)
    assert token(assert_oai(again.body)).text != token(root).text
    assert again.header("ETag") == etag
    for target, tag in ((LIST, etag), (args, page2.header("ETag"))):
        reply = fetch(server, f"{path_of(server)}?{query(target)}", headers={"If-None-Match": tag})
        assert reply.status == 304 and reply.body == b"" and reply.header("ETag") == tag
    # the same request as a POST: its precondition fails with 412, not 304 (RFC 9110 13.1.2; an outside audit)
    posted = fetch(server, path_of(server), method="POST", body=query(LIST).encode(),
                   headers={"If-None-Match": etag, "Content-Type": "application/x-www-form-urlencoded"})
    assert posted.status == 412 and posted.body == b""
    # a validator for something else does not match
    reply = fetch(server, f"{path_of(server)}?{query(LIST)}", headers={"If-None-Match": 'W/"other"'})
    assert reply.status == 200
    assert_oai(reply.body)
    # when a record on the first page changes, the first page's validator changes
    write(engine, [dc_record("oai:example.org:0", title="new title")], T0 + timedelta(hours=1))
    assert ask(server, None).header("ETag") != etag
    reply = fetch(server, f"{path_of(server)}?{query(LIST)}", headers={"If-None-Match": etag})
    assert reply.status == 200
    assert_oai(reply.body)


def test_get_record_has_a_validator_too(server) -> None:  # noqa: ANN001
    args = {"verb": "GetRecord", "metadataPrefix": "oai_dc", "identifier": "oai:example.org:3"}
    reply = fetch(server, f"{path_of(server)}?{query(args)}")
    assert reply.status == 200 and reply.header("ETag")
    assert_oai(reply.body)
    again = fetch(server, f"{path_of(server)}?{query(args)}", headers={"If-None-Match": reply.header("ETag")})
    assert again.status == 304


def test_a_record_changed_within_the_same_second_changes_the_validators(engine, server) -> None:  # noqa: ANN001
    """Datestamps are in seconds: an outside audit wrote two versions of a record in one second, and revalidating with
    the first one's validator got 304 for the page holding the second (a cache kept the old metadata)."""
    args = {"verb": "GetRecord", "metadataPrefix": "oai_dc", "identifier": "oai:example.org:3"}
    before = {"record": fetch(server, f"{path_of(server)}?{query(args)}").header("ETag"),
              "list": ask(server, None).header("ETag"),
              "headers": ask(server, None, {"verb": "ListIdentifiers", "metadataPrefix": "oai_dc"}).header("ETag")}
    write(engine, [dc_record("oai:example.org:3", title="corrected")], T0)  # the datestamp it had
    record = fetch(server, f"{path_of(server)}?{query(args)}", headers={"If-None-Match": before["record"]})
    assert record.status == 200 and b"corrected" in record.body and record.header("ETag") != before["record"]
    page = fetch(server, f"{path_of(server)}?{query(LIST)}", headers={"If-None-Match": before["list"]})
    assert page.status == 200 and b"corrected" in page.body
    # ListIdentifiers serves headers only, which did not change: its validator holds
    assert ask(server, None, {"verb": "ListIdentifiers", "metadataPrefix": "oai_dc"}).header("ETag") == before["headers"]


# -- a page's tail compressed ahead (oai/web/compression.py) ---------------------------------------

def _decoders(encoding: str, data: bytes) -> dict[str, bytes]:
    """`data` decoded by what harvesters decode with: Python's gzip/zlib, urllib3 (requests, so sickle), GNU gzip."""
    decoded = {"zlib": gzip.decompress(data) if encoding == "gzip" else zlib.decompress(data)}
    response = urllib3.HTTPResponse(body=io.BytesIO(data), headers={"Content-Encoding": encoding},
                                    preload_content=False, decode_content=True)
    decoded["urllib3"] = response.read()
    if encoding == "gzip":  # GNU gzip, a decoder of its own
        decoded["gunzip"] = subprocess.run(["gzip", "-dc"], input=data, capture_output=True, check=True).stdout
    return decoded


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_tail_compressed_ahead_decodes_to_the_whole_body(encoding: str) -> None:
    rng = random.Random(7)
    bodies = [b"", b"<a/>", "<responseDate>2024-01-01T00:00:00Z</responseDate>\n<x>Лето</x>".encode() * 50,
              bytes(rng.randrange(256) for _ in range(70_000))]  # incompressible: stored blocks
    for body in bodies:
        for split in sorted({0, 1, len(body) // 3, len(body) - 1, len(body)} & set(range(len(body) + 1))):
            tail = compression.tail_of(body, split)
            sent = compression.encode(body, encoding, tail)
            for decoder, got in _decoders(encoding, sent).items():
                assert got == body, (decoder, len(body), split)
