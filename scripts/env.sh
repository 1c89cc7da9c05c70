# Shared environment for replab's scripts (sourced).
# Reuse one cargo target directory outside the clone, so fresh clones build incrementally.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/replab-target}"
mkdir -p "$CARGO_TARGET_DIR"
export TRUNK_OFFLINE=true
# wasm-opt comes from npm's binaryen 132: Debian's binaryen 108 breaks the module's
# externref table (WebAssembly.Table.set fails at start-up).
export PATH="$PWD/tests/browser/node_modules/.bin:$HOME/.cargo/bin:$PATH"
export TRUNK_TOOLS_WASM_OPT=version_132
