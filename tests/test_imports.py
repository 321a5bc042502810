"""The package's import graph, function-level imports included: no circle except the model registry's
own (``gmaiqa.models`` imports every model module so each registers itself), and the precheck's
modules stay light (they never import torch at module level)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "gmaiqa"
ALLOWED = {frozenset({"gmaiqa.models", "gmaiqa.models.gmanet", "gmaiqa.models.registry"})}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circle_but_the_model_registrys_own():
    assert set(circles(import_graph())) <= ALLOWED


def test_the_circle_finder_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [frozenset("abc")]


def test_the_precheck_and_the_schemas_import_nothing_heavy_at_module_level():
    heavy = {"torch", "lightning", "wandb", "torchvision", "cv2"}
    light = [
        "config_check",
        "config_compose",
        "config_keys",
        "schemas/__init__",
        "schemas/data",
        "schemas/logger",
        "trainer_settings",
    ]
    light += [
        "ranks",
        "registry",
        "outputs",
        "methods",
        "export_target",
        "commands/scoring",
        "commands/train",
    ]
    light += [f"commands/{name}" for name in ("eval", "predict", "benchmark", "export", "autofocus")]
    for name in light:
        tree = ast.parse((PACKAGE / f"{name}.py").read_text())
        top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
        modules = {a.name.split(".")[0] for n in top if isinstance(n, ast.Import) for a in n.names}
        modules |= {n.module.split(".")[0] for n in top if isinstance(n, ast.ImportFrom) and n.module}
        assert not modules & heavy, (name, modules & heavy)
