#!/usr/bin/env python3
"""PyTorch reference values for replab's SimCLR / DINO parity test.

Writes tests/fixtures/ssl_parity.safetensors with:

  Augmentation kernels (torchvision.transforms.v2.functional, one image at a time, float32 in [0, 1]):
  - `rgb` [4,3,28,28]: the first 4 test images of bloodmnist.npz, as ToTensor makes them (/255, NCHW);
    `gray` [2,1,28,28]: the first 2 test images of organamnist.npz;
  - `crop_box` [4,4] (top, left, height, width), `crop_hflip` [4], `crop_vflip` [4]: `crop_rgb` is
    resized_crop(img, top, left, h, w, [28, 28], BILINEAR, antialias=True), then horizontal_flip where
    hflip is 1, then vertical_flip where vflip is 1; `crop_gray` the same with the first 2 rows on `gray`;
  - `brightness` [4] -> `brightness_rgb` (adjust_brightness);
  - `contrast` [4] -> `contrast_rgb` (adjust_contrast), `contrast_gray` (first 2 factors on `gray`);
  - `saturation` [4] -> `saturation_rgb` (adjust_saturation);
  - `hue` [4] -> `hue_rgb` (adjust_hue);
  - `jitter_order` [4,4] (0 brightness, 1 contrast, 2 saturation, 3 hue) and `jitter_factors` [4,4]
    (columns b, c, s, h) -> `jitter_rgb`: the four adjustments in that row's order with those factors,
    which is what v2.ColorJitter does once it has drawn its parameters;
  - `grayscale_rgb`: rgb_to_grayscale(img, num_output_channels=3);
  - `blur_sigma` [4] -> `blur_rgb`: gaussian_blur(img, kernel_size=[3, 3], sigma=[s, s]);
    `blur_gray` with the first 2 sigmas on `gray`.

  Losses (torch.manual_seed(0), drawn in this order: z1, z2, student, teacher, center):
  - `ntxent_z1`, `ntxent_z2` [8,16]: F.normalize(randn) rows; the notebook's nt_xent_loss at
    temperature 0.5 (`ntxent_loss_t05` [1]) and 0.1 (`ntxent_loss_t01` [1]); `ntxent_grad_z1_t05`
    [8,16], the gradient of the T=0.5 loss with respect to z1 (z1 as the leaf, after normalisation);
  - `dino_student` [6,8,32] (2 global views then 4 local ones, randn*0.2), `dino_teacher` [2,8,32]
    (randn*0.2), `dino_center` [1,32] (randn*0.5): the notebook's dino_loss_step with student
    temperature 0.1 and teacher temperature 0.04 (`dino_loss` [1]), its gradient with respect to
    the student outputs (`dino_grad_student` [6,8,32]), and the centre after the notebook's update,
    0.9*center + 0.1*mean of the concatenated teacher views (`dino_center_next` [1,32]).

  Heads:
  - EMA: DINOHead(16, 32, hidden_dim=24) as student (torch.manual_seed(1)) and teacher
    (torch.manual_seed(2)); `ema.student.<key>`, `ema.teacher.<key>` their state dicts (mlp.0.weight,
    mlp.0.bias, mlp.2.weight, mlp.2.bias, last_layer.weight) and `ema.after.<key>` the teacher after
    one notebook EMA update with momentum 0.996;
  - DINOHead(128, 256, hidden_dim=256) (torch.manual_seed(3), then `dino_head_x` [8,128] randn):
    weights under `dino_head.<key>`, `dino_head_out` [8,256] = head(x);
  - the SimCLR projection Linear(128,128) -> ReLU -> Linear(128,128) -> BatchNorm1d(128, affine=False)
    in train mode (batch statistics) -> F.normalize(dim=1) (torch.manual_seed(4), then
    `simclr_head_x` [16,128] = relu(randn)): weights under `simclr_head.<key>` (keys 0.weight,
    0.bias, 2.weight, 2.bias), `simclr_head_out` [16,128], and the BatchNorm's
    `simclr_head_running_mean` / `simclr_head_running_var` [128] after that one pass (momentum 0.1,
    unbiased variance; they start at 0 and 1).

To keep the file small, weight matrices of 1024 elements or more are stored as int8 with a
power-of-two scale, as in make_ae_fixtures.py (the models run with exactly those dequantised
values): tensor `NAME` of dtype I8 holds q, and metadata `scale_exp:NAME` holds k, with the weight
equal to q * 2**-k. Every other tensor is F32. The metadata also records the torch and torchvision
versions.

The loss functions and the DINO head are the notebook's; bench/ssl_reference.py imports them from
here. Run: python3 scripts/make_ssl_fixtures.py (needs torch, torchvision and numpy; CI never runs
it, the output is committed).
"""
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
import torchvision.transforms.v2.functional as TF
from torchvision.transforms.v2 import InterpolationMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_ae_fixtures import quantise_, save  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "ssl_parity.safetensors"
MEDMNIST = ROOT.parent / "shared" / "medmnist"


