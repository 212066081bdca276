"""Train the small GAP and GMP networks on ``numpy_cam.gap_gmp.synthetic``; export them to ``numpy_cam/data/``.

Needs torch (the optional extra: ``pip install -e ".[torch]"``); the package itself never imports it.

Two networks, identical but for the global pooling (paper Sec. 3, GoogLeNet-GAP vs -GMP):

    features.0..4   conv3x3 (padding 1, no bias) -> BatchNorm2d (eps 1e-5) -> ReLU
                    channels 3 -> 32 -> 48 -> 48 -> 96 -> 96, strides 1, 2, 1, 2, 1:
                    (N, 3, 64, 64) -> (N, 96, 16, 16), the CAM features f_k
    pooling         global average (GAP, "small_gap") or global max (GMP, "small_gmp"): (N, 96)
    fc              Linear(96, classes): the logits S_c (softmax in the loss)
    (the study used 32-64-64-128-128; these widths keep each file well under 1 MB, 0.65 MB)

Input: x = (rgb - 127.5) / 127.5, float32 NCHW, the whole 64 x 64 image.

Recipe (from the feasibility study): Adam, one-cycle learning rate (max 1e-3), weight decay
1e-4, batch 64, 12,000 training images of ``make_dataset(12000, TRAIN_SEED)``, 8 epochs; test
on ``make_dataset(2000, TEST_SEED)``. Both nets sit near chance for the first 1 to 3 epochs:
that is expected, not a bug. A run is reproducible for the same seed, thread count, CPU and
torch build: the weights come from ``torch.manual_seed(seed)``, the batch order from a
generator seeded with the same seed, and torch's deterministic algorithms are switched on.

Speed (one thread per net, two nets side by side on 2 cores): ``--precision auto`` (the
default) picks the training forward pass by the CPU (``pick_precision``, stated on stderr):
bfloat16 autocast (``bf16``) where the CPU has native bfloat16 (the ``amx_bf16`` or
``avx512_bf16`` flag of /proc/cpuinfo, or torch's ``torch.cpu`` capability query where that
file is absent), about 0.3 s per batch of 64 on a CPU with AMX against ~0.85 s in float32;
float32 (``fp32``) everywhere else, where bf16 is emulated: about 7 hours per net against 36
minutes in float32 (8 epochs, an AMD EPYC without AVX512-BF16). ``--precision bf16`` or
``fp32`` (alias ``--dtype``) overrides the choice. The weights, the optimiser, the evaluation
and the exported arrays stay float32 either way.

Usage (from the repository root)::

    python weights/train_small.py                          # 2 poolings x seeds 0 1, 2 processes
    python weights/train_small.py --epochs 1 --train-size 512 --seeds 0 --out /tmp/smoke
    python weights/train_small.py --benchmark 20           # time 20 batches, project the total
    python weights/train_small.py --regime textured --seeds 0 --train-size 4000 --epochs 3 --batch 32 \
        --init 'numpy_cam/data/<arch>_seed0.npz' --out weights/regimes/textured   # a regime net

``--regime NAME`` trains and tests on ``synthetic.REGIMES[NAME]`` (the metadata records it);
``--init FILE`` fine-tunes a trained net instead of a random start (``<arch>`` becomes
small_gap or small_gmp; the metadata records the file's name and SHA-256). The regime sweep
of ``python -m numpy_cam.gap_gmp rescore`` uses both (seed S fine-tuned from the headline
seed-S net, S = 0, 1, 2): from a random start, 625 steps of 32 images leave the default regime's
GAP net near chance (47.5% accuracy; GMP 68.1%).

Each (pooling, seed) is written to ``<out>/small_gap_seed{S}.npz`` / ``small_gmp_seed{S}.npz`` with
``numpy_cam.io.checkpoint.save_weights``: the state dict as float32 arrays (``num_batches_tracked``
int64) and a metadata record; the file is read back and its logits compared with the trained net's.
``--out`` defaults to the package's data folder (``numpy_cam/data/`` of this checkout), where
``load_model("small_gap")`` and ``python -m numpy_cam.gap_gmp`` read them: a default run replaces
the bundled nets; then ``python -m numpy_cam.gap_gmp --out DIR`` writes their table, to copy to
``numpy_cam/data/gap_gmp_results.json`` (and its figure, to ``notebooks/figures/``).
"""
import argparse
import functools
import multiprocessing
import os
import pathlib
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
from torch import nn

from numpy_cam.gap_gmp.synthetic import CLASS_NAMES, NUM_CLASSES, REGIMES, TEST_SEED, TRAIN_SEED, make_dataset
from numpy_cam.io.checkpoint import load_weights, save_weights, sha256_of_file

