"""Write the student notebooks notebooks/exercises/E*.py from the instructor's notebooks here.

    python notebooks/solutions/make_exercises.py            # (re)write notebooks/exercises/
    python notebooks/solutions/make_exercises.py --check    # exit 1 if they are out of date

The instructor's notebook (this folder) is the one source: each solution is a block of lines
between two marker lines, which the student's copy replaces by one line at the marker's indent:

    # BEGIN SOLUTION ... # END SOLUTION                  (code)  ->  raise NotImplementedError(...)
    # <!-- BEGIN SOLUTION --> ... # <!-- END SOLUTION -->  (a markdown answer) ->  # *Your answer:*

so restoring the solutions is opening this folder's copy; nothing is ever merged back. A link
to the notebook itself (``notebooks/solutions/E1_conv2d.ipynb``, e.g. an "Open in Colab" badge)
becomes the student's (``notebooks/exercises/E1_conv2d.ipynb``).
"""
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
EXERCISES = HERE.parent / "exercises"
MARKERS = {"BEGIN SOLUTION": "code", "<!-- BEGIN SOLUTION -->": "markdown"}
ENDS = {"code": "END SOLUTION", "markdown": "<!-- END SOLUTION -->"}


def strip(text, name="notebook"):
    """``text`` with every solution block replaced by its placeholder line."""
    out, block, indent = [], None, ""
    for number, line in enumerate(text.splitlines(keepends=True), 1):
        content = line.strip().removeprefix("#").strip()
        if block is None and content in MARKERS:
            block, indent = MARKERS[content], line[:len(line) - len(line.lstrip())]
            placeholder = ('raise NotImplementedError("your code here")' if block == "code" else "# *Your answer:*")
            out.append(f"{indent}{placeholder}\n")
        elif block is not None and content == ENDS[block]:
            block = None
        elif block is not None and content in MARKERS:
            raise ValueError(f"{name}:{number}: a solution block opens inside another")
        elif block is None:
            out.append(line)
    if block is not None:
        raise ValueError(f"{name}: a solution block is not closed")
    return "".join(out)


def exercises():
    """{path of the student's notebook: its text}, one per instructor's notebook E*.py here."""
    out = {}
    for path in sorted(HERE.glob("E[0-9]_*.py")):
        text = strip(path.read_text(encoding="utf-8"), path.name)
        own, theirs = f"notebooks/solutions/{path.stem}", f"notebooks/exercises/{path.stem}"
        out[EXERCISES / path.name] = text.replace(own, theirs)                # links to the notebook itself
    return out


def main(argv):
    texts = exercises()
    stale = [path for path, text in texts.items() if not path.exists() or path.read_text(encoding="utf-8") != text]
    if "--check" in argv:
        for path in stale:
            print(f"{path.relative_to(HERE.parent.parent)} is out of date: run python {pathlib.Path(__file__).name}")
        return 1 if stale else 0
    EXERCISES.mkdir(exist_ok=True)
    for path in stale:
        path.write_text(texts[path], encoding="utf-8")
        print(f"wrote {path.relative_to(HERE.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
