"""Execute every notebook's jupytext source into the .ipynb committed beside it.

    python notebooks/build.py              # every notebook under notebooks/, in a fresh kernel each
    python notebooks/build.py notebooks/02_gap_vs_gmp.py     # only these
    python notebooks/build.py --check      # no kernel: exit 1 if an .ipynb is missing or stale by source
    python notebooks/build.py --headers    # give each source its Colab link and install cell (or update them)

The sources are the jupytext percent-format ``.py`` files (every ``.py`` under notebooks/ with a
``# %%`` cell marker, subfolders included); the ``.ipynb`` beside each is what GitHub, Colab and a
JupyterLab without jupytext open. Needs the notebooks extra (``pip install -e ".[notebooks]"``).

Each notebook runs top to bottom in a fresh kernel of this Python, in an empty temporary folder,
with ``OPENBLAS_NUM_THREADS=1`` (so the stored numbers do not depend on the machine's core count).
What changes from run to run is not stored: no execution timestamps, no kernel version
(``language_info`` is reduced to the language's name), cell ids derived from the cell's source,
object addresses (``at 0x7f...``) removed from text outputs, consecutive prints in one stream
output, and figures as PNG only (IPython adds a lossy JPEG copy of a PIL image). A rerun of
unchanged code writes the same bytes, and an .ipynb whose bytes did not change is not touched.

The Colab links and the install cell's default source are made from setup.cfg's ``url``.
"""
import argparse
import configparser
import hashlib
import os
import pathlib
import re
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
TIMEOUT = 600                                          # seconds per cell
KERNEL_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+>")

# The first code cell of every notebook. The notebooks otherwise import only numpy and numpy_cam
# (tests/test_notebooks.py); this cell is the exception, because Colab and a fresh environment have
# no numpy-cam. `{extras}` is "" or e.g. "[lite1]", the extras the notebook needs.
INSTALL_CELL = '''\
# numpy-cam, installed only where it is missing (Colab, a fresh environment): a no-op here otherwise.
# NUMPY_CAM_SOURCE names another source for pip, e.g. file:///path/to/a/clone or git+https://.../fork
import importlib.util
import os
import subprocess
import sys

if importlib.util.find_spec("numpy_cam") is None:
    source = os.environ.get("NUMPY_CAM_SOURCE", "git+{home}")
    print(f"installing numpy-cam{extras} from {{source}}")
    subprocess.run([sys.executable, "-m", "pip", "install", f"numpy-cam{extras} @ {{source}}"], check=True)
    importlib.invalidate_caches()'''
INSTALL_FIRST_LINE = INSTALL_CELL.splitlines()[0]
EXTRAS = re.compile(r'f"numpy-cam(\[[a-z0-9,-]+\])? @ ')


def home():
    """The project's home page, setup.cfg's [metadata] url: the one place it is written."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg", encoding="utf-8")
    return config["metadata"]["url"]


def install_cell(extras=""):
    """The install cell's source for a notebook that needs ``extras`` ("" or e.g. "[lite1]")."""
    return INSTALL_CELL.format(home=home(), extras=extras)


def colab_link(source, root=ROOT):
    """The markdown "Open in Colab" badge of the notebook whose jupytext source is ``source``."""
    relative = source.resolve().with_suffix(".ipynb").relative_to(root.resolve()).as_posix()
    url = home().replace("https://github.com/", "https://colab.research.google.com/github/", 1)
    return f"[![Open In Colab]({COLAB_BADGE})]({url}/blob/main/{relative})"


def sources(folder=NOTEBOOKS):
    """Every notebook source under ``folder``: a .py file with a ``# %%`` cell marker, sorted."""
    return sorted(path for path in folder.rglob("*.py")
                  if re.search(r"^# %%", path.read_text(encoding="utf-8"), re.MULTILINE))


def read_source(source):
    """The notebook of a jupytext source, with cell ids made from the cells (no random ids)."""
    import jupytext

    notebook = jupytext.read(source)
    seen = set()
    for cell in notebook.cells:
        digest = hashlib.sha256(f"{cell.cell_type}\n{cell.source}".encode()).hexdigest()[:8]
        cell_id, n = digest, 1
        while cell_id in seen:                         # two cells with the same source
            cell_id, n = f"{digest}-{n}", n + 1
        seen.add(cell_id)
        cell.id = cell_id
    return notebook


