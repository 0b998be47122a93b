"""The floors of the code base import one way only (README, Architecture):

ground floor <- datasets <- plugins (contracts, registry, conformance kit) <- zoo <- benchmark <- CLI.

Every ``import`` of an ``fc4dfs`` module, at module level or inside a function, is parsed with ``ast``;
an import of a higher floor fails the test with the file, line and both floors.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FOLDERS = ("datasets", "plugins", "zoo", "benchmark")  # fc4dfs.<folder>, see setup.py
FLOORS = ("ground floor", "datasets", "plugins", "zoo", "benchmark", "CLI")
#: modules that import nothing above themselves: errors, storage, component specs, checkpoints, training loop,
#: the normaliser
GROUND_FLOOR = frozenset({"fc4dfs.plugins.errors", "fc4dfs.plugins.spec", "fc4dfs.plugins.checkpoint",
                          "fc4dfs.datasets.storage", "fc4dfs.zoo.training", "fc4dfs.zoo.normalise"})
CLI = ("fc4dfs.benchmark.cli", "fc4dfs.benchmark.commands")


def floor(module: str) -> int:
    if module in GROUND_FLOOR:
        return 0
    if any(module == c or module.startswith(c + ".") for c in CLI):
        return FLOORS.index("CLI")
    return FLOORS.index(module.split(".")[1])


def modules(root: Path) -> dict[str, Path]:
    """``{dotted name: file}`` of every module under the code folders of ``root``."""
    out: dict[str, Path] = {}
    for folder in FOLDERS:
        for path in sorted((root / folder).rglob("*.py")):
            parts = ["fc4dfs", *path.relative_to(root).with_suffix("").parts]
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imported(module: str, path: Path, known: set[str]) -> list[tuple[int, str]]:
    """``(line, module)`` for every ``fc4dfs`` module that ``module`` (at ``path``) imports."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for a in node.names:  # ``from pkg import submodule`` imports the submodule
                out.append((node.lineno, f"{base}.{a.name}" if f"{base}.{a.name}" in known else base))
    return [(line, m) for line, m in out if m.startswith("fc4dfs.") and m in known]


def upward_imports(root: Path) -> list[str]:
    mods = modules(root)
    found = []
    for module, path in mods.items():
        for line, target in imported(module, path, set(mods)):
            if floor(target) > floor(module):
                found.append(f"{path.relative_to(root)}:{line}: {module} ({FLOORS[floor(module)]}) imports "
                             f"{target} ({FLOORS[floor(target)]})")
    return found


def test_imports_go_down_the_floors_only():
    found = upward_imports(REPO)
    assert not found, "upward imports:\n" + "\n".join(found)


def test_the_check_finds_an_upward_import(tmp_path):
    for folder in FOLDERS:
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "__init__.py").write_text("")
    (tmp_path / "plugins" / "errors.py").write_text("")
    (tmp_path / "zoo" / "model.py").write_text("from fc4dfs.plugins import errors\n")
    (tmp_path / "datasets" / "reader.py").write_text("def f():\n    from ..zoo.model import X\n")
    (tmp_path / "plugins" / "spec.py").write_text("import fc4dfs.datasets.reader\n")
    assert upward_imports(tmp_path) == [
        "datasets/reader.py:2: fc4dfs.datasets.reader (datasets) imports fc4dfs.zoo.model (zoo)",
        "plugins/spec.py:1: fc4dfs.plugins.spec (ground floor) imports fc4dfs.datasets.reader (datasets)",
    ]


@pytest.mark.parametrize("module", sorted(GROUND_FLOOR))
def test_ground_floor_modules_exist(module):
    assert module in modules(REPO), f"{module} is listed as ground floor but does not exist"
