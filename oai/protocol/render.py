"""OAI-PMH response XML (spec 3.2), rendered in one piece (so sent with a Content-Length, and its ETag known).

Metadata and about payloads are canonical bytes produced at ingest and are written as they are;
every other value passes through `text()`, which escapes it and drops XML-illegal characters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from oai.protocol.dates import format_datestamp
from oai.protocol.errors import OAIError
from oai.protocol.verbs import (
    Context,
    FormatsResult,
    IdentifyResult,
    ListResult,
    RecordResult,
    SetsResult,
    TokenInfo,
)
from oai.store.queries import Item

OAI_NS = "http://www.openarchives.org/OAI/2.0/"
_ILLEGAL = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}
_ESCAPE = re.compile('[&<>"]')


_SPECIAL = re.compile('[&<>"\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]')


def text(value: object) -> str:
    """Any value as XML character data or attribute content: escaped, illegal characters dropped."""
    s = str(value)
    if _SPECIAL.search(s) is None:  # the common case: nothing to do
        return s
    s = _ILLEGAL.sub("", s)
    return _ESCAPE.sub(lambda m: _ESCAPES[m.group()], s)


_ATTRIBUTE_WHITESPACE = re.compile("[\t\n\r]")


def attribute(value: object) -> str:
    """text(value) for an attribute: tabs and line breaks as character references, which a parser reads
    back as they were (written as they are, it would read each as a space: XML 1.0, 3.3.3)."""
    return _ATTRIBUTE_WHITESPACE.sub(lambda m: f"&#{ord(m.group())};", text(value))


def _head(ctx: Context, request_attrs: Mapping[str, str], stylesheet: str | None) -> str:
    # 3.2: the attribute values must be the request's values; one XML cannot carry (a NUL, say) is left out.
    attrs = "".join(f' {k}="{attribute(v)}"' for k, v in request_attrs.items() if _ILLEGAL.search(str(v)) is None)
    pi = f'<?xml-stylesheet type="text/xsl" href="{text(stylesheet)}"?>\n' if stylesheet else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"{pi}"
        f'<OAI-PMH xmlns="{OAI_NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xsi:schemaLocation="{OAI_NS} http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd">\n'
        f"<responseDate>{format_datestamp(ctx.now)}</responseDate>\n"
        f"<request{attrs}>{text(ctx.repository.base_url)}</request>\n"
    )


_RESPONSE_DATE, _RESPONSE_DATE_END = b"<responseDate>", b"</responseDate>"


def with_response_date(body: bytes, now: datetime) -> bytes:
    """A response rendered earlier (read ahead), with `now` as its responseDate: 3.2 says it is the time
    the response is sent. Nothing after response_date_end(body) changes."""
    start, end = _response_date_span(body)
    # one copy of the body, not two (a page is some hundred KB, and this is on every page read ahead)
    return b"".join((body[:start], format_datestamp(now).encode("ascii"), memoryview(body)[end:]))


def response_date_end(body: bytes) -> int:
    """Where a response's responseDate element ends: what with_response_date() rewrites lies before."""
    return _response_date_span(body)[1] + len(_RESPONSE_DATE_END)


def _response_date_span(body: bytes) -> tuple[int, int]:
    """Where the responseDate's text begins and ends in a response we rendered."""
    start = body.index(_RESPONSE_DATE, 0, 1024) + len(_RESPONSE_DATE)
    return start, body.index(_RESPONSE_DATE_END, start)


def error_response(
    ctx: Context, errors: list[OAIError], args: Mapping[str, str], stylesheet: str | None
) -> bytes:
    """One response carrying every error; arguments are echoed only when they were valid."""
    echo = all(e.echo_arguments for e in errors)
    body = "".join(f'<error code="{e.code}">{text(e.message)}</error>\n' for e in errors)
    return (_head(ctx, args if echo else {}, stylesheet) + body + "</OAI-PMH>\n").encode("utf-8")


