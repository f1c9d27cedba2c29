"""The one OAI-PMH client: sickle's `Sickle`, given our session, timeouts, retries, Retry-After and pacing.

sickle stays the seam for the HTTP request (`Sickle._request`, `Sickle.harvest`, `OAIResponse`);
its lenient XML tree is never used: every body is read strictly by harvester.parse.
"""

from __future__ import annotations

import codecs
import email.message
import logging
import math
import os
import random
import re
import socket
import tempfile
import threading
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields, replace
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import BinaryIO
from urllib.parse import urlsplit, urlunsplit

import requests
import sickle
import urllib3
from sickle import Sickle
from sickle.response import OAIResponse

from harvester.errors import FetchError, PageError, RepeatedToken, Stopped, UpstreamOAIError
from harvester.parse import STREAM_BYTES, Page, list_token, read_large, read_page
from harvester.redirect_guard import GuardedSession, RedirectRefused

# The sickle API this module relies on: Sickle.__init__(endpoint, http_method, max_retries),
# Sickle._request(kwargs) -> requests.Response, Sickle.harvest(**kwargs), OAIResponse(http, params).
SICKLE_SUPPORTED = ((0, 7), (0, 8))  # >=0.7, <0.8, as pinned in pyproject.toml
USER_AGENT = "oai-repository-harvester/0.1 (+https://www.openarchives.org/pmh/; python-requests, sickle)"

log = logging.getLogger("harvester.client")


def _check_sickle() -> None:
    version = tuple(int(p) for p in sickle.__version__.split(".")[:2])
    low, high = SICKLE_SUPPORTED
    if not low <= version < high:
        raise RuntimeError(f"the harvester is tested with sickle >=0.7,<0.8, not {sickle.__version__}")


@dataclass(frozen=True)
class FetchPolicy:
    """How patient and how polite the client is; every wait is bounded."""

    connect_timeout: float = 10.0
    read_timeout: float = 60.0  # the longest silence within a response
    response_timeout: float = 600.0  # the longest a whole response may take (a server may drip bytes)
    max_response_mb: float = 100.0  # the largest response taken, decompressed (a gzip bomb is small)
    attempts: int = 6  # tries per request, the first one included
    backoff: float = 2.0  # wait before the first retry, doubled for each further one (with jitter)
    backoff_max: float = 120.0
    retry_after_max: float = 600.0  # a longer Retry-After is cut to this
    delay: float = 1.0  # politeness: at least this long between two requests to one host
    user_agent: str = USER_AGENT

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> FetchPolicy:
        """Defaults < OAI_HARVEST_<FIELD> variables (e.g. OAI_HARVEST_DELAY=0.5) < overrides."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = environ.get(f"OAI_HARVEST_{f.name.upper()}")
            if raw is None:
                continue
            try:
                values[f.name] = raw if f.type == "str" else (int(raw) if f.name == "attempts" else float(raw))
            except ValueError:
                raise ValueError(f"OAI_HARVEST_{f.name.upper()} must be a number, not {raw!r}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        policy = replace(cls(), **values)
        if policy.attempts < 1:
            raise ValueError(f"the number of attempts (OAI_HARVEST_ATTEMPTS) must be at least 1, not {policy.attempts}")
        for name in ("connect_timeout", "read_timeout", "response_timeout", "max_response_mb"):
            if not 0 < getattr(policy, name) < math.inf:  # (NaN too)
                raise ValueError(f"the {name.replace('_', ' ')} (OAI_HARVEST_{name.upper()}) must be more than 0 and finite, "
                                 f"not {getattr(policy, name)}")
        for name in ("backoff", "backoff_max", "retry_after_max", "delay"):
            if not 0 <= getattr(policy, name) < math.inf:
                raise ValueError(f"the {name.replace('_', ' ')} (OAI_HARVEST_{name.upper()}) must be 0 or more and finite, "
                                 f"not {getattr(policy, name)}")
        return policy

    def backoff_for(self, attempt: int) -> float:
        """Exponential backoff with jitter: half fixed, half random, capped."""
        cap = min(self.backoff_max, self.backoff * (2 ** (attempt - 1)))
        return cap / 2 + random.uniform(0, cap / 2)


def pause(seconds: float, stop: threading.Event | None) -> None:
    """Sleep, but wake up and raise Stopped as soon as `stop` is set."""
    if seconds <= 0:
        return
    if stop is None:
        time.sleep(seconds)
    elif stop.wait(seconds):
        raise Stopped("asked to stop")


class HostPacer:
    """Keeps requests to one host at least `delay` apart, across every thread of the process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next: dict[str, float] = {}

    def wait(self, host: str, delay: float, stop: threading.Event | None) -> None:
        with self._lock:
            now = time.monotonic()
            at = max(now, self._next.get(host, 0.0))
            self._next[host] = at + delay
        pause(at - now, stop)


