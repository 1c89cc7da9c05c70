#!/usr/bin/env bash
# Here, before using a lent device machine (the H200): build the binary (profile `device`:
# release with fat LTO, stripped) and xz it into .device/ (ignored by git, carried), and fetch the Vulkan/EGL loader packages into
# .gl/ as the device tool's README says, so the binary's wgpu finds the GPU there. Then call
# the device tool's run with carry [".device", ".gl"] and the command
#   bash bench/device.sh 2
# (EPOCHS as the argument). What travels is capped at 64 MiB with the tracked files (~51 MiB),
# which is why the binary goes compressed; this script prints the sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build --profile device --quiet
mkdir -p .device .gl
grep -qx '/.device/' .git/info/exclude 2>/dev/null || echo '/.device/' >> .git/info/exclude
grep -qx '/.gl/' .git/info/exclude 2>/dev/null || echo '/.gl/' >> .git/info/exclude
cp "$CARGO_TARGET_DIR/device/replab" .device/replab
xz -9 -T0 -f .device/replab
if ! ls .gl/*.deb > /dev/null 2>&1; then
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  mkdir -p /tmp/amd64/partial
  apt-get $o update > /dev/null
  (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi
du -sh .device/replab.xz .gl
git ls-files -z | xargs -0 du -cb | tail -1 | awk '{printf "tracked files: %.1f MiB\n", $1/1048576}'