DATA = pathlib.Path(__file__).resolve().parents[1] / "numpy_cam" / "data"   # the package data of this checkout
SIZE = 64
EPOCH_TEST = 500                            # test images evaluated after each epoch but the last
CHANNELS = (32, 48, 48, 96, 96)
STRIDES = (1, 2, 1, 2, 1)
POOLINGS = {"avg": "small_gap", "max": "small_gmp"}
PREPROCESSING = {"size": SIZE, "crop_fraction": 1.0, "resample": "bilinear",
                 "mean": [127.5] * 3, "std": [127.5] * 3}


class ConvBN(nn.Module):
    """conv3x3 (no bias) -> BatchNorm2d -> ReLU; state-dict names ``conv.weight``, ``bn.*``."""

    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=1e-5)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


class SmallNet(nn.Module):
    """conv x 5 -> global ``pooling`` ("avg" or "max") -> fc; forward returns the logits."""

    def __init__(self, pooling, num_classes=NUM_CLASSES, channels=CHANNELS):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {sorted(POOLINGS)}; got {pooling!r}")
        self.pooling = pooling
        widths = (3, *channels)
        self.features = nn.Sequential(*[ConvBN(widths[i], widths[i + 1], STRIDES[i])
                                        for i in range(len(channels))])
        self.fc = nn.Linear(channels[-1], num_classes)

    def forward(self, x):
        f = self.features(x)                                              # (N, K, 16, 16): f_k
        pooled = f.mean(dim=(2, 3)) if self.pooling == "avg" else f.amax(dim=(2, 3))  # (N, K): F_k
        return self.fc(pooled)                                            # (N, classes): S_c


def to_input(images):
    """uint8 (N, H, W, 3) tensor -> float32 (N, 3, H, W), x = (rgb - 127.5) / 127.5.

    The result is channels-last in memory (an NCHW shape over NHWC bytes, which the
    permute gives for free): oneDNN's convolutions run ~20% faster on it than on NCHW.
    """
    return (images.permute(0, 3, 1, 2).float() - 127.5) / 127.5


@functools.lru_cache(maxsize=2)
def dataset(n, seed, regime="default"):
    """(images uint8 (n, 64, 64, 3), labels int64 (n,)) of a named regime as tensors; cached per process."""
    images, labels, _ = make_dataset(n, seed, size=SIZE, regime=regime)
    return torch.from_numpy(images), torch.from_numpy(labels)


def evaluate(model, images, labels, batch=500):
    """(mean cross-entropy, accuracy) of ``model`` in eval mode."""
    model.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(labels), batch):
            logits = model(to_input(images[i:i + batch]))
            loss += nn.functional.cross_entropy(logits, labels[i:i + batch], reduction="sum").item()
            correct += (logits.argmax(1) == labels[i:i + batch]).sum().item()
    return loss / len(labels), correct / len(labels)


def export(model, path, metadata, check_images):
    """Save the state dict with ``save_weights``, read it back, check the logits are identical."""
    arrays = {}
    for name, value in model.state_dict().items():                       # OIHW in C order
        dtype = np.int64 if name.endswith("num_batches_tracked") else np.float32
        arrays[name] = np.array(value.detach().cpu().numpy(), dtype=dtype, order="C")  # keeps 0-d arrays 0-d
    save_weights(path, arrays, metadata)
    loaded, record = load_weights(path)
    twin = SmallNet(model.pooling, metadata["num_classes"], tuple(metadata["channels"]))
    twin = twin.to(memory_format=torch.channels_last)                     # the same kernels as model
    twin.load_state_dict({name: torch.from_numpy(value) for name, value in loaded.items()})
    model.eval()
    twin.eval()
    with torch.no_grad():
        x = to_input(check_images)
        if not torch.equal(model(x), twin(x)) or record != metadata:
            raise RuntimeError(f"{path}: the exported weights do not reproduce the trained net")


