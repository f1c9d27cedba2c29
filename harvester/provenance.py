"""The about-containers of a re-exposed record, built at ingest as canonical bytes: our OAI provenance, and
the upstream's rights statements carried along.

Follows the OAI-PMH guidelines for aggregators, schemas/oai/provenance.xsd and rights.xsd; knows nothing of
the store.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from urllib.parse import quote

from lxml import etree

from oai.formats.base import SCHEMAS_DIR, XSI_NS, compile_schema, first_error, schema_of
from oai.formats.dc import OAI_DC_NS
from oai.formats.safexml import TOO_DEEP, canonical_bytes, text_bytes_escape, too_deep
from oai.store.validation import URI

PROV_NS = "http://www.openarchives.org/OAI/2.0/provenance"
SCHEMA_URL = "http://www.openarchives.org/OAI/2.0/provenance.xsd"
SCHEMA_PATH = SCHEMAS_DIR / "oai" / "provenance.xsd"
_P = f"{{{PROV_NS}}}"


@dataclass(frozen=True)
class Origin:
    """Where a harvested record came from: the originDescription children."""

    base_url: str
    identifier: str
    datestamp: str
    metadata_namespace: str


def as_uri(value: str) -> str:
    """`value` as xs:anyURI takes it: as it is when it is a URI (or IRI), else percent-encoded. An upstream
    identifier need not be one (oai:x:100%, a SICI's [ ]: an outside audit's), and one such value made every
    page serving the record fail the schema. Encoded as our own identifier encodes it, not left out."""
    if URI.fullmatch(value):
        return value
    encoded = quote(value, safe="!$&'()*+,;=:@/?-._~")
    # a ':' before any '/' makes a scheme: one that cannot be (":x", "1:x") is encoded too
    return encoded if URI.fullmatch(encoded) else quote(value, safe="!$&'()*+,;=@/?-._~")


def _fields(origin: Origin) -> tuple[tuple[str, str], ...]:
    """originDescription's children in schema order; the upstream's URIs made valid ones."""
    return (("baseURL", origin.base_url), ("identifier", as_uri(origin.identifier)),
            ("datestamp", origin.datestamp), ("metadataNamespace", as_uri(origin.metadata_namespace)))


_HEAD = (f'<provenance xmlns="{PROV_NS}" xmlns:xsi="{XSI_NS}" xsi:schemaLocation="{PROV_NS} {SCHEMA_URL}">'
         '<originDescription harvestDate="{date}" altered="{altered}">')


def build(origin: Origin, *, harvest_date: datetime, altered: bool,
          nested: etree._Element | None = None) -> tuple[bytes, str | None]:
    """(provenance bytes, warning): the upstream's own originDescription is nested when it is valid.

    Without a nested description (the common case) the bytes are written directly, without a tree:
    the same bytes build_tree() gives (tests/test_harvest_provenance.py checks that on arbitrary text).
    """
    if nested is None:
        head = _HEAD.format(date=harvest_date.strftime("%Y-%m-%dT%H:%M:%SZ"), altered="true" if altered else "false")
        body = "".join(f"<{tag}>{text_bytes_escape(value)}</{tag}>" for tag, value in _fields(origin))
        return (head + body + "</originDescription></provenance>").encode("utf-8"), None
    return build_tree(origin, harvest_date=harvest_date, altered=altered, nested=nested)


def build_tree(origin: Origin, *, harvest_date: datetime, altered: bool,
               nested: etree._Element | None = None) -> tuple[bytes, str | None]:
    """build(), with lxml: needed to nest (and validate) the upstream's own description."""
    root = etree.Element(f"{_P}provenance", nsmap={None: PROV_NS, "xsi": XSI_NS})
    root.set(f"{{{XSI_NS}}}schemaLocation", f"{PROV_NS} {SCHEMA_URL}")
    desc = etree.SubElement(root, f"{_P}originDescription")
    desc.set("harvestDate", harvest_date.strftime("%Y-%m-%dT%H:%M:%SZ"))
    desc.set("altered", "true" if altered else "false")
    for tag, value in _fields(origin):
        etree.SubElement(desc, f"{_P}{tag}").text = value
    if nested is None:
        return canonical_bytes(root), None
    desc.append(copy.deepcopy(nested))
    error = first_error(compile_schema(SCHEMA_PATH), root)
    if error is None:
        return canonical_bytes(root), None
    desc.remove(desc[-1])
    return canonical_bytes(root), f"the upstream provenance was not valid and is left out ({error})"


def validate(data: bytes) -> str | None:
    """The first provenance.xsd error of `data`, or None (for tests and checks)."""
    return first_error(compile_schema(SCHEMA_PATH), etree.fromstring(data))


RIGHTS_NS = "http://www.openarchives.org/OAI/2.0/rights/"
_RIGHTS = f"{{{RIGHTS_NS}}}rights"
MAX_CARRIED = 64 * 1024  # bytes of the upstream's containers carried for one record
# What the store's `about` holds between two containers: it is served inside one <about>...</about>.
BETWEEN = b"</about><about>"


@lru_cache(maxsize=1)
def _rights_schema() -> etree.XMLSchema:
    """rights.xsd, with oai_dc for a definition given inline (rightsDefinition's content is validated strictly;
    the OAI rights guidelines' example defines a licence in oai_dc)."""
    imports = "".join(f'<xs:import namespace="{ns}" schemaLocation="{(SCHEMAS_DIR / "oai" / name).as_uri()}"/>'
                      for ns, name in ((RIGHTS_NS, "rights.xsd"), (OAI_DC_NS, "oai_dc.xsd")))
    wrapper = f'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">{imports}</xs:schema>'
    base = (SCHEMAS_DIR / "oai" / "rights-wrapper.xsd").as_uri()  # (the imports resolve from beside it)
    return schema_of(etree.ElementTree(etree.fromstring(wrapper, base_url=base)))


def carried(containers: tuple[etree._Element, ...]) -> tuple[bytes, list[str]]:
    """(what follows our provenance in `about`, notes): the upstream's other about-containers that we serve
    again. A rights statement (the OAI rights guidelines put a record's licence there) is carried when it is
    valid against rights.xsd, since OAI-PMH.xsd validates about-containers strictly; other containers (branding,
    a repository's own) are left out and said, never dropped in silence (an outside audit)."""
    kept: list[bytes] = []
    notes: list[str] = []
    size = 0
    for container in containers:
        if container.tag != _RIGHTS:
            notes.append(f"an about-container {container.tag} is not served again (only provenance and OAI "
                         "rights statements are)")
            continue
        if too_deep(container):
            notes.append(f"the upstream rights statement's {TOO_DEEP}; left out")
            continue
        own = copy.deepcopy(container)  # its own document: only the namespaces it uses
        etree.cleanup_namespaces(own)
        error = first_error(_rights_schema(), own)
        if error is not None:
            notes.append(f"the upstream rights statement is not valid and is left out ({error})")
            continue
        data = canonical_bytes(own)
        if size + len(data) > MAX_CARRIED:
            notes.append(f"the upstream rights statements pass {MAX_CARRIED // 1024} KiB; the rest are left out")
            break
        size += len(data)
        kept.append(data)
    return b"".join(BETWEEN + data for data in kept), notes