# ---------------------------------------------------------------- the notebook's definitions

def nt_xent_loss(z1, z2, temperature=0.5):
    """NT-Xent: the positive of z1[i] is z2[i] and vice versa; the other 2(B-1) views are negatives."""
    b = z1.shape[0]
    z = torch.cat([z1, z2], dim=0)
    sim = (z @ z.T) / temperature
    eye = torch.eye(2 * b, dtype=torch.bool, device=z.device)
    sim = sim.masked_fill(eye, float("-inf"))
    labels = torch.cat([torch.arange(b, 2 * b, device=z.device), torch.arange(0, b, device=z.device)])
    return F.cross_entropy(sim, labels)


class DINOHead(nn.Module):
    def __init__(self, in_dim, out_dim, hidden_dim=256):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(in_dim, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, hidden_dim),
            nn.GELU(),
        )
        self.last_layer = nn.Linear(hidden_dim, out_dim, bias=False)

    def forward(self, x):
        x = F.normalize(self.mlp(x), dim=-1)
        w = F.normalize(self.last_layer.weight, dim=-1)  # prototypes of unit length
        return F.linear(x, w)


def dino_loss_step(student_out, teacher_out, center, student_temp, teacher_temp):
    """Cross-entropy over every (student view, teacher view) pair except the same-index global pairs."""
    teacher_probs = [F.softmax((t - center) / teacher_temp, dim=-1).detach() for t in teacher_out]
    loss, n_pairs = 0.0, 0
    for s_idx, s_logits in enumerate(student_out):
        s_log_probs = F.log_softmax(s_logits / student_temp, dim=-1)
        for t_idx, t_probs in enumerate(teacher_probs):
            if s_idx == t_idx:
                continue
            loss += -(t_probs * s_log_probs).sum(dim=-1).mean()
            n_pairs += 1
    return loss / n_pairs


@torch.no_grad()
def ema_update_(student, teacher, momentum):
    """The notebook's teacher update, over parameters only (the teacher's buffers are left alone)."""
    for s_p, t_p in zip(student.parameters(), teacher.parameters()):
        t_p.data.mul_(momentum).add_((1 - momentum) * s_p.data)


@torch.no_grad()
def center_update_(center, teacher_out):
    center.mul_(0.9).add_(0.1 * torch.cat(teacher_out, dim=0).mean(0, keepdim=True))


# ---------------------------------------------------------------- fixtures

def images(name, n):
    x = torch.from_numpy(np.load(MEDMNIST / f"{name}.npz")["test_images"][:n]).float() / 255.0
    return x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2).contiguous()


def per_image(x, fn):
    return torch.stack([fn(x[i], i) for i in range(len(x))])


def crop(img, i, box, hflip, vflip):
    top, left, h, w = (int(v) for v in box[i].tolist())
    out = TF.resized_crop(img, top, left, h, w, [28, 28], interpolation=InterpolationMode.BILINEAR, antialias=True)
    if hflip[i] > 0:
        out = TF.horizontal_flip(out)
    if vflip[i] > 0:
        out = TF.vertical_flip(out)
    return out


JITTER_OPS = [TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue]


def jitter(img, order, factors):
    for op in order.tolist():
        img = JITTER_OPS[int(op)](img, factors[int(op)].item())
    return img


