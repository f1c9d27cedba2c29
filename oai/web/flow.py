"""Per-client flow control (OAI-PMH 3.1.2.2): past its share a client gets 503 with Retry-After."""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import deque


MAX_CLIENTS = 10_000  # clients remembered at once (memory bound)


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def client_key(address: str) -> str:
    """Who a limit counts: an IPv4 address, or an IPv6 address's /64 (one subscriber's network: an outside audit
    noted a /64 gives a client as many addresses as it wants). An IPv4 client seen through IPv6 (a dual-stack
    socket's ::ffff:a.b.c.d, NAT64's 64:ff9b::a.b.c.d) is its IPv4 address: as a /64 every IPv4 client shared
    one limit, and one of them could use it up for all (an outside audit)."""
    if ":" not in address:
        return address
    try:
        ip = ipaddress.IPv6Address(address.split("%", 1)[0])
    except ValueError:
        return address
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    if ip in _NAT64:
        return str(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))


class FlowControl:
    """At most `per_minute` requests per client in any 60 s window; 0 allows everything."""

    def __init__(self, per_minute: int, *, window: float = 60.0, max_clients: int = MAX_CLIENTS) -> None:
        self.per_minute = per_minute
        self.window = window
        self.max_clients = max_clients
        self._seen: dict[str, deque[float]] = {}  # least recently asking first
        self._lock = threading.Lock()

    def wait(self, client: str) -> int:
        """0 when `client` may be answered now, else the seconds until it may (its own, for Retry-After)."""
        if self.per_minute <= 0:
            return 0
        now = time.monotonic()
        key = client_key(client)
        with self._lock:
            hits = self._seen.pop(key, None)
            if hits is None:
                hits = deque()
                # Past the bound, the clients that asked least recently are forgotten, one for each newcomer:
                # clearing the whole table (as before) let anyone with many addresses reset everyone's count.
                while len(self._seen) >= self.max_clients:
                    del self._seen[next(iter(self._seen))]
            self._seen[key] = hits  # now the most recent
            while hits and now - hits[0] > self.window:
                hits.popleft()
            if len(hits) >= self.per_minute:
                return max(1, int(self.window - (now - hits[0])) + 1)
            hits.append(now)
            return 0
