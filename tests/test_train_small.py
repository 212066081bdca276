"""weights/train_small.py picks float32 unless the CPU has native bfloat16, and says so.

``pick_precision`` and ``cpu_flags`` are read out of the script's source and run alone, so
these tests need no torch; the ones through the script's own parser skip without it.
"""
import ast
import pathlib
import sys

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "weights" / "train_small.py"


@pytest.fixture(scope="module")
def chooser():
    """FAST_BF16_FLAGS, pick_precision and cpu_flags of the script, executed without its imports."""
    tree = ast.parse(SCRIPT.read_text(encoding="utf-8"))
    wanted = {"FAST_BF16_FLAGS", "pick_precision", "cpu_flags"}
    nodes = [n for n in tree.body if getattr(n, "name", None) in wanted
             or (isinstance(n, ast.Assign) and {getattr(t, "id", None) for t in n.targets} & wanted)]
    namespace = {"torch": None}
    exec(compile(ast.Module(nodes, type_ignores=[]), str(SCRIPT), "exec"), namespace)
    assert wanted <= set(namespace)
    return namespace


@pytest.mark.parametrize("flags, expected", [
    ({"avx2", "fma", "avx512f", "amx_tile", "amx_bf16"}, "bf16"),     # Sapphire Rapids and later
    ({"avx2", "avx512f", "avx512_bf16"}, "bf16"),                     # Cooper Lake, Zen 4
    ({"avx2", "fma", "avx512f", "avx512_vnni"}, "fp32"),              # AVX-512 without bfloat16
    (set(), "fp32"),
])
def test_pick_precision_by_the_cpu_flags(chooser, flags, expected):
    picked, why = chooser["pick_precision"](flags)
    assert picked == expected
    assert why.startswith("the CPU has native bfloat16 (") == (expected == "bf16")
    assert expected == "bf16" or "~7 h per net against ~36 min in float32" in why


def test_cpu_flags_reads_the_first_flags_line(chooser, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 amx_bf16\n\nprocessor\t: 1\nflags\t: fpu\n")
    assert chooser["cpu_flags"](str(cpuinfo)) == ({"fpu", "sse2", "avx2", "amx_bf16"}, str(cpuinfo))


def test_the_parser_defaults_to_auto_and_keeps_the_override(capsys):
    pytest.importorskip("torch")
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import train_small
    finally:
        sys.path.remove(str(SCRIPT.parent))
    assert train_small.parse_args([]).precision == "auto"
    assert train_small.parse_args(["--dtype", "bf16"]).precision == "bf16"
    assert train_small.parse_args(["--precision", "fp32"]).precision == "fp32"
    assert train_small.resolve_precision("bf16") == "bf16" and capsys.readouterr().err == ""
    picked = train_small.resolve_precision("auto")
    assert picked == train_small.pick_precision(train_small.cpu_flags()[0])[0]
    assert f"--precision auto -> {picked}: " in capsys.readouterr().err
