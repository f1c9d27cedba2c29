"""The rate limit's memory of clients (oai/web/flow.py): bounded without letting anyone reset it."""

from __future__ import annotations

from oai.web.flow import FlowControl, client_key


def test_many_other_clients_do_not_reset_a_limited_one() -> None:
    """An outside audit sent requests from 10,002 addresses: the table was cleared at 10,000 and a client past its
    limit had it back. Now the least recently asking clients are forgotten, one for each newcomer."""
    flow = FlowControl(2, max_clients=5)
    assert [flow.wait("192.0.2.1") for _ in range(3)][:2] == [0, 0]
    for i in range(50):
        flow.wait(f"198.51.100.{i}")
        assert flow.wait("192.0.2.1") > 0, i  # still limited: it keeps asking, so it is never the one forgotten
    assert len(flow._seen) == 5  # noqa: SLF001 - the bound holds


def test_an_ipv6_client_is_counted_by_its_64() -> None:
    assert client_key("2001:db8:1:2::1") == client_key("2001:db8:1:2:ffff:ffff:ffff:ffff") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("192.0.2.7") == "192.0.2.7" and client_key("not an address") == "not an address"
    # IPv4 clients seen through IPv6 are counted apart (an outside audit: as one /64 they shared one limit)
    assert client_key("::ffff:9.9.9.9") == "9.9.9.9" and client_key("::ffff:8.8.8.8") == "8.8.8.8"
    assert client_key("64:ff9b::203.0.113.5") == "203.0.113.5"
    assert client_key("fe80::1%eth0") == "fe80::/64"
    flow = FlowControl(2)
    assert [flow.wait(f"2001:db8::{i}") > 0 for i in (1, 2, 3)] == [False, False, True]
