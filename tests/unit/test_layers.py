"""The import direction of docs/architecture.md: core <- ingest, consumers <- local <- loadtest.

A lower layer never imports a higher one, and the two Lambda sides (ingest, consumers) never import each
other: what both need lives in core. Imports inside functions count too (they are how a module defers a
cost, not how it escapes the rule).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# package -> the project packages it may import (besides itself)
ALLOWED = {
    "core": set(),
    "ingest": {"core"},
    "consumers": {"core"},
    "local": {"core", "ingest", "consumers"},
    "loadtest": {"core", "ingest", "consumers", "local"},
}


def imported_packages(path: Path) -> set[str]:
    """The top-level project packages a module imports, at module level or inside functions."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & set(ALLOWED)


def test_imported_packages_sees_nested_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "import os\nfrom core import ids\n\ndef f():\n    import local.stack\n    from . import x\n"
    )
    assert imported_packages(module) == {"core", "local"}


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_no_import_against_the_layering(package: str) -> None:
    violations = []
    for path in sorted((ROOT / package).rglob("*.py")):
        wrong = imported_packages(path) - ALLOWED[package] - {package}
        if wrong:
            violations.append(f"{path.relative_to(ROOT)} imports {sorted(wrong)}")
    assert not violations, "imports against docs/architecture.md's layering:\n" + "\n".join(violations)
