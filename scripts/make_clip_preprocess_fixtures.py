#!/usr/bin/env python3
"""Regenerate `tests/fixtures/clip_preprocess.json`, the reference for
`tests/clip_preprocess.rs` (`replab::model::clip::preprocess`).

Each case is an 8-bit image (real MedMNIST images and a few synthetic ones that
exercise non-square inputs, the centre crop's round-half-to-even offsets and
downscaling) run through open_clip's eval transform on a PIL image:
Resize(size, BICUBIC) -> CenterCrop(size) -> convert("RGB") -> ToTensor ->
Normalize(CLIP mean, std). For every case the fixture stores

* the input, planar (CHW) as a list of ints;
* `expected_u8_hex`: the resized and cropped 8-bit image that ToTensor sees,
  planar, as hex (one plane for grayscale inputs, whose RGB conversion copies
  it into all three channels; three planes otherwise). It is produced with PIL
  directly, and the script asserts that normalising it reproduces open_clip's
  output;
* `spots`: some (flat planar index, value) pairs of open_clip's normalised
  f32 output.

The full float output (3 x 224 x 224 per case) would make the file ~10 MB, so
only the 8-bit stage is stored in full.

Usage (from the repository root):

    pip install numpy pillow open_clip_torch   # open_clip pulls in torch
    python3 scripts/make_clip_preprocess_fixtures.py [--data-dir ../shared/medmnist]

No network access is needed (the model is built with `pretrained=None`). The
fixture is committed, so CI runs the Rust test without Python. Pillow 13 chose
to run the vertical pass first for some downscales; with older Pillow the
`tall_downscale_gray` case comes out differently.
"""

import argparse
import json
import logging
import sys
from pathlib import Path

try:
    import numpy as np
    import PIL
    from PIL import Image
    import open_clip
    from open_clip.transform import image_transform
    import torch
except ImportError as err:  # pragma: no cover - depends on the machine
    sys.exit(f"{err}: pip install numpy pillow open_clip_torch")

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURE = REPO_ROOT / "tests" / "fixtures" / "clip_preprocess.json"
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "medmnist"

MEAN = np.array(open_clip.OPENAI_DATASET_MEAN, dtype=np.float32)
STD = np.array(open_clip.OPENAI_DATASET_STD, dtype=np.float32)
SPOTS_PER_CASE = 20
MAX_FIXTURE_BYTES = 2_000_000


