"""OAI-PMH wire helpers shared by the synthetic repository, the replay and the faults.

Owns the `Reply` value handed from content to faults to the HTTP handler, the OAI-PMH
envelope and error responses (built with lxml), and date/granularity parsing.
Knows nothing about HTTP sockets or about which records exist.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

from lxml import etree

OAI_NS = "http://www.openarchives.org/OAI/2.0/"
OAI_DC_NS = "http://www.openarchives.org/OAI/2.0/oai_dc/"
DC_NS = "http://purl.org/dc/elements/1.1/"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
OAI_SCHEMA = "http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd"
OAI_DC_SCHEMA = "http://www.openarchives.org/OAI/2.0/oai_dc.xsd"

DAY = "YYYY-MM-DD"
SECONDS = "YYYY-MM-DDThh:mm:ssZ"
LIST_VERBS = frozenset({"ListRecords", "ListIdentifiers", "ListSets"})
XML_CONTENT_TYPE = "text/xml; charset=utf-8"


@dataclasses.dataclass
class Reply:
    """One HTTP answer: what the content produced, as the faults then bend it."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = dataclasses.field(
        default_factory=lambda: {"Content-Type": XML_CONTENT_TYPE})
    error_codes: tuple[str, ...] = ()     # OAI error codes in the body, if any
    # transport directives, set by faults and carried out by the HTTP handler
    reset: bool = False                   # close the socket with RST, send nothing
    delay: float = 0.0                    # seconds to wait before the status line
    stall: float = 0.0                    # seconds to wait after half of the body
    drip: float = 0.0                     # seconds to wait between pieces of 256 body bytes
    truncate_at: int | None = None        # send only this many body bytes
    content_length: str | None = "sent"   # "sent", "full" (length before truncation) or None


class OAIError(Exception):
    """An OAI-PMH error condition; `code` is one of the spec's error codes."""

    def __init__(self, code: str, message: str = ""):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


_DAY_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_SECONDS_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


def parse_datestamp(value: str | dt.datetime | dt.date) -> dt.datetime:
    """A UTC datetime from 'YYYY-MM-DD', 'YYYY-MM-DDThh:mm:ssZ', a date or a datetime."""
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
                ).astimezone(dt.timezone.utc).replace(microsecond=0)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc)
    if _SECONDS_RE.fullmatch(value):
        return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    if _DAY_RE.fullmatch(value):
        return dt.datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=dt.timezone.utc)
    raise ValueError(f"not an OAI-PMH datestamp: {value!r}")


def format_datestamp(value: dt.datetime, granularity: str) -> str:
    return value.strftime("%Y-%m-%d" if granularity == DAY else "%Y-%m-%dT%H:%M:%SZ")


def parse_range(frm: str | None, until: str | None, granularity: str):
    """(from, until) as inclusive UTC datetimes; raises OAIError('badArgument').

    OAI-PMH 2.0 section 'UTCdatetime': both arguments have the same granularity, and a
    request finer than the repository's granularity must produce an error.
    """
    bounds = []
    for name, value in (("from", frm), ("until", until)):
        if value is None:
            bounds.append(None)
            continue
        if _SECONDS_RE.fullmatch(value):
            if granularity == DAY:
                raise OAIError("badArgument", f"{name}={value}: this repository "
                               "supports day granularity (YYYY-MM-DD) only")
            kind = SECONDS
        elif _DAY_RE.fullmatch(value):
            kind = DAY
        else:
            raise OAIError("badArgument", f"{name}={value} is not a valid datestamp")
        try:
            moment = parse_datestamp(value)
        except ValueError:
            raise OAIError("badArgument", f"{name}={value} is not a valid date") from None
        if kind == DAY and name == "until":
            moment += dt.timedelta(days=1, seconds=-1)   # a day-granular until covers the day
        bounds.append((kind, moment))
    lo, hi = bounds
    if lo and hi and lo[0] != hi[0]:
        raise OAIError("badArgument", "from and until must have the same granularity")
    if lo and hi and lo[1] > hi[1]:
        raise OAIError("badArgument", "from is later than until")
    return (lo[1] if lo else None), (hi[1] if hi else None)


def flatten_query(query: dict[str, list[str]]) -> dict[str, str | list[str]]:
    """parse_qs output with single values unwrapped (repeated arguments stay lists)."""
    return {k: (v[0] if len(v) == 1 else list(v)) for k, v in query.items()}


def envelope(base_url: str, request_args: dict[str, str] | None):
    """(root, request) elements of an OAI-PMH response; request_args None = no attributes."""
    root = etree.Element(f"{{{OAI_NS}}}OAI-PMH", nsmap={None: OAI_NS, "xsi": XSI_NS})
    root.set(f"{{{XSI_NS}}}schemaLocation", f"{OAI_NS} {OAI_SCHEMA}")
    etree.SubElement(root, f"{{{OAI_NS}}}responseDate").text = format_datestamp(utcnow(), SECONDS)
    request = etree.SubElement(root, f"{{{OAI_NS}}}request")
    request.text = base_url
    for key, value in (request_args or {}).items():
        request.set(key, value)
    return root, request


def oai(tag: str) -> str:
    return f"{{{OAI_NS}}}{tag}"


def serialize(root) -> bytes:
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + etree.tostring(root, encoding="UTF-8",
                                                                       xml_declaration=False)


def error_reply(base_url: str, errors: list[OAIError], request_args=None,
                status: int = 200) -> Reply:
    """An OAI error response. OAI-PMH 3.2: after badVerb/badArgument, <request> has no attributes."""
    if any(e.code in ("badVerb", "badArgument") for e in errors):
        request_args = None
    root, _ = envelope(base_url, request_args)
    for err in errors:
        el = etree.SubElement(root, oai("error"), code=err.code)
        el.text = err.message or None
    return Reply(status=status, body=serialize(root),
                 error_codes=tuple(e.code for e in errors))