def normalise(notebook):
    """Drop what changes from run to run: timestamps, the kernel's version, object addresses.

    Also: one stream output per run of prints (the kernel splits them where its buffer happened
    to flush), and no JPEG copy of a figure that has its PNG (IPython stores both for a PIL image;
    the JPEG is lossy and its bytes depend on the JPEG library).
    """
    notebook.metadata = {"kernelspec": notebook.metadata.get("kernelspec", {}), "language_info": {"name": "python"}}
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
        outputs = []
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "text/plain" in data:
                data["text/plain"] = ADDRESS.sub(">", data["text/plain"])
            if "image/png" in data:
                data.pop("image/jpeg", None)
            if outputs and output.output_type == "stream" and outputs[-1].get("name") == output.name:
                outputs[-1].text += output.text
            else:
                outputs.append(output)
        if cell.cell_type == "code":
            cell.outputs = outputs
    return notebook


def execute(source, env=None, kernel_name="python3"):
    """Run ``source`` top to bottom in a fresh kernel in an empty folder; the executed notebook.

    Raises nbclient's CellExecutionError at the first failing cell.
    """
    from nbclient import NotebookClient

    notebook = read_source(source)
    with tempfile.TemporaryDirectory() as folder:
        client = NotebookClient(notebook, timeout=TIMEOUT, kernel_name=kernel_name, record_timing=False,
                                resources={"metadata": {"path": folder}})
        client.execute(env={**os.environ, **KERNEL_ENV, **(env or {})})
    return normalise(notebook)


def ipynb_text(notebook):
    """The bytes the .ipynb holds: nbformat's JSON (sorted keys) and a final newline."""
    import nbformat

    return nbformat.writes(notebook) + "\n"


def shown(path):
    """``path`` as a message names it: relative to the repository when inside it."""
    path = path.resolve()
    return path.relative_to(ROOT).as_posix() if ROOT in path.parents else path.name


def stale(source):
    """Why the .ipynb beside ``source`` does not match it ("" when it does): missing, or other cells."""
    import nbformat

    target = source.with_suffix(".ipynb")
    if not target.exists():
        return f"{shown(target)} is missing"
    stored = [(cell.cell_type, cell.source) for cell in nbformat.read(target, as_version=4).cells]
    current = [(cell.cell_type, cell.source) for cell in read_source(source).cells]
    if stored != current:
        first = next((i for i, (a, b) in enumerate(zip(stored, current)) if a != b), min(len(stored), len(current)))
        return f"{shown(target)} has {len(stored)} cells, {shown(source)} {len(current)}; they differ from cell {first}"
    return ""


def add_headers(source, root=ROOT):
    """Give ``source`` the Colab link under its title and the install cell first; True if it changed."""
    text = source.read_text(encoding="utf-8")
    new = text
    link = re.search(r"\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)", new)
    if link:                                           # e.g. copied from another notebook: made this one's
        new = new[:link.start()] + colab_link(source, root) + new[link.end():]
    else:
        title = re.search(r"^# %% \[markdown\]\n# # .*\n", new, re.MULTILINE)
        if title is None:
            raise ValueError(f"{source}: its first cell must be markdown starting with a '# Title' line")
        new = new[:title.end()] + f"#\n# {colab_link(source, root)}\n" + new[title.end():]
    cell = re.compile(rf"^# %%\n{re.escape(INSTALL_FIRST_LINE)}\n.*?(?=\n\n# %%|\Z)", re.MULTILINE | re.DOTALL)
    present = cell.search(new)
    if present:                                        # brought up to date, its extras kept
        extras = EXTRAS.search(present.group())
        new = cell.sub(lambda _: "# %%\n" + install_cell((extras.group(1) or "") if extras else ""), new, count=1)
    else:
        first_code = re.search(r"^# %%\n", new, re.MULTILINE)
        if first_code is None:
            raise ValueError(f"{source}: it has no code cell")
        new = new[:first_code.start()] + "# %%\n" + install_cell() + "\n\n" + new[first_code.start():]
    if new != text:
        source.write_text(new, encoding="utf-8")
    return new != text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=pathlib.Path, help="notebook sources (default: all)")
    parser.add_argument("--check", action="store_true", help="only check that every .ipynb matches its source")
    parser.add_argument("--headers", action="store_true", help="add the Colab link and install cell where missing")
    args = parser.parse_args(argv)
    paths = [path.resolve() for path in args.paths] or sources()
    if args.headers:
        for path in paths:
            print(f"{shown(path)}: {'header written' if add_headers(path) else 'has its header'}")
        return 0
    if args.check:
        problems = [problem for problem in map(stale, paths) if problem]
        print("\n".join(problems) or f"{len(paths)} notebooks: every .ipynb matches its source")
        return 1 if problems else 0
    for path in paths:
        target = path.with_suffix(".ipynb")
        text = ipynb_text(execute(path))
        same = target.exists() and target.read_text(encoding="utf-8") == text
        if not same:
            target.write_text(text, encoding="utf-8")
        print(f"{shown(target)}: {'unchanged' if same else 'written'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
