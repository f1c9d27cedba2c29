"""record_set keyed (record_id, set_id); WITHOUT ROWID on SQLite; ix_record_set_record dropped

Revision ID: 0006
Revises: 0005

The key (set_id, record_id) and an index on record_id became one key, (record_id, set_id): it
keeps a membership unique and finds a record's memberships. On SQLite the table is now that key
(WITHOUT ROWID), so each membership goes into two b-trees (the table and the (set, datestamp)
index) instead of four; SQLite cannot change a table's key or rowid in place, so the table is
copied. On PostgreSQL the key is rebuilt and the index dropped. No row changes.
"""

import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

_BY_SET = ("ix_record_set_set_datestamp", "record_set", ["set_id", "datestamp", "record_id"])


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _copy_sqlite(("record_id", "set_id"), with_rowid=False, record_index=False)
        return
    op.execute("ALTER TABLE record_set DROP CONSTRAINT pk_record_set, "
               "ADD CONSTRAINT pk_record_set PRIMARY KEY (record_id, set_id)")
    op.drop_index("ix_record_set_record", table_name="record_set")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _copy_sqlite(("set_id", "record_id"), with_rowid=True, record_index=True)
        return
    op.create_index("ix_record_set_record", "record_set", ["record_id"])
    op.execute("ALTER TABLE record_set DROP CONSTRAINT pk_record_set, "
               "ADD CONSTRAINT pk_record_set PRIMARY KEY (set_id, record_id)")


def _copy_sqlite(key: tuple[str, str], *, with_rowid: bool, record_index: bool) -> None:
    """Rebuild record_set with `key`, in key order (appends to every b-tree)."""
    op.create_table(
        "_record_set_new",
        sa.Column(key[0], sa.Integer(), nullable=False),
        sa.Column(key[1], sa.Integer(), nullable=False),
        sa.Column("datestamp", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["record_id"], ["record.id"], name="fk_record_set_record_id_record",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["set_id"], ["oai_set.id"], name="fk_record_set_set_id_oai_set",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint(*key, name="pk_record_set"),
        sqlite_with_rowid=with_rowid,
    )
    op.execute(f"INSERT INTO _record_set_new ({key[0]}, {key[1]}, datestamp) "
               f"SELECT {key[0]}, {key[1]}, datestamp FROM record_set ORDER BY {key[0]}, {key[1]}")
    op.drop_table("record_set")  # its indexes with it
    op.rename_table("_record_set_new", "record_set")
    op.create_index(*_BY_SET)
    if record_index:
        op.create_index("ix_record_set_record", "record_set", ["record_id"])
