"""Imports point one way: fleetgate (the command) -> simulator -> services -> schemas; nothing imports tests or
bench, and nothing installed imports devtools."""

from __future__ import annotations

import ast
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# What each package may import of the project, besides itself.
ALLOWED = {
    "schemas": set(),
    "services": {"schemas"},
    "simulator": {"services", "schemas"},
    "fleetgate": {"simulator", "services", "schemas"},
    "devtools": {"fleetgate", "simulator", "services", "schemas"},
    "bench": {"devtools", "fleetgate", "simulator", "services", "schemas"},
    "tests": {"devtools", "fleetgate", "simulator", "services", "schemas"},
}


def project_imports(path: Path) -> set[str]:
    """The project's top-level packages that a module imports, at any depth of its code."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.partition(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.partition(".")[0])
    return found & set(ALLOWED)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_is_below_it(package: str) -> None:
    """No module of the package imports a project package that is not below it (or itself)."""
    wrong = {
        str(path.relative_to(ROOT)): sorted(imported - ALLOWED[package] - {package})
        for path in sorted((ROOT / package).rglob("*.py"))
        if (imported := project_imports(path)) - ALLOWED[package] - {package}
    }
    assert wrong == {}


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    """The AST walk finds imports inside functions too (the check above cannot pass by not looking)."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from simulator.fleet import generate_fleet\n    import tests.conftest\n")
    assert project_imports(module) == {"simulator", "tests"}


def test_the_wheel_ships_no_test_or_bench_tooling() -> None:
    """The packages pyproject.toml installs are the four of the product: devtools, bench and tests stay out."""
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    # setuptools' find: a folder with an __init__.py whose name matches an include pattern.
    packages = {path.parent.name for path in ROOT.glob("*/__init__.py")}
    installed = {name for name in packages if any(fnmatch(name, pattern) for pattern in include)}
    assert {"devtools", "bench", "tests"} <= packages
    assert installed == {"fleetgate", "schemas", "services", "simulator"}
