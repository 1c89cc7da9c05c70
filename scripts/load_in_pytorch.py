#!/usr/bin/env python3
"""Load a replab saved run into the notebook's own PyTorch ConvNet.

A saved run (from the page's saved-runs panel, or `replab run CHAPTER --save FILE`) is a
safetensors file whose model tensors are named by burn's module paths under `model.`.
This script maps the ConvNet encoder (and, for the supervised and SupCon chapters, the
BatchNorm and classifier after it) onto the notebook's `state_dict` names, loads them into
the notebook's architecture, and can write the features of the first N test images:

    python3 scripts/load_in_pytorch.py run.safetensors
    python3 scripts/load_in_pytorch.py run.safetensors --bundle public/data/bloodmnist \
        --images 64 --out features.safetensors

The mapping, from burn to PyTorch:
  encoder.blocks.{i}.conv.{weight,bias}      -> conv_blocks.{i}.block.0.{weight,bias}
  encoder.blocks.{i}.bn.{gamma,beta}         -> conv_blocks.{i}.block.1.{weight,bias}
  encoder.blocks.{i}.bn.running_{mean,var}   -> conv_blocks.{i}.block.1.running_{mean,var}
  encoder.fc.{weight,bias}                   -> encoder_head.1.{weight,bias} (weight transposed:
                                                burn keeps a linear layer as [in, out])
  bn.running_{mean,var}, classifier.*        -> the same names (classifier weight transposed)
DINO's encoder is under `student.` (or `teacher.`, with --teacher). Needs torch, numpy and
safetensors.
"""
import argparse
import json
import sys
import zlib
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_torch_fixtures import ConvNet  # noqa: E402  (the notebook's ConvNet)


def notebook_state(tensors, prefix):
    """The notebook's state_dict from burn-named tensors under `prefix`."""
    out = {}
    for name, t in tensors.items():
        if not name.startswith(prefix):
            continue
        rest = name[len(prefix):]
        parts = rest.split(".")
        if parts[0] == "encoder" and parts[1] == "blocks":
            i, layer, leaf = parts[2], parts[3], parts[4]
            if layer == "conv":
                out[f"conv_blocks.{i}.block.0.{leaf}"] = t
            else:
                leaf = {"gamma": "weight", "beta": "bias"}.get(leaf, leaf)
                out[f"conv_blocks.{i}.block.1.{leaf}"] = t
        elif rest == "encoder.fc.weight":
            out["encoder_head.1.weight"] = t.T.contiguous()
        elif rest == "encoder.fc.bias":
            out["encoder_head.1.bias"] = t
        elif rest in ("bn.running_mean", "bn.running_var", "classifier.bias"):
            out[rest] = t
        elif rest == "classifier.weight":
            out[rest] = t.T.contiguous()
    return out


def load(path, teacher=False):
    """The notebook ConvNet with the saved run's weights, in eval mode, and its metadata."""
    with safe_open(path, "pt") as f:
        meta = f.metadata() or {}
        if meta.get("replab.format") != "replab-saved-run/1":
            sys.exit(f"{path}: not a replab saved run (no replab.format in its metadata)")
        tensors = {k[len("model."):]: f.get_tensor(k) for k in f.keys() if k.startswith("model.")}
    prefix = next((p for p in ("", "student.", "teacher.") if f"{p}encoder.fc.weight" in tensors), None)
    if prefix is None:
        sys.exit(f"{path}: the {meta.get('replab.chapter')} chapter has no ConvNet encoder")
    if teacher and prefix == "student.":
        prefix = "teacher."
    state = notebook_state(tensors, prefix)
    channels = state["conv_blocks.0.block.0.weight"].shape[1]
    latent = state["encoder_head.1.weight"].shape[0]
    n_classes = state["classifier.weight"].shape[0] if "classifier.weight" in state else 2
    model = ConvNet(channels, n_classes, latent_dim=latent)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [m for m in missing if not m.endswith("num_batches_tracked")]
    if unexpected:
        sys.exit(f"{path}: tensors the notebook's ConvNet does not have: {unexpected}")
    return model.eval(), meta, missing


def test_images(bundle, n):
    """The first n test images of a replab bundle, as the lab feeds them: [n, c, 28, 28] in [0, 1]."""
    manifest = json.loads((Path(bundle) / "manifest.json").read_text())
    raw = zlib.decompress((Path(bundle) / manifest["test"]["images"]["file"]).read_bytes(), -15)
    c, s = manifest["channels"], manifest["size"]
    x = np.frombuffer(raw, dtype=np.uint8).reshape(-1, c, s, s)[:n]
    return torch.from_numpy(x.astype(np.float32) / 255.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("saved_run")
    ap.add_argument("--teacher", action="store_true", help="DINO: load the teacher, not the student")
    ap.add_argument("--bundle", default="public/data/bloodmnist", help="a replab bundle directory")
    ap.add_argument("--images", type=int, default=64, help="how many test images to embed")
    ap.add_argument("--out", help="write the features (flat, encoder, normalised) here")
    args = ap.parse_args()
    model, meta, missing = load(args.saved_run, args.teacher)
    print(f"loaded the {meta.get('replab.chapter')} chapter's ConvNet ({meta.get('replab.epochs')} epochs on "
          f"{meta.get('replab.dataset')}, parameters {meta.get('replab.params')})")
    if missing:
        print(f"not in the saved run (left as initialised): {', '.join(missing)}")
    if args.out:
        x = test_images(args.bundle, args.images)
        with torch.no_grad():
            flat, enc, norm, _ = model.features(x)
        feats = {"flat": flat, "encoder": enc}
        if "bn.running_mean" not in missing:
            feats["normalised"] = norm
        save_file({k: v.contiguous() for k, v in feats.items()}, args.out)
        print(f"wrote {', '.join(f'{k} {tuple(v.shape)}' for k, v in feats.items())} to {args.out}")


if __name__ == "__main__":
    main()
