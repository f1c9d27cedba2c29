"""What every metadata format module provides; no format-specific knowledge here."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from lxml import etree

SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"  # schema hints (xsi:schemaLocation)


class FormatError(ValueError):
    """A document that is not acceptable input for a format (the message says why)."""


@dataclass(frozen=True)
class Citation:
    """Bibliographic facts a landing page and the identifier rule need; all optional."""

    title: str | None = None
    authors: tuple[str, ...] = ()
    publication_date: str | None = None  # ISO 8601, as precise as known
    journal_title: str | None = None
    issn: tuple[str, ...] = ()
    volume: str | None = None
    issue: str | None = None
    firstpage: str | None = None
    lastpage: str | None = None
    article_number: str | None = None  # an elocation-id, where there are no pages (eLife, PLOS)
    doi: str | None = None
    pdf_url: str | None = None
    language: str | None = None  # of the article
    keywords: tuple[str, ...] = ()
    abstract: str | None = None
    title_language: str | None = None  # the title's and the abstract's own, where known (a Russian article's
    abstract_language: str | None = None  # first title may be English): pages mark them for readers and crawlers
    other_titles: tuple[tuple[str, str | None], ...] = ()  # (title, its language): the title in other languages
    other_abstracts: tuple[tuple[str, str | None], ...] = ()  # (abstract, its language): translations and the rest
    keyword_languages: tuple[str | None, ...] = ()  # each keyword's language, where known (one per keyword)


@dataclass(frozen=True)
class Ingested:
    """The result of ingesting one document: canonical metadata per prefix, plus facts."""

    metadata: dict[str, bytes]  # metadataPrefix -> UTF-8 bytes of the metadata root element
    citation: Citation = field(default_factory=Citation)
    warnings: tuple[str, ...] = ()


class MetadataFormat(Protocol):
    prefix: str
    namespace: str
    # Advertised in ListMetadataFormats: the official URL when the schema has one; None when
    # we are its only publisher, and the web layer advertises <base>/schemas/<schema_relpath>.
    schema_url: str | None
    schema_relpath: str  # path under schemas/ (served by the web layer at /schemas/<path>)
    schema_path: Path  # local copy that validates exactly what we serve
    root_tag: str  # Clark notation of the element served inside <metadata>

    def recognise(self, root: etree._Element) -> bool:
        """True when `root` is an input document this format ingests."""
        ...

    def warm(self) -> None:
        """Compile now what ingest needs (once per process; a process about to fork workers calls it)."""
        ...

    def ingest(self, root: etree._Element, *, full_text: bool = True, consume: bool = False) -> Ingested:
        """Normalise `root` (and derive other formats); raises FormatError.

        `root` is left as it was, unless consume=True: the caller will not use the tree again,
        and the format may then work on it instead of on a copy.
        """
        ...


_validation_lock = threading.Lock()  # an XMLSchema keeps its error log on the instance


@lru_cache(maxsize=None)
def compile_schema(path: Path) -> etree.XMLSchema:
    """Compile a local XSD once (lazily); refuse one whose imports/includes did not all load."""
    return schema_of(read_schema(path))


def read_schema(path: Path) -> etree._ElementTree:
    """The XSD document at `path` (read offline; relative imports resolve from its location)."""
    return etree.parse(str(path), etree.XMLParser(no_network=True))


def schema_of(tree: etree._ElementTree) -> etree.XMLSchema:
    """Compile an XSD document; refuse one whose imports/includes did not all load."""
    schema = etree.XMLSchema(tree)
    problems = [str(entry) for entry in schema.error_log]
    if problems:  # libxml2 reports an unloadable import as a warning and compiles an empty schema
        raise RuntimeError(f"schema {tree.docinfo.URL} compiled with problems: {problems[:3]}")
    return schema


def first_error(schema: etree.XMLSchema, element: etree._Element) -> str | None:
    """The first validation error of `element` as 'line N: message', or None when valid."""
    with _validation_lock:
        try:
            if schema.validate(element):
                return None
        except etree.XMLSchemaValidateError as exc:  # libxml2 gives up (an entity reference node): not valid
            return f"line {element.sourceline}: the schema validator could not read the element ({exc})"
        error = schema.error_log[0]
    return f"line {error.line}: {error.message}"
