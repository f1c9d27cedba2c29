"""Syntax checks for values the store keeps and the protocol serves (OAI-PMH XSD types)."""

from __future__ import annotations

import re

# OAI-PMH.xsd setSpecType
_SET_SPEC = re.compile(r"[A-Za-z0-9\-_.!~*'()]+(:[A-Za-z0-9\-_.!~*'()]+)*")
# A URI with a scheme, no whitespace or control characters (identifierType is xsd:anyURI).
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s\x00-\x1f\x7f]+")


def check_set_spec(spec: str) -> str:
    """Raises ValueError unless `spec` is a legal setSpec such as `journals:physics`."""
    if not _SET_SPEC.fullmatch(spec):
        raise ValueError(
            f"{spec!r} is not a valid setSpec: use letters, digits and -_.!~*'() in parts separated by ':'"
        )
    return spec


def check_identifier(identifier: str) -> str:
    """Raises ValueError unless `identifier` is a URI we can serve (e.g. oai:example.org:123)."""
    if len(identifier) > 512 or not _IDENTIFIER.fullmatch(identifier):
        raise ValueError(f"{identifier!r} is not a valid OAI identifier (a URI such as oai:example.org:123)")
    return identifier
