#!/usr/bin/env python3
"""PyTorch reference values for replab's parity tests.

Writes tests/fixtures/torch_parity.safetensors with:
  - the weights and running statistics of the notebook's ConvNet (3 channels, 5 classes),
    with non-trivial BatchNorm parameters and statistics;
  - an input batch and the outputs at every feature point, in eval and in train mode,
    and the running statistics after one train-mode forward pass;
  - cross-entropy and SupCon inputs and losses.

The model and loss definitions follow the notebook. Run: python3 scripts/make_torch_fixtures.py
(needs torch and numpy; CI never runs it, the output is committed).
"""
import json
import struct
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "torch_parity.safetensors"


class ConvBlock(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(c_in, c_out, kernel_size=3, padding=1),
            nn.BatchNorm2d(c_out),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )

    def forward(self, x):
        return self.block(x)


class ConvNet(nn.Module):
    def __init__(self, input_channels, n_classes, latent_dim=128):
        super().__init__()
        self.latent_dim = latent_dim
        self.conv_blocks = nn.ModuleList([ConvBlock(input_channels, 32), ConvBlock(32, 64), ConvBlock(64, 128)])
        self.encoder_head = nn.Sequential(nn.Flatten(), nn.Linear(128 * 3 * 3, latent_dim), nn.ReLU())
        self.bn = nn.BatchNorm1d(latent_dim, affine=False)
        self.classifier = nn.Linear(latent_dim, n_classes)

    def features(self, x):
        for block in self.conv_blocks:
            x = block(x)
        flat = torch.flatten(x, 1)
        enc = self.encoder_head[2](self.encoder_head[1](flat))
        norm = F.normalize(self.bn(enc), dim=1)
        return flat, enc, norm, self.classifier(norm)


def supcon_loss(z, y, temperature=0.07):
    b = z.size(0)
    sim = (z @ z.T) / temperature
    eye = torch.eye(b, dtype=torch.bool, device=z.device)
    sim = sim.masked_fill(eye, float("-inf"))
    same = (y.unsqueeze(0) == y.unsqueeze(1)) & ~eye
    n_pos = same.float().sum(dim=1).clamp(min=1)
    log_denom = torch.logsumexp(sim, dim=1, keepdim=True)
    log_prob = sim - log_denom
    per_anchor = -(torch.where(same, log_prob, torch.zeros_like(log_prob)).sum(dim=1)) / n_pos
    return per_anchor[same.any(dim=1)].mean()


def save(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        a = np.ascontiguousarray(t.detach().cpu().numpy(), dtype="<f4")
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    path.write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    torch.manual_seed(1234)
    out = {}
    model = ConvNet(3, 5)
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                m.running_mean.copy_(torch.randn_like(m.running_mean) * 0.1)
                m.running_var.copy_(torch.rand_like(m.running_var) + 0.5)
                if m.affine:
                    m.weight.copy_(torch.rand_like(m.weight) + 0.5)
                    m.bias.copy_(torch.randn_like(m.bias) * 0.1)
    for k, v in model.state_dict().items():
        if not k.endswith("num_batches_tracked"):
            out[f"model.{k}"] = v.clone()  # a copy: train mode updates the buffers in place
    x = torch.rand(6, 3, 28, 28)
    out["input.x"] = x
    model.eval()
    with torch.no_grad():
        for key, t in zip(["flat", "encoded", "normalized", "logits"], model.features(x)):
            out[f"eval.{key}"] = t
    model.train()
    with torch.no_grad():
        for key, t in zip(["flat", "encoded", "normalized", "logits"], model.features(x)):
            out[f"train.{key}"] = t
    # Running statistics after that one train-mode pass (momentum 0.1, unbiased variance).
    out["train.after.block0.running_mean"] = model.conv_blocks[0].block[1].running_mean.clone()
    out["train.after.block0.running_var"] = model.conv_blocks[0].block[1].running_var.clone()
    out["train.after.bn.running_mean"] = model.bn.running_mean.clone()
    out["train.after.bn.running_var"] = model.bn.running_var.clone()

    logits = torch.randn(7, 4) * 3
    targets = torch.tensor([0, 3, 1, 1, 2, 0, 3])
    out["ce.logits"] = logits
    out["ce.targets"] = targets.float()
    out["ce.loss"] = F.cross_entropy(logits, targets).reshape(1)

    z = F.normalize(torch.randn(10, 8), dim=1)
    y = torch.tensor([0, 0, 1, 1, 1, 2, 3, 3, 4, 0])  # classes 2 and 4 have no positive
    out["supcon.z"] = z
    out["supcon.labels"] = y.float()
    for t in [0.07, 0.5]:
        out[f"supcon.loss.t{t}"] = supcon_loss(z, y, t).reshape(1)
    zg = z.clone().requires_grad_(True)
    supcon_loss(zg, y, 0.07).backward()
    out["supcon.grad.t0.07"] = zg.grad
    save(OUT, out)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes), torch {torch.__version__}")


if __name__ == "__main__":
    main()
