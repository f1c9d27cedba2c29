"""Whatever a client sends, the answer is HTTP 200 with a schema-valid OAI-PMH response
(OAI-PMH 3.1.2.1, 3.2, 3.6): arbitrary argument sets, repeated arguments, control characters,
NUL, lone surrogates and invalid UTF-8, huge values, random verbs, random POST bodies and types.
"""

from __future__ import annotations

import string
from datetime import timedelta
from urllib.parse import quote_from_bytes

from endpoint_helpers import (
    T0,
    X,
    dc_record,
    errors,
    fetch,
    get,
    jats_record,
    path_of,
    request_attrs,
    token,
    write,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oaischema import assert_oai

from oai.protocol.arguments import SPECS
from oai.store.engine import transaction
from oai.store.records import delete_record

NAMES = ["verb", "identifier", "metadataPrefix", "from", "until", "set", "resumptionToken"]
FUZZ = settings(max_examples=120, deadline=None, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.large_base_example, HealthCheck.filter_too_much])
MAX_TARGET = 60_000  # below the request-line limit of HTTP servers, which answer 414 themselves
MAX_BODY = 60_000  # below max_request_bytes (64 KiB), past which the answer is 413


def _store(engine, live_server):  # noqa: ANN001, ANN202
    write(engine, [dc_record(f"oai:example.org:{i}", sets=("a:b", "c")) for i in range(6)], T0)
    write(engine, [jats_record("oai:example.org:article", sets=("a",))], T0 + timedelta(hours=1))
    with transaction(engine) as s:
        delete_record(s, "oai:example.org:2", now=T0 + timedelta(hours=2))
    server = live_server(page_size=2)
    _, root = get(server, verb="ListRecords", metadataPrefix="oai_dc")
    return server, token(root).text


def values(real_token: str) -> st.SearchStrategy[bytes]:
    """Argument values as raw bytes (percent-encoded later): meaningful, random, broken, huge."""
    meaningful = st.sampled_from([
        *SPECS, "oai_dc", "jats", "marc21", "a", "a:b", "c", "nope", "oai:example.org:1",
        "oai:example.org:2", "oai:example.org:article", "2024-03-01", "2024-03-01T10:00:00Z",
        "9999-12-31", "0001-01-01", "2024-02-30", "2024-03-01T10:00:00", real_token, real_token[:-1] + "A",
        "\u0662\u0660\u0662\u0664-03-01",
    ]).map(lambda s: s.encode())
    text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=()), max_size=40)
    controls = st.text(alphabet=st.characters(max_codepoint=0x1F) | st.sampled_from("\x7f\x00\ufffe\uffff"),
                       max_size=10).map(lambda s: s.encode())
    surrogates = st.lists(st.integers(0xD800, 0xDFFF), min_size=1, max_size=3).map(
        lambda cps: "".join(map(chr, cps)).encode("utf-8", "surrogatepass"))  # lone surrogates, as UTF-8
    ascii_ = st.text(alphabet=string.printable, max_size=25).map(lambda s: s.encode())  # %, #, [, space...
    broken = st.binary(max_size=30)  # invalid UTF-8 and anything else
    huge = st.tuples(st.sampled_from(["x", "oai:example.org:", "\u00e9", real_token]), st.integers(500, 6000)).map(
        lambda t: (t[0] * t[1]).encode()[:20_000])
    return st.one_of(meaningful, text.map(lambda s: s.encode()), ascii_, controls, surrogates, broken, huge)


VALID = {
    "Identify": {},
    "ListMetadataFormats": {"identifier": "oai:example.org:1"},
    "ListSets": {},
    "ListIdentifiers": {"metadataPrefix": "oai_dc", "from": "2024-03-01", "until": "2024-03-02", "set": "a"},
    "ListRecords": {"metadataPrefix": "oai_dc", "from": "2024-03-01", "until": "2024-03-02", "set": "a"},
    "GetRecord": {"identifier": "oai:example.org:1", "metadataPrefix": "oai_dc"},
}