PACER = HostPacer()


@dataclass(frozen=True)
class Redirect:
    """A request redirected to another host: the base URL it was answered at (the URL without its query) and the
    statuses of the redirects that took it there."""

    base_url: str
    statuses: tuple[int, ...]

    @property
    def permanent(self) -> bool:
        """Moved for good (301, 308). A temporary redirect (302) is what OAI-PMH (3.1.2.2) offers a repository to
        spread its load: the request goes to another server for now, and the repository stays where it was."""
        return all(status in (301, 308) for status in self.statuses)


class _Retry(Exception):
    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.wait = reason, wait


class _TooLarge(Exception):
    """A response past the size limit: not asked again."""


def _handed_on(spool: tempfile.SpooledTemporaryFile) -> bytes | BinaryIO:
    """A body written to `spool`, from its start: the file itself once it is on disk (read_large reads it from
    there), else its bytes (and the spool closed)."""
    spool.seek(0)
    if spool._rolled:  # noqa: SLF001
        return spool
    with spool:
        return spool.read()


class HarvestClient(Sickle):
    """Sickle with a requests.Session, timeouts, a User-Agent, retries and strict parsing."""

    def __init__(self, base_url: str, policy: FetchPolicy | None = None, *,
                 stop: threading.Event | None = None, session: requests.Session | None = None,
                 pacer: HostPacer = PACER) -> None:
        _check_sickle()
        super().__init__(base_url, http_method="GET", max_retries=0)
        self.policy = policy or FetchPolicy()
        self.session = session or GuardedSession(base_url)
        self.session.headers["User-Agent"] = self.policy.user_agent
        self.stop = stop
        self.pacer = pacer
        self.host = urlsplit(base_url).netloc
        self.requests_sent = 0
        self.redirected: Redirect | None = None  # the first redirect to another host seen (and logged)
        self.notes: list[str] = []  # what a run should say of the responses (each once): see _in_http_charset
        self.said_undeclared_gzip = False

    def close(self) -> None:
        self.session.close()

    def _request(self, kwargs):  # noqa: ANN001, ANN202 - sickle's hook, same signature
        timeout = (self.policy.connect_timeout, self.policy.read_timeout)
        self.requests_sent += 1
        if self.http_method == "GET":
            response = self.session.get(self.endpoint, params=kwargs, timeout=timeout, stream=True)
        else:
            response = self.session.post(self.endpoint, data=kwargs, timeout=timeout, stream=True)
        with response:  # on an error mid-body the connection is closed, not reused
            # requests keeps a body it has read in _content; .content then returns it, and a consumed
            # response gives its connection back to the pool for the next page (keep-alive)
            body = self._bounded_body(response)
            # a large body waits in a temporary file (read_large reads it from there), not in memory
            response._content = body if isinstance(body, bytes) else b""  # noqa: SLF001
            response.spooled = None if isinstance(body, bytes) else body
            response._content_consumed = True  # noqa: SLF001
        return response

    def _bounded_body(self, response: requests.Response) -> bytes | BinaryIO:
        """The decompressed body, read as it arrives: refused past max_response_mb, abandoned (retried) past
        response_timeout. requests alone bounds neither: its read timeout is per read, and it inflates
        gzip to whatever size it unpacks to. A body past SPOOL_BYTES is given as a temporary file (at its start):
        held in memory, a 51 MB page was most of the harvester's memory (issue 5)."""
        limit = int(self.policy.max_response_mb * 1024 * 1024)
        deadline = time.monotonic() + self.policy.response_timeout
        spool = tempfile.SpooledTemporaryFile(SPOOL_BYTES, dir=SPOOL_DIR)  # noqa: SIM115 - closed by its reader
        size = 0
        try:
            while chunk := _read1(response.raw):
                size += len(chunk)
                if size > limit:
                    raise self._too_large()
                try:
                    spool.write(chunk)
                except OSError as exc:  # the temporary directory is full or cannot be written
                    where = SPOOL_DIR or tempfile.gettempdir()
                    raise FetchError(f"a response larger than {SPOOL_BYTES // 2**20} MB waits in a temporary file, "
                                     f"and {where} refused it ({exc}); set TMPDIR to a directory the harvester can "
                                     "write") from None
                if self.stop is not None and self.stop.is_set():  # a slow answer must not hold a stop for minutes
                    raise Stopped("asked to stop while an answer was arriving")
                if time.monotonic() > deadline:
                    raise _Retry(f"the response took longer than {self.policy.response_timeout:g} s "
                                 "(OAI_HARVEST_RESPONSE_TIMEOUT)")
            spool.seek(0)
            undeclared_gzip = (spool.read(len(_GZIP_MAGIC)) == _GZIP_MAGIC
                               and not response.headers.get("Content-Encoding"))
            spool.seek(0)
            if undeclared_gzip:
                with spool:
                    return self._undeclared_gzip(spool, limit)
            return _handed_on(spool)
        except BaseException:
            spool.close()
            raise

    def _too_large(self) -> _TooLarge:
        return _TooLarge(f"the response is larger than {self.policy.max_response_mb:g} MB "
                         "(OAI_HARVEST_MAX_RESPONSE_MB); refused")

    def _undeclared_gzip(self, compressed: BinaryIO, limit: int) -> bytes | BinaryIO:
        """A gzip body sent without Content-Encoding (a server handing out a compressed file as is): no XML
        begins with these bytes, so it is unpacked, bounded and spooled as a declared one is (an outside audit
        found it unpacked whole in memory: 286 MB for a bomb refused at 100 MB)."""
        if not self.said_undeclared_gzip:
            self.said_undeclared_gzip = True
            log.warning("the source sends gzip-compressed answers without saying so (no Content-Encoding); unpacked",
                        extra={"fields": {"event": "undeclared_gzip", "url": self.endpoint}})
        unpacker = zlib.decompressobj(wbits=31)
        out = tempfile.SpooledTemporaryFile(SPOOL_BYTES, dir=SPOOL_DIR)  # noqa: SIM115 - closed by its reader
        size = 0
        try:
            while not unpacker.eof and (chunk := unpacker.unconsumed_tail or compressed.read(64 * 1024)):
                try:
                    xml = unpacker.decompress(chunk, 1024 * 1024)
                except zlib.error as exc:
                    raise requests.exceptions.ContentDecodingError(f"undeclared gzip: {exc}") from None
                size += len(xml)
                if size > limit:
                    raise self._too_large()
                out.write(xml)
            if not unpacker.eof:
                raise requests.exceptions.ContentDecodingError("undeclared gzip: the compressed body is cut short")
            return _handed_on(out)
        except BaseException:
            out.close()
            raise

    def harvest(self, **kwargs: str) -> OAIResponse:
        """One paced request through sickle's hook: no retries, and error statuses are not raised."""
        self.pacer.wait(self.host, self.policy.delay, self.stop)
        return OAIResponse(self._request(kwargs), params=kwargs)

    def fetch(self, verb: str, *, in_parts: bool = False, **params: str) -> Page:
        """One OAI-PMH request, retried with backoff; raises UpstreamOAIError, FetchError or Stopped. With
        `in_parts`, a large ListRecords or ListIdentifiers response comes as a Page whose items are in its parts
        (read_large)."""
        last = "no attempt made"
        policy = self.policy
        for attempt in range(1, policy.attempts + 1):
            wait = None
            try:
                return self._read(self.harvest(verb=verb, **params), verb, attempt, in_parts)
            except requests.Timeout:
                last = f"no answer within {policy.read_timeout:g} s"
            except requests.exceptions.ContentDecodingError as exc:
                last = f"the compressed body could not be unpacked ({_short(exc)})"
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                last = f"the connection failed ({_why(exc)})"
            except _Retry as exc:
                last, wait = exc.reason, exc.wait
            except _TooLarge as exc:
                raise FetchError(f"{self.endpoint} answered {verb}: {exc}") from None
            except requests.TooManyRedirects:
                raise FetchError(f"{self.endpoint} cannot be asked {verb}: it redirects in a loop (more than "
                                 f"{self.session.max_redirects} redirects); check the base URL in a browser") from None
            except requests.RequestException as exc:  # a bad URL; redirects we refuse (RedirectRefused)
                said = str(exc) if isinstance(exc, RedirectRefused) else _short(exc)  # ours: said whole
                raise FetchError(f"{self.endpoint} cannot be asked {verb}: {said} "
                                 f"({type(exc).__name__})") from None
            except PageError as exc:
                if not exc.retry:
                    raise FetchError(f"{self.endpoint} answered {verb} unusably: {exc}") from None
                last = str(exc)
            if attempt == policy.attempts:
                break
            delay = policy.backoff_for(attempt) if wait is None else wait
            log.warning("retry", extra={"fields": {
                "event": "retry", "url": self.endpoint, "verb": verb, "attempt": attempt,
                "wait": round(delay, 3), "reason": last}})
            pause(delay, self.stop)
        raise FetchError(f"{self.endpoint} did not answer {verb} usably after {policy.attempts} "
                         f"attempt(s): {last}")

    def _read(self, oai: OAIResponse, verb: str, attempt: int, in_parts: bool = False) -> Page:
        http = oai.http_response
        redirect = _redirect(http, self.endpoint)
        if redirect is not None and self.redirected is None:
            self.redirected = redirect  # said once: every request goes the same way
            log.warning("the source redirects to another host; update its base URL if it has moved",
                        extra={"fields": {"event": "redirect", "url": self.endpoint, "to": http.url}})
        status = http.status_code
        content_type = http.headers.get("Content-Type")
        spooled: BinaryIO | None = getattr(http, "spooled", None)
        page: Page | None = None
        if spooled is not None:
            if in_parts and 200 <= status < 300 and _parts_readable(spooled, content_type):
                page = read_large(spooled, verb)  # read from the file, which it closes once read
            if page is None:  # read whole, as any other answer
                with spooled:
                    http._content = spooled.read()  # noqa: SLF001
        if page is None:
            body, note = _in_http_charset(http.content, content_type)
            if note is not None and note not in self.notes:
                self.notes.append(note)
            page = self._page(http, body, verb, attempt, in_parts)
        if page.errors:
            code, message = page.errors[0]
            more = "; ".join(f"{c}: {m}" for c, m in page.errors[1:])
            raise UpstreamOAIError(code, message + (f" (also {more})" if more else ""), status, page.response_date)
        return replace(page, moved_to=redirect.base_url) if redirect is not None and redirect.permanent else page

    def _page(self, http: requests.Response, body: bytes, verb: str, attempt: int, in_parts: bool) -> Page:
        """The page a response's whole body holds; raises _Retry or FetchError for an HTTP error without one."""
        status = http.status_code
        if 200 <= status < 300:
            return (read_large(body, verb) if in_parts else None) or read_page(body, verb)
        try:  # OAI errors sent with a non-200 status (Zenodo: 422) still carry a readable body
            page = read_page(body, verb)
        except PageError:
            page = None
        if page is None or not page.errors:
            if status in (429, 503):
                raise _Retry(f"HTTP {status} (busy)", self._retry_after(http, attempt))
            if status >= 500 or status == 408:
                raise _Retry(f"HTTP {status} {http.reason or ''}".strip())
            hint = " - is the base URL right?" if status in (404, 410) else ""
            raise FetchError(f"{self.endpoint} answered HTTP {status} {http.reason or ''}{hint}".strip())
        return page

    def _retry_after(self, http: requests.Response, attempt: int) -> float:
        """Seconds to wait as the server asked (OAI-PMH 3.1.2.2: 503 Retry-After), bounded."""
        value = (http.headers.get("Retry-After") or "").strip()
        seconds: float | None = None
        if value.isascii() and value.isdigit():  # str.isdigit() alone takes '²', which float() refuses (an audit)
            seconds = float(value)
        elif value:
            try:
                moment = parsedate_to_datetime(value)
                if moment.tzinfo is None:  # "-0000" (RFC 5322: UTC, no zone said): naive, read as local time before
                    moment = moment.replace(tzinfo=timezone.utc)
                seconds = max(0.0, moment.timestamp() - time.time())
            except (TypeError, ValueError, OverflowError, OSError):
                seconds = None
        if seconds is None:
            return self.policy.backoff_for(attempt)
        return min(seconds, self.policy.retry_after_max)

    def pages(self, verb: str, *, max_pages: int | None = None, in_parts: bool = False,
              **params: str) -> Iterator[Page]:
        """Every page of a list (ListSets, ListIdentifiers), following tokens; raises RepeatedToken. With
        `in_parts`, a large response comes as its parts (read_large), each a Page, the last with the token."""
        seen: set[str] = set()
        page = self.fetch(verb, in_parts=in_parts, **params)
        count = 1
        while True:
            if page.parts is None:
                yield page
                token = list_token(page, verb)
            else:
                yield from page.parts()
                token = page.token
            if token is None or not token.value:
                return
            if token.value in seen:
                raise RepeatedToken(f"the source repeated the resumptionToken {token.value!r}")
            seen.add(token.value)
            if max_pages is not None and count >= max_pages:
                return
            page = self.fetch(verb, in_parts=in_parts, resumptionToken=token.value)
            count += 1


