"""The direction of dependencies (ARCHITECTURE.md): the core ``geo_cs`` <- ``api/``, ``maps/``, CLI.

The import graph is read from the source with :mod:`ast`, every ``import`` counted wherever it
stands — at the top of a module, inside a function (a "lazy" import), under ``TYPE_CHECKING`` —
so a circle cannot hide behind a function-level import. Checked:

- no circle among the first-party modules (``geo_cs``, and ``api/`` and ``maps/``, which a wheel
  installs as ``geo_cs.api`` and ``geo_cs.maps`` and every import names so);
- no core module (``geo_cs`` outside ``geo_cs.cli``, ``geo_cs.api``, ``geo_cs.maps``) imports the
  web layer, the CLI, or a web framework (FastAPI, Starlette, uvicorn);
- ``geo_cs.api`` and ``geo_cs.maps`` never import the CLI, and ``maps`` never imports ``api``;
- nothing imports a top-level ``api`` or ``maps`` (names another distribution may own).

To see the graph: ``python tests/test_architecture.py`` prints every edge and circle.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
#: the repository's folders and the dotted names they are imported (and installed) under
PACKAGES = {"geo_cs": "geo_cs", "api": "geo_cs.api", "maps": "geo_cs.maps"}
API, MAPS = PACKAGES["api"], PACKAGES["maps"]
#: The outer layer inside the geo_cs package: it parses arguments and calls the core, api and maps.
CLI = "geo_cs.cli"
WEB_FRAMEWORKS = ("fastapi", "starlette", "uvicorn")


def module_files(root: Path, packages: dict[str, str] = PACKAGES) -> dict[str, Path]:
    """Dotted module name -> source file, for every ``.py`` file of the folders ``packages``
    names under ``root``, each under the dotted name it is imported as."""
    mods: dict[str, Path] = {}
    for folder, dotted in packages.items():
        for path in sorted((root / folder).rglob("*.py")):
            parts = path.relative_to(root / folder).with_suffix("").parts
            if parts and parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join([dotted, *parts])] = path
    return mods


def imported_names(name: str, path: Path) -> set[str]:
    """Every dotted name ``path`` imports (``from a import b`` gives ``a`` and ``a.b``), relative
    imports resolved, wherever the statement stands in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            out.add(module)
            out.update(f"{module}.{alias.name}" for alias in node.names)
    return out


def import_graph(root: Path = REPO) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(first-party edges, third-party top-level packages) per module."""
    mods = module_files(root)
    edges: dict[str, set[str]] = {}
    external: dict[str, set[str]] = {}
    for name, path in mods.items():
        targets: set[str] = set()
        others: set[str] = set()
        for imported in imported_names(name, path):
            if imported.split(".")[0] != "geo_cs":
                others.add(imported.split(".")[0])
                continue
            target = imported
            while target and target not in mods:   # geo_cs.store.Store -> geo_cs.store
                target = target.rpartition(".")[0]
            if target and target != name:
                targets.add(target)
        edges[name], external[name] = targets, others
    return edges, external


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
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


def is_cli(module: str) -> bool:
    return module == CLI or module.startswith(CLI + ".")


def is_web(module: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in (API, MAPS))


def is_core(module: str) -> bool:
    return module.split(".")[0] == "geo_cs" and not is_cli(module) and not is_web(module)


def layer_violations(edges: dict[str, set[str]], external: dict[str, set[str]]) -> list[str]:
    """Every import against the direction core <- api, maps <- CLI, one line each."""
    bad: list[str] = []
    for module in sorted(edges):
        for target in sorted(edges[module]):
            if is_core(module) and (is_web(target) or is_cli(target)):
                bad.append(f"{module} -> {target} (the core must not import the web layer or the CLI)")
            elif is_web(module) and is_cli(target):
                bad.append(f"{module} -> {target} (the web layer must not import the CLI)")
            elif module.startswith(MAPS) and target.startswith(API):
                bad.append(f"{module} -> {target} (maps/ renders pages; api/ serves them)")
        if is_core(module):
            bad += [f"{module} -> {lib} (a web framework in the core)"
                    for lib in sorted(external[module] & set(WEB_FRAMEWORKS))]
        bad += [f"{module} -> {top} (a top-level name: import it as geo_cs.{top})"
                for top in sorted(external[module] & {"api", "maps"})]
    return bad


def test_no_import_circle() -> None:
    edges, _ = import_graph()
    found = circles(edges)
    detail = "\n".join(
        " , ".join(f"{m} -> {sorted(edges[m] & set(c))}" for m in c) for c in found)
    assert not found, f"import circles among first-party modules:\n{detail}"


def test_dependencies_point_at_the_core() -> None:
    edges, external = import_graph()
    assert not layer_violations(edges, external), "\n".join(layer_violations(edges, external))


def test_the_graph_sees_the_layers() -> None:
    """The reader finds the edges we know are there (so an empty answer above means something)."""
    edges, external = import_graph()
    assert {"geo_cs.store", "geo_cs.cli", "geo_cs.api.app", "geo_cs.maps.page"} <= set(edges)
    assert "geo_cs.store" in edges["geo_cs.maps.page"]
    assert "geo_cs.maps.page" in edges["geo_cs.api.deps"]
    assert "fastapi" in external["geo_cs.api.app"]
    assert any(t.startswith(MAPS) for m, ts in edges.items() if is_cli(m) for t in ts)


@pytest.fixture
def toy_tree(tmp_path: Path) -> Path:
    (tmp_path / "geo_cs" / "sub").mkdir(parents=True)
    (tmp_path / "api").mkdir()
    (tmp_path / "maps").mkdir()
    files = {
        "geo_cs/__init__.py": "",
        "geo_cs/a.py": "from geo_cs.b import thing\n",
        # the circle closes only through an import inside a function
        "geo_cs/b.py": "def thing():\n    from geo_cs import a\n    return a\n",
        "geo_cs/sub/__init__.py": "from .c import x\n",
        "geo_cs/sub/c.py": "import fastapi\nfrom ..a import thing\nfrom geo_cs.maps.page import render\nx = 1\n",
        "api/__init__.py": "",
        "maps/__init__.py": "",
        "maps/page.py": "from geo_cs.sub import x\nimport geo_cs.api\nimport api\n\ndef render(): ...\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).write_text(text)
    return tmp_path


def test_checker_catches_lazy_circles_and_upward_imports(toy_tree: Path) -> None:
    edges, external = import_graph(toy_tree)
    assert edges["geo_cs.sub"] == {"geo_cs.sub.c"}
    assert edges["geo_cs.sub.c"] == {"geo_cs.a", "geo_cs.maps.page"}
    assert circles(edges) == [["geo_cs.a", "geo_cs.b"],
                              ["geo_cs.maps.page", "geo_cs.sub", "geo_cs.sub.c"]]
    assert layer_violations(edges, external) == [
        "geo_cs.maps.page -> geo_cs.api (maps/ renders pages; api/ serves them)",
        "geo_cs.maps.page -> api (a top-level name: import it as geo_cs.api)",
        "geo_cs.sub.c -> geo_cs.maps.page (the core must not import the web layer or the CLI)",
        "geo_cs.sub.c -> fastapi (a web framework in the core)",
    ]


if __name__ == "__main__":
    graph, libs = import_graph(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO)
    for mod in sorted(graph):
        print(mod, "->", ", ".join(sorted(graph[mod])) or "-")
    for circle in circles(graph):
        print("CIRCLE:", " ".join(circle))
    for line in layer_violations(graph, libs):
        print("AGAINST THE LAYERS:", line)
