"""Identify (OAI-PMH 4.2) over HTTP, on both databases."""

from __future__ import annotations

import http.client
import socket
from datetime import timedelta

import pytest
from endpoint_helpers import T0, X, check, dc_record, errors, fetch, get, path_of, request_attrs, stamp, write

from oai.config import ConfigError
from oai.store.engine import transaction
from oai.store.records import delete_record

OAI_ID = {"id": "http://www.openarchives.org/OAI/2.0/oai-identifier"}


def test_identify_describes_the_repository(engine, live_server) -> None:
    write(engine, [dc_record("oai:example.org:late")], T0 + timedelta(days=3))
    write(engine, [dc_record("oai:example.org:early")], T0)
    server = live_server(repository_name="Journal <&> Archive", admin_email="a@example.org,b@example.org")
    _, root = get(server, verb="Identify")
    assert errors(root) == []
    assert request_attrs(root) == {"verb": "Identify"}
    assert root.findtext("oai:request", namespaces=X) == server.url
    ident = root.find("oai:Identify", X)
    assert ident.findtext("oai:repositoryName", namespaces=X) == "Journal <&> Archive"
    assert ident.findtext("oai:baseURL", namespaces=X) == server.url
    assert ident.findtext("oai:protocolVersion", namespaces=X) == "2.0"
    assert [e.text for e in ident.findall("oai:adminEmail", X)] == ["a@example.org", "b@example.org"]
    # 4.2: the guaranteed lower limit of all datestamps, at the repository's granularity.
    assert ident.findtext("oai:earliestDatestamp", namespaces=X) == stamp(T0)
    assert ident.findtext("oai:deletedRecord", namespaces=X) == "persistent"
    assert ident.findtext("oai:granularity", namespaces=X) == "YYYY-MM-DDThh:mm:ssZ"
    assert sorted(c.text for c in ident.findall("oai:compression", X)) == ["deflate", "gzip"]
    desc = ident.find("oai:description/id:oai-identifier", {**X, **OAI_ID})
    assert desc.findtext("id:repositoryIdentifier", namespaces=OAI_ID) == "example.org"
    # a record that exists, the first stored (an outside audit: validators ask GetRecord for the sample)
    assert desc.findtext("id:sampleIdentifier", namespaces=OAI_ID) == "oai:example.org:late"


def test_the_sample_identifier_is_a_live_record_of_ours(engine, live_server, monkeypatch) -> None:  # noqa: ANN001
    server = live_server()
    sample = ".//id:sampleIdentifier"
    assert get(server, verb="Identify")[1].findtext(sample, namespaces=OAI_ID) == "oai:example.org:10.1234/example"
    write(engine, [dc_record("urn:isbn:0451450523"), dc_record("oai:example.org:gone"),  # not ours; deleted below
                   dc_record("oai:example.org.uk:1"),  # another repository's
                   dc_record("oai:example.org:kept"), dc_record("oai:example.org:after")], T0)
    with transaction(engine) as s:
        delete_record(s, "oai:example.org:gone", now=T0 + timedelta(hours=1))
    assert get(server, verb="Identify")[1].findtext(sample, namespaces=OAI_ID) == "oai:example.org:kept"
    # looked for among the first records only: an aggregator with none of its own read every row (a review)
    from oai.store import queries

    monkeypatch.setattr(queries, "SAMPLE_SCAN", 3)
    assert get(server, verb="Identify")[1].findtext(sample, namespaces=OAI_ID) == "oai:example.org:10.1234/example"


def test_identify_earliest_datestamp_counts_deleted_records(engine, live_server) -> None:
    write(engine, [dc_record("oai:example.org:1"), dc_record("oai:example.org:2")], T0)
    with transaction(engine) as s:
        delete_record(s, "oai:example.org:1", now=T0 + timedelta(hours=1))
    write(engine, [dc_record("oai:example.org:2", title="changed")], T0 + timedelta(hours=2))
    _, root = get(live_server(), verb="Identify")
    # both records moved on; the earliest datestamp is now the deletion's
    assert root.findtext("oai:Identify/oai:earliestDatestamp", namespaces=X) == stamp(T0 + timedelta(hours=1))


def test_identify_follows_configuration(engine, live_server) -> None:
    server = live_server(compression="gzip", base_url="https://oai.example.org/oai", repository_identifier="oai.example.org")
    _, root = get(server, verb="Identify")
    ident = root.find("oai:Identify", X)
    assert ident.findtext("oai:baseURL", namespaces=X) == "https://oai.example.org/oai"
    assert root.findtext("oai:request", namespaces=X) == "https://oai.example.org/oai"
    assert [c.text for c in ident.findall("oai:compression", X)] == ["gzip"]
    assert ident.findtext("oai:description/id:oai-identifier/id:repositoryIdentifier",
                          namespaces={**X, **OAI_ID}) == "oai.example.org"
    # an empty repository still gives a datestamp (no records yet: the earliest is 'now')
    assert ident.findtext("oai:earliestDatestamp", namespaces=X).endswith("Z")


