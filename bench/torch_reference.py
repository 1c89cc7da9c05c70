#!/usr/bin/env python3
"""The PyTorch reference for replab's supervised and SupCon chapters, on the CPU.

Reproduces the notebook: the same split (numpy default_rng(42)), ConvNet / ContrastiveConvNet,
AdamW lr 1e-4 wd 1e-5, batch 128, 10 epochs; then the converged probe (StandardScaler +
LogisticRegression(C=1, lbfgs)) on the encoder features of train B, scored on dev B and the test
images of the held-out classes, and the same probe on an untrained encoder.

    python3 bench/torch_reference.py --npz ../shared/medmnist/bloodmnist.npz --epochs 10 --seeds 0
    python3 bench/torch_reference.py --epochs 1 --threads 2     # timing only

Prints one JSON object per seed and chapter, including seconds per epoch (training part only),
so the ratio against `replab run` on the same machine can be computed.
"""
import argparse
import json
import math
import time
from collections import defaultdict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from bundle import load_data


class ConvBlock(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2))

    def forward(self, x):
        return self.block(x)


class Encoder(nn.Module):
    def __init__(self, c_in, latent=128):
        super().__init__()
        self.conv_blocks = nn.ModuleList([ConvBlock(c_in, 32), ConvBlock(32, 64), ConvBlock(64, 128)])
        self.encoder_head = nn.Sequential(nn.Flatten(), nn.Linear(1152, latent), nn.ReLU())

    def forward(self, x):
        for b in self.conv_blocks:
            x = b(x)
        return self.encoder_head(x)


class ConvNet(nn.Module):
    def __init__(self, c_in, n_classes, latent=128):
        super().__init__()
        self.enc = Encoder(c_in, latent)
        self.bn = nn.BatchNorm1d(latent, affine=False)
        self.classifier = nn.Linear(latent, n_classes)

    def forward(self, x):
        return self.classifier(F.normalize(self.bn(self.enc(x)), dim=1))


class ContrastiveConvNet(nn.Module):
    def __init__(self, c_in, latent=128):
        super().__init__()
        self.enc = Encoder(c_in, latent)
        self.projection_head = nn.Sequential(nn.Linear(latent, latent), nn.ReLU())
        self.bn = nn.BatchNorm1d(latent, affine=False)

    def forward(self, x):
        return F.normalize(self.bn(self.projection_head(self.enc(x))), dim=1)


def supcon_loss(z, y, temperature=0.07):
    b = z.size(0)
    sim = (z @ z.T) / temperature
    eye = torch.eye(b, dtype=torch.bool, device=z.device)
    sim = sim.masked_fill(eye, float("-inf"))
    same = (y.unsqueeze(0) == y.unsqueeze(1)) & ~eye
    n_pos = same.float().sum(dim=1).clamp(min=1)
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    per_anchor = -(torch.where(same, log_prob, torch.zeros_like(log_prob)).sum(dim=1)) / n_pos
    return per_anchor[same.any(dim=1)].mean()


def lab_split(train_labels, val_labels, n_classes, labeled=0.2, held=0.3, seed=42):
    labels = list(range(n_classes))
    rng = np.random.default_rng(seed=seed)
    held_out = rng.choice(labels, size=int(np.ceil(len(labels) * held)), replace=False)
    kept = [l for l in labels if l not in held_out]
    parts = []
    for arr in (train_labels, val_labels):
        by = defaultdict(list)
        for i, l in enumerate(arr):
            by[int(l)].append(i)
        lab, unl = defaultdict(list), defaultdict(list)
        for l, idx in by.items():
            n = int(np.ceil(len(idx) * labeled))
            rng.shuffle(idx)
            lab[l].extend(idx[:n])
            unl[l].extend(idx[n:])
        parts.append(([i for l in kept for i in lab[l]], [i for l in held_out for i in lab[l]]))
    return [int(h) for h in held_out], kept, parts


