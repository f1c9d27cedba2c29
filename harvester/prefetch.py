"""The pages of one list, fetched ahead of the page loop by a thread of their own.

The loop commits page N while this thread fetches page N+1 and gives its records to the workers,
then fetches N+2: the workers' results for a page are usually in by the time the loop wants them.
At most `depth` fetched pages wait to be taken. The thread stops after the list's last page, after
a page whose token it has already asked with (the loop decides what a repeated token means), and
after handing over an error; the loop starts a new Prefetcher when it lists again.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

T = TypeVar("T")

_POLL = 0.1  # seconds between looks at the stop flag while blocked on the queue


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class Prefetcher(Generic[T]):
    """Fetches with `fetch(params)` from `params` on, following `token_of(page)` (None: the last page).
    `fetch` gives a response's pages, most often one; a large response comes in parts, and the token of the
    last one is followed."""

    def __init__(self, fetch: Callable[[dict[str, str]], Iterable[T]], token_of: Callable[[T], str | None],
                 params: dict[str, str], *, depth: int = 1, name: str = "prefetch") -> None:
        self._fetch, self._token_of = fetch, token_of
        self._pages: queue.Queue[T | _Failed] = queue.Queue(depth)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(dict(params),), name=name, daemon=True)
        self._thread.start()

    def __enter__(self) -> Prefetcher[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self) -> T:
        """The next page, in list order; raises what fetching it raised."""
        while True:
            try:
                item = self._pages.get(timeout=_POLL)
            except queue.Empty:
                if not self._thread.is_alive() and self._pages.empty():
                    raise RuntimeError("the prefetch thread ended without a page") from None
                continue
            if isinstance(item, _Failed):
                raise item.error
            return item

    def close(self) -> None:
        """Stop fetching; waits for a request in flight to end (its own timeout bounds that)."""
        self._closed.set()
        self._thread.join()

    def _run(self, params: dict[str, str]) -> None:
        asked = {params["resumptionToken"]} if "resumptionToken" in params else set()
        while not self._closed.is_set():
            page = None
            try:
                for page in self._fetch(params):  # noqa: B007 - the last one's token is followed
                    if not self._put(page):
                        return
                if page is None:  # (in here: raised in this thread, it would leave the loop waiting)
                    raise RuntimeError("a fetch gave no page")
            except BaseException as exc:  # noqa: BLE001 - handed to the loop, which raises it
                self._put(_Failed(exc))
                return
            token = self._token_of(page)
            if token is None or token in asked:
                return
            asked.add(token)
            params = {"resumptionToken": token}

    def _put(self, item: T | _Failed) -> bool:
        while not self._closed.is_set():
            try:
                self._pages.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False
