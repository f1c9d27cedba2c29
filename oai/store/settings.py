"""Shared repository settings kept in the database, so that every web node agrees on them."""

from __future__ import annotations

import secrets

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from oai.store.engine import transaction
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
    with transaction(engine) as session:
        return session.scalar(select(Setting.value).where(Setting.key == key))
