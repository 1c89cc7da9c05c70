#!/usr/bin/env python3
"""The PyTorch reference for replab's SimCLR and DINO chapters, on the CPU.

Not a test: CI never runs it. It is a yardstick for `replab run` on the same machine.

Reproduces the notebook's self-supervised part on the lab's split (labelled ratio 0.2, held-out
ratio 0.3, numpy default_rng(42), from bench/torch_reference.py), images in [0, 1], trained on the
unlabelled train images (dev: the unlabelled dev images, see ae_reference.load):

* simclr  SimCLRConvNet(c, 128, 128): ConvBlock 32/64/128 (conv 3x3, BatchNorm, ReLU, max-pool 2)
          + Linear(1152, 128) + ReLU; projection Linear -> ReLU -> Linear, BatchNorm1d(affine=False),
          F.normalize. Two views per image from simclr_augment (RandomResizedCrop(28, scale
          (0.5, 1)), horizontal and vertical flips, ColorJitter(0.4, 0.4, 0.2, 0.1), RandomGrayscale
          (0.2), GaussianBlur(3)); NT-Xent at --temperature, each view through the model on its own.
* dino    DINOConvNet(c, 128, 256): the same encoder with GELU, DINOHead(128, 256, hidden 256).
          Two global views (scale (0.4, 1), with blur) and four local ones (scale (0.15, 0.4), no
          blur); the teacher (a deep copy of the student, eval mode, no gradients) sees the global
          views, the student all six in one pass; dino_loss_step with student temperature 0.1,
          teacher temperature 0.04; gradient norm clipped to 3.0; teacher EMA of the student's
          parameters with --momentum after every step; centre 0.9 * centre + 0.1 * batch mean.

Training as in the notebook: AdamW lr 1e-4, weight decay 1e-5, batch 256, shuffled, drop_last,
DataLoader(num_workers=0) with the augmentation in the dataset's __getitem__ (one sample at a
time, torch's global generator). The dev loss is computed as the notebook does: eval mode,
freshly augmented views of the unlabelled dev images, not shuffled, drop_last, the centre not
updated.

Per chapter it prints one JSON line with
  seconds_per_epoch            wall time of the training loop (batch fetching included; dev loss,
                               probes excluded), mean over epochs;
  augment_seconds_per_epoch    the part of it spent fetching batches from the DataLoader, i.e.
                               augmenting (step_seconds_per_epoch: the rest);
  train_loss[], dev_loss[]     per epoch, the mean over batches. (The notebook's live plot divides
                               the sum of batch means by the number of images, i.e. shows these
                               values / 256.)
  probe                        torch_reference's converged probe (StandardScaler +
                               LogisticRegression) on model.encode of train B, scored on dev B and
                               the held-out classes' test images, plus random_init_test_b for a
                               fresh model (torch.manual_seed(seed + 99));
  teacher_probe                (dino) the same probe on the teacher's encoder.

    python3 bench/ssl_reference.py --npz ../shared/medmnist/bloodmnist.npz --epochs 10 --seeds 0
    python3 bench/ssl_reference.py --epochs 1 --limit 512 --threads 1        # quick check
    python3 bench/ssl_reference.py --chapters dino --momentum 0.9 --seeds 0,1,2
"""
import argparse
import copy
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "scripts"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torchvision.transforms.v2 as transforms  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

import torch_reference as tr  # noqa: E402
from ae_reference import Code, load  # noqa: E402
from make_ssl_fixtures import DINOHead, center_update_, dino_loss_step, ema_update_, nt_xent_loss  # noqa: E402

CHAPTERS = ["simclr", "dino"]
BATCH = 256
LATENT = 128
DINO_OUT = 256
ConvBlock = tr.ConvBlock  # the notebook's ConvBlock (conv, BatchNorm2d, ReLU, MaxPool2d(2))


# ---------------------------------------------------------------- models (as in the notebook)

class SimCLRConvNet(nn.Module):
    def __init__(self, input_channels, latent_dim=128, projection_dim=128):
        super().__init__()
        self.latent_dim = latent_dim
        self.conv_blocks = nn.ModuleList([ConvBlock(input_channels, 32), ConvBlock(32, 64), ConvBlock(64, 128)])
        self.encoder_head = nn.Sequential(nn.Flatten(), nn.Linear(128 * 3 * 3, latent_dim), nn.ReLU())
        self.projection_head = nn.Sequential(
            nn.Linear(latent_dim, latent_dim), nn.ReLU(), nn.Linear(latent_dim, projection_dim)
        )
        self.bn = nn.BatchNorm1d(projection_dim, affine=False)

    def encode(self, x):
        for block in self.conv_blocks:
            x = block(x)
        return self.encoder_head(x)

    def forward(self, x):
        return F.normalize(self.bn(self.projection_head(self.encode(x))), dim=1)


