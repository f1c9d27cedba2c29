"""harvest_checkpoint.last_upstream_datestamp dropped

Revision ID: 0004
Revises: 0003

It was the point an expired list was asked again from (the highest upstream datestamp held, while
the list looked sorted). A list is now asked again from its own start, since OAI-PMH promises no
order, and the column has nothing left to hold.
"""

import sqlalchemy as sa
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("harvest_checkpoint") as table:
        table.drop_column("last_upstream_datestamp")


def downgrade() -> None:
    with op.batch_alter_table("harvest_checkpoint") as table:
        table.add_column(sa.Column("last_upstream_datestamp", sa.String(length=32), nullable=True))
