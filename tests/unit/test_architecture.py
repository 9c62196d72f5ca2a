"""The rules of docs/architecture.md, checked against the source with `ast` (nothing is
imported): which parts may import which, the arrows that must never exist, and the sizes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "certcli"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
PROTOCOL_LIBRARIES = ("acme", "josepy")  # the engine's: no other part speaks ACME
MAX_MODULE_LINES = 400
MAX_CLASS_LINES = 200


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


def _tree(module: str) -> ast.Module:
    return ast.parse(MODULES[module].read_text(), str(MODULES[module]))


def _libraries(module: str) -> set[str]:
    """The top-level packages outside certcli that `module` imports, anywhere in it."""
    found: set[str] = set()
    for node in ast.walk(_tree(module)):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found - {"certcli"}


def _part(prefix: str) -> list[str]:
    return sorted(m for m in MODULES if m == prefix or m.startswith(prefix + "."))


def _reaches(module: str, prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in _imports(module, top_level_only=False) if m.startswith(prefixes))


@pytest.mark.parametrize("library", PROTOCOL_LIBRARIES)
def test_only_the_engine_speaks_acme(library: str) -> None:
    users = {m for m in MODULES if library in _libraries(m)}
    assert users, f"nothing imports {library}: the reader is broken"
    assert sorted(m for m in users if not m.startswith("certcli.engine")) == []


def test_the_cli_never_imports_the_protocol_library() -> None:
    offenders = {m: _libraries(m) & set(PROTOCOL_LIBRARIES) for m in _part("certcli.cli")}
    assert {m: found for m, found in offenders.items() if found} == {}


#: What cli/ may import of the parts below the flows, each with why; nothing else.
CLI_BELOW_FLOWS_ALLOWED = {
    # the per-invocation context opens the store the flows are given
    ("certcli.cli.runtime", "certcli.storage.files"),
    ("certcli.cli.runtime", "certcli.storage.protocol"),  # the type of `Runtime.store`
    # a Tab completes lineage names from the store, without a flow (or a config) loaded
    ("certcli.cli.completion", "certcli.storage.files"),
    ("certcli.cli.completion", "certcli.storage.mirror"),  # a PostgreSQL host's live/
}


def test_the_cli_reaches_below_the_flows_only_where_it_must() -> None:
    """Commands parse, call a flow and render: the engine, the challenge methods, the DNS
    providers and the store's modules are the flows' to call."""
    below = ("certcli.engine", "certcli.challenges", "certcli.providers", "certcli.storage")
    found = {(m, used) for m in _part("certcli.cli") for used in _reaches(m, below)}
    assert found == CLI_BELOW_FLOWS_ALLOWED


def test_the_store_knows_no_acme() -> None:
    """The storage layer keeps files (and, later, rows): it never reaches the CA, the flows,
    the challenge methods or the CLI."""
    above = (
        "certcli.engine",
        "certcli.flows",
        "certcli.challenges",
        "certcli.providers",
        "certcli.cli",
    )
    for module in _part("certcli.storage"):
        assert _reaches(module, above) == [], module
        assert not _libraries(module) & set(PROTOCOL_LIBRARIES), module


def test_the_engine_never_prints() -> None:
    """The engine reports through return values, exceptions and `logging`; only cli/ writes
    to the terminal."""
    for module in _part("certcli.engine"):
        calls = [
            node.lineno
            for node in ast.walk(_tree(module))
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("print", "input")
        ]
        assert calls == [], f"{module} lines {calls}"
        assert not _libraries(module) & {"rich", "typer", "click"}, module
        assert _reaches(module, ("certcli.cli", "certcli.flows")) == [], module


def test_renewal_decisions_are_pure() -> None:
    """renewal.py decides from its arguments and `now`: no clock, no randomness of its own,
    no file, no store."""
    assert not _libraries("certcli.renewal") & {"time", "random", "os", "pathlib", "secrets"}
    assert _reaches("certcli.renewal", ("certcli.storage", "certcli.engine")) == []
    for node in ast.walk(_tree("certcli.renewal")):
        if isinstance(node, ast.Attribute):
            assert node.attr not in ("now", "utcnow", "today", "time"), node.lineno
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id != "open", node.lineno


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_and_class_sizes(module: str) -> None:
    lines = MODULES[module].read_text().count("\n")
    assert lines <= MAX_MODULE_LINES, f"{module}: {lines} lines"
    for node in ast.walk(_tree(module)):
        if isinstance(node, ast.ClassDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            assert length <= MAX_CLASS_LINES, f"{module}.{node.name}: {length} lines"
