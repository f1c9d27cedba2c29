"""Flow control (OAI-PMH 3.5): keyset pages, completeListSize and cursor, the empty last token,
idempotent and stateless tokens, and every way a token can be bad. Over HTTP on both databases,
and through the verbs directly where the clock has to move.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from endpoint_helpers import (
    SECRET,
    T0,
    context,
    dc_record,
    errors,
    get,
    identifiers,
    ident,
    jats_record,
    populate,
    request_attrs,
    response_date,
    stamp,
    token,
    write,
)
from oaischema import assert_oai

from oai.protocol import render
from oai.protocol.arguments import OAIRequest
from oai.protocol.errors import BadResumptionToken, NoRecordsMatch
from oai.protocol.tokens import TokenCodec
from oai.protocol.verbs import list_identifiers, list_records, list_sets
from oai.store.engine import transaction
from oai.store.records import delete_record, set_info

ROOT = Path(__file__).resolve().parents[1]
UTC_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def walk(server, verb: str = "ListIdentifiers", **args: str) -> list[tuple[list[str], dict, object]]:  # noqa: ANN001
    """Every page as (identifiers, resumptionToken attributes and text, responseDate)."""
    out = []
    _, root = get(server, verb=verb, **args)
    while True:
        assert errors(root) == [], errors(root)
        tok = token(root)
        info = None if tok is None else {**tok.attrib, "text": tok.text or ""}
        out.append((identifiers(root), info, response_date(root)))
        if info is None or not info["text"]:
            return out
        _, root = get(server, verb=verb, resumptionToken=info["text"])
        assert request_attrs(root) == {"verb": verb, "resumptionToken": info["text"]}


@pytest.mark.parametrize("verb", ["ListIdentifiers", "ListRecords"])
def test_pages_count_and_cursor(engine, live_server, verb: str) -> None:
    made = populate(engine, 100, per_stamp=30)  # page boundaries fall inside runs of equal datestamps
    server = live_server(page_size=37)
    pages = walk(server, verb, metadataPrefix="oai_dc")
    assert [len(ids) for ids, _, _ in pages] == [37, 37, 26]
    assert [ident for ids, _, _ in pages for ident in ids] == [g.identifier for g in made]
    for number, (_, info, when) in enumerate(pages):
        assert info["completeListSize"] == "100"
        assert info["cursor"] == str(37 * number)  # records served before this page
        if number < 2:
            assert info["text"]
            # 3.5: a token that expires says when; ours last at least a day
            expires = datetime.strptime(info["expirationDate"], UTC_FORMAT)
            assert expires >= when + timedelta(hours=24)
        else:
            assert info["text"] == "" and "expirationDate" not in info  # the list is complete


def test_exact_multiples_never_give_an_empty_page(engine, live_server) -> None:
    populate(engine, 74, per_stamp=10)
    server = live_server(page_size=37)
    pages = walk(server, metadataPrefix="oai_dc")
    assert [len(ids) for ids, _, _ in pages] == [37, 37]
    assert pages[-1][1] == {"completeListSize": "74", "cursor": "37", "text": ""}


def test_a_single_page_has_no_token(engine, live_server) -> None:
    populate(engine, 37, per_stamp=10)
    pages = walk(live_server(page_size=37), metadataPrefix="oai_dc")
    assert len(pages) == 1 and len(pages[0][0]) == 37 and pages[0][1] is None


def test_set_lists_page_too(engine, live_server) -> None:
    made = populate(engine, 90, per_stamp=7, sets=[("a:x",), ("a:y",), ("b",)])
    pages = walk(live_server(page_size=11), metadataPrefix="oai_dc", set="a")
    expected = [g.identifier for g in made if g.sets[0].startswith("a:")]
    assert [i for ids, _, _ in pages for i in ids] == expected
    assert {info["completeListSize"] for _, info, _ in pages} == {str(len(expected))}


def test_the_same_token_gives_the_same_page(engine, live_server) -> None:
    populate(engine, 50, per_stamp=5)
    server = live_server(page_size=20)
    _, first = get(server, verb="ListRecords", metadataPrefix="oai_dc")
    tok = token(first).text
    reply1, again1 = get(server, verb="ListRecords", resumptionToken=tok)
    reply2, again2 = get(server, verb="ListRecords", resumptionToken=tok)
    assert identifiers(again1) == identifiers(again2) == [ident(i) for i in range(20, 40)]
    t1, t2 = token(again1), token(again2)
    assert (t1.get("cursor"), t1.get("completeListSize")) == (t2.get("cursor"), t2.get("completeListSize")) == ("20", "50")
    # both next tokens continue the same way
    ids = [identifiers(get(server, verb="ListRecords", resumptionToken=t.text)[1]) for t in (t1, t2)]
    assert ids[0] == ids[1] == [ident(i) for i in range(40, 50)]


SERVE = """
import sys
from werkzeug.serving import make_server
from oai.web.app import create_app
app = create_app({"database_url": sys.argv[1], "page_size": int(sys.argv[2])})
server = make_server("127.0.0.1", 0, app, threaded=True)
print(server.server_port, flush=True)
server.serve_forever(0.05)
"""


@pytest.fixture
def other_process(database_url: str):  # noqa: ANN201
    """A second server, in its own process, on the same database (and so the same token secret)."""
    procs: list[subprocess.Popen] = []

    def start(page_size: int) -> SimpleNamespace:
        proc = subprocess.Popen([sys.executable, "-c", SERVE, database_url, str(page_size)],
                                stdout=subprocess.PIPE, cwd=ROOT, text=True)
        procs.append(proc)
        port = int(proc.stdout.readline())
        return SimpleNamespace(port=port, url=f"http://127.0.0.1:{port}/oai")

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()


def test_tokens_continue_on_another_server_process(engine, live_server, other_process) -> None:
    made = populate(engine, 60, per_stamp=9)
    here, there = live_server(page_size=13), other_process(13)
    _, root = get(here, verb="ListIdentifiers", metadataPrefix="oai_dc")
    seen, servers, turn = identifiers(root), [there, here], 0
    while token(root) is not None and token(root).text:
        _, root = get(servers[turn % 2], verb="ListIdentifiers", resumptionToken=token(root).text)
        assert errors(root) == []
        seen += identifiers(root)
        turn += 1
    assert turn == 4  # five pages, alternating processes
    assert seen == [g.identifier for g in made]


# --- bad tokens ------------------------------------------------------------------------------

def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _reencode(tok: str, change) -> str:  # noqa: ANN001
    """The token with its body changed and its signature kept."""
    body, sig = tok.split(".")
    version, fields = json.loads(_unb64(body))
    version, fields = change(version, fields)
    return _b64(json.dumps([version, fields], separators=(",", ":"), sort_keys=True).encode()) + "." + sig


def _resign(codec: TokenCodec, version: int, fields: dict) -> str:
    body = json.dumps([version, fields], separators=(",", ":"), sort_keys=True).encode()
    return f"{_b64(body)}.{_b64(codec._sign(body))}"


def test_a_list_from_before_1970_goes_on_past_its_first_page(engine, live_server) -> None:
    """A token's times are seconds since 1970, negative before it: `from` may be any day from the year 1
    (a review found the range check of signed tokens refusing them)."""
    populate(engine, 20)
    server = live_server(page_size=7)
    for start in ("1969-12-31", "0001-01-01", "1900-01-01T00:00:00Z"):
        _, first = get(server, verb="ListRecords", metadataPrefix="oai_dc", **{"from": start})
        _, second = get(server, verb="ListRecords", resumptionToken=token(first).text)
        assert errors(second) == [] and len(identifiers(second)) == 7, start


def test_bad_tokens(engine, live_server) -> None:
    populate(engine, 30, per_stamp=5)
    with transaction(engine) as s:
        set_info(s, "s1", "S1")
        set_info(s, "s2", "S2")
    server = live_server(page_size=10, page_size_listsets=1, secret_key=SECRET.decode())
    _, root = get(server, verb="ListRecords", metadataPrefix="oai_dc")
    tok = token(root).text
    _, root = get(server, verb="ListSets")
    sets_tok = token(root).text
    body, sig = tok.split(".")
    _, fields = json.loads(_unb64(body))
    ours = TokenCodec(SECRET, timedelta(hours=72))
    bad = {
        "tampered cursor": _reencode(tok, lambda v, f: (v, {**f, "cursor": 0})),
        "tampered position": _reencode(tok, lambda v, f: (v, {**f, "after_id": f["after_id"] - 5})),
        "tampered until": _reencode(tok, lambda v, f: (v, {**f, "until": f["until"] + 86400})),
        "tampered signature": body + "." + ("A" if sig[0] != "A" else "B") + sig[1:],
        "truncated signature": tok[:-2],
        "truncated body": body[:-4] + "." + sig,
        "body only": body,
        "half": tok[: len(tok) // 2],
        "extra part": tok + ".x",
        "foreign secret": _resign(TokenCodec(b"another-repository-secret!", timedelta(hours=72)), 1, fields),
        "old version": _resign(ours, 0, fields),
        "future version": _resign(ours, 2, fields),
        "not json": f"{_b64(b'hello')}.{_b64(ours._sign(b'hello'))}",
        # nested deeper than json can read (RecursionError): a 500 it was, for whoever holds the secret (an audit)
        "nested too deep": f"{_b64(b'[' * 20000 + b']' * 20000)}.{_b64(ours._sign(b'[' * 20000 + b']' * 20000))}",
        "wrong shape": _resign(ours, 1, {**fields, "surprise": 1}),
        # signed with our secret, but out of range: an overflow deep inside, not a 500
        "datestamp before the epoch": _resign(ours, 1, {**fields, "after_datestamp": -10**12}),
        "datestamp past 9999": _resign(ours, 1, {**fields, "after_datestamp": 10**15}),
        "until past 9999": _resign(ours, 1, {**fields, "until": 10**13}),
        "id past 64 bits": _resign(ours, 1, {**fields, "after_id": 2**70}),
        # past what PostgreSQL's integer holds, and text PostgreSQL cannot hold (500s there, an outside audit)
        "id past 32 bits": _resign(ours, 1, {**fields, "after_id": 2**63 - 1}),
        "set with a NUL": _resign(ours, 1, {**fields, "set_spec": "s1\u0000"}),
        "set with a lone surrogate": _resign(ours, 1, {**fields, "set_spec": "\ud800"}),
        "no list size": _resign(ours, 1, {**fields, "complete_list_size": 0}),  # a positiveInteger in the schema
        "issued in 9999": _resign(ours, 1, {**fields, "issued": 253402300000}),  # + its lifetime: an overflow, a 500
        "issued tomorrow": _resign(ours, 1, {**fields, "issued": fields["issued"] + 86400}),
        "negative cursor": _resign(ours, 1, {**fields, "cursor": -1}),
        "id as text": _resign(ours, 1, {**fields, "after_id": "5"}),
        "id as a fraction": _resign(ours, 1, {**fields, "after_id": 5.5}),
        "id as true": _resign(ours, 1, {**fields, "after_id": True}),
        "prefix as a number": _resign(ours, 1, {**fields, "prefix": 7}),
        "non-ascii": tok[:-1] + "\u00e9",
        "spaces": f"{body} . {sig}",
        "huge": "A" * 5000 + "." + sig,
        "ListSets token": sets_tok,
    }
    for name, value in bad.items():
        _, root = get(server, verb="ListRecords", resumptionToken=value)
        assert errors(root) == ["badResumptionToken"], name
        assert request_attrs(root) == {"verb": "ListRecords", "resumptionToken": value}, name
    # a ListRecords token is not a ListIdentifiers or ListSets token
    for verb in ("ListIdentifiers", "ListSets"):
        _, root = get(server, verb=verb, resumptionToken=tok)
        assert errors(root) == ["badResumptionToken"], verb
    # ...and the genuine token still works
    _, root = get(server, verb="ListRecords", resumptionToken=tok)
    assert errors(root) == [] and len(identifiers(root)) == 10


# --- through the verbs, with a clock we control ----------------------------------------------

def _page(verb_fn, ctx, **args):  # noqa: ANN001, ANN003, ANN202
    verb = {"list_records": "ListRecords", "list_identifiers": "ListIdentifiers", "list_sets": "ListSets"}[
        verb_fn.__name__]
    result = verb_fn(OAIRequest(verb, args), ctx)
    root = assert_oai(render.render(ctx, verb, args, result, None).body)  # renders schema-valid
    return result, root


def test_tokens_last_72_hours_then_expire(engine) -> None:
    populate(engine, 30, per_stamp=5)
    issued = T0 + timedelta(days=30)
    ctx = context(engine, now=issued)
    try:
        result, root = _page(list_records, ctx, metadataPrefix="oai_dc")
    finally:
        ctx.session.close()
    assert result.token.expiration == issued + timedelta(hours=72)
    assert token(root).get("expirationDate") == stamp(issued + timedelta(hours=72))
    for later, valid in ((timedelta(hours=24), True), (timedelta(hours=72), True), (timedelta(hours=73), False)):
        ctx = context(engine, now=issued + later)
        try:
            if valid:
                page, _ = _page(list_records, ctx, resumptionToken=result.token.value)
                assert [i.identifier for i in page.items] == [ident(i) for i in range(10, 20)]
            else:
                with pytest.raises(BadResumptionToken, match="expired"):
                    list_records(OAIRequest("ListRecords", {"resumptionToken": result.token.value}), ctx)
        finally:
            ctx.session.close()


def test_list_sets_tokens_expire_too(engine) -> None:
    with transaction(engine) as s:
        for spec in ("a", "b", "c"):
            set_info(s, spec, spec)
    issued = T0
    ctx = context(engine, now=issued, page_size=2)
    try:
        first, _ = _page(list_sets, ctx)
    finally:
        ctx.session.close()
    ctx = context(engine, now=issued + timedelta(hours=73), page_size=2)
    try:
        with pytest.raises(BadResumptionToken):
            list_sets(OAIRequest("ListSets", {"resumptionToken": first.token.value}), ctx)
    finally:
        ctx.session.close()


def test_the_list_is_frozen_at_its_first_page(engine) -> None:
    populate(engine, 25, per_stamp=25)
    start = T0 + timedelta(days=1)
    ctx = context(engine, now=start)
    try:
        first, _ = _page(list_identifiers, ctx, metadataPrefix="oai_dc")
    finally:
        ctx.session.close()
    # new and changed records after the first page lie past the frozen `until`
    write(engine, [dc_record("oai:example.org:new"), dc_record(ident(20), title="changed")], start + timedelta(hours=1))
    seen, tok, now = [i.identifier for i in first.items], first.token.value, start + timedelta(hours=2)
    while tok:
        ctx = context(engine, now=now)
        try:
            page, _ = _page(list_identifiers, ctx, resumptionToken=tok)
        finally:
            ctx.session.close()
        assert page.token.complete_list_size == 25
        seen += [i.identifier for i in page.items]
        tok = page.token.value
    assert seen == [ident(i) for i in range(25) if i != 20]
    # ...and an incremental harvest from the first responseDate has both
    ctx = context(engine, now=now)
    try:
        later, _ = _page(list_identifiers, ctx, metadataPrefix="oai_dc", **{"from": stamp(start)})
    finally:
        ctx.session.close()
    assert [i.identifier for i in later.items] == [ident(20), "oai:example.org:new"]


def test_when_every_remaining_record_changed_the_list_goes_on(engine) -> None:
    populate(engine, 5, per_stamp=5)
    start = T0 + timedelta(days=1)
    ctx = context(engine, now=start, page_size=2)
    try:
        first, _ = _page(list_records, ctx, metadataPrefix="oai_dc")
    finally:
        ctx.session.close()
    assert [i.identifier for i in first.items] == [ident(0), ident(1)]
    changed_at = start + timedelta(minutes=5)
    write(engine, [dc_record(ident(2), title="new 2"), dc_record(ident(4), title="new 4")], changed_at)
    with transaction(engine) as s:
        delete_record(s, ident(3), now=changed_at)
    # the token's window now holds nothing: the page must not be empty nor an error
    seen, tok, now = [], first.token.value, start + timedelta(minutes=10)
    while tok:
        ctx = context(engine, now=now, page_size=2)
        try:
            page, root = _page(list_records, ctx, resumptionToken=tok)
        finally:
            ctx.session.close()
        seen += [(i.identifier, i.datestamp, i.deleted) for i in page.items]
        tok = page.token.value
    assert sorted(seen) == [(ident(2), changed_at, False), (ident(3), changed_at, True), (ident(4), changed_at, False)]
    assert token(root).get("completeListSize") == "5" and token(root).get("cursor") == "4"


def test_the_list_goes_on_only_within_the_requested_until(engine) -> None:
    populate(engine, 5, per_stamp=5)
    start = T0 + timedelta(days=1)
    # a bound in the past is kept: the list ends with the last record of the page before, again (an error
    # would end a harvest that has had every record, and a page cannot be empty); a future bound: up to now
    for until, expected in ((stamp(T0 + timedelta(hours=1)), None), ("9999-12-31", [ident(2), ident(3), ident(4)])):
        write(engine, [dc_record(ident(i), title=f"again {i}") for i in range(5)], T0)  # back in the window
        ctx = context(engine, now=start, page_size=2)
        try:
            first, _ = _page(list_identifiers, ctx, metadataPrefix="oai_dc", until=until)
        finally:
            ctx.session.close()
        write(engine, [dc_record(ident(i), title=f"changed {i} {until}") for i in (2, 3, 4)],
              start + timedelta(minutes=5))
        ctx = context(engine, now=start + timedelta(minutes=10), page_size=2)
        try:
            if expected is None:
                page, root = _page(list_identifiers, ctx, resumptionToken=first.token.value)
                assert [i.identifier for i in page.items] == [ident(1)] and page.token.value == ""
                assert (token(root).get("completeListSize"), token(root).get("cursor")) == ("5", "2")
            else:
                page, _ = _page(list_identifiers, ctx, resumptionToken=first.token.value)
                assert [i.identifier for i in page.items] == expected[:2]
        finally:
            ctx.session.close()


def test_a_set_list_whose_remaining_records_left_the_set_still_ends(engine) -> None:
    """An outside review: the records left for a token's next page all left the list's set meanwhile; the list
    answered noRecordsMatch, which sickle raises mid-list. It ends with the last record served, again."""
    populate(engine, 5, per_stamp=5, sets=(("s",),))
    start = T0 + timedelta(days=1)
    ctx = context(engine, now=start, page_size=2)
    try:
        first, _ = _page(list_records, ctx, metadataPrefix="oai_dc", set="s")
    finally:
        ctx.session.close()
    assert [i.identifier for i in first.items] == [ident(0), ident(1)]
    write(engine, [dc_record(ident(i)) for i in (2, 3, 4)], start + timedelta(minutes=5))  # out of s
    ctx = context(engine, now=start + timedelta(minutes=10), page_size=2)
    try:
        page, root = _page(list_records, ctx, resumptionToken=first.token.value)
    finally:
        ctx.session.close()
    assert [i.identifier for i in page.items] == [ident(1)] and page.token.value == ""
    assert (token(root).get("completeListSize"), token(root).get("cursor")) == ("5", "2")
    write(engine, [dc_record(ident(i)) for i in (0, 1)], start + timedelta(minutes=15))  # s is empty now
    ctx = context(engine, now=start + timedelta(minutes=20), page_size=2)
    try:
        with pytest.raises(NoRecordsMatch, match="they all changed after this list began"):
            list_records(OAIRequest("ListRecords", {"resumptionToken": first.token.value}), ctx)
    finally:
        ctx.session.close()


@pytest.mark.parametrize("rows_at_once", [500, 7])
def test_a_list_records_page_holds_at_most_page_max_bytes_of_metadata(engine, live_server, monkeypatch,
                                                                       rows_at_once: int) -> None:
    """A large page size does not make a page (and the worker rendering it) as large as its records: a page ends
    before the record that would take it past OAI_PAGE_MAX_BYTES, with one record at least. Read 7 rows at a time
    too, so that a page is filled over several statements."""
    from sqlalchemy import func, select

    from oai.protocol import verbs
    from oai.store.models import Record, RecordMetadata

    monkeypatch.setattr(verbs, "ROWS_AT_ONCE", rows_at_once)
    made = populate(engine, 100, per_stamp=30)
    with transaction(engine) as session:
        size = dict(session.execute(select(Record.identifier, func.length(RecordMetadata.xml))
                                    .join(RecordMetadata, RecordMetadata.record_id == Record.id)
                                    .where(RecordMetadata.prefix == "oai_dc")).all())
    budget = 5 * max(size.values())  # 5 or more records a page, never 100
    pages = walk(live_server(page_size=1000, page_max_bytes=budget), "ListRecords", metadataPrefix="oai_dc")
    assert [i for ids, _, _ in pages for i in ids] == [g.identifier for g in made]
    assert len(pages) > 2
    served = 0
    for number, (ids, info, _) in enumerate(pages):
        held = sum(size[i] for i in ids)
        assert held <= budget
        if number < len(pages) - 1:  # full: the next record would have passed the budget
            assert held + size[pages[number + 1][0][0]] > budget
            assert info["text"]
        else:
            assert info["text"] == ""
        assert (info["cursor"], info["completeListSize"]) == (str(served), "100")
        served += len(ids)
    # a record larger than the budget is served on a page of its own; identifiers alone are not limited
    write(engine, [jats_record(f"oai:example.org:jats-{i}") for i in range(3)], T0 + timedelta(days=30))
    small = live_server(page_size=1000, page_max_bytes=1024)
    assert [ids for ids, _, _ in walk(small, "ListRecords", metadataPrefix="jats")] == [
        [f"oai:example.org:jats-{i}"] for i in range(3)]
    assert [len(ids) for ids, _, _ in walk(small, metadataPrefix="oai_dc")] == [103]