def _redirect(http: requests.Response, endpoint: str) -> Redirect | None:
    """Where redirects took a request, if to another host than `endpoint`'s; one to the same host (http to https, a
    path made canonical) is the same repository. Host names, not netlocs: requests lowercases the name and drops a
    default port, which a base URL may carry as typed."""
    if not http.history:
        return None
    answered = urlsplit(http.url)
    if answered.hostname == urlsplit(endpoint).hostname:
        return None
    return Redirect(urlunsplit((answered.scheme, answered.netloc, answered.path, "", "")),
                    tuple(r.status_code for r in http.history))


_GZIP_MAGIC = b"\x1f\x8b"
SPOOL_BYTES = STREAM_BYTES  # a body larger than this waits in a temporary file: read_large reads it from there
SPOOL_DIR: str | None = None  # where: None is the system's temporary directory (TMPDIR)
_DECLARED = re.compile(rb"\s*<\?xml[^>]*?\bencoding\s*=\s*[\"']([A-Za-z0-9._\-]+)[\"']")
_UTF8 = ("utf-8", "utf8", "us-ascii", "ascii")


def _http_charset(content_type: str | None) -> str:
    """The charset a Content-Type names, lower case; "" for none."""
    if not content_type or "charset" not in content_type.lower():
        return ""
    message = email.message.Message()
    message["Content-Type"] = content_type
    return (message.get_param("charset") or "").strip().lower()


