"""The harvester's one exception tree; every message says what went wrong in words a librarian can act on."""

from __future__ import annotations


class HarvestError(Exception):
    """Base of everything the harvester raises on purpose."""


class SourceError(HarvestError):
    """A source that cannot be added, found or used as configured."""


class FetchError(HarvestError):
    """The upstream could not be fetched, even after the retries allowed."""


class PageError(HarvestError):
    """A response that is not a usable OAI-PMH page (empty, not XML, truncated, wrong root).

    Retried like a 5xx unless `retry` is False (a response that will never be acceptable).
    """

    def __init__(self, message: str, *, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


class UpstreamOAIError(HarvestError):
    """An OAI-PMH error the upstream answered with (whatever the HTTP status it came with)."""

    def __init__(self, code: str, message: str = "", status: int = 200, response_date: str | None = None) -> None:
        super().__init__(f"the source answered {code}" + (f": {message}" if message else "")
                         + (f" (HTTP {status})" if status != 200 else ""))
        self.code = code
        self.message = message
        self.status = status
        self.response_date = response_date  # the error response's responseDate


class RepeatedToken(HarvestError):
    """The upstream handed back a resumptionToken it had already given: following it would loop."""


class EndlessListError(HarvestError):
    """The upstream's list goes on with fresh tokens but no end (the same pages again, empty pages)."""


class OverrunListError(EndlessListError):
    """The upstream's list goes on far past the completeListSize it announced: a wrong count, perhaps, not a
    loop (a later run resumes it, where the loops start again from the list's start)."""


class LeaseTaken(HarvestError):
    """Another harvest holds the source's lease."""


class LeaseLost(HarvestError):
    """Our lease on a source expired or was taken over while we were harvesting it."""


class Stopped(HarvestError):
    """The harvest was asked to stop (SIGTERM, Ctrl-C); its checkpoint is kept for the next run."""
