"""The house rules as tests: which layer may import which, module size, module docstrings.

- the pure statistics and scoring modules import neither storage nor Streamlit (directly, and
  not through anything they import);
- only `annotate/app/` imports Streamlit;
- nothing in the core imports `annotate.cli` or `annotate.app`;
- no module runs past 500 lines, and each opens with a docstring saying what it is for.

Each rule is checked by `violations`, which reads a package tree's import statements; the
`bad_tree` tests run it on a small package that breaks each rule, so the checks can fail.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "annotate"
MAX_LINES = 500
# Pure layers: statistics over plain data, and the harness side that reads release files.
PURE = ("stats", "scoring")
# Shells: the only packages that may import the command line or the app.
SHELLS = ("cli", "app")
STORAGE_MODULES = ("annotate.storage", "sqlmodel", "sqlalchemy", "alembic", "psycopg")


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    imports: frozenset[str]


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(tree: ast.AST, name: str, is_package: bool) -> set[str]:
    """Every module an import statement anywhere in the file names (function bodies too)."""
    found: set[str] = set()
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.add(module)
            # `from annotate import storage` imports the sub-package `annotate.storage`.
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def modules(root: Path) -> list[Module]:
    """Every Python module under `root` (migration scripts aside) with what it imports."""
    out = []
    for path in sorted(root.rglob("*.py")):
        if "migrations" in path.parts and "versions" in path.parts:
            continue
        name = _module_name(root, path)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        out.append(Module(name, path, frozenset(_imports(tree, name, path.name == "__init__.py"))))
    return out


def _layer(root: Path, module: Module) -> str:
    parts = module.path.relative_to(root).parts
    return parts[0] if len(parts) > 1 else ""


def _names(imports: frozenset[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(i for i in imports if any(i == p or i.startswith(p + ".") for p in prefixes))


def violations(root: Path) -> list[str]:
    """The house rules broken by the package at `root`, one line each."""
    pkg = root.name
    problems = []
    for module in modules(root):
        layer = _layer(root, module)
        if layer in PURE:
            bad = _names(module.imports, (f"{pkg}.storage", *STORAGE_MODULES[1:], "streamlit"))
            if bad:
                problems.append(f"{module.name} is pure but imports {', '.join(bad)}")
        if layer != "app":
            bad = _names(module.imports, ("streamlit",))
            if bad:
                problems.append(f"{module.name} imports Streamlit outside app/")
        if layer not in SHELLS:
            bad = _names(module.imports, (f"{pkg}.cli", f"{pkg}.app"))
            if bad:
                problems.append(f"{module.name} is core but imports {', '.join(bad)}")
        text = module.path.read_text(encoding="utf-8")
        lines = text.count("\n")
        if lines > MAX_LINES:
            problems.append(f"{module.name} has {lines} lines (at most {MAX_LINES})")
        doc = ast.get_docstring(ast.parse(text))
        if not doc or not doc.strip().splitlines()[0].strip():
            problems.append(f"{module.name} has no docstring saying what it is for")
    return problems


def test_the_package_keeps_the_house_rules() -> None:
    assert violations(PACKAGE) == []


def test_every_layer_is_a_sub_package_with_few_top_level_modules() -> None:
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    # The kernel every layer shares: errors, settings, the label schema (with its condition
    # language and label normalisation in schema_labels.py) and the label table.
    assert top == [
        "__init__.py",
        "errors.py",
        "schema.py",
        "schema_labels.py",
        "settings.py",
        "table.py",
    ]
    layers = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    expected = {"storage", "intake", "accounts", "labeling", "stats", "review", "release"}
    assert layers == expected | {"scoring", "cli", "app"}


@pytest.mark.parametrize("package", ["annotate.stats", "annotate.scoring"])
def test_pure_layers_load_no_storage_or_streamlit_even_indirectly(package: str) -> None:
    names = [m.name for m in modules(PACKAGE) if m.name.startswith(package)]
    code = (
        "import importlib, json, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded = json.loads(done.stdout)
    assert _names(frozenset(loaded), (*STORAGE_MODULES, "streamlit")) == []


# --- the checks can fail ------------------------------------------------------------------------


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


GOOD = '"""A module."""\n'


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            {"stats/alpha.py": '"""Alpha."""\nfrom pkg.storage import db\n'},
            "pkg.stats.alpha is pure but imports pkg.storage, pkg.storage.db",
        ),
        (
            {"scoring/score.py": '"""Score."""\ndef f():\n    import sqlmodel\n'},
            "pkg.scoring.score is pure but imports sqlmodel",
        ),
        (
            {"stats/plot.py": '"""Plot."""\nimport streamlit as st\n'},
            "pkg.stats.plot imports Streamlit outside app/",
        ),
        (
            {"review/queue.py": '"""Queue."""\nfrom streamlit import cache_data\n'},
            "pkg.review.queue imports Streamlit outside app/",
        ),
        (
            {"release/publish.py": '"""Publish."""\nfrom pkg import cli\n'},
            "pkg.release.publish is core but imports pkg.cli",
        ),
        (
            {"storage/users.py": '"""Users."""\nfrom pkg.app.render import inert\n'},
            "pkg.storage.users is core but imports pkg.app.render",
        ),
        ({"storage/big.py": GOOD + "x = 1\n" * MAX_LINES}, "pkg.storage.big has 501 lines"),
        ({"intake/nodoc.py": "x = 1\n"}, "pkg.intake.nodoc has no docstring saying what it is for"),
    ],
)
def test_a_tree_that_breaks_a_rule_is_reported(
    tmp_path: Path, files: dict[str, str], expected: str
) -> None:
    base = {"__init__.py": GOOD, "stats/__init__.py": GOOD, "app/__init__.py": GOOD}
    root = _write(tmp_path / "pkg", {**base, **files})
    found = violations(root)
    assert any(line.startswith(expected) for line in found), found


def test_a_tree_that_keeps_the_rules_passes(tmp_path: Path) -> None:
    root = _write(
        tmp_path / "pkg",
        {
            "__init__.py": GOOD,
            "stats/alpha.py": '"""Alpha."""\nimport numpy\nfrom pkg.schema import S\n',
            "app/page.py": '"""Page."""\nimport streamlit\nfrom pkg.storage import db\n',
            "cli/main.py": '"""CLI."""\nfrom pkg.app import server\n',
        },
    )
    assert violations(root) == []
