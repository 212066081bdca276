"""The docs point only at what exists, quote the paper's numbers as it prints them, and their
low-level example runs.

Pointers are read from README.md, CONTRIBUTING.md, the other README files, the notebooks'
markdown and comments, and every docstring and comment of the package and the tests:

- a file path: one whose first part is an entry of the repository (``numpy_cam/cam.py``,
  ``tests/golden/``, ``.ci/run``) or of the package (``models/efficientnet_lite.py``), or a
  bare ``*.py`` / ``*.md`` name; it must exist (a glob such as ``tests/test_family*.py`` must
  match a file). Other names (``photo.jpg``, ``out/x_cam.png``) are examples, not pointers.
- a dotted name in backticks whose first part is the package, one of its modules or one of
  its classes (``cam.class_activation_map``, ``numpy_cam.family.METHODS``, ``Model.features``,
  ``io.export.export_checkpoint(...)``): it must import or be an attribute.
- ``file.py: Name.attr``: Name must be defined in that file and have that attribute.
- in Markdown, a call in backticks (``load_model(...)``): a function or class of the package
  or the tests (or a builtin).

Nothing may send a reader out of the repository (a ``../`` path) to notes that are not in it. Every
number printed beside GoogLeNet-GAP / -GMP must be one the paper prints (Tables 1 and 2, with
top-1 and top-5 where named). The README's low-level example (``EXAMPLE``) runs, ends with a
box in the photo's pixels and an overlay on the crop the network saw, calls only functions the
README documents, and is what the README shows.

Files of other projects that the docs name on purpose (the authors' and the peers' code) are
listed in ``EXTERNAL`` with where they live; a name not in the repository and not listed fails.
"""
import ast
import builtins
import fnmatch
import importlib
import inspect
import io
import pathlib
import re
import tokenize

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "numpy_cam"
SKIP_DIRS = {".git", ".ci-venv", "venv", ".venv", "build", "dist", "__pycache__", ".ruff_cache",
             ".pytest_cache", "numpy_cam.egg-info", ".ipynb_checkpoints"}

# Files of other repositories the docs name on purpose, not pointers into this one.
EXTERNAL = {
    "pytorch_CAM.py": "zhoubolei/CAM, the authors' PyTorch demo",
    "evaluation.py": "clovaai/wsolevaluation", "util.py": "clovaai/wsolevaluation",
    "evaluation_test.py": "clovaai/wsolevaluation",
    "models/official/efficientnet/lite/": "tensorflow/tpu, Google's EfficientNet-Lite",
    "models/official/efficientnet/lite/README.md": "tensorflow/tpu",
    "efficientnet_lite_builder.py": "tensorflow/tpu, models/official/efficientnet/lite/",
    "efficientnet_model.py": "tensorflow/tpu, models/official/efficientnet/",
    "preprocessing.py": "tensorflow/tpu, Google's preprocessing released with the Lite checkpoints",
    "block_01.py": "a script .ci/readme_python_blocks.py writes", "block_02.py": "likewise",
}
SELF = "tests/test_docs.py"             # its text is about pointers, not pointers


def _files():
    for path in sorted(ROOT.rglob("*")):
        if path.is_file() and not SKIP_DIRS.intersection(path.relative_to(ROOT).parts):
            yield path


FILES = [p.relative_to(ROOT).as_posix() for p in _files()]
BASENAMES = {pathlib.PurePosixPath(p).name for p in FILES}
TOP = {p.split("/")[0] for p in FILES} | {p.split("/")[0] + "/" for p in FILES if "/" in p}
PACKAGE_TOP = {p.split("/")[1] for p in FILES if p.startswith("numpy_cam/") and p.count("/") >= 2}


