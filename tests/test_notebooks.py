"""The example notebooks run top to bottom in a fresh kernel (nbclient), stay small, and are stored without outputs.

Each notebook ends with a cell of assertions, so a notebook that runs but computes the wrong thing fails too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_the_notebooks_are_there() -> None:
    assert [p.stem for p in NOTEBOOKS] == ["01-quickstart", "02-seven-day-trial", "03-campaign-rollback",
                                           "04-bpmn-interop", "05-versions"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_stored_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "clear outputs before committing"
    assert code[-1].source.lstrip().startswith(("assert", "from", "import", "#")) and "assert" in code[-1].source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_runs_top_to_bottom(path: Path, tmp_path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=240, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # CellExecutionError (with the cell and its traceback) on the first failing cell
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    streams = [o for o in outputs if o.output_type == "stream" and o.name == "stderr"]
    assert not streams, [o.text[:200] for o in streams]  # no warnings, no progress bars in a saved notebook
    size = len(nbformat.writes(nb))
    assert size < 1_500_000, f"{path.name} with outputs is {size:,} bytes"
    pictures = [o for o in outputs if o.output_type in ("display_data", "execute_result")
                and ({"image/png", "image/svg+xml"} & set(o.get("data", {})))]
    assert pictures, "each notebook shows at least one picture inline"
