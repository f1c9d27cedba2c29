"""The static-files baseline: pages captured from our server, served by a trivial threaded HTTP server.

`python -m bench.static_server DIR PORT` answers `?verb=ListRecords&metadataPrefix=P` with DIR/first-P.xml
and `?verb=ListRecords&resumptionToken=T` with DIR/<sha1(T)>.xml, read from disk per request.
"""

from __future__ import annotations

import hashlib
import http.client
import html
import re
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

TOKEN = re.compile(rb"<resumptionToken[^>]*>([^<]*)</resumptionToken>")


def page_name(params: dict[str, str]) -> str:
    token = params.get("resumptionToken")
    if token:
        return hashlib.sha1(token.encode()).hexdigest() + ".xml"
    return f"first-{params.get('metadataPrefix', '')}.xml"


def next_token(body: bytes) -> str | None:
    """The resumptionToken of a page (None or '' when the list is complete)."""
    m = TOKEN.search(body)
    return html.unescape(m.group(1).decode()) if m else None


def capture(url: str, prefix: str, out: Path, *, max_pages: int | None = None) -> int:
    """Fetch a whole ListRecords list (identity encoding) into `out`; returns the number of pages."""
    out.mkdir(parents=True, exist_ok=True)
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)
    params = {"verb": "ListRecords", "metadataPrefix": prefix}
    pages = 0
    try:
        while True:
            conn.request("GET", f"{parts.path}?{urllib.parse.urlencode(params)}", headers={"Accept-Encoding": "identity"})
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                raise RuntimeError(f"capture: HTTP {resp.status} from {url}")
            (out / page_name(params)).write_bytes(body)
            pages += 1
            token = next_token(body)
            if not token or (max_pages and pages >= max_pages):
                return pages
            params = {"verb": "ListRecords", "resumptionToken": token}
    finally:
        conn.close()


def serve(directory: Path, port: int) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802
            query = urllib.parse.urlsplit(self.path).query
            params = {k: v[0] for k, v in urllib.parse.parse_qs(query).items()}
            if params.get("verb") == "Identify":
                body = b'<?xml version="1.0" encoding="UTF-8"?><OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/"/>'
            else:
                try:
                    body = (directory / page_name(params)).read_bytes()
                except OSError:
                    self.send_error(404)
                    return
            self.send_response(200)
            self.send_header("Content-Type", "text/xml; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    httpd.daemon_threads = True
    httpd.serve_forever()


if __name__ == "__main__":
    serve(Path(sys.argv[1]), int(sys.argv[2]))
