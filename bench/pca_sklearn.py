#!/usr/bin/env python3
"""scikit-learn's PCA(k) timings on the lab's unlabeled BloodMNIST train split.

The reference side of bench/pca_bench.sh. The images are the ones
examples/pca_bench.rs uses: the notebook's split (default settings, taken
from scripts/make_split_fixtures.py) of the bundled BloodMNIST, unlabeled
train indices, pixels float32(byte) / 255 (float32, as the lab holds them).
Prints one JSON line with the best of REPS timings per solver.

    python3 bench/pca_sklearn.py [--k 128] [--reps 3] [--threads 2]
"""

import argparse
import json
import sys
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402 (ships with scikit-learn)

from make_pca_fixtures import BUNDLE, load_split  # noqa: E402
from make_split_fixtures import notebook_split  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--k", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    manifest = json.loads((BUNDLE / "manifest.json").read_text())
    _, train = load_split(BUNDLE, "train")
    labels = {}
    for split in ("train", "val"):
        raw = (BUNDLE / manifest[split]["labels"]["file"]).read_bytes()
        labels[split] = list(zlib.decompress(raw, -15))
    split = notebook_split(len(manifest["class_names"]), labels["train"], labels["val"],
                           0.2, 0.3, 42)
    rows = np.asarray(split["lists"]["train_unlabeled"], dtype=np.int64)
    x = train[rows].reshape(len(rows), -1).astype(np.float32) / np.float32(255)

    result = {"n": int(x.shape[0]), "d": int(x.shape[1]), "k": args.k,
              "threads": args.threads, "sklearn": sklearn.__version__}
    with threadpool_limits(limits=args.threads):
        for solver in ("randomized", "full"):
            best = float("inf")
            for _ in range(args.reps):
                start = time.perf_counter()
                pca = PCA(n_components=args.k, svd_solver=solver, random_state=0).fit(x)
                best = min(best, time.perf_counter() - start)
            result[solver] = round(best, 3)
            result[f"{solver}_cumulative_k"] = round(float(pca.explained_variance_ratio_.sum()), 6)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