def synthetic(rng, height, width, channels):
    """Random 8-bit blocks with hard black/white edges and a noisy stripe, so
    that bicubic overshoot and clipping are exercised."""
    blocks = rng.integers(0, 256, size=(height // 4 + 1, width // 4 + 1, channels))
    img = np.kron(blocks, np.ones((4, 4, 1)))[:height, :width].astype(np.uint8)
    img[:, width // 3] = 255
    img[height // 2, :] = 0
    img[: height // 5] = rng.integers(0, 256, size=img[: height // 5].shape)
    return img


def to_pil(hwc):
    if hwc.shape[2] == 1:
        return Image.fromarray(hwc[:, :, 0], mode="L")
    return Image.fromarray(hwc, mode="RGB")


def torchvision_resize_and_crop(img, size):
    """torchvision's Resize(size) (short side) and CenterCrop(size) on a PIL
    image, spelled out with PIL calls."""
    w, h = img.size
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    if (new_w, new_h) != (w, h):
        img = img.resize((new_w, new_h), Image.BICUBIC)
    top = int(round((new_h - size) / 2.0))
    left = int(round((new_w - size) / 2.0))
    return img.crop((left, top, left + size, top + size))


def make_case(name, hwc, size, transform, rng):
    channels = hwc.shape[2]
    pil = to_pil(hwc)
    reference = transform(pil).numpy()
    assert reference.shape == (3, size, size) and reference.dtype == np.float32

    cropped = np.asarray(torchvision_resize_and_crop(pil, size).convert("RGB"))
    planar_u8 = np.ascontiguousarray(cropped.transpose(2, 0, 1))
    # ToTensor + Normalize in f32, as torch does them.
    normalised = (planar_u8.astype(np.float32) / np.float32(255) - MEAN[:, None, None]) / STD[
        :, None, None
    ]
    diff = float(np.abs(normalised - reference).max())
    assert diff <= 1e-6, f"{name}: PIL stage does not reproduce open_clip ({diff})"

    if channels == 1:
        assert (planar_u8[0] == planar_u8[1]).all() and (planar_u8[0] == planar_u8[2]).all()
        stored = planar_u8[:1]
    else:
        stored = planar_u8

    flat = reference.reshape(-1)
    picks = [0, flat.size - 1] + sorted(
        int(i) for i in rng.choice(flat.size, SPOTS_PER_CASE - 2, replace=False)
    )
    print(
        f"{name}: {channels}x{hwc.shape[0]}x{hwc.shape[1]} -> 3x{size}x{size}, "
        f"normalised PIL stage vs open_clip max |diff| = {diff:.3g}"
    )
    return {
        "name": name,
        "channels": channels,
        "height": int(hwc.shape[0]),
        "width": int(hwc.shape[1]),
        "size": size,
        "input": [int(v) for v in hwc.transpose(2, 0, 1).reshape(-1)],
        "expected_planes": int(stored.shape[0]),
        "expected_u8_hex": stored.tobytes().hex(),
        "spots": [[i, float(flat[i])] for i in picks],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args()

    logging.disable(logging.WARNING)  # "No pretrained weights loaded"
    _, _, clip_eval = open_clip.create_model_and_transforms(
        "ViT-B-32-quickgelu", pretrained=None
    )
    logging.disable(logging.NOTSET)

    def eval_transform(size):
        if size == 224:
            return clip_eval
        # open_clip's own eval transform at another size (same steps).
        return image_transform(size, is_train=False, mean=MEAN.tolist(), std=STD.tolist())

    blood = np.load(args.data_dir / "bloodmnist.npz")["train_images"]
    organa = np.load(args.data_dir / "organamnist.npz")["train_images"]
    rng = np.random.default_rng(20240607)

    images = [
        ("bloodmnist_train_0", blood[0], 224),
        ("bloodmnist_train_1000", blood[1000], 224),
        ("organamnist_train_0", organa[0][:, :, None], 224),
        ("organamnist_train_1000", organa[1000][:, :, None], 224),
        # 20 wide, 28 tall: resized to 224 x 313, crop top (313-224)/2 = 44.5 -> 44.
        ("tall_rgb_20x28", synthetic(rng, 28, 20, 3), 224),
        # 32 wide, 27 tall: resized to 265 x 224, crop left 20.5 -> 20.
        ("wide_gray_32x27", synthetic(rng, 27, 32, 1), 224),
        # Downscale 40x100 -> 32x80 (height shrinks > 2x more than width:
        # Pillow 13 runs the vertical pass first).
        ("tall_downscale_gray", synthetic(rng, 100, 40, 1), 32),
        # Downscale both axes, horizontal pass first.
        ("downscale_rgb_60x50", synthetic(rng, 50, 60, 3), 32),
    ]
    cases = [make_case(n, img, s, eval_transform(s), rng) for n, img, s in images]

    fixture = {
        "generator": "scripts/make_clip_preprocess_fixtures.py",
        "pillow": PIL.__version__,
        "open_clip": open_clip.__version__,
        "torch": torch.__version__,
        "cases": cases,
    }
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(fixture, separators=(",", ":"))
    assert len(text) <= MAX_FIXTURE_BYTES, f"fixture too large: {len(text)} bytes"
    FIXTURE.write_text(text)
    print(f"wrote {FIXTURE} ({len(text)} bytes, {len(cases)} cases)")


if __name__ == "__main__":
    main()
