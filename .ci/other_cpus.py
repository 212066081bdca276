"""CI: pytest again as if on other CPUs: single-threaded BLAS under other OpenBLAS kernels, and
NumPy without its dispatched SIMD paths. The goldens must still match (tests/golden_check.py).

    python .ci/other_cpus.py                       # pytest's default run under each setting below
    python .ci/other_cpus.py --list                # the settings and their environment, nothing run
    python .ci/other_cpus.py --only prescott -- tests/test_resnet.py -q

Each setting is checked to take effect before its run: OpenBLAS must report the kernel
(``*_get_corename``) and the thread count asked for, and NumPy must report every dispatched
SIMD feature off. The features are NumPy's own list, ``__cpu_dispatch__`` minus those this
CPU lacks (NumPy 1.x warns about those) -- the baseline cannot be disabled at all. Exits
with the first failing pytest's code (5, no test ran, fails too).
"""
import argparse
import json
import os
import subprocess
import sys
import time

# OPENBLAS_CORETYPE -> the kernels OpenBLAS may run for it (a DYNAMIC_ARCH build without the
# older cores runs Prescott's generic SSE kernels under the name Katmai)
CORES = {"Haswell": {"Haswell"}, "Prescott": {"Prescott", "Katmai"}}
PROBE = r"""
import ctypes, json
import numpy as np
try:
    from numpy._core import _multiarray_umath as umath
except ImportError:                                     # NumPy 1.x
    from numpy.core import _multiarray_umath as umath
np.ones((64, 64), np.float32) @ np.ones((64, 64), np.float32)
found = {"simd_on": [f for f in umath.__cpu_dispatch__ if umath.__cpu_features__.get(f)]}
libs = {line.split()[-1] for line in open("/proc/self/maps") if "openblas" in line.lower() and ".so" in line}
for lib in sorted(libs):
    dll = ctypes.CDLL(lib)
    for prefix in ("scipy_openblas", "openblas"):
        for suffix in ("64_", ""):
            if hasattr(dll, f"{prefix}_get_corename{suffix}"):
                corename = getattr(dll, f"{prefix}_get_corename{suffix}")
                corename.restype = ctypes.c_char_p
                found.update(core=corename().decode(), threads=getattr(dll, f"{prefix}_get_num_threads{suffix}")())
print(json.dumps(found))
"""


def probe(env):
    """What NumPy and OpenBLAS report under ``env``: {"simd_on": [...], "core": str, "threads": int}."""
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"python under {changes(env)} failed:\n{done.stderr.strip()}")
    return json.loads(done.stdout)


def changes(env):
    return " ".join(f"{k}={v!r}" for k, v in sorted(env.items()) if os.environ.get(k) != v) or "(no change)"


def settings():
    """name -> (environment, what it must show). The SIMD list comes from a probe of this NumPy."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPENBLAS_", "NPY_DISABLE_CPU"))}
    simd = " ".join(probe(base)["simd_on"])
    out = {f"openblas-{core.lower()}-1thread": ({**base, "OPENBLAS_NUM_THREADS": "1", "OPENBLAS_CORETYPE": core},
                                                {"core": CORES[core], "threads": 1}) for core in CORES}
    out["numpy-no-simd"] = ({**base, "NPY_DISABLE_CPU_FEATURES": simd}, {"simd_on": []})
    return out


def check(name, env, expected):
    """Exit unless the setting shows what it must."""
    found = probe(env)
    wrong = [f"{k} {found.get(k)!r}, expected {v!r}" for k, v in expected.items()
             if not (found.get(k) in v if isinstance(v, set) else found.get(k) == v)]
    if wrong:
        sys.exit(f"{name}: the setting did not take effect: " + "; ".join(wrong))
    print(f"{name}: {changes(env)} -> OpenBLAS kernel {found.get('core')}, {found.get('threads')} thread(s); "
          f"NumPy dispatched SIMD on: {found['simd_on'] or 'none'}", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="print the settings, run nothing")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="only these settings")
    parser.add_argument("pytest_args", nargs="*", help="after --: arguments for pytest (default: the default run)")
    args = parser.parse_args(argv)
    chosen = {k: v for k, v in settings().items() if not args.only or k in args.only}
    for name, (env, expected) in chosen.items():
        if args.list:
            print(f"{name}: {changes(env)}")
            continue
        check(name, env, expected)
        start = time.monotonic()
        rc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args.pytest_args],
                            env=env).returncode
        print(f"=== {name}: pytest exit {rc} in {time.monotonic() - start:.0f} s", flush=True)
        if rc != 0:
            return rc if rc != 5 else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
