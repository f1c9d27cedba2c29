"""harvest_run and quarantine ids are never reused on SQLite

Revision ID: 0009
Revises: 0008

SQLite gives a new row the largest id plus one, so after the newest runs or quarantine entries were deleted (a
source removed, a record's entry replaced) their numbers came back for others: a `--raw ID` noted earlier showed
another record, and `run=N` in older logs named two runs (an outside audit). AUTOINCREMENT keeps a high-water mark.
PostgreSQL's sequences never go back; nothing to do there.
"""

from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

TABLES = ("harvest_run", "quarantine")


def upgrade() -> None:
    _recreate(autoincrement=True)


def downgrade() -> None:
    _recreate(autoincrement=False)


def _recreate(*, autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in TABLES:
        with op.batch_alter_table(name, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}):
            pass
