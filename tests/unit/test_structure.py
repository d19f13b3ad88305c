"""The shape docs/design.md promises: no import cycles (imports inside functions count), no
module over 400 lines, the dependency direction, and one root for pvlog's exceptions."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

from drivers.errors import PvlogError

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("daemon", "drivers", "simulators")
MAX_LINES = 400


def modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """Every project module ``path`` imports, anywhere in it (functions and
    ``TYPE_CHECKING`` blocks too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                found.add(sub if sub in known else node.module)
    return {m for m in found if m in known and known[m].name != "__init__.py"}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(path, known) for name, path in known.items()}


def test_no_import_cycles() -> None:
    g = graph()
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []
    cycles: list[list[str]] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for n in sorted(g[m]):
            if state.get(n) == 1:
                cycles.append([*path[path.index(n) :], n])
            elif n not in state:
                visit(n)
        path.pop()
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_the_graph_sees_function_level_imports() -> None:
    """The cycle test would be blind without them: ``pvlog``'s verbs import lazily."""
    assert "daemon.service.daemon" in graph()["daemon.tools.running"]


def test_dependency_direction() -> None:
    for m, deps in graph().items():
        if m.startswith("drivers"):
            assert not [d for d in deps if not d.startswith("drivers")], m
        if m.startswith("simulators"):
            assert not [d for d in deps if d.startswith("daemon")], m


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_module_over_400_lines(name: str) -> None:
    lines = len(modules()[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name}: {lines} lines"


def test_every_exception_pvlog_defines_has_one_root() -> None:
    roots = []
    for name in modules():
        module = importlib.import_module(name)
        for cls_name, cls in inspect.getmembers(module, inspect.isclass):
            ours = cls.__module__ == name and issubclass(cls, BaseException)
            if ours and not issubclass(cls, PvlogError):
                roots.append(f"{name}.{cls_name}")
    assert not roots, roots


def test_pvlog_refuses_to_run_beside_another_package_of_its_names(tmp_path: Path) -> None:
    """python-daemon installs a package ``daemon`` too: pvlog says so, in one line."""
    import subprocess
    import sys

    shadow = tmp_path / "daemon"
    shadow.mkdir()
    (shadow / "__init__.py").write_text('"""python-daemon, say."""\n')
    run = [sys.executable, "-c", "import sys, pvlog; sys.exit(pvlog.main())", "--version"]
    repo = Path(__file__).resolve().parents[2]
    res = subprocess.run(run, capture_output=True, text=True, check=False, cwd=tmp_path,
                         env={"PYTHONPATH": f"{tmp_path}:{repo}"})  # fmt: skip
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.startswith("pvlog: the package 'daemon' here is not pvlog's (")
    ok = subprocess.run(run, capture_output=True, text=True, check=False, cwd=repo)
    assert ok.returncode == 0 and ok.stdout.startswith("pvlog 0.1.0+"), ok.stderr
