#!/usr/bin/env bash
# Every test: format, clippy (native and wasm), native unit/parity tests, the release
# web build, and the browser tests in headless Chromium on the WebGPU and CPU paths.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
step() { echo; echo "== $* ($(date +%T))"; }

step "rustfmt"
cargo fmt --all -- --check
step "clippy (native)"
cargo clippy --all-targets -- -D warnings
step "clippy (wasm32)"
cargo clippy --target wasm32-unknown-unknown --lib --bins -- -D warnings
step "native tests"
cargo test --all-targets
step "trunk build --release"
trunk build --release
ls -l dist/*.wasm
step "browser tests (WebGPU via SwiftShader, and the CPU fallback)"
cargo run --quiet -- splits --dataset bloodmnist --json > target-splits.json
cargo run --quiet -- convert-clip tests/fixtures/clip/openclip_tiny.safetensors --out target-clip-tiny.safetensors > /dev/null
REPLAB_EXPECTED_SPLITS=target-splits.json REPLAB_CLIP_FIXTURE=target-clip-tiny.safetensors node tests/browser/run.mjs dist
rm -f target-splits.json target-clip-tiny.safetensors
echo; echo "all tests passed"
