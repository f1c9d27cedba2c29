"""Shared repository settings kept in the database, so that every web node agrees on them."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from oai.store.engine import SchemaError, error_reason, transaction
from oai.store.models import Setting

_SECRET = "token_secret"


def shared_secret(engine: Engine) -> str:
    """A random secret created once per database; concurrent first calls agree on one value."""
    with transaction(engine) as session:
        value = session.scalar(select(Setting.value).where(Setting.key == _SECRET))
        if value is not None:
            return value
    try:
        with transaction(engine) as session:
            session.execute(insert(Setting).values(key=_SECRET, value=secrets.token_urlsafe(32)))
    except IntegrityError:
        pass  # another process created it first
    except DBAPIError as exc:  # a read-only store (said without the statement: its parameter is the secret)
        raise SchemaError(f"the store holds no token secret yet and this process cannot write one "
                          f"({error_reason(exc)}): set OAI_SECRET_KEY, or start once with write access") from None
    with transaction(engine) as session:
        return session.scalar(select(Setting.value).where(Setting.key == _SECRET))


FINGERPRINT_KEY = "token_secret_fingerprint"


def record_secret_fingerprint(engine: Engine, secret: bytes) -> str | None:
    """Record which token secret this node signs with (a digest, not the secret); returns the fingerprint another
    node recorded before, when it differs. Nodes given different OAI_SECRET_KEYs refuse each other's tokens, which
    a harvester saw only as a badResumptionToken on page 2, and nothing said why (an outside audit)."""
    ours = hashlib.sha256(b"oai token secret fingerprint\0" + secret).hexdigest()[:16]
    try:
        with transaction(engine) as session:
            theirs = session.scalar(select(Setting.value).where(Setting.key == FINGERPRINT_KEY))
            if theirs == ours:
                return None
            if theirs is None:
                session.execute(insert(Setting).values(key=FINGERPRINT_KEY, value=ours))
            else:  # the latest node to start is the one recorded: the others say so when they start again
                session.execute(update(Setting).where(Setting.key == FINGERPRINT_KEY).values(value=ours))
    except DBAPIError:  # a read-only store, or another node recording at the same moment: nothing to compare
        return None
    return theirs
