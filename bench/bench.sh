#!/usr/bin/env bash
# The benchmark: seconds per training epoch of every training chapter, replab (release
# build) against the notebook's PyTorch loop on this machine, with 1 thread against 1
# and 2 against 2 (replab's threads through RAYON_NUM_THREADS, PyTorch's through
# torch.set_num_threads and the BLAS/OpenMP variables), and replab on native wgpu when
# an adapter is found. Writes a markdown table and bench-results.json. Not a test.
# Needs torch, torchvision, numpy, scikit-learn and threadpoolctl for the references.
#   PYTHON=/tmp/pyenv/bin/python bash bench/bench.sh [EPOCHS] [CHAPTERS...]
# e.g. bash bench/bench.sh 1 supervised supcon   (default: every training chapter)
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS=${1:-1}
shift || true
CHAPTERS=${*:-supervised supcon linear-ae autoencoder conv-ae simclr dino}
PY=${PYTHON:-$( [ -x /tmp/pyenv/bin/python ] && echo /tmp/pyenv/bin/python || echo python3 )}
source scripts/env.sh
cargo build --release --quiet
BIN="$CARGO_TARGET_DIR/release/replab"
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
[ -f /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] && export VK_ICD_FILENAMES=${VK_ICD_FILENAMES:-/usr/share/vulkan/icd.d/lvp_icd.x86_64.json}
out=${BENCH_OUT:-$(mktemp -d)}
mkdir -p "$out"
reference() { # chapter threads -> one JSON line
  local c=$1 t=$2 script
  case "$c" in
    supervised|supcon) script="bench/torch_reference.py --chapters $c" ;;
    linear-ae|autoencoder|conv-ae) script="bench/ae_reference.py --chapters $c" ;;
    simclr|dino) script="bench/ssl_reference.py --chapters $c" ;;
    *) echo "no reference for $c" >&2; return 1 ;;
  esac
  OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t MKL_NUM_THREADS=$t \
    "$PY" $script --epochs "$EPOCHS" --threads "$t" | tail -n 1
}
for c in $CHAPTERS; do
  for t in 1 2; do
    echo "== $c, $t thread(s)" >&2
    reference "$c" "$t" > "$out/torch-$c-$t.json" || echo '{}' > "$out/torch-$c-$t.json"
    RAYON_NUM_THREADS=$t "$BIN" run "$c" --epochs "$EPOCHS" --backend cpu --out "$out/cpu-$c-$t" > /dev/null 2>&1 \
      || echo "replab $c (cpu, $t threads) failed" >&2
  done
  "$BIN" run "$c" --epochs "$EPOCHS" --backend wgpu --out "$out/wgpu-$c" > /dev/null 2>&1 \
    || echo "replab $c on wgpu failed or found no adapter" >&2
done
"$PY" - "$out" "$CHAPTERS" <<'PY'
import json, os, sys
out, chapters = sys.argv[1], sys.argv[2].split()
def ours(path, c):
    p = os.path.join(out, path, "results.json")
    if not os.path.exists(p):
        return None
    return json.load(open(p))["chapters"].get(c, {}).get("seconds_per_epoch")
def theirs(c, t):
    try:
        return json.load(open(os.path.join(out, f"torch-{c}-{t}.json"))).get("seconds_per_epoch")
    except (OSError, ValueError):
        return None
def f(x):
    return "-" if x is None else f"{x:.2f}"
def ratio(a, b):
    return "-" if a is None or not b else f"{a / b:.2f}x"
rows, table = [], ["| chapter | torch 1t | replab 1t | ratio | torch 2t | replab 2t | ratio | replab wgpu |",
                   "|---|---|---|---|---|---|---|---|"]
for c in chapters:
    r = {"chapter": c, "torch_1": theirs(c, 1), "cpu_1": ours(f"cpu-{c}-1", c),
         "torch_2": theirs(c, 2), "cpu_2": ours(f"cpu-{c}-2", c), "wgpu": ours(f"wgpu-{c}", c)}
    rows.append(r)
    table.append(f"| {c} | {f(r['torch_1'])} | {f(r['cpu_1'])} | {ratio(r['cpu_1'], r['torch_1'])} | "
                 f"{f(r['torch_2'])} | {f(r['cpu_2'])} | {ratio(r['cpu_2'], r['torch_2'])} | {f(r['wgpu'])} |")
print("seconds per epoch; ratio = replab / PyTorch (below 1 is faster)")
print("\n".join(table))
json.dump(rows, open(os.path.join(out, "bench-results.json"), "w"), indent=1)
print(f"(raw results in {out})")
PY
