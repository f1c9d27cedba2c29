"""The browser view in a real browser: headless Chromium renders /oai through the XSLT link,
shows the records, and its next-page link leads to the next records. On both databases.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import lxml.html
import pytest
from conftest import IN_CI
from endpoint_helpers import T0, get, identifiers, populate, token

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture
def chromium() -> str:
    if CHROMIUM is None:
        if IN_CI:
            pytest.fail("CI=true but chromium is not installed: the browser test must run in CI")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return CHROMIUM


def dump_dom(chromium: str, url: str, profile: Path) -> lxml.html.HtmlElement:
    """The DOM after the browser applied the stylesheet."""
    done = subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
                          capture_output=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip(), done.stderr[-2000:]
    return lxml.html.fromstring(done.stdout)


def cls(name: str) -> str:
    return f"contains(concat(' ', normalize-space(@class), ' '), ' {name} ')"


def shown(page: lxml.html.HtmlElement) -> list[str]:
    return [a.text_content().strip() for a in page.xpath(f"//article[{cls('record')}]//a[{cls('identifier')}]")]


def test_records_render_and_the_next_page_link_works(engine, live_server, chromium: str, tmp_path: Path) -> None:
    made = populate(engine, 25, per_stamp=5, start=T0)
    server = live_server(page_size=10)
    # what the XML itself says, to compare the rendering with
    _, first_xml = get(server, verb="ListRecords", metadataPrefix="oai_dc")
    _, second_xml = get(server, verb="ListRecords", resumptionToken=token(first_xml).text)

    page = dump_dom(chromium, f"{server.url}?verb=ListRecords&metadataPrefix=oai_dc", tmp_path / "profile")
    assert page.tag == "html"  # the XSLT ran: an HTML document, not the XML tree
    assert shown(page) == identifiers(first_xml) == [g.identifier for g in made[:10]]
    titles = [h.text_content().strip() for h in page.xpath(f"//article[{cls('record')}]//*[{cls('record-title')}]")]
    assert titles == [f"Title of {g.identifier}" for g in made[:10]]
    assert re.search(r"1\D+10\D+25", page.xpath(f"//*[{cls('list-status')}]//*[{cls('summary')}]")[0].text_content())

    links = page.xpath('//a[@rel="next"]')
    assert links and len({a.get("href") for a in links}) == 1  # above and below the list, the same
    href = links[0].get("href")
    assert href.startswith(server.url + "?") and "resumptionToken=" in href
    page = dump_dom(chromium, href, tmp_path / "profile")
    assert shown(page) == identifiers(second_xml) == [g.identifier for g in made[10:20]]
    onward = {a.get("href") for a in page.xpath('//a[@rel="next"]')}
    assert onward and onward != {href}  # and on to the third page
