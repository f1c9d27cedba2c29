"""`oai load`: files, directories and stdin into the store, in batches, idempotently.

Parsing and crosswalks run in worker processes (both cores); writes happen here, one
transaction per batch. A bad file is reported and skipped; it never stops the others.
"""

from __future__ import annotations

import functools
import json
import os
import re
import stat
import string
import sys
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from oai import orphans
from oai.formats.base import FormatError, Ingested
from oai.formats.safexml import MAX_BYTES
from oai.store import checkpoints
from oai.store.engine import transaction
from oai.store.models import OAISet, Source
from oai.store.records import Change, Existing, RecordIn, ensure_sets, existing_records, upsert_records
from oai.store.statistics import GrowthAnalyzer, analyze
from oai.store.validation import OAI_IDENTIFIER, check_identifier, in_oai_scheme, shown

DEFAULT_TEMPLATE = "oai:{repository_identifier}:{doi_or_stem}"
BATCH = 500
WRITE_ATTEMPTS = 3  # a batch that met a concurrent writer's new rows is written again
CHUNK = 64  # inputs per task sent to a worker process
SUFFIXES = (".xml", ".jats", ".nxml")
# Characters the OAI identifier guidelines allow in the local part; others are %-encoded.
# Kept as they are: the characters a URI path may hold, and '%' where it already starts an escape
# (so identifiers made before stay the same); a lone '%' is encoded, as anyURI requires.
_UNSAFE = re.compile(r"[^a-zA-Z0-9\-_.!~*'();/?:@&=+$,%]|%(?![0-9A-Fa-f]{2})")


class LoadError(ValueError):
    """A problem with one input, reported with its name."""


@dataclass
class LoadSummary:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.new + self.updated + self.unchanged + len(self.failed)


def discover(paths: Sequence[str], seen: set[tuple[int, int]] | None = None) -> Iterator[str]:
    """Every input: files as given, XML files under directories (sorted, recursive), '-' for stdin. `seen`: the
    directories already walked (by device and inode), shared by the calls of one load."""
    seen = set() if seen is None else seen
    for p in paths:
        if p == "-":
            yield p
            continue
        path = Path(p)
        if path.is_dir():
            yield from _walk(str(path), seen)
        else:
            yield str(path)


def _inode(path: str) -> tuple[int, int]:
    """What one file or directory is, whatever its names (links, paths given twice)."""
    status = os.stat(path)
    return status.st_dev, status.st_ino


def _walk(directory: str, seen: set[tuple[int, int]]) -> Iterator[str]:
    """XML files below `directory`, in the order sorted(Path.rglob()) gives (by path components),
    with os.scandir: a million files are listed in seconds, not in a minute. Links to directories are followed,
    each directory walked once: a link to its own parent looped until the OS refused (a traceback), and `current
    -> 2024-1` loaded each file twice, as a collision (an outside audit); a tree of links to storage is loaded."""
    key = _inode(directory)
    if key in seen:
        return
    seen.add(key)
    with os.scandir(directory) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        if entry.name.startswith(".") or entry.name == "__MACOSX":  # hidden, or a Mac archive's resource forks (._a.xml:
            continue  # binary, each a failure said; an outside audit), as `ls` and shells leave them out
        if entry.is_dir():
            yield from _walk(entry.path, seen)
        elif os.path.splitext(entry.name)[1].lower() in SUFFIXES and (entry.is_file() or entry.is_symlink()):
            yield entry.path  # a dangling link fails as it does given by name, not skipped unsaid


def _each_file_once(names: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """`names` without a second name of one file (a link to it, a path given twice); warnings that say so. An outside
    audit: `latest.xml -> 2024-1/a.xml` failed as colliding with itself, or without a DOI was published twice."""
    once: list[str] = []
    said: list[tuple[str, str]] = []
    first: dict[tuple[int, int], str] = {}
    for name in names:
        try:
            key = _inode(name) if not _is_stream(name) else None
        except OSError:  # not there, a dangling link: it fails with its own message when read
            key = None
        if key is not None:
            if key in first:
                said.append((name, f"the same file as {first[key]}: read once"))
                continue
            first[key] = name
        once.append(name)
    return once, said


def _quote_local(local: str) -> str:
    """`local` with what an identifier cannot hold %-encoded; a file name's bytes that are not UTF-8 (Python holds
    them as surrogates: a zip made on Windows) as the bytes they are (an outside audit: a traceback, and the
    good files of the batch lost)."""
    return _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode("utf-8", "surrogateescape")), local)


