#!/usr/bin/env bash
# On the device machine (the H200), after bench/device_prepare.sh here: the carried replab
# binary trains the chapters on wgpu (the GPU through Vulkan), and the PyTorch reference trains
# the same chapters on CUDA from the repo's own bundle (bench/bundle.py), in one run. Writes
# $OUT/device-table.md plus one JSON per run, and `replab bench --quick` for the sections whose
# reference runs on CUDA (bench.json, bench-table.md).
#   bash bench/device.sh [EPOCHS] [CHAPTERS...]     (default: 2 supervised supcon)
set -uo pipefail
cd "$(dirname "$0")/.."
EPOCHS=${1:-2}
shift || true
CHAPTERS=${*:-supervised supcon}
OUT=${OUT:-/tmp/device-out}
mkdir -p "$OUT"
for f in .gl/*.deb; do [ -f "$f" ] && dpkg -x "$f" /; done
ldconfig 2>/dev/null || true
nvidia_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$nvidia_icd" ] && export VK_DRIVER_FILES=$nvidia_icd
python3 -c "import lzma, shutil; shutil.copyfileobj(lzma.open('.device/replab.xz'), open('/tmp/replab', 'wb'))" \
  && chmod +x /tmp/replab || { echo "no carried binary: run bench/device_prepare.sh here first"; exit 1; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$OUT/gpu.txt" 2>&1
for c in $CHAPTERS; do
  echo "== $c: PyTorch on CUDA"
  python3 bench/torch_reference.py --bundle public/data/bloodmnist --device cuda --epochs "$EPOCHS" \
    --chapters "$c" | tail -n 1 > "$OUT/torch-$c.json"
  echo "== $c: replab on wgpu"
  /tmp/replab run "$c" --epochs "$EPOCHS" --backend wgpu --data-dir public/data --out "/tmp/wgpu-$c" \
    && cp "/tmp/wgpu-$c/results.json" "$OUT/wgpu-$c.json"
done
echo "== replab bench: wgpu against PyTorch on CUDA (quick)"
/tmp/replab bench --quick --backend wgpu --reference-device cuda --sections supervised,supcon,clip \
  --threads "$(nproc)" --python python3 --out "$OUT/bench.json" | tee "$OUT/bench-table.md"
python3 - "$OUT" "$CHAPTERS" <<'PY'
import json, os, sys
out, chapters = sys.argv[1], sys.argv[2].split()
def read(name):
    try:
        return json.load(open(os.path.join(out, name)))
    except (OSError, ValueError):
        return {}
rows = ["| chapter | PyTorch CUDA s/epoch | replab wgpu s/epoch | ratio | PyTorch test B | replab test B |",
        "|---|---|---|---|---|---|"]
for c in chapters:
    t = read(f"torch-{c}.json")
    r = read(f"wgpu-{c}.json").get("chapters", {}).get(c, {})
    ts, rs = t.get("seconds_per_epoch"), r.get("seconds_per_epoch")
    ratio = f"{rs / ts:.2f}x" if ts and rs else "-"
    f = lambda v: "-" if v is None else f"{v:.3f}"
    rows.append(f"| {c} | {f(ts)} | {f(rs)} | {ratio} | {f(t.get('converged_test_b'))} | "
                f"{f(r.get('probe', {}).get('converged_test_b'))} |")
table = "\n".join(rows)
print(table)
open(os.path.join(out, "device-table.md"), "w").write(open(os.path.join(out, "gpu.txt")).read() + "\n" + table + "\n")
PY
