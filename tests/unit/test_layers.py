"""The layers of the tree (STYLE.md): ``shared`` knows nothing of the services or the batch;
each service imports ``shared`` and itself, never another service nor ``batch``; ``batch``
imports ``shared`` and itself. Read from the source's import statements (lazy ones too)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("shared", "services", "batch", "cli")


def _imports(path: Path) -> Iterator[str]:
    """The absolute module names ``path`` imports, anywhere in it."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def _allowed(path: Path) -> tuple[str, ...]:
    """The project packages a module may import, by where it sits."""
    parts = path.relative_to(ROOT).parts
    if parts[0] == "services":
        return ("shared", f"services.{parts[1]}")
    return ("shared",) if parts[0] == "shared" else ("shared", "batch")


def _crossings(top: str) -> list[str]:
    out = []
    for path in sorted((ROOT / top).rglob("*.py")):
        allowed = _allowed(path)
        for name in _imports(path):
            if name.split(".")[0] not in PACKAGES:
                continue  # a third-party or standard module
            if not any(name == a or name.startswith(a + ".") for a in allowed):
                out.append(f"{path.relative_to(ROOT)} imports {name}")
    return out


@pytest.mark.parametrize("top", ["shared", "services", "batch"])
def test_imports_follow_the_layers(top: str) -> None:
    assert _crossings(top) == []


def test_the_check_sees_a_sideways_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from batch.questions import QUESTIONS\n")
    assert "batch.questions" in set(_imports(module))