@functools.cache  # one template a load, asked for every record
def template_fields(template: str) -> frozenset[str]:
    """The names a template uses, however written (`{stem}`, `{stem!s}`, `{stem:}`); no attribute or index access,
    no other conversion or format (an outside audit: `{stem!r}` put quotes in identifiers, `{stem:>40}` spaces).
    Raises LoadError: the CLI asks before reading a file (it was said once a file, 3,000 times)."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise LoadError(f"bad identifier template {template!r}: {exc}") from None
    names = frozenset(name for _, name, _, _ in parsed if name is not None)
    for name in names:
        if name not in ("repository_identifier", "doi", "stem", "doi_or_stem"):
            raise LoadError(f"bad identifier template {template!r}: {{{name}}} is not one of "
                            "{repository_identifier}, {doi}, {stem}, {doi_or_stem}")
    for _, name, spec, conversion in parsed:
        if name is not None and (spec or conversion not in (None, "s")):
            raise LoadError(f"bad identifier template {template!r}: {{{name}}} is written with a conversion or "
                            "format; write it as {" + name + "}")
    return names


def _is_stream(name: str) -> bool:
    """stdin, as `-` or by a name of the system's (/dev/stdin, /dev/fd/63 of a shell's `<(...)`): its "stem" names
    no document (an outside audit: `oai load <(cat a.xml)` made oai:...:63, which the next such load overwrote)."""
    return name == "-" or name in ("/dev/stdin", "/proc/self/fd/0") or name.startswith(("/dev/fd/", "/proc/self/fd/"))


def make_identifier(template: str, *, repository_identifier: str, name: str, doi: str | None) -> str:
    """The OAI identifier for an input: the template filled with DOI, file stem and our repository id."""
    fields = template_fields(template)
    if _is_stream(name) and ("stem" in fields or ("doi_or_stem" in fields and not doi)):
        # Every such document would be named "-" or "stdin" and each would overwrite the one before.
        raise LoadError("a document read from stdin has no file name to name it by: "
                        "it needs a DOI, or load it from a file")
    stem = Path(name).stem
    values = {
        "repository_identifier": repository_identifier,
        "doi": _quote_local(doi or ""),
        "stem": _quote_local(stem),
        "doi_or_stem": _quote_local(doi.lower() if doi else stem),
    }
    if "doi" in fields and not doi:
        raise LoadError("the identifier template needs a DOI and the document has none")
    try:
        identifier = template.format(**values)
    except (KeyError, IndexError, ValueError) as exc:
        raise LoadError(f"bad identifier template {template!r}: {exc}") from None
    try:
        check_identifier(identifier)
    except ValueError as exc:
        raise LoadError(f"cannot serve it: {exc}") from None
    if in_oai_scheme(identifier) and not OAI_IDENTIFIER.fullmatch(identifier):
        raise LoadError(f"cannot serve it: {shown(identifier)} is in the oai scheme but not in its syntax "
                        "(oai:repository.example:local, with every character but letters, digits and "
                        "-_.!~*'();/?:@&=+$,% percent-encoded), which Identify promises harvesters")
    return identifier


def _ingest_one(job: tuple[str, bytes | None, bool]) -> tuple[str, Ingested | None, str | None]:
    """Worker: read and ingest one input; returns (name, result, error)."""
    from oai.formats.registry import ingest_document

    name, data, full_text = job
    try:
        if data is None:
            data = _read_file(name)
        data, read_as = as_its_bytes_say(data)
        ingested = ingest_document(data, full_text=full_text)  # the report names the file itself
        return name, replace(ingested, warnings=(read_as, *ingested.warnings)) if read_as else ingested, None
    except FormatError as exc:
        return name, None, str(exc)
    except OSError as exc:
        return name, None, f"cannot read: {exc.strerror or exc}"


def _read_file(name: str) -> bytes:
    """A file's or a pipe's bytes (`<(unzip -p ...)`, a named pipe), at most as many as a document may have: an outside
    audit loaded a link to /dev/zero until 10 GB were in memory. A device or a socket is no document."""
    mode = os.stat(name).st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
        raise FormatError("not a file (a device or a socket): nothing to load")
    with open(name, "rb") as file:
        data = file.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise FormatError(f"document too large: more than {MAX_BYTES} bytes (the limit)")
    return data


_DECLARED = re.compile(rb"""<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_LATIN_1 = frozenset(("iso-8859-1", "iso8859-1", "latin-1", "latin1", "l1", "iso-ir-100", "cp819"))
_SINGLE_BYTE_WESTERN = _LATIN_1 | {"windows-1252", "cp1252"}


