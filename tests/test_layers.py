"""The engine's layers import only downward — objects ← rules ← connectors ← views ← cli —
and no module imports itself back through others, deferred imports included (imports made
only for type hints, under `if TYPE_CHECKING:`, do not run and do not count)."""
from __future__ import annotations

import ast
from pathlib import Path

PLATFORM = Path(__file__).resolve().parents[1] / "platform"
LAYERS = ("objects", "rules", "connectors", "views", "cli")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PLATFORM).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["deskbase", *parts])


def _imported(module: str, path: Path, node: ast.Import | ast.ImportFrom, modules: set[str]) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in modules}
    if node.level:
        base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        base = base[:len(base) - node.level + 1]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    found = {target} if target in modules else set()
    return found | {f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in modules}


def _type_checking_only(tree: ast.Module) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            skipped |= {id(inner) for statement in node.body for inner in ast.walk(statement)}
    return skipped


def import_graph() -> dict[str, set[str]]:
    """Module → the deskbase modules it imports when it runs (at the top or in a function)."""
    paths = {_module_name(path): path for path in PLATFORM.rglob("*.py")}
    modules = set(paths)
    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = _type_checking_only(tree)
        graph[module] = {target for node in ast.walk(tree)
                         if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in skipped
                         for target in _imported(module, path, node, modules) if target != module}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in graph[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def test_every_module_belongs_to_a_layer():
    assert {_layer(module) for module in import_graph()} - {None} == set(range(len(LAYERS)))
    assert [module for module in import_graph() if _layer(module) is None] == []


def test_layers_import_only_the_layers_below_them():
    upward = sorted(f"{module} imports {target}" for module, targets in import_graph().items()
                    for target in targets if _layer(target) > _layer(module))
    assert upward == []


def test_no_module_imports_itself_back_through_others():
    assert _cycles(import_graph()) == []


def test_the_check_sees_an_upward_import_and_a_cycle():
    graph = {"deskbase.rules.a": {"deskbase.cli.b"}, "deskbase.cli.b": {"deskbase.rules.a"}}
    assert _cycles(graph) == [["deskbase.cli.b", "deskbase.rules.a"]]
    assert _layer("deskbase.cli.b") > _layer("deskbase.rules.a")
