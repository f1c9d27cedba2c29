"""One harvest run of one source: the page loop, checkpoints, resume, re-listing, completion.

Every page is written in ONE transaction together with the checkpoint and the run's counts, so a
run killed at any point resumes from the page after the last one committed. Fetching is client.py's,
turning records into store writes ingest.py's, leases leases.py's.
"""

from __future__ import annotations

import logging
import re
import shlex
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import Engine, bindparam, delete, select, update
from sqlalchemy.orm import Session

from harvester import dates, leases, workers
from harvester.client import FetchPolicy, HarvestClient
from harvester.errors import (EndlessListError, HarvestError, LeaseLost, OverrunListError, RepeatedToken,
                              SourceError, Stopped, UpstreamOAIError)
from harvester.ingest import Ingestor, local_identifier
from harvester.listed import ListedIdentifiers
from harvester.parse import Page, set_descriptions, set_entries
from harvester.prefetch import Prefetcher
from harvester.sources import LIST_SETS_PAGES, SourceView, get_source
from oai.store import checkpoints, fence
from oai.store.engine import database_unavailable, error_reason, reading, transaction
from oai.store.models import HarvestCheckpoint, HarvestRun, Record, Source
from oai.store.statistics import GrowthAnalyzer
from oai.store.records import delete_record, source_sets

MAX_WARNINGS = 50
log = logging.getLogger("harvester.runs")
SHIFTED = "the source's list shifted while it was harvested"
_SHIFTED_COUNT = re.compile(re.escape(SHIFTED) + r": (\d+) identifiers? ")

_RUN, _CHECKPOINT = HarvestRun.__table__, HarvestCheckpoint.__table__
_COUNTS = ("seen", "new", "updated", "unchanged", "deleted", "quarantined")
_RUN_STATE = select(_RUN.c.pages, _RUN.c.response_date, _RUN.c.complete_list_size, _RUN.c.warnings,
                    *(_RUN.c[key] for key in _COUNTS)).where(_RUN.c.id == bindparam("run_id"))
# Built once (building them each page cost as much as running them); the SET columns are the parameters given.
_RUN_UPDATE = update(_RUN).where(_RUN.c.id == bindparam("run_id"))
_CHECKPOINT_UPDATE = update(_CHECKPOINT).where(_CHECKPOINT.c.source_id == bindparam("of_source"))


def _token_of(page: Page) -> str | None:
    return page.token.value if page.token is not None else None


class EndlessList:
    """Notices a list that goes on with fresh tokens but no end: the same pages again, page after page
    with nothing on it, or far more records than it announced (an outside audit met all three; each
    ran until killed). Memory: one number a page."""

    REPEATS = 3  # pages that are exact repeats of earlier pages of this list
    EMPTY = 100  # empty pages in a row
    OVERRUN = 2  # records past this multiple of completeListSize (plus a page or so of slack)

    def __init__(self) -> None:
        self.pages: set[int] = set()
        self.repeats = self.empty = 0
        self.announced: int | None = None

    def check(self, page: Page, cursor: int) -> None:
        """Raises EndlessListError once the list is past reason; `cursor`: records so far in this list."""
        if page.size == 0:
            self.empty += 1
            if self.empty >= self.EMPTY:
                raise EndlessListError(f"the source sent {self.empty} empty pages in a row, each with a new "
                                       "resumptionToken; stopped (the records so far are kept)")
            return
        self.empty = 0
        identifiers = [r.header.identifier for r in page.records] + [h.identifier for h in page.headers]
        key = hash((tuple(identifiers), len(page.broken)))
        if key in self.pages:
            self.repeats += 1
            if self.repeats >= self.REPEATS:
                raise EndlessListError(f"the source sent the same pages again {self.repeats} times under new "
                                       "resumptionTokens; stopped (the records so far are kept)")
        self.pages.add(key)
        if page.token is not None and page.token.complete_list_size is not None:
            self.announced = page.token.complete_list_size
        if self.announced is not None and cursor > self.OVERRUN * self.announced + 1000:
            raise OverrunListError(f"the source sent {cursor} records in a list it announced as "
                                   f"{self.announced}; stopped (the records so far are kept)")


CLOCK_AHEAD = timedelta(hours=1)  # a responseDate further ahead of our clock than this is warned about


def _became(status: str) -> str:
    """What became of a run, said of it: "it failed", "it was interrupted"."""
    return "it failed" if status == "failed" else f"it was {status}"


# An incremental run asks `from` this long before the last complete list's responseDate. A record is often
# committed a little after the datestamp it carries (the write began earlier, a search index lags, the writer's
# clock is behind the server's): a list asked in between does not hold it, and a `from` of exactly that list's
# responseDate would skip it for good. The overlap costs fetching the few records changed just before, which
# come again unchanged and are not written.
INCREMENTAL_OVERLAP = timedelta(minutes=5)


# A source of day granularity may stamp its records with its own local date, not UTC's (OAI-PMH says UTC; an outside
# audit found what that would cost): west of UTC its day goes on after ours has turned, and a `from` of our new day
# would skip the rest of its. Reaching back by the widest zone's offset asks for its day as well.
DAY_OVERLAP = timedelta(hours=14)


def incremental_from(last_complete_response_date: str, granularity: str | None) -> str:
    """The `from` an incremental run asks: the last complete run's responseDate less INCREMENTAL_OVERLAP (and
    DAY_OVERLAP for a source of day granularity), at the source's granularity."""
    overlap = INCREMENTAL_OVERLAP + (DAY_OVERLAP if granularity == dates.DAY else timedelta())
    return dates.as_argument(dates.earlier_by(last_complete_response_date, overlap), granularity)