def test_only_admin_emails_identify_can_carry_are_accepted(engine, live_server) -> None:
    """OAI-PMH.xsd's emailType (\\S+@(\\S+\\.)+\\S+): an address it refuses would make every Identify invalid."""
    server = live_server(admin_email="a.b@example.org,x@mail.example.co.uk,o'brien+oai@uni.example")
    _, root = get(server, verb="Identify")  # schema-checked
    assert len(root.findall("oai:Identify/oai:adminEmail", X)) == 3
    for refused in ("admin@localhost", "a@b", "nobody", "a@.", "a b@example.org"):
        with pytest.raises(ConfigError, match="admin_email"):
            live_server(admin_email=refused)


def test_a_base_url_that_is_no_absolute_url_is_refused_at_start(engine, live_server) -> None:
    """An outside audit of a deployment: OAI_BASE_URL=repository.example.org/oai (no scheme) was served as
    the baseURL, which no harvester can follow; a negative rate limit was taken too."""
    server = live_server(base_url="http://127.0.0.1:8080/oai")  # a port is fine
    _, root = get(server, verb="Identify")
    assert root.findtext("oai:Identify/oai:baseURL", namespaces=X) == "http://127.0.0.1:8080/oai"
    for refused in ("repository.example.org/oai", "ftp://example.org/oai", "https:///oai",
                    "https://example.org/oai?verb=Identify"):
        with pytest.raises(ConfigError, match="base_url"):
            live_server(base_url=refused)
    with pytest.raises(ConfigError, match="rate_limit_per_minute"):
        live_server(rate_limit_per_minute=-5)
    # an outside audit: a blank repository identifier was taken (harvested records became oai::source:...), and a
    # negative body limit made every POST "larger than -5 bytes"
    for blank in ("", "   "):
        with pytest.raises(ConfigError, match="repository_identifier must be a domain name"):
            live_server(repository_identifier=blank)
    with pytest.raises(ConfigError, match="max_request_bytes must be at least 1024"):
        live_server(max_request_bytes=-5)
    for refused in (0, 1023):  # a page would hold one record, whatever the page size
        with pytest.raises(ConfigError, match="page_max_bytes must be at least 1024"):
            live_server(page_max_bytes=refused)
    with pytest.raises(ConfigError, match="page_max_bytes must be a whole number"):
        live_server(page_max_bytes="4M")


def test_identify_takes_no_arguments(engine, live_server) -> None:
    server = live_server()
    for extra in ({"metadataPrefix": "oai_dc"}, {"identifier": "oai:example.org:1"}, {"resumptionToken": "x"}):
        _, root = get(server, verb="Identify", **extra)
        assert errors(root) == ["badArgument"]
        assert request_attrs(root) == {}


def test_identify_names_each_friend_once(engine, live_server) -> None:
    """Two sources of one repository (its oai_dc and its jats) are one friend (friends.xsd: repositories)."""
    from harvester.client import FetchPolicy
    from harvester.sources import add_source

    write(engine, [dc_record("oai:example.org:1")], T0)
    server = live_server()
    policy = FetchPolicy(delay=0.0)
    for name, prefix in (("us-dc", "oai_dc"), ("us-jats", "jats")):
        add_source(engine, name, server.url, prefix=prefix, every_seconds=None, policy=policy)
    _, root = get(server, verb="Identify")
    friends = root.findall("oai:Identify/oai:description/fr:friends/fr:baseURL",
                           {**X, "fr": "http://www.openarchives.org/OAI/2.0/friends/"})
    assert [f.text for f in friends] == [server.url]


def test_the_site_root_sends_a_request_on_to_the_endpoint_with_its_arguments(engine, live_server) -> None:
    """A base URL given without /oai: the redirect must keep the verb (an outside audit found every request
    sent to Identify, so a harvester's ListMetadataFormats came back as Identify: 'offers none')."""
    from endpoint_helpers import fetch

    server = live_server()
    reply = fetch(server, "/?verb=ListMetadataFormats&identifier=oai%3Aexample.org%3A1")
    assert reply.status == 302
    assert reply.header("Location").endswith("/oai?verb=ListMetadataFormats&identifier=oai%3Aexample.org%3A1")
    assert fetch(server, "/").header("Location").endswith("/oai?verb=Identify")


