"""Every ``kds`` module imports on its own, and no two modules import each other (directly or around a loop).

The first test imports each module in a process of its own that has loaded no other kds module (a
fresh interpreter forks one child per module after loading the third-party libraries once), so an
import that only works after some other kds module was loaded first fails here. The second reads
the imports of every module, those inside functions included (lazy imports can still form a loop
that only bites at run time), and ``if TYPE_CHECKING:`` blocks excluded, and fails on any cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import kds

ROOT = Path(kds.__file__).parent


def module_names() -> dict[str, Path]:
    names = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


# Runs in a fresh interpreter: third-party libraries are imported once, then every kds module is
# imported in a forked child of that interpreter, with no kds module loaded before it.
FORK_PER_MODULE = """
import importlib, os, sys, traceback
for library in sys.argv[2].split(","):
    try:
        importlib.import_module(library)
    except ImportError:
        pass
assert not [name for name in sys.modules if name == "kds" or name.startswith("kds.")]
failed = []
for name in sys.argv[1].split(","):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            importlib.import_module(name)
            code = 0
        except BaseException:
            os.write(write, traceback.format_exc()[-2000:].encode())
            code = 1
        os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        error = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    if status != 0:
        failed.append(f"{name}: {error}")
if failed:
    print("\\n".join(failed))
    sys.exit(1)
"""
THIRD_PARTY = ("sanic", "pydantic", "psycopg", "psycopg_pool", "prometheus_client", "orjson", "typer", "rich", "yaml")


def test_every_module_imports_on_its_own() -> None:
    names = sorted(module_names())
    assert "kds.server.process.app" in names and len(names) > 50
    done = subprocess.run(
        [sys.executable, "-c", FORK_PER_MODULE, ",".join(names), ",".join(THIRD_PARTY)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The kds modules ``name`` imports at run time (module level or inside functions)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if _is_type_checking(node):
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            for alias in node.names:
                target = f"{module}.{alias.name}"
                found.add(target if target in known else module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return {target for target in found if target in known and target != name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_no_import_cycles() -> None:
    names = module_names()
    known = set(names)
    graph = {name: imports_of(name, path, known) for name, path in names.items()}
    assert graph["kds.server.http.metrics"] >= {"kds.server.http.problems"}
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_lazy_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