@dataclass(frozen=True)
class RunOptions:
    full: bool = False
    detect_deletions: bool | None = None  # None: as the source says
    policy: FetchPolicy = field(default_factory=FetchPolicy)
    lease_seconds: float = leases.LEASE_SECONDS
    retry_delay: float = 900.0  # a failed source is due again after this many seconds
    repository_identifier: str | None = None  # None: from oai.config
    max_relists: int = 20


@dataclass(frozen=True)
class Progress:
    source: str
    run_id: int
    pages: int
    records: int
    complete_list_size: int | None
    elapsed: float
    new: int
    updated: int
    deleted: int
    quarantined: int

    @property
    def rate(self) -> float:
        return self.records / self.elapsed if self.elapsed > 0 else 0.0


@dataclass(frozen=True)
class RunSummary:
    run_id: int
    source: str
    status: str  # complete | failed | interrupted
    full: bool
    pages: int
    seen: int
    new: int
    updated: int
    unchanged: int
    deleted: int
    quarantined: int
    complete_list_size: int | None
    error: str | None
    warnings: tuple[str, ...]
    resumable: bool = True  # False: running it again would not go on with it (a source whose paging loops)

    @classmethod
    def of(cls, run: HarvestRun, source: str, *, resumable: bool = True) -> RunSummary:
        return cls(run.id, source, run.status, run.full, run.pages, run.seen, run.new, run.updated,
                   run.unchanged, run.deleted, run.quarantined, run.complete_list_size, run.error,
                   tuple((run.warnings or "").splitlines()), resumable)


ProgressCallback = Callable[[Progress], None]


def harvest_source(engine: Engine, name: str, options: RunOptions | None = None, *,
                   owner: str | None = None, lease_taken: bool = False, stop: threading.Event | None = None,
                   on_progress: ProgressCallback | None = None) -> RunSummary:
    """Harvest one source under its lease (resuming an unfinished run); raises LeaseTaken, SourceError."""
    options = options or RunOptions(policy=FetchPolicy.from_environ())
    if options.repository_identifier is None:
        from oai.config import load_config

        options = replace(options, repository_identifier=load_config().repository_identifier)
    owner = owner or leases.owner_id()
    with transaction(engine) as session:
        source = get_source(session, name)
    with leases.Lease(engine, source.id, owner, options.lease_seconds, taken=lease_taken) as lease:
        with transaction(engine) as session:  # read again under the lease
            source = get_source(session, name)
            _check_naming(session, source, options.repository_identifier or "")
        return _Run(engine, source, options, owner, lease, stop, on_progress).execute()


def _check_naming(session: Session, source: SourceView, repository_identifier: str) -> None:
    """Refuse to harvest under another repository identifier than the source's records already carry: our name for a
    harvested record is built from it, so each record would be written again under a second name and served twice
    (an outside audit: a run from cron without the settings file doubled the source). One record tells."""
    if source.keep_identifiers:  # its records are named as upstream, not by us
        return
    held = session.scalar(select(Record.identifier).where(Record.source_id == source.id).limit(1))
    if held is None or held.startswith(local_identifier(repository_identifier, source.name, "")):
        return
    theirs = held.split(":")[1] if held.count(":") >= 2 else held
    raise SourceError(f"the records of source {source.name!r} are named in the repository identifier {theirs!r}, "
                      f"but OAI_REPOSITORY_IDENTIFIER is {repository_identifier!r} here: harvesting would write every "
                      "record again under a second name. "
                      f"Set OAI_REPOSITORY_IDENTIFIER={theirs} (as the server has it)")


