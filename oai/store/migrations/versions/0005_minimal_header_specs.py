"""record.set_specs lists only the setSpecs no other one implies

Revision ID: 0005
Revises: 0004

OAI-PMH 2.6: a header should list "only the minimum number of setSpec elements required to specify
the set membership" (a:b implies a). Harvested records listed their source's set beside the
source:upstream sets below it, and a record loaded into a and a:b listed both. Memberships
(record_set) are unchanged: they hold every ancestor, which selective harvesting asks. No datestamp
moves, since no record's set membership changes. The downgrade has nothing to do.
"""

import sqlalchemy as sa
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

_BATCH = 10_000
_RECORD = sa.table("record", sa.column("id", sa.Integer), sa.column("set_specs", sa.Text))


def _minimal(specs: str) -> str:
    names = list(dict.fromkeys(specs.split()))
    implied = {":".join(name.split(":")[:i]) for name in names for i in range(1, name.count(":") + 1)}
    return " ".join(name for name in names if name not in implied)


def upgrade() -> None:
    bind = op.get_bind()
    several = _RECORD.c.set_specs.like("% %")
    last = 0
    while True:
        rows = bind.execute(sa.select(_RECORD.c.id, _RECORD.c.set_specs)
                            .where(_RECORD.c.id > last, several).order_by(_RECORD.c.id).limit(_BATCH)).all()
        if not rows:
            return
        last = rows[-1].id
        changed = [{"rid": row.id, "specs": minimal} for row in rows if (minimal := _minimal(row.set_specs)) != row.set_specs]
        if changed:
            bind.execute(sa.update(_RECORD).where(_RECORD.c.id == sa.bindparam("rid"))
                         .values(set_specs=sa.bindparam("specs")), changed)


def downgrade() -> None:
    pass
