#!/usr/bin/env bash
# Seconds per SimCLR and DINO epoch on this machine, augmentations included, side by
# side: the PyTorch reference (the notebook's loop, per-sample torchvision augmentation
# in a DataLoader with num_workers=0) with 1 and 2 threads, and replab (release) on the
# CPU backend and on native wgpu when a GPU adapter is found. Also replab's time spent
# augmenting (examples/augment_bench.rs) and its share of the epoch. Not a test.
# Needs torch, torchvision, numpy, scikit-learn and threadpoolctl for the reference.
#   PYTHON=/tmp/pyenv/bin/python bash bench/ssl_bench.sh [EPOCHS] [cpu|wgpu|both]
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS=${1:-1}
BACKENDS=${2:-cpu}
PY=${PYTHON:-python3}
source scripts/env.sh
cargo build --release --quiet
cargo build --release --quiet --example augment_bench
BIN="$CARGO_TARGET_DIR/release/replab"
AUG="$CARGO_TARGET_DIR/release/examples/augment_bench"
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
[ -f /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] && export VK_ICD_FILENAMES=${VK_ICD_FILENAMES:-/usr/share/vulkan/icd.d/lvp_icd.x86_64.json}
out=$(mktemp -d)
for t in 1 2; do
  "$PY" bench/ssl_reference.py --epochs "$EPOCHS" --threads "$t" --chapters simclr,dino > "$out/torch_$t.jsonl"
done
case "$BACKENDS" in both) list="cpu wgpu" ;; *) list="$BACKENDS" ;; esac
for b in $list; do
  for c in simclr dino; do
    "$BIN" run "$c" --epochs "$EPOCHS" --backend "$b" --out "$out/$b-$c" 2>/dev/null || echo "replab $c on $b failed"
    "$AUG" "$c" "$b" > "$out/aug-$b-$c.json" || true
  done
done
"$PY" - "$out" "$list" <<'PY'
import json, os, sys
out, backends = sys.argv[1], sys.argv[2].split()
torch = {}
for t in (1, 2):
    for line in open(os.path.join(out, f"torch_{t}.jsonl")):
        r = json.loads(line)
        torch[(r["chapter"], t)] = r
for c in ("simclr", "dino"):
    for t in (1, 2):
        r = torch[(c, t)]
        print(f"pytorch {c} {t} thread(s): {r['seconds_per_epoch']:.1f} s/epoch, "
              f"{r['augment_seconds_per_epoch']:.1f} s of it augmenting ({100 * r['augment_seconds_per_epoch'] / r['seconds_per_epoch']:.0f}%)")
    for b in backends:
        p = os.path.join(out, f"{b}-{c}", "results.json")
        if not os.path.exists(p):
            continue
        s = json.load(open(p))["chapters"][c]["seconds_per_epoch"]
        aug = json.load(open(os.path.join(out, f"aug-{b}-{c}.json")))["augment_seconds_per_epoch"]
        ratios = ", ".join(f"{s / torch[(c, t)]['seconds_per_epoch']:.2f}x pytorch@{t}" for t in (1, 2))
        print(f"replab {c} {b}: {s:.1f} s/epoch ({ratios}); augmenting {aug:.1f} s ({100 * aug / s:.0f}%)")
PY
