"""The prefetcher: pages in list order, fetched ahead of the loop, and nothing fetched after an end.

The fetch function here is a list of pages in memory, so that what was asked, and when, is known
exactly; the harvests in test_harvest_runs.py and test_harvest_quirks.py run it against real servers.
"""

from __future__ import annotations

import threading
import time

import pytest

from harvester.prefetch import Prefetcher


class Pages:
    """A list whose page i carries token `t{i+1}` (the last none); records each request."""

    def __init__(self, n: int, *, fail_at: int | None = None, tokens: list[str | None] | None = None) -> None:
        self.tokens = tokens or [f"t{i + 1}" for i in range(n - 1)] + [None]
        self.fail_at = fail_at
        self.asked: list[dict[str, str]] = []
        self.lock = threading.Lock()

    def fetch(self, params: dict[str, str]) -> list[tuple[int, str | None]]:
        with self.lock:
            self.asked.append(params)
            index = len(self.asked) - 1
        if index == self.fail_at:
            raise ValueError(f"page {index} failed")
        return [(index, self.tokens[index])]

    def wait_for(self, n: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.asked) < n:
            assert time.monotonic() < deadline, f"only {len(self.asked)} of {n} requests made"
            time.sleep(0.01)


def token_of(page: tuple[int, str | None]) -> str | None:
    return page[1]


def test_the_next_pages_are_fetched_while_one_is_being_written_and_come_in_order() -> None:
    pages = Pages(5)
    with Prefetcher(pages.fetch, token_of, {"verb": "first"}) as ahead:
        first = ahead.get()
        # The loop holds page 0 (writing it): page 1 waits in the queue and page 2 is fetched meanwhile.
        pages.wait_for(3)
        time.sleep(0.2)
        assert len(pages.asked) == 3, "fetched further ahead than one waiting page and one in flight"
        got = [first] + [ahead.get() for _ in range(4)]
    assert [index for index, _ in got] == [0, 1, 2, 3, 4]
    assert pages.asked == [{"verb": "first"}] + [{"resumptionToken": f"t{i}"} for i in range(1, 5)]


def test_an_error_is_handed_over_after_the_pages_before_it_and_nothing_more_is_asked() -> None:
    pages = Pages(6, fail_at=2)
    with Prefetcher(pages.fetch, token_of, {"verb": "first"}) as ahead:
        assert ahead.get()[0] == 0 and ahead.get()[0] == 1
        with pytest.raises(ValueError, match="page 2 failed"):
            ahead.get()
        time.sleep(0.2)
    assert len(pages.asked) == 3


def test_a_token_already_asked_with_ends_the_fetching() -> None:
    """A source that hands back a token it gave before: the loop sees the page and stops; the
    prefetcher must not go round the loop meanwhile."""
    pages = Pages(0, tokens=["a", "b", "a", "c", None])
    with Prefetcher(pages.fetch, token_of, {"verb": "first"}) as ahead:
        assert [ahead.get()[1] for _ in range(3)] == ["a", "b", "a"]
        time.sleep(0.2)
    assert pages.asked == [{"verb": "first"}, {"resumptionToken": "a"}, {"resumptionToken": "b"}]


def test_a_resumed_list_counts_its_first_token_as_asked() -> None:
    pages = Pages(0, tokens=["t0", None])
    with Prefetcher(pages.fetch, token_of, {"resumptionToken": "t0"}) as ahead:
        assert ahead.get() == (0, "t0")
        time.sleep(0.2)
    assert pages.asked == [{"resumptionToken": "t0"}]


def test_closing_while_pages_wait_stops_the_thread_promptly() -> None:
    pages = Pages(100)
    ahead = Prefetcher(pages.fetch, token_of, {"verb": "first"})
    pages.wait_for(2)
    started = time.monotonic()
    ahead.close()
    assert time.monotonic() - started < 2
    asked = len(pages.asked)
    time.sleep(0.2)
    assert len(pages.asked) == asked <= 3


def test_a_response_in_parts_is_handed_over_part_by_part_and_its_last_parts_token_followed() -> None:
    """A large response is read a part at a time (harvester.parse.read_large): the parts come in order, one
    waiting at a time, the token is the last part's, and a failure after some parts is handed over after them."""
    read: list[str] = []

    def fetch(params: dict[str, str]):  # noqa: ANN202
        if "resumptionToken" in params:
            read.append("second")
            yield ("second", None)
            return
        for part in ("a", "b", "c"):
            read.append(part)
            yield (part, "t1" if part == "c" else None)

    with Prefetcher(fetch, token_of, {"verb": "first"}) as ahead:
        assert ahead.get() == ("a", None)
        time.sleep(0.2)
        assert read == ["a", "b", "c"], "read further than one waiting part and one in the making"
        assert [ahead.get() for _ in range(3)] == [("b", None), ("c", "t1"), ("second", None)]

    def failing(params: dict[str, str]):  # noqa: ANN202, ARG001
        yield ("a", None)
        raise ValueError("the response broke off")

    with Prefetcher(failing, token_of, {"verb": "first"}) as ahead:
        assert ahead.get() == ("a", None)
        with pytest.raises(ValueError, match="broke off"):
            ahead.get()


def test_a_fetch_that_gives_no_page_is_an_error_handed_over_not_a_wait() -> None:
    """A review: the check sat outside the handed-over errors, so it would have ended the thread and left the
    loop waiting for a page for ever."""
    with Prefetcher(lambda params: iter(()), token_of, {"verb": "first"}) as ahead:
        with pytest.raises(RuntimeError, match="a fetch gave no page"):
            ahead.get()