def _classes():
    """Every class defined in the package: name -> module name."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                found.setdefault(node.name, module)
    return found


CLASSES = _classes()
MODULES = {p.stem for p in PACKAGE.glob("*.py")} | {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
ROOTS = {"numpy_cam"} | (MODULES - {"__init__", "__main__"}) | set(CLASSES)


# -- where the text comes from --------------------------------------------------------------

def docs():
    """(where, text) of every Markdown file (but CHANGELOG: history names what was)."""
    return [(p, (ROOT / p).read_text(encoding="utf-8")) for p in FILES
            if p.endswith(".md") and p != "CHANGELOG.md"]


def python_texts():
    """(where, text) of the docstrings and comments of the package, the tests and the notebooks."""
    out = []
    for p in FILES:
        if p == SELF or not p.endswith(".py") or not p.startswith(("numpy_cam/", "tests/", "notebooks/",
                                                                   "benchmarks/", "weights/", ".ci/")):
            continue
        source = (ROOT / p).read_text(encoding="utf-8")
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node, clean=False)
                if doc:
                    line = node.body[0].lineno
                    out.append((f"{p}:{line}", doc))
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT:
                out.append((f"{p}:{token.start[0]}", token.string))
    return out


# -- what a pointer is ----------------------------------------------------------------------

PATH = re.compile(r"(?<![\w.:/-])((?:\.?[\w{},*-]+/)+(?:[\w{},*.-]+)?|[\w*-]+\.(?:py|md))(?![\w/])")
DOTTED = re.compile(r"``?([A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)+)(?:\([^`]*\))?``?")
FILE_NAME = re.compile(r"`((?:[\w-]+/)*[\w-]+\.py): ([A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*)`")
PLACEHOLDER = re.compile(r"<\w+>")     # tests/golden/efficientnet_lite<n>.npz
URL = re.compile(r"\w+://\S+|(?:github\.com|www\.)\S*")


def _expand(path):
    """a{1,2}b -> [a1b, a2b]."""
    match = re.search(r"\{([^{}]*)\}", path)
    if not match:
        return [path]
    return [q for alt in match.group(1).split(",") for q in _expand(path[:match.start()] + alt + path[match.end():])]


def path_pointers(text):
    text = PLACEHOLDER.sub("*", URL.sub(" ", text))
    for match in PATH.finditer(text):
        path = match.group(1).rstrip(".,;:")
        first = path.split("/")[0]
        if "/" in path and first not in TOP and first + "/" not in TOP and first not in PACKAGE_TOP:
            continue                                     # an example path: out/x_cam.png, d/x.png
        if "/" not in path and not path.endswith((".py", ".md")):
            continue
        yield path


def path_resolves(path):
    if path in EXTERNAL or pathlib.PurePosixPath(path).name in EXTERNAL and "/" not in path:
        return True
    for candidate in _expand(path.replace("NN_", "??_")):          # notebooks/NN_*.py
        bare = candidate.rstrip("/")
        if candidate.endswith("/") and "/" not in bare:
            if (ROOT / bare).is_dir() or (PACKAGE / bare).is_dir():
                continue
            return False
        if "/" not in bare:
            if any(fnmatch.fnmatch(name, bare) for name in BASENAMES):
                continue
            return False
        pattern = bare if "*" in bare else None
        options = [bare, "numpy_cam/" + bare]
        if pattern:
            if not any(fnmatch.fnmatch(f, o) or fnmatch.fnmatch(f, o + "/*") for f in FILES for o in options):
                return False
        elif not any((ROOT / o).exists() for o in options):
            return False
    return True


def dotted_pointers(text):
    for match in DOTTED.finditer(text):
        name = match.group(1)
        if name.split(".")[0] in ROOTS and not re.fullmatch(r"[\w]+\.(py|md|txt|png|npz|json|csv|cfg|toml)", name):
            yield name


def _has_attribute(obj, attr):
    """getattr, or an attribute an instance gets: a dataclass field, ``self.attr = ...`` in the class."""
    if hasattr(obj, attr):
        return True
    if inspect.isclass(obj):
        fields = getattr(obj, "__dataclass_fields__", {})
        return attr in fields or re.search(rf"self\.{attr}\s*=", inspect.getsource(obj)) is not None
    return False


def name_resolves(name):
    parts = name.split(".")
    if "__main__" in parts:                  # never import a __main__: it runs; the file must exist
        return (PACKAGE.joinpath(*[q for q in parts if q != "numpy_cam"]).with_suffix(".py")).exists()
    if parts[0] in CLASSES and parts[0] not in MODULES:
        parts = CLASSES[parts[0]].split(".") + parts
    elif parts[0] != "numpy_cam":
        parts = ["numpy_cam"] + parts
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            if not _has_attribute(obj, attr):
                return False
            obj = getattr(obj, attr, None)
        return True
    return False


def file_name_pointers(text):
    for match in FILE_NAME.finditer(text):
        yield match.group(1), match.group(2)


def file_name_resolves(path, name):
    files = [f for f in FILES if f == path or f == "numpy_cam/" + path]
    if not files:
        return False
    module = ".".join(pathlib.PurePosixPath(files[0]).with_suffix("").parts).removesuffix(".__init__")
    return name_resolves(module + "." + name)


def _defined():
    """Every top-level function and class name of the package's and the tests' modules, and Python's."""
    names = set(dir(builtins))
    for path in [*PACKAGE.rglob("*.py"), *(ROOT / "tests").glob("*.py")]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names |= {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    return names


DEFINED = _defined()
BARE_CALL = re.compile(r"`([A-Za-z_]\w*)\(")          # `load_model(...)`, in a Markdown table or text


def unresolved(texts, markdown=False):
    bad = []
    for where, text in texts:
        if markdown:
            bad += [f"{where}: name `{n}(`" for n in BARE_CALL.findall(text) if n not in DEFINED]
        bad += [f"{where}: path {p}" for p in path_pointers(text) if not path_resolves(p)]
        bad += [f"{where}: name `{n}`" for n in dotted_pointers(text) if not name_resolves(n)]
        bad += [f"{where}: {p}: {n}" for p, n in file_name_pointers(text) if not file_name_resolves(p, n)]
    return bad


# -- the checker, checked --------------------------------------------------------------------

def test_the_checker_finds_what_is_missing():
    text = ("See `numpy_cam/cam.py`, `tests/golden/`, `models/efficientnet_lite.py`, `cam.to_heatmap`, "
            "``Model.features``, `io.export.export_checkpoint(source, out)`, `tests/test_family*.py`, "
            "`tests/golden/efficientnet_lite{1,2}.npz`, `.ci/run`, `layers.loop`, `np.einsum`; "
            "examples: `photo.jpg`, `out/x_cam.png`; github.com/zhoubolei/CAM `pytorch_CAM.py`.")
    assert unresolved([("ok", text)]) == []
    wrong = ("`NOTES_NOWHERE.md`, `numpy_cam/nothing.py`, `cam.no_such_function`, `Model.no_such_method`, "
             "`models/efficientnet_lite.py: EfficientNetLite.features`, `tests/test_nothing*.py`")
    assert unresolved([("x", wrong)]) == [
        "x: path NOTES_NOWHERE.md", "x: path numpy_cam/nothing.py", "x: path tests/test_nothing*.py",
        "x: name `cam.no_such_function`", "x: name `Model.no_such_method`",
        "x: models/efficientnet_lite.py: EfficientNetLite.features"]
    assert unresolved([("md", "`load_model(name)`, `iou(a, b)`, `no_such_function(x)`, `np.load(f)`")],
                      markdown=True) == ["md: name `no_such_function(`"]
    assert unresolved([("y", "`models/efficientnet_lite.py: EfficientNetLite.iter_stages`")]) == []


def test_the_checker_reads_docstrings_and_comments():
    where = dict(python_texts())
    assert any(w.startswith("numpy_cam/cam.py:") and "Eq. 2" in t for w, t in where.items())
    assert any(w.startswith("numpy_cam/cam.py:") and t.startswith("#") for w, t in where.items())
    assert any(w.startswith("notebooks/01_cam_step_by_step.py:") for w in where)


# -- the repository --------------------------------------------------------------------------

def test_markdown_pointers_resolve():
    bad = unresolved(docs(), markdown=True)
    assert not bad, "pointers to nothing in the repository:\n" + "\n".join(bad)


def test_docstring_and_comment_pointers_resolve():
    bad = unresolved(python_texts())
    assert not bad, "pointers to nothing in the repository:\n" + "\n".join(bad)


def test_nothing_points_outside_the_repository():
    """Nothing outside the repository is part of it: no path may climb out of it (``../name``)."""
    texts = docs() + python_texts()
    bad = [where for where, text in texts if re.search(r"(?<![.\w])\.\./[A-Za-z]", text) or "PAPER" + ".md" in text]
    assert not bad, bad


# -- the paper's numbers, as it prints them --------------------------------------------------

# Zhou et al., CVPR 2016, ILSVRC validation, error in %: Table 1 (classification) and Table 2
# (localisation), top-1 / top-5.
PAPER_TABLES = {"GoogLeNet-GAP": {"classification": (35.0, 13.2), "localisation": (56.40, 43.00)},
                "GoogLeNet-GMP": {"classification": (35.6, 13.9), "localisation": (57.78, 45.26)}}


def paper_number_errors(text):
    """What ``text`` says about GoogLeNet-GAP / -GMP that Tables 1-2 do not: a number neither
    table prints for that model, a "top-1" number that is its top-5 (or the reverse), a pair
    "a / b" that is not one of its (top-1, top-5) pairs."""
    flat = " ".join(text.replace("#", " ").split())
    bad = []
    for match in re.finditer(r"GoogLeNet-(G[AM]P)", flat):
        tables = PAPER_TABLES[f"GoogLeNet-{match.group(1)}"].values()
        window = re.split(r"GoogLeNet|[.;:]\s", flat[match.end():match.end() + 120] + " ")[0]   # to the sentence's end
        for a, b in re.findall(r"(\d+\.\d+)%? / (\d+\.\d+)", window):
            if (float(a), float(b)) not in tables:
                bad.append(f"GoogLeNet-{match.group(1)} {a} / {b}")
        window = re.sub(r"(\d+\.\d+)%? / (\d+\.\d+)%?", " ", window)
        for number, rank in re.findall(r"(\d+\.\d+)%?(?:\s*(top-[15]))?", window):
            allowed = [t[rank == "top-5"] for t in tables] if rank else [n for t in tables for n in t]
            if float(number) not in allowed:
                bad.append(f"GoogLeNet-{match.group(1)} {number}" + (f" {rank}" if rank else ""))
    return bad


def test_the_number_check_catches_the_old_mistake():
    assert paper_number_errors("GoogLeNet-GAP 43.0% top-1 localisation error, GoogLeNet-GMP 44.4%, with") == [
        "GoogLeNet-GAP 43.0 top-1", "GoogLeNet-GMP 44.4"]
    assert paper_number_errors("GoogLeNet-GAP 56.40 / 43.00 vs GoogLeNet-GMP 57.78 / 45.26 top-1 / top-5") == []
    assert paper_number_errors("# GoogLeNet-GAP 35.0 / 13.2,\n# GoogLeNet-GMP 35.6 / 13.9; (Table 2) "
                               "GoogLeNet-GAP 56.40 / 45.26") == ["GoogLeNet-GAP 56.40 / 45.26"]


def test_paper_numbers_are_the_papers():
    """Every number printed beside GoogLeNet-GAP / -GMP is one of its Table 1 / 2 numbers."""
    bad = [f"{where}: {error}" for where, text in docs() + python_texts() for error in paper_number_errors(text)]
    assert not bad, "numbers the paper does not print for GoogLeNet-GAP/GMP:\n" + "\n".join(bad)


# -- the README's low-level example ----------------------------------------------------------

# The "Use it from Python" example of the README, as it must appear there: from a photo to the
# box in the photo's pixels and the overlay on the crop the network saw, documented functions only.
EXAMPLE = """\
import numpy_cam
from numpy_cam import DATA
from numpy_cam.cam import resolve_class
from numpy_cam.io.image import centre_crop_box
from numpy_cam.localize import localize

model = numpy_cam.load_model()                     # "efficientnet_lite0", or an exported .npz
photo = numpy_cam.load_image(DATA / "coffee.png")  # (400, 600, 3) uint8, upright
x = model.preprocess(photo)                        # (1, 3, 224, 224) float32: the centre crop, resized
f = model.features(x)                              # (1, 1280, 7, 7): the paper's f_k(x, y)
logits = model.classify(f)                         # (1, 1000): S_c = sum_k w_k^c F_k + b_c
c = resolve_class(model, "espresso")               # 967: a class by name (an index works too)
cam = numpy_cam.class_activation_map(f, model.fc_weight, c)   # (1, 7, 7): M_c, Eq. 2
top, left, side = centre_crop_box(*photo.shape[:2], model.preprocessing["crop_fraction"])
heat = numpy_cam.to_heatmap(cam, (side, side))[0]  # (350, 350): upsampled to the crop, min-max to [0, 1]
x0, y0, x1, y1 = localize(heat)                    # the paper's box, in the crop's pixels
box = (x0 + left, y0 + top, x1 + left, y1 + top)   # in the photo's pixels: (153, 25, 439, 290)
crop = photo[top:top + side, left:left + side]     # (350, 350, 3): the part of the photo the network saw
picture = numpy_cam.draw_box(numpy_cam.overlay(crop, heat), (x0, y0, x1, y1))   # (350, 350, 3) uint8
"""


def _code_lines(source):
    """The statements of ``source`` without their comments, one a line, blank lines dropped."""
    return [line.split("  #")[0].rstrip() for line in source.splitlines() if line.split("  #")[0].strip()]


def test_readme_low_level_example_ends_with_a_box_in_the_photo_and_an_overlay_on_the_crop():
    names = {}
    exec(compile(EXAMPLE, "README example", "exec"), names)
    numpy_cam = names["numpy_cam"]
    model, photo, box, picture = names["model"], names["photo"], names["box"], names["picture"]
    top, left, side, heat = names["top"], names["left"], names["side"], names["heat"]
    assert int(numpy_cam.top_classes(names["logits"], 1)[0, 0]) == names["c"] == 967
    assert (top, left, side) == (25, 125, 350) and box == (153, 25, 439, 290)
    assert picture.shape == (350, 350, 3) and picture.dtype == np.uint8
    result = numpy_cam.explain_image(model, photo, class_idx="espresso")      # the same, in one call
    assert result.bbox == box and result.crop == (left, top, left + side - 1, top + side - 1)
    np.testing.assert_array_equal(result.heatmap, heat)
    in_crop = numpy_cam.draw_box(result.picture[top:top + side, left:left + side], names["localize"](heat))
    np.testing.assert_array_equal(in_crop, picture)                            # the same overlay and box


def test_the_example_uses_only_documented_functions():
    """Each function the example calls is in the README (its API table or its text)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    called = set(re.findall(r"(\w+)\(", "\n".join(_code_lines(EXAMPLE)))) - {"int", "tuple"}
    missing = sorted(name for name in called if not re.search(rf"`[\w.]*\b{name}\(", readme))
    assert not missing, f"the README's API table does not document {missing}"


def test_the_readme_shows_the_example():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = "\n".join(re.findall(r"```python\n(.*?)```", readme, flags=re.S))
    shown = set(_code_lines(blocks))
    missing = [line for line in _code_lines(EXAMPLE) if line not in shown]
    assert not missing, "the README's python blocks lack these lines of tests/test_docs.py's EXAMPLE:\n" + \
        "\n".join(missing)
