"""Resumption tokens (spec 3.5): signed, versioned, stateless keyset cursors.

A token carries the whole request (prefix, set, from, until frozen at the first page), the last
(datestamp, id) served, the list size and cursor, and when it was issued; any node holding the
secret can continue it. Tampered, foreign, expired or old-format tokens are badResumptionToken.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta

from oai.protocol.errors import BadResumptionToken

VERSION = 1
_EPOCH = datetime(1970, 1, 1)
# What encode() writes; anything else (padding, whitespace, other characters) was not issued here,
# even where a lenient base64 decoder would skip over it.
_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Cursor:
    """Where a list stands. Datestamps are seconds since the epoch (UTC)."""

    verb: str
    prefix: str | None = None
    set_spec: str | None = None
    from_: int | None = None
    until: int | None = None
    until_asked: int | None = None  # the request's own upper bound, when it had one
    after_datestamp: int | None = None
    after_id: int | None = None
    after_key: str | None = None  # ListSets continues after a setSpec
    complete_list_size: int = 0
    cursor: int = 0
    issued: int = 0


_MIN_EPOCH, _MAX_EPOCH = -62135596800, 253402300799  # 0001-01-01T00:00:00Z, 9999-12-31T23:59:59Z
CLOCK_SKEW = timedelta(minutes=10)  # between the nodes that issue and take tokens, whose clocks NTP keeps together
_MAX_INTEGER = 2**31 - 1  # what a database integer holds (PostgreSQL's integer: record ids; an audit signed 2**63-1)
_LOWEST = {"complete_list_size": 1}  # a positiveInteger in OAI-PMH.xsd
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")  # what PostgreSQL text cannot hold, nor UTF-8 encode
_TIMES = frozenset(("from_", "until", "until_asked", "after_datestamp", "issued"))
_TEXTS = frozenset(("verb", "prefix", "set_spec", "after_key"))


def _checked(cursor: Cursor) -> Cursor:
    """`cursor` if every field has its type and range (times within the years 1-9999, as `from` may be); raises
    ValueError. Only a holder of the secret can sign a token, but a field out of range must still be
    badResumptionToken, not an overflow deep inside. A field whose default is None may be None."""
    for f in fields(Cursor):
        value = getattr(cursor, f.name)
        if value is None and f.default is None:
            continue
        if f.name in _TEXTS:
            valid = type(value) is str and not _BAD_TEXT.search(value)
        else:
            low, high = (_MIN_EPOCH, _MAX_EPOCH) if f.name in _TIMES else (_LOWEST.get(f.name, 0), _MAX_INTEGER)
            valid = type(value) is int and low <= value <= high
        if not valid:
            raise ValueError(f"{f.name} is out of range or of the wrong type")
    return cursor


def to_epoch(value: datetime) -> int:
    return int((value - _EPOCH).total_seconds())


def from_epoch(value: int) -> datetime:
    return _EPOCH + timedelta(seconds=value)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenCodec:
    def __init__(self, secret: bytes, ttl: timedelta) -> None:
        if len(secret) < 16:
            raise ValueError("the token secret must be at least 16 bytes")
        self._secret = secret
        self.ttl = ttl

    def _sign(self, body: bytes) -> bytes:
        return hmac.new(self._secret, b"oai-token\0" + body, hashlib.sha256).digest()[:18]

    def encode(self, cursor: Cursor) -> str:
        fields = {k: v for k, v in asdict(cursor).items() if v is not None}
        body = json.dumps([VERSION, fields], separators=(",", ":"), sort_keys=True).encode()
        return f"{_b64(body)}.{_b64(self._sign(body))}"

    def expires(self, cursor: Cursor) -> datetime:
        return from_epoch(cursor.issued) + self.ttl

    def decode(self, token: str, *, verb: str, now: datetime) -> Cursor:
        """The cursor in `token`, for `verb`; raises BadResumptionToken."""
        if _SHAPE.fullmatch(token) is None:
            raise BadResumptionToken("the resumptionToken is not one this repository issued")
        try:
            body_text, sig_text = token.split(".")
            body, sig = _unb64(body_text), _unb64(sig_text)
        except (ValueError, binascii.Error):
            raise BadResumptionToken("the resumptionToken is not one this repository issued") from None
        if not hmac.compare_digest(sig, self._sign(body)):
            raise BadResumptionToken("the resumptionToken is not one this repository issued, or it was altered")
        try:
            version, fields = json.loads(body)
            if version != VERSION:
                raise BadResumptionToken("the resumptionToken is from an older version of this repository")
            cursor = _checked(Cursor(**fields))
        except (TypeError, ValueError, RecursionError):
            raise BadResumptionToken("the resumptionToken is malformed") from None
        if cursor.verb != verb:
            raise BadResumptionToken(f"the resumptionToken belongs to {cursor.verb}, not {verb}")
        if from_epoch(cursor.issued) > now + CLOCK_SKEW:  # (and one issued near 9999 would overflow its expiry)
            raise BadResumptionToken("the resumptionToken says it was issued later than now")
        if now > self.expires(cursor):
            raise BadResumptionToken("the resumptionToken has expired; start the list again")
        return cursor
