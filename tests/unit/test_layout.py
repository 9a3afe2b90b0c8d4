"""The layers, where import-linter cannot see: nothing under ``constellation/`` names the
operator's verbs (``phases``) or the command line (``cli``), not even in a string such as an
adapter's ``"module:object"``."""

from __future__ import annotations

import re

from tests.support.cli import REPO

#: an import, a dotted name or a quoted module name of the two upper floors
UPWARD = re.compile(
    r"\b(?:from|import)\s+(?:phases|cli)\b|[\"'`](?:phases|cli)\b|\b(?:phases|cli)\.\w+"
)


def upward_references(text: str) -> list[str]:
    return [m.group(0) for m in UPWARD.finditer(text)]


def test_the_pattern_finds_every_way_of_naming_them() -> None:
    assert upward_references("from phases.migrate.phase1 import phase1") == ["from phases"]
    assert upward_references('load("legacy", "phases.legacy:make")') == ['"phases']
    assert upward_references("import cli.main") == ["import cli"]
    assert upward_references("see cli.output") == ["cli.output"]
    # Plain English stays allowed.
    assert upward_references("the four phases. A client of the CLI") == []


def test_nothing_under_constellation_names_phases_or_cli() -> None:
    found = {
        str(path.relative_to(REPO)): refs
        for path in sorted((REPO / "constellation").rglob("*"))
        if path.is_file() and path.suffix in (".py", ".yaml", ".yml", ".json", ".txt", ".md")
        for refs in [upward_references(path.read_text(encoding="utf-8"))]
        if refs
    }
    assert found == {}


def test_every_package_folder_is_a_package_so_that_it_is_installed() -> None:
    # setuptools' package finder (pyproject.toml) skips a folder without __init__.py: an
    # installed (non-editable) Constellation would lack it.
    folders = {
        path.parent.relative_to(REPO)
        for top in ("cli", "phases", "constellation")
        for path in (REPO / top).rglob("*.py")
    }
    assert [str(f) for f in sorted(folders) if not (REPO / f / "__init__.py").exists()] == []


def test_every_error_class_is_defined_in_constellation_errors() -> None:
    import ast

    errors = ast.parse((REPO / "constellation/errors.py").read_text(encoding="utf-8"))
    ours = {node.name for node in errors.body if isinstance(node, ast.ClassDef)}
    exceptions = ours | {"Exception", "BaseException", "ValueError", "RuntimeError"}
    elsewhere = []
    for top in ("cli", "phases", "constellation"):
        for path in sorted((REPO / top).rglob("*.py")):
            if path == REPO / "constellation/errors.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ClassDef):
                    bases = {
                        b.id if isinstance(b, ast.Name) else getattr(b, "attr", "")
                        for b in node.bases
                    }
                    if bases & exceptions:
                        elsewhere.append(f"{path.relative_to(REPO)}: {node.name}")
    assert elsewhere == []