def to_tensor(images):
    x = torch.from_numpy(images).float() / 255.0
    return x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_epochs(model, loss_fn, x, y, epochs, bs, drop_last, gen):
    """Train on x, y (already on the model's device: the notebook keeps the data there)."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-5)
    secs = []
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=gen).to(x.device)
        sync(x.device)
        t0 = time.perf_counter()
        for s in range(0, len(x), bs):
            idx = perm[s:s + bs]
            if drop_last and len(idx) < bs:
                continue
            opt.zero_grad()
            loss = loss_fn(model, x[idx], y[idx])
            loss.backward()
            opt.step()
        sync(x.device)
        secs.append(time.perf_counter() - t0)
    return secs


@torch.no_grad()
def encode(enc, x):
    enc.eval()
    dev = next(enc.parameters()).device
    return torch.cat([enc(x[s:s + 512].to(dev)) for s in range(0, len(x), 512)]).cpu().numpy()


def probe(enc, xb, yb, xd, yd, xt, yt):
    sc = StandardScaler().fit(encode(enc, xb))
    clf = LogisticRegression(C=1.0, max_iter=1000).fit(sc.transform(encode(enc, xb)), yb)
    return clf.score(sc.transform(encode(enc, xd)), yd), clf.score(sc.transform(encode(enc, xt)), yt)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--npz", default="../shared/medmnist/bloodmnist.npz")
    ap.add_argument("--bundle", help="read a replab bundle folder (e.g. public/data/bloodmnist) instead of --npz")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--chapters", nargs="+", default=["supervised", "supcon"])
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    d = load_data(a.npz, a.bundle)
    tr_l, va_l, te_l = (d[f"{s}_labels"].reshape(-1) for s in ("train", "val", "test"))
    n_classes = int(max(tr_l.max(), va_l.max(), te_l.max()) + 1)
    held, kept, ((tr_a, tr_b), (dv_a, dv_b)) = lab_split(tr_l, va_l, n_classes)
    kmap = {l: i for i, l in enumerate(sorted(kept))}
    hmap = {l: i for i, l in enumerate(sorted(held))}
    xtr, xva, xte = (to_tensor(d[f"{s}_images"]) for s in ("train", "val", "test"))
    c = xtr.shape[1]
    ya = torch.tensor([kmap[int(l)] for l in tr_l[tr_a]]).to(dev)
    xa, xda = xtr[tr_a].to(dev), xva[dv_a].to(dev)
    yda = torch.tensor([kmap[int(l)] for l in va_l[dv_a]]).to(dev)
    xb, yb = xtr[tr_b], np.array([hmap[int(l)] for l in tr_l[tr_b]])
    xdb, ydb = xva[dv_b], np.array([hmap[int(l)] for l in va_l[dv_b]])
    te_b = [i for i, l in enumerate(te_l) if int(l) in hmap]
    xtb, ytb = xte[te_b], np.array([hmap[int(te_l[i])] for i in te_b])
    for seed in a.seeds:
        for chapter in a.chapters:
            torch.manual_seed(seed)
            gen = torch.Generator().manual_seed(seed)
            if chapter == "supervised":
                model = ConvNet(c, len(kept)).to(dev)
                secs = run_epochs(model, lambda m, x, y: F.cross_entropy(m(x), y), xa, ya, a.epochs, 128, False, gen)
                model.eval()
                with torch.no_grad():
                    acc = (model(xda).argmax(1) == yda).float().mean().item()
            else:
                model = ContrastiveConvNet(c).to(dev)
                secs = run_epochs(model, lambda m, x, y: supcon_loss(m(x), y), xa, ya, a.epochs, 128, True, gen)
                acc = None
            dev_b, test_b = probe(model.enc, xb, yb, xdb, ydb, xtb, ytb)
            torch.manual_seed(seed + 99)
            _, rand_b = probe(Encoder(c).to(dev), xb, yb, xdb, ydb, xtb, ytb)
            print(json.dumps({"chapter": chapter, "seed": seed, "epochs": a.epochs, "dev_a_accuracy": acc,
                              "converged_dev_b": dev_b, "converged_test_b": test_b, "random_init_test_b": rand_b,
                              "seconds_per_epoch": sum(secs) / len(secs), "threads": torch.get_num_threads(), "device": a.device,
                              "held_out_labels": held}), flush=True)


if __name__ == "__main__":
    main()
