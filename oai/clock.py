"""The one clock of datestamps, responseDates and the harvester's times: UTC, naive, to the second.

A module of its own, with nothing to import: the harvester's worker processes read dates (harvester.dates) and
need no database; reaching this clock through oai.store.fence loaded SQLAlchemy into each of them (about 20 MB a
process, an outside audit's count of the harvester's memory).
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, in UTC, naive, to the second: the datestamp precision we serve."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)
