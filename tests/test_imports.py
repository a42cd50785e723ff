"""The CLI starts fast: importing it loads no data library (Polars, PyArrow, DuckDB, drivers)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from etl4all.cli import cli

HEAVY = ("polars", "pyarrow", "numpy", "duckdb", "aiohttp", "pymysql", "pika", "redis", "rich")
DATA_LIBRARIES = ("polars", "pyarrow", "numpy", "duckdb", "aiohttp")


def test_importing_the_cli_loads_no_heavy_library() -> None:
    code = "import sys, etl4all.cli; print(' '.join(sorted(sys.modules)))"
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    assert sorted(loaded.intersection(HEAVY)) == []


def test_a_run_with_nothing_new_loads_no_data_library(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 18: a rerun finds out from the listing and the done marks alone that every file
    is done; it imports no Polars, NumPy, PyArrow, DuckDB or aiohttp and pays for nothing."""
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    runner.invoke(cli, ["sample", "in", "--files", "2", "--points", "20"], catch_exceptions=False)
    runner.invoke(cli, ["run", "in", "-q"], catch_exceptions=False)
    code = (
        "import sys\n"
        "from etl4all.cli import cli\n"
        "try:\n"
        "    cli(['run', 'in'])\n"
        "except SystemExit as stop:\n"
        "    print('exit', stop.code)\n"
        "print('loaded', ' '.join(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(done.stdout.split("loaded ")[1].split())
    assert "exit 0" in done.stdout
    assert "0 processed, 2 skipped (already done)" in done.stdout
    assert "nothing new" in done.stdout
    assert sorted(loaded.intersection(DATA_LIBRARIES)) == []

    runner.invoke(cli, ["sample", "in", "--files", "3", "--points", "20"], catch_exceptions=False)
    new = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "exit 0" in new.stdout and "nothing new" not in new.stdout
    worked = set(new.stdout.split("loaded ")[1].split())
    assert "polars" in worked and "duckdb" in worked
    # DuckDB reads and returns frames through the Arrow C stream: no PyArrow, no NumPy
    assert sorted(worked.intersection({"pyarrow", "numpy"})) == []


def test_no_module_of_the_package_imports_one_that_imports_it_back() -> None:
    """Issue 16, finding 6: batching.py and extract.py imported each other. Every import of
    the package, at module level or under TYPE_CHECKING, is an edge; no edge is in a cycle."""
    root = Path(__file__).resolve().parents[1]
    modules = {
        ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__"): path
        for path in (root / "etl4all").rglob("*.py")
    }
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                named = [f"{node.module}.{alias.name}" for alias in node.names]
                targets = [t for t in named if t in modules] or [node.module]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            edges[name] |= {t for t in targets if t in modules and t != name}
    cycles = [
        (name, other)
        for name, targets in edges.items()
        for other in targets
        if name in _reachable(other, edges)
    ]
    assert cycles == []


def _reachable(start: str, edges: dict[str, set[str]]) -> set[str]:
    """The modules ``start`` imports, directly or not."""
    seen, todo = set(), [start]
    while todo:
        for target in edges[todo.pop()] - seen:
            seen.add(target)
            todo.append(target)
    return seen
