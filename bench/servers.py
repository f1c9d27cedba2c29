"""Servers the bench starts (gunicorn for ours and pyoai's, a static file server) on 127.0.0.1 only.

Each runs in its own process group and is always stopped (context manager, SIGTERM then SIGKILL);
/proc gives the workers' CPU time and peak RSS (VmHWM).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_STARTED: list[subprocess.Popen] = []


@dataclass
class Server:
    name: str
    url: str  # the OAI endpoint (baseURL)
    proc: subprocess.Popen
    log: Path

    def workers(self) -> list[int]:
        """The processes that answer requests: gunicorn's workers, or the process itself."""
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        except OSError:
            children = []
        return [int(c) for c in children] or [self.proc.pid]

    def cpu_seconds(self) -> float:
        """User + system CPU time of the workers so far."""
        return sum(cpu_seconds(pid) for pid in self.workers())

    def peak_rss_mb(self) -> float:
        """The largest VmHWM (peak resident set) among the workers, in MiB."""
        return max((vm_hwm_kb(pid) for pid in self.workers()), default=0) / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def database_cpu_seconds() -> float:
    """User + system CPU time of every PostgreSQL process on this machine so far, the backends that have exited
    included (the postmaster, their parent, holds their time once it has reaped them). A store on SQLite
    spends its CPU in the processes that use it, which are counted already. The bench machine is otherwise
    idle: anything else using PostgreSQL meanwhile is counted too."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if not (entry / "comm").read_text().startswith("postgres"):
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return total / _CLK_TCK


def vm_hwm_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _wait_ready(server: Server, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited at start:\n{server.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(server.url + "?verb=Identify", timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{server.name} did not answer within {timeout:.0f}s:\n{server.log.read_text()[-3000:]}")


def _spawn(name: str, argv: list[str], env: Mapping[str, str], url: str, logdir: Path) -> Server:
    logdir.mkdir(parents=True, exist_ok=True)
    log = logdir / f"{name}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=REPO, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    _STARTED.append(proc)
    server = Server(name, url, proc, log)
    try:
        _wait_ready(server)
    except BaseException:
        stop(server)
        raise
    return server


def stop(server: Server) -> None:
    """SIGTERM to the server's process group, SIGKILL after 10 s."""
    proc = server.proc
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    if proc in _STARTED:
        _STARTED.remove(proc)


def stop_all() -> None:
    """Stop whatever is still running (called on exit and on signals)."""
    for proc in list(_STARTED):
        stop(Server("?", "", proc, Path("/dev/null")))


def gunicorn(name: str, app: str, env: Mapping[str, str], logdir: Path, *, workers: int = 2,
             threads: int = 4, path: str = "/oai") -> Server:
    """`app` (a gunicorn app spec) under gunicorn: `workers` gthread workers, no access log."""
    port = free_port()
    argv = [str(BIN / "gunicorn"), "--bind", f"{HOST}:{port}", "--workers", str(workers),
            "--worker-class", "gthread", "--threads", str(threads), "--timeout", "300",
            "--graceful-timeout", "5", "--log-level", "warning", app]
    return _spawn(name, argv, env, f"http://{HOST}:{port}{path}", logdir)


def ours(store_env: Mapping[str, str], logdir: Path, *, page_size: int = 100, name: str = "ours") -> Server:
    env = {**store_env, "OAI_PAGE_SIZE": str(page_size), "OAI_SECRET_KEY": "bench-secret-0123456789",
           "OAI_RATE_LIMIT_PER_MINUTE": "0"}
    return gunicorn(name, "oai:create_app()", env, logdir)


def pyoai(store_env: Mapping[str, str], logdir: Path, *, page_size: int = 100, name: str = "pyoai") -> Server:
    env = {**store_env, "BENCH_PYOAI_BATCH": str(page_size)}
    return gunicorn(name, "bench.pyoai_app:create_app()", env, logdir)


def static(pages: Path, logdir: Path, *, name: str = "static") -> Server:
    port = free_port()
    argv = [sys.executable, "-m", "bench.static_server", str(pages), str(port)]
    return _spawn(name, argv, {}, f"http://{HOST}:{port}/oai", logdir)


@contextmanager
def running(*starters) -> Iterator[list[Server]]:  # noqa: ANN002
    """Start servers (callables returning Server) and stop every one of them afterwards."""
    started: list[Server] = []
    try:
        for start in starters:
            started.append(start())
        yield started
    finally:
        for server in reversed(started):
            stop(server)