def train(pooling, seed, args):
    """Train one net, export it; returns a row of the summary table (a dict)."""
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    tag = f"[{POOLINGS[pooling]} seed {seed}]"
    log = functools.partial(print, tag, flush=True)
    start = time.perf_counter()
    steps = -(-args.train_size // args.batch)                            # batches per epoch
    if args.benchmark:                                                    # enough images to time
        n = min(args.train_size, args.benchmark * args.batch)
        train_images, train_labels = dataset(n, TRAIN_SEED, args.regime)
    else:
        train_images, train_labels = dataset(args.train_size, TRAIN_SEED, args.regime)
        test_images, test_labels = dataset(args.test_size, TEST_SEED, args.regime)
    log(f"data: {time.perf_counter() - start:.1f} s")

    torch.manual_seed(seed)
    model = SmallNet(pooling, channels=args.channels).to(memory_format=torch.channels_last)
    init = args.init.replace("<arch>", POOLINGS[pooling]) if args.init else None
    if init:                                                              # fine-tune a trained net
        arrays, _ = load_weights(init)
        model.load_state_dict({name: torch.from_numpy(value) for name, value in arrays.items()})
        log(f"initial weights: {init}")
    bf16 = args.precision == "bf16"
    order = torch.Generator().manual_seed(seed)
    total = args.benchmark or steps * args.epochs
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=total)
    start, done = time.perf_counter(), 0
    for epoch in range(1, args.epochs + 1):
        model.train()
        perm = torch.randperm(len(train_labels), generator=order)
        loss_sum, correct = 0.0, 0
        for i in range(0, len(perm), args.batch):
            index = perm[i:i + args.batch]
            x, y = to_input(train_images[index]), train_labels[index]      # (B, 3, 64, 64), (B,)
            if args.hflip:                                                # heads and textures are
                flip = torch.rand(len(y), generator=order) < 0.5         # mirror-symmetric classes
                x = torch.where(flip[:, None, None, None], x.flip(3), x)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = model(x).float()                                 # (B, classes)
            loss = nn.functional.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            loss_sum += loss.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
            done += 1
            if done == args.benchmark:
                per_batch = (time.perf_counter() - start) / done
                log(f"{done} batches: {per_batch * 1000:.0f} ms/batch -> {per_batch * steps:.0f} s "
                    f"per epoch of {args.train_size} images")
                return {"pooling": pooling, "seed": seed, "seconds_per_epoch": per_batch * steps}
        last = epoch == args.epochs                                       # all test images at the end,
        k = len(test_labels) if last else min(len(test_labels), EPOCH_TEST)  # a quick look before
        test_loss, test_acc = evaluate(model, test_images[:k], test_labels[:k])
        log(f"epoch {epoch}/{args.epochs}: train loss {loss_sum / len(perm):.3f} "
            f"acc {correct / len(perm):.3f} | test ({k}) loss {test_loss:.3f} acc {test_acc:.3f}"
            f" | {time.perf_counter() - start:.0f} s")
    seconds = time.perf_counter() - start

    arch = POOLINGS[pooling]
    path = pathlib.Path(args.out) / f"{arch}_seed{seed}.npz"
    regime_option = "" if args.regime == "default" else f" --regime {args.regime}"
    init_option = f" --init {init} --batch {args.batch}" if init else ""
    metadata = {
        "architecture": arch, "num_classes": NUM_CLASSES, "class_names": list(CLASS_NAMES),
        "channels": list(args.channels), "preprocessing": PREPROCESSING,
        "source": (f"weights/train_small.py --seeds {seed} --poolings {pooling} --epochs "
                   f"{args.epochs} --train-size {args.train_size}{regime_option}{init_option} "
                   f"(torch {torch.__version__}, "
                   f"{args.epochs} epochs, {args.train_size} train images of seed {TRAIN_SEED}, "
                   f"{args.test_size} test images of seed {TEST_SEED}, Adam one-cycle lr "
                   f"{args.lr}, weight decay {args.weight_decay}, batch {args.batch}, hflip "
                   f"{args.hflip}, {args.precision} training, {args.threads} thread(s))"),
        "train_precision": args.precision, "train_seconds": round(seconds, 1),
        "test_accuracy_torch": test_acc,
    }
    if args.regime != "default":                                          # the headline nets' record stays
        metadata["regime"] = args.regime
    if init:
        metadata["init"] = {"path": pathlib.Path(init).name, "sha256": sha256_of_file(init)}
    export(model, path, metadata, test_images[:64])
    params = sum(p.numel() for p in model.parameters())
    log(f"wrote {path} ({path.stat().st_size:,} bytes, {params:,} parameters)")
    return {"pooling": pooling, "seed": seed, "seconds": seconds, "test_accuracy": test_acc,
            "bytes": path.stat().st_size, "path": str(path)}


FAST_BF16_FLAGS = ("amx_bf16", "avx512_bf16")      # /proc/cpuinfo: native bfloat16 arithmetic


def pick_precision(flags):
    """("bf16" or "fp32", why): bf16 only when ``flags`` (the CPU's feature flags) name native
    bfloat16; elsewhere torch emulates it, ~12x slower than float32. A pure function of the flags."""
    fast = sorted(set(flags) & set(FAST_BF16_FLAGS))
    if fast:
        return "bf16", f"the CPU has native bfloat16 ({', '.join(fast)})"
    return "fp32", ("the CPU has no native bfloat16 (no amx_bf16 or avx512_bf16 flag): bf16 would be "
                    "emulated, ~7 h per net against ~36 min in float32")


