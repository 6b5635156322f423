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

cache="${HF_HUB_CACHE:-${HF_HOME:-$HOME/.cache/huggingface}/hub}"
if [ -d "$cache/models--stabilityai--sd-turbo" ]; then
    MODEL=(--model stabilityai/sd-turbo --t-index-list 0 --cfg-type none --width 512 --height 512)
    [ -d "$cache/models--madebyollin--taesd" ] && MODEL+=(--vae taesd)
    SIZE=512
    echo "demo: using stabilityai/sd-turbo from $cache"
else
    MODEL=(--model Tests/Fixtures/models/tiny-sd15 --vae Tests/Fixtures/models/tiny-taesd --width 64 --height 64)
    SIZE=64
    echo "demo: no sd-turbo in the Hugging Face cache ($cache); using the tiny fixture model (random weights)"
fi

echo "== txt2img"
"$BIN" txt2img "${MODEL[@]}" --prompt "a red circle on a blue background" --count 2 --output "$OUT/txt2img.png"

echo "== video: a generated test clip through the stream"
ffmpeg -v error -y -f lavfi -i "testsrc=size=${SIZE}x${SIZE}:rate=10" -frames:v 30 -pix_fmt yuv420p "$OUT/input.mp4"
"$BIN" video "${MODEL[@]}" --prompt "a watercolor painting" --input "$OUT/input.mp4" --output "$OUT/video.mp4" \
    --similar-filter-threshold 0.98
echo "demo: results in $OUT/"
