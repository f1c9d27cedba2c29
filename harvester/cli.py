"""`oai source ...` and `oai harvest ...`: thin click commands over the importable functions.

Mounted into `oai` through the `oai.commands` entry points; all work happens in sources.py,
runs.py, schedule.py and history.py.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import click

from harvester import logs, workers
from harvester.client import FetchPolicy
from harvester.dates import utcnow
from harvester.errors import HarvestError
from harvester.history import check_under_way, list_quarantine, list_runs, quarantined_bytes, run_status
from harvester.leases import MIN_LEASE_SECONDS, single_worker
from harvester.progress import Board, BoardHandler
from harvester.runs import RunOptions, RunSummary, harvest_source, incremental_from
from harvester.schedule import SlotResult, format_interval, harvest_loop, parse_interval
from harvester.sources import add_source, change_source, move_source, remove_source, show_source, source_lines
from oai.clitext import TEXT


def _engine(ctx: click.Context):  # noqa: ANN202
    from oai.cli import _engine as engine_of  # CLI glue: the database from `oai --database`

    return engine_of(ctx)  # (disposed when the command ends)


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


class _Interval(click.ParamType):
    name = "interval"

    def convert(self, value, param, ctx):  # noqa: ANN001, ANN201
        if value is None or isinstance(value, int):
            return value
        try:
            return parse_interval(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class _Seconds(click.FloatRange):
    """A number of seconds: a FloatRange that refuses infinity and NaN too (an infinite delay waits forever)."""

    def convert(self, value, param, ctx):  # noqa: ANN001, ANN201
        seconds = super().convert(value, param, ctx)
        if not math.isfinite(seconds):
            self.fail(f"{value!r} is not a finite number of seconds.", param, ctx)
        return seconds


def _schedule(every_seconds: int | None) -> str:
    return f"every {format_interval(every_seconds)}" if every_seconds else "harvested by hand only"


# -- oai source -------------------------------------------------------------------------------

@click.group()
def source() -> None:
    """Add, list, show and remove the OAI-PMH repositories we harvest."""


@source.command("add")
@click.argument("name", type=TEXT)
@click.argument("base_url", type=TEXT)
@click.option("--prefix", default="oai_dc", show_default=True, type=TEXT, help="metadataPrefix to harvest.")
@click.option("--set", "set_spec", metavar="SPEC", type=TEXT, help="Harvest only this upstream set.")
@click.option("--every", type=_Interval(), default="1d", show_default=True,
              help="How often the worker harvests it (1d, 12h, 30m, 1w, or never).")
@click.option("--keep-identifiers", is_flag=True, help="Serve the upstream identifiers instead of ours.")
@click.option("--detect-deletions", is_flag=True,
              help="Compare ListIdentifiers with the store after each run (for deletedRecord no/transient).")
@click.pass_context
def source_add(ctx: click.Context, name: str, base_url: str, prefix: str, set_spec: str | None,
               every: int | None, keep_identifiers: bool, detect_deletions: bool) -> None:
    """Check BASE_URL (Identify, ListMetadataFormats, ListSets) and add it as source NAME."""
    logs.configure("logfmt", logging.WARNING)  # retries are said with their reasons, not as a bare "retry"
    engine = _engine(ctx)
    try:
        view, warnings = add_source(engine, name, base_url, prefix=prefix, set_spec=set_spec, every_seconds=every,
                                    keep_identifiers=keep_identifiers, detect_deletions=detect_deletions,
                                    policy=_policy())
    except HarvestError as exc:
        raise _fail(exc) from None
    for w in warnings:
        click.echo(f"warning: {w}", err=True)
    click.echo(f"added {view.name}: {view.repository_name or view.base_url} ({view.prefix}"
               f"{', set ' + view.set_spec if view.set_spec else ''}; granularity {view.granularity}; "
               f"deletedRecord {view.deleted_record}; {_schedule(view.every_seconds)})")


@source.command("edit")
@click.argument("name", type=TEXT)
@click.option("--every", type=_Interval(), help="How often the worker harvests it (1d, 12h, 30m, 1w, or never).")
@click.option("--pause/--resume", "paused", default=None,
              help="Pause: the worker leaves it alone (`oai harvest NAME` still runs it). Resume: harvested again.")
@click.option("--detect-deletions/--no-detect-deletions", "detect", default=None,
              help="Compare ListIdentifiers with the store after each run, or stop doing so.")
@click.option("--base-url", type=TEXT,
              help="Where the source has moved: checked as `source add` checks a source, for the same "
                   "format and set.")
@click.pass_context
def source_edit(ctx: click.Context, name: str, every: int | None, paused: bool | None, detect: bool | None,
                base_url: str | None) -> None:
    """Change how source NAME is harvested; its records and history stay."""
    every_given = ctx.get_parameter_source("every") == click.core.ParameterSource.COMMANDLINE
    if not every_given and paused is None and detect is None and base_url is None:
        raise click.UsageError("say what to change: --every, --pause/--resume, --detect-deletions/"
                               "--no-detect-deletions, --base-url")
    changes: dict = {"enabled": None if paused is None else not paused, "detect_deletions": detect}
    if every_given:
        changes["every_seconds"] = every
    engine = _engine(ctx)
    try:
        if base_url is not None:
            logs.configure("logfmt", logging.WARNING)  # retries are said with their reasons, as by `source add`
            moved, warnings = move_source(engine, name, base_url, detect_deletions=detect, policy=_policy())
            for w in warnings:
                click.echo(f"warning: {w}", err=True)
            click.echo(f"{moved.name}: base URL {moved.base_url} ({moved.repository_name or 'no repositoryName'}; "
                       f"granularity {moved.granularity}; deletedRecord {moved.deleted_record})")
        view = change_source(engine, name, **changes)
    except HarvestError as exc:
        raise _fail(exc) from None
    due = f"{view.next_due:%Y-%m-%d %H:%M} UTC" if view.next_due else "-"
    click.echo(f"{view.name}: {_schedule(view.every_seconds)}{'' if view.enabled else ' (paused)'}, "
               f"next {due}; detect deletions {'yes' if view.detect_deletions else 'no'}")


@source.command("list")
@click.pass_context
def source_list(ctx: click.Context) -> None:
    """One line per source."""
    engine = _engine(ctx)
    rows = source_lines(engine)
    if not rows:
        click.echo("no sources yet: add one with `oai source add NAME BASE_URL`")
    now = utcnow()
    for line in rows:
        s, run = line.source, line.last_run
        last = f"{line.last_complete:%Y-%m-%d %H:%M} UTC" if line.last_complete else "never"
        due = f"{s.next_due:%Y-%m-%d %H:%M} UTC" if s.next_due else "-"
        status = run_status(run.status, s.lease_expires, now, s.lease_owner) if run is not None else None
        said = f"\tlast run #{run.id} {status}" if run is not None and status != "complete" else ""
        click.echo(f"{s.name}\t{s.base_url}\t{s.prefix}{'/' + s.set_spec if s.set_spec else ''}\t"
                   f"{_schedule(s.every_seconds)}{'' if s.enabled else ' (paused)'}\t"
                   f"last complete {last}\tnext {due}{said}")


@source.command("show")
@click.argument("name", type=TEXT)
@click.pass_context
def source_show(ctx: click.Context, name: str) -> None:
    """Everything we know about one source."""
    try:
        d = show_source(_engine(ctx), name)
    except HarvestError as exc:
        raise _fail(exc) from None
    s = d.source
    now = utcnow()
    fields = [
        ("name", s.name), ("base URL", s.base_url), ("repository", s.repository_name),
        ("prefix", s.prefix), ("namespace", s.metadata_namespace), ("schema", s.metadata_schema),
        ("set", s.set_spec or "(all)"), ("granularity", s.granularity), ("deletedRecord", s.deleted_record),
        ("identifiers", "upstream (kept)" if s.keep_identifiers else "ours (oai:<repository>:<source>:...)"),
        ("detect deletions", "yes" if s.detect_deletions else "no"),
        ("every", format_interval(s.every_seconds) + ("" if s.enabled else " (paused: `oai source edit --resume`)")),
        # (the `from`: the source's responseDate, or our clock when that was ahead of ours, less the overlap)
        ("last complete", f"{d.last_complete:%Y-%m-%d %H:%M:%S} UTC (the next run asks "
                          f"`from` {incremental_from(s.last_complete_response_date, s.granularity)})"
         if d.last_complete and s.last_complete_response_date else "never"),
        ("next due", f"{s.next_due:%Y-%m-%d %H:%M:%S} UTC" if s.next_due else "-"),
        ("lease", "free" if not s.lease_owner else f"{s.lease_owner} until {s.lease_expires:%H:%M:%S} UTC"
         + (" (lapsed: that harvest stopped without letting go)"
            if run_status("running", s.lease_expires, now, s.lease_owner) == "stalled" else "")),
        ("records", f"{d.records} (+ {d.deleted} deleted)"), ("quarantined", d.quarantined),
    ]
    if d.checkpoint is not None:
        fields.append(("unfinished run", f"#{d.checkpoint.run_id}, {d.checkpoint.cursor} records into its list"))
    if (owed_by := s.deletion_check_owed_by) is not None:
        worker = d.last_run.worker if d.last_run is not None and d.last_run.id == owed_by else None
        fields.append(("deletion check", f"under way (run #{owed_by})"
                       if check_under_way(worker, s.lease_owner, s.lease_expires, now) else
                       f"owed: run #{owed_by} did not finish it; the next complete run does it"))
    if d.last_run is not None:
        r = d.last_run
        fields.append(("last run", f"#{r.id} {run_status(r.status, s.lease_expires, now, s.lease_owner)}, "
                                   f"{_pages(r.pages)}, "
                                   f"{r.seen} records"
                                   + (f": {r.error}" if r.error else "")))
    for label, value in fields:
        click.echo(f"{label + ':':18}{value}")


@source.command("remove")
@click.argument("name", type=TEXT)
@click.option("--records", type=click.Choice(["keep", "delete"]),
              help="keep: its records stay served; delete: they become tombstones (served as deleted).")
@click.pass_context
def source_remove(ctx: click.Context, name: str, records: str | None) -> None:
    """Forget a source, keeping or deleting its records; its run history goes with it (its quarantine entries stay,
    as a removed source's)."""
    engine = _engine(ctx)
    try:
        d = show_source(engine, name)
    except HarvestError as exc:
        raise _fail(exc) from None
    if records is None:
        if not sys.stdin.isatty():
            raise click.ClickException("say what to do with the source's records: --records keep or --records delete")
        records = click.prompt(f"{name} has {d.records} records. Keep them (still served) or delete them "
                               "(served as deleted)?", type=click.Choice(["keep", "delete"]))
    try:
        made = remove_source(engine, name, records)
    except HarvestError as exc:
        raise _fail(exc) from None
    click.echo(f"removed {name}; " + (f"{made} records deleted (tombstones)" if records == "delete"
                                      else f"{d.records} records kept"))


# -- oai harvest ------------------------------------------------------------------------------

class _HarvestGroup(click.Group):
    """`oai harvest NAME` and `oai harvest --all` mean `oai harvest run ...`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


def _setup(log_format: str, progress: bool) -> Board | None:
    """Logs to stderr (logfmt/JSON); on a terminal a progress board, with only warnings logged above it."""
    if progress and sys.stderr.isatty():
        board = Board()
        logs.configure(log_format, logging.WARNING, handler=BoardHandler(board))
        return board
    logs.configure(log_format, logging.INFO)
    return None


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """SIGTERM/SIGINT set the stop event: harvests end cleanly after the current page."""
    stop = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()
        click.echo("stopping after the current page (the checkpoint is kept)...", err=True)

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _policy(**overrides: object) -> FetchPolicy:
    """The fetch policy of OAI_HARVEST_* and `overrides`; a bad setting is a one-line error, not a traceback."""
    try:
        return FetchPolicy.from_environ(**overrides)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


def _options(full: bool, detect: bool | None, delay: float | None, timeout: float | None,
             attempts: int | None) -> RunOptions:
    policy = _policy(delay=delay, read_timeout=timeout, attempts=attempts)
    env = os.environ
    try:
        extra = {k: float(env[v]) for k, v in (("lease_seconds", "OAI_HARVEST_LEASE_SECONDS"),
                                               ("retry_delay", "OAI_HARVEST_RETRY_DELAY")) if v in env}
    except ValueError as exc:
        raise click.ClickException(f"a harvest setting in the environment is not a number: {exc}") from None
    if not MIN_LEASE_SECONDS <= extra.get("lease_seconds", MIN_LEASE_SECONDS) < math.inf:
        raise click.ClickException(f"OAI_HARVEST_LEASE_SECONDS must be at least {MIN_LEASE_SECONDS:g} and finite (it is renewed "
                                   f"every third of it), not {extra['lease_seconds']:g}")
    if not 0 <= extra.get("retry_delay", 0) < math.inf:
        raise click.ClickException(f"OAI_HARVEST_RETRY_DELAY must be a finite number of seconds, 0 or more, not {extra['retry_delay']:g}")
    try:
        workers.processes()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    return RunOptions(full=full, detect_deletions=detect, policy=policy, **extra)


def _pages(n: int) -> str:
    return "1 page" if n == 1 else f"{n} pages"


def _summary_line(s: RunSummary) -> str:
    size = f" of {s.complete_list_size}" if s.complete_list_size is not None else ""
    text = (f"{s.source}: run #{s.run_id} {s.status}: {_pages(s.pages)}, {s.seen}{size} records (new {s.new}, "
            f"updated {s.updated}, unchanged {s.unchanged}, deleted {s.deleted}, quarantined {s.quarantined})")
    if s.error:
        text += f"\n  error: {s.error}"
    for w in s.warnings:
        text += f"\n  warning: {w}"
    if s.quarantined:  # an incremental run asks only for what changed since: they would stay out for good
        text += (f"\n  quarantined: `oai harvest quarantine {s.source}` says why; once that is mended (by the source, "
                 f"or here for an identifier clash), `oai harvest {s.source} --full` asks for them again")
    return text


_fetch_options = [
    click.option("--delay", type=_Seconds(0), help="Seconds between two requests to one host (default 1)."),
    click.option("--timeout", type=_Seconds(0, min_open=True), help="Seconds to wait for an answer (default 60)."),
    click.option("--attempts", type=click.IntRange(1, 50), help="Tries per request, retries included (default 6)."),
    click.option("--log-format", type=click.Choice(["logfmt", "json"]), default="logfmt", show_default=True),
]


def _with_fetch_options(f):  # noqa: ANN001, ANN202
    for option in reversed(_fetch_options):
        f = option(f)
    return f


@click.group(cls=_HarvestGroup)
def harvest() -> None:
    """Harvest sources: `oai harvest NAME`, `oai harvest --all`, `oai harvest worker`, runs, quarantine.

    `oai harvest NAME ...` and `oai harvest --all ...` are `oai harvest run NAME ...`: its options
    (--full, --all, --jobs, --detect-deletions, --delay, --timeout, ...) are in `oai harvest run --help`.
    """


@harvest.command("run")
@click.argument("name", required=False, type=TEXT)
@click.option("--all", "all_due", is_flag=True, help="Harvest every due source (several at once, --jobs).")
@click.option("--full", is_flag=True,
              help="Harvest everything again from the start, not only what changed (an unfinished run is abandoned).")
@click.option("--detect-deletions/--no-detect-deletions", default=None,
              help="Compare the source's ListIdentifiers with the store and tombstone what disappeared.")
@click.option("--jobs", type=click.IntRange(1, 32), default=2, show_default=True, help="Sources at once (--all).")
@_with_fetch_options
@click.option("--no-progress", is_flag=True, help="No progress board, even on a terminal.")
@click.pass_context
def harvest_run(ctx: click.Context, name: str | None, all_due: bool, full: bool, detect_deletions: bool | None,
                jobs: int, delay: float | None, timeout: float | None, attempts: int | None, log_format: str,
                no_progress: bool) -> None:
    """Harvest source NAME (incrementally unless --full), or every due source with --all."""
    if bool(name) == all_due:
        raise click.UsageError("give a source NAME or --all, not both" if name else "give a source NAME or --all")
    if name and ctx.get_parameter_source("jobs") is click.core.ParameterSource.COMMANDLINE:
        raise click.UsageError("--jobs is how many sources --all harvests at once; one source is one harvest")
    engine = _engine(ctx)
    ctx.call_on_close(workers.shutdown)  # before the interpreter's exit, whose own shutdown has no bound
    options = _options(full, detect_deletions, delay, timeout, attempts)
    board = _setup(log_format, not no_progress)
    progress = board.update if board is not None else None
    with _stop_on_signals() as stop:
        if name:
            try:
                summary = harvest_source(engine, name, options, stop=stop, on_progress=progress)
            except HarvestError as exc:
                raise _fail(exc) from None
            _report(board, summary.source, _summary_line(summary))
            if summary.status != "complete":
                again = ("; run it again to go on with it" if summary.resumable else
                         "; running it again lists again from the start, and loops again unless the source is mended")
                raise click.ClickException(f"the harvest of {name} did not complete ({summary.status}){again}")
            return
        try:
            results = harvest_loop(engine, jobs=jobs, options=options, stop=stop, once=True, on_progress=progress,
                                   on_result=lambda r: _report(board, r.source, _result_line(r)))
        except HarvestError as exc:  # the schema changed under it
            raise _fail(exc) from None
    if not results:
        click.echo("no source is due (a due source being harvested elsewhere is left to that harvest)", err=True)
    if any(r.summary is None or r.summary.status != "complete" for r in results):
        raise click.ClickException("some harvests did not complete (see above)")


def _result_line(r: SlotResult) -> str:
    return _summary_line(r.summary) if r.summary is not None else f"{r.source}: not harvested: {r.error}"


def _report(board: Board | None, source_name: str, text: str) -> None:
    if board is not None:
        board.finish(source_name, text)
    else:
        click.echo(text, err=True)


@harvest.command("worker")
@click.option("--jobs", type=click.IntRange(1, 32), default=2, show_default=True, help="Sources at once.")
@click.option("--poll", type=_Seconds(0.05), default=30.0, show_default=True,
              help="Seconds between looks for due sources when idle.")
@_with_fetch_options
@click.pass_context
def harvest_worker(ctx: click.Context, jobs: int, poll: float, delay: float | None, timeout: float | None,
                   attempts: int | None, log_format: str) -> None:
    """Harvest sources as they come due, until SIGTERM (for systemd)."""
    engine = _engine(ctx)
    ctx.call_on_close(workers.shutdown)
    options = _options(False, None, delay, timeout, attempts)
    logs.configure(log_format, logging.INFO)
    log = logging.getLogger("harvester.worker")
    try:
        with single_worker(engine), _stop_on_signals() as stop:
            log.info("worker started", extra={"fields": {"event": "worker", "pid": os.getpid(), "jobs": jobs}})
            harvest_loop(engine, jobs=jobs, options=options, stop=stop, once=False, poll=poll)
    except HarvestError as exc:
        raise _fail(exc) from None
    log.info("worker stopped", extra={"fields": {"event": "worker", "pid": os.getpid()}})


@harvest.command("runs")
@click.argument("name", required=False, type=TEXT)
@click.option("--limit", type=click.IntRange(1, 2**31 - 1), default=20, show_default=True)
@click.option("--warnings", "every_warning", is_flag=True, help="Every warning of each run, not only the first.")
@click.pass_context
def harvest_runs(ctx: click.Context, name: str | None, limit: int, every_warning: bool) -> None:
    """The run history: started, ended, status, pages, new, updated, deleted, quarantined, error."""
    try:
        rows = list_runs(_engine(ctx), name, limit)
    except HarvestError as exc:
        raise _fail(exc) from None
    if not rows:
        click.echo("no harvest runs yet")
        return
    click.echo(f"{'run':>5} {'source':16} {'started (UTC)':19} {'ended (UTC)':19} {'status':11} {'pages':>5} "
               f"{'seen':>7} {'new':>6} {'upd':>6} {'del':>6} {'quar':>5}  error")
    for r in rows:
        ended = f"{r.ended:%Y-%m-%d %H:%M:%S}" if r.ended else "-"
        kind = "full" if r.full else f"from {r.from_date}"
        click.echo(f"{r.id:>5} {r.source[:16]:16} {r.started:%Y-%m-%d %H:%M:%S} {ended:19} {r.status:11} "
                   f"{r.pages:>5} {r.seen:>7} {r.new:>6} {r.updated:>6} {r.deleted:>6} {r.quarantined:>5}  "
                   f"{r.error or ''}")
        if every_warning:
            click.echo(f"      ({kind}{f', {len(r.warnings)} warning(s):' if r.warnings else ''})")
            for w in r.warnings:
                click.echo(f"        {w}")
            continue
        warned = f", {len(r.warnings)} warning(s), first: {r.warnings[0]}" if r.warnings else ""
        click.echo(f"      ({kind}{warned}{'; all: --warnings' if len(r.warnings) > 1 else ''})")


@harvest.command("quarantine")
@click.argument("name", required=False, type=TEXT)
@click.option("--limit", type=click.IntRange(1, 2**31 - 1), default=100, show_default=True)
@click.option("--raw", "raw_id", type=int, metavar="ID", help="Print the raw bytes of one entry.")
@click.pass_context
def harvest_quarantine(ctx: click.Context, name: str | None, limit: int, raw_id: int | None) -> None:
    """Records that could not be ingested: source, run, upstream identifier and why."""
    engine = _engine(ctx)
    try:
        if raw_id is not None:
            click.echo(quarantined_bytes(engine, raw_id))
            return
        rows = list_quarantine(engine, name, limit)
    except HarvestError as exc:
        raise _fail(exc) from None
    if not rows:
        click.echo("the quarantine is empty")
    for q in rows:
        shown = _escaped(q.upstream_identifier) if q.upstream_identifier else "(identifier unreadable)"
        click.echo(f"#{q.id} {q.created:%Y-%m-%d %H:%M:%S} UTC {q.source or '(removed source)'} run {q.run_id} "
                   f"{shown} [{q.size} bytes]: {q.reason}")


def _escaped(text: str) -> str:
    """`text` with what a terminal would act on or hide (controls: a CR overwrote the line; a C1 CSI starts an
    escape sequence; invisible format characters) written as Python escapes, so that it is seen as it is."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
