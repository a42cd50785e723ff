"""Every notebook in notebooks/ runs headless against an embedded run and draws its plots."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner
from nbclient import NotebookClient

from etl4all.cli import cli

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PLOTS = ("_figure(", "display(fig)")
"""Source text of a cell that must show a plot."""


@pytest.fixture(scope="module")
def warehouse_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A DuckDB warehouse filled by ``etl4all run`` on generated sample files."""
    tmp = tmp_path_factory.mktemp("embedded")
    runner = CliRunner()
    sample = runner.invoke(cli, ["sample", str(tmp / "in"), "--files", "2", "--points", "500"])
    assert sample.exit_code == 0, sample.output
    url = f"duckdb:///{tmp}/w.duckdb"
    run = runner.invoke(
        cli, ["run", str(tmp / "in"), "--warehouse", url, "--state", f"sqlite:///{tmp}/s.db", "-q"]
    )
    assert run.exit_code == 0, run.output
    return url


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_the_notebook_runs_and_plots(
    path: Path, warehouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    notebook = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code"), (
        f"{path.name}: commit notebooks with their outputs cleared"
    )
    monkeypatch.setenv("ETL4ALL_WAREHOUSE_URL", warehouse_url)
    client = NotebookClient(
        notebook, timeout=60, kernel_name="python3", resources={"metadata": {"path": NOTEBOOKS}}
    )
    client.execute()

    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.execution_count for cell in code)
    for cell in code:
        assert not [o for o in cell.outputs if o.output_type == "error"], cell.source
        if any(marker in cell.source for marker in PLOTS):
            images = [o for o in cell.outputs if "image/png" in o.get("data", {})]
            assert images, f"no plot from:\n{cell.source}"
