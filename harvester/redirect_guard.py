"""Redirects that may not lead a harvest into networks its source is not in.

An upstream is untrusted: answering with a redirect to 169.254.169.254 (a cloud host's metadata service), to
localhost or to a private address, it would have the harvester ask inside our own network, and the start of the
answer would land in the run's history as the reason the page was unusable (an outside audit did exactly that).
A redirect may go to a public address, or into the kind of network the source itself is in (a source on
localhost or on the intranet keeps its redirects there).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urljoin, urlsplit

import requests

PUBLIC = "public"


class RedirectRefused(requests.exceptions.InvalidURL):
    """A redirect into a network the source is not in: not followed, not retried."""


def network_kinds(host: str | None, port: int | None = None) -> set[str]:
    """The kinds of network `host` resolves to (loopback, link-local, private, reserved, public); empty when it
    does not resolve (the request then fails as it would anyway)."""
    if not host:
        return set()
    try:
        addresses = {ipaddress.ip_address(host.strip("[]"))}
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, port or 80, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            return set()
        addresses = {ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos}
    return {_kind(address) for address in addresses}


def _kind(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if isinstance(address, ipaddress.IPv6Address):  # an IPv4 address inside (mapped, 6to4) is judged as such
        address = address.ipv4_mapped or address.sixtofour or address
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast or address.is_unspecified or address.is_reserved:
        return "reserved"
    if address.is_private or not address.is_global:  # also shared address space, 100.64.0.0/10: is_private is
        return "private"  # False for it, and a cloud's metadata service is there (100.100.100.200; an audit)
    return PUBLIC


class GuardedSession(requests.Session):
    """A requests.Session that refuses, before connecting, a redirect into a network `source_url` is not in."""

    def __init__(self, source_url: str) -> None:
        super().__init__()
        self.source_url = source_url
        self._source_kinds: set[str] | None = None  # resolved at the first redirect

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        location = super().get_redirect_target(resp)
        if location is None:
            return None
        target = urlsplit(urljoin(resp.url, location))
        if target.scheme not in ("http", "https"):  # (requests said "No connection adapters were found")
            shown = urljoin(resp.url, location)
            raise RedirectRefused(f"redirected to {shown if len(shown) <= 200 else shown[:197] + '...'}, which is not "
                                  "an http or https address: not followed")
        try:
            port = target.port
        except ValueError:  # not a port: requests refuses the URL itself (InvalidURL)
            return location
        if self._source_kinds is None:
            source = urlsplit(self.source_url)
            self._source_kinds = network_kinds(source.hostname, source.port)
        kinds = network_kinds(target.hostname, port) - {PUBLIC}
        if kinds - self._source_kinds:
            shown = urljoin(resp.url, location)
            shown = shown if len(shown) <= 200 else shown[:197] + "..."
            raise RedirectRefused(
                f"redirected to {shown}, an address on a {'/'.join(sorted(kinds))} network, "
                "which the source is not on: not followed (an upstream may not send the harvester into our "
                "own network)")
        return location
