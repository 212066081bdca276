"""The package's table of contents stays true: every module is listed by role, in the package
docstring and in the README's package table, and nothing in the package reaches outside it."""
import pathlib
import re

import pytest

import numpy_cam

PACKAGE = pathlib.Path(numpy_cam.__file__).parent
README = PACKAGE.parent / "README.md"
MODULES = sorted(p.relative_to(PACKAGE) for p in PACKAGE.rglob("*.py") if p.name != "__init__.py")


def _package_table():
    text = README.read_text(encoding="utf-8")
    return text.split("## The package\n", 1)[1].split("\n## ", 1)[0]


@pytest.mark.skipif(not README.exists(), reason="README.md is in a repository checkout, not in an install")
@pytest.mark.parametrize("module", MODULES, ids=str)
def test_every_module_is_in_the_readme_package_table(module):
    assert re.search(rf"\b{re.escape(module.stem)}(\.py)?\b", _package_table()), module


@pytest.mark.parametrize("module", MODULES, ids=str)
def test_every_module_is_in_the_package_docstring(module):
    assert re.search(rf"\b{re.escape(module.stem)}\b", numpy_cam.__doc__), module


def test_every_subpackage_is_in_both_tables():
    for folder in sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py")):
        assert f"{folder}/" in numpy_cam.__doc__ and f"{folder}/" in _package_table(), folder


@pytest.mark.parametrize("module", MODULES + [pathlib.Path("__init__.py")], ids=str)
def test_no_module_reaches_into_the_checkout(module):
    """A wheel has no tests/, weights/ or notebooks/ beside the package: nothing may need them."""
    source = (PACKAGE / module).read_text(encoding="utf-8")
    assert not re.search(r"parent\.parent\.parent|parents\[[1-9]\]|^\s*(from|import) tests\b", source, re.M), module
    assert not re.search(r"""/\s*["'](weights|tests|notebooks)["']|["'](weights|tests|notebooks)/""", source), module
