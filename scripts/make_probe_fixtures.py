#!/usr/bin/env python3
"""Build tests/fixtures/probe.json: reference linear probes from scikit-learn.

The Rust probe in src/analysis/probe.rs claims to minimise exactly the
objective of scikit-learn's LogisticRegression(C=1, solver="lbfgs") after
StandardScaler. This script makes a few small deterministic problems, runs
the scikit-learn protocol on them and records everything the Rust test
(tests/probe_fixture.rs) compares against: scaler statistics, coefficients,
intercepts, objective value, accuracies and predicted labels.

Features are stored exactly. Each value is an integer q in "x_int" and the
feature is float32(q) / float32(feature_divisor), a correctly rounded float32
division that Rust reproduces bit for bit. scikit-learn gets those float32
values widened to float64, which is also what the Rust probe computes with.

Usage (CPU only, takes a few seconds):
    python3 scripts/make_probe_fixtures.py [output_path]
"""

import json
import os
import subprocess
import sys


def _ensure_packages():
    try:
        import numpy  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError:
        subprocess.check_call(
            [sys.executable, "-m", "pip", "install", "--quiet", "numpy", "scikit-learn"]
        )


_ensure_packages()

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from scipy.special import expit, logsumexp  # noqa: E402  (scipy ships with sklearn)
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

DIVISOR = 10_000
C = 1.0
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO, "tests", "fixtures", "probe.json")


def quantize(x):
    """Round features to a 1e-4 grid; return (integers, exact float32 values)."""
    q = np.round(np.asarray(x, dtype=np.float64) * DIVISOR).astype(np.int64)
    assert np.abs(q).max() < 2**24, "integers must be exact in float32"
    x32 = q.astype(np.float32) / np.float32(DIVISOR)
    return q, x32


def blobs3(rng):
    """Three overlapping Gaussian blobs, d=16."""
    d, k = 16, 3
    centres = rng.normal(scale=0.45, size=(k, d))

    def draw(n):
        y = np.arange(n) % k
        rng.shuffle(y)
        return centres[y] + rng.normal(size=(n, d)), y

    return "blobs3", k, draw(300), draw(150)


def five_class(rng):
    """Five classes in d=128 with a low-rank signal, one zero-variance column
    and one nearly constant column."""
    d, k, rank = 128, 5, 10
    basis = rng.normal(size=(rank, d)) / np.sqrt(rank)
    centres = rng.normal(scale=0.2, size=(k, rank)) @ basis

    def draw(n):
        y = np.arange(n) % k
        rng.shuffle(y)
        x = centres[y] + rng.normal(scale=1.0, size=(n, d))
        x[:, 7] = 2.5  # zero variance: must get weight 0 and never a NaN
        # Nearly constant: 3 plus a few steps of 1e-4 (std ~1e-4 << mean).
        x[:, 40] = 3.0 + 1e-4 * rng.integers(0, 3, size=n)
        return x, y

    return "five_class", k, draw(800), draw(200)


def binary(rng):
    """Two overlapping classes, d=10 (scikit-learn fits the binomial loss)."""
    d = 10
    shift = rng.normal(scale=0.35, size=d)

    def draw(n):
        y = np.arange(n) % 2
        rng.shuffle(y)
        x = rng.normal(size=(n, d)) + np.where(y[:, None] == 1, shift, -shift)
        x[:, 3] *= 25.0  # a large-scale column, removed by standardising
        return x, y

    return "binary", 2, draw(400), draw(200)


def objective_and_grad(coef, intercept, z, y, k):
    """scikit-learn's objective (mean loss + ||W||^2 / (2 C n)) and the
    max-abs gradient of the equivalent sum form C*sum(loss) + ||W||^2 / 2."""
    n = z.shape[0]
    scores = z @ coef.T + intercept
    if k == 2:
        s = scores[:, 0]
        loss = np.logaddexp(0.0, s) - y * s
        r = (expit(s) - y)[:, None]
    else:
        lse = logsumexp(scores, axis=1)
        loss = lse - scores[np.arange(n), y]
        r = np.exp(scores - lse[:, None])
        r[np.arange(n), y] -= 1.0
    obj = loss.mean() + (coef**2).sum() / (2.0 * C * n)
    g_w = C * (r.T @ z) + coef
    g_b = C * r.sum(axis=0)
    return obj, max(np.abs(g_w).max(), np.abs(g_b).max())


def min_margin(clf, z):
    """Smallest gap between the best and second-best class score; predictions
    only make a stable fixture if no sample sits on a decision boundary."""
    s = clf.decision_function(z)
    if s.ndim == 1:
        return float(np.abs(s).min())
    top2 = np.sort(s, axis=1)[:, -2:]
    return float((top2[:, 1] - top2[:, 0]).min())


def build(name, k, train, test):
    (xtr, ytr), (xte, yte) = train, test
    qtr, xtr32 = quantize(xtr)
    qte, xte32 = quantize(xte)
    xtr64 = xtr32.astype(np.float64)
    xte64 = xte32.astype(np.float64)

    scaler = StandardScaler().fit(xtr64)
    ztr = scaler.transform(xtr64)
    zte = scaler.transform(xte64)
    clf = LogisticRegression(C=C, solver="lbfgs", max_iter=10_000, tol=1e-10)
    clf.fit(ztr, ytr)
    assert list(clf.classes_) == list(range(k))

    obj, grad = objective_and_grad(clf.coef_, clf.intercept_, ztr, ytr, k)
    margin = min(min_margin(clf, ztr), min_margin(clf, zte))
    assert margin > 1e-4, f"{name}: a sample is within {margin} of a tie"
    train_pred = clf.predict(ztr)
    test_pred = clf.predict(zte)
    print(
        f"{name}: n_train={len(ytr)} n_test={len(yte)} d={xtr.shape[1]} k={k} "
        f"iters={int(clf.n_iter_[0])} objective={obj:.12f} "
        f"sum-form |grad|max={grad:.2e} min margin={margin:.2e} "
        f"train acc={np.mean(train_pred == ytr):.4f} "
        f"test acc={np.mean(test_pred == yte):.4f}"
    )
    return {
        "name": name,
        "n_classes": k,
        "d": int(xtr.shape[1]),
        "c": C,
        "train": {"x_int": qtr.ravel().tolist(), "y": ytr.tolist()},
        "test": {"x_int": qte.ravel().tolist(), "y": yte.tolist()},
        "scaler_mean": scaler.mean_.tolist(),
        "scaler_scale": scaler.scale_.tolist(),
        "coef": clf.coef_.tolist(),
        "intercept": clf.intercept_.tolist(),
        "objective": float(obj),
        "n_iter": int(clf.n_iter_[0]),
        "grad_max_abs_sum_form": float(grad),
        "min_margin": margin,
        "train_accuracy": float(clf.score(ztr, ytr)),
        "test_accuracy": float(clf.score(zte, yte)),
        "train_pred": train_pred.tolist(),
        "test_pred": test_pred.tolist(),
    }


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_OUT
    problems = [
        build(*blobs3(np.random.default_rng(20240601))),
        build(*five_class(np.random.default_rng(20240602))),
        build(*binary(np.random.default_rng(20240603))),
    ]
    fixture = {
        "generator": "scripts/make_probe_fixtures.py",
        "sklearn_version": sklearn.__version__,
        "numpy_version": np.__version__,
        "feature_divisor": DIVISOR,
        "problems": problems,
    }
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(fixture, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {out} ({os.path.getsize(out) / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
