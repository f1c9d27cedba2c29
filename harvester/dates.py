"""Upstream datestamps and granularity: normalising what sources write, and the from= we send them."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from oai.clock import utcnow  # noqa: F401 - the one clock of datestamps, used through this module

DAY = "YYYY-MM-DD"
SECONDS = "YYYY-MM-DDThh:mm:ssZ"

_DAY = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_SECONDS_UTC = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})Z")  # ASCII digits only
# What sources really write: T or space, optional fraction, Z or an offset or nothing.
_MOMENT = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?\s*(Z|[+-]\d{2}:?\d{2})?"
)


def normalise(value: str) -> str | None:
    """An upstream datestamp as YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ (UTC), or None if it is not a date."""
    value = value.strip()
    if len(value) == 20 and (m := _SECONDS_UTC.fullmatch(value)) and m[4] != "24":  # already normal: the common case
        try:
            datetime(int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6]))
        except ValueError:
            return None
        return value
    if m := _DAY.fullmatch(value):
        try:
            return date(int(m[1]), int(m[2]), int(m[3])).isoformat()  # in ASCII digits, whatever was written
        except ValueError:
            return None
    m = _MOMENT.fullmatch(value)
    if not m:
        return None
    try:
        moment = _moment(int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6] or 0))
    except (ValueError, OverflowError):
        return None
    zone = m[7]
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        try:
            moment -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        except OverflowError:  # 9999-12-31T23:00:00-02:00 is past the year 9999 in UTC
            return None
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def to_datetime(value: str) -> datetime:
    """A normalised datestamp as a naive UTC datetime (a day is its midnight)."""
    if len(value) == 10:
        return datetime.strptime(value, "%Y-%m-%d")
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")


def format_moment(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def earlier_by(value: str, delta: timedelta) -> str:
    """A datestamp moved `delta` back (a day stays the day: it already reaches back to its midnight)."""
    norm = normalise(value)
    if norm is None or len(norm) == 10:
        return norm or value
    try:
        return format_moment(to_datetime(norm) - delta)
    except OverflowError:  # before the year 1
        return norm


def as_argument(value: str | None, granularity: str | None) -> str | None:
    """A from/until argument in the granularity the source accepts (OAI-PMH 3.3.2: never finer)."""
    if value is None:
        return None
    norm = normalise(value)
    if norm is None:
        return None
    return norm[:10] if granularity == DAY else norm


def _moment(year: int, month: int, day: int, hour: int, minute: int, second: int) -> datetime:
    """The moment; 24:00:00 is the end of the day, the next day's midnight, as XML Schema's dateTime (so OAI-PMH.xsd)
    allows it: an outside audit found such a record quarantined as "not a date", and a deletion so stamped dropped."""
    if (hour, minute, second) == (24, 0, 0):
        return datetime(year, month, day) + timedelta(days=1)
    return datetime(year, month, day, hour, minute, second)
