"""The sickle-based client against a misbehaving upstream: retries, Retry-After, timeouts, pacing."""

from __future__ import annotations

import socket
import threading
import time
from datetime import datetime, timezone

import pytest
import sickle

from harvest_fixtures import policy
from harvester.client import SICKLE_SUPPORTED, FetchPolicy, HarvestClient, HostPacer
from harvester.errors import FetchError, Stopped, UpstreamOAIError
from upstream import faults, sample_records
from upstream.fixtures import upstream, upstream_factory  # noqa: F401  (fixtures)

LIST = {"metadataPrefix": "oai_dc"}


@pytest.fixture
def up(upstream):  # noqa: ANN001, ANN201, F811
    upstream.repo.add(*sample_records(12))
    upstream.repo.page_size = 5
    return upstream


def client(up, **overrides) -> HarvestClient:  # noqa: ANN001, ANN003
    return HarvestClient(up.base_url, policy(**overrides), pacer=HostPacer())


def statuses(up) -> list:  # noqa: ANN001
    return [e.status for e in up.log]


def test_the_client_is_sickle_and_goes_through_its_request_hook(up) -> None:  # noqa: ANN001
    c = client(up)
    assert isinstance(c, sickle.Sickle)
    low, high = SICKLE_SUPPORTED
    assert low <= tuple(int(p) for p in sickle.__version__.split(".")[:2]) < high
    response = c.harvest(verb="Identify")  # sickle's seam: an OAIResponse around requests' response
    assert isinstance(response, sickle.response.OAIResponse) and response.http_response.status_code == 200
    page = c.fetch("ListRecords", **LIST)
    assert len(page.records) == 5 and c.requests_sent == 2
    assert up.log[-1].headers["User-Agent"].startswith("oai-repository-harvester/")


def test_503_retry_after_is_waited_for(up) -> None:  # noqa: ANN001
    up.add_fault(faults.ServiceUnavailable(retry_after=1), verb="ListRecords")
    started = time.monotonic()
    page = client(up).fetch("ListRecords", **LIST)
    assert time.monotonic() - started >= 0.95
    assert len(page.records) == 5 and statuses(up) == [503, 200]


def test_retry_after_is_bounded(up) -> None:  # noqa: ANN001
    up.add_fault(faults.ServiceUnavailable(retry_after=3600), verb="ListRecords")
    started = time.monotonic()
    client(up, retry_after_max=0.2).fetch("ListRecords", **LIST)
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("value", ["\u00b2", "Fri, 31 Dec 99999 23:59:59 GMT", "soon"])
def test_a_retry_after_we_cannot_read_is_answered_with_our_own_backoff(up, value: str) -> None:  # noqa: ANN001
    """An outside audit: `Retry-After: \u00b2` passed str.isdigit(), and float() then raised out of the run."""
    up.add_fault(faults.ServiceUnavailable(retry_after=value), verb="ListRecords")
    started = time.monotonic()
    page = client(up).fetch("ListRecords", **LIST)
    assert len(page.records) == 5 and statuses(up) == [503, 200]
    assert time.monotonic() - started < 5


def test_a_retry_after_date_in_minus_0000_is_utc_whatever_the_local_zone(up, monkeypatch) -> None:  # noqa: ANN001
    """An outside audit: `Retry-After: <date> -0000` (RFC 5322's UTC with no zone said) was read as local time: under
    TZ=Asia/Irkutsk a wait of 120 s became -28,681 s, and the harvester came back at once."""
    from email.utils import format_datetime

    monkeypatch.setenv("TZ", "Asia/Irkutsk")
    time.tzset()
    try:
        when = format_datetime(datetime.fromtimestamp(time.time() + 3, timezone.utc).replace(tzinfo=None))
        assert when.endswith("-0000")
        up.add_fault(faults.ServiceUnavailable(retry_after=when), verb="ListRecords")
        started = time.monotonic()
        client(up).fetch("ListRecords", **LIST)
        assert time.monotonic() - started >= 1.5 and statuses(up) == [503, 200]
    finally:
        monkeypatch.undo()
        time.tzset()


def test_500s_are_retried_with_backoff(up) -> None:  # noqa: ANN001
    up.add_fault(faults.InternalServerError(), verb="ListRecords", times=2)
    client(up).fetch("ListRecords", **LIST)
    assert statuses(up) == [500, 500, 200]


