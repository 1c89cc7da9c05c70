"""Read one of replab's own dataset bundles (public/data/NAME: manifest.json plus raw-deflated
blobs, images [count, channels, size, size], labels [count]) into the arrays an official
MedMNIST npz holds (images [count, size, size] or [count, size, size, 3], labels [count, 1]),
checking every blob's SHA-256. So the references can run where only the repo travels.

    from bundle import load_bundle
    d = load_bundle("public/data/bloodmnist")   # d["train_images"], d["train_labels"], ...
"""
import hashlib
import json
import os
import zlib

import numpy as np


def _blob(folder, entry, expected_len):
    raw = open(os.path.join(folder, entry["file"]), "rb").read()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != entry["sha256"]:
        raise ValueError(f"{entry['file']}: SHA-256 {digest} is not the manifest's {entry['sha256']}")
    data = zlib.decompress(raw, -15)  # raw deflate, as the bundle writer stores it
    if len(data) != expected_len:
        raise ValueError(f"{entry['file']}: {len(data)} bytes after inflating, expected {expected_len}")
    return np.frombuffer(data, dtype=np.uint8)


def load_bundle(folder):
    m = json.load(open(os.path.join(folder, "manifest.json")))
    c, s = m["channels"], m["size"]
    out = {}
    for split in ("train", "val", "test"):
        e = m[split]
        n = e["count"]
        x = _blob(folder, e["images"], n * c * s * s).reshape(n, c, s, s)
        out[f"{split}_images"] = x[:, 0] if c == 1 else x.transpose(0, 2, 3, 1).copy()
        out[f"{split}_labels"] = _blob(folder, e["labels"], n).reshape(n, 1).astype(np.uint8)
    return out


def load_data(npz=None, bundle=None):
    """An npz file's arrays, or a bundle folder's when `bundle` is given."""
    return load_bundle(bundle) if bundle else dict(np.load(npz))
