"""Speed of the NumPy forward pass against the same network in PyTorch (optional).

    python benchmarks/benchmark.py [--model efficientnet_lite0|resnet50|...] [--batch 1 8] [--size 224]
                                  [--threads 2] [--rounds 7] [--repeats 20]

Method: every measurement runs in a fresh process (NumPy and torch disturb each other in
one process), the two frameworks alternate round by round (this machine is shared and
noisy), and every process pins the same thread count: OMP/OpenBLAS/MKL threads through the
environment before import, ``torch.set_num_threads``. A process loads the model, runs three
warm-up passes, then times ``repeats`` forward passes (input -> logits) and reports their
median; the table gives the median over rounds of those medians, per image, with the spread
(min-max over rounds), and the process's peak resident memory (ru_maxrss) and how much of it
the forward passes added. torch runs the independent references in tests/ (torch_models.py,
torch_resnet.py; eval mode, ``torch.inference_mode``), so the torch side needs a repository
checkout. ResNets ship no weights: both sides get the same seeded random ones.
"""
import argparse
import importlib
import importlib.util
import json
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parent.parent
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0   # Linux: KiB


def _time(run, x, repeats):
    for _ in range(3):
        run(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


RANDOM_WEIGHT_MODELS = {"resnet18": 18, "resnet34": 34, "resnet50": 50}   # no shipped weights: seeded random ones


def _tests_module(name):
    sys.path.insert(0, str(REPO / "tests"))
    try:
        return importlib.import_module(name)
    except ImportError as err:
        raise SystemExit(f"this benchmark needs tests/{name}.py of a repository checkout: {err}") from err


def _numpy_model(name):
    from numpy_cam.models import Model, load_model
    if name not in RANDOM_WEIGHT_MODELS:
        return load_model(name)
    state_dict = _tests_module("torch_resnet").random_state_dict(RANDOM_WEIGHT_MODELS[name])
    return Model(name, name, state_dict, {"class_names": None})


def _numpy_worker(args, x):
    model = _numpy_model(args.model)
    rss_before = _peak_rss_mb()
    seconds = _time(lambda x: model.classify(model.features(x)), x, args.repeats)
    cam_seconds = _cam_step_seconds(model, x, args.repeats) if len(x) == 1 else None   # reported for batch 1
    return seconds, rss_before, cam_seconds


def _cam_step_seconds(model, x, repeats):
    """The CAM step for one image at 224 x 224: Eq. 2, upsample, normalise, box, overlay + box."""
    from numpy_cam.cam import class_activation_map, to_heatmap
    from numpy_cam.localize import localize
    from numpy_cam.visualize import draw_box, overlay
    f = model.features(x)                                                   # (1, K, h, w)
    c = int(model.classify(f)[0].argmax())
    image = np.zeros((x.shape[2], x.shape[3], 3), np.uint8)                 # (224, 224, 3)

    def step(f):
        heat = to_heatmap(class_activation_map(f, model.fc_weight, c), image.shape[:2])[0]  # (224, 224)
        return draw_box(overlay(image, heat, 0.5), localize(heat))

    return _time(step, f, max(repeats, 50))


def _torch_worker(args, x):
    torch = importlib.import_module("torch")
    torch.set_num_threads(args.threads)
    if args.model in RANDOM_WEIGHT_MODELS:
        torch_resnet = _tests_module("torch_resnet")
        depth = RANDOM_WEIGHT_MODELS[args.model]
        net = torch_resnet.build_resnet(depth, torch_resnet.random_state_dict(depth))
    elif args.model in ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"):
        torch_models = _tests_module("torch_models")
        net = torch_models.build_efficientnet_lite(
            args.model, torch.load(torch_models.checkpoint_path(args.model), weights_only=True))
    else:
        raise SystemExit(f"no torch twin of {args.model!r} in tests/ (efficientnet_lite0/1/2, resnet18/34/50)")
    xt = torch.from_numpy(x)
    rss_before = _peak_rss_mb()
    with torch.inference_mode():
        seconds = _time(net, xt, args.repeats)
    return seconds, rss_before, None


def worker(args):
    x = np.random.default_rng(0).uniform(-1, 1, (args.batch[0], 3, args.size, args.size)).astype(np.float32)
    run = _numpy_worker if args.worker == "numpy" else _torch_worker
    seconds, rss_before, cam_seconds = run(args, x)
    print(json.dumps({"seconds": seconds, "peak_rss_mb": _peak_rss_mb(),
                      "forward_rss_mb": _peak_rss_mb() - rss_before, "cam_seconds": cam_seconds}))


def _spawn(framework, batch, args):
    env = dict(os.environ, **{v: str(args.threads) for v in THREAD_VARIABLES})
    cmd = [sys.executable, str(pathlib.Path(__file__).resolve()), "--worker", framework, "--model", args.model,
           "--batch", str(batch), "--size", str(args.size), "--threads", str(args.threads),
           "--repeats", str(args.repeats)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO)
    if out.returncode:
        raise SystemExit(f"{framework} worker failed:\n{out.stderr.strip()}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _has_torch():
    return importlib.util.find_spec("torch") is not None


def main(argv=None):
    p = argparse.ArgumentParser(prog="python benchmarks/benchmark.py", description=__doc__.split("\n")[0])
    p.add_argument("--model", default="efficientnet_lite0")
    p.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--worker", choices=["numpy", "torch"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args)
    frameworks = ["numpy", "torch"] if _has_torch() else ["numpy"]
    if len(frameworks) == 1:
        print("torch is not installed: timing NumPy only (pip install -e '.[torch]')", file=sys.stderr)
    print(f"{args.model}, {args.size}x{args.size}, {args.threads} thread(s), {args.rounds} rounds x "
          f"{args.repeats} repeats, medians per image")
    print("| batch | " + " | ".join(f"{f} ms/image (spread)" for f in frameworks)
          + (" | NumPy / torch" if len(frameworks) == 2 else "")
          + " | " + " | ".join(f"{f} peak RSS MB (forward adds)" for f in frameworks) + " |")
    print("|---" * (1 + 2 * len(frameworks) + (len(frameworks) == 2)) + "|")
    cam_share = []
    for batch in args.batch:
        results = {f: [] for f in frameworks}
        for r in range(args.rounds):
            for f in (frameworks if r % 2 == 0 else frameworks[::-1]):
                results[f].append(_spawn(f, batch, args))
        cells, memory, medians = [], [], {}
        for f in frameworks:
            ms = [1e3 * res["seconds"] / batch for res in results[f]]
            medians[f] = statistics.median(ms)
            cells.append(f"{medians[f]:.1f} ({min(ms):.1f}-{max(ms):.1f})")
            memory.append(f"{max(res['peak_rss_mb'] for res in results[f]):.0f} "
                          f"(+{max(res['forward_rss_mb'] for res in results[f]):.0f})")
        ratio = [f"{medians['numpy'] / medians['torch']:.2f}"] if len(frameworks) == 2 else []
        print("| " + " | ".join([str(batch)] + cells + ratio + memory) + " |")
        if batch == 1:                         # the share is measured within each process
            cam_ms = statistics.median(1e3 * res["cam_seconds"] for res in results["numpy"])
            share = statistics.median(100 * res["cam_seconds"] / res["seconds"] for res in results["numpy"])
            cam_share.append(f"CAM step (Eq. 2 + upsample + normalise + box + overlay) for a "
                             f"{args.size}x{args.size} result: {cam_ms:.2f} ms, {share:.1f}% of one "
                             "NumPy forward pass of batch 1 (median over processes of the share in each)")
    for line in cam_share:
        print(line)


if __name__ == "__main__":
    main()
