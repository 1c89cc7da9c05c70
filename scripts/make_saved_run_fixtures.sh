#!/usr/bin/env bash
# A saved run made by replab and the features the notebook's PyTorch ConvNet computes from
# it (scripts/load_in_pytorch.py), for tests/saved_runs.rs: the two must agree within 1e-4.
# Needs torch, numpy and safetensors (bench/requirements.txt). CI never runs it; the output
# is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
PY="${PYTHON:-python3}"
out=tests/fixtures/saved
mkdir -p "$out"
tmp=$(mktemp -d)
cargo run --quiet -- run supervised --epochs 1 --limit 256 --batch-size 64 --seed 3 --backend cpu \
  --out "$tmp" --save "$out/supervised.safetensors"
"$PY" scripts/load_in_pytorch.py "$out/supervised.safetensors" --bundle public/data/bloodmnist \
  --images 64 --out "$out/supervised_torch_features.safetensors"
rm -rf "$tmp"
