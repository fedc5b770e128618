"""The package's modules import one another without a cycle.

Read statically from the source (``ast``), so an import inside a function counts as much as
one at the top: a cycle hidden in a function body still ties the two modules together.
Importing ``a.b.c`` also runs the ``__init__`` of ``a.b``, so that counts too (except for the
importer's own packages, which are always imported before it).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import ps_pipelines

PACKAGE_DIR = Path(ps_pipelines.__file__).parent


def package_modules(package_dir: Path = PACKAGE_DIR) -> dict[str, Path]:
    modules = {}
    for path in package_dir.rglob("*.py"):
        parts = (package_dir.name, *path.relative_to(package_dir).with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imported_names(module: str, path: Path, modules: Mapping[str, Path]) -> Iterator[str]:
    """Every module ``module`` imports (``from a import b`` is ``a.b`` when that is a module)."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package[: len(package) - node.level + 1], *([base] if base else [])])
            for alias in node.names:
                yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base


def with_packages(importer: str, module: str) -> set[str]:
    """``module`` and the packages importing it runs, but for the importer's own and the root."""
    parts = module.split(".")
    packages = {".".join(parts[:i]) for i in range(2, len(parts))}
    return {module} | {p for p in packages if not importer.startswith(p + ".")}


def import_graph(modules: Mapping[str, Path]) -> dict[str, set[str]]:
    return {name: {m for imported in imported_names(name, path, modules) if imported in modules
                   for m in with_packages(name, imported) if m in modules and m != name}
            for name, path in modules.items()}


def find_cycle(graph: Mapping[str, set[str]]) -> list[str] | None:
    """One cycle as ``[a, b, ..., a]``, or None (depth-first search)."""
    on_path: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> list[str] | None:
        on_path.append(node)
        for target in sorted(graph[node]):
            if target in on_path:
                return [*on_path[on_path.index(target):], target]
            if target not in done and (cycle := visit(target)):
                return cycle
        on_path.pop()
        done.add(node)
        return None

    for start in sorted(graph):
        if start not in done and (cycle := visit(start)):
            return cycle
    return None


def test_the_finder_names_a_cycle_through_a_function_level_import(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg import b\n")
    (package / "b.py").write_text("def f():\n    from pkg.a import x\n")
    (package / "c.py").write_text("from . import a\n")
    assert find_cycle(import_graph(package_modules(package))) == ["pkg.a", "pkg.b", "pkg.a"]


def test_the_finder_counts_the_package_init_an_import_runs(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    for folder in (root, root / "sub", root / "other"):
        folder.mkdir()
        (folder / "__init__.py").write_text("")
    (root / "sub" / "__init__.py").write_text("from pkg.other import user\n")
    (root / "sub" / "tool.py").write_text("from pkg.sub import sibling\n")  # its own package: not a cycle
    (root / "sub" / "sibling.py").write_text("")
    (root / "other" / "user.py").write_text("from pkg.sub.tool import x\n")
    assert find_cycle(import_graph(package_modules(root))) == [
        "pkg.other.user", "pkg.sub", "pkg.other.user"]


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph(package_modules())
    assert len(graph) > 50 and "ps_pipelines.lib.http.client" in graph["ps_pipelines.lib.http.auth"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])
