"""PostgreSQL planner statistics that keep up with a store growing fast (a load, a first harvest).

A session's prepared statements keep a generic plan made when the tables were small, a sequential scan,
until the tables' statistics change. Where autovacuum is off (or has not yet run), every lookup by
identifier in a growing load then reads the whole record table: measured here, a bench load into
PostgreSQL fell to 170 records/s at 150,000 records with the server busy in `identifier IN (...)`, and went
back to about 800/s at once after one ANALYZE. So writers ANALYZE each time the store has grown by half.
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)

TABLES = ("record", "record_metadata", "record_set")


def analyze(engine: Engine, *, vacuum: bool = False) -> None:
    """ANALYZE (with vacuum: VACUUM (ANALYZE), which also refreshes the visibility map) the record tables.

    The vacuum leaves their TOAST tables to autovacuum: the visibility map that lets completeListSize be
    counted from an index is the tables' own, and the TOAST table of the metadata bytes is most of a
    store (after a load of 1,000,000 JATS records, 400,000 pages read for nothing).
    """
    if engine.dialect.name != "postgresql":
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if not vacuum:
            command = "ANALYZE "
        elif (conn.dialect.server_version_info or (0,)) >= (14,):  # PROCESS_TOAST is new in 14
            command = "VACUUM (ANALYZE, PROCESS_TOAST FALSE) "
        else:
            command = "VACUUM (ANALYZE) "
        conn.exec_driver_sql(command + ", ".join(TABLES))


class GrowthAnalyzer:
    """Call wrote(n) after each committed batch; it ANALYZEs when the new records reach half the store."""

    def __init__(self, engine: Engine, *, at_least: int = 1000, share: float = 0.5, base: int | None = None) -> None:
        """`base`: the records the store holds now (default: PostgreSQL's estimate)."""
        self.engine, self.at_least, self.share = engine, at_least, share
        self.enabled = engine.dialect.name == "postgresql"
        self._written = 0
        self._base = base if base is not None else self._estimate() if self.enabled else 0

    def _estimate(self) -> int:
        """The planner's idea of the record count (-1 before the first ANALYZE counts as 0)."""
        try:
            with self.engine.connect() as conn:
                value = conn.exec_driver_sql("SELECT reltuples FROM pg_class WHERE oid = 'record'::regclass").scalar()
        except SQLAlchemyError:
            return 0
        return max(0, int(value or 0))

    def wrote(self, new_records: int) -> bool:
        """Count committed new records; True when this call ran ANALYZE."""
        if not self.enabled:
            return False
        self._written += new_records
        if self._written < max(self.at_least, self.share * self._base):
            return False
        try:
            analyze(self.engine)
        except SQLAlchemyError as exc:  # not the table's owner, say: the load goes on, slower
            log.warning("ANALYZE of the record tables failed (%s); not tried again in this run", exc)
            self.enabled = False
            return False
        self._base += self._written
        self._written = 0
        return True
