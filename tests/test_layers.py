"""The package map holds: arrows point down, and the domains named here never import each other
in the forbidden direction (read from the source, so a late import inside a function counts)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parent.parent / "app"

# (package, packages it must never import)
FORBIDDEN = [
    # (triage's views still share app.web's access and rendering helpers: issue 14 moves those below.)
    ("app.triage", ("app.pathways", "app.community", "app.adherence", "app.reports")),
    ("app.notifications", ("app.pathways", "app.triage", "app.web", "app.community", "app.adherence")),
    ("app.core", ("app.pathways", "app.triage", "app.notifications", "app.web", "app.care", "app.jobs")),
]


def _imports(path: Path, package: str) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module = package + "." + ".".join(path.relative_to(APP / package.split(".", 1)[1]).with_suffix("").parts)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.rsplit(".", node.level)[0]
                found.add(f"{base}.{node.module}" if node.module else base)
            elif node.module:
                found.add(node.module)
    return found


@pytest.mark.parametrize("package, forbidden", FORBIDDEN, ids=[p for p, _ in FORBIDDEN])
def test_no_import_against_the_arrows(package, forbidden):
    folder = APP / package.split(".", 1)[1]
    wrong = []
    for path in sorted(folder.rglob("*.py")):
        for name in _imports(path, package):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                wrong.append(f"{path.relative_to(APP.parent)} imports {name}")
    assert wrong == []
