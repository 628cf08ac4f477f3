"""dpgkit's modules import one another only downward: the import graph, with the imports at the
top of a module and those inside functions alike, has no circle. And no module but
dpgkit/torchops.py touches a private torch operator.

Run it alone, or print the layers of the graph (each module above everything it imports):

    .venv/bin/python -m pytest -q tests/test_imports.py
    .venv/bin/python tests/test_imports.py
"""

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "dpgkit"


def module_names() -> list[str]:
    return sorted(path.stem for path in PACKAGE.glob("*.py"))


def imported_modules(module: str) -> set[str]:
    """The dpgkit modules ``module`` imports anywhere in its source (``import dpgkit`` and
    ``from dpgkit import x``, x not a module, count as importing ``__init__``)."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            names = [f"{node.module}.{alias.name}" if node.module == "dpgkit" else node.module
                     for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] != "dpgkit":
                continue
            target = parts[1] if len(parts) > 1 else "__init__"
            found.add(target if (PACKAGE / f"{target}.py").is_file() else "__init__")
    found.discard(module)
    return found


def import_graph() -> dict[str, set[str]]:
    return {module: imported_modules(module) for module in module_names()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A circle of imports, as the list of modules around it, or None."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module], path[len(path):] = "open", [module]
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[module] = "done"
        path.pop()
        return None

    for module in graph:
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def layers(graph: dict[str, set[str]]) -> list[list[str]]:
    """The modules by layer: layer 0 imports no dpgkit module, layer k only modules below k."""
    level: dict[str, int] = {}
    while len(level) < len(graph):
        for module, targets in graph.items():
            if module not in level and all(t in level for t in targets):
                level[module] = 1 + max((level[t] for t in targets), default=-1)
    return [sorted(m for m in graph if level[m] == k) for k in range(max(level.values()) + 1)]


def test_there_is_no_import_circle():
    graph = import_graph()
    assert {"loop", "train", "agent", "equations"} <= graph.keys()  # it did read the package
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_the_cycle_check_finds_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_core_imports_nothing_above_it():
    """The equations, networks, replay and agent know nothing of environments, loops or files."""
    graph = import_graph()
    core = {"equations", "networks", "batch", "replay", "prioritized", "agent", "td3",
            "autograd_steps", "fastpath", "flatlayout", "torchops", "config", "fields", "errors",
            "obs_norm"}
    for module in core:
        assert graph[module] <= core, f"{module} imports {sorted(graph[module] - core)}"


def private_torch_uses(module: str) -> list[str]:
    """``torch._x``, ``torch.ops`` and optimiser step-hook internals used in ``module``."""
    uses = []
    for node in ast.walk(ast.parse((PACKAGE / f"{module}.py").read_text())):
        if not isinstance(node, ast.Attribute):
            continue
        chain, inner = [node.attr], node.value
        while isinstance(inner, ast.Attribute):
            chain.append(inner.attr)
            inner = inner.value
        root = inner.id if isinstance(inner, ast.Name) else ""
        private = node.attr.startswith("_") and not node.attr.startswith("__")
        if (root == "torch" and (private or node.attr == "ops")) or "_optimizer_step" in node.attr:
            uses.append(".".join([root, *reversed(chain)]))
    return uses


def test_private_torch_operators_are_called_only_in_torchops():
    assert private_torch_uses("torchops"), "the check must see torchops' own uses"
    for module in module_names():
        if module != "torchops":
            assert private_torch_uses(module) == [], module


if __name__ == "__main__":
    graph = import_graph()
    cycle = find_cycle(graph)
    if cycle:
        sys.exit("import circle: " + " -> ".join(cycle))
    for k, modules in enumerate(layers(graph)):
        print(f"layer {k}: {', '.join(modules)}")
    print(f"{len(graph)} modules, {sum(map(len, graph.values()))} imports, no circle")
