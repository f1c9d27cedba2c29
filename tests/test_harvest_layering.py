"""Layering: the harvester imports oai.store, oai.formats, oai.orphans, oai.clock (and oai.config, oai.cli for CLI glue),
never the web layer; its worker processes import no database layer."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALLOWED_OAI = ("oai.store", "oai.formats", "oai.config", "oai.cli", "oai.orphans", "oai.clock")


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_harvester_never_imports_the_web_layer() -> None:
    for path in sorted((ROOT / "harvester").glob("*.py")):
        for name in imports(path):
            assert not name.startswith(("flask", "werkzeug", "oai.web", "oai.protocol")), (path.name, name)
            if name.startswith("oai.") or name == "oai":
                assert name.startswith(ALLOWED_OAI), (path.name, name)
        if path.name not in ("cli.py", "__main__.py"):
            assert not any(n.startswith("oai.cli") for n in imports(path)), path.name


def test_oai_never_imports_the_harvester() -> None:
    for path in sorted((ROOT / "oai").rglob("*.py")):
        assert not any(n == "harvester" or n.startswith("harvester.") for n in imports(path)), path


def test_the_worker_processes_import_no_database_layer() -> None:
    """An outside audit counted the harvester's memory: each worker process (and the fork server they come from) had
    SQLAlchemy loaded, about 20 MB a process, through the clock that harvester.dates took from oai.store.fence."""
    import subprocess
    import sys

    loaded = subprocess.run([sys.executable, "-c", "import sys, harvester.workers; print(sorted(m for m in sys.modules "
                             "if m.split('.')[0] in ('sqlalchemy', 'psycopg', 'flask') or m.startswith('oai.store')))"],
                            cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]", loaded