class DINOConvNet(nn.Module):
    def __init__(self, input_channels, latent_dim=128, out_dim=256):
        super().__init__()
        self.latent_dim = latent_dim
        self.conv_blocks = nn.ModuleList([ConvBlock(input_channels, 32), ConvBlock(32, 64), ConvBlock(64, 128)])
        self.encoder_head = nn.Sequential(nn.Flatten(), nn.Linear(128 * 3 * 3, latent_dim), nn.GELU())
        self.head = DINOHead(latent_dim, out_dim)

    def encode(self, x):
        for block in self.conv_blocks:
            x = block(x)
        return self.encoder_head(x)

    def forward(self, x):
        return self.head(self.encode(x))


# ---------------------------------------------------------------- augmentation (as in the notebook)

simclr_augment = transforms.Compose([
    transforms.RandomResizedCrop(28, scale=(0.5, 1.0), antialias=True),
    transforms.RandomHorizontalFlip(),
    transforms.RandomVerticalFlip(),
    transforms.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1),
    transforms.RandomGrayscale(p=0.2),
    transforms.GaussianBlur(kernel_size=3),
])

dino_global_augment = transforms.Compose([
    transforms.RandomResizedCrop(28, scale=(0.4, 1.0), antialias=True),
    transforms.RandomHorizontalFlip(),
    transforms.RandomVerticalFlip(),
    transforms.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1),
    transforms.RandomGrayscale(p=0.2),
    transforms.GaussianBlur(kernel_size=3),
])

dino_local_augment = transforms.Compose([
    transforms.RandomResizedCrop(28, scale=(0.15, 0.4), antialias=True),
    transforms.RandomHorizontalFlip(),
    transforms.RandomVerticalFlip(),
    transforms.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1),
    transforms.RandomGrayscale(p=0.2),
])


class SimCLRDataset(Dataset):
    """Two independently augmented views of each image."""

    def __init__(self, images, augment):
        self.images, self.augment = images, augment

    def __len__(self):
        return len(self.images)

    def __getitem__(self, idx):
        x = self.images[idx]
        return self.augment(x), self.augment(x)


class DINODataset(Dataset):
    """Two global views and n_local local views of each image."""

    def __init__(self, images, global_augment, local_augment, n_local_crops=4):
        self.images = images
        self.global_augment, self.local_augment = global_augment, local_augment
        self.n_local_crops = n_local_crops

    def __len__(self):
        return len(self.images)

    def __getitem__(self, idx):
        x = self.images[idx]
        global_views = torch.stack([self.global_augment(x) for _ in range(2)])
        local_views = torch.stack([self.local_augment(x) for _ in range(self.n_local_crops)])
        return global_views, local_views


class Timed:
    """Iterates a DataLoader, adding the time spent waiting for each batch to .seconds."""

    def __init__(self, loader):
        self.loader, self.seconds = loader, 0.0

    def __iter__(self):
        it = iter(self.loader)
        while True:
            t0 = time.perf_counter()
            try:
                batch = next(it)
            except StopIteration:
                self.seconds += time.perf_counter() - t0
                return
            self.seconds += time.perf_counter() - t0
            yield batch


def loaders(dataset_cls, v, seed, *aug):
    gen = torch.Generator().manual_seed(seed)
    train = DataLoader(dataset_cls(v["xu"], *aug), batch_size=BATCH, shuffle=True, drop_last=True,
                       num_workers=0, generator=gen)
    dev = DataLoader(dataset_cls(v["xdu"], *aug), batch_size=BATCH, shuffle=False, drop_last=True, num_workers=0)
    return train, dev


def mean(xs):
    return float(np.mean(xs)) if xs else float("nan")


# ---------------------------------------------------------------- training (as in the notebook)

def train_simclr(model, train_loader, dev_loader, temperature, epochs):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-5)
    secs, aug, train_loss, dev_loss = [], [], [], []
    for _ in range(epochs):
        model.train()
        timed, losses = Timed(train_loader), []
        t0 = time.perf_counter()
        for view1, view2 in timed:
            opt.zero_grad()
            loss = nt_xent_loss(model(view1), model(view2), temperature)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        secs.append(time.perf_counter() - t0)
        aug.append(timed.seconds)
        train_loss.append(mean(losses))
        model.eval()
        with torch.no_grad():
            dev_loss.append(mean([nt_xent_loss(model(a), model(b), temperature).item() for a, b in dev_loader]))
    return secs, aug, train_loss, dev_loss


def dino_views(global_views, local_views):
    n_global, n_local = global_views.shape[1], local_views.shape[1]
    teacher_in = [global_views[:, i] for i in range(n_global)]
    student_in = torch.cat(teacher_in + [local_views[:, j] for j in range(n_local)], dim=0)
    return teacher_in, student_in, n_global + n_local


