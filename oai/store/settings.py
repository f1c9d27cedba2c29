"""Shared repository settings kept in the database, so that every web node agrees on them."""

from __future__ import annotations

import secrets

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from oai.store.engine import SchemaError, error_reason, transaction
from oai.store.models import Setting


def shared_secret(engine: Engine, key: str = "token_secret") -> str:
    """A random secret created once per database; concurrent first calls agree on one value."""
    with transaction(engine) as session:
        value = session.scalar(select(Setting.value).where(Setting.key == key))
        if value is not None:
            return value
    try:
        with transaction(engine) as session:
            session.execute(insert(Setting).values(key=key, value=secrets.token_urlsafe(32)))
    except IntegrityError:
        pass  # another process created it first
    except DBAPIError as exc:  # a read-only store (said without the statement: its parameter is the secret)
        raise SchemaError(f"the store holds no {key.replace('_', ' ')} yet and this process cannot write one "
                          f"({error_reason(exc)}): set OAI_SECRET_KEY, or start once with write access") from None
    with transaction(engine) as session:
        return session.scalar(select(Setting.value).where(Setting.key == key))
