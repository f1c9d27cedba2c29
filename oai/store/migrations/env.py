"""Alembic environment: runs on the engine handed over by oai.store.engine (or the URL)."""

from alembic import context
from sqlalchemy import create_engine

from oai.store.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("engine") or create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        # SQLite changes a table by copying it and dropping the old one (batch mode); with foreign keys on, the
        # drop fires ON DELETE CASCADE / SET NULL in the tables that point at it: a downgrade through 0002
        # emptied the harvest history. Off for the migration (it cannot change inside a transaction), and the
        # keys checked before the commit instead.
        raw = connection.connection.dbapi_connection if sqlite else None
        if raw is not None:
            raw.execute("PRAGMA foreign_keys=OFF")
        if not sqlite:
            from oai.store.engine import MIGRATION_LOCK_TIMEOUT

            connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{MIGRATION_LOCK_TIMEOUT}'")  # this transaction's
        try:
            context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=sqlite)
            with context.begin_transaction():
                context.run_migrations()
                if raw is not None and (broken := connection.exec_driver_sql("PRAGMA foreign_key_check").all()):
                    raise RuntimeError(f"the migration left rows pointing at nothing: {broken[:5]}")
            connection.commit()
        finally:
            if raw is not None:
                raw.execute("PRAGMA foreign_keys=ON")


run_migrations_online()
