"""Reference outputs for replab's CLIP image encoder, from open_clip and transformers.

Real CLIP weights cannot be downloaded here, so exactness is shown with random
ones: a tower that runs through the same open_clip code as ViT-B/32, only
narrower and shallower, must give the same embedding in replab.

    python3 scripts/make_clip_fixtures.py            # tiny fixtures -> tests/fixtures/clip/
    python3 scripts/make_clip_fixtures.py --full DIR # full ViT-B-32-quickgelu, random, -> DIR
    python3 scripts/make_clip_fixtures.py --check DIR
        # convert DIR's full checkpoint with replab (f32 and int8), embed the PNGs with
        # `replab clip-embed`, and print the largest f32 difference and the smallest
        # int8 cosine against open_clip (set REPLAB to the command, default `cargo run --quiet --`)

The tiny mode writes, into tests/fixtures/clip/ (committed, so CI needs no torch):
  openclip_tiny.safetensors  a whole open_clip CLIP state dict (vision and a small
                             text tower, QuickGELU, width 64, 2 layers, patch 32, 224 px)
  hf_tiny.safetensors        a transformers CLIPVisionModelWithProjection (2 heads)
  images/*.png               28x28 MedMNIST images, as the app stores them
  reference.safetensors      open_clip's preprocessed pixels of those PNGs and the
                             embeddings of both towers
  tiny_int8.safetensors is made from openclip_tiny by `replab convert-clip`, not here.

The full mode writes a random ViT-B-32-quickgelu checkpoint, the PNGs, and the
reference embeddings, for the one-off check in docs/NOTES.md.
Needs: pip install torch open_clip_torch transformers safetensors pillow numpy
"""
import argparse
import os
import time

import numpy as np
import torch
import open_clip
from PIL import Image
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "medmnist")


def medmnist_pngs(out_dir):
    """Two real images from each of BloodMNIST (RGB) and OrganAMNIST (grayscale)."""
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for name, picks in (("bloodmnist", (0, 7)), ("organamnist", (0, 5))):
        with np.load(os.path.join(SHARED, f"{name}.npz")) as z:
            images = z["test_images"]
        for i in picks:
            img = images[i]
            mode = "RGB" if img.ndim == 3 else "L"
            path = os.path.join(out_dir, f"{name}_{i}.png")
            Image.fromarray(img, mode=mode).save(path)
            paths.append(path)
    return paths


def randomise(model, generator):
    """Perturb every parameter, LayerNorms included, so loading each one matters."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=generator) * 0.05)


def preprocess_all(preprocess, paths):
    return torch.stack([preprocess(Image.open(p)) for p in paths])


def tiny(out_dir):
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = open_clip.model.CLIP(
        embed_dim=32,
        vision_cfg=dict(image_size=224, layers=2, width=64, patch_size=32, head_width=64),
        text_cfg=dict(context_length=8, vocab_size=64, width=32, heads=1, layers=1),
        quick_gelu=True,
    ).eval()
    randomise(model, gen)
    _, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32-quickgelu", pretrained=None)
    paths = medmnist_pngs(os.path.join(out_dir, "images"))
    pixels = preprocess_all(preprocess, paths)
    with torch.no_grad():
        emb_openclip = model.encode_image(pixels)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              os.path.join(out_dir, "openclip_tiny.safetensors"))

    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection
    cfg = CLIPVisionConfig(hidden_size=64, intermediate_size=256, num_hidden_layers=2,
                           num_attention_heads=2, image_size=224, patch_size=32,
                           projection_dim=24, hidden_act="quick_gelu", layer_norm_eps=1e-5)
    hf = CLIPVisionModelWithProjection(cfg).eval()
    randomise(hf, gen)
    with torch.no_grad():
        emb_hf = hf(pixel_values=pixels).image_embeds
    save_file({k: v.contiguous() for k, v in hf.state_dict().items()},
              os.path.join(out_dir, "hf_tiny.safetensors"))

    save_file({
        "pixels": pixels.contiguous(),
        "embedding_openclip": emb_openclip.contiguous(),
        "embedding_hf": emb_hf.contiguous(),
    }, os.path.join(out_dir, "reference.safetensors"))
    with open(os.path.join(out_dir, "images", "order.txt"), "w") as f:
        f.write("\n".join(os.path.basename(p) for p in paths) + "\n")
    print("tiny fixtures written to", out_dir)


def full(out_dir):
    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32-quickgelu", pretrained=None)
    model.eval()
    paths = medmnist_pngs(os.path.join(out_dir, "images"))
    pixels = preprocess_all(preprocess, paths)
    with torch.no_grad():
        emb = model.encode_image(pixels)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              os.path.join(out_dir, "vit_b32_random.safetensors"))
    save_file({"pixels": pixels.contiguous(), "embedding_openclip": emb.contiguous()},
              os.path.join(out_dir, "reference.safetensors"))
    with open(os.path.join(out_dir, "images", "order.txt"), "w") as f:
        f.write("\n".join(os.path.basename(p) for p in paths) + "\n")
    print("full ViT-B-32-quickgelu written to", out_dir)


def check(out_dir):
    """Run replab's converter and encoder on the full tower and compare."""
    import json
    import shlex
    import subprocess
    from safetensors.torch import load_file

    replab = shlex.split(os.environ.get("REPLAB", "cargo run --quiet --"))
    ref = load_file(os.path.join(out_dir, "reference.safetensors"))["embedding_openclip"]
    names = open(os.path.join(out_dir, "images", "order.txt")).read().split()
    pngs = [os.path.join(out_dir, "images", n) for n in names]
    src = os.path.join(out_dir, "vit_b32_random.safetensors")
    report = {}
    for mode, flags in (("f32", ["--no-quantize"]), ("int8", [])):
        out = os.path.join(out_dir, f"converted_{mode}.safetensors")
        subprocess.run(replab + ["convert-clip", src, "--out", out] + flags, check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL)
        t0 = time.time()
        res = subprocess.run(["/usr/bin/time", "-v"] + replab + ["clip-embed", "--weights", out] + pngs,
                             check=True, cwd=ROOT, capture_output=True, text=True)
        got = torch.tensor([json.loads(line) for line in res.stdout.split("\n") if line.strip()])
        rss = [l for l in res.stderr.splitlines() if "Maximum resident" in l]
        cos = torch.nn.functional.cosine_similarity(got, ref, dim=1)
        report[mode] = {
            "file_bytes": os.path.getsize(out),
            "max_abs_diff": float((got - ref).abs().max()),
            "min_cosine": float(cos.min()),
            "embed_seconds": time.time() - t0,
            "host_peak_rss_kb": int(rss[0].split()[-1]) if rss else None,
        }
    print(json.dumps(report, indent=1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", metavar="DIR", help="build the full ViT-B/32 with random weights into DIR")
    ap.add_argument("--check", metavar="DIR", help="compare replab against the --full reference in DIR")
    args = ap.parse_args()
    if args.check:
        check(args.check)
    elif args.full:
        full(args.full)
    else:
        tiny(os.path.join(ROOT, "tests", "fixtures", "clip"))


if __name__ == "__main__":
    main()
