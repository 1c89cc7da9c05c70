#!/usr/bin/env bash
# Seconds per training epoch, side by side on this machine: PyTorch (CPU), replab on the
# CPU backend (flex) and replab on native wgpu (lavapipe here, a GPU elsewhere).
# Not a test. Needs torch, numpy and scikit-learn for the reference, and ../shared/medmnist.
#   bash bench/epoch_bench.sh [EPOCHS]
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS=${1:-2}
source scripts/env.sh
cargo build --release --quiet
BIN="$CARGO_TARGET_DIR/release/replab"
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
[ -f /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] && export VK_ICD_FILENAMES=${VK_ICD_FILENAMES:-/usr/share/vulkan/icd.d/lvp_icd.x86_64.json}
out=$(mktemp -d)
torch=$(python3 bench/torch_reference.py --epochs "$EPOCHS" --chapters supervised | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["seconds_per_epoch"])')
"$BIN" run supervised --epochs "$EPOCHS" --backend cpu --out "$out/cpu" 2>/dev/null
"$BIN" run supervised --epochs "$EPOCHS" --backend wgpu --out "$out/wgpu" 2>/dev/null || echo "wgpu run failed"
python3 - "$out" "$torch" <<'PY'
import json, sys, os
out, torch = sys.argv[1], float(sys.argv[2])
print(f"pytorch cpu: {torch:.2f} s/epoch")
for b in ["cpu", "wgpu"]:
    p = os.path.join(out, b, "results.json")
    if os.path.exists(p):
        s = json.load(open(p))["chapters"]["supervised"]["seconds_per_epoch"]
        print(f"replab {b}: {s:.2f} s/epoch, ratio to pytorch {s / torch:.2f}")
PY
