"""The browser view: an OAI-PMH answer turned into HTML here, through the stylesheet browsers would apply.

Browsers are dropping XSLT (Chromium 156 already says so on every page), so the page a browser renders from
/oai itself may become raw XML; /oai/view is HTML, and its links lead to /oai/view again.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import threading
from pathlib import Path

from lxml import etree

STATIC_DIR = Path(__file__).resolve().parent / "static"

# The stylesheet finds an element's namespace declarations by comparing each namespace in scope with each of its
# parent's: this many comparisons take about two seconds. A page of 100 JATS articles with full text makes 210,000.
NAMESPACE_WORK = 300_000


@functools.cache
def _view_transform() -> etree.XSLT:
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    return etree.XSLT(etree.parse(str(STATIC_DIR / "oai2.xsl"), parser),
                      access_control=etree.XSLTAccessControl.DENY_ALL)


def render_view(body: bytes, stylesheet: str, view_url: str) -> bytes:
    """An OAI-PMH answer as the browser view's HTML, its links to `view_url`. The stylesheet's address is given
    as the answer's own instruction names it (the page takes its CSS from beside it), also where answers carry
    none (OAI_STYLESHEET=false). Raises etree.XSLTError at libxslt's limits."""
    with _ONE_AT_A_TIME:
        try:
            # huge_tree: a text node over 10 MB, which the harvester takes and /oai serves (a review found a 500)
            document = etree.fromstring(body, etree.XMLParser(no_network=True, resolve_entities=False, huge_tree=True))
            if not any(isinstance(node, etree._ProcessingInstruction) and node.target == "xml-stylesheet"  # noqa: SLF001
                       for node in document.itersiblings(preceding=True)):
                document.addprevious(etree.ProcessingInstruction("xml-stylesheet",
                                                                 f'type="text/xsl" href="{stylesheet}"'))
            namespaces = "true()" if namespace_work(document) <= NAMESPACE_WORK else "false()"
            result = _view_transform()(document, linkBase=etree.XSLT.strparam(view_url), showNamespaces=namespaces)
            return bytes(result)
        finally:
            document = result = None
            _give_back()


# A page of 100 JATS articles takes libxslt about 50 MB to render. Rendered by a worker's threads at once, and kept
# by the C allocator once freed (an arena a thread), it left each worker at 275 MB, where serving takes 75 (an
# outside soak audit): one view at a time a process, and the memory handed back to the system after each.
_ONE_AT_A_TIME = threading.Lock()


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def _give_back() -> None:
    """Return the allocator's free memory to the system (glibc's malloc_trim; elsewhere nothing)."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def namespace_work(document: etree._Element) -> int:
    """How many comparisons the stylesheet would make to show `document`'s namespace declarations."""
    work, scope = 0, {document: len(document.nsmap)}
    for element in document.iterdescendants(etree.Element):
        scope[element] = len(element.nsmap)
        work += scope[element] * scope[element.getparent()]
    return work
