"""Syntax and length checks for values the store keeps and the protocol serves (OAI-PMH XSD types, the widths
of the columns that hold them)."""

from __future__ import annotations

import re

from oai.store.models import OAISet, Record

# What the columns hold. PostgreSQL refuses a longer value and fails the whole transaction with it (SQLite keeps
# it): a value that does not fit must be refused here, before it is written.
MAX_IDENTIFIER = Record.__table__.c.identifier.type.length
MAX_SET_SPEC = OAISet.__table__.c.spec.type.length

# OAI-PMH.xsd setSpecType
_SET_SPEC = re.compile(r"[A-Za-z0-9\-_.!~*'()]+(:[A-Za-z0-9\-_.!~*'()]+)*")
# RFC 3986 URI-reference, with RFC 3987's non-ASCII characters (OAI-PMH 2.4: identifiers are URIs;
# identifierType is xsd:anyURI, and validators reject a '%' without two hex digits, '[' outside a host
# and a second '#').
_U = r"A-Za-z0-9\-._~\u00a0-\ud7ff\uf900-\ufdcf\ufdf0-\uffef\U00010000-\U0010fffd"
_SUB = r"!$&'()*+,;="
_PCT = r"%[0-9A-Fa-f]{2}"
_PCHAR = rf"(?:[{_U}{_SUB}:@]|{_PCT})"
_SEGMENTS = rf"(?:/{_PCHAR}*)*"
_HOST = rf"(?:\[(?:[0-9A-Fa-f:.]+|v[0-9A-Fa-f]+\.[A-Za-z0-9\-._~{_SUB}:]+)\]|(?:[{_U}{_SUB}]|{_PCT})*)"
_AUTHORITY = rf"(?:(?:[{_U}{_SUB}:]|{_PCT})*@)?{_HOST}(?::[0-9]+)?"
_TAIL = rf"(?:\?(?:{_PCHAR}|[/?\ue000-\uf8ff])*)?(?:#(?:{_PCHAR}|[/?])*)?"
URI = re.compile(
    rf"(?:[A-Za-z][A-Za-z0-9+\-.]*:(?://{_AUTHORITY}{_SEGMENTS}|/(?:{_PCHAR}+{_SEGMENTS})?|{_PCHAR}+{_SEGMENTS}|)"
    rf"|(?://{_AUTHORITY}{_SEGMENTS}|/(?:{_PCHAR}+{_SEGMENTS})?|(?:[{_U}{_SUB}@]|{_PCT})+{_SEGMENTS}|)){_TAIL}"
)
# OAI-PMH.xsd's metadataPrefixType
METADATA_PREFIX = re.compile(r"[A-Za-z0-9\-_.!~*'()]+")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")


def absolute_uri(value: str) -> bool:
    """Whether `value` is an absolute URI (a scheme, then what a URI may hold): a namespace, a schema's location."""
    return bool(_SCHEME.match(value) and URI.fullmatch(value))


# oai-identifier.xsd's oai-identifierType: the syntax of the oai scheme (ASCII only; anything else %-encoded).
# What we name ourselves in that scheme must follow it; what a harvest keeps from upstream need only be a URI.
OAI_IDENTIFIER = re.compile(r"oai:[a-zA-Z][a-zA-Z0-9\-]*(\.[a-zA-Z][a-zA-Z0-9\-]*)+:[a-zA-Z0-9\-_.!~*'();/?:@&=+$,%]+")


def in_oai_scheme(identifier: str) -> bool:
    """Whether `identifier` is in the oai scheme (whose syntax OAI_IDENTIFIER is), however its scheme is cased."""
    return identifier[:4].lower() == "oai:"


# What we store and serve as an item's identifier: a URI with a scheme (oai:example.org:123).
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:.+", re.DOTALL)


def shown(value: str, width: int = 60) -> str:
    """A value for a message: whole when short, else its start and its length (one of 100,000 characters
    would fill a warning, a log line and a terminal)."""
    return repr(value) if len(value) <= width else f"{value[:width]!r}... ({len(value)} characters)"


def check_set_spec(spec: str) -> str:
    """Raises ValueError unless `spec` is a legal setSpec such as `journals:physics` that the store can keep."""
    if len(spec) > MAX_SET_SPEC:
        raise ValueError(f"{shown(spec)} is not a setSpec we can keep: it has more than {MAX_SET_SPEC} characters")
    if not _SET_SPEC.fullmatch(spec):
        raise ValueError(
            f"{spec!r} is not a valid setSpec: use letters, digits and -_.!~*'() in parts separated by ':'"
        )
    return spec


def check_identifier(identifier: str) -> str:
    """Raises ValueError unless `identifier` is a URI we can serve (e.g. oai:example.org:123)."""
    if len(identifier) > MAX_IDENTIFIER:
        raise ValueError(f"{shown(identifier)} is not an identifier we can keep: it has more than "
                         f"{MAX_IDENTIFIER} characters")
    if not _IDENTIFIER.fullmatch(identifier) or not URI.fullmatch(identifier):
        raise ValueError(f"{identifier!r} is not a valid OAI identifier (a URI such as oai:example.org:123)")
    return identifier