def test_connection_reset_is_retried(up) -> None:  # noqa: ANN001
    up.add_fault(faults.ConnectionReset(), verb="ListRecords")
    client(up).fetch("ListRecords", **LIST)
    assert statuses(up) == [None, 200]


def test_slow_answers_time_out_and_are_retried(up) -> None:  # noqa: ANN001
    up.add_fault(faults.Slow(3.0), verb="ListRecords")
    started = time.monotonic()
    page = client(up, read_timeout=0.3).fetch("ListRecords", **LIST)
    # well before the slow answer would have come: the read timed out and the retry was answered
    assert len(page.records) == 5 and len(up.log) == 2 and time.monotonic() - started < 2.5


@pytest.mark.parametrize("length", ["full", "sent", None])
def test_truncated_bodies_are_retried(up, length: str | None) -> None:  # noqa: ANN001
    up.add_fault(faults.Truncated(0.6, content_length=length), verb="ListRecords")
    page = client(up).fetch("ListRecords", **LIST)
    assert len(page.records) == 5 and len(up.log) == 2


@pytest.mark.parametrize("fault", [faults.EmptyBody(), faults.NotXml(), faults.NotXml(b"broken xml", "text/xml")])
def test_empty_or_non_xml_200_is_an_error_that_is_retried(up, fault: faults.Fault) -> None:  # noqa: ANN001
    up.add_fault(fault, verb="ListRecords")
    assert len(client(up).fetch("ListRecords", **LIST).records) == 5
    assert statuses(up) == [200, 200]


def test_retries_are_bounded(up) -> None:  # noqa: ANN001
    up.add_fault(faults.NotXml(), verb="ListRecords", times=None)
    with pytest.raises(FetchError, match="after 3 attempt.*HTML page"):
        client(up, attempts=3).fetch("ListRecords", **LIST)
    assert len(up.log) == 3


def test_oai_errors_sent_with_a_non_200_status_are_read(up) -> None:  # noqa: ANN001
    up.add_fault(faults.OAIErrorReply("badResumptionToken", status=422), verb="ListRecords")
    with pytest.raises(UpstreamOAIError) as info:
        client(up).fetch("ListRecords", resumptionToken="nope")
    assert info.value.code == "badResumptionToken" and info.value.status == 422
    assert len(up.log) == 1  # not retried


def test_content_errors_with_4xx_are_not_retried(up) -> None:  # noqa: ANN001
    bad = HarvestClient(up.base_url.replace("/oai", "/nothing"), policy(), pacer=HostPacer())
    with pytest.raises(FetchError, match="HTTP 404.*base URL"):
        bad.fetch("Identify")
    assert bad.requests_sent == 1


def test_gzip_bodies_are_read(up) -> None:  # noqa: ANN001
    up.add_fault(faults.Gzip(force=True), times=None)
    page = client(up).fetch("ListRecords", **LIST)
    assert len(page.records) == 5 and "Gzip" in up.log[0].faults


def test_a_gzip_body_sent_without_content_encoding_is_unpacked_and_said_once(up, caplog) -> None:  # noqa: ANN001
    up.add_fault(faults.Gzip(force=True, declared=False), times=None)
    c = client(up)
    with caplog.at_level("WARNING", logger="harvester.client"):
        for _ in range(2):
            assert len(c.fetch("ListRecords", **LIST).records) == 5
    assert [r.getMessage() for r in caplog.records].count(
        "the source sends gzip-compressed answers without saying so (no Content-Encoding); unpacked") == 1


def test_an_undeclared_gzip_body_is_bounded_by_what_it_unpacks_to(up) -> None:  # noqa: ANN001
    up.add_fault(faults.HugePage(3 * 1024 * 1024), verb="ListRecords", times=None)
    up.add_fault(faults.Gzip(force=True, declared=False), times=None)
    c = client(up, max_response_mb=1)
    with pytest.raises(FetchError, match=r"larger than 1 MB \(OAI_HARVEST_MAX_RESPONSE_MB\); refused"):
        c.fetch("ListRecords", **LIST)
    assert c.requests_sent == 1