def _specs(specs: Iterable[str]) -> str:
    return "".join(f"<setSpec>{text(s)}</setSpec>" for s in specs)


def _header_text(identifier: str, datestamp: datetime, deleted: bool, specs: str) -> str:
    """A header from a list row (`specs`: the stored space-separated setSpecs)."""
    names = specs.split()
    if not names:
        sets = ""
    elif _SPECIAL.search(specs) is None:  # the common case: nothing to escape
        sets = "<setSpec>" + "</setSpec><setSpec>".join(names) + "</setSpec>"
    else:
        sets = _specs(names)
    status = ' status="deleted"' if deleted else ""
    return (
        f"<header{status}><identifier>{text(identifier)}</identifier>"
        f"<datestamp>{format_datestamp(datestamp)}</datestamp>{sets}</header>"
    )


def _header(item: Item) -> str:
    status = ' status="deleted"' if item.deleted else ""
    return (
        f"<header{status}><identifier>{text(item.identifier)}</identifier>"
        f"<datestamp>{format_datestamp(item.datestamp)}</datestamp>{_specs(item.set_specs)}</header>"
    )


def _metadata(add, xml: bytes, stamp: tuple[bytes, bytes] | None) -> None:  # noqa: ANN001
    """<metadata> with the stored bytes, with the schema hint `stamp` adds on their root (verbs.FormatInfo)."""
    add(b"<metadata>")
    if stamp is not None and xml[: len(stamp[0])] == stamp[0] and xml.find(b"xmlns:xsi=", 0, xml.find(b">")) < 0:
        add(stamp[0])
        add(stamp[1])
        add(memoryview(xml)[len(stamp[0]) :])
    else:
        add(xml)
    add(b"</metadata>")


def _record(item: Item, stamp: tuple[bytes, bytes] | None) -> bytes:
    parts = [b"<record>", _header(item).encode("utf-8")]
    if not item.deleted and item.xml:
        _metadata(parts.append, item.xml, stamp)
    if item.about:
        parts += [b"<about>", item.about, b"</about>"]
    parts.append(b"</record>\n")
    return b"".join(parts)


def _list(verb: str, result: ListResult, parts: list[bytes], headers: list[bytes]) -> None:
    """Append a list page to `parts`, straight from its rows; each header also goes to `headers`."""
    add, seen = parts.append, headers.append
    add(f"<{verb}>\n".encode())
    stamp = result.stamp
    if result.with_metadata:
        for row in result.items:
            head = _header_text(row[1], row[2], row[3], row[4]).encode("utf-8")
            seen(head)
            add(b"<record>")
            add(head)
            xml, about = row[5], row[6]
            if xml and not row[3]:
                _metadata(add, xml, stamp)
            if about:
                add(b"<about>")
                add(about)
                add(b"</about>")
            add(b"</record>\n")
    else:
        for row in result.items:
            head = _header_text(row[1], row[2], row[3], row[4]).encode("utf-8")
            seen(head)
            add(head)
            add(b"\n")
    add(_token(result.token).encode("utf-8"))
    add(f"</{verb}>\n".encode())


def _token(info: TokenInfo | None) -> str:
    if info is None:
        return ""
    exp = f' expirationDate="{format_datestamp(info.expiration)}"' if info.expiration and info.value else ""
    return (
        f'<resumptionToken completeListSize="{info.complete_list_size}" cursor="{info.cursor}"{exp}>'
        f"{text(info.value)}</resumptionToken>\n"
    )


