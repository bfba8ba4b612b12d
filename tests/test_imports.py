"""How dlexp's modules depend on each other, read from their imports (ast; an import inside a function counts):
no import cycles, the floors kept (the pure core imports no heavy library, rendering never reaches the store,
data sources know nothing of tracking), and no module reaching for another's underscore names."""

from __future__ import annotations

import ast
from pathlib import Path

import dlexp

ROOT = Path(dlexp.__file__).parent

# Cycles still there, each as the modules it passes through (starting from the first in sorted order). They
# are the training room's knots (the command driver and the job in one module, fit and the DDP entry point
# importing each other) that are cut later; any other cycle, or a new one through these modules, fails.
KNOWN_CYCLES: set[tuple[str, ...]] = set()  # none left: a new cycle fails this test
# underscore names still imported across modules, in the same room (cut with the cycles above)
KNOWN_PRIVATE: set[tuple[str, str]] = set()

FLOORS = {  # package -> top-level names that none of its modules may import
    "dlexp.diagnosis": {"torch", "lightning", "pytorch_lightning", "lightning_fabric", "mlflow", "rich",
                        "matplotlib", "sklearn"},
    "dlexp.render": {"mlflow", "torch", "lightning", "pytorch_lightning", "dlexp.tracking"},
    "dlexp.data": {"dlexp.tracking", "mlflow"},
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> tuple[set[str], list[str]]:
    """(every name imported anywhere in the module, fully qualified: `pkg.mod.name` for `from pkg.mod import
    name`; the underscore names of other dlexp modules it uses)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names, aliases, private = set(), {}, []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for a in node.names:
                names.add(a.name)
                if a.asname:
                    aliases[a.asname] = a.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x, from ..y import z
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            names.add(base)
            for a in node.names:
                full = f"{base}.{a.name}"
                names.add(full)
                if full in MODULES:
                    aliases[a.asname or a.name] = full
                elif a.name.startswith("_") and base.startswith("dlexp") and base != name:
                    private.append(full)
    for node in ast.walk(ast.parse(path.read_text())):  # module._name on a dlexp module imported under a name
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.attr.startswith("_")
                and not node.attr.startswith("__") and aliases.get(node.value.id, "").startswith("dlexp")
                and aliases[node.value.id] != name):
            private.append(f"{aliases[node.value.id]}.{node.attr}")
    return names, private


IMPORTS = {name: _imports(name, path) for name, path in MODULES.items()}


def _graph() -> dict[str, set[str]]:
    """Module -> the dlexp modules it imports (`from pkg import mod, name`: pkg, whose __init__ runs, and pkg.mod)."""
    return {name: {n for n in names if n in MODULES and n != name} for name, (names, _) in IMPORTS.items()}


def _cycles(graph: dict[str, set[str]]) -> set[tuple[str, ...]]:
    """Every elementary cycle, as its modules from the smallest in sorted order."""
    found = set()

    def walk(start: str, node: str, path: list[str]) -> None:
        for nxt in graph.get(node, ()):
            if nxt == start:
                found.add(tuple(path))
            elif nxt > start and nxt not in path:
                walk(start, nxt, path + [nxt])

    for start in sorted(graph):
        walk(start, start, [start])
    return found


def test_no_import_cycles_but_the_known_ones():
    cycles = _cycles(_graph())
    assert cycles <= KNOWN_CYCLES, f"new import cycles: {sorted(cycles - KNOWN_CYCLES)}"


def test_the_cycle_finder_finds_a_cycle_through_a_lazy_import():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == {("a", "b", "c")}
    assert "dlexp.training.ddp" in IMPORTS["dlexp.training.fit"][0]  # imported inside a function: still read


def test_each_floor_keeps_its_heavy_imports_out():
    crossing = []
    for package, banned in FLOORS.items():
        for name, (names, _) in IMPORTS.items():
            if name == package or name.startswith(package + "."):
                crossing += [f"{name} imports {imported}" for imported in sorted(names)
                             if any(imported == b or imported.startswith(b + ".") for b in banned)]
    assert not crossing, "\n".join(crossing)


def test_no_module_uses_another_modules_underscore_names():
    found = {(name, used) for name, (_, private) in IMPORTS.items() for used in private}
    assert found <= KNOWN_PRIVATE, f"underscore names used across modules: {sorted(found - KNOWN_PRIVATE)}"


def test_every_command_function_parses_calls_one_function_and_renders_in_under_45_lines():
    """`dlexp/cli.py`: each command stays thin (its work lives in the room that owns it)."""
    tree = ast.parse((ROOT / "cli.py").read_text())
    commands = {node.name: node.end_lineno - min([d.lineno for d in node.decorator_list] + [node.lineno]) + 1
                for node in tree.body if isinstance(node, ast.FunctionDef)
                and any("command" in ast.unparse(d) for d in node.decorator_list)}
    assert {"train", "diagnose", "compare", "recipe"} <= set(commands)
    assert {name: n for name, n in commands.items() if n >= 45} == {}