def test_the_rate_limit_counts_each_client_behind_the_proxies_it_is_told_of(engine, live_server) -> None:
    """A review: behind the shipped nginx every request came from nginx's address, so a rate limit was one
    budget for the whole site. With proxy_hops the client the proxy names counts; without, the header is
    not believed (a client could name anyone)."""
    def ask(server, client: str) -> tuple[int, str | None]:  # noqa: ANN001
        reply = fetch(server, f"{path_of(server)}?verb=Identify", headers={"X-Forwarded-For": client})
        return reply.status, reply.header("Retry-After")

    behind = live_server(rate_limit_per_minute=2, proxy_hops=1)
    assert [ask(behind, "192.0.2.1")[0] for _ in range(3)] == [200, 200, 503]
    status, retry = ask(behind, "192.0.2.1")
    assert status == 503 and 1 <= int(retry) <= 61
    assert [ask(behind, "192.0.2.2")[0] for _ in range(2)] == [200, 200]  # another client has its own budget
    # the scheme a proxy names is believed when it is one (an outside audit had 'javascript:...' made the scheme)
    cases = (("https", "https"), ("HTTPS", "https"), ("javascript:alert(1)//", "http"), ("ftp", "http"))
    for i, (proto, scheme) in enumerate(cases):  # one client each: the limit is 2 a minute
        reply = fetch(behind, f"{path_of(behind)}?verb=Identify", headers={"X-Forwarded-Proto": proto,
                                                                           "X-Forwarded-For": f"198.51.100.{i}"})
        assert check(reply).findtext("oai:Identify/oai:baseURL", namespaces=X).startswith(f"{scheme}://"), proto
    direct = live_server(rate_limit_per_minute=2)
    assert [ask(direct, f"192.0.2.{i}")[0] for i in (1, 2, 3)] == [200, 200, 503]
    with pytest.raises(ConfigError, match="proxy_hops"):
        live_server(proxy_hops=9)


def test_records_named_under_another_repository_identifier_are_said_at_boot(engine, live_server, caplog) -> None:  # noqa: ANN001
    """An outside audit loaded the demo under example.org, then set OAI_REPOSITORY_IDENTIFIER: Identify announced
    the new namespace, every record kept the old one, and nothing said so."""
    write(engine, [dc_record("oai:example.org:1"), dc_record("oai:example.org:2")], T0)
    with caplog.at_level("WARNING", logger="oai.web"):
        live_server()
        assert not [r for r in caplog.records if "namespace Identify announces" in r.getMessage()]
        live_server(repository_identifier="other.example")
    said = [r.getMessage() for r in caplog.records if "namespace Identify announces" in r.getMessage()]
    assert said == ["2 of the 2 newest records named here are not under oai:other.example:, the namespace Identify "
                    "announces (such as oai:example.org:2): loaded or harvested with another "
                    "OAI_REPOSITORY_IDENTIFIER? Set that one again, or load them again under this one (harvesters "
                    "then see them as new records)"]


def test_nodes_signing_tokens_with_different_secrets_are_told_at_boot(engine, live_server, caplog) -> None:  # noqa: ANN001
    """An outside audit gave two nodes different OAI_SECRET_KEYs: a harvest sent from one to the other failed with
    badResumptionToken on page 2, and neither node had said anything."""
    def said() -> int:
        return sum("signs resumption tokens with another secret" in r.getMessage() for r in caplog.records)

    with caplog.at_level("WARNING", logger="oai.web"):
        live_server()  # the secret kept in the database
        live_server()
        assert said() == 0
        live_server(secret_key="node-two-secret-0123456789abcdef")
        assert said() == 1
        live_server(secret_key="node-two-secret-0123456789abcdef")  # the same as the last one to start
        assert said() == 1


def _raw(server, request: bytes) -> tuple[int, bytes]:  # noqa: ANN001
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(request)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, response.read()


def test_a_host_that_is_not_a_host_name_is_a_bad_request(engine, live_server) -> None:  # noqa: ANN001
    """RFC 9112 3.2: 400 for an HTTP/1.1 request without Host, or with one that is not a host name. An outside
    audit sent `Host: a<b>&c` and got 200 with `<baseURL>http:///oai</baseURL>`. HTTP/1.0 need not send one."""
    server = live_server()
    for host in (b"a<b>&c", b"x y", b"", b"a/b", b"ex%61mple.org"):
        status, body = _raw(server, b"GET /oai?verb=Identify HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n")
        assert status == 400 and b"Host header is missing or not a host name" in body, (host, status, body)
    status, _ = _raw(server, b"GET /oai?verb=Identify HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert status == 400
    for request, base in ((b"GET /oai?verb=Identify HTTP/1.0\r\n\r\n", f"http://127.0.0.1:{server.port}/oai"),
                          (b"GET /oai?verb=Identify HTTP/1.1\r\nHost: example.org:8080\r\nConnection: close\r\n\r\n",
                           "http://example.org:8080/oai")):
        status, body = _raw(server, request)
        assert status == 200 and f"<baseURL>{base}</baseURL>".encode() in body, (request, body[:300])
    assert _raw(server, b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n")[0] == 200  # a probe's request


def test_the_stylesheet_is_asked_for_under_the_public_base_url(engine, live_server) -> None:  # noqa: ANN001
    """An outside audit: behind a proxy that serves us under /prefix (OAI_BASE_URL .../prefix/oai), every
    response named /oai/static/oai2.xsl, which the proxy does not serve: a blank page in a browser."""
    pi = b'<?xml-stylesheet type="text/xsl" href="%s"?>'
    server = live_server()
    assert pi % b"/oai/static/oai2.xsl" in fetch(server, f"{path_of(server)}?verb=Identify").body
    prefixed = live_server(base_url="https://repo.example.org/prefix/oai")
    assert pi % b"/prefix/oai/static/oai2.xsl" in fetch(prefixed, f"{path_of(prefixed)}?verb=Identify").body
    assert fetch(prefixed, f"{path_of(prefixed)}/static/oai2.xsl").status == 200  # where the proxy sends it
