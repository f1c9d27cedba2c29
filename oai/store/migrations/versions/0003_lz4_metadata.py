"""metadata bytes compressed with lz4 on PostgreSQL (cheaper to write and to read than pglz)

Revision ID: 0003
Revises: 0002

PostgreSQL compresses values over ~2 kB (every JATS record); its default, pglz, cost about a
fifth of the server's CPU per loaded record. lz4 (PostgreSQL 14+, when built with it) is several
times faster both ways. Applies to values written from now on; nothing to do on SQLite, or on a
server without lz4 (the statement is skipped there).
"""

from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

_COLUMNS = (("record_metadata", "xml"), ("record_metadata", "about"))


def _set_compression(method: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in _COLUMNS:
        op.execute(
            "DO $$ BEGIN "
            f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION {method}; "
            "EXCEPTION WHEN feature_not_supported OR undefined_object OR syntax_error THEN NULL; "
            "END $$"
        )


def upgrade() -> None:
    _set_compression("lz4")


def downgrade() -> None:
    _set_compression("default")
