"""The package's imports run one way, top to bottom, with no cycles (ARCHITECTURE.md draws the order).

Every import statement counts, also those inside functions: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "pointset_cli"

# Top first. A module may import its own package's modules and anything in a lower layer.
LAYERS = [
    ("__main__", ""),  # "" is the package itself: its lazy library names (api) and its version
    ("cli", "api"),
    ("training",),
    ("run",),
    ("models",),
    ("metrics",),
    ("losses",),
    ("distances",),
    ("data",),
    ("io", "render"),
    ("config",),
    ("fsutil",),
    ("errors", "version"),
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package modules that module `name` imports (`from X import m` counts as X.m when m is a module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] if package else [])
                target = ".".join(p for p in (base, node.module or "") if p)
            elif node.module and node.module.split(".")[0] == "pointset_cli":
                target = node.module.removeprefix("pointset_cli").lstrip(".")
            else:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}" if target else alias.name
                found.add(sub if sub in known else target)
        elif isinstance(node, ast.Import):
            found |= {a.name.removeprefix("pointset_cli").lstrip(".") for a in node.names
                      if a.name.split(".")[0] == "pointset_cli"}
    return found - {name}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def test_every_module_has_a_layer():
    unplaced = sorted(n for n in graph() if n.split(".")[0] not in LAYER)
    assert not unplaced, f"add these to LAYERS (and ARCHITECTURE.md): {unplaced}"


def test_imports_only_run_downhill():
    upward = []
    for name, deps in graph().items():
        top = name.split(".")[0]
        for dep in deps:
            other = dep.split(".")[0] if dep else ""
            if other != top and LAYER[other] <= LAYER[top]:
                upward.append(f"{name or 'pointset_cli'} -> {dep or 'pointset_cli'}")
    assert not upward, "imports that climb (or cross) the layers:\n" + "\n".join(sorted(upward))


def test_no_import_cycles():
    edges = graph()
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(edges.get(node, ())):
            if state.get(dep) == 1:
                cycles.append(" -> ".join(path[path.index(dep):] + [node, dep]))
            elif dep not in state:
                visit(dep, [*path, node] if dep else path)
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_no_command_imports_another():
    """Each command module stands alone; what they share lives in cli's private modules (_common.py, _help.py)."""
    def shared(module: str) -> bool:
        return module.rpartition(".")[2].startswith("_")

    crossing = [f"{name} -> {dep}" for name, deps in graph().items()
                if name.startswith("cli.") and not shared(name)
                for dep in deps if dep.startswith("cli.") and not shared(dep)]
    assert not crossing, crossing
