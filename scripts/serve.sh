# `make serve`: the live demo. Serves the browser page (webcam in, generated frames out) on
# http://127.0.0.1:${PORT:-8080}/ with the best model on this machine; Ctrl-C stops. Extra arguments
# go to `streamdiffusion serve` (e.g. --host 0.0.0.0 --token SECRET to reach it from another machine).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/model-args.sh   # sets MODEL (CLI arguments) and SIZE
exec .build/release/streamdiffusion serve "${MODEL[@]}" --port "${PORT:-8080}" "$@"