def test_an_undeclared_gzip_body_is_unpacked_into_a_file_as_a_declared_one_is(up) -> None:  # noqa: ANN001
    """An outside audit: a gzip body without Content-Encoding was unpacked whole in memory (286 MB for a bomb refused
    at 100 MB, where a declared one took 78 MB): past SPOOL_BYTES it waits in a temporary file, as a declared one."""
    from harvester.client import SPOOL_BYTES

    up.add_fault(faults.HugePage(SPOOL_BYTES + 1024 * 1024), verb="ListRecords", times=None)
    up.add_fault(faults.Gzip(force=True, declared=False), times=None)
    c = client(up)
    spooled = c.harvest(verb="ListRecords", **LIST).http_response.spooled
    assert spooled is not None and spooled.read(5) == b"<?xml"
    spooled.close()
    assert len(c.fetch("ListRecords", **LIST).records) == 5


def test_an_undeclared_gzip_body_cut_short_is_retried_and_said(up) -> None:  # noqa: ANN001
    up.add_fault(faults.Gzip(force=True, declared=False, cut=10), times=None)
    c = client(up, attempts=2)
    with pytest.raises(FetchError, match="after 2 attempt.*the compressed body could not be unpacked .*cut short"):
        c.fetch("Identify")
    assert c.requests_sent == 2


def test_politeness_delay_per_host(up) -> None:  # noqa: ANN001
    c = client(up, delay=0.25)
    started = time.monotonic()
    for _ in range(3):
        c.fetch("Identify")
    assert time.monotonic() - started >= 0.5


def test_a_stop_request_interrupts_a_long_wait(up) -> None:  # noqa: ANN001
    up.add_fault(faults.ServiceUnavailable(retry_after=30), verb="ListRecords")
    stop = threading.Event()
    c = HarvestClient(up.base_url, policy(retry_after_max=30), stop=stop, pacer=HostPacer())
    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    with pytest.raises(Stopped):
        c.fetch("ListRecords", **LIST)
    assert time.monotonic() - started < 5


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    p = FetchPolicy(backoff=1, backoff_max=8)
    waits = [p.backoff_for(n) for n in range(1, 8)]
    assert 0.5 <= waits[0] <= 1 and all(w <= 8 for w in waits) and waits[-1] >= 4


def test_policy_from_environment() -> None:
    p = FetchPolicy.from_environ({"OAI_HARVEST_DELAY": "0.5", "OAI_HARVEST_ATTEMPTS": "3"}, read_timeout=7)
    assert (p.delay, p.attempts, p.read_timeout) == (0.5, 3, 7)
    with pytest.raises(ValueError, match="OAI_HARVEST_DELAY"):
        FetchPolicy.from_environ({"OAI_HARVEST_DELAY": "soon"})


def test_a_response_past_the_size_limit_is_refused_once_even_gzipped(up) -> None:  # noqa: ANN001
    """A gzip bomb is small on the wire: the limit counts the bytes it unpacks to, as they come."""
    up.add_fault(faults.HugePage(3 * 1024 * 1024), verb="ListRecords", times=None)
    up.add_fault(faults.Gzip(force=True), times=None)
    c = client(up, max_response_mb=1)
    with pytest.raises(FetchError, match=r"larger than 1 MB \(OAI_HARVEST_MAX_RESPONSE_MB\); refused"):
        c.fetch("ListRecords", **LIST)
    assert c.requests_sent == 1  # not asked again
    assert len(client(up, max_response_mb=4).fetch("ListRecords", **LIST).records) == 5  # within the limit


def test_a_dripping_answer_is_abandoned_at_the_response_timeout(up) -> None:  # noqa: ANN001
    up.add_fault(faults.Drip(0.05), verb="ListRecords", times=None)
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"took longer than 0.5 s \(OAI_HARVEST_RESPONSE_TIMEOUT\)"):
        client(up, read_timeout=3, response_timeout=0.5, attempts=2).fetch("ListRecords", **LIST)
    # each read got data within the read timeout; without the deadline a page would take seconds
    assert time.monotonic() - started < 4 and len(up.log) == 2


def test_a_stop_request_interrupts_a_dripping_answer(up) -> None:  # noqa: ANN001
    """A service manager waits a minute for a stop (deploy/oai-harvest-worker.service), not the ten a slow
    answer may take (response_timeout)."""
    up.add_fault(faults.Drip(1.0), verb="ListRecords", times=None)  # a page of five: several seconds
    stop = threading.Event()
    c = HarvestClient(up.base_url, policy(read_timeout=5, response_timeout=600), stop=stop, pacer=HostPacer())
    threading.Timer(1.5, stop.set).start()
    started = time.monotonic()
    with pytest.raises(Stopped):
        c.fetch("ListRecords", **LIST)
    assert time.monotonic() - started < 4  # a few pieces after the stop, not the rest of the answer
    assert len(up.log) == 1


