"""Write every ```python block of a Markdown file to its own script: block_01.py, block_02.py, ...

Usage: python readme_python_blocks.py README.md OUT_DIR

Prints one line per block (its file and the README line it starts on). Exits 1 when the file
has no ```python block, so that a check built on it cannot pass by running nothing.
"""
import pathlib
import sys


def python_blocks(text):
    """[(line number of the opening fence, source)] of every ```python block, in order."""
    blocks, source, start = [], None, 0
    for number, line in enumerate(text.splitlines(), start=1):
        fence = line.strip()
        if source is None and fence == "```python":
            source, start = [], number
        elif source is not None and fence == "```":
            blocks.append((start, "\n".join(source) + "\n"))
            source = None
        elif source is not None:
            source.append(line)
    if source is not None:
        raise SystemExit(f"the ```python block opened on line {start} is never closed")
    return blocks


def main(argv):
    if len(argv) != 2:
        raise SystemExit("usage: python readme_python_blocks.py README.md OUT_DIR")
    readme, out = pathlib.Path(argv[0]), pathlib.Path(argv[1])
    blocks = python_blocks(readme.read_text(encoding="utf-8"))
    if not blocks:
        raise SystemExit(f"{readme}: no ```python block")
    out.mkdir(parents=True, exist_ok=True)
    for i, (line, source) in enumerate(blocks, start=1):
        path = out / f"block_{i:02d}.py"
        path.write_text(f"# {readme.name}, line {line}\n{source}", encoding="utf-8")
        print(f"{path} ({readme.name} line {line})")


if __name__ == "__main__":
    main(sys.argv[1:])
