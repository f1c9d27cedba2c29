"""The layering DESIGN.md draws, checked over the source with ast: every import, anywhere in a file."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STDLIB = set(sys.stdlib_module_names)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module a file imports (relative imports resolved), at any depth of the file."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                found.add(".".join([*base, node.module] if node.module else base))
            else:
                found.add(node.module)
    return found - {"__future__"}


def sources(package: str) -> list[Path]:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no sources under {package}"
    return files


def violations(package: str, allowed) -> list[str]:  # noqa: ANN001
    return [f"{path.relative_to(ROOT)} imports {name}"
            for path in sources(package) for name in sorted(imports(path)) if not allowed(name)]


def top(name: str) -> str:
    return name.split(".")[0]


def within(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_the_store_imports_only_sqlalchemy() -> None:
    # Alembic is SQLAlchemy's migration tool; the store owns the migrations (DESIGN.md); oai.clock imports nothing
    assert violations("oai/store", lambda n: top(n) in STDLIB | {"sqlalchemy", "alembic"}
                      or within(n, "oai.store", "oai.clock")) == []


def test_the_clock_imports_nothing_of_ours() -> None:
    assert imports(ROOT / "oai" / "clock.py") <= STDLIB


def test_formats_import_only_lxml() -> None:
    assert violations("oai/formats", lambda n: top(n) in STDLIB | {"lxml"} or within(n, "oai.formats")) == []


def test_the_protocol_has_no_web_framework() -> None:
    allowed = STDLIB | {"sqlalchemy", "lxml"}
    assert violations("oai/protocol", lambda n: top(n) in allowed
                      or within(n, "oai.protocol", "oai.store", "oai.formats", "oai.clock")) == []


@pytest.mark.parametrize("framework", ["flask", "werkzeug"])
def test_only_web_and_cli_import_flask(framework: str) -> None:
    users = {str(p.relative_to(ROOT)) for p in sources("oai") if any(top(n) == framework for n in imports(p))}
    assert users <= {"oai/cli.py"} | {str(p.relative_to(ROOT)) for p in sources("oai/web")}


def test_the_harvester_never_imports_the_web_layer() -> None:
    assert violations("harvester", lambda n: not within(n, "oai.web") and top(n) not in ("flask", "werkzeug")) == []


def test_oai_never_imports_the_harvester() -> None:
    assert violations("oai", lambda n: top(n) != "harvester") == []


def test_the_checker_sees_imports() -> None:
    # the checks above are only as good as this: function-level and relative imports count
    probe = ROOT / "oai" / "protocol" / "verbs.py"
    assert {"oai.store", "oai.store.models", "sqlalchemy.orm", "oai.protocol.tokens"} <= imports(probe)
    assert "oai.web.app" in imports(ROOT / "oai" / "cli.py")  # imported inside a function
