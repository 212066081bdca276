"""The exercise notebooks (notebooks/exercises/E*.py) and their solutions (notebooks/solutions/).

The student's copies are generated from the instructor's (``make_exercises.py``) and must be up
to date; each instructor's notebook runs from top to bottom with every checker passing; each
student's notebook, as handed out, runs from top to bottom too, every checker reporting "not
implemented yet"; the student's copies hold no solution.
"""
import ast

import pytest
from conftest import ROOT, load_module, notebook_imports, run_script

SOLUTIONS = sorted((ROOT / "notebooks" / "solutions").glob("E[0-9]_*.py"))
TIMEOUT = 600


def make_exercises():
    return load_module(ROOT / "notebooks" / "solutions" / "make_exercises.py")


def run(path, cwd):
    return run_script(path, cwd, TIMEOUT)


def report_calls(path, top_level=False):
    """How many ``testing.report(...)`` calls the notebook has (``top_level``: outside any ``if``,
    the checker cells that run whether or not the student's functions are written)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = [n.value for n in tree.body if isinstance(n, (ast.Expr, ast.Assign))] if top_level else ast.walk(tree)
    return sum(isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "report" for node in nodes)


def test_the_five_exercises_are_there_and_up_to_date():
    assert [p.name for p in SOLUTIONS] == ["E1_conv2d.py", "E2_gap_fc.py", "E3_cam.py", "E4_upsample.py",
                                           "E5_box_iou.py"]
    for path, text in make_exercises().exercises().items():
        assert path.read_text(encoding="utf-8") == text, f"{path.name} is stale: run solutions/make_exercises.py"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_the_solution_runs_and_passes_every_checker(path, tmp_path):
    out = run(path, tmp_path)
    assert out.count(" passed, all ") == report_calls(path) > 0, out
    assert "not implemented" not in out and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_the_exercise_as_handed_out_runs_and_says_not_implemented(path, tmp_path):
    exercise = ROOT / "notebooks" / "exercises" / path.name
    out = run(exercise, tmp_path)
    assert out.count("not implemented yet") == report_calls(exercise, top_level=True) > 0, out
    assert " passed, all " not in out and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_the_exercise_holds_no_solution(path):
    exercise = ROOT / "notebooks" / "exercises" / path.name
    text = exercise.read_text(encoding="utf-8")
    assert "SOLUTION" not in text and "*Answer.*" not in text
    tree = ast.parse(text)
    functions = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)]
    assert functions
    for function in functions:                    # docstring, then only the placeholder
        body = function.body[1:] if isinstance(function.body[0], ast.Expr) else function.body
        assert len(body) == 1 and isinstance(body[0], ast.Raise), function.name
        assert body[0].exc.func.id == "NotImplementedError", function.name
    assert notebook_imports(exercise) == {"numpy", "numpy_cam"}    # besides the install cell, if there is one


def test_strip_replaces_code_and_answers_and_refuses_unbalanced_markers():
    strip = make_exercises().strip
    text = ("def f(x):\n    '''doc'''\n    # BEGIN SOLUTION\n    return x\n    # END SOLUTION\n"
            "# Q1\n#\n# <!-- BEGIN SOLUTION -->\n# *Answer.* 42\n# <!-- END SOLUTION -->\n")
    assert strip(text) == ("def f(x):\n    '''doc'''\n    raise NotImplementedError(\"your code here\")\n"
                           "# Q1\n#\n# *Your answer:*\n")
    with pytest.raises(ValueError, match="not closed"):
        strip("# BEGIN SOLUTION\nx = 1\n")
    with pytest.raises(ValueError, match="opens inside another"):
        strip("# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION\n")


def test_check_mode_reports_a_stale_exercise(tmp_path, monkeypatch, capsys):
    module = make_exercises()
    (tmp_path / "E9_x.py").write_text("x = 1\n# BEGIN SOLUTION\ny = 2\n# END SOLUTION\n"
                                      "# [Colab](https://x/blob/main/notebooks/solutions/E9_x.ipynb)\n")
    monkeypatch.setattr(module, "HERE", tmp_path)
    monkeypatch.setattr(module, "EXERCISES", tmp_path / "out")
    (tmp_path / "out").mkdir()
    assert module.main(["--check"]) == 1
    assert module.main([]) == 0 and (tmp_path / "out" / "E9_x.py").read_text() == (
        'x = 1\nraise NotImplementedError("your code here")\n'
        '# [Colab](https://x/blob/main/notebooks/exercises/E9_x.ipynb)\n')
    assert module.main(["--check"]) == 0