def augmentations(out):
    rgb, gray = images("bloodmnist", 4), images("organamnist", 2)
    out["rgb"], out["gray"] = rgb, gray

    box = torch.tensor([[0, 0, 28, 28], [3, 5, 20, 17], [10, 2, 14, 22], [7, 7, 9, 12]], dtype=torch.float32)
    hflip = torch.tensor([0.0, 1.0, 0.0, 1.0])
    vflip = torch.tensor([0.0, 0.0, 1.0, 1.0])
    out["crop_box"], out["crop_hflip"], out["crop_vflip"] = box, hflip, vflip
    out["crop_rgb"] = per_image(rgb, lambda im, i: crop(im, i, box, hflip, vflip))
    out["crop_gray"] = per_image(gray, lambda im, i: crop(im, i, box, hflip, vflip))

    factors = {
        "brightness": ([0.6, 0.85, 1.2, 1.4], TF.adjust_brightness),
        "contrast": ([0.6, 0.9, 1.15, 1.4], TF.adjust_contrast),
        "saturation": ([0.8, 0.95, 1.1, 1.2], TF.adjust_saturation),
        "hue": ([-0.1, -0.03, 0.05, 0.1], TF.adjust_hue),
    }
    for name, (vals, fn) in factors.items():
        f = torch.tensor(vals)
        out[name] = f
        # The kernels get the float32 value as a Python float, as v2's sampled factors are.
        out[f"{name}_rgb"] = per_image(rgb, lambda im, i: fn(im, f[i].item()))
    f = out["contrast"]
    out["contrast_gray"] = per_image(gray, lambda im, i: TF.adjust_contrast(im, f[i].item()))

    order = torch.tensor([[0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]], dtype=torch.float32)
    jf = torch.tensor(
        [[1.3, 0.7, 1.15, 0.08], [0.7, 1.35, 0.85, -0.09], [1.1, 1.2, 0.9, 0.04], [0.9, 0.8, 1.2, -0.06]]
    )
    out["jitter_order"], out["jitter_factors"] = order, jf
    out["jitter_rgb"] = per_image(rgb, lambda im, i: jitter(im, order[i], jf[i]))

    out["grayscale_rgb"] = per_image(rgb, lambda im, i: TF.rgb_to_grayscale(im, num_output_channels=3))

    sigma = torch.tensor([0.1, 0.5, 1.0, 2.0])
    out["blur_sigma"] = sigma

    def blur(im, i):
        s = sigma[i].item()
        return TF.gaussian_blur(im, kernel_size=[3, 3], sigma=[s, s])

    out["blur_rgb"] = per_image(rgb, blur)
    out["blur_gray"] = per_image(gray, blur)


def losses(out):
    torch.manual_seed(0)
    z1 = F.normalize(torch.randn(8, 16), dim=1)
    z2 = F.normalize(torch.randn(8, 16), dim=1)
    out["ntxent_z1"], out["ntxent_z2"] = z1, z2
    leaf = z1.clone().requires_grad_(True)
    loss = nt_xent_loss(leaf, z2, 0.5)
    loss.backward()
    out["ntxent_loss_t05"] = loss.detach().reshape(1)
    out["ntxent_grad_z1_t05"] = leaf.grad.clone()
    with torch.no_grad():
        out["ntxent_loss_t01"] = nt_xent_loss(z1, z2, 0.1).reshape(1)

    student = torch.randn(6, 8, 32) * 0.2
    teacher = torch.randn(2, 8, 32) * 0.2
    center = torch.randn(1, 32) * 0.5
    out["dino_student"], out["dino_teacher"], out["dino_center"] = student, teacher, center.clone()
    s_leaf = student.clone().requires_grad_(True)
    loss = dino_loss_step(list(s_leaf.unbind(0)), list(teacher.unbind(0)), center, 0.1, 0.04)
    loss.backward()
    out["dino_loss"] = loss.detach().reshape(1)
    out["dino_grad_student"] = s_leaf.grad.clone()
    c = center.clone()
    center_update_(c, list(teacher.unbind(0)))
    out["dino_center_next"] = c


def heads(out, meta):
    torch.manual_seed(1)
    student = DINOHead(16, 32, hidden_dim=24)
    torch.manual_seed(2)
    teacher = DINOHead(16, 32, hidden_dim=24)
    for k, t in student.state_dict().items():
        out[f"ema.student.{k}"] = t.clone()
    for k, t in teacher.state_dict().items():
        out[f"ema.teacher.{k}"] = t.clone()
    ema_update_(student, teacher, 0.996)
    for k, t in teacher.state_dict().items():
        out[f"ema.after.{k}"] = t.clone()

    torch.manual_seed(3)
    head = DINOHead(128, 256, hidden_dim=256)
    x = torch.randn(8, 128)
    quantise_(head, "dino_head", out, meta)
    out["dino_head_x"] = x
    with torch.no_grad():
        out["dino_head_out"] = head(x)

    torch.manual_seed(4)
    proj = nn.Sequential(nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 128))
    bn = nn.BatchNorm1d(128, affine=False)
    x = F.relu(torch.randn(16, 128))
    quantise_(proj, "simclr_head", out, meta)
    proj.train()
    bn.train()
    out["simclr_head_x"] = x
    with torch.no_grad():
        out["simclr_head_out"] = F.normalize(bn(proj(x)), dim=1)
    out["simclr_head_running_mean"] = bn.running_mean.clone()
    out["simclr_head_running_var"] = bn.running_var.clone()


def main():
    out, meta = {}, {}
    augmentations(out)
    losses(out)
    heads(out, meta)
    meta["torch"] = torch.__version__
    meta["torchvision"] = torchvision.__version__
    save(OUT, out, meta)
    for name in sorted(out):
        t = out[name]
        print(f"  {name:34s} {str(list(t.shape)):16s} {str(t.dtype):14s} max|v| {t.float().abs().max().item():.6g}")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes), torch {torch.__version__}, torchvision {torchvision.__version__}")


if __name__ == "__main__":
    main()
