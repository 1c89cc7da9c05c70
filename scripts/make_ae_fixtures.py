#!/usr/bin/env python3
"""PyTorch reference values for replab's autoencoder parity test (tests/ae_parity.rs).

Writes tests/fixtures/ae_parity.safetensors with:
  - bilinear upsampling with align_corners=False, to a fixed size (4x4 -> 7x7) and by a
    scale factor of 2 (7x7 -> 14x14);
  - LayerNorm with a non-trivial scale and shift, and leaky_relu, on a random input;
  - the notebook's ConvAutoencoder(3, 128) with fixed weights and non-trivial BatchNorm
    parameters and statistics: latent code and reconstruction in eval mode, and the
    reconstruction and updated running statistics after one train-mode pass;
  - the notebook's MLP Autoencoder (small widths, to keep the file small): latent code and
    reconstruction;
  - the tied-weight LinearAutoencoder, without and with an encoder bias: MSE loss and the
    gradients of the loss with respect to its parameters;
  - parameter counts of the notebook's full-size models, in the file's metadata.

To keep the file small, the larger weight matrices are stored as int8 with a power-of-two
scale (the models are run with exactly those dequantised values): tensor `NAME` of dtype I8
holds q, and metadata `scale_exp:NAME` holds k, with the weight equal to q * 2**-k.

The model definitions follow the notebook. Run: python3 scripts/make_ae_fixtures.py
(needs torch and numpy; CI never runs it, the output is committed).
"""
import json
import math
import struct
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "ae_parity.safetensors"


class LinearAutoencoder(nn.Module):
    def __init__(self, input_dim, latent_dim, bias=False):
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = nn.Linear(input_dim, latent_dim, bias=bias)

    def forward(self, x):
        return self.decode(self.encode(x)).reshape(x.shape)

    def encode(self, x):
        return self.encoder(x.reshape((x.shape[0], -1)))

    def decode(self, z):
        return (self.encoder.weight.t() @ z.t()).t()


class AEBlock(nn.Module):
    def __init__(self, input_dim, output_dim):
        super().__init__()
        self.dense = nn.Linear(input_dim, output_dim, bias=True)
        self.normalization = nn.LayerNorm(output_dim)

    def forward(self, x):
        return F.leaky_relu(self.normalization(self.dense(x)))


class Autoencoder(nn.Module):
    def __init__(self, input_dim, latent_dim=16, encoder_dims=(256, 256), decoder_dims=(256, 256)):
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder_layers = nn.ModuleList()
        d = input_dim
        for e in encoder_dims:
            self.encoder_layers.append(AEBlock(d, e))
            d = e
        self.inner_layer = nn.Linear(d, latent_dim, bias=True)
        self.decoder_layers = nn.ModuleList()
        d = latent_dim
        for e in decoder_dims:
            self.decoder_layers.append(AEBlock(d, e))
            d = e
        self.final_layer = nn.Linear(d, input_dim, bias=True)
        self.classifier = None

    def reset_head(self, n_classes):
        self.classifier = nn.Linear(self.latent_dim, n_classes)

    def encode(self, x):
        z = x.reshape((x.shape[0], -1))
        for layer in self.encoder_layers:
            z = layer(z)
        return self.inner_layer(z)

    def decode(self, z):
        for layer in self.decoder_layers:
            z = layer(z)
        return self.final_layer(z)

    def forward(self, x):
        return self.decode(self.encode(x)).reshape(x.shape)


class StridedConvBlock(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=2, padding=1),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
        )

    def forward(self, x):
        return self.block(x)


class UpsampleConvBlock(nn.Module):
    def __init__(self, in_channels, out_channels, target_size=None, activate=True):
        super().__init__()
        if target_size is not None:
            self.upsample = nn.Upsample(size=target_size, mode="bilinear", align_corners=False)
        else:
            self.upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        layers = [nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)]
        if activate:
            layers += [nn.BatchNorm2d(out_channels), nn.ReLU()]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return self.conv(self.upsample(x))


class ConvAutoencoder(nn.Module):
    def __init__(self, input_channels, latent_dim=128):
        super().__init__()
        self.latent_dim = latent_dim
        self.conv_blocks = nn.ModuleList(
            [StridedConvBlock(input_channels, 32), StridedConvBlock(32, 64), StridedConvBlock(64, 128)]
        )
        self.encoder_head = nn.Sequential(nn.Flatten(), nn.Linear(128 * 4 * 4, latent_dim), nn.ReLU())
        self.decoder_head = nn.Sequential(nn.Linear(latent_dim, 128 * 4 * 4), nn.ReLU())
        self.deconv_blocks = nn.ModuleList(
            [
                UpsampleConvBlock(128, 64, target_size=(7, 7)),
                UpsampleConvBlock(64, 32),
                UpsampleConvBlock(32, input_channels, activate=False),
            ]
        )
        self.classifier = None

    def reset_head(self, n_classes):
        self.classifier = nn.Linear(self.latent_dim, n_classes)

    def encode(self, x):
        for block in self.conv_blocks:
            x = block(x)
        return self.encoder_head(x)

    def decode(self, z):
        z = self.decoder_head(z).view(z.shape[0], 128, 4, 4)
        for block in self.deconv_blocks:
            z = block(z)
        return z

    def forward(self, x):
        return self.decode(self.encode(x))


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def quantise_(model, prefix, out, meta, min_numel=1024):
    """Round every large weight to q * 2**-k with int8 q, in place; record q and k.

    The other parameters and buffers are recorded as F32 (without num_batches_tracked)."""
    with torch.no_grad():
        params = dict(model.named_parameters())
        for name, t in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            key = f"{prefix}.{name}"
            if name in params and t.numel() >= min_numel:
                k = math.floor(math.log2(127.0 / t.abs().max().item()))
                q = torch.round(t * 2.0**k).clamp(-127, 127)
                params[name].copy_(q * 2.0**-k)
                out[key] = q.to(torch.int8)
                meta[f"scale_exp:{key}"] = str(k)
            else:
                out[key] = t.clone()  # a copy: train mode updates buffers in place


