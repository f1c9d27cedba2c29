"""harvester: the schema of the source's metadata format, and warnings on harvest runs

Revision ID: 0002
Revises: 0001
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('source') as batch:
        batch.add_column(sa.Column('metadata_schema', sa.Text(), nullable=True))
    with op.batch_alter_table('harvest_run') as batch:
        batch.add_column(sa.Column('warnings', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('harvest_run') as batch:
        batch.drop_column('warnings')
    with op.batch_alter_table('source') as batch:
        batch.drop_column('metadata_schema')
