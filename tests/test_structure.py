"""The shape of the code: no import cycle among the project's modules (architecture rule: deferred imports count),
and every package installed."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"mmdream": "mmdream", "cluster": "mmdream_cluster"}  # folder -> import name


def project_modules() -> dict[str, tuple[Path, bool]]:
    """Every module of the project: import name -> (file, is a package's __init__)."""
    modules = {}
    for folder, name in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            package = parts[-1] == "__init__"
            modules[".".join([name, *(parts[:-1] if package else parts)])] = (path, package)
    return modules


def import_graph(modules: dict[str, tuple[Path, bool]]) -> dict[str, set[str]]:
    """Module -> the project modules it imports, from every import statement in the file (top level, in
    functions, under TYPE_CHECKING). ``from a import b`` imports the module ``a.b`` where there is one, else
    ``a``; a name of a module's attribute counts as the module."""
    graph = {}
    for name, (path, package) in modules.items():
        here = name if package else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = here.split(".")
                    base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            for target in names:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    targets.add(target)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_the_cycle_finder_sees_a_deferred_import_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_import_graph_counts_imports_inside_functions() -> None:
    graph = import_graph(project_modules())
    assert "mmdream_cluster.driver" in graph["mmdream.cli.render"]  # imported only when `render` runs
    assert "mmdream.cli.common" in graph["mmdream.cli.image"]


def test_no_import_cycles() -> None:
    found = cycles(import_graph(project_modules()))
    assert not found, "import cycles (deferred imports count): " + "; ".join(" <-> ".join(c) for c in found)


def test_pyproject_installs_every_package() -> None:
    """The explicit package list of pyproject.toml names every folder with an __init__.py (a missing one, e.g.
    mmdream.cli, would be left out of the installed wheel)."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {name: ROOT / setuptools.get("package-dir", {}).get(name, name.replace(".", "/"))
               for name in setuptools["packages"]}
    packages = {name for name, (_, package) in project_modules().items() if package}
    assert set(setuptools["packages"]) == packages
    assert all((folder / "__init__.py").is_file() for folder in folders.values())
