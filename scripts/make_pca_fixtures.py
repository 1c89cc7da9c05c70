#!/usr/bin/env python3
"""Build tests/fixtures/pca.json: scikit-learn's PCA of real BloodMNIST images.

The Rust PCA in src/analysis/pca/ claims to compute scikit-learn's PCA
(explained variance with n - 1, ratios over the summed per-feature variances,
svd_flip signs). This script takes a deterministic set of images from the
BloodMNIST bundle the repository ships (public/data/bloodmnist): the first
COUNT images of the official train split, flattened channel-first to
3 * 28 * 28 = 2352 values, each pixel float32(byte) / float32(255), which is
the scale the lab's data pipeline feeds (src/train/batcher.rs). It fits
sklearn.decomposition.PCA(n_components=128, svd_solver="full") on those
values widened to float64 and records what tests/pca_fixture.rs compares
against: the cumulative explained variance ratio (at every k up to 128), the
first component's explained variance, the total variance and the first
component itself, plus a sha256 of the image bytes used so the test knows it
decoded the same images.

CI never runs this script; its output is committed. Regenerate it (about a
minute on two cores) with the lab's Python environment, numpy and scikit-learn
being the only dependencies:

    /tmp/pyenv/bin/python scripts/make_pca_fixtures.py [output_path]
"""

import hashlib
import json
import sys
import zlib
from pathlib import Path

try:
    import numpy as np
    import sklearn
    from sklearn.decomposition import PCA
except ImportError:  # pragma: no cover - depends on the machine
    sys.exit("numpy and scikit-learn are required (see the docstring)")

REPO = Path(__file__).resolve().parent.parent
BUNDLE = REPO / "public" / "data" / "bloodmnist"
DEFAULT_OUT = REPO / "tests" / "fixtures" / "pca.json"

SPLIT = "train"
COUNT = 3000
N_COMPONENTS = 128
CHECKPOINTS = [1, 2, 8, 32, 128]


def load_split(bundle_dir, split):
    """A replab bundle split as uint8 [n, channels, size, size] (see src/data/bundle.rs:
    every blob is raw deflate, checked against the manifest's sha256)."""
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    entry = manifest[split]
    blob = entry["images"]
    raw = (bundle_dir / blob["file"]).read_bytes()
    assert hashlib.sha256(raw).hexdigest() == blob["sha256"], "corrupt bundle blob"
    images = zlib.decompress(raw, -15)
    shape = (entry["count"], manifest["channels"], manifest["size"], manifest["size"])
    return manifest["name"], np.frombuffer(images, dtype=np.uint8).reshape(shape)


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT
    name, images = load_split(BUNDLE, SPLIT)
    pixels = np.ascontiguousarray(images[:COUNT]).reshape(COUNT, -1)
    x32 = pixels.astype(np.float32) / np.float32(255)
    x = x32.astype(np.float64)

    pca = PCA(n_components=N_COMPONENTS, svd_solver="full").fit(x)
    cumulative = np.cumsum(pca.explained_variance_ratio_)
    total_variance = float(np.var(x, axis=0, ddof=1).sum())
    # scikit-learn's ratio is explained_variance_ / this total.
    assert abs(pca.explained_variance_[0] / total_variance
               - pca.explained_variance_ratio_[0]) < 1e-12

    fixture = {
        "description": "scikit-learn PCA(n_components=128, svd_solver='full') of the first "
                       "`count` images of a bundle split, pixels float32(byte)/255, "
                       "fitted in float64; written by scripts/make_pca_fixtures.py",
        "sklearn_version": sklearn.__version__,
        "numpy_version": np.__version__,
        "bundle": name,
        "split": SPLIT,
        "count": COUNT,
        "d": int(x.shape[1]),
        "pixel_scale": "u8 / 255 as float32",
        "images_sha256": hashlib.sha256(pixels.tobytes()).hexdigest(),
        "n_components": N_COMPONENTS,
        "total_variance": total_variance,
        "first_explained_variance": float(pca.explained_variance_[0]),
        "cumulative_at": {str(k): float(cumulative[k - 1]) for k in CHECKPOINTS},
        "cumulative": [float(c) for c in cumulative],
        "first_component": [round(float(v), 7) for v in pca.components_[0]],
    }
    out.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"wrote {out}: cumulative at {CHECKPOINTS} = "
          f"{[round(fixture['cumulative_at'][str(k)], 6) for k in CHECKPOINTS]}")


if __name__ == "__main__":
    main()
