"""what a withdrawn migration also numbered 0004 left behind, removed where it is found

Revision ID: 0007
Revises: 0006

Before the 0004 that drops harvest_checkpoint.last_upstream_datestamp, a migration with the same number
added an index on record_metadata (prefix, record_id) and was withdrawn (on SQLite the planner chose it
and sorted each list page). A store made while it was the newest is stamped 0004 but has the index and
still has the column: the upgrades after it ran, and this one removes both. Other stores have neither,
and nothing is done.
"""

import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

_INDEX = "ix_record_metadata_prefix_record"
_COLUMN = "last_upstream_datestamp"


def upgrade() -> None:
    found = sa.inspect(op.get_bind())
    if _INDEX in {ix["name"] for ix in found.get_indexes("record_metadata")}:
        op.drop_index(_INDEX, table_name="record_metadata")
    if _COLUMN in {c["name"] for c in found.get_columns("harvest_checkpoint")}:
        with op.batch_alter_table("harvest_checkpoint") as table:
            table.drop_column(_COLUMN)


def downgrade() -> None:
    """Nothing to put back: what it removed was never part of the schema the code declares."""
