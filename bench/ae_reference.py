#!/usr/bin/env python3
"""The PyTorch / scikit-learn reference for replab's PCA and autoencoder chapters, on the CPU.

Not a test: CI never runs it. It is a yardstick for `replab run` on the same machine.

Reproduces the notebook's unsupervised part on the lab's split (labelled ratio 0.2, held-out
ratio 0.3, numpy default_rng(42), taken from bench/torch_reference.py), images in [0, 1]:

* pca          sklearn PCA(n_components=128) fitted on the flattened unlabelled train images;
               fit seconds for svd_solver='randomized' (random_state=0) and 'full', cumulative
               explained variance at k = 1, 2, 8, 32, 128 (randomized fit, the notebook's default
               solver for this shape; the full fit's values are in ..._full), the number of
               components reaching 90 %, the dev reconstruction MSE with all 128 components, and
               the converged probe on PCA features and on raw pixels.
* linear-ae    LinearAutoencoder(d, 128): Linear(d, 128, bias=False), tied decoder W^T z; lr 1e-4.
* autoencoder  MLP autoencoder: AEBlock(Linear -> LayerNorm -> leaky_relu) 256, 256, Linear(256, 128);
               decoder AEBlock 256, 256, Linear(256, d); lr 1e-3.
* conv-ae      ConvAutoencoder(c, 128): strided conv 32/64/128 (28->14->7->4) + Linear(2048, 128) + ReLU;
               Linear(128, 2048) + ReLU, bilinear upsample + conv 128->64 (7x7), 64->32 (x2), 32->c (x2,
               no BN/ReLU); lr 1e-4.

The autoencoders train on the unlabelled train images (dev: the unlabelled dev images), batch 256,
shuffled, drop_last, MSELoss, AdamW weight decay 1e-5. Per chapter it prints seconds per epoch
(training part only), train loss per epoch (mean over the batches), dev loss per epoch and the
final dev reconstruction MSE (mean over every element of the unlabelled dev images, eval mode),
and the converged probe of torch_reference.py (StandardScaler + LogisticRegression(C=1, lbfgs))
on the code of train B, scored on dev B and the test images of the held-out classes, plus the
same probe on an untrained model of the same kind (torch.manual_seed(seed + 99)).

The unlabelled views are the same image sets as the notebook's train_unlabeled / dev_unlabeled
(every image not in a labelled part), taken in index order; the order only changes which images
share a shuffled batch.

    python3 bench/ae_reference.py --npz ../shared/medmnist/bloodmnist.npz --epochs 10 --seeds 0
    python3 bench/ae_reference.py --epochs 1 --threads 2          # timing only
    python3 bench/ae_reference.py --chapters pca,conv-ae --seeds 0,1,2

Prints one JSON object per line per (seed, chapter), keys mirroring replab's results.json.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import torch_reference as tr  # noqa: E402
from bundle import load_data  # noqa: E402

LATENT = 128
CHAPTERS = ["pca", "linear-ae", "autoencoder", "conv-ae"]
VARIANCE_AT = [1, 2, 8, 32, 128]


# ---------------------------------------------------------------- models (as in the notebook)

# The notebook's three autoencoders, as the parity fixtures define them (one definition).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from make_ae_fixtures import Autoencoder, ConvAutoencoder, LinearAutoencoder  # noqa: E402

AE = {  # chapter -> (constructor(c, d), lr)
    "linear-ae": (lambda c, d: LinearAutoencoder(d, LATENT), 1e-4),
    "autoencoder": (lambda c, d: Autoencoder(d, LATENT), 1e-3),
    "conv-ae": (lambda c, d: ConvAutoencoder(c, LATENT), 1e-4),
}


class Code(nn.Module):
    """An autoencoder's encode() as a module, so tr.probe (which calls .eval() and forward) can use it."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.encode(x)


class Flat(nn.Module):
    def forward(self, x):
        return x.reshape(x.shape[0], -1)


class PcaCode(nn.Module):
    def __init__(self, pca):
        super().__init__()
        self.pca = pca

    def forward(self, x):
        return torch.from_numpy(self.pca.transform(x.reshape(x.shape[0], -1).numpy()).astype(np.float32))


# ---------------------------------------------------------------- data

def load(npz, bundle=None):
    """The lab's views, as torch_reference.main builds them, plus the unlabelled train/dev images;
    from a replab bundle folder instead of the npz when `bundle` is given."""
    d = load_data(npz, bundle)
    tr_l, va_l, te_l = (d[f"{s}_labels"].reshape(-1) for s in ("train", "val", "test"))
    n_classes = int(max(tr_l.max(), va_l.max(), te_l.max()) + 1)
    held, kept, ((tr_a, tr_b), (dv_a, dv_b)) = tr.lab_split(tr_l, va_l, n_classes)
    hmap = {l: i for i, l in enumerate(sorted(held))}
    xtr, xva, xte = (tr.to_tensor(d[f"{s}_images"]) for s in ("train", "val", "test"))
    # Every image without a (kept or held-out) label is unlabelled: the notebook's train_all_unlabeled.
    tr_u = np.setdiff1d(np.arange(len(tr_l)), np.array(tr_a + tr_b))
    dv_u = np.setdiff1d(np.arange(len(va_l)), np.array(dv_a + dv_b))
    te_b = [i for i, l in enumerate(te_l) if int(l) in hmap]
    return {
        "held": held,
        "xu": xtr[torch.from_numpy(tr_u)], "xdu": xva[torch.from_numpy(dv_u)],
        "xb": xtr[tr_b], "yb": np.array([hmap[int(l)] for l in tr_l[tr_b]]),
        "xdb": xva[dv_b], "ydb": np.array([hmap[int(l)] for l in va_l[dv_b]]),
        "xtb": xte[te_b], "ytb": np.array([hmap[int(te_l[i])] for i in te_b]),
    }


