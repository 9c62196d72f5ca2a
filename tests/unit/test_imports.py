"""The import structure of certcli, read from the source with `ast` (nothing is imported)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "certcli"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported(node: ast.Import | ast.ImportFrom, module: str) -> set[str]:
    """The certcli modules an import statement names (`from pkg import mod` names pkg.mod)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in MODULES}
    base = node.module or ""
    if node.level:  # relative: from the package of `module`
        package = module.split(".")
        if MODULES[module].name != "__init__.py":
            package = package[:-1]
        package = package[: len(package) - node.level + 1]
        base = ".".join([*package, *([node.module] if node.module else [])])
    found = {f"{base}.{alias.name}" for alias in node.names} & MODULES.keys()
    if base in MODULES and len(found) < len(node.names):
        found.add(base)
    return found


def _imports(module: str, *, top_level_only: bool) -> set[str]:
    tree = ast.parse(MODULES[module].read_text(), str(MODULES[module]))
    found: set[str] = set()
    if top_level_only:
        todo: list[ast.stmt] = list(tree.body)
        while todo:
            node = todo.pop()
            if isinstance(node, ast.If) and not _is_type_checking(node):
                todo.extend(node.body + node.orelse)
            elif isinstance(node, ast.Try):
                todo.extend(node.body + node.orelse + node.finalbody)
                todo.extend(s for h in node.handlers for s in h.body)
            elif isinstance(node, ast.Import | ast.ImportFrom):
                found |= _imported(node, module)
    else:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                found |= _imported(node, module)
    return found - {module}


def test_no_cli_command_imports_another() -> None:
    """A cmd_* module parses, calls a flow and renders; what two commands share lives in a
    cli module that is not a command. Imports inside functions count too."""
    commands = {m for m in MODULES if m.startswith("certcli.cli.cmd_")}
    assert commands
    offenders = {m: sorted(_imports(m, top_level_only=False) & commands) for m in sorted(commands)}
    assert {m: found for m, found in offenders.items() if found} == {}


def test_no_import_cycle_among_certcli_modules() -> None:
    """No cycle among certcli's modules. Only module-level imports count (those under `if
    TYPE_CHECKING:` never run); an import inside a function runs after both modules are
    loaded and is how a heavy or optional dependency stays lazy, so it is no edge here."""
    graph = {m: _imports(m, top_level_only=True) for m in MODULES}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert cycles == []


def test_the_import_reader_sees_the_edges() -> None:
    """The reader itself: a known module-level edge, and a function-level one."""
    assert "certcli.cli.runtime" in _imports("certcli.cli.cmd_status", top_level_only=True)
    assert "certcli.cli.app" in _imports("certcli.cli.argv", top_level_only=False)
    assert "certcli.cli.app" not in _imports("certcli.cli.argv", top_level_only=True)
