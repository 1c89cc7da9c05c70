#!/usr/bin/env bash
# Seconds for PCA(k) of the lab's unlabeled BloodMNIST train split, side by side on this
# machine: scikit-learn (randomized and full solvers, THREADS BLAS threads) and replab's
# randomized fit (flex CPU backend, release build). Not a test. Needs numpy and
# scikit-learn (PYTHON defaults to /tmp/pyenv/bin/python, else python3).
#   bash bench/pca_bench.sh [K] [THREADS] [REPS]
set -euo pipefail
cd "$(dirname "$0")/.."
K=${1:-128}
THREADS=${2:-$(nproc)}
REPS=${3:-3}
PYTHON=${PYTHON:-$( [ -x /tmp/pyenv/bin/python ] && echo /tmp/pyenv/bin/python || echo python3 )}
source scripts/env.sh
cargo build --release --quiet --example pca_bench
ours=$("$CARGO_TARGET_DIR/release/examples/pca_bench" "$K" "$REPS" cpu)
theirs=$(OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS \
  "$PYTHON" bench/pca_sklearn.py --k "$K" --reps "$REPS" --threads "$THREADS")
echo "replab:  $ours"
echo "sklearn: $theirs"
"$PYTHON" - "$ours" "$theirs" <<'PY'
import json, sys
ours, theirs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"n={ours['n']} d={ours['d']} k={ours['k']}; sklearn with {theirs['threads']} thread(s)")
print(f"replab randomized ({ours['backend']}): {ours['seconds']:.2f} s, cumulative ratio {ours['cumulative_k']:.5f}")
for s in ("randomized", "full"):
    print(f"sklearn {s}: {theirs[s]:.2f} s, cumulative ratio {theirs[s + '_cumulative_k']:.5f}; "
          f"replab/sklearn {ours['seconds'] / theirs[s]:.2f}")
PY
