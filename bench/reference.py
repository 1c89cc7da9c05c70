#!/usr/bin/env python3
"""One section of `replab bench`, measured with the notebook's libraries: PyTorch for the
chapters and CLIP, scikit-learn for the probe and PCA, umap-learn for UMAP.

`replab bench` runs this script (and its own measurement) once per section and thread count
and reads the one JSON line it prints: {"value", "unit", "peak_rss_mb", "detail"}.

    python3 bench/reference.py supervised --threads 1 --bundle public/data/bloodmnist --quick \
        --warmup 2 --steps 6 --steps-per-epoch 14

Chapters reuse the reference trainers (torch_reference, ae_reference, ssl_reference) unchanged:
the optimiser's step and torch.randperm are wrapped to time them, and the run is stopped once the
timed part is over, so no probe or later stage runs.
  --quick  time `--steps` optimiser steps after `--warmup` ones, in the first epoch, and scale
           by `--steps-per-epoch` (replab's count for the same split and batch size);
  default  train into a third epoch and time the second one from its shuffle to its last step
           (the training part, like replab's seconds per epoch).
probe and umap read the features replab's own measurement wrote to `--work`/features.json, so
both sides fit the same numbers.
"""
import argparse
import contextlib
import io
import json
import os
import resource
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

SCRIPTS = {
    "supervised": "torch_reference", "supcon": "torch_reference",
    "linear-ae": "ae_reference", "autoencoder": "ae_reference", "conv-ae": "ae_reference",
    "simclr": "ssl_reference", "dino": "ssl_reference",
}
SHUFFLE_MIN = 64  # a torch.randperm this long is an epoch's shuffle (ColorJitter draws randperm(4))


class Stop(Exception):
    """Raised from inside the trainer once the timed part is over."""


def chapter(name, a):
    module = __import__(SCRIPTS[name])
    stamps, starts = [], []  # (epoch, time) after each optimiser step; shuffle times
    real_step, real_randperm = torch.optim.AdamW.step, torch.randperm
    first_epochs = 1 if a.quick else 3

    def step(self, *args, **kw):
        out = real_step(self, *args, **kw)
        stamps.append((len(starts), time.perf_counter()))
        if a.quick and len(stamps) == a.warmup + a.steps:
            raise Stop
        return out

    def randperm(n, *args, **kw):
        if isinstance(n, int) and n > SHUFFLE_MIN:
            starts.append(time.perf_counter())
            if len(starts) > 2 and not a.quick:
                raise Stop
        return real_randperm(n, *args, **kw)

    argv = ["--chapters", name, "--epochs", str(first_epochs), "--threads", str(a.threads), "--bundle", a.bundle]
    if name in ("supervised", "supcon"):
        argv += ["--device", a.device]
    torch.optim.AdamW.step, torch.randperm = step, randperm
    sys.argv = [module.__file__] + argv
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            module.main()
    except Stop:
        pass
    finally:
        torch.optim.AdamW.step, torch.randperm = real_step, real_randperm
    if a.quick:
        if len(stamps) < a.warmup + a.steps or a.warmup < 1:
            raise SystemExit(f"{name}: the first epoch has fewer than {a.warmup + a.steps} steps")
        per_step = (stamps[a.warmup + a.steps - 1][1] - stamps[a.warmup - 1][1]) / a.steps
        return per_step * a.steps_per_epoch, {"timed_steps": a.steps, "seconds_per_step": per_step}
    second = [t for e, t in stamps if e == 2]
    if len(starts) < 3 or not second:
        raise SystemExit(f"{name}: the reference did not reach its third epoch")
    return second[-1] - starts[1], {"steps_per_epoch": len(second)}


def clip(a):
    import clip_torch
    sys.argv = ["clip_torch.py", "--threads", str(a.threads), "--batch", "8",
                "--iters", str(a.iters), "--device", a.device]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        clip_torch.main()
    row = json.loads(buf.getvalue().strip().splitlines()[-1])
    return row["images_per_second"], row


def features(a):
    with open(os.path.join(a.work, "features.json")) as f:
        return json.load(f)


def probe(a):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    f = features(a)["probe"]
    x = np.asarray(f["x"], dtype=np.float32).reshape(f["n"], f["d"])
    y = np.asarray(f["y"])
    times = []
    for _ in range(a.iters):
        t0 = time.perf_counter()
        sc = StandardScaler().fit(x)
        clf = LogisticRegression(C=1.0, max_iter=1000).fit(sc.transform(x), y)
        times.append(time.perf_counter() - t0)
    acc = float(clf.score(sc.transform(x), y))
    return float(np.median(times)), {"train_accuracy": acc, "iterations": int(clf.n_iter_.max()),
                                     "rows": f["n"], "dim": f["d"]}


def umap_section(a):
    import umap
    from sklearn.manifold import trustworthiness
    f = features(a)["umap"]
    x = np.asarray(f["x"], dtype=np.float32).reshape(f["n"], f["d"])
    ours = np.asarray(f["layout"], dtype=np.float32).reshape(f["n"], 2)
    # umap-learn counts each point as its own neighbour: its 16 are replab's 15.
    make = lambda: umap.UMAP(n_neighbors=16, min_dist=0.1, metric="cosine", n_components=2)  # noqa: E731
    make().fit_transform(x)  # the first call compiles numba's kernels
    t0 = time.perf_counter()
    theirs = make().fit_transform(x)
    seconds = time.perf_counter() - t0
    return seconds, {"points": f["n"], "dim": f["d"],
                     "trustworthiness_reference": float(trustworthiness(x, theirs, n_neighbors=15)),
                     "trustworthiness_replab": float(trustworthiness(x, ours, n_neighbors=15))}


def pca(a):
    from sklearn.decomposition import PCA
    import ae_reference
    v = ae_reference.load(None, a.bundle)
    x = v["xu"].reshape(len(v["xu"]), -1).numpy()
    best, model = float("inf"), None
    for _ in range(a.iters):
        t0 = time.perf_counter()
        model = PCA(n_components=128, svd_solver="randomized", random_state=0).fit(x)
        best = min(best, time.perf_counter() - t0)
    return best, {"rows": int(x.shape[0]), "dim": int(x.shape[1]),
                  "cumulative_128": float(np.sum(model.explained_variance_ratio_))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("section", help="a chapter (" + ", ".join(SCRIPTS) + "), clip, probe, umap or pca")
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--bundle", default="public/data/bloodmnist")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (supervised, supcon and clip)")
    ap.add_argument("--work", default=".", help="where replab's measurement wrote features.json")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--steps-per-epoch", type=int, default=0)
    ap.add_argument("--iters", type=int, default=3, help="repeats for clip, probe and pca")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    units = {"clip": "images/s", "probe": "s", "umap": "s", "pca": "s"}
    with threadpool_limits(limits=a.threads):
        if a.section in SCRIPTS:
            value, detail = chapter(a.section, a)
        else:
            value, detail = {"clip": clip, "probe": probe, "umap": umap_section, "pca": pca}[a.section](a)
    detail["threads"] = torch.get_num_threads()
    print(json.dumps({"value": value, "unit": units.get(a.section, "s/epoch"),
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                      "detail": detail}))


if __name__ == "__main__":
    main()
