"""Faults the upstream injects on demand, and the rules that say when they fire.

Owns every misbehaviour: each Fault bends one `Reply` (or runs a mutation before it is
built), each FaultRule says which requests it matches and how many times it fires
(`times=1` by default, `None` = unbounded). Does not open sockets: the HTTP handler in
server.py carries out the transport directives (reset, delay, truncation) set here.
"""

from __future__ import annotations

import dataclasses
import gzip
import re
from collections.abc import Callable, Collection
from typing import Any, ClassVar
from urllib.parse import quote
from xml.sax.saxutils import escape

from .protocol import OAIError, Reply, error_reply

# Stages, in the order they run. Only the first matching "replace" fault fires; when one
# fires, "body" faults are skipped (they are about a real page) and keep their count.
STAGES = ("before", "replace", "body", "status", "encode", "transport")
MAX_DELAY = 10.0
HTML_ERROR_PAGE = (b"<!DOCTYPE html>\n<html><head><title>502 Proxy Error</title></head>"
                   b"<body><h1>Proxy Error</h1><p>The proxy server received an invalid "
                   b"response from an upstream server.<br>Reason: Error reading from "
                   b"remote server</p><hr>&nbsp;</body></html>\n")


@dataclasses.dataclass
class Context:
    """What a fault may look at: the request, its number (1-based) and page (lists only)."""

    query: dict[str, list[str]]
    headers: Any
    base_url: str
    number: int
    page: int | None
    content: Any

    def arg(self, name: str) -> str | None:
        return (self.query.get(name) or [None])[0]


