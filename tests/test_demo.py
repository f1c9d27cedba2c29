"""The README's run command, `oai demo`, as a newcomer runs it: in an empty directory with no settings, it makes
the SQLite store there, loads the demo articles, and prints a URL that sickle harvests them from. A second
server on the same port exits with the reason and prints no URL (an audit found the URL printed, then a failure)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from endpoint_helpers import CheckedSickle

from oai.cli import DEMO_DIRS

OAI_BIN = Path(sys.executable).parent / "oai"


def _demo_documents() -> int:
    return sum(1 for d in DEMO_DIRS for p in d.rglob("*") if p.suffix in {".xml", ".nxml", ".jats"})


def _wait_for_url(log: Path, proc: subprocess.Popen) -> str:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = re.search(r"OAI-PMH endpoint: (http://127\.0\.0\.1:\d+/oai)\?verb=Identify", log.read_text())
        if found:
            return found.group(1)
        assert proc.poll() is None, log.read_text()
        time.sleep(0.1)
    raise AssertionError(log.read_text())


def test_the_demo_serves_its_articles_from_a_fresh_directory(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OAI_")}
    env["OAI_LOOKAHEAD_DIR"] = str(tmp_path / "lookahead")  # the one setting kept: nothing left behind in /tmp
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(OAI_BIN), "demo", "--port", "0"], cwd=tmp_path, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
        try:
            url = _wait_for_url(log, proc)
            dc = [r.header.identifier for r in CheckedSickle(url).ListRecords(metadataPrefix="oai_dc")]
            jats = [r.header.identifier for r in CheckedSickle(url).ListRecords(metadataPrefix="jats")]
            assert len(dc) == len(set(dc)) == _demo_documents()
            assert 0 < len(jats) <= len(dc) and set(jats) <= set(dc)
            assert (tmp_path / "oai.sqlite3").is_file()
            # the sample articles served in part are said, in one line, not passed over (an outside audit)
            assert re.search(r"^\d+ of them loaded with warnings, which `oai load .*` prints", log.read_text(), re.M)

            port = url.split(":")[2].split("/")[0]
            second = subprocess.run([str(OAI_BIN), "serve", "--port", port], cwd=tmp_path, env=env,
                                    capture_output=True, text=True, timeout=120)
            assert second.returncode == 1
            assert "in use" in second.stderr and "OAI-PMH endpoint" not in second.stderr + second.stdout
            assert "--port N" in second.stderr  # how to choose another (an outside audit: the option was unnamed)
            # a second demo says so before it loads anything (it loaded, then failed), in a directory of its own
            elsewhere = tmp_path / "elsewhere"
            elsewhere.mkdir()
            again = subprocess.run([str(OAI_BIN), "demo", "--port", port], cwd=elsewhere, env=env,
                                   capture_output=True, text=True, timeout=120)
            assert again.returncode == 1 and "--port N" in again.stderr and "demo records" not in again.stderr
            assert not (elsewhere / "oai.sqlite3").exists()
            # a host that is none of this machine's is said as such, not as a port in use (an outside review)
            bad_host = subprocess.run([str(OAI_BIN), "serve", "--host", "no-such-host.invalid", "--port", port],
                                      cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
            assert bad_host.returncode == 1 and "--host must name an address of this machine" in bad_host.stderr
        finally:
            proc.send_signal(signal.SIGINT)
            code = proc.wait(timeout=60)
    assert code == 0, log.read_text()
    assert "Traceback" not in log.read_text()
