"""The house rule on imports: layers only point down, and the runtime never imports a program.

    server -> graph -> nodes -> core (library) -> prompts

`tools/` (simulator, launcher, health check, sessions CLI) and `evals/` are programs: they may
import the runtime, the runtime never imports them. Checked on the source (the `ast` of every
module), including imports placed inside functions, so a cycle cannot hide there.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RANK = {"prompts": 0, "core": 1, "nodes": 2, "graph": 3, "server": 4}
PROGRAMS = {"tools", "evals", "scripts", "tests"}


def _modules() -> list[Path]:
    files = [ROOT / "server.py"]
    for package in ("prompts", "core", "nodes", "graph"):
        files += sorted((ROOT / package).rglob("*.py"))
    return files


def _imported_packages(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module.split(".")[0]))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
    return found


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_only_point_down(path: Path):
    layer = path.stem if path.name == "server.py" else path.relative_to(ROOT).parts[0]
    upward = [
        f"line {line}: {layer} imports {package}"
        for line, package in _imported_packages(path)
        if (package in RANK and RANK[package] > RANK[layer])
        # `python server.py` starts uvicorn through the launcher: the one program the edge may call.
        or (package in PROGRAMS and not (layer == "server" and package == "tools"))
    ]
    assert not upward, upward


def test_the_library_does_not_import_its_own_upper_modules_inside_functions():
    # Inside `core`, the transport, routing rules and usage accounting sit below the sessions,
    # and the sessions below the HTTP edge.
    inner = {"backends": 0, "routing": 0, "usage": 0, "sessions": 1, "http": 2}
    problems = []
    for path in sorted((ROOT / "core").rglob("*.py")):
        parts = path.relative_to(ROOT / "core").parts
        own = inner.get(parts[0]) if len(parts) > 1 else None
        if own is None:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("core."):
                target = node.module.split(".")[1]
                if target in inner and inner[target] > own:
                    problems.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {node.module}")
    assert not problems, problems


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_project_import_hides_inside_a_function(path: Path):
    # An import inside a function is how a cycle or an upward import gets smuggled in; the
    # runtime imports its own modules at the top (TYPE_CHECKING blocks for annotations only).
    hidden = [
        f"line {node.lineno}: {node.module}"
        for function in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
        for node in ast.walk(function)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in (*RANK, *PROGRAMS)
    ]
    assert not hidden, hidden


def test_the_check_catches_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from graph.build import graph\n    return graph\n")
    assert (2, "graph") in _imported_packages(bad)


def _runtime_sources() -> dict[Path, str]:
    return {path: path.read_text(encoding="utf-8") for path in _modules()}


def test_the_edge_reads_the_process_state_in_one_place():
    # One typed container (`core.services.Services`) holds what a process keeps; only
    # `core/http/home.py` reads it off the app, and nothing looks a service up by name.
    readers = sorted(str(path.relative_to(ROOT)) for path, text in _runtime_sources().items()
                     if "app.state" in text)
    assert readers == ["core/http/home.py"], readers
    by_name = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path, text in _runtime_sources().items()
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
        and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)
        and node.args[1].value in ("services", "settings", "stats", "usage", "budgets", "sessions", "shared",
                                   "prompt_version", "rate_limiter")
    ]
    assert not by_name, by_name


def test_a_session_is_finished_in_one_place():
    # Every way through a request only says how it went; `recorded` (and the stream it hands
    # the finish to) is the one place a session is finished, so each request leaves one record.
    callers = []
    for path, text in _runtime_sources().items():
        tree = ast.parse(text)
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr == "finish" and not node.args):
                    callers.append(f"{path.relative_to(ROOT)}:{function.name}")
    assert sorted(set(callers)) == ["core/http/chat.py:_finish_after", "core/http/chat.py:recorded"], callers