@pytest.mark.parametrize("location, said", [
    # in words a librarian reads (an outside audit: "Exceeded 30 redirects. (TooManyRedirects)", "No connection
    # adapters were found for 'file:///...' (InvalidSchema)")
    (None, r"it redirects in a loop \(more than 30 redirects\); check the base URL in a browser$"),
    ("file:///etc/passwd", r"redirected to file:///etc/passwd, which is not an http or https address: not followed"),
    ("gopher://127.0.0.1/1", r"redirected to gopher://127.0.0.1/1, which is not an http or https address"),
    ("http://127.0.0.1:99999/oai", r"InvalidURL"),
])
def test_a_redirect_loop_or_to_a_file_is_a_clear_error(up, location, said) -> None:  # noqa: ANN001
    up.add_fault(faults.Redirect(location), times=None)
    with pytest.raises(FetchError, match=f"cannot be asked Identify: .*{said}"):
        client(up).fetch("Identify")


def test_a_url_no_request_can_be_made_to_is_a_clear_error() -> None:
    c = HarvestClient("http://127.0.0.1:99999/oai", policy(), pacer=HostPacer())
    with pytest.raises(FetchError, match="cannot be asked Identify: .*InvalidURL"):
        c.fetch("Identify")


@pytest.mark.parametrize("location", ["http://169.254.169.254/latest/meta-data/", "http://[fe80::1]:8080/x",
                                      "http://10.1.2.3/oai", "http://0.0.0.0:1/",
                                      # shared address space, where a cloud's metadata service is, and 169.254 in 6to4
                                      "http://100.100.100.200/latest/meta-data/", "http://[2002:a9fe:a9fe::]/"])
def test_a_redirect_into_a_network_the_source_is_not_on_is_refused_before_connecting(up, location) -> None:  # noqa: ANN001
    """An outside audit had an upstream redirect the harvester to an internal address: it was followed, and the start
    of the answer landed in the run's history. A source on loopback may not send it to the cloud metadata service's
    link-local address, a private network or 0.0.0.0; none of these is asked (nothing listens there on this
    machine: a request made would fail on its connect timeout, not with this message)."""
    up.add_fault(faults.Redirect(location), times=None)
    with pytest.raises(FetchError, match="cannot be asked Identify: redirected to .* network, which the source is "
                                         r"not on: not followed \(an upstream may not send the harvester into our "
                                         r"own network\) \(RedirectRefused\)$"):  # said whole
        client(up).fetch("Identify")
    assert len(up.log) == 1  # refused, not retried


