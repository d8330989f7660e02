"""The package's layers (issue 22): every module under qa_bot/ is parsed (nothing is imported), the
graph of its imports of qa_bot modules is built, those inside functions included, and it must
have no cycle and no import from a lower layer into a higher one.

The layers, lowest first, are declared once, in LAYERS: a sub-package of qa_bot is the layer of
its name, a module directly in qa_bot/ the layer TOP_LEVEL gives it. A module may import from its
own layer and from the layers below.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "qa_bot"
LAYERS = ("base", "text", "collection", "search", "answer", "evaluation", "app")
TOP_LEVEL = {
    "qa_bot": "base",
    "qa_bot.settings": "base",
    "qa_bot.errors": "base",
    "qa_bot.__main__": "app",  # python -m qa_bot: the command line
}

Import = tuple[str, int]  # the imported module, the line of the import


def module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(package: Path) -> dict[str, Path]:
    return {module_name(path, package): path for path in sorted(package.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> list[Import]:
    """The package's modules that the module imports, wherever in it the import stands."""
    root = next(iter(known)).split(".")[0]
    own_package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x, from ..a import b
                base = ".".join(own_package.split(".")[: len(own_package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            found += [(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base, node.lineno)
                      for alias in node.names]
    return [(resolved(imported, known), line) for imported, line in found
            if imported == root or imported.startswith(root + ".")]


def resolved(imported: str, known: set[str]) -> str:
    """The module an import names, or the nearest enclosing one that exists."""
    while imported not in known and "." in imported:
        imported = imported.rpartition(".")[0]
    return imported


def import_graph(package: Path) -> dict[str, list[Import]]:
    found = modules(package)
    return {name: imports_of(name, path, set(found)) for name, path in found.items()}


def layer_of(name: str) -> str | None:
    if name in TOP_LEVEL:
        return TOP_LEVEL[name]
    parts = name.split(".")
    return parts[1] if len(parts) >= 2 and parts[1] in LAYERS else None


def cycles(graph: dict[str, list[Import]]) -> list[tuple[list[str], list[str]]]:
    """For each group of modules that import each other in a circle (Tarjan's strongly connected
    components): one cycle through it (the first module repeated at the end), and all its modules."""
    edges = {name: sorted({imported for imported, _ in imports if imported in graph}) for name, imports in graph.items()}
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1 or node in edges[node]:
                groups.append(group)

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return [(cycle_in(group, edges), sorted(group)) for group in groups]


def cycle_in(group: set[str], edges: dict[str, list[str]]) -> list[str]:
    """A shortest way round from the group's first module back to it, through the group."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in edges[node]:
                if nxt == start:
                    return paths[node] + [start]
                if nxt in group and nxt not in paths:
                    paths[nxt] = paths[node] + [nxt]
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"no way round {sorted(group)}")


def upward_imports(graph: dict[str, list[Import]], package: Path) -> list[str]:
    found = {}
    for name, imports in sorted(graph.items()):
        for imported, line in imports:
            low, high = layer_of(name), layer_of(imported)
            if low in LAYERS and high in LAYERS and LAYERS.index(low) < LAYERS.index(high):
                path = modules(package)[name].relative_to(package.parent)
                found[f"{path}:{line}: {name} ({low}) imports {imported} ({high})"] = None
    return list(found)


def test_every_module_is_in_a_declared_layer():
    assert [name for name in modules(PACKAGE) if layer_of(name) is None] == []


def test_no_import_cycle():
    found = cycles(import_graph(PACKAGE))
    assert not found, "import cycles:\n" + "\n".join(
        f"{' -> '.join(cycle)} (the modules that import each other in a circle: {', '.join(group)})" for cycle, group in found)


def test_no_module_imports_from_a_higher_layer():
    found = upward_imports(import_graph(PACKAGE), PACKAGE)
    assert not found, f"imports against the layers ({' < '.join(LAYERS)}):\n" + "\n".join(found)


def test_a_cycle_and_an_upward_import_are_found(tmp_path):
    """The checks themselves, on a package made for them: a cycle through an import inside a
    function and a relative import, and a text module importing from the answer layer."""
    package = tmp_path / "qa_bot"
    files = {
        "__init__.py": "",
        "settings.py": "",
        "text/__init__.py": "",
        "text/markers.py": "def marker():\n    from qa_bot.answer import cite\n",
        "answer/__init__.py": "",
        "answer/cite.py": "from .evidence import Source\n",
        "answer/evidence.py": "import qa_bot.answer.cite\nfrom qa_bot.settings import Settings\n",
    }
    for name, text in files.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text, "utf-8")
    graph = import_graph(package)
    assert cycles(graph) == [(["qa_bot.answer.cite", "qa_bot.answer.evidence", "qa_bot.answer.cite"],
                              ["qa_bot.answer.cite", "qa_bot.answer.evidence"])]
    assert upward_imports(graph, package) == [
        f"{Path('qa_bot/text/markers.py')}:2: qa_bot.text.markers (text) imports qa_bot.answer.cite (answer)"]
