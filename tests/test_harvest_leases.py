"""Leases on sources: one harvest per source, expiry, takeover of a dead holder, a lost lease stops a run."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from harvest_fixtures import add, options, stored
from harvester import leases
from harvester.dates import utcnow
from harvester.errors import LeaseTaken
from harvester.runs import harvest_source
from harvester.sources import remove_source
from oai.store.engine import transaction
from oai.store.models import HarvestRun, Source
from upstream import sample_records
from upstream.fixtures import upstream  # noqa: F401  (fixture)


@pytest.fixture
def src(engine, upstream):  # noqa: ANN001, ANN201, F811
    upstream.repo.add(*sample_records(25))
    return add(engine, "up", upstream.base_url)


def hold(engine, owner: str, seconds: float) -> None:  # noqa: ANN001
    with transaction(engine) as s:
        s.execute(update(Source).values(lease_owner=owner, lease_expires=utcnow() + timedelta(seconds=seconds)))


def test_a_held_lease_refuses_a_second_harvest_and_names_the_holder(engine, src) -> None:  # noqa: ANN001
    hold(engine, "elsewhere:4242:abc", 300)
    with pytest.raises(LeaseTaken, match="being harvested by elsewhere:4242:abc; if that process is gone, its "
                                         r"lease lapses at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"):
        harvest_source(engine, "up", options())
    assert leases.claim_due(engine, "me:1", 5) == []


def test_an_expired_lease_is_taken_over(engine, src) -> None:  # noqa: ANN001
    hold(engine, "elsewhere:4242:abc", -1)
    assert harvest_source(engine, "up", options()).status == "complete"
    with transaction(engine) as s:
        assert s.get(Source, src.id).lease_owner is None  # released at the end


def test_the_lease_of_a_dead_local_process_is_taken_at_once(engine, src) -> None:  # noqa: ANN001
    import socket
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    # Another PID namespace (a container) or machine with this host name: its pid says nothing here, and its
    # lease holds until it lapses (an outside audit saw live leases taken over).
    for elsewhere in (f"{socket.gethostname()}:{dead}:abc", f"{socket.gethostname()}@000000:{dead}:abc"):
        hold(engine, elsewhere, 300)
        with pytest.raises(LeaseTaken):
            harvest_source(engine, "up", options())
    hold(engine, f"{leases.this_host()}:{dead}:abc", 300)
    assert harvest_source(engine, "up", options()).status == "complete"


def test_claims_never_hand_out_a_source_twice(engine, src) -> None:  # noqa: ANN001
    first = leases.claim_due(engine, "w1:1", 5)
    assert [name for _, name, _ in first] == ["up"]
    assert leases.claim_due(engine, "w2:2", 5) == []
    leases.release(engine, src.id, first[0][2])
    assert [name for _, name, _ in leases.claim_due(engine, "w2:2", 5)] == ["up"]


def test_a_run_whose_lease_is_taken_over_stops_before_writing_more(engine, src) -> None:  # noqa: ANN001
    def steal(progress) -> None:  # noqa: ANN001
        if progress.pages == 1:
            hold(engine, "elsewhere:1:zzz", 300)

    summary = harvest_source(engine, "up", options(), on_progress=steal)
    assert summary.status == "interrupted" and "took over" in summary.error
    assert summary.pages == 1 and len(stored(engine, "up")) == 10
    with transaction(engine) as s:
        assert s.get(Source, src.id).lease_owner == "elsewhere:1:zzz"  # not released: not ours


def test_a_run_taken_over_is_left_to_whoever_resumed_it(engine, src) -> None:  # noqa: ANN001
    """A review: the run that found its lease gone at a page write marked the run interrupted, though the
    harvest that took the source over had resumed that very run and was writing it."""
    def take_over_and_resume(progress) -> None:  # noqa: ANN001
        if progress.pages == 1:
            hold(engine, "elsewhere:1:zzz", 300)
            with transaction(engine) as s:
                s.execute(update(HarvestRun).values(worker="elsewhere:1:zzz"))

    summary = harvest_source(engine, "up", options(), on_progress=take_over_and_resume)
    assert summary.status == "interrupted" and "lease" in summary.error
    with transaction(engine) as s:
        run = s.get(HarvestRun, summary.run_id)
        assert (run.status, run.worker, run.ended, run.error) == ("running", "elsewhere:1:zzz", None, None)


def test_a_stalled_run_whose_source_was_removed_ends_with_the_reason(engine, src) -> None:  # noqa: ANN001
    """Its lease lapsed (a frozen process), the source was removed with its run history meanwhile: the run
    ends with the reason, not a traceback, and writes nothing more."""
    def lapse_then_remove(progress) -> None:  # noqa: ANN001
        if progress.pages == 1:
            hold(engine, "whoever", -1)
            remove_source(engine, "up", "keep")

    summary = harvest_source(engine, "up", options(), on_progress=lapse_then_remove)
    assert summary.status == "interrupted" and "removed" in summary.error
    with transaction(engine) as s:
        assert s.query(HarvestRun).count() == 0 and s.query(Source).count() == 0
    assert len(stored(engine)) == 10  # the first page's records, kept as asked


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_database_outage_mid_run_is_said_on_the_run_and_frees_the_source(database_url: str, engine, src) -> None:  # noqa: ANN001
    """An outside operations review: the database going away for a moment mid-run (a restart, a failover) left
    the run "running" and the source leased until the lease lapsed, a 17 KB traceback in the log, and a later
    run blaming a process "killed?". The run now waits for the database, says why it stopped, frees the source."""
    import threading

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from conftest import _postgres_admin_url

    admin = create_engine(_postgres_admin_url(), isolation_level="AUTOCOMMIT")
    name = make_url(database_url).database

    def allow(yes: bool) -> None:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"true" if yes else "false"}'))

    back = threading.Timer(3.0, allow, (True,))

    def outage(progress) -> None:  # noqa: ANN001
        if progress.pages == 1:
            allow(False)
            engine.dispose()  # the pool's connections closed: every next one must connect, and is refused
            back.start()

    try:
        summary = harvest_source(engine, "up", options(), on_progress=outage)
    finally:
        if back.ident is not None:  # (started)
            back.join()
        allow(True)
        admin.dispose()
    assert summary.status == "interrupted" and summary.error.startswith("the database became unavailable: ")
    with transaction(engine) as s:
        run = s.get(HarvestRun, summary.run_id)
        assert (run.status, run.error) == ("interrupted", summary.error)
        assert s.get(Source, src.id).lease_owner is None  # freed: the next run need not wait for it to lapse
    again = harvest_source(engine, "up", options())
    assert (again.run_id, again.status) == (summary.run_id, "complete") and len(stored(engine, "up")) == 25
    assert any("it was interrupted" in w and "the database became unavailable" in w for w in again.warnings)