def as_its_bytes_say(data: bytes) -> tuple[bytes, str | None]:
    """`data`, and why it is read otherwise than it declares, where its bytes tell: a file declared ISO-8859-1 (or
    windows-1252) whose bytes are UTF-8, or declared ISO-8859-1 but holding windows-1252's quotes and dashes (bytes
    0x80-0x9F, control characters in ISO-8859-1). An outside audit found such files stored as "SÃ£o Paulo", and
    with U+0093 for a quote, without a word; the harvester lets the bytes decide as well."""
    declared = _DECLARED.match(data)
    if declared is None:
        return data, None
    name = declared.group(1).decode("ascii")
    codec = name.lower().replace("_", "-")
    if codec not in _SINGLE_BYTE_WESTERN or data.isascii():
        return data, None
    as_utf8 = data[: declared.start(1)] + b"UTF-8" + data[declared.end(1):]
    try:
        data.decode("utf-8")
        return as_utf8, f"it declares the encoding {name}, but its bytes are UTF-8: read as UTF-8"
    except UnicodeDecodeError:
        pass
    if codec not in _LATIN_1 or not re.search(rb"[\x80-\x9f]", data):
        return data, None
    try:
        text = as_utf8.decode("cp1252")
    except UnicodeDecodeError:  # a byte windows-1252 has no character for: as declared
        return data, None
    return text.encode("utf-8"), (f"it declares the encoding {name}, but holds bytes ISO-8859-1 has as control "
                                  "characters (windows-1252's quotes and dashes): read as windows-1252")


def _ingest_many(jobs: list[tuple[str, bytes | None, bool]]) -> list[tuple[str, Ingested | None, str | None]]:
    return [_ingest_one(job) for job in jobs]


def _results(jobs: list[tuple[str, bytes | None, bool]], workers: int) -> Iterator[tuple[str, Ingested | None, str | None]]:
    """Results in input order; with workers, a bounded number of chunks in flight (never idle between them)."""
    if workers <= 1 or len(jobs) < 64:
        yield from map(_ingest_one, jobs)
        return
    from oai.formats.registry import preload

    preload()  # compile the schemas once; forked workers inherit them
    pool = ProcessPoolExecutor(max_workers=workers, initializer=orphans.exit_with, initargs=(os.getpid(),))
    try:
        pending: deque[Future] = deque()
        for i in range(0, len(jobs), CHUNK):
            pending.append(pool.submit(_ingest_many, jobs[i : i + CHUNK]))
            if len(pending) >= 16 * workers:  # enough work queued to cover a batch write
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()
    finally:  # stopped (Ctrl-C): the chunks not started yet are dropped, not parsed for nothing
        pool.shutdown(cancel_futures=True)


def _make_sets(session: Session, set_list: list[tuple[str, str | None]]) -> None:
    """The sets of a load; a name given renames a set that exists (SPEC=NAME)."""
    ensure_sets(session, dict(set_list))
    for spec, name in set_list:
        if name:
            session.execute(update(OAISet).where(OAISet.spec == spec).values(name=name))


def _replaced(session: Session, batch: list[tuple[str, RecordIn]],
              existing: Mapping[str, Existing]) -> list[tuple[str, str]]:
    """Warnings for the inputs that replace a stored record with what looks like another document (another
    title), or with fewer formats (its jats, say, then served as deleted): an identifier made from a file's stem
    (1.xml of another issue) or a DOI given twice replaced another document without a word (an outside audit).
    A correction keeps its title and formats, and is said nothing of."""
    from oai.store.models import RecordMetadata

    live = {record.identifier: row for _, record in batch  # (a file loaded again as it was: nothing to say)
            if (row := existing.get(record.identifier)) is not None and not row.deleted
            and row.digest != record.digest()}
    if not live:
        return []
    had: dict[int, set[str]] = {}
    for record_id, prefix in session.execute(select(RecordMetadata.record_id, RecordMetadata.prefix).where(
            RecordMetadata.record_id.in_([row.id for row in live.values()]), RecordMetadata.xml.isnot(None))):
        had.setdefault(record_id, set()).add(prefix)
    said = []
    for name, record in batch:
        row = live.get(record.identifier)
        if row is None:
            continue
        lost = sorted(had.get(row.id, set()) - set(record.metadata))
        if lost:
            said.append((name, f"it replaces {record.identifier}, which had {', '.join(lost)} too: "
                               f"{', '.join(lost)} is now served as deleted for it (if it is another document, give "
                               "it an identifier of its own with --identifier-template)"))
        before, now = _title(row.citation), _title(record.citation)
        if before and now and _words(before) != _words(now):
            said.append((name, f"it replaces {record.identifier}, which was titled {shown(before)}: if it is "
                               "another document, give it an identifier of its own with --identifier-template, "
                               "and load the other again"))
    return said


def _title(citation: str | None) -> str | None:
    return json.loads(citation).get("title") if citation else None


def _words(title: str) -> str:
    """A title as compared: its words, case aside."""
    return " ".join(title.casefold().split())


