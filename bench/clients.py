"""Bench clients, loopback only: a timed sickle harvest, single-page probes, and a bounded load generator.

Nothing here starts servers or asserts limits; each function returns measurements.
"""

from __future__ import annotations

import http.client
import math
import statistics
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

from sickle import Sickle

from bench.static_server import next_token

IDENTITY = {"Accept-Encoding": "identity"}


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of `values`."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def _loopback(url: str) -> urllib.parse.SplitResult:
    parts = urllib.parse.urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"the bench only talks to loopback servers, not {url}")
    return parts


class _TimedSickle(Sickle):
    """Sickle that times each HTTP request (body included) and keeps every resumptionToken it sends."""

    def __init__(self, url: str, **kwargs: object) -> None:
        super().__init__(url, **kwargs)
        self.latencies: list[float] = []
        self.tokens: list[str] = []

    def _request(self, kwargs):  # noqa: ANN001, ANN202 - sickle's private hook
        if "resumptionToken" in kwargs:
            self.tokens.append(kwargs["resumptionToken"])
        t = time.perf_counter()
        response = super()._request(kwargs)
        _ = response.content
        self.latencies.append(time.perf_counter() - t)
        return response


@dataclass
class Harvest:
    records: int
    pages: int
    seconds: float
    latencies: list[float]
    tokens: list[str]  # tokens[k] fetches page k + 2

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


def sickle_harvest(url: str, prefix: str, *, encoding: str = "identity", max_records: int | None = None) -> Harvest:
    """A full ListRecords harvest with sickle, iterating (and so parsing) every record."""
    _loopback(url)
    client = _TimedSickle(url, headers={"Accept-Encoding": encoding}, timeout=300)
    n = 0
    t = time.perf_counter()
    for _record in client.ListRecords(metadataPrefix=prefix):
        n += 1
        if max_records and n >= max_records:
            break
    seconds = time.perf_counter() - t
    return Harvest(n, len(client.latencies), seconds, client.latencies, client.tokens)


class Probe:
    """One keep-alive connection for timing single pages (full body read, identity encoding)."""

    def __init__(self, url: str) -> None:
        self.parts = _loopback(url)
        self.conn = http.client.HTTPConnection(self.parts.hostname, self.parts.port, timeout=300)

    def get(self, params: dict[str, str]) -> tuple[float, bytes]:
        t = time.perf_counter()
        self.conn.request("GET", f"{self.parts.path}?{urllib.parse.urlencode(params)}", headers=IDENTITY)
        resp = self.conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status} for {params}")
        return time.perf_counter() - t, body

    def close(self) -> None:
        self.conn.close()


def depth_ratio(url: str, prefix: str, second: str, deep: str, *, rounds: int = 7) -> dict:
    """First page, second page and a 90%-deep page, interleaved `rounds` times; median latencies and ratios."""
    probe = Probe(url)
    requests = {
        "first": {"verb": "ListRecords", "metadataPrefix": prefix},
        "second": {"verb": "ListRecords", "resumptionToken": second},
        "deep": {"verb": "ListRecords", "resumptionToken": deep},
    }
    times: dict[str, list[float]] = {k: [] for k in requests}
    try:
        for name in requests:  # warm-up
            probe.get(requests[name])
        names = list(requests)
        for r in range(rounds):
            for name in names[r % 3:] + names[: r % 3]:  # rotate the order each round
                times[name].append(probe.get(requests[name])[0])
    finally:
        probe.close()
    ratios_first = [d / f for d, f in zip(times["deep"], times["first"], strict=True)]
    ratios_second = [d / s for d, s in zip(times["deep"], times["second"], strict=True)]
    return {
        "first_ms": 1000 * statistics.median(times["first"]),
        "second_ms": 1000 * statistics.median(times["second"]),
        "deep_ms": 1000 * statistics.median(times["deep"]),
        "deep_over_first": statistics.median(ratios_first),
        "deep_over_second": statistics.median(ratios_second),
        "rounds": rounds,
    }


@dataclass
class LoadResult:
    clients: int
    seconds: float
    pages: int
    errors: int
    latencies: list[float] = field(default_factory=list)

    @property
    def pages_per_s(self) -> float:
        return self.pages / self.seconds if self.seconds else 0.0


def load(url: str, starts: list[str], *, clients: int = 8, duration: float = 15.0, max_pages: int = 20000,
         warmup: float = 2.0) -> LoadResult:
    """`clients` threads, each following resumption tokens from its own start token (keep-alive, identity).

    Bounded by `duration` seconds and `max_pages` pages in all; a list that ends restarts at its start token.
    """
    parts = _loopback(url)
    lock = threading.Lock()
    latencies: list[float] = []
    counts = {"pages": 0, "errors": 0}
    stopped_at: list[float] = []
    begin = time.perf_counter() + warmup
    end = begin + duration
    stop = threading.Event()

    def client(i: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
        start = starts[i * len(starts) // clients]
        token = start
        try:
            while not stop.is_set():
                t = time.perf_counter()
                if t >= end:
                    return
                query = urllib.parse.urlencode({"verb": "ListRecords", "resumptionToken": token})
                try:
                    conn.request("GET", f"{parts.path}?{query}", headers=IDENTITY)
                    resp = conn.getresponse()
                    body = resp.read()
                    ok = resp.status == 200 and b"<record" in body
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
                    ok, body = False, b""
                done = time.perf_counter()
                if t >= begin and done <= end:
                    with lock:
                        if ok:
                            latencies.append(done - t)
                            counts["pages"] += 1
                        else:
                            counts["errors"] += 1
                        if counts["pages"] + counts["errors"] >= max_pages and not stop.is_set():
                            stopped_at.append(done)
                            stop.set()
                token = (next_token(body) if ok else None) or start
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=duration + warmup + 300)
    elapsed = (stopped_at[0] if stopped_at else min(time.perf_counter(), end)) - begin
    return LoadResult(clients, elapsed, counts["pages"], counts["errors"], latencies)
