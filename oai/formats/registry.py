"""The metadata formats this repository serves, and ingest of one document into all of them.

Adding a format = a module with a FORMAT object, and one line in _ALL below.
"""

from __future__ import annotations

from dataclasses import replace

from lxml import etree

from oai.formats import dc, jats
from oai.formats.base import FormatError, Ingested, MetadataFormat
from oai.formats.safexml import MAX_BYTES, TOO_DEEP, parse_document, too_deep

_ALL: tuple[MetadataFormat, ...] = (
    dc.FORMAT,
    jats.FORMAT,
)
FORMATS: dict[str, MetadataFormat] = {fmt.prefix: fmt for fmt in _ALL}


def get(prefix: str) -> MetadataFormat:
    """The format served under `prefix`; KeyError for one we do not serve."""
    return FORMATS[prefix]


def preload() -> None:
    """Compile what every format's ingest needs now (else once per process, when first used).

    A loader that calls this before it forks its worker processes has them share the compiled schemas.
    """
    for fmt in _ALL:
        fmt.warm()


def detect(root: etree._Element) -> MetadataFormat:
    """The format that ingests documents with this root element, or FormatError."""
    for fmt in _ALL:
        if fmt.recognise(root):
            return fmt
    raise FormatError(f"not a JATS article or oai_dc record: root element is {root.tag}")


def ingest_document(
    data: bytes, *, source: str = "", full_text: bool = True, max_bytes: int = MAX_BYTES
) -> Ingested:
    """Parse untrusted bytes safely, recognise the format and ingest (oai_dc always included)."""
    root = parse_document(data, max_bytes=max_bytes, source=source)
    if too_deep(root):  # (see MAX_DEPTH)
        raise FormatError(f"{source or 'document'}: {TOO_DEEP}")
    repaired = dc.repair_java_locales(root, data)
    try:
        ingested = detect(root).ingest(root, full_text=full_text, consume=True)  # root is ours alone
    except FormatError as exc:
        raise FormatError(f"{source}: {exc}" if source else str(exc)) from None
    if dc.FORMAT.prefix not in ingested.metadata:  # every format must derive oai_dc
        raise FormatError(f"{source or 'document'}: no oai_dc could be derived")
    return replace(ingested, warnings=(*repaired, *ingested.warnings)) if repaired else ingested
