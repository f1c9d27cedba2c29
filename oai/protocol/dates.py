"""UTCdatetime (spec 3.3): parsing request dates with their granularity, formatting responses."""

from __future__ import annotations

import enum
import re
from datetime import datetime

from oai.protocol.errors import BadArgument
from oai.clock import utcnow as now  # noqa: F401 - the one clock of datestamps and responseDates


class Granularity(enum.Enum):
    DAY = "YYYY-MM-DD"
    SECOND = "YYYY-MM-DDThh:mm:ssZ"


# ASCII digits only: `\d` would also match other scripts' digits, which strptime accepts.
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_SECOND = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


def parse(value: str, argument: str) -> tuple[datetime, Granularity]:
    """A request date as naive UTC; raises BadArgument for anything but the two legal forms."""
    try:
        if _DAY.fullmatch(value):
            return datetime.strptime(value, "%Y-%m-%d"), Granularity.DAY
        if _SECOND.fullmatch(value):
            return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ"), Granularity.SECOND
    except ValueError:
        pass
    raise BadArgument(
        f"'{argument}' must be a UTC date as YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ, not {value!r}"
    )


def until_bound(value: datetime, granularity: Granularity) -> datetime:
    """The inclusive upper bound: a day-granular `until` covers the whole day."""
    if granularity is Granularity.DAY:
        return value.replace(hour=23, minute=59, second=59)  # no overflow on 9999-12-31
    return value


def format_datestamp(value: datetime) -> str:
    """UTCdatetime at second granularity (isoformat of a naive second-precision value is faster than strftime)."""
    if value.microsecond or value.tzinfo is not None:
        value = value.replace(microsecond=0, tzinfo=None)
    return value.isoformat() + "Z"
