"""open_clip's ViT-B/32 image tower in PyTorch, timed the way `replab clip-bench` times
replab's: random weights, random 224x224 inputs, one warm-up batch, then the median
of `--iters` batches, preprocessing excluded.

    python3 bench/clip_torch.py --threads 1 --batch 8 --iters 5
    cargo run --release -- clip-bench --backend cpu --batch 8 --iters 5

Prints one JSON line, like the Rust command, so the two can be put side by side.
"""
import argparse
import json
import time

import torch
import open_clip


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, _, _ = open_clip.create_model_and_transforms("ViT-B-32-quickgelu", pretrained=None)
    visual = model.visual.eval().to(args.device)
    x = torch.randn(args.batch, 3, 224, 224, device=args.device)

    def once():
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = visual(x)
        if args.device != "cpu":
            torch.cuda.synchronize()
        assert torch.isfinite(out).all()
        return time.perf_counter() - t0

    warm = once()
    times = sorted(once() for _ in range(args.iters))
    median = times[len(times) // 2]
    print(json.dumps({
        "backend": f"torch-{args.device}",
        "threads": torch.get_num_threads(),
        "batch": args.batch,
        "iters": args.iters,
        "warmup_seconds": warm,
        "median_batch_seconds": median,
        "images_per_second": args.batch / median,
    }))


if __name__ == "__main__":
    main()
