"""The notebooks (notebooks/NN_*.py, jupytext's percent format) run from top to bottom.

Each runs once in the default run, as the plain Python script it also is (core dependencies
only). The slow tests (``pytest -m slow``; CI runs them) run each again as a notebook, cell by
cell, in a Jupyter kernel, which needs the test extras (jupytext, nbclient, ipykernel).
Either way a failing cell fails the test, and every notebook asserts the numbers it shows
(the CAM identity, Eq. 2 term by term, the stored GAP/GMP counts, Grad-CAM).
"""
import ast
import importlib.util
import pathlib
import subprocess
import sys

import pytest

NOTEBOOKS = sorted((pathlib.Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.py"))
JUPYTER = all(importlib.util.find_spec(name) for name in ("jupytext", "nbclient", "ipykernel"))
TIMEOUT = 600                                      # seconds per cell / per script


def run_notebook(path, cwd, jupyter):
    """Run one notebook in ``cwd``; AssertionError with the failing cell's error if it fails.

    Returns the executed notebook (nbformat) under Jupyter, None when run as a script.
    """
    if not jupyter:
        done = subprocess.run([sys.executable, str(path)], cwd=cwd, capture_output=True, text=True,
                              timeout=TIMEOUT)
        assert done.returncode == 0, f"{path.name} failed:\n{done.stderr[-3000:]}"
        return None
    import jupytext
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = jupytext.read(path)
    client = NotebookClient(notebook, timeout=TIMEOUT, kernel_name="python3",
                            resources={"metadata": {"path": str(cwd)}})
    try:
        client.execute()
    except CellExecutionError as err:
        raise AssertionError(f"{path.name} failed:\n{str(err)[-3000:]}") from None
    return notebook


def test_the_three_notebooks_are_there():
    assert [p.name for p in NOTEBOOKS] == ["01_cam_step_by_step.py", "02_gap_vs_gmp.py", "03_conventions.py"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_imports_only_numpy_and_the_package(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported == {"numpy", "numpy_cam"}
    assert not [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Lambda))]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_as_a_script_and_writes_nothing(path, tmp_path):
    assert run_notebook(path, tmp_path, jupyter=False) is None
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.skipif(not JUPYTER, reason="needs jupytext, nbclient and ipykernel (the test extras)")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_a_kernel_and_shows_its_figures(path, tmp_path):
    notebook = run_notebook(path, tmp_path, jupyter=True)
    assert list(tmp_path.iterdir()) == []
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    assert sum("image/png" in out.get("data", {}) for out in outputs) >= 2


@pytest.mark.parametrize("jupyter", [False, pytest.param(True, marks=[pytest.mark.slow, pytest.mark.skipif(
    not JUPYTER, reason="needs jupytext, nbclient and ipykernel (the test extras)")])])
def test_a_failing_cell_fails_the_run(tmp_path, jupyter):
    broken = tmp_path / "99_broken.py"
    broken.write_text("# %%\nimport numpy_cam\n\n# %%\nassert numpy_cam.DATA.name == 'elsewhere'\n")
    with pytest.raises(AssertionError, match="99_broken.py failed"):
        run_notebook(broken, tmp_path, jupyter)