def test_a_connection_refused_says_so() -> None:
    """The reason was cut off behind urllib3's two wrappers (an outside audit): 'Connection refused' is what to say."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: refused
        c = HarvestClient(f"http://127.0.0.1:{port}/oai", policy(attempts=1), pacer=HostPacer())
        with pytest.raises(FetchError, match=r"the connection failed \(Connection refused\)$"):
            c.fetch("Identify")


def test_the_http_charset_decides_for_a_document_that_declares_none(up) -> None:  # noqa: ANN001
    up.add_fault(faults.Latin1Undeclared(), verb="ListRecords")
    page = client(up).fetch("ListRecords", **LIST)
    creators = page.records[0].metadata.findall("{http://purl.org/dc/elements/1.1/}creator")
    assert creators[0].text == "Müller, Zoë" and not page.records[0].repairs


@pytest.mark.parametrize("declared, sent, http, said", [
    ("ISO-8859-1", "utf-8", "UTF-8", "declare the encoding iso-8859-1 but are UTF-8, as HTTP says: read as UTF-8"),
    ("UTF-8", "iso-8859-1", "ISO-8859-1", "declare the encoding utf-8 but are iso-8859-1, as HTTP says"),
    ("UTF-8", "utf-8", "ISO-8859-1", None),  # a server's default charset, the document UTF-8: the document's own
    ("ISO-8859-1", "iso-8859-1", "ISO-8859-1", None),  # the two agree
    ("ISO-8859-1", "iso-8859-1", "UTF-8", None),  # not UTF-8 whatever HTTP says: the declaration's
])
def test_where_http_and_the_declaration_disagree_the_bytes_decide(up, declared: str, sent: str, http: str,  # noqa: ANN001
                                                                  said: str | None) -> None:
    up.add_fault(faults.DeclarationDisagrees(declared, sent, http), verb="ListRecords")
    c = client(up)
    page = c.fetch("ListRecords", **LIST)
    creators = page.records[0].metadata.findall("{http://purl.org/dc/elements/1.1/}creator")
    assert creators[0].text == "Müller, Zoë" and not page.records[0].repairs
    assert [note for note in c.notes if said and said in note] if said else not c.notes, c.notes


@pytest.mark.parametrize("declared, http, said", [
    ("UTF-8", "ISO-8859-1", False),  # a server's default charset: the document's own, UTF-8
    ("ISO-8859-1", "UTF-8", True),  # the declaration wrong, HTTP right: UTF-8 all the same
])
def test_one_stray_byte_in_a_utf8_page_is_repaired_where_it_is_not_taken_for_another_encoding(
        up, declared: str, http: str, said: bool) -> None:  # noqa: ANN001
    """An outside review: one title cut mid-character (a lone 0xC3) in a UTF-8 page that a server's default calls
    ISO-8859-1 sent the whole page to ISO-8859-1, every record on it stored as mojibake; so did the same byte in a
    UTF-8 page that HTTP calls UTF-8 under a declaration of ISO-8859-1."""
    up.add_fault(faults.DeclarationDisagrees(declared, "utf-8", http, stray=b"\xc3"), verb="ListRecords")
    c = client(up)
    page = c.fetch("ListRecords", **LIST)
    creators = [r.metadata.findall("{http://purl.org/dc/elements/1.1/}creator")[0].text for r in page.records]
    assert creators[0] == "Müller, Zoë" and bool(c.notes) is said
    assert page.records[0].repairs == ("invalid UTF-8 replaced by U+FFFD",)
    assert page.records[0].metadata.findtext("{http://purl.org/dc/elements/1.1/}title").endswith("\ufffd")


def test_a_redirect_to_another_host_is_followed_and_said(up, upstream_factory, caplog) -> None:  # noqa: ANN001, F811
    moved = upstream_factory()
    moved.repo.add(*sample_records(3))
    up.add_fault(faults.Redirect(to=moved.base_url.replace("127.0.0.1", "localhost")), times=None)
    c = client(up)
    with caplog.at_level("WARNING", logger="harvester"):
        assert len(c.fetch("ListRecords", **LIST).records) == 3  # the moved repository's records
        c.fetch("Identify")
    said = [r for r in caplog.records if "redirects to another host" in r.getMessage()]
    assert len(said) == 1 and said[0].fields["to"].startswith("http://localhost:")


def test_a_redirect_to_the_same_host_written_otherwise_is_no_move(up) -> None:  # noqa: ANN001
    """A base URL typed with capitals, or with its default port, names the host requests writes in lower case and
    without the port: a redirect there (http to https, a path made canonical) is not another host (a review)."""
    typed = up.base_url.replace("127.0.0.1", "LOCALHOST")
    up.add_fault(faults.Redirect(to=up.base_url.replace("127.0.0.1", "localhost")), times=1)
    c = HarvestClient(typed, policy(), pacer=HostPacer())
    assert len(c.fetch("ListRecords", **LIST).records) == 5
    assert c.redirected is None and up.log[0].status in (301, 302)


@pytest.mark.parametrize("content_type, declaration, in_parts", [
    ("text/xml", "ISO-8859-1", True),  # HTTP names none: the declaration, which iterparse reads
    ("text/xml; charset=UTF-8", "UTF-8", True),
    ("text/xml; charset=utf-8", None, True),
    ("text/xml; charset=UTF-8", "ISO-8859-1", False),  # HTTP may correct it: read whole (_in_http_charset)
    ("text/xml; charset=ISO-8859-1", "UTF-8", False),
])
def test_a_large_body_is_read_in_parts_unless_http_may_correct_its_encoding(content_type: str,
                                                                            declaration: str | None,
                                                                            in_parts: bool) -> None:
    """An outside review: every large page declaring ISO-8859-1 was read whole (twice the memory), where only one
    that HTTP calls UTF-8 may need correcting."""
    import io

    from harvester.client import _parts_readable

    head = f'<?xml version="1.0" encoding="{declaration}"?>' if declaration else ""
    spooled = io.BytesIO((head + "<OAI-PMH/>").encode())
    assert _parts_readable(spooled, content_type) is in_parts
    assert spooled.tell() == 0
