"""The package's imports follow the data flow: no cycles, and no module imports one above it.

Layers, lowest first (a module may import its own layer and those below):

0. ``kernels``: pure functions on arrays.
1. foundation: errors, config, logging, naming of files (sidecars), image formats and
   masks (imageio), safe file opening (safefs), shared vocabulary and small helpers.
2. the wings: detection (``detection``, detectors in ``engines``), inpainting (engines,
   ``regions``), and the pipeline's result types (``results``).
3. the in-memory pipeline.
4. the file stage (``files``): photos on disk in, outputs and reports out.
5. drivers: the CLI, the daemon, the cluster worker, the review page, the benchmark, the
   demo, the doctor, ``skinretouch compile``.

Imports under ``if TYPE_CHECKING:`` are annotations, not dependencies, and are ignored.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import skinretouch

PACKAGE_ROOT = Path(skinretouch.__file__).parent

# First matching prefix wins (most specific first).
LAYERS: tuple[tuple[str, int], ...] = (
    ("skinretouch.kernels", 0),
    ("skinretouch.errors", 1),
    ("skinretouch.config", 1),
    ("skinretouch.logs", 1),
    ("skinretouch.native_logs", 1),
    ("skinretouch.timing", 1),
    ("skinretouch.scale", 1),
    ("skinretouch.atomic", 1),
    ("skinretouch.sidecars", 1),
    ("skinretouch.routes", 1),
    ("skinretouch.imageio", 1),
    ("skinretouch.safefs", 1),
    ("skinretouch.detection", 2),
    ("skinretouch.results", 2),
    ("skinretouch.regions", 2),
    ("skinretouch.engines", 2),
    ("skinretouch.pipeline", 3),
    ("skinretouch.files", 4),
    ("skinretouch.cli", 5),
    ("skinretouch.cli_process", 5),
    ("skinretouch.daemon", 5),
    ("skinretouch.benchmark", 5),
    ("skinretouch.demo", 5),
    ("skinretouch.doctor", 5),
    ("skinretouch.precompile", 5),
    ("skinretouch.cluster", 5),
    ("skinretouch.review", 5),
    ("skinretouch.__main__", 5),
    ("skinretouch", 1),  # the package itself (__version__)
)
LAYER_NAMES = ("kernels", "foundation", "wings", "pipeline", "file stage", "drivers")


def layer_of(module: str) -> int:
    for prefix, layer in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            return layer
    raise AssertionError(f"{module} has no layer: add it to LAYERS")


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST):
    """Import nodes outside ``if TYPE_CHECKING:`` blocks (function-level ones included)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def imports_of(module: str) -> set[str]:
    """The project modules ``module`` imports at run time."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    targets: set[str] = set()
    for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # ``from pkg import name`` names a submodule when one exists, else pkg itself.
            names = [f"{source}.{a.name}" if f"{source}.{a.name}" in MODULES else source for a in node.names]
        for name in names:
            while name and name not in MODULES:  # ``import a.b.c`` of an attribute path
                name = name.rpartition(".")[0]
            if name.startswith("skinretouch") and name != module:
                targets.add(name)
    return targets


GRAPH = {module: imports_of(module) for module in MODULES}


def test_every_module_has_a_layer():
    for module in MODULES:
        layer_of(module)


def test_no_module_imports_one_above_it_in_the_data_flow():
    upward = [
        f"{module} ({LAYER_NAMES[layer_of(module)]}) imports {target} ({LAYER_NAMES[layer_of(target)]})"
        for module, targets in sorted(GRAPH.items())
        for target in sorted(targets)
        if layer_of(target) > layer_of(module)
    ]
    assert upward == []


def test_no_import_cycle():
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(GRAPH[module]):
            if state.get(target) == 1:
                cycles.append(" -> ".join(path[path.index(target) :] + [target]))
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)
    assert cycles == []


@pytest.mark.parametrize(
    ("module", "imports", "expected"),
    [
        ("skinretouch.kernels.removal", {"skinretouch.pipeline"}, "upward"),
        ("skinretouch.pipeline", {"skinretouch.files.stage"}, "upward"),
        ("skinretouch.files.stage", {"skinretouch.pipeline"}, "fine"),
    ],
)
def test_the_layer_rule_catches_what_it_should(module, imports, expected):
    upward = any(layer_of(target) > layer_of(module) for target in imports)
    assert ("upward" if upward else "fine") == expected


def test_the_walker_sees_relative_lazy_and_type_checking_imports():
    """The graph is read right: the file stage's lazy overlay import counts, the report's
    TYPE_CHECKING import of the results does not, and the pipeline imports no file stage."""
    assert "skinretouch.engines.overlay" in GRAPH["skinretouch.files.stage"]
    assert "skinretouch.pipeline" in GRAPH["skinretouch.files.stage"]
    assert "skinretouch.results" not in GRAPH["skinretouch.files.report"]
    assert not any(target.startswith("skinretouch.files") for target in GRAPH["skinretouch.pipeline"])


def test_no_module_imports_private_names_of_another():
    """Shared helpers live in visibly private modules (``kernels._jit``, ``kernels._checks``)
    under public names; no module reaches into another's ``_private`` functions."""
    private = []
    for module, path in MODULES.items():
        if not module.startswith("skinretouch."):
            continue
        for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                private += [f"{module}: {alias.name}" for alias in node.names if alias.name.startswith("_") and not alias.name.endswith("__")]
    assert private == []