class _Run:
    def __init__(self, engine: Engine, source: SourceView, options: RunOptions, owner: str,
                 lease: leases.Lease, stop: threading.Event | None, on_progress: ProgressCallback | None) -> None:
        self.engine, self.source, self.options, self.owner = engine, source, options, owner
        self.lease, self.stop, self.on_progress = lease, stop, on_progress
        self.client = HarvestClient(source.base_url, options.policy, stop=stop)
        self.started = time.monotonic()
        self.seen_tokens: set[str] = set()
        self.in_response = 0  # records written from earlier parts of the response being read in parts
        self.response_listed: set[str] = set()  # their identifiers
        self.listed = ListedIdentifiers()  # this process's part of the run: a resumed run starts afresh
        self.last_listed: str | None = None  # the last identifier of the page before
        self.repeated = 0  # identifiers the run was listed on more than one page
        self.relists = 0
        self.endless = EndlessList()
        self.expired_at: int | None = None  # how far into the list the last expiry came
        self.granularity = source.granularity
        self.growth = GrowthAnalyzer(engine)  # a first harvest into PostgreSQL grows the store fast
        self.set_names_read = False  # ListSets is asked once a run at most
        self.said_moved = False
        self.paging_broken = False  # the list looped (same pages, a token handed back): no use resuming it
        self.client_notes_taken = 0  # of self.client.notes, those already in fetch_notes
        # Warnings noticed while fetching, in the prefetch thread too: the loop writes them with the next page (a
        # transaction of their own there could lose a page's update of the run's warnings on PostgreSQL).
        self.fetch_notes: list[str] = []
        self.fetch_notes_written = 0

    # -- the run --

    def execute(self) -> RunSummary:
        self._start()
        try:
            if self.full:
                self._rename_sets()
            self._harvest_list()
            if self.check_deletions:
                self._check_deletions()
            status, error = "complete", None
        except (Stopped, LeaseLost) as exc:
            if isinstance(exc, LeaseLost):  # (found at a page write, not by the renewing thread)
                self.lease.lost.set()
            status, error = "interrupted", str(exc)
        except OverrunListError as exc:  # a count that was wrong: the next run resumes, and may well finish
            status, error = "failed", str(exc)
        except (RepeatedToken, EndlessListError) as exc:  # resumed from its checkpoint, the list would loop again
            self._forget_checkpoint()
            self.paging_broken = True
            status, error = "failed", (f"{exc}; the source's paging is broken (tell its maintainers): the next run "
                                       "lists again from the start instead of resuming")
        except HarvestError as exc:
            status, error = "failed", str(exc)
        except Exception as exc:
            if not database_unavailable(exc):
                self._finish("failed", f"internal error: {exc!r}")
                raise
            # a restart, a failover: what was written stays, the page in flight was not; the next run resumes
            status, error = "interrupted", f"the database became unavailable: {error_reason(exc)}"
            return self._finish_when_the_database_answers(status, error)
        finally:
            self.client.close()
        return self._finish(status, error)

    def _check_deletions(self) -> None:
        """The deletion check after a complete list. Its completion said the check is owed (in the same
        transaction); only a check that ran to its end (or chose to believe nothing) settles it, so that one cut
        short (an error, a stop, a kill) is done by the next complete run, asked for or not."""
        if self.owed_by is not None:
            self._note(f"deletion check: owed by run #{self.owed_by}, which did not finish it")
        try:
            self._detect_deletions()
        except HarvestError as exc:  # the list itself is complete; the check waits for the next run
            self._note(f"deletion check not finished: {exc}; the next complete run of this source does it")
            return
        with transaction(self.engine) as s:
            s.execute(update(Source).where(Source.id == self.source.id).values(deletion_check_owed_by=None))

    def _finish_when_the_database_answers(self, status: str, error: str) -> RunSummary:
        """Mark the run once the database answers again (within a lease's term), so that its history says why it
        stopped and its lease is released, rather than showing it running until the lease lapses (an outside
        operations review found it so, then blamed a process 'killed?')."""
        deadline, delay, stop = time.monotonic() + self.options.lease_seconds, 1.0, self.stop or threading.Event()
        while True:
            try:
                return self._finish(status, error)
            except Exception as exc:
                if not database_unavailable(exc):
                    raise
                if time.monotonic() + delay > deadline or stop.wait(delay):
                    raise HarvestError(f"{error}; the run could not be marked so, the next one says it") from None
                delay = min(delay * 2, 30.0)

    def _start(self) -> None:
        """Resume the unfinished run of this source, or begin a new one with its checkpoint."""
        now = dates.utcnow()
        src = self.source
        with transaction(self.engine) as s:
            cp = s.get(HarvestCheckpoint, src.id)
            run = s.get(HarvestRun, cp.run_id) if cp is not None else None
            if cp is not None and (run is None or self.options.full):  # --full always starts afresh
                if run is not None:  # what stopped it (failed, interrupted) stays in its history
                    was = "its process had ended without finishing" if run.status == "running" else _became(run.status)
                    run.warnings = self._merge_warnings(run.warnings, [
                        f"abandoned at {dates.format_moment(now)}, after {was}: replaced by a full harvest"])
                    run.status, run.ended = "abandoned", run.ended or now
                    run.error = run.error or "replaced by a full harvest"
                s.delete(cp)
                s.flush()
                cp = run = None
            s.execute(update(HarvestRun).where(
                HarvestRun.source_id == src.id, HarvestRun.status == "running",
                HarvestRun.id != (run.id if run is not None else -1),
            ).values(status="interrupted", ended=now,
                     error="the harvest process ended without finishing (killed?); resumed by a later run"))
            if run is not None:
                # what stopped it stays in its history; a run still marked running was left by a process that
                # ended without saying so (killed, out of memory): we hold the source's lease now
                if run.status == "running":
                    stopped = f"the process running it ({run.worker or '?'}) ended without finishing (killed?)"
                else:
                    why = f": {run.error}" if run.error else ""
                    at = f" at {dates.format_moment(run.ended)}" if run.ended else ""
                    stopped = f"{_became(run.status)}{at}{why}"
                run.warnings = self._merge_warnings(run.warnings, [f"resumed from its checkpoint after {stopped}"])
                self.repeated = _shift_count(run.warnings)
                run.status, run.worker, run.ended, run.error = "running", self.owner, None, None
                self.resumed = True
            else:
                full = self.options.full or not src.last_complete_response_date
                from_date = None if full else incremental_from(src.last_complete_response_date, src.granularity)
                run = HarvestRun(source_id=src.id, started=now, status="running", full=full, from_date=from_date,
                                 worker=self.owner, pages=0, seen=0, new=0, updated=0, unchanged=0, deleted=0,
                                 quarantined=0)
                s.add(run)
                s.flush()
                cp = HarvestCheckpoint(source_id=src.id, run_id=run.id, resumption_token=None, cursor=0,
                                       from_date=from_date, updated=now)
                s.add(cp)
                self.resumed = False
            self.run_id, self.full, self.run_started = run.id, run.full, run.started
            # When the list whose responseDate starts the next window was asked for, by our clock: a run resumed
            # before any page was written asks it now (it was its start, and a source down for three hours then
            # seemed three hours ahead of our clock: an outside audit).
            self.list_asked = run.started if run.response_date else now
            self.token, self.cursor, self.from_date = cp.resumption_token, cp.cursor, cp.from_date
            self.complete_list_size, self.pages = run.complete_list_size, run.pages
            held = source_sets(s, src.name)  # once a run: which sets a page brings are new is then asked of memory
            names = s.scalars(select(Source.name)).all()  # (whose records, come back, would be a cycle)
            detect = self.options.detect_deletions  # None: as the source says, or a check a run before left owed
            # the complete run that left a check owed, said where this run's check tombstones what it does (an
            # outside audit: a source with the check off tombstoned a record, and nothing said why)
            self.owed_by = s.scalar(select(Source.deletion_check_owed_by).where(Source.id == src.id))
            self.check_deletions = detect if detect is not None else bool(src.detect_deletions or self.owed_by)
        log.info("resume" if self.resumed else "start", extra={"fields": {
            "event": "resume" if self.resumed else "start", "source": src.name, "run": self.run_id,
            "full": self.full, "from": self.from_date, "token": self.token, "cursor": self.cursor}})
        self.ingestor = Ingestor(src, self.options.repository_identifier or "", since=self.run_started,
                                 held_sets=held, our_sources=names)

    def _rename_sets(self) -> None:
        """A full run brings the names of the source's sets up to date with the upstream's."""
        self._read_set_names()
        with transaction(self.engine) as s:
            renamed = self.ingestor.rename_sets(s)
        if renamed:
            log.info("sets renamed", extra={"fields": {"event": "renamed", "source": self.source.name,
                                                       "run": self.run_id, "sets": renamed}})

    def _read_set_names(self) -> None:
        """The upstream's set names (ListSets, at most LIST_SETS_PAGES pages), for the sets this run creates (and,
        on a full run, renames): asked once a run, at a full run's start, else when a page first brings a set the
        store does not have. A source that cannot list them is harvested all the same, its setSpecs as names."""
        self.set_names_read = True
        names: dict[str, str | None] = {}
        descriptions: dict[str, str] = {}
        try:
            for page in self.client.pages("ListSets", max_pages=LIST_SETS_PAGES):
                names.update(set_entries(page))
                descriptions.update(set_descriptions(page))
        except Stopped:
            raise
        except HarvestError as exc:
            if not (isinstance(exc, UpstreamOAIError) and exc.code == "noSetHierarchy"):  # a source without sets
                self.fetch_notes.append(f"set names not read (the source's ListSets failed: {exc}); sets new to "
                                        "the store are named by their setSpecs until a later run reads them (a full "
                                        "one, or one that brings a set the store does not have)")
        self.ingestor.set_names = names  # those read before a failure too
        self.ingestor.set_descriptions = descriptions

    def _params(self) -> dict[str, str]:
        if self.token:
            return {"resumptionToken": self.token}
        params = {"metadataPrefix": self.source.prefix}
        if self.from_date:
            params["from"] = self.from_date
        if self.source.set_spec:
            params["set"] = self.source.set_spec
        return params

    def _harvest_list(self) -> None:
        workers.warm()  # the workers start while the first page is on its way
        while True:
            if self.token:  # resumed: the token we start from was asked with too (the prefetcher knows it)
                self.seen_tokens.add(self.token)
            with Prefetcher(self._fetch, lambda fetched: _token_of(fetched[0]), self._params(),
                            name=f"prefetch-{self.source.name}") as ahead:
                if self._pages(ahead):
                    return

    def _pages(self, ahead: Prefetcher[tuple[Page, Callable[[], tuple]]]) -> bool:
        """The page loop, one transaction a page, in list order: True at the list's end, False when the
        list must be asked again (the request changed)."""
        while True:
            if self.stop is not None and self.stop.is_set():
                raise Stopped("asked to stop; the next run resumes from the checkpoint")
            if self.lease.lost.is_set():
                raise LeaseLost("our lease on the source was lost; stopping")
            try:
                page, preparing = ahead.get()
            except UpstreamOAIError as exc:
                if exc.code == "noRecordsMatch":
                    size = self.complete_list_size
                    short = bool(self.token) and size is not None and self.cursor < size
                    if short:
                        # what it did not send is older than this run: a window moved past it would never
                        # ask for it again (a review found the run "complete" and the records lost)
                        since = f"from {self.from_date}" if self.from_date else "from the start"
                        self._note(f"the source answered noRecordsMatch to a resumptionToken after {self.cursor} "
                                   f"of the {size} records it announced; the list is taken as ended, and the next "
                                   f"incremental run lists again {since}, for what it did not send")
                    elif self.token:
                        self._note("the source answered noRecordsMatch to a resumptionToken; "
                                   "the list is taken as ended")
                    self._write(None, ([], [], []), final=True, response_date=exc.response_date,
                                keep_window=short)
                    return True
                if exc.code == "badResumptionToken" and self.token:
                    self._relist(exc)
                    return False
                if exc.code == "badArgument" and not self.token and self.from_date and "T" in self.from_date:
                    self._use_days(exc)
                    return False
                raise
            if not self.set_names_read and self.ingestor.brings_new_sets(page.records):
                # here, not in the prefetch thread: a run that fails meanwhile would wait there for every page
                self._read_set_names()
            token = _token_of(page)
            repeated = not page.more and token is not None and (token == self.token or token in self.seen_tokens)
            final = token is None and not page.more
            # the workers finish this page while the prefetcher fetches the next ones; a part of a large
            # response (page.more) leaves the checkpoint where the response began
            self._write(page, preparing(), final=final, next_token=self.token if repeated or page.more else token)
            if repeated:
                raise RepeatedToken(f"the source handed back the resumptionToken {token!r} it had already "
                                    "given; stopped to avoid a loop (the records so far are kept)")
            if final:
                return True
            if page.more:
                continue
            self.seen_tokens.add(token)
            self.endless.check(page, self.cursor)

    def _fetch(self, params: dict[str, str]) -> Iterator[tuple[Page, Callable[[], tuple]]]:
        """One response's page, fetched and given to the workers to turn into store records (in the prefetch
        thread, outside any transaction); calling the second item waits for them. A large response gives its
        records in parts (Page.parts), each read when the loop is ready for it."""
        page = self.client.fetch("ListRecords", in_parts=True, **params)
        self._notice_redirect()
        if page.parts is None:
            yield page, self.ingestor.start(page.records)
            return
        for part in page.parts():
            yield replace(part, moved_to=page.moved_to), self.ingestor.start(part.records)

    # -- one page, one transaction --

    def _write(self, page: Page | None, prepared: tuple, *, final: bool, next_token: str | None = None,
               response_date: str | None = None, keep_window: bool = False) -> None:
        ready, rejected, notes = prepared
        broken = list(page.broken if page else ()) + rejected
        listed_before = self._listed_again(page, final) if page is not None else frozenset()
        # an identifier an earlier part of this same response held is the page's own repeat, kept once as within a
        # page, not a list that shifted (an outside audit: one page of 10,000 records said "the list shifted")
        repeated = self.repeated + len(listed_before - self.response_listed)
        if page is not None:
            self.response_listed = (self.response_listed | {r.header.identifier for r in page.records}
                                    if page.more else set())
        fetch_notes = self.fetch_notes[self.fetch_notes_written:]
        with transaction(self.engine) as s:
            now = fence.stamp(s)  # the page's datestamp, inside the write fence that readers wait for
            leases.renew_in(s, self.source.id, self.owner, self.options.lease_seconds, now)
            out = self.ingestor.write(s, ready, broken, self.run_id, now, base_url=page.moved_to if page else None,
                                      listed_before=listed_before)
            cursor = self.cursor + out.seen
            # where a part's checkpoint resumes: the start of its response, which is asked for again
            resume_at = self.cursor - self.in_response if page is not None and page.more else cursor
            # The run's row and the checkpoint through plain statements: the ORM's loads and flush of the
            # two objects cost as much of this thread's time as the page's records did.
            conn = s.connection()
            run = conn.execute(_RUN_STATE, {"run_id": self.run_id}).one()
            warnings = fetch_notes + list(notes) + out.warnings
            pages, listed_at, size = run.pages, run.response_date, run.complete_list_size
            if page is None and listed_at is None and response_date:
                listed_at = response_date  # an empty list still tells the upstream's time
            if page is not None:
                pages += not page.more  # a response read in parts is one page
                if listed_at is None:
                    listed_at = page.response_date or dates.format_moment(self.list_asked)
                    if page.response_date is None:
                        warnings.append("the source sent no responseDate, or one that is no date (year 10000, say); our "
                                        "own clock is used instead")
                announced = page.token.complete_list_size if page.token is not None else None
                if announced is not None and size is None:
                    size = announced
                elif announced is not None and announced != size:
                    warnings.append(f"the source's completeListSize changed from {size} to "
                                    f"{announced} during the list (records changed while we harvested)")
            counts = {key: getattr(run, key) + getattr(out, key) for key in _COUNTS}
            # how far into the list the run got: a list asked again (an expired token) brings the records
            # already seen once more, which are not more records ("140 of 100" it said)
            counts["seen"] = max(run.seen, cursor)
            if final and size is not None and size != cursor:
                # (records that change while the list is read move past its end and come with the next run: an
                # outside audit was sent to a full harvest that found nothing missing)
                fewer = ("fewer: records that changed while it was read move past its end, and the next incremental "
                         f"run fetches them; if records are still missing after it, `oai harvest {self.source.name} "
                         "--full` fetches them"
                         if cursor < size else "more")
                warnings.append(f"the source announced completeListSize={size} but sent {cursor} records "
                                f"in this list ({fewer})")
            kept = self._merge_warnings(run.warnings, warnings)
            if repeated > self.repeated:
                kept = _first(kept, self._shift_warning(repeated))
            conn.execute(_RUN_UPDATE, {"run_id": self.run_id, "pages": pages, "response_date": listed_at,
                                       "complete_list_size": size, "warnings": kept, **counts})
            if final:
                self._complete(s, s.get(HarvestRun, self.run_id), now, keep_window=keep_window)
            else:
                moved = conn.execute(_CHECKPOINT_UPDATE, {
                    "of_source": self.source.id, "resumption_token": next_token, "cursor": resume_at,
                    "from_date": self.from_date, "updated": now})
                if moved.rowcount != 1:  # the page is not written without the point to resume from
                    raise HarvestError("the checkpoint of this run is gone (the source was removed?); stopped")
            summary = (pages, counts["seen"], size, counts["new"], counts["updated"], counts["deleted"],
                       counts["quarantined"])
        # committed: only now does our in-memory state move on
        self.fetch_notes_written += len(fetch_notes)
        checkpoints.after_commit(self.engine)
        self.growth.wrote(out.new)
        self.cursor, self.token = cursor, next_token
        self.in_response = self.in_response + out.seen if page is not None and page.more else 0
        self.pages, seen, self.complete_list_size = summary[0], summary[1], summary[2]
        if repeated and not self.repeated:  # logged once; the run's history keeps the count up to date
            warnings.append(self._shift_warning(repeated))
        self.repeated = repeated
        for w in warnings:
            self._say(w)
        log.info("page" if page is not None else "empty list", extra={"fields": {
            "event": "page" if page is not None else "empty", "source": self.source.name, "run": self.run_id,
            "page": self.pages, "records": out.seen, "new": out.new, "updated": out.updated, "deleted": out.deleted,
            "quarantined": out.quarantined, "total": seen, "of": self.complete_list_size}})
        if self.on_progress is not None:
            self.on_progress(Progress(self.source.name, self.run_id, self.pages, seen, self.complete_list_size,
                                      time.monotonic() - self.started, *summary[3:]))

    def _listed_again(self, page: Page, final: bool) -> frozenset[str]:
        """The page's (upstream) identifiers that earlier pages of this list held. Remembered before the page is
        committed: a page whose write fails ends the run (and its _Run)."""
        identifiers = [r.header.identifier for r in page.records] + [b.identifier for b in page.broken if b.identifier]
        again = frozenset(self.listed.again(identifiers))
        previous, self.last_listed = self.last_listed, identifiers[-1] if identifiers else self.last_listed
        if final and again and set(identifiers) == {previous}:
            # The last page holds only the record that ended the page before: a server whose list lost every
            # record it had left (changed past the list's `until`, out of its set) ends it so, ours does. No shift.
            return frozenset()
        return again

    def _notice_redirect(self) -> None:
        """A source that redirects to another host is said once a run, on the run: it may have moved. What the
        client noticed of its responses (an encoding HTTP corrects) is said on the run too."""
        self.fetch_notes += self.client.notes[self.client_notes_taken:]
        self.client_notes_taken = len(self.client.notes)
        to = self.client.redirected
        if to is None or self.said_moved:
            return
        self.said_moved = True
        name, codes = self.source.name, ", then ".join(str(status) for status in to.statuses)
        said = (f"the source redirects to another host, {urlsplit(to.base_url).netloc} (HTTP {codes}): its records "
                f"came from {to.base_url}")
        if not to.permanent:  # OAI-PMH's way to spread a repository's load (3.1.2.2): nothing to do
            self.fetch_notes.append(f"{said}; the redirect is temporary, so their provenance names the source's own "
                                    "base URL; nothing to do unless every run says so")
            return
        # the URL came in a Location header: quoted, it is a word for the shell, whatever it holds
        self.fetch_notes.append(
            f"{said}, and their provenance names it (a permanent redirect); if it has moved: "
            f"`oai source edit {name} --base-url {shlex.quote(to.base_url)}`")

    def _shift_warning(self, repeated: int) -> str:
        return (f"{SHIFTED}: {repeated} identifier{'s' if repeated > 1 else ''} came again on a later page, so "
                "records may have been skipped (a source that pages by offset skips a record for each one that "
                "moves or goes away ahead of the page asked for, and never lists one added there); "
                f"`oai harvest {self.source.name} --full` fetches them")

    def _complete(self, s, run: HarvestRun, now: datetime, *, keep_window: bool = False) -> None:  # noqa: ANN001
        """The run is done: the next incremental window starts where this list was taken, unless
        `keep_window` (a list cut short: the next run asks again from where this one began, or all again)."""
        run.status, run.ended = "complete", now
        src = s.get(Source, self.source.id)
        # The next incremental window starts at the upstream's clock (lacking it, the old start), but never after
        # this run asked for its list by ours: a responseDate in the future (a wrong clock, a hostile source) would
        # skip every change until then. A clock merely ahead of ours costs an overlap, not a loss.
        started = dates.format_moment(self.list_asked)
        listed = run.response_date or src.last_complete_response_date
        if listed is None or listed > started:
            if listed is not None and listed > dates.format_moment(self.list_asked + CLOCK_AHEAD):
                ahead = (f"the source's responseDate {listed} is ahead of our clock ({started}); the next "
                         "incremental run asks from our clock instead")
                run.warnings = self._merge_warnings(run.warnings, [ahead])
            listed = started
        if not keep_window:
            src.last_complete_response_date = listed
        elif self.from_date is None:  # a full list cut short: the next run lists everything again
            src.last_complete_response_date = None
        if self.granularity != src.granularity:
            src.granularity = self.granularity
        src.next_due = now + timedelta(seconds=src.every_seconds) if src.every_seconds else None
        if self.check_deletions:
            src.deletion_check_owed_by = run.id  # (taken over from an earlier run that owed it)
        s.execute(delete(HarvestCheckpoint).where(HarvestCheckpoint.source_id == self.source.id))

    def _relist(self, exc: UpstreamOAIError) -> None:
        """The token expired: list again from the list's start (this run's `from`).

        Not from the last datestamp held: OAI-PMH promises no order, and a list that looked sorted so far
        may still hold older records further on; they would be skipped and the run called complete. The
        records already held come again unchanged, which costs fetching, not writing."""
        new_from = self.from_date
        stalled = self.expired_at is not None and self.cursor <= self.expired_at  # got no further than last time
        if stalled or self.relists >= self.options.max_relists:
            raise HarvestError(f"the source's resumptionTokens keep expiring before the list ends "
                               f"({exc.message or exc.code}); stopped after {self.relists} re-list(s), "
                               f"{self.cursor} records into the list")
        self.relists, self.expired_at = self.relists + 1, self.cursor
        note = (f"resumptionToken refused ({exc.message or exc.code}) after {self.cursor} records; "
                f"listing again from {new_from or 'the beginning'} (the list's start)")
        now = dates.utcnow()
        with transaction(self.engine) as s:
            leases.renew_in(s, self.source.id, self.owner, self.options.lease_seconds, now)
            cp = s.get(HarvestCheckpoint, self.source.id)
            cp.resumption_token, cp.cursor, cp.from_date, cp.updated = None, 0, new_from, now
            run = s.get(HarvestRun, self.run_id)
            run.complete_list_size = None
            run.warnings = self._merge_warnings(run.warnings, [note])
        self.token, self.cursor, self.from_date, self.complete_list_size = None, 0, new_from, None
        self.seen_tokens.clear()  # a new list: offset-style tokens may well come back the same
        self.listed = ListedIdentifiers()  # and every record comes again, which is no shift
        self.endless = EndlessList()
        log.warning(note, extra={"fields": {"event": "relist", "source": self.source.name, "run": self.run_id,
                                            "from": new_from}})

    def _use_days(self, exc: UpstreamOAIError) -> None:
        """The source refuses a from with a time although it may declare seconds: ask by day from now on."""
        day = self.from_date[:10]
        note = (f"the source refused from={self.from_date} ({exc.message or exc.code}); it accepts days only "
                f"(Identify says {self.source.granularity}), so from={day} is used")
        with transaction(self.engine) as s:
            cp = s.get(HarvestCheckpoint, self.source.id)
            cp.from_date = day
            run = s.get(HarvestRun, self.run_id)
            run.warnings = self._merge_warnings(run.warnings, [note])
        self.from_date, self.granularity = day, dates.DAY
        log.warning(note, extra={"fields": {"event": "granularity", "source": self.source.name}})

    # -- deletions, when the source keeps none --

    def _detect_deletions(self) -> None:
        """Tombstone our records of this source that its complete ListIdentifiers no longer lists."""
        params = {"metadataPrefix": self.source.prefix}
        if self.source.set_spec:
            params["set"] = self.source.set_spec
        delivered, self.listed = self.listed, ListedIdentifiers()  # what this run's ListRecords listed
        listed = ListedIdentifiers()  # hashes: a set of a million identifiers would take 140 MB
        count, announced, repeated = 0, None, 0
        try:
            for page in self.client.pages("ListIdentifiers", in_parts=True, **params):
                if page.broken:
                    self._note("deletion check skipped: the source's identifier list has unreadable entries")
                    return
                repeated += len(listed.again(h.identifier for h in page.headers if not h.deleted))
                count += len(page.headers)
                if page.token is not None and page.token.complete_list_size is not None:
                    announced = page.token.complete_list_size
                if self.stop is not None and self.stop.is_set():
                    raise Stopped("asked to stop during the deletion check")
        except UpstreamOAIError as exc:
            if exc.code != "noRecordsMatch":
                self._note(f"deletion check skipped: {exc}")
                return
        except RepeatedToken as exc:
            self._note(f"deletion check skipped: {exc}")
            return
        if announced is not None and count < announced:  # a list cut short would tombstone what it left out
            self._note(f"deletion check skipped: the source's identifier list ended after {count} of the "
                       f"{announced} identifiers it announced (completeListSize)")
            return
        if repeated:  # the list shifted while it was read: live records it skipped would be tombstoned
            self._note(f"deletion check skipped: {repeated} identifiers came again on a later page of the source's "
                       "list (it shifted while it was read, so records it holds may have been left out)")
            return
        ours = select(Record.identifier, Record.upstream_identifier).where(
            Record.source_id == self.source.id, Record.deleted.is_(False))
        gone, matched, held, contradicted = [], 0, 0, 0
        # Streamed (a million rows at once would take hundreds of MB), and on SQLite outside a write transaction:
        # one would hold the write lock, and every fresh answer behind the write fence, while the rows are read.
        with reading(self.engine) as conn:
            for identifier, upstream_identifier in conn.execute(ours.execution_options(yield_per=5000)):
                held += 1
                if upstream_identifier in listed:
                    matched += 1
                elif upstream_identifier in delivered:  # its ListRecords gave it, live, in this very run
                    contradicted += 1
                elif listed:  # a source that lists nothing gets nothing tombstoned: only the count is said
                    gone.append(identifier)
        if held and not listed:
            self._note(f"deletion check: the source lists no identifiers at all; {held} records were "
                       "NOT tombstoned (check the source, then harvest with --full)")
            return
        if held and not matched:
            # Its ListIdentifiers names none of what it gave us (an outside audit met a source whose two lists
            # did not meet: the check tombstoned the whole source, and every run then brought it back).
            self._note(f"deletion check skipped: the source's identifier list ({len(listed)}) names none of the "
                       f"{held} records we hold from it, so it is not taken to say what was deleted")
            return
        if contradicted:
            self._note(f"deletion check: {contradicted} record(s) that this run's ListRecords gave are missing "
                       "from the source's ListIdentifiers; they were NOT tombstoned")
        missing = len(listed) - matched  # (fewer if two of our records share an upstream identifier)
        if missing > 0:
            self._note(f"deletion check: the source lists {missing} record(s) we do not hold (quarantined, skipped "
                       "by the source's paging, or listed by its ListIdentifiers only); `oai harvest --full` "
                       "fetches again what its ListRecords gives")
        for i in range(0, len(gone), 200):
            with transaction(self.engine) as s:
                now = fence.stamp(s)
                leases.renew_in(s, self.source.id, self.owner, self.options.lease_seconds, now)
                made = sum(1 for ident in gone[i:i + 200] if delete_record(s, ident, now=now) is not None)
                run = s.get(HarvestRun, self.run_id)
                run.deleted += made
        log.info("deletions", extra={"fields": {"event": "deletions", "source": self.source.name,
                                                "run": self.run_id, "listed": len(listed), "tombstoned": len(gone)}})

    # -- bookkeeping --

    def _note(self, line: str) -> None:
        with transaction(self.engine) as s:
            run = s.get(HarvestRun, self.run_id)
            run.warnings = self._merge_warnings(run.warnings, [line])
        self._say(line)

    def _say(self, warning: str) -> None:
        """A warning the run keeps, in the log too."""
        log.warning(_bounded(warning),
                    extra={"fields": {"event": "warning", "source": self.source.name, "run": self.run_id}})

    @staticmethod
    def _merge_warnings(existing: str | None, new: list[str]) -> str | None:
        lines = (existing or "").splitlines()
        extra = 0
        if lines and lines[-1].startswith("... and "):
            extra = int(lines.pop().split()[2])
        for line in map(_bounded, new):
            if line in lines:
                continue
            if len(lines) < MAX_WARNINGS:
                lines.append(line)
            else:
                extra += 1
        if extra:
            lines.append(f"... and {extra} more warnings")
        return "\n".join(lines) or None

    def _forget_checkpoint(self) -> None:
        with transaction(self.engine) as s:
            s.execute(delete(HarvestCheckpoint).where(HarvestCheckpoint.source_id == self.source.id,
                                                      HarvestCheckpoint.run_id == self.run_id))

    def _finish(self, status: str, error: str | None) -> RunSummary:
        now = dates.utcnow()
        self._notice_redirect()  # when only ListSets or the deletion check met it, or no page was written
        unwritten = self.fetch_notes[self.fetch_notes_written:]
        with transaction(self.engine) as s:
            run = s.get(HarvestRun, self.run_id)
            if run is None:  # the source was removed, its history with it, while this run stalled past its lease
                error = f"the source was removed meanwhile: {error}" if error else "the source was removed meanwhile"
                run = HarvestRun(id=self.run_id, status=status, full=self.options.full, pages=self.pages, seen=0, new=0,
                                 updated=0, unchanged=0, deleted=0, quarantined=0, error=error, worker=None,
                                 complete_list_size=self.complete_list_size)  # not added: a summary only
            # after a takeover, whoever took the source over may have resumed this very run: theirs now
            ours = run.worker == self.owner
            if ours and unwritten:
                run.warnings = self._merge_warnings(run.warnings, unwritten)
                for w in unwritten:
                    self._say(w)
            if ours and run.status != "complete":  # a completed list stays complete
                run.status, run.error, run.ended = status, error, now
                if self.paging_broken and run.warnings:  # its repeats are the loop, not a list that shifted
                    run.warnings = "\n".join(w for w in run.warnings.splitlines() if not w.startswith(SHIFTED)) or None
                if status == "failed" and not self.lease.lost.is_set():
                    src = s.get(Source, self.source.id)
                    if src is not None and src.every_seconds:
                        src.next_due = now + timedelta(seconds=self.options.retry_delay)
            summary = RunSummary.of(run, self.source.name, resumable=not self.paging_broken)
            if not ours:
                summary = RunSummary(**{**vars(summary), "status": status, "error": error})
        level = logging.INFO if status == "complete" else logging.WARNING
        log.log(level, "end", extra={"fields": {
            "event": "end", "source": self.source.name, "run": self.run_id, "status": summary.status,
            "pages": summary.pages, "seen": summary.seen, "new": summary.new, "updated": summary.updated,
            "deleted": summary.deleted, "quarantined": summary.quarantined, "error": error}})
        return summary


MAX_WARNING_CHARS = 1000


def _bounded(warning: str) -> str:
    """One line of at most MAX_WARNING_CHARS: a warning quotes what a source sent (a namespace, an identifier), and
    an outside audit had 20 records with 4 MB namespaces put 80 MB into one run's history and the log."""
    line = " ".join(warning.splitlines())
    return line if len(line) <= MAX_WARNING_CHARS else line[:MAX_WARNING_CHARS - 3] + "..."


def _shift_count(warnings: str | None) -> int:
    """The repeats a run's history counts so far (a resumed run goes on counting)."""
    found = _SHIFTED_COUNT.search(warnings or "")
    return int(found[1]) if found else 0


def _first(warnings: str | None, line: str) -> str:
    """The run's warnings with `line` first, in place of the one it restates: its count grows as the run goes on,
    and a run that may have skipped records says so before anything else (`oai harvest runs` shows the first)."""
    kept = [w for w in (warnings or "").splitlines() if not w.startswith(SHIFTED)]
    return "\n".join([line, *kept])
