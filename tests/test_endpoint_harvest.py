"""Whole harvests of a few thousand records with real clients (sickle, oaipmh-scythe) in small
pages, every page schema-checked; then one while records change between pages (OAI-PMH 3.5.1).
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timedelta

import pytest
from endpoint_helpers import T0, CheckedSickle, dc_record, populate, stamp
from oaipmh_scythe import Scythe
from oaischema import OAI, assert_oai

from oai.store.engine import transaction
from oai.clock import utcnow
from oai.store.records import delete_record, upsert_records

pytestmark = pytest.mark.slow

N = 3000
PAGE = 37
SETS = [("journal:a",), ("journal:b",), ("misc",)]
UTC_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class CheckedScythe(Scythe):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.pages: list = []

    def harvest(self, query: dict[str, str]):  # noqa: ANN201
        response = super().harvest(query)
        assert response.http_response.status_code == 200
        self.pages.append(assert_oai(response.http_response.content))
        return response


def first_token(client) -> dict:  # noqa: ANN001
    return dict(client.pages[0].find(f".//{{{OAI}}}resumptionToken").attrib)


def response_date(page) -> datetime:  # noqa: ANN001
    return datetime.strptime(page.findtext(f"{{{OAI}}}responseDate"), UTC_FORMAT)


@pytest.fixture
def store(engine) -> list:  # noqa: ANN001
    # 20 datestamps of 150 records: many pages begin and end inside a run of equal datestamps
    return populate(engine, N, per_stamp=150, step=timedelta(hours=7), sets=SETS)


def test_complete_harvests(store, live_server) -> None:
    server = live_server(page_size=PAGE)
    made = {g.identifier: g for g in store}

    sickle = CheckedSickle(server.url)
    records = list(sickle.ListRecords(metadataPrefix="oai_dc"))
    counts = Counter(r.header.identifier for r in records)
    assert set(counts) == set(made) and set(counts.values()) == {1}  # every record exactly once
    assert len(records) == int(first_token(sickle)["completeListSize"]) == N
    assert len(sickle.pages) == -(-N // PAGE)
    assert all(r.metadata["title"] == [f"Title of {r.header.identifier}"] for r in records)
    assert all(r.header.datestamp == stamp(made[r.header.identifier].datestamp) for r in records)

    # a bounded harvest of one set, at seconds granularity; bounds are inclusive
    lo, hi = T0 + timedelta(hours=7 * 3), T0 + timedelta(hours=7 * 7)
    sickle = CheckedSickle(server.url)
    records = list(sickle.ListIdentifiers(metadataPrefix="oai_dc", set="journal", **{"from": stamp(lo), "until": stamp(hi)}))
    expected = {g.identifier for g in store if lo <= g.datestamp <= hi and g.sets[0].startswith("journal:")}
    assert Counter(h.identifier for h in records) == Counter(expected)
    assert len(records) == int(first_token(sickle)["completeListSize"]) == 5 * 100
    assert all(stamp(lo) <= h.datestamp <= stamp(hi) for h in records)

    # oaipmh-scythe: the whole list, then a window at day granularity (until=day covers that day)
    with CheckedScythe(server.url) as scythe:
        headers = list(scythe.list_identifiers(metadata_prefix="oai_dc"))
        assert Counter(h.identifier for h in headers) == Counter(list(made))
        assert len(headers) == int(first_token(scythe)["completeListSize"]) == N
        assert len(scythe.pages) == -(-N // PAGE)
        scythe.pages.clear()
        day = "2024-03-04"
        headers = list(scythe.list_identifiers(metadata_prefix="oai_dc", from_=day, until=day))
        expected = {g.identifier for g in store if str(g.datestamp.date()) == day}
        assert len(expected) == 4 * 150  # 2024-03-04T01:00:00Z ... 2024-03-04T22:00:00Z
        assert Counter(h.identifier for h in headers) == Counter(expected)
        assert len(headers) == int(first_token(scythe)["completeListSize"])
        assert all(h.datestamp.startswith(day) for h in headers)


def test_harvest_while_records_change(engine, store, live_server) -> None:
    server = live_server(page_size=PAGE)
    order = [g.identifier for g in store]  # the list's (datestamp, id) order
    served: set[str] = set()
    updated: set[str] = set()
    deleted: set[str] = set()
    added: set[str] = set()
    began: list[datetime] = []
    emptied: list[int] = []  # the page after which every record left in the window changed

    def change(behind: list[str], ahead: list[str]) -> None:
        # a second after the list began at the earliest, so that no change shares the frozen
        # `until` of the list (which would put it back into the list's window)
        now = max(utcnow(), began[0] + timedelta(seconds=1))
        number = len(added)
        with transaction(engine) as s:
            ups = [dc_record(i, sets=SETS[int(i[-5:]) % 3], title=f"changed {number}") for i in behind + ahead[:-1]]
            fresh = [dc_record(f"oai:example.org:new-{number + k}", sets=SETS[k % 3]) for k in range(2)]
            upsert_records(s, ups + fresh, now=now)
            delete_record(s, ahead[-1], now=now)
        while utcnow() < now:  # a datestamp is never in the server's future: wait until it is not
            time.sleep(0.02)
        updated.update(behind + ahead[:-1])
        deleted.add(ahead[-1])
        added.update(r.identifier for r in fresh)

    def between_pages(page: int, root) -> None:  # noqa: ANN001
        """Update and delete records behind and ahead of the harvest, add new ones; near the end,
        change every record the list has left, so that the next token's window is empty."""
        if page == 1:
            began.append(response_date(root))
        served.update(h.findtext(f"{{{OAI}}}identifier") for h in root.iter(f"{{{OAI}}}header"))
        tok = root.find(f".//{{{OAI}}}resumptionToken")
        if tok is None or not tok.text or emptied:
            return
        left = [i for i in order if i not in served and i not in updated | deleted]
        if len(left) <= PAGE + PAGE // 2:
            change([], left)
            emptied.append(page)
        elif page % 10 == 1:
            change(sorted(served - updated - deleted)[:5], left[60:64])

    sickle = CheckedSickle(server.url, on_page=lambda page: between_pages(page, sickle.pages[-1]))
    harvested = list(sickle.ListIdentifiers(metadataPrefix="oai_dc"))
    counts = Counter(h.identifier for h in harvested)
    changed = updated | deleted
    assert len(changed) > 60 and len(added) > 10 and emptied  # the harvest really ran into changes

    # nothing that existed unchanged is lost or doubled
    unchanged = set(order) - changed
    assert all(counts[i] == 1 for i in unchanged), [i for i in unchanged if counts[i] != 1][:5]
    # the last token's window held only records that had changed meanwhile: the list went on
    # with what changed (no empty page, no error) and ended with an empty token
    assert sickle.pages[-1].find(f".//{{{OAI}}}resumptionToken").text is None
    assert set(order[-PAGE:]) <= set(counts)
    gone = {h.identifier for h in harvested if h.deleted}
    assert gone and gone <= deleted  # a record served after its deletion is served as deleted

    # what changed is in this list, or in the incremental harvest from its first responseDate
    with CheckedScythe(server.url) as scythe:
        later = {h.identifier: h for h in scythe.list_identifiers(metadata_prefix="oai_dc", from_=stamp(began[0]))}
    for identifier in changed | added:
        assert identifier in later, identifier
        assert datetime.strptime(later[identifier].datestamp, UTC_FORMAT) >= began[0]
    assert set(later) == changed | added  # nothing else moved
    assert {i for i, h in later.items() if h.deleted} == deleted
