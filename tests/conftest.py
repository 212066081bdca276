"""Shared test set-up: tests/ on sys.path so that torch_models (torch only) can be imported, and
the helpers and fixtures more than one test file uses (``from conftest import ...``)."""
import ast
import functools
import importlib.util
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

import numpy_cam

sys.path.insert(0, str(pathlib.Path(__file__).parent))

ROOT = pathlib.Path(__file__).resolve().parent.parent


def load_module(path, name=None):
    """The Python file ``path`` (a script, not part of the package) run as a module named ``name``
    (default: the file's stem); it is not added to sys.modules."""
    spec = importlib.util.spec_from_file_location(name or pathlib.Path(path).stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def notebook_build():
    """notebooks/build.py, loaded once."""
    return load_module(ROOT / "notebooks" / "build.py", "notebooks_build")


def run_script(path, cwd, timeout):
    """Run ``path`` with this Python in ``cwd``; its stdout. AssertionError with the end of its stderr
    when it fails."""
    done = subprocess.run([sys.executable, str(path)], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{path.name} failed:\n{done.stderr[-3000:]}"
    return done.stdout


def cells(path):
    """(kind, source) of each cell of a percent-format script: kind "markdown" or "code"."""
    parts = re.split(r"^# %%( \[markdown\])?\n", path.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return [("markdown" if marker else "code", text.strip("\n")) for marker, text in zip(parts[1::2], parts[2::2])]


def code_after_install_cell(path):
    """The notebook's code without its install cell (its first code cell, when it is one)."""
    code = [text for kind, text in cells(path) if kind == "code"]
    return "\n\n".join(code[1:] if code and code[0].startswith(notebook_build().INSTALL_FIRST_LINE) else code)


def notebook_imports(path):
    """The top-level packages a notebook imports, its install cell (which may import more) left out.
    The notebooks' rule: {"numpy", "numpy_cam"}."""
    tree = ast.parse(code_after_install_cell(path))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    return imported | {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}


@pytest.fixture(scope="session")
def lite0_features():
    """The NumPy Lite0, x of coffee.png and chelsea.png (2, 3, 224, 224) and their features f_k (2, 1280, 7, 7)."""
    model = numpy_cam.load_model("efficientnet_lite0")
    x = np.concatenate([model.preprocess(numpy_cam.DATA / name) for name in ("coffee.png", "chelsea.png")])
    return model, x, model.features(x)
