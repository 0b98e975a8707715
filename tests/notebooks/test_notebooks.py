"""The notebooks run top to bottom against the lab, are committed without outputs, and never leak a lab.

A notebook that keeps a lab across cells must stop it even when a cell in the
middle fails and the run ends there: the kernel then exits without reaching the
last cell, so the lab's clean-up has to be tied to the kernel's exit.
"""

from __future__ import annotations

from pathlib import Path

import nbclient
import nbformat
import pytest
from nbclient.exceptions import CellExecutionError

from novadiag.lab import control

pytestmark = pytest.mark.lab

NOTEBOOK_DIR = Path(__file__).parents[2] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))


def _client(notebook: nbformat.NotebookNode, cwd: Path) -> nbclient.NotebookClient:
    return nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                   resources={"metadata": {"path": str(cwd)}})


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path: Path, tmp_path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    _client(notebook, tmp_path).execute()
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors


def test_a_failing_middle_cell_leaves_no_lab_process_or_state_dir(tmp_path: Path) -> None:
    notebook = nbformat.read(NOTEBOOK_DIR / "02-plan-consolidation.ipynb", as_version=4)
    middle = len(notebook.cells) // 2
    assert "lab.kubeconfig" in "".join(c.source for c in notebook.cells[:middle]), "the lab starts before it"
    failing = nbformat.v4.new_code_cell("print(lab.pid, lab.state_dir)\nraise RuntimeError('a middle cell fails')")
    notebook.cells.insert(middle, failing)

    with pytest.raises(CellExecutionError, match="a middle cell fails"):
        _client(notebook, tmp_path).execute()

    pid, state_dir = failing.outputs[0]["text"].split()
    assert control.group_members(int(pid)) == [], "the lab's daemon or pods outlived the kernel"
    assert not Path(state_dir).exists(), "the lab's state dir outlived the kernel"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{path.name}: strip outputs before committing"