def perturb_norms_(model):
    """Non-trivial scale, shift and running statistics for every normalisation layer."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn_like(m.running_mean) * 0.1)
                m.running_var.copy_(torch.rand_like(m.running_var) + 0.5)
            if isinstance(m, (nn.BatchNorm2d, nn.LayerNorm)):
                m.weight.copy_(torch.rand_like(m.weight) + 0.5)
                m.bias.copy_(torch.randn_like(m.bias) * 0.1)


def save(path, tensors, metadata):
    """safetensors with F32 tensors first, then I8 ones (so every F32 is 4-byte aligned)."""
    header, blobs, off = {"__metadata__": dict(sorted(metadata.items()))}, [], 0
    order = sorted(tensors, key=lambda n: (tensors[n].dtype == torch.int8, n))
    for name in order:
        t = tensors[name].detach().cpu()
        if t.dtype == torch.int8:
            a, dtype = np.ascontiguousarray(t.numpy(), dtype="i1"), "I8"
        else:
            a, dtype = np.ascontiguousarray(t.numpy(), dtype="<f4"), "F32"
        b = a.tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    path.write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    torch.manual_seed(2024)
    out, meta = {}, {}
    x = torch.rand(4, 3, 28, 28)
    out["input.x"] = x

    # 1. Bilinear upsampling, align_corners=False.
    u = torch.randn(2, 3, 4, 4)
    out["upsample.size.in"] = u
    out["upsample.size.out"] = nn.Upsample(size=(7, 7), mode="bilinear", align_corners=False)(u)
    u = torch.randn(2, 3, 7, 7)
    out["upsample.scale.in"] = u
    out["upsample.scale.out"] = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)(u)

    # 2. LayerNorm and leaky_relu.
    ln = nn.LayerNorm(24)
    perturb_norms_(ln)
    v = torch.randn(5, 24) * 2.0 + 0.3
    out["layernorm.in"] = v
    out["layernorm.weight"] = ln.weight.detach().clone()
    out["layernorm.bias"] = ln.bias.detach().clone()
    with torch.no_grad():
        out["layernorm.out"] = ln(v)
        out["leaky_relu.out"] = F.leaky_relu(v)

    # 3. ConvAutoencoder(3, 128), eval then train mode.
    conv = ConvAutoencoder(3, 128)
    perturb_norms_(conv)
    quantise_(conv, "conv", out, meta)
    conv.eval()
    with torch.no_grad():
        z = conv.encode(x)
        out["conv.eval.latent"] = z
        out["conv.eval.recon"] = conv.decode(z)
    conv.train()
    with torch.no_grad():
        out["conv.train.recon"] = conv(x)
    # Running statistics after that pass (momentum 0.1, unbiased variance).
    out["conv.train.after.conv_blocks.0.running_var"] = conv.conv_blocks[0].block[1].running_var.clone()
    out["conv.train.after.deconv_blocks.1.running_mean"] = conv.deconv_blocks[1].conv[1].running_mean.clone()

    # 4. The MLP Autoencoder with small widths; the decoder mirrors the encoder.
    mlp = Autoencoder(3 * 28 * 28, latent_dim=16, encoder_dims=[48, 32], decoder_dims=[32, 48])
    perturb_norms_(mlp)
    quantise_(mlp, "mlp", out, meta)
    with torch.no_grad():
        z = mlp.encode(x)
        out["mlp.latent"] = z
        out["mlp.recon"] = mlp.decode(z).reshape(x.shape)

    # 5. The tied LinearAutoencoder: MSE loss and its gradients, without and with a bias.
    for name, bias in [("linear", False), ("linear_bias", True)]:
        lin = LinearAutoencoder(3 * 28 * 28, 8, bias=bias)
        if bias:
            with torch.no_grad():
                lin.encoder.bias.copy_(torch.randn(8))
        quantise_(lin, name, out, meta)
        loss = nn.MSELoss()(lin(x), x)
        loss.backward()
        out[f"{name}.loss"] = loss.detach().reshape(1)
        out[f"{name}.latent"] = lin.encode(x).detach()
        out[f"{name}.grad.encoder.weight"] = lin.encoder.weight.grad
        if bias:
            out[f"{name}.grad.encoder.bias"] = lin.encoder.bias.grad

    # Parameter counts of the full-size models, as the notebook builds them.
    for c in [1, 3]:
        d = c * 28 * 28
        meta[f"params.conv.c{c}"] = str(n_params(ConvAutoencoder(c, 128)))
        meta[f"params.mlp.c{c}"] = str(n_params(Autoencoder(d, 128)))
        meta[f"params.linear.c{c}"] = str(n_params(LinearAutoencoder(d, 128)))
        meta[f"params.linear_bias.c{c}"] = str(n_params(LinearAutoencoder(d, 128, bias=True)))
    conv_head = ConvAutoencoder(3, 128)
    conv_head.reset_head(5)
    meta["params.conv.c3.head5"] = str(n_params(conv_head))
    mlp_head = Autoencoder(3 * 28 * 28, 128)
    mlp_head.reset_head(5)
    meta["params.mlp.c3.head5"] = str(n_params(mlp_head))
    meta["torch"] = torch.__version__

    save(OUT, out, meta)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes), torch {torch.__version__}")


if __name__ == "__main__":
    main()
