"""Print how far the NumPy port is from every golden, in units of golden_check's scale S.

    python tests/golden/golden_errors.py                  # a table: model, stage, error / S
    python tests/golden/golden_errors.py --json out.json  # the same numbers, for a script

For each model and stage: the largest ``max |port - golden| / S`` over the golden's inputs and
arrays (stored positions, channel means, pooled features; logits in full), ``S`` the largest
|golden| of that array (``tests/golden_check.py``). Run it under the BLAS and SIMD settings of
CI (``.ci/other_cpus.py``) to see the float32 round-off the tolerance ``TAU`` must absorb.
NumPy only: the port against the stored goldens; the Lite1 and Lite2 rows need their extras.
"""
import argparse
import importlib.util
import json
import pathlib
import sys

TESTS = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))
from golden_check import TAU, relative_error, stage_errors  # noqa: E402 (after sys.path)


def lite(name):
    """(input, stage, output, key) of EfficientNet-Lite ``name``'s golden; None without its weights."""
    import test_efficientnet_lite as t
    if not t.installed(name):
        return None
    npz, info = t.golden(name)
    return npz, [(i, s, y, f"{i}/{s}") for i in info["inputs"] for s, y in t.outputs(name)[i].items()]


def resnet(depth):
    import test_resnet as t
    rows = []
    for i in t.INFO["inputs"]:
        for s, y in t.run_stages(depth, t.state_dict(depth), t.golden_input(i)).items():
            rows.append((i, s, y, f"resnet{depth}/{i}/{s}"))
    return t.GOLDEN, rows


def keras_resnet50():
    import test_keras_resnet as t
    state = t.make_golden_keras.random_keras_resnet50_state(t.make_golden_keras.WEIGHTS_SEED)
    model = t.numpy_model(t.convert_keras_weights(state))
    return t.GOLDEN, [(i, s, y, f"{i}/{s}") for i in t.INFO["inputs"]
                      for s, y in t.numpy_stages(model, t.make_golden_keras.make_input(i)).items()]


def small_nets():
    import test_small_models as t
    import numpy_cam
    rows = []
    for net in t.INFO["nets"]:
        model = numpy_cam.load_model(t.NAMES[net])
        for i, x in t.golden_inputs().items():
            rows += [(i, s, y, f"{net}/{i}/{s}") for s, y in model.stages(x).items() if s != "features"]
    return t.GOLDEN, rows


MODELS = {**{f"efficientnet_lite{n}": (lambda n=n: lite(f"efficientnet_lite{n}")) for n in range(3)},
          **{f"resnet{d}": (lambda d=d: resnet(d)) for d in (18, 34, 50)},
          "keras_resnet50": keras_resnet50, "small_nets": small_nets}


def errors(golden, rows):
    """stage -> {array: largest error / S over the inputs}."""
    table = {}
    for _, stage, y, key in rows:
        if stage == "logits":
            value = golden[f"{key}/value"] if f"{key}/value" in golden else golden[key]
            found = {"logits": relative_error(y, value)}
        else:
            found = stage_errors(golden, key, y)
        row = table.setdefault(stage, {})
        for part, e in found.items():
            row[part] = max(row.get(part, 0.0), e)
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    args = parser.parse_args(argv)
    result = {}
    for name in args.models:
        found = MODELS[name]()
        if found is None:
            print(f"{name}: skipped (weights not installed)")
            continue
        result[name] = errors(*found)
        for stage, parts in result[name].items():
            print(f"{name:20s} {stage:10s} " + "  ".join(f"{p} {e:.2e}" for p, e in parts.items()))
    worst = max((e, m, s, p) for m, t in result.items() for s, parts in t.items() for p, e in parts.items())
    print(f"worst: {worst[0]:.2e} of S ({worst[1]} {worst[2]} {worst[3]}); TAU = {TAU:g}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(result, indent=1))
    return 0 if worst[0] <= TAU else 1


if __name__ == "__main__":
    if importlib.util.find_spec("numpy_cam") is None:
        sys.exit("numpy_cam is not installed: pip install -e .")
    sys.exit(main())
