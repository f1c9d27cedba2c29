"""an index on record_metadata (prefix, record_id), for completeListSize without a join

Revision ID: 0004
Revises: 0003

The first page of a list counts the list. Counting a whole format was a join of every record with
every metadata row (4 s on PostgreSQL at a million records); with this index it is an index-only
range count of that format's rows.
"""

from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_record_metadata_prefix_record", "record_metadata", ["prefix", "record_id"])


def downgrade() -> None:
    op.drop_index("ix_record_metadata_prefix_record", table_name="record_metadata")
