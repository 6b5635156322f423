#!/usr/bin/env bash
# The main job, run by `make demo`: txt2img, then a short video stream through img2img, with the
# best model on this machine — sd-turbo from the local Hugging Face cache when it is there, else the
# tiny fixture model shipped in the repository (random weights: it proves the pipeline, not art).
# Writes demo-output/ and prints frames per second.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.build/release/streamdiffusion
OUT=demo-output
mkdir -p "$OUT"

source scripts/model-args.sh   # sets MODEL (CLI arguments) and SIZE

echo "== txt2img"
"$BIN" txt2img "${MODEL[@]}" --prompt "a red circle on a blue background" --count 2 --output "$OUT/txt2img.png"

echo "== video: a generated test clip through the stream"
ffmpeg -v error -y -f lavfi -i "testsrc=size=${SIZE}x${SIZE}:rate=10" -frames:v 30 -pix_fmt yuv420p "$OUT/input.mp4"
"$BIN" video "${MODEL[@]}" --prompt "a watercolor painting" --input "$OUT/input.mp4" --output "$OUT/video.mp4" \
    --similar-filter-threshold 0.98
echo "demo: results in $OUT/"
echo "demo: for the live browser demo (webcam in, generated frames out) run: make serve  — then open http://127.0.0.1:8080/"
