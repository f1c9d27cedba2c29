"""The identifier syntax the store keeps is one OAI-PMH.xsd accepts (identifierType is xsd:anyURI)."""

from __future__ import annotations

import random
from xml.sax.saxutils import escape

import pytest
from oaischema import OAI, response_schema

from oai.protocol.arguments import SYNTAX
from oai.protocol.errors import BadArgument
from oai.store.validation import check_identifier


def _served(identifier: str) -> bool:
    """Whether a response with `identifier` in a header is valid OAI-PMH."""
    from lxml import etree

    doc = (f'<OAI-PMH xmlns="{OAI}"><responseDate>2020-01-01T00:00:00Z</responseDate>'
           '<request verb="GetRecord">http://127.0.0.1/oai</request><GetRecord><record><header status="deleted">'
           f'<identifier>{escape(identifier)}</identifier><datestamp>2020-01-01T00:00:00Z</datestamp>'
           "</header></record></GetRecord></OAI-PMH>")
    return response_schema().validate(etree.fromstring(doc.encode()))


def _kept(identifier: str) -> bool:
    try:
        check_identifier(identifier)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("identifier", [
    "oai:example.org:50%off", "oai:example.org:100%", "oai:example.org:%zz", "oai:example.org:a[1]",
    "oai:example.org:a#b#c", "oai:example.org:a b", "oai:", "no-scheme", "oai:x:" + "a" * 600,
])
def test_identifiers_we_do_not_keep(identifier: str) -> None:
    assert not _kept(identifier)


@pytest.mark.parametrize("identifier", [
    "oai:example.org:10.1234/a&b?c=d;e'h%2Fi(j)*k!l~m", "oai:example.org:50%25off", "urn:nbn:de:1234-5",
    "http://[::1]/x", "oai:example.org:Статья-1", "info:doi/10.1000/182#frag",
])
def test_identifiers_we_keep_are_valid_and_can_be_asked_for(identifier: str) -> None:
    assert _kept(identifier) and _served(identifier)
    SYNTAX["identifier"](identifier, "identifier")  # GetRecord takes what we serve: no BadArgument


def test_whatever_we_keep_validates_and_can_be_asked_for() -> None:
    """Random identifiers over an alphabet of every kind of character a URI treats apart."""
    alphabet = list("aZ09-._~!$&'()*+,;=:@/?#%[]{}|\\^`\"<> ") + ["%41", "%4", "%%", "é", "\u00a0", "\ue000", "\U0001f600"]
    rng = random.Random(20261203)
    kept = 0
    for _ in range(3000):
        identifier = "oai:example.org:" + "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8)))
        if _kept(identifier):
            kept += 1
            assert _served(identifier), identifier
            SYNTAX["identifier"](identifier, "identifier")
        else:
            with pytest.raises(BadArgument):  # and the endpoint refuses to look up what we would not keep
                SYNTAX["identifier"](identifier, "identifier")
    assert kept > 300  # the alphabet is not so hostile that the check is never exercised