def _parts_readable(spooled: BinaryIO, content_type: str | None) -> bool:
    """Whether a large body can be read in parts as it is (read_large): not when _in_http_charset may have to
    change it, HTTP naming a charset other than UTF-8, or naming UTF-8 where the document declares another (an
    outside review: every large page declaring ISO-8859-1 was read whole, HTTP naming none)."""
    charset = _http_charset(content_type)
    if charset not in ("", *_UTF8):
        return False
    if not charset:
        return True
    declared = _DECLARED.match(spooled.read(4096))
    spooled.seek(0)
    return declared is None or declared.group(1).decode("ascii").lower() in _UTF8


def _in_http_charset(body: bytes, content_type: str | None) -> tuple[bytes, str | None]:
    """(the body to parse, what to say of it or None). A document with neither byte order mark nor encoding
    declaration is in the charset HTTP names (RFC 7303, 3.2). Where the two disagree, HTTP's is taken when the
    bytes agree with it and not with the declaration, and said (an outside audit: UTF-8 sent as HTTP says, under
    a declaration of ISO-8859-1, stored as mojibake unsaid); otherwise the document's: servers often name a
    charset by default that their documents do not use (UTF-8 documents sent as ISO-8859-1)."""
    charset = _http_charset(content_type)
    if not charset or body.startswith(_BOMS):
        return body, None
    declared = _DECLARED.match(body)
    name = declared.group(1).decode("ascii").lower() if declared else None
    if charset in _UTF8:
        if name is None or name in _UTF8 or body.isascii() or not _mostly_utf8(body):
            return body, None
        if _codec(name) is None or _codec(name) == "utf-8":
            return body, None
        return (_declared_utf8(body, declared),
                f"the source's responses declare the encoding {name} but are UTF-8, as HTTP says: read as UTF-8")
    if name is not None and _codec(name) == _codec(charset):
        return body, None  # the two agree: the parser reads the declaration
    if _mostly_utf8(body) or (name is not None and name not in _UTF8):
        return body, None  # UTF-8 whatever HTTP says, or a declaration of a third encoding: the document's own
    try:
        recoded = body.decode(charset).encode("utf-8")
    except (LookupError, UnicodeDecodeError):
        return body, None  # an unknown or wrong charset: read as UTF-8, repaired and reported as before
    if declared is None:
        return recoded, None
    return (_declared_utf8(recoded, _DECLARED.match(recoded)),
            f"the source's responses declare the encoding {name} but are {charset}, as HTTP says: read as {charset}")


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _mostly_utf8(body: bytes) -> bool:
    """UTF-8 with, at most, a few invalid bytes among more characters that decode (one title cut mid-character,
    which the record's repair marks): a page of ISO-8859-1 has almost no byte pair UTF-8 reads as a character,
    and its every accented letter is invalid. An outside review found one bad byte sending a whole UTF-8 page to
    ISO-8859-1, every record on it stored as mojibake."""
    if _is_utf8(body):
        return True
    text = body.decode("utf-8", "replace")
    replaced = text.count("\ufffd")
    invalid = replaced - body.count("\ufffd".encode())  # (a U+FFFD the document holds is no error)
    decoded = len(text) - len(text.encode("ascii", "ignore")) - replaced  # characters past ASCII, read whole
    return decoded > invalid