def cpu_flags(cpuinfo="/proc/cpuinfo"):
    """The CPU's feature flags: /proc/cpuinfo's first "flags" line, else torch's capability query."""
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as file:
            for line in file:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split()), cpuinfo
    except OSError:
        pass
    queries = {"amx_bf16": "_is_amx_tile_supported", "avx512_bf16": "_is_avx512_bf16_supported"}
    return {flag for flag, query in queries.items() if getattr(torch.cpu, query, lambda: False)()}, "torch.cpu"


def resolve_precision(precision):
    """``precision`` itself unless "auto"; then ``pick_precision`` of this CPU, said on stderr."""
    if precision != "auto":
        return precision
    flags, source = cpu_flags()
    picked, why = pick_precision(flags)
    print(f"train_small: --precision auto -> {picked}: {why} (flags from {source}); "
          f"--precision bf16 or fp32 overrides", file=sys.stderr, flush=True)
    return picked


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--poolings", nargs="+", choices=sorted(POOLINGS), default=["avg", "max"])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--train-size", type=int, default=12000)
    parser.add_argument("--test-size", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3, help="peak of the one-cycle schedule")
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--hflip", action="store_true", help="random horizontal flips (labels keep)")
    parser.add_argument("--regime", choices=list(REGIMES), default="default",
                        help="the data regime of numpy_cam.gap_gmp.synthetic (train and test sets)")
    parser.add_argument("--init", metavar="FILE", help="fine-tune from these weights instead of a random start; "
                        "<arch> becomes small_gap or small_gmp (e.g. numpy_cam/data/<arch>_seed0.npz)")
    parser.add_argument("--precision", "--dtype", choices=["auto", "bf16", "fp32"], default="auto",
                        help="forward pass during training; auto: bf16 autocast on CPUs with native "
                             "bfloat16 (AMX / AVX512-BF16, ~2.5x faster there), else fp32 (bf16 is "
                             "emulated and ~12x slower); evaluation and export are float32")
    parser.add_argument("--channels", type=int, nargs=5, default=list(CHANNELS),
                        help="conv widths (the NumPy model expects the default)")
    parser.add_argument("--jobs", type=int, default=2, help="nets trained side by side (processes)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--benchmark", type=int, default=0, metavar="BATCHES",
                        help="only time this many batches (first --jobs nets) and project the total")
    parser.add_argument("--out", default=str(DATA), help="folder for the .npz files (default: %(default)s)")
    args = parser.parse_args(argv)
    args.channels = tuple(args.channels)
    if min(args.epochs, args.train_size, args.test_size, args.batch, args.jobs, args.threads) < 1:
        parser.error("--epochs, --train-size, --test-size, --batch, --jobs, --threads must be >= 1")
    if args.train_size % args.batch == 1:
        parser.error("--train-size leaves a last batch of one image, which batch norm cannot train on")
    return args


def main(argv=None):
    args = parse_args(argv)
    args.precision = resolve_precision(args.precision)                # before the workers: one choice
    os.makedirs(args.out, exist_ok=True)
    runs = [(pooling, seed) for seed in args.seeds for pooling in args.poolings]  # GAP, GMP side by side
    todo = runs[:args.jobs] if args.benchmark else runs                  # benchmark: one round
    start = time.perf_counter()
    if args.jobs == 1:
        rows = [train(pooling, seed, args) for pooling, seed in todo]
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
            rows = list(pool.map(train, *zip(*todo), [args] * len(todo)))
    wall = time.perf_counter() - start
    if args.benchmark:
        per_epoch = max(row["seconds_per_epoch"] for row in rows)
        rounds = -(-len(runs) // args.jobs)
        print(f"projected: {len(runs)} nets x {args.epochs} epochs, {args.jobs} at a time: "
              f"~{rounds * args.epochs * per_epoch / 60:.1f} min (+ data and evaluation)")
        return
    print(f"\n{'pooling':8} {'seed':>4} {'train s':>8} {'test acc':>8} {'bytes':>10}  file")
    for row in rows:
        print(f"{row['pooling']:8} {row['seed']:>4} {row['seconds']:8.0f} "
              f"{row['test_accuracy']:8.3f} {row['bytes']:>10,}  {row['path']}")
    print(f"wall time {wall:.0f} s ({args.jobs} job(s), {args.threads} thread(s) each)")


if __name__ == "__main__":
    sys.exit(main())