def _harvested(session: Session, existing: Mapping[str, Existing]) -> dict[str, str]:
    """Why each of `existing` that a harvest source holds is not loaded over: loaded, it would lose its source,
    sets and provenance, and the source's next versions would be quarantined as clashes (an outside audit), as a
    harvest does not write over a record loaded here either."""
    sources = {row.source_id for row in existing.values() if row.source_id is not None}
    if not sources:
        return {}
    names = dict(session.execute(select(Source.id, Source.name).where(Source.id.in_(sources))).all())
    return {ident: f"its identifier {ident} is a record harvested by source {names.get(row.source_id, '?')}; not "
                   "loaded over it (load it under another identifier, or remove the source first)"
            for ident, row in existing.items() if row.source_id is not None}


def load(
    engine: Engine,
    paths: Sequence[str],
    *,
    repository_identifier: str,
    sets: Iterable[tuple[str, str | None]] = (),
    identifier_template: str = DEFAULT_TEMPLATE,
    full_text: bool = True,
    workers: int | None = None,
    stdin: Callable[[], bytes] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> LoadSummary:
    """Load every input; returns the summary (nothing raised for a bad input)."""
    names: list[str] = []
    nothing_in: list[str] = []  # directories with no input: a path mistyped, or the files named otherwise
    walked: set[tuple[int, int]] = set()
    for path in paths:
        read_before = path != "-" and os.path.isdir(path) and _inode(path) in walked  # (given twice, or
        found = list(discover([path], walked))  # below another path given: not empty, an outside audit found)
        if not found and not read_before and path != "-" and os.path.isdir(path):
            nothing_in.append(path)
        names += found
    names, same_files = _each_file_once(names)
    set_list = list(sets)
    set_specs = tuple(spec for spec, _ in set_list)
    sets_made = not set_list  # made (or renamed) with the first records written: a load that writes none (every
    # input failed, a set mistyped) leaves the sets as they were (an outside audit: a set made that could not go)
    jobs = [(n, (stdin or sys.stdin.buffer.read)() if n == "-" else None, full_text) for n in names]
    summary = LoadSummary()
    kinds = ", ".join(sorted(SUFFIXES)[:-1]) + f" or {sorted(SUFFIXES)[-1]}"
    summary.failed += [(d, f"no {kinds} file below this directory") for d in nothing_in]
    summary.warnings += same_files
    batch: list[tuple[str, RecordIn]] = []
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    growth = GrowthAnalyzer(engine)

    def flush() -> None:
        nonlocal sets_made
        if not batch:
            return
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                with transaction(engine) as session:
                    existing = existing_records(session, [r.identifier for _, r in batch])
                    taken = _harvested(session, existing)
                    writing = [(n, r) for n, r in batch if r.identifier not in taken]
                    if writing and not sets_made:
                        _make_sets(session, set_list)
                    replaced = _replaced(session, writing, existing)
                    counts = Counter(upsert_records(session, [r for _, r in writing], existing=existing))
                break
            except (IntegrityError, engine.dialect.dbapi.IntegrityError):  # (COPY raises the driver's own)
                # Another writer (a load of the same files on another machine) inserted some of these records
                # after this batch looked for them: looked for again, they are updated or unchanged instead.
                if attempt == WRITE_ATTEMPTS:
                    raise
        checkpoints.after_commit(engine)
        sets_made = sets_made or bool(writing)
        summary.failed += [(name, taken[record.identifier]) for name, record in batch if record.identifier in taken]
        summary.warnings += replaced
        growth.wrote(counts[Change.NEW])
        summary.new += counts[Change.NEW]
        summary.updated += counts[Change.UPDATED]
        summary.unchanged += counts[Change.UNCHANGED]  # a load writes no tombstones
        if on_progress:
            on_progress(len(batch))
        batch.clear()

    seen: dict[str, str] = {}
    for name, result, error in _results(jobs, workers):
        if result is not None:
            try:
                ident = make_identifier(identifier_template, repository_identifier=repository_identifier,
                                        name=name, doi=result.citation.doi)
                if ident in seen:
                    raise LoadError(f"its identifier {ident} is already used by {seen[ident]} in this load")
            except LoadError as exc:
                result, error = None, str(exc)
        if result is None:
            summary.failed.append((name, error or "unknown error"))
            if on_progress:
                on_progress(1)
            continue
        seen[ident] = name
        summary.warnings.extend((name, w) for w in result.warnings)
        # vars(), not asdict(): asdict deep-copies every value, and Citation holds only str and tuples
        citation = json.dumps(vars(result.citation), ensure_ascii=False)
        batch.append((name, RecordIn(identifier=ident, metadata=result.metadata, sets=set_specs, citation=citation)))
        if len(batch) >= BATCH:
            flush()
    flush()
    if summary.new + summary.updated >= 1000 and engine.dialect.name == "postgresql":
        # Fresh statistics, so that the planner walks the (datestamp, id) index for list pages, and
        # a fresh visibility map, so that completeListSize is counted from an index alone (autovacuum
        # would do both later, or never where it is off).
        analyze(engine, vacuum=True)
    return summary