def train_dino(student, teacher, train_loader, dev_loader, momentum, epochs, student_temp=0.1, teacher_temp=0.04):
    opt = torch.optim.AdamW(student.parameters(), lr=1e-4, weight_decay=1e-5)
    for p in teacher.parameters():
        p.requires_grad = False
    center = torch.zeros(1, DINO_OUT)
    secs, aug, train_loss, dev_loss = [], [], [], []
    for _ in range(epochs):
        student.train()
        teacher.eval()
        timed, losses = Timed(train_loader), []
        t0 = time.perf_counter()
        for global_views, local_views in timed:
            opt.zero_grad()
            teacher_in, student_in, n_views = dino_views(global_views, local_views)
            with torch.no_grad():
                teacher_out = [teacher(g) for g in teacher_in]
            student_out = student(student_in).chunk(n_views)
            loss = dino_loss_step(student_out, teacher_out, center, student_temp, teacher_temp)
            loss.backward()
            nn.utils.clip_grad_norm_(student.parameters(), 3.0)
            opt.step()
            ema_update_(student, teacher, momentum)
            center_update_(center, teacher_out)
            losses.append(loss.item())
        secs.append(time.perf_counter() - t0)
        aug.append(timed.seconds)
        train_loss.append(mean(losses))
        student.eval()
        with torch.no_grad():
            dl = []
            for global_views, local_views in dev_loader:
                teacher_in, student_in, n_views = dino_views(global_views, local_views)
                teacher_out = [teacher(g) for g in teacher_in]
                student_out = student(student_in).chunk(n_views)
                dl.append(dino_loss_step(student_out, teacher_out, center, student_temp, teacher_temp).item())
            dev_loss.append(mean(dl))
    return secs, aug, train_loss, dev_loss


def probe(model, v):
    dev_b, test_b = tr.probe(Code(model), v["xb"], v["yb"], v["xdb"], v["ydb"], v["xtb"], v["ytb"])
    return {"converged_dev_b": dev_b, "converged_test_b": test_b}


def run(chapter, v, seed, a):
    c = v["xu"].shape[1]
    torch.manual_seed(seed)
    if chapter == "simclr":
        model = SimCLRConvNet(c, LATENT, LATENT)
        train, dev = loaders(SimCLRDataset, v, seed, simclr_augment)
        secs, aug, train_loss, dev_loss = train_simclr(model, train, dev, a.temperature, a.epochs)
        make = lambda: SimCLRConvNet(c, LATENT, LATENT)  # noqa: E731
    else:
        model = DINOConvNet(c, LATENT, DINO_OUT)
        teacher = copy.deepcopy(model)
        train, dev = loaders(DINODataset, v, seed, dino_global_augment, dino_local_augment)
        secs, aug, train_loss, dev_loss = train_dino(model, teacher, train, dev, a.momentum, a.epochs)
        make = lambda: DINOConvNet(c, LATENT, DINO_OUT)  # noqa: E731
    n = max(len(secs), 1)
    out = {
        "seconds_per_epoch": sum(secs) / n,
        "augment_seconds_per_epoch": sum(aug) / n,
        "step_seconds_per_epoch": (sum(secs) - sum(aug)) / n,
        "train_loss": train_loss,
        "dev_loss": dev_loss,
        "probe": probe(model, v),
    }
    if chapter == "dino":
        out["teacher_probe"] = probe(teacher, v)
    torch.manual_seed(seed + 99)
    out["probe"]["random_init_test_b"] = probe(make(), v)["converged_test_b"]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--npz", default="../shared/medmnist/bloodmnist.npz")
    ap.add_argument("--bundle", help="read a replab bundle folder (e.g. public/data/bloodmnist) instead of --npz")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seeds", default="0", help="comma list, e.g. 0,1,2")
    ap.add_argument("--threads", type=int, default=0, help="torch and BLAS/OpenMP threads (0: library default)")
    ap.add_argument("--chapters", default=",".join(CHAPTERS), help="comma list of " + ",".join(CHAPTERS))
    ap.add_argument("--limit", type=int, default=0, help="use only the first N unlabelled train and dev images")
    ap.add_argument("--temperature", type=float, default=0.5, help="SimCLR NT-Xent temperature")
    ap.add_argument("--momentum", type=float, default=0.996, help="DINO teacher EMA momentum")
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
        if a.limit:
            v["xu"], v["xdu"] = v["xu"][:a.limit], v["xdu"][:a.limit]
        if len(v["xu"]) < BATCH or len(v["xdu"]) < BATCH:
            ap.error(f"need at least {BATCH} unlabelled train and dev images (drop_last), "
                     f"have {len(v['xu'])} and {len(v['xdu'])}")
        for seed in seeds:
            for chapter in chapters:
                row = {"chapter": chapter, "seed": seed, "threads": torch.get_num_threads(), "epochs": a.epochs,
                       "train_images": len(v["xu"]), "dev_images": len(v["xdu"])}
                if chapter == "simclr":
                    row["temperature"] = a.temperature
                else:
                    row["momentum"] = a.momentum
                row.update(run(chapter, v, seed, a))
                row["held_out_labels"] = v["held"]
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
