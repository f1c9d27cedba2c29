"""Per-client flow control (OAI-PMH 3.1.2.2): past its share a client gets 503 with Retry-After."""

from __future__ import annotations

import threading
import time
from collections import deque


class FlowControl:
    """At most `per_minute` requests per client address in any 60 s window; 0 allows everything."""

    def __init__(self, per_minute: int, *, window: float = 60.0) -> None:
        self.per_minute = per_minute
        self.window = window
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def wait(self, client: str) -> int:
        """0 when `client` may be answered now, else the seconds until it may (its own, for Retry-After)."""
        if self.per_minute <= 0:
            return 0
        now = time.monotonic()
        with self._lock:
            if len(self._seen) > 10_000:  # bound memory under many clients
                self._seen.clear()
            hits = self._seen.setdefault(client, deque())
            while hits and now - hits[0] > self.window:
                hits.popleft()
            if len(hits) >= self.per_minute:
                return max(1, int(self.window - (now - hits[0])) + 1)
            hits.append(now)
            return 0
