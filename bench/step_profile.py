"""The same per-layer timings as examples/step_profile.rs, in PyTorch on the CPU: each
layer of the notebook's ConvNet at batch 128, forward alone and forward plus backward,
median of 7 repeats after a warm-up. One JSON line per layer.
    python bench/step_profile.py --threads 1
"""
import argparse, json, time
import torch
import torch.nn.functional as F

def timed(f, reps=7):
    f()
    t = []
    for _ in range(reps):
        s = time.perf_counter(); f(); t.append(time.perf_counter() - s)
    return sorted(t)[reps // 2]

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    batch = 128
    for name, cin, cout, size in [("conv1", 3, 32, 28), ("conv2", 32, 64, 14), ("conv3", 64, 128, 7)]:
        x = torch.rand(batch, cin, size, size, requires_grad=True)
        w = torch.rand(cout, cin, 3, 3, requires_grad=True)
        b = torch.rand(cout, requires_grad=True)
        fwd = timed(lambda: F.conv2d(x, w, b, padding=1))
        both = timed(lambda: F.conv2d(x, w, b, padding=1).sum().backward())
        print(json.dumps({"layer": name, "forward": fwd, "forward_backward": both, "backward": both - fwd}))
        y = torch.rand(batch, cout, size, size, requires_grad=True)
        pf = timed(lambda: F.max_pool2d(y, 2))
        pb = timed(lambda: F.max_pool2d(y, 2).sum().backward())
        print(json.dumps({"layer": "pool" + name[4:], "forward": pf, "forward_backward": pb, "backward": pb - pf}))
    x = torch.rand(batch, 1152, requires_grad=True)
    w = torch.rand(1152, 128, requires_grad=True)
    fwd = timed(lambda: x @ w)
    both = timed(lambda: (x @ w).sum().backward())
    print(json.dumps({"layer": "fc", "forward": fwd, "forward_backward": both, "backward": both - fwd}))

if __name__ == "__main__":
    main()