def _identify(ctx: Context, r: IdentifyResult) -> str:
    repo = ctx.repository
    out = [
        "<Identify>",
        f"<repositoryName>{text(repo.name)}</repositoryName>",
        f"<baseURL>{text(repo.base_url)}</baseURL>",
        "<protocolVersion>2.0</protocolVersion>",
        *(f"<adminEmail>{text(e)}</adminEmail>" for e in repo.admin_emails),
        f"<earliestDatestamp>{format_datestamp(r.earliest)}</earliestDatestamp>",
        "<deletedRecord>persistent</deletedRecord>",
        "<granularity>YYYY-MM-DDThh:mm:ssZ</granularity>",
        *(f"<compression>{c}</compression>" for c in repo.compression),
    ]
    if repo.repository_identifier:
        out.append(
            '<description><oai-identifier xmlns="http://www.openarchives.org/OAI/2.0/oai-identifier" '
            'xsi:schemaLocation="http://www.openarchives.org/OAI/2.0/oai-identifier '
            'http://www.openarchives.org/OAI/2.0/oai-identifier.xsd">'
            "<scheme>oai</scheme>"
            f"<repositoryIdentifier>{text(repo.repository_identifier)}</repositoryIdentifier>"
            "<delimiter>:</delimiter>"
            f"<sampleIdentifier>{text(r.sample_identifier)}</sampleIdentifier>"
            "</oai-identifier></description>"
        )
    if r.friends:
        out.append(
            '<description><friends xmlns="http://www.openarchives.org/OAI/2.0/friends/" '
            'xsi:schemaLocation="http://www.openarchives.org/OAI/2.0/friends/ '
            'http://www.openarchives.org/OAI/2.0/friends.xsd">'
            + "".join(f"<baseURL>{text(u)}</baseURL>" for u in r.friends)
            + "</friends></description>"
        )
    out.append("</Identify>\n")
    return "\n".join(out)


def _formats(r: FormatsResult) -> str:
    rows = "".join(
        f"<metadataFormat><metadataPrefix>{text(f.prefix)}</metadataPrefix>"
        f"<schema>{text(f.schema)}</schema><metadataNamespace>{text(f.namespace)}</metadataNamespace>"
        "</metadataFormat>\n"
        for f in r.formats
    )
    return f"<ListMetadataFormats>\n{rows}</ListMetadataFormats>\n"


def _sets(r: SetsResult) -> str:
    rows = []
    for s in r.sets:
        desc = f"<setDescription>{s.description}</setDescription>" if s.description else ""
        rows.append(f"<set><setSpec>{text(s.spec)}</setSpec><setName>{text(s.name)}</setName>{desc}</set>\n")
    return "<ListSets>\n" + "".join(rows) + _token(r.token) + "</ListSets>\n"


@dataclass(frozen=True)
class Rendered:
    """A whole response body, and the headers it serves, in order (empty if it serves no item).

    The headers identify every item on the page and its version (identifier, datestamp, status,
    sets), which is what an HTTP validator of the page must cover.
    """

    body: bytes
    headers: bytes


def render(ctx: Context, verb: str, args: Mapping[str, str], result: object,
           stylesheet: str | None) -> Rendered:
    """The successful response for `result`, in one piece."""
    parts = [_head(ctx, {"verb": verb, **args}, stylesheet).encode("utf-8")]
    headers: list[bytes] = []
    if isinstance(result, ListResult):
        _list(verb, result, parts, headers)
    elif isinstance(result, IdentifyResult):
        parts.append(_identify(ctx, result).encode("utf-8"))
    elif isinstance(result, FormatsResult):
        parts.append(_formats(result).encode("utf-8"))
    elif isinstance(result, SetsResult):
        parts.append(_sets(result).encode("utf-8"))
    elif isinstance(result, RecordResult):
        record = _record(result.item, result.stamp)
        headers.append(_header(result.item).encode("utf-8"))
        parts.append(b"<GetRecord>" + record + b"</GetRecord>\n")
    else:  # pragma: no cover - a programming error, not a protocol error
        raise TypeError(f"no renderer for {type(result).__name__}")
    parts.append(b"</OAI-PMH>\n")
    return Rendered(b"".join(parts), b"".join(headers))
