"""source.deletion_check_owed becomes deletion_check_owed_by: the run that owes it

Revision ID: 0010
Revises: 0009

The history said which run's deletion check was not finished by taking the newest complete run; a run made with
--no-detect-deletions completes without touching the check, and was then blamed for it (an outside review). The
source keeps the run instead.
"""

import sqlalchemy as sa
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("source") as table:
        table.add_column(sa.Column("deletion_check_owed_by", sa.Integer(), nullable=True))
    op.execute("UPDATE source SET deletion_check_owed_by = (SELECT max(r.id) FROM harvest_run r WHERE "
               "r.source_id = source.id AND r.status = 'complete') WHERE deletion_check_owed")
    with op.batch_alter_table("source") as table:
        table.drop_column("deletion_check_owed")


def downgrade() -> None:
    with op.batch_alter_table("source") as table:
        table.add_column(sa.Column("deletion_check_owed", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute("UPDATE source SET deletion_check_owed = (deletion_check_owed_by IS NOT NULL)")
    with op.batch_alter_table("source") as table:
        table.drop_column("deletion_check_owed_by")