# ---------------------------------------------------------------- training and measuring

@torch.no_grad()
def dev_mse(model, x, bs=256):
    """Mean squared error over every element of x, eval mode."""
    model.eval()
    sse = sum(F.mse_loss(model(x[s:s + bs]), x[s:s + bs], reduction="sum").item() for s in range(0, len(x), bs))
    return sse / x.numel()


def train_ae(model, x, xdev, lr, epochs, gen, bs=256):
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-5)
    secs, train_loss, dev_loss = [], [], []
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=gen)
        losses = []
        t0 = time.perf_counter()
        for s in range(0, len(x) - bs + 1, bs):  # drop_last
            xb = x[perm[s:s + bs]]
            opt.zero_grad()
            loss = F.mse_loss(model(xb), xb)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        secs.append(time.perf_counter() - t0)
        train_loss.append(float(np.mean(losses)))
        dev_loss.append(dev_mse(model, xdev))
    return secs, train_loss, dev_loss


def probe(enc, v):
    dev_b, test_b = tr.probe(enc, v["xb"], v["yb"], v["xdb"], v["ydb"], v["xtb"], v["ytb"])
    return {"converged_dev_b": dev_b, "converged_test_b": test_b}


def run_pca(v, seed):
    x = v["xu"].reshape(len(v["xu"]), -1).numpy()
    t0 = time.perf_counter()
    pca = PCA(n_components=LATENT, svd_solver="randomized", random_state=0).fit(x)
    t_rand = time.perf_counter() - t0
    t0 = time.perf_counter()
    full = PCA(n_components=LATENT, svd_solver="full").fit(x)
    t_full = time.perf_counter() - t0
    cum, cum_full = np.cumsum(pca.explained_variance_ratio_), np.cumsum(full.explained_variance_ratio_)
    reach = np.nonzero(cum >= 0.9)[0]
    xd = v["xdu"].reshape(len(v["xdu"]), -1).numpy()
    recon = pca.inverse_transform(pca.transform(xd))
    return {
        "fit_seconds_randomized": t_rand,
        "fit_seconds_full": t_full,
        "fit_images": len(x),
        "cumulative_explained_variance_at": {str(k): float(cum[k - 1]) for k in VARIANCE_AT},
        "cumulative_explained_variance_at_full": {str(k): float(cum_full[k - 1]) for k in VARIANCE_AT},
        "components_for_90": int(reach[0]) + 1 if len(reach) else None,
        "reconstruction_mse": float(np.mean((recon - xd) ** 2)),
        "probe_pca": probe(PcaCode(pca), v),
        "probe_pixels": probe(Flat(), v),
    }


def run_ae(chapter, v, seed, epochs):
    make, lr = AE[chapter]
    c, d = v["xu"].shape[1], v["xu"][0].numel()
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = make(c, d)
    secs, train_loss, dev_loss = train_ae(model, v["xu"], v["xdu"], lr, epochs, gen)
    out = {
        "seconds_per_epoch": sum(secs) / len(secs),
        "train_loss": train_loss,
        "dev_loss": dev_loss,
        "reconstruction_mse": dev_mse(model, v["xdu"]),
        "probe": probe(Code(model), v),
    }
    torch.manual_seed(seed + 99)
    out["probe"]["random_init_test_b"] = probe(Code(make(c, d)), v)["converged_test_b"]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--npz", default="../shared/medmnist/bloodmnist.npz")
    ap.add_argument("--bundle", help="read a replab bundle folder (e.g. public/data/bloodmnist) instead of --npz")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seeds", default="0", help="comma list, e.g. 0,1,2")
    ap.add_argument("--threads", type=int, default=0, help="torch and BLAS/OpenMP threads (0: library default)")
    ap.add_argument("--chapters", default=",".join(CHAPTERS), help="comma list of " + ",".join(CHAPTERS))
    a = ap.parse_args()
    chapters = [c.strip() for c in a.chapters.split(",") if c.strip()]
    bad = [c for c in chapters if c not in CHAPTERS]
    if bad:
        ap.error(f"unknown chapters {bad}; known: {CHAPTERS}")
    seeds = [int(s) for s in a.seeds.split(",") if s.strip()]
    if a.threads:
        torch.set_num_threads(a.threads)
    with threadpool_limits(limits=a.threads or None):
        v = load(a.npz, a.bundle)
        for seed in seeds:
            for chapter in chapters:
                row = {"chapter": chapter, "seed": seed, "threads": torch.get_num_threads(), "epochs": a.epochs}
                row.update(run_pca(v, seed) if chapter == "pca" else run_ae(chapter, v, seed, a.epochs))
                row["held_out_labels"] = v["held"]
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