def arguments(real_token: str) -> st.SearchStrategy[list[tuple[bytes, bytes]]]:
    names = st.one_of(st.sampled_from(NAMES).map(str.encode), st.text(max_size=12).map(str.encode), st.binary(max_size=6))
    pair = st.tuples(names, values(real_token))
    verb = st.sampled_from([*SPECS, "", "listrecords", "Bogus"]).map(lambda v: (b"verb", v.encode()))
    # anything at all: a (possibly wrong, possibly repeated) verb and random arguments
    anything = st.tuples(st.lists(verb, max_size=2), st.lists(pair, max_size=6)).map(lambda t: t[0] + t[1])

    # a valid request with one value replaced, or one argument added: reaches the verbs' own rules
    @st.composite
    def nearly_valid(draw) -> list[tuple[bytes, bytes]]:  # noqa: ANN001
        name = draw(st.sampled_from(sorted(VALID)))
        args = {k: v.encode() for k, v in VALID[name].items() if k != "set" or draw(st.booleans())}
        if args and draw(st.booleans()):
            args[draw(st.sampled_from(sorted(args)))] = draw(values(real_token))
        else:
            args[draw(st.sampled_from(NAMES[1:]))] = draw(values(real_token))
        return [(b"verb", name.encode()), *((k.encode(), v) for k, v in args.items())]

    return st.one_of(anything, nearly_valid())


def encode(pairs: list[tuple[bytes, bytes]], raw: bool = False) -> bytes:
    """A form/query string; `raw` leaves bytes >= 0x80 unencoded (clients that forget to encode).

    Not 0x85 and 0xA0, which Python's http.server (the test server, not the app) splits the request
    line on, answering 400 before the app sees the request.
    """
    safe = bytes(c for c in range(0x80, 0x100) if c not in (0x85, 0xA0)) if raw else b""
    def q(b: bytes) -> str:
        return quote_from_bytes(b, safe="") if not raw else "".join(
            chr(c) if c in safe else quote_from_bytes(bytes([c]), safe="") for c in b)
    return "&".join(f"{q(k)}={q(v)}" for k, v in pairs).encode("latin-1")


def assert_answer(reply) -> None:  # noqa: ANN001
    assert reply.status == 200, (reply.status, reply.body[:300])
    assert reply.header("Content-Type") == "text/xml; charset=utf-8"
    root = assert_oai(reply.body)
    codes = errors(root)
    attrs = request_attrs(root)
    if {"badVerb", "badArgument"} & set(codes):
        assert attrs == {}  # 3.2: the base URL only
    else:
        assert attrs.get("verb") in SPECS
    if not codes:
        assert root.find(f"oai:{attrs['verb']}", X) is not None


def test_any_get_request(engine, live_server) -> None:
    server, real_token = _store(engine, live_server)
    base = path_of(server)

    @FUZZ
    @given(arguments(real_token), st.booleans(), st.booleans())
    def check(pairs, raw, trailing_amp) -> None:  # noqa: ANN001
        target = base.encode() + b"?" + encode(pairs, raw) + (b"&" if trailing_amp else b"")
        if len(target) > MAX_TARGET:
            target = target[:MAX_TARGET]
        assert_answer(fetch(server, target))

    check()


CONTENT_TYPES = st.one_of(
    st.sampled_from([
        "application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=utf-8",
        "application/x-www-form-urlencoded; charset=latin-1", "APPLICATION/X-WWW-FORM-URLENCODED",
        "text/plain", "text/xml", "application/json", "multipart/form-data", "multipart/form-data; boundary=xyz",
        "", ";", "application/x-www-form-urlencoded;;;",
    ]),
    st.text(alphabet=string.ascii_letters + string.digits + "/;=-+. ", max_size=40),
)


def test_any_post_request(engine, live_server) -> None:
    server, real_token = _store(engine, live_server)
    base = path_of(server)

    @FUZZ
    @given(st.one_of(arguments(real_token).map(encode), st.binary(max_size=3000)), CONTENT_TYPES, st.booleans())
    def check(body, content_type, with_query) -> None:  # noqa: ANN001
        target = base + ("?verb=Identify" if with_query else "")
        headers = {"Content-Type": content_type} if content_type else {}
        assert_answer(fetch(server, target, method="POST", body=body[:MAX_BODY], headers=headers))

    check()
