"""One helper validates every OAI-PMH response against the official XSDs in schemas/."""

from __future__ import annotations

import functools
from pathlib import Path

from lxml import etree

from oai.formats.base import SCHEMAS_DIR

OAI = "http://www.openarchives.org/OAI/2.0/"
NS = {"oai": OAI, "oai_dc": "http://www.openarchives.org/OAI/2.0/oai_dc/", "dc": "http://purl.org/dc/elements/1.1/"}

_IMPORTS = {
    OAI: "oai/OAI-PMH.xsd",
    "http://www.openarchives.org/OAI/2.0/oai_dc/": "oai/oai_dc.xsd",
    "http://www.openarchives.org/OAI/2.0/oai-identifier": "oai/oai-identifier.xsd",
    "http://www.openarchives.org/OAI/2.0/friends/": "oai/friends.xsd",
    "http://www.openarchives.org/OAI/2.0/provenance": "oai/provenance.xsd",
    "http://www.openarchives.org/OAI/2.0/rights/": "oai/rights.xsd",
}


@functools.cache
def response_schema() -> etree.XMLSchema:
    """OAI-PMH.xsd plus the schema of every payload we serve (strict wildcards need them all)."""
    from oai.formats.registry import FORMATS

    imports = dict(_IMPORTS)
    for fmt in FORMATS.values():
        imports.setdefault(fmt.namespace, str(Path(fmt.schema_path).relative_to(SCHEMAS_DIR)))
    body = "".join(
        f'<xs:import namespace="{ns}" schemaLocation="{(SCHEMAS_DIR / path).as_uri()}"/>'
        for ns, path in imports.items()
    )
    wrapper = f'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">{body}</xs:schema>'
    schema = etree.XMLSchema(etree.fromstring(wrapper, base_url=(SCHEMAS_DIR / "wrapper.xsd").as_uri()))
    return schema


def parse(body: bytes) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.fromstring(body, parser)


def assert_oai(body: bytes) -> etree._Element:
    """Parse and validate one response; returns its root element."""
    root = parse(body)
    schema = response_schema()
    if not schema.validate(root):
        raise AssertionError(f"response is not valid OAI-PMH: {schema.error_log.last_error}\n{body[:2000]!r}")
    return root


def error_codes(root: etree._Element) -> list[str]:
    return [e.get("code") for e in root.findall(f"{{{OAI}}}error")]
