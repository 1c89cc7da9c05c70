#!/usr/bin/env bash
# Build the web app and serve it on the bundled data: http://127.0.0.1:8080/
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
echo "replab: building; the lab will be at http://127.0.0.1:8080/#/data"
exec trunk serve --release --address 127.0.0.1 --port "${PORT:-8080}"
