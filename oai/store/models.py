"""The database schema: every table the server and the harvester use. Only oai.store knows it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Deterministic constraint names, so that migrations can refer to them on every engine.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Record(Base):
    """One OAI item. `datestamp` is when *our* store last changed it (UTC, seconds)."""

    __tablename__ = "record"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    identifier: Mapped[str] = mapped_column(String(512), unique=True)
    datestamp: Mapped[datetime] = mapped_column(DateTime())
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    # Space-separated setSpecs the record was given, as served in its header (no ancestors).
    set_specs: Mapped[str] = mapped_column(Text, default="")
    digest: Mapped[str] = mapped_column(String(64))
    citation: Mapped[str | None] = mapped_column(Text)  # JSON of formats.base.Citation
    source_id: Mapped[int | None] = mapped_column(ForeignKey("source.id", ondelete="SET NULL"))
    upstream_identifier: Mapped[str | None] = mapped_column(String(512))
    upstream_datestamp: Mapped[str | None] = mapped_column(String(32))
    harvested_at: Mapped[datetime | None] = mapped_column(DateTime())

    __table_args__ = (
        Index("ix_record_datestamp_id", "datestamp", "id"),
        Index("ix_record_source_upstream", "source_id", "upstream_identifier"),
    )


class RecordMetadata(Base):
    """(record, prefix) -> canonical metadata bytes; `xml` is NULL once the record is deleted."""

    __tablename__ = "record_metadata"

    record_id: Mapped[int] = mapped_column(
        ForeignKey("record.id", ondelete="CASCADE"), primary_key=True
    )
    prefix: Mapped[str] = mapped_column(String(64), primary_key=True)
    xml: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Pre-rendered <about> payload (e.g. OAI provenance for harvested records), or NULL; several containers
    # are kept as one text with `</about><about>` between them, so that it is served as it is.
    about: Mapped[bytes | None] = mapped_column(LargeBinary)

    # No index led by `prefix`: SQLite's planner (without statistics) would drive list pages
    # from it and sort every record of the format for each page. Counts use the primary key.


class OAISet(Base):
    __tablename__ = "oai_set"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    spec: Mapped[str] = mapped_column(String(512), unique=True)
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)


class RecordSet(Base):
    """Membership, ancestors included (a record in a:b is in a); datestamp copied for keyset paging.

    Keyed record first, so that the key also finds a record's memberships (for rewrites and deletions):
    no index of its own for that. On SQLite the table is that key (WITHOUT ROWID), so a membership is
    written into two b-trees instead of four; memberships are most of the rows a harvested page writes.
    """

    __tablename__ = "record_set"

    record_id: Mapped[int] = mapped_column(
        ForeignKey("record.id", ondelete="CASCADE"), primary_key=True
    )
    set_id: Mapped[int] = mapped_column(ForeignKey("oai_set.id", ondelete="CASCADE"), primary_key=True)
    datestamp: Mapped[datetime] = mapped_column(DateTime())

    __table_args__ = (
        Index("ix_record_set_set_datestamp", "set_id", "datestamp", "record_id"),
        {"sqlite_with_rowid": False},
    )


class Source(Base):
    """An upstream OAI-PMH repository we harvest."""

    __tablename__ = "source"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    base_url: Mapped[str] = mapped_column(Text)
    prefix: Mapped[str] = mapped_column(String(64), default="oai_dc")
    set_spec: Mapped[str | None] = mapped_column(String(512))
    every_seconds: Mapped[int | None] = mapped_column(Integer)
    keep_upstream_identifiers: Mapped[bool] = mapped_column(Boolean, default=False)
    detect_deletions: Mapped[bool] = mapped_column(Boolean, default=False)
    # A complete run that was to check for deletions sets it (to its own id) with its completion, and the check
    # clears it: a run killed during the check leaves it, and the next complete run checks instead.
    deletion_check_owed_by: Mapped[int | None] = mapped_column(Integer)
    granularity: Mapped[str | None] = mapped_column(String(32))
    deleted_record: Mapped[str | None] = mapped_column(String(16))
    repository_name: Mapped[str | None] = mapped_column(Text)
    metadata_namespace: Mapped[str | None] = mapped_column(String(512))
    metadata_schema: Mapped[str | None] = mapped_column(Text)  # from the source's ListMetadataFormats
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created: Mapped[datetime] = mapped_column(DateTime())
    # responseDate (as the source wrote it) of the first page of the last complete run.
    last_complete_response_date: Mapped[str | None] = mapped_column(String(32))
    next_due: Mapped[datetime | None] = mapped_column(DateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(256))
    lease_expires: Mapped[datetime | None] = mapped_column(DateTime())


class HarvestRun(Base):
    __tablename__ = "harvest_run"
    __table_args__ = {"sqlite_autoincrement": True}  # a run's number is never another's (migration 0009)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("source.id", ondelete="CASCADE"), index=True)
    started: Mapped[datetime] = mapped_column(DateTime())
    ended: Mapped[datetime | None] = mapped_column(DateTime())
    status: Mapped[str] = mapped_column(String(16), default="running")
    full: Mapped[bool] = mapped_column(Boolean, default=False)
    from_date: Mapped[str | None] = mapped_column(String(32))
    response_date: Mapped[str | None] = mapped_column(String(32))
    pages: Mapped[int] = mapped_column(Integer, default=0)
    seen: Mapped[int] = mapped_column(Integer, default=0)
    new: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    deleted: Mapped[int] = mapped_column(Integer, default=0)
    quarantined: Mapped[int] = mapped_column(Integer, default=0)
    complete_list_size: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    warnings: Mapped[str | None] = mapped_column(Text)  # one per line: shortfalls, repairs, relists
    worker: Mapped[str | None] = mapped_column(String(256))


class HarvestCheckpoint(Base):
    """Where an unfinished run stands; written in the same transaction as the page it follows."""

    __tablename__ = "harvest_checkpoint"

    source_id: Mapped[int] = mapped_column(ForeignKey("source.id", ondelete="CASCADE"), primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("harvest_run.id", ondelete="CASCADE"))
    resumption_token: Mapped[str | None] = mapped_column(Text)
    cursor: Mapped[int] = mapped_column(Integer, default=0)
    from_date: Mapped[str | None] = mapped_column(String(32))
    updated: Mapped[datetime] = mapped_column(DateTime())


class Quarantine(Base):
    """A harvested record that could not be ingested, kept with its raw bytes and the reason."""

    __tablename__ = "quarantine"
    __table_args__ = {"sqlite_autoincrement": True}  # an entry's number is never another's (migration 0009)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int | None] = mapped_column(ForeignKey("source.id", ondelete="SET NULL"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("harvest_run.id", ondelete="SET NULL"))
    upstream_identifier: Mapped[str | None] = mapped_column(String(512))
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    created: Mapped[datetime] = mapped_column(DateTime())


class ForeignFormat(Base):
    """A metadata format we serve only because a harvested source gave it to us (not in the registry)."""

    __tablename__ = "foreign_format"

    prefix: Mapped[str] = mapped_column(String(64), primary_key=True)
    namespace: Mapped[str] = mapped_column(String(512))
    schema: Mapped[str] = mapped_column(Text)


class Setting(Base):
    """Repository-wide values that every node must share (e.g. the token secret)."""

    __tablename__ = "setting"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
