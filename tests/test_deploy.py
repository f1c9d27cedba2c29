"""deploy/: the web node as its systemd unit starts it (gunicorn with deploy/gunicorn.conf.py) boots, serves
and stops cleanly. Its home directory is one nothing can be written to, as under the unit's
ProtectSystem=strict: an outside audit found gunicorn's control socket failing there with an error."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.client import HTTPConnection
from pathlib import Path

from oaischema import assert_oai

REPO = Path(__file__).resolve().parent.parent


@contextmanager
def _node(database_url: str, tmp_path: Path, **settings: str) -> Iterator[tuple[int, Path, Callable[[], int]]]:
    """A web node as deployed, bound to a free port: (port, its log, stop() giving its exit code)."""
    env = {**os.environ, "OAI_DATABASE_URL": database_url, "OAI_BIND": "127.0.0.1:0", "OAI_WORKERS": "1",
           "HOME": "/proc", "OAI_SECRET_KEY": "deploy-test-secret-0123456789", **settings}
    gunicorn = Path(sys.executable).parent / "gunicorn"
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(gunicorn), "-c", str(REPO / "deploy/gunicorn.conf.py"), "oai:create_app()"],
                                cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)

        def stop() -> int:
            proc.send_signal(signal.SIGTERM)
            return proc.wait(timeout=60)
        try:
            body, port, deadline = None, None, time.monotonic() + 60
            while body is None and time.monotonic() < deadline:
                if port is None:  # bound to a free port of its own choosing: read which from its log
                    found = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", log.read_text())
                    port = found and int(found.group(1))
                    time.sleep(0.1)
                    continue
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/oai?verb=Identify", timeout=5) as reply:
                        body = reply.read()
                except OSError:
                    time.sleep(0.2)
            assert body is not None, log.read_text()
            assert_oai(body)
            yield port, log, stop
        finally:
            if proc.poll() is None:
                stop()


def test_the_web_node_as_deployed_boots_serves_and_stops(database_url: str, tmp_path: Path) -> None:
    with _node(database_url, tmp_path, OAI_PAGESIZE="5") as (port, log, stop):
        # a local client's X-Forwarded-Proto is not believed with OAI_PROXY_HOPS=0 (gunicorn's own default did)
        asked = urllib.request.Request(f"http://127.0.0.1:{port}/oai?verb=Identify",
                                       headers={"X-Forwarded-Proto": "https"})
        with urllib.request.urlopen(asked, timeout=5) as reply:
            assert assert_oai(reply.read()).findtext(".//{*}baseURL").startswith("http://127.0.0.1:")
        long_token = "x" * 6000  # a request line past gunicorn's default limit of 4094 bytes
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/oai?verb=ListRecords&resumptionToken={long_token}",
                                    timeout=5) as reply:
            assert assert_oai(reply.read()).find(".//{*}error").get("code") == "badResumptionToken"
        # a POST body of exactly OAI_MAX_REQUEST_BYTES is read (gunicorn ends the input itself, and Werkzeug
        # refused it at the probe for one byte more: an outside audit); one byte more is badArgument
        for size, code in ((65536, "badResumptionToken"), (65537, "badArgument")):
            body = b"verb=ListRecords&resumptionToken=" + b"x" * (size - 33)
            for chunked in (False, True):
                posted = urllib.request.Request(
                    f"http://127.0.0.1:{port}/oai", data=iter([body]) if chunked else body, method="POST",
                    headers={"Content-Type": "application/x-www-form-urlencoded",
                             **({"Transfer-Encoding": "chunked"} if chunked else {})})
                with urllib.request.urlopen(posted, timeout=5) as reply:
                    assert assert_oai(reply.read()).find(".//{*}error").get("code") == code, (size, chunked)
        code = stop()
    text = log.read_text()
    assert code == 0, text
    assert "[ERROR]" not in text and "Traceback" not in text, text
    # our warnings as gunicorn writes its lines: time, pid, level (a misspelt setting, set above, says one)
    assert re.search(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[\d+\] \[WARNING\] oai\.web: OAI_PAGESIZE "
                     r"is not a setting of ours", text, re.M), text


def test_a_bad_setting_stops_the_node_in_one_line(database_url: str, tmp_path: Path) -> None:
    """An outside operations review: a bad OAI_* value or a database not reachable printed a 40-line traceback
    from every worker; OAI_WORKERS=abc one from the config file. Now one line from the master, and exit 1."""
    gunicorn = Path(sys.executable).parent / "gunicorn"
    for setting, said in ((("OAI_WORKERS", "abc"), "Error: OAI_WORKERS must be a whole number, 1 or more, not 'abc'"),
                          (("OAI_PAGE_SIZE", "0"), "Error: the page size for ListRecords must be between 1 and"),
                          # (an outside README audit: 0 for one verb was taken as "not set", without a word)
                          (("OAI_PAGE_SIZE_LISTSETS", "0"), "Error: the page size for ListSets must be between 1 and"),
                          (("OAI_DATABASE_URL", "postgresql://nobody@127.0.0.1:9/x"), "Error: cannot reach the database")):
        env = {**os.environ, "OAI_DATABASE_URL": database_url, "OAI_BIND": "127.0.0.1:0", "OAI_WORKERS": "1",
               "HOME": "/proc", "OAI_SECRET_KEY": "deploy-test-secret-0123456789", setting[0]: setting[1]}
        done = subprocess.run([str(gunicorn), "-c", str(REPO / "deploy/gunicorn.conf.py"), "oai:create_app()"],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        out = done.stdout + done.stderr
        assert done.returncode == 1 and said in out and "Traceback" not in out, out


def test_a_body_too_large_leaves_the_connection_in_step_and_a_broken_one_is_a_400(database_url: str,
                                                                                 tmp_path: Path) -> None:
    """An outside audit behind deploy/nginx.conf: a POST body over OAI_MAX_REQUEST_BYTES (nginx lets 1 MB through)
    was answered keep-alive with the body unread, and the connection then closed; nginx sent another client's
    request on it (502, the node marked down, once the whole site). And a chunked body not framed as HTTP/1.1
    says was a 500 with a traceback."""
    with _node(database_url, tmp_path) as (port, log, stop):
        connection = HTTPConnection("127.0.0.1", port, timeout=10)
        for body in (b"verb=Identify&x=" + b"a" * 300_000, iter([b"verb=Identify&x=" + b"a" * 900_000])):
            chunked = not isinstance(body, bytes)
            connection.request("POST", "/oai", body=body, encode_chunked=chunked,
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
            reply = connection.getresponse()
            assert assert_oai(reply.read()).find(".//{*}error").get("code") == "badArgument"
            connection.request("GET", "/oai?verb=Identify")  # on the same connection: it is still in step
            reply = connection.getresponse()
            assert reply.status == 200 and assert_oai(reply.read()).find(".//{*}Identify") is not None, chunked
        connection.close()
        for framing in (b"zz\r\nverb=Identify\r\n0\r\n\r\n", b"d\r\nverb=IdentifyXX0\r\n\r\n"):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(b"POST /oai HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded"
                             b"\r\nTransfer-Encoding: chunked\r\n\r\n" + framing)
                status = sock.recv(64).split(b"\r\n", 1)[0]
            assert status.startswith(b"HTTP/1.1 400"), (framing, status)
        assert stop() == 0
    text = log.read_text()
    assert "Traceback" not in text and "[ERROR]" not in text, text


def test_the_environment_file_reads_in_a_shell_and_names_only_settings() -> None:
    """deploy/oai.env.example is read by systemd and, to run `oai` commands on the host, by a shell: an outside
    audit found `. oai.env` failing on an unquoted value with spaces ("Journal: command not found")."""
    from oai.config import unknown_settings

    read = subprocess.run(["sh", "-ec", f"set -a; . '{REPO / 'deploy/oai.env.example'}'; env -0"],
                          capture_output=True, env={"PATH": os.environ["PATH"]}, check=True)
    assert read.stderr == b""
    environ = dict(item.split("=", 1) for item in read.stdout.decode().split("\0") if "=" in item)
    ours = {k: v for k, v in environ.items() if k.startswith("OAI_")}
    assert ours["OAI_REPOSITORY_NAME"] == "Example Journal Repository"
    assert len(ours) >= 6 and unknown_settings(ours) == []