class Fault:
    stage: ClassVar[str] = "replace"

    def apply(self, reply: Reply, ctx: Context) -> bool:
        """Change `reply` in place; return False if there was nothing to do (not counted)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


@dataclasses.dataclass
class FaultRule:
    """Fires `fault` on matching requests until it has fired `times` times (None: always)."""

    fault: Fault
    request: Collection[int] | None = None   # request numbers, 1-based, counted by the server
    page: int | None = None                  # page of a list (1 = the request without a token)
    verb: str | None = None
    when: Callable[[Context], bool] | None = None
    times: int | None = 1
    fired: int = 0

    def __post_init__(self):
        if isinstance(self.request, int):
            self.request = {self.request}

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times

    def matches(self, ctx: Context) -> bool:
        return not self.exhausted and (
            (self.request is None or ctx.number in self.request)
            and (self.page is None or ctx.page == self.page)
            and (self.verb is None or ctx.arg("verb") == self.verb)
            and (self.when is None or self.when(ctx)))


# -- before the content answers --

class Mutate(Fault):
    """Run `fn(content)` just before the matched request is answered, e.g. to change or
    delete records in the middle of a harvest: Mutate(lambda repo: repo.delete(id))."""

    stage = "before"

    def __init__(self, fn: Callable[[Any], None]):
        self.fn = fn

    def apply(self, reply, ctx):
        self.fn(ctx.content)
        return True


# -- replace the answer --

class ServiceUnavailable(Fault):
    """HTTP 503 with `Retry-After: <seconds>` (None: no header).

    OAI-PMH 2.0 section 3.1.2.2 names exactly this for load balancing: "503 - Service
    unavailable, a Retry-After period is specified". sickle 0.7 retries only when given
    max_retries > 0, by default only on 503, and waits 60 s when the header is missing.
    """

    def __init__(self, retry_after: int | str | None = 1):
        self.retry_after = retry_after

    def apply(self, reply, ctx):
        reply.status, reply.body = 503, b"<html><body><h1>503 Service Unavailable</h1></body></html>"
        reply.headers = {"Content-Type": "text/html; charset=utf-8"}
        if self.retry_after is not None:
            reply.headers["Retry-After"] = str(self.retry_after)
        reply.error_codes = ()
        return True


class InternalServerError(Fault):
    """HTTP 500 with an HTML body, as a web server sends when the application behind it fails."""

    def apply(self, reply, ctx):
        reply.status, reply.body = 500, b"<html><body><h1>500 Internal Server Error</h1></body></html>"
        reply.headers, reply.error_codes = {"Content-Type": "text/html; charset=utf-8"}, ()
        return True


class ConnectionReset(Fault):
    """Close the socket with a TCP RST and no response at all (requests: ConnectionError)."""

    def apply(self, reply, ctx):
        reply.reset = True
        return True


class EmptyBody(Fault):
    """HTTP 200, Content-Type text/xml, Content-Length 0: an empty document."""

    def apply(self, reply, ctx):
        reply.status, reply.body, reply.error_codes = 200, b"", ()
        return True


class NotXml(Fault):
    """HTTP 200 whose body is not XML (default: a proxy's HTML error page).

    sickle's own fixture ListRecordsBroken.xml is such a body: the text 'broken xml'.
    """

    def __init__(self, body: bytes = HTML_ERROR_PAGE, content_type: str = "text/html; charset=utf-8"):
        self.body, self.content_type = body, content_type

    def apply(self, reply, ctx):
        reply.status, reply.body, reply.error_codes = 200, self.body, ()
        reply.headers = {"Content-Type": self.content_type}
        return True


class OAIErrorReply(Fault):
    """Answer with the OAI error `code` (e.g. badResumptionToken, noRecordsMatch) and HTTP `status`.

    The spec keeps OAI errors in a 200 response. Zenodo (InvenioRDM, invenio-oaiserver)
    sends badResumptionToken and badArgument with HTTP 422 (as recorded in oaipmh-scythe's
    test cassettes).
    """

    def __init__(self, code: str = "badResumptionToken", status: int = 200, message: str = ""):
        self.code, self.status, self.message = code, status, message

    def apply(self, reply, ctx):
        echo = {k: v[0] for k, v in ctx.query.items() if len(v) == 1}
        new = error_reply(ctx.base_url, [OAIError(self.code, self.message)], echo, self.status)
        vars(reply).update(vars(new))
        return True


class ExpiredTokens(OAIErrorReply):
    """Every request carrying a resumptionToken answers badResumptionToken (while it fires).

    Tokens that expire mid-harvest are common: BnF Gallica's token carried an
    expirationDate one hour after its responseDate, Tethys' twelve hours; Zenodo's error
    text is "The value of the resumptionToken argument is invalid or expired."
    For the synthetic repository, Upstream.expire_tokens() instead invalidates the
    tokens issued so far and lets a fresh list (a re-harvest) succeed.
    """

    def __init__(self, status: int = 200):
        super().__init__("badResumptionToken", status, "The resumptionToken has expired.")

    def apply(self, reply, ctx):
        return ctx.arg("resumptionToken") is not None and super().apply(reply, ctx)


class DayGranularityOnly(OAIErrorReply):
    """badArgument for a from/until with a time part, whatever the content's Identify says.

    A repository of day granularity must answer so (OAI-PMH 2.0, 'UTCdatetime'). NAKALA
    (api.nakala.fr/oai2) declares YYYY-MM-DD and does (IQSS/dataverse issue 11020). The
    synthetic repository with granularity=DAY and the bnf-gallica replay do it by themselves.
    """

    def __init__(self, status: int = 200):
        super().__init__("badArgument", status, "from/until: day granularity (YYYY-MM-DD) only")

    def apply(self, reply, ctx):
        return any("T" in (ctx.arg(k) or "") for k in ("from", "until")) and super().apply(reply, ctx)


# -- edit a real page --

_RECORD = re.compile(rb"<record[\s>]")
_TITLE = re.compile(rb"<dc:title\b[^>]*>")
_DC = re.compile(rb"<oai_dc:dc\b[^>]*>")
_TOKEN = re.compile(rb"<resumptionToken\b([^>]*?)(?:/>|>(.*?)</resumptionToken>)", re.S)


def _record_span(body: bytes, n: int) -> tuple[int, int] | None:
    """Byte span of the n-th (1-based) <record> on the page."""
    starts = [m.start() for m in _RECORD.finditer(body)]
    if n < 1 or n > len(starts):
        return None
    end = starts[n] if n < len(starts) else len(body)
    return starts[n - 1], end


def _insert_in_title(reply: Reply, record: int, data: bytes) -> bool:
    span = _record_span(reply.body, record)
    title = span and _TITLE.search(reply.body, span[0], span[1])
    if not title:
        return False
    reply.body = reply.body[:title.end()] + data + reply.body[title.end():]
    return True


class IllegalCharacter(Fault):
    """Put `char` (default U+000B, as a raw byte) at the start of the n-th record's dc:title.

    XML 1.0 forbids C0 controls other than tab, CR, LF, even as &#11;-style references
    (pass char="&#11;" for that variant). No captured response in the shared samples
    carries one (shared/data README, 'Known gaps'); invenio-oaiserver strips such
    characters when it ingests, which shows they arrive in real metadata.
    """

    stage = "body"

    def __init__(self, char: str = "\x0b", record: int = 1):
        self.char, self.record = char, record

    def apply(self, reply, ctx):
        return _insert_in_title(reply, self.record, self.char.encode("utf-8"))


class BrokenRecord(Fault):
    """Make the n-th record not well-formed, leaving the rest of the page intact.

    kind="ampersand": an unescaped '&' in its dc:title; kind="stray-tag": an unclosed
    '<br>' there (HTML stored unescaped). Serve with sample_records(), whose titles carry
    '&amp;', '&lt;' and '&gt;': lxml's recover mode (sickle's parser) then silently drops
    those three characters from every later record on the page (and, for the stray tag,
    the broken record's title), and a repair that re-escapes shows as '&amp;amp;'.
    The pyoai authors corrupted a DSpace/EUR Identify the same two ways (undefined
    entity, stray start tag).
    """

    stage = "body"
    KINDS = {"ampersand": b"Q & A: ", "stray-tag": b"<br>"}

    def __init__(self, record: int = 2, kind: str = "ampersand"):
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {sorted(self.KINDS)}")
        self.record, self.kind = record, kind

    def apply(self, reply, ctx):
        return _insert_in_title(reply, self.record, self.KINDS[self.kind])


class RepeatingToken(Fault):
    """Answer a resumed request with the very token it came with (a client that trusts the
    server loops on it). metha, for one, stops a harvest when a token repeats."""

    stage = "body"

    def apply(self, reply, ctx):
        token = ctx.arg("resumptionToken")
        match = token is not None and _TOKEN.search(reply.body)
        if not match:
            return False
        new = b"<resumptionToken%s>%s</resumptionToken>" % (
            match.group(1), escape(token).encode("utf-8"))
        reply.body = reply.body[:match.start()] + new + reply.body[match.end():]
        return True


class CyclingToken(Fault):
    """Tokens that come round again, A -> B -> A: every resumed request but the first is answered
    with the first token the list handed out. A rerun resuming from B must stop as cleanly as the
    first run did (found by an outside audit: the resumed run died on an internal error)."""

    stage = "body"

    def __init__(self):
        self.first: str | None = None

    def apply(self, reply, ctx):
        token = ctx.arg("resumptionToken")
        if token is None:
            return False
        if self.first is None:
            self.first = token
        match = _TOKEN.search(reply.body)
        if token == self.first or not match:
            return False
        new = b"<resumptionToken%s>%s</resumptionToken>" % (match.group(1), escape(self.first).encode("utf-8"))
        reply.body = reply.body[:match.start()] + new + reply.body[match.end():]
        return True


class ResponseDate(Fault):
    """Claim `moment` as the responseDate (a server whose clock is wrong, or one that lies)."""

    stage = "body"

    def __init__(self, moment: str):
        self.moment = moment.encode("ascii")

    def apply(self, reply, ctx):
        body, n = re.subn(rb"<responseDate>[^<]*</responseDate>", b"<responseDate>" + self.moment
                          + b"</responseDate>", reply.body, count=1)
        reply.body = body
        return n == 1


class EndlessList(Fault):
    """Every resumed ListRecords request is answered with the list's first page again (empty=True: with
    no records), under a fresh token each time, so no token ever repeats and the list never ends (found by
    an outside audit: such a list ran until the harvester was killed)."""

    def __init__(self, empty: bool = False):
        self.empty, self.first, self.sent = empty, None, 0

    def apply(self, reply, ctx):
        if ctx.arg("verb") != "ListRecords":
            return False
        if ctx.arg("resumptionToken") is None:
            self.first = reply.body  # page 1 as the content made it; left as it is
            return False
        self.sent += 1
        body = re.sub(rb"<record>.*</record>", b"", self.first, flags=re.DOTALL) if self.empty else self.first
        match = _TOKEN.search(body)
        reply.status, reply.error_codes = 200, ()
        reply.body = (body[:match.start()] + b"<resumptionToken>endless-%d</resumptionToken>" % self.sent
                      + body[match.end():])
        return True


class Rewrite(Fault):
    """Replace bytes of the body: a ListIdentifiers that names other identifiers than the ListRecords (an outside
    audit replayed a DSpace's two lists, captured apart, that shared none: the deletion check tombstoned all)."""

    stage = "body"

    def __init__(self, old: bytes, new: bytes):
        self.old, self.new = old, new

    def apply(self, reply, ctx):
        if self.old not in reply.body:
            return False
        reply.body = reply.body.replace(self.old, self.new)
        return True


class CutShort(Fault):
    """End the list at this page: its resumptionToken is emptied, its completeListSize (the whole list's)
    left as it was (found by an outside audit: a deletion check then tombstoned everything left out)."""

    stage = "body"

    def apply(self, reply, ctx):
        match = _TOKEN.search(reply.body)
        if not match:
            return False
        reply.body = reply.body[:match.start()] + b"<resumptionToken%s></resumptionToken>" % match.group(1) \
            + reply.body[match.end():]
        return True


class CompleteListSize(Fault):
    """Announce `size` as every token's completeListSize, whatever the list holds."""

    stage = "body"

    def __init__(self, size: int):
        self.size = size

    def apply(self, reply, ctx):
        body, n = re.subn(rb'completeListSize="\d+"', b'completeListSize="%d"' % self.size, reply.body)
        reply.body = body
        return n > 0


class DuplicateRecord(Fault):
    """Put another copy of record `identifier` into the page, dated `datestamp` (and deleted, if asked):
    lists that hold an item twice, within a page or across pages (found by an outside audit: the later
    copy won whatever its date, and both copies were counted)."""

    stage = "body"

    def __init__(self, identifier: str, datestamp: str, deleted: bool = False):
        self.identifier, self.datestamp, self.deleted = identifier, datestamp, deleted

    def apply(self, reply, ctx):
        from lxml import etree

        repo = ctx.content
        copy = dataclasses.replace(repo._records[self.identifier], datestamp=self.datestamp, deleted=self.deleted)
        at = reply.body.find(b"<resumptionToken")
        at = at if at >= 0 else reply.body.find(b"</ListRecords>")
        if at < 0:
            return False
        reply.body = reply.body[:at] + etree.tostring(repo._record(copy)) + reply.body[at:]
        return True


class HugePage(Fault):
    """Grow the first record of the page by `size` bytes (default 11 MiB) of dc:description
    text, so that the records after it sit beyond 10 MB.

    The text comes in elements of `piece` bytes. piece=None makes it one text node: libxml2
    refuses text nodes over 10,000,000 bytes without XML_PARSE_HUGE (lxml: huge_tree=True),
    strictly with "Text node too long", and in recover mode (sickle's parser) by silently
    cutting the text. The largest captured page in the shared samples (NSDL, 162 nsdl_dc
    records) is ~540 KB; this one is synthetic.
    """

    stage = "body"

    def __init__(self, size: int = 11 * 1024 * 1024, piece: int | None = 1_000_000):
        self.size, self.piece = size, piece

    @staticmethod
    def filler(size: int) -> str:
        return ("huge page filler " * (size // 17 + 1))[:size]

    def pieces(self) -> list[str]:
        """The dc:description texts the fault adds, in order."""
        text, step = self.filler(self.size), self.piece or self.size
        return [text[i:i + step] for i in range(0, self.size, step)]

    def apply(self, reply, ctx):
        dc = _DC.search(reply.body)
        if not dc:
            return False
        extra = b"".join(b"<dc:description>%s</dc:description>" % p.encode("ascii")
                         for p in self.pieces())
        reply.body = reply.body[:dc.end()] + extra + reply.body[dc.end():]
        return True


# -- status, encoding, transport --

class ErrorStatus(Fault):
    """Send the content's own OAI error responses with HTTP `status` (default 422, as Zenodo)."""

    stage = "status"

    def __init__(self, status: int = 422):
        self.status = status

    def apply(self, reply, ctx):
        if not reply.error_codes:
            return False
        reply.status = self.status
        return True


class Gzip(Fault):
    """gzip the body (Content-Encoding: gzip) when the request's Accept-Encoding allows it,
    or always with force=True. The Identify responses of DSpace/EUR (gzip, compress,
    deflate), Tethys (gzip, deflate) and NSDL (gzip) all advertise compression."""

    stage = "encode"

    def __init__(self, force: bool = False, declared: bool = True, cut: int = 0):
        self.force, self.declared, self.cut = force, declared, cut  # cut: bytes left off the end

    def apply(self, reply, ctx):
        if not (self.force or "gzip" in (ctx.headers.get("Accept-Encoding") or "")):
            return False
        reply.body = gzip.compress(reply.body, mtime=0)
        if self.cut:
            reply.body = reply.body[:-self.cut]
        if not self.declared:  # a compressed file handed out as is (seen: servers of .xml.gz dumps)
            return True
        reply.headers["Content-Encoding"] = "gzip"
        reply.headers["Vary"] = "Accept-Encoding"
        return True


class Latin1Undeclared(Fault):
    """The body in ISO-8859-1 without an XML declaration, the charset named only by HTTP's Content-Type
    (RFC 7303 3.2 then makes it ISO-8859-1; found by an outside audit: read as UTF-8, 'Café' lost its é)."""

    stage = "encode"

    def apply(self, reply, ctx):
        text = re.sub(r"^<\?xml[^>]*\?>\s*", "", reply.body.decode("utf-8"))
        reply.body = text.encode("iso-8859-1", "xmlcharrefreplace")
        reply.headers["Content-Type"] = "text/xml; charset=ISO-8859-1"
        return True


class DeclarationDisagrees(Fault):
    """The body in `sent`, under an XML declaration of `declared`, HTTP's Content-Type naming `http`. Found by an
    outside audit: UTF-8 under a declaration of ISO-8859-1 (HTTP saying UTF-8) was stored as mojibake, unsaid, and
    ISO-8859-1 under a declaration of UTF-8 (HTTP saying ISO-8859-1) lost its accents to U+FFFD. RFC 7303 (3.2)
    puts HTTP's charset first; servers also name one by default that their documents do not use (Apache's
    ISO-8859-1 for UTF-8 documents), so the bytes decide between the two."""

    stage = "encode"

    def __init__(self, declared: str, sent: str, http: str, stray: bytes = b""):
        self.declared, self.sent, self.http = declared, sent, http
        self.stray = stray  # bytes put inside the first title: one cut mid-character is no other encoding

    def apply(self, reply, ctx):
        text = re.sub(r"^<\?xml[^>]*\?>\s*", "", reply.body.decode("utf-8"))
        reply.body = (f'<?xml version="1.0" encoding="{self.declared}"?>\n' + text).encode(self.sent,
                                                                                         "xmlcharrefreplace")
        reply.body = reply.body.replace(b"</dc:title>", self.stray + b"</dc:title>", 1)
        reply.headers["Content-Type"] = f"text/xml; charset={self.http}"
        return True


class Slow(Fault):
    """Wait `delay` seconds before the status line (in_body=True: after half of the body).
    Bounded by MAX_DELAY; the wait ends early when the server stops."""

    stage = "transport"

    def __init__(self, delay: float = 1.0, in_body: bool = False):
        if not 0 <= delay <= MAX_DELAY:
            raise ValueError(f"delay must be within 0..{MAX_DELAY} s")
        self.delay, self.in_body = delay, in_body

    def apply(self, reply, ctx):
        if self.in_body:
            reply.stall = self.delay
        else:
            reply.delay = self.delay
        return True


class Drip(Fault):
    """Send the body 256 bytes at a time, `interval` seconds apart: every read gets data well within
    any read timeout, yet the whole answer takes as long as the server likes (found by an outside
    audit: a page at 8 bytes a second held the harvester for minutes)."""

    stage = "transport"

    def __init__(self, interval: float = 0.05):
        if not 0 < interval <= 1:
            raise ValueError("interval must be within 0..1 s")
        self.interval = interval

    def apply(self, reply, ctx):
        reply.drip = self.interval
        return True


class Redirect(Fault):
    """HTTP 302 (or `status`: 301 for a repository that moved for good) to `location`, or to the same request at
    the base URL `to` (a repository that moved, or another server taking some of its load); neither: back to the
    very URL asked, a redirect loop."""

    def __init__(self, location: str | None = None, to: str | None = None, status: int = 302):
        self.location, self.to, self.status = location, to, status

    def apply(self, reply, ctx):
        query = "&".join(f"{k}={quote(v)}" for k, vs in ctx.query.items() for v in vs)
        reply.status, reply.body, reply.error_codes = self.status, b"", ()
        reply.headers = {"Location": self.location or f"{self.to or ctx.base_url}?{query}",
                         "Content-Type": "text/plain"}
        return True


class Truncated(Fault):
    """Send only the first part of the body (`at`: a fraction < 1 or a byte count), then close.

    content_length="full": the header promises the whole body, so a careful client sees a
    short read (requests: ChunkedEncodingError); "sent": the header matches the cut body,
    which looks complete until it is parsed; None: no header, the close ends the body.
    """

    stage = "transport"

    def __init__(self, at: float | int = 0.5, content_length: str | None = "full"):
        if content_length not in ("full", "sent", None):
            raise ValueError("content_length must be 'full', 'sent' or None")
        self.at, self.content_length = at, content_length

    def apply(self, reply, ctx):
        cut = int(len(reply.body) * self.at) if isinstance(self.at, float) else int(self.at)
        reply.truncate_at = max(0, min(cut, len(reply.body) - 1))
        reply.content_length = self.content_length
        return True
