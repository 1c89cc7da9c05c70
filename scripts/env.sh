# Shared environment for replab's scripts (sourced).
# Reuse one cargo target directory outside the clone, so fresh clones build incrementally.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/replab-target}"
mkdir -p "$CARGO_TARGET_DIR"
export TRUNK_OFFLINE=true
export TRUNK_TOOLS_WASM_OPT="${TRUNK_TOOLS_WASM_OPT:-version_$(wasm-opt --version 2>/dev/null | grep -o '[0-9]\+' | head -1)}"
export PATH="$HOME/.cargo/bin:$PATH"
