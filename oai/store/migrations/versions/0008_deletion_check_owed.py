"""source.deletion_check_owed

Revision ID: 0008
Revises: 0007

A run that completes its list and is to check for deletions says so with its completion; the check
clears it when done. A run killed during the check left no trace of it: its history said complete, and
the records the source had dropped were never tombstoned.
"""

import sqlalchemy as sa
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("source") as table:
        table.add_column(sa.Column("deletion_check_owed", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("source") as table:
        table.drop_column("deletion_check_owed")
