"""The import graph of the product packages: no import from a lower layer to a higher
one, and no cycle among modules — read from the source with `ast`, so an import
inside a function body counts like one at the top of a file.

Layers (README "Code map"): core <- schemas <- st_model <- synth, trainer <- pipeline.
"""
import ast
import os
from typing import Dict, Iterable, List, Set, Tuple

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Which product packages each package may import (besides itself).
ALLOWED: Dict[str, Set[str]] = {
    "core": set(),
    "schemas": {"core"},
    "st_model": {"core", "schemas"},
    "synth": {"core", "st_model"},
    "trainer": {"core", "schemas", "st_model"},
    "pipeline": {"core", "schemas", "st_model", "synth", "trainer"},
}
PACKAGES = tuple(ALLOWED)

Graph = Dict[str, Set[str]]


def module_files(root: str, packages: Iterable[str]) -> Dict[str, str]:
    """Dotted module name -> file, for every .py of `packages` under `root`."""
    out = {}
    for package in packages:
        for folder, dirs, files in os.walk(os.path.join(root, package)):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    parts = os.path.relpath(path, root)[:-3].split(os.sep)
                    if parts[-1] == "__init__":
                        parts = parts[:-1]
                    out[".".join(parts)] = path
    return out


def _resolve(name: str, modules: Set[str]) -> str:
    """The longest known module that `name` (a dotted module or module.attribute) is
    or lies in; '' when none."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name


def imported_modules(module: str, source: str, modules: Set[str],
                     is_package: bool = False) -> Set[str]:
    """The known modules `source` (module `module`) imports anywhere in its body
    (function-level imports included; `from p import m` names module p.m when m is
    one)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [_resolve(a.name, modules) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[:len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [_resolve(f"{base}.{a.name}", modules) for a in node.names]
        else:
            continue
        found.update(t for t in targets if t and t != module)
    return found


def import_graph(root: str, packages: Iterable[str]) -> Graph:
    """Module -> the known modules it imports, for every module of `packages`."""
    files = module_files(root, packages)
    known = set(files)
    graph = {}
    for module, path in files.items():
        with open(path, encoding="utf-8") as f:
            graph[module] = imported_modules(module, f.read(), known,
                                             path.endswith("__init__.py"))
    return graph


def package_of(module: str) -> str:
    return module.split(".")[0]


def upward_imports(graph: Graph, allowed: Dict[str, Set[str]]) -> List[Tuple[str, str]]:
    """(importer, imported) for every import of a package that `allowed` does not
    let the importer's package use."""
    return sorted((src, dst) for src, dsts in graph.items() for dst in dsts
                  if package_of(dst) != package_of(src)
                  and package_of(dst) not in allowed.get(package_of(src), set()))


def cycles(graph: Graph) -> List[List[str]]:
    """The strongly connected components of more than one module (Tarjan), each
    sorted; a module importing itself counts too."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    out: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


@pytest.fixture(scope="module")
def graph() -> Graph:
    return import_graph(REPO, PACKAGES)


def test_the_graph_covers_every_product_package(graph):
    assert {package_of(m) for m in graph} == set(PACKAGES)
    assert sum("core.errors" in imported for imported in graph.values()) > 10


def test_no_import_from_a_lower_layer_to_a_higher_one(graph):
    assert upward_imports(graph, ALLOWED) == []


def test_no_import_cycle_among_modules(graph):
    assert cycles(graph) == []


def test_the_allowed_layers_are_themselves_acyclic():
    assert cycles(ALLOWED) == []


def test_the_checker_sees_function_level_imports_and_fails_on_bad_graphs(tmp_path):
    files = {
        "low/__init__.py": "",
        "low/a.py": "def f():\n    from high import b\n    return b\n",
        "low/c.py": "import low.d\n",
        "low/d.py": "from . import c\n",
        "high/__init__.py": "",
        "high/b.py": "from low.a import f\n",
    }
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    fake = import_graph(str(tmp_path), ("low", "high"))
    assert fake["low.a"] == {"high.b"}          # found inside a function body
    assert fake["low.d"] == {"low.c"}           # relative import resolved
    assert upward_imports(fake, {"low": set(), "high": {"low"}}) == [("low.a", "high.b")]
    assert cycles(fake) == [["high.b", "low.a"], ["low.c", "low.d"]]
    assert cycles({"x": {"x"}}) == [["x"]]