def _codec(name: str) -> str | None:
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _declared_utf8(body: bytes, declared: re.Match | None) -> bytes:
    """`body` with its declaration naming UTF-8."""
    return body if declared is None else body[:declared.start(1)] + b"UTF-8" + body[declared.end(1):]


_BOMS = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def _read1(raw: urllib3.response.HTTPResponse) -> bytes:
    """What has arrived of the body, decoded, with urllib3's errors told as requests tells them."""
    try:
        return raw.read1(1 << 16, decode_content=True)
    except urllib3.exceptions.ReadTimeoutError as exc:
        raise requests.exceptions.ReadTimeout(exc) from None
    except urllib3.exceptions.DecodeError as exc:
        raise requests.exceptions.ContentDecodingError(exc) from None
    except (urllib3.exceptions.ProtocolError, urllib3.exceptions.SSLError) as exc:
        raise requests.exceptions.ChunkedEncodingError(exc) from None


def _why(exc: BaseException) -> str:
    """What failed a request, told by its innermost cause (Connection refused, Name or service not known): urllib3
    wraps it twice, and the wrappers' text, cut short, hid it (an outside audit)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            lookup = "the name lookup failed: " if isinstance(current, socket.gaierror) else ""
            return f"{lookup}{current.strerror}"
        reason = getattr(current, "reason", None)
        first = current.args[0] if current.args else None
        current = next((e for e in (reason, current.__cause__, current.__context__, first)
                        if isinstance(e, BaseException)), None)
    return f"{type(exc).__name__}: {_short(exc)}"


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 160 else text[:157] + "..."
