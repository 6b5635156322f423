#!/usr/bin/env bash
# The main job, run by `make demo`: txt2img for several prompts into a contact sheet, then a video
# stream through img2img, with the best model on this machine (sd-turbo from the local Hugging Face
# cache when it is there, else the bundled demo model in Models/demo — no download either way).
# Writes demo-output/ and prints the speed of each part.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.build/release/streamdiffusion
OUT=demo-output
mkdir -p "$OUT/txt2img"
rm -f "$OUT"/txt2img/*.png

source scripts/model-args.sh   # sets MODEL, SIZE, PROMPTS, VIDEO_PROMPT, VIDEO_ARGS

echo "== txt2img: ${#PROMPTS[@]} prompts (4 LCM steps each) -> $OUT/contact-sheet.png"
: > "$OUT/prompts.txt"
for i in "${!PROMPTS[@]}"; do
    file=$(printf "%s/txt2img/%02d.png" "$OUT" "$i")
    "$BIN" txt2img "${MODEL[@]}" --prompt "${PROMPTS[$i]}" --output "$file" | grep -v '^wrote'
    printf "%02d  %s\n" "$i" "${PROMPTS[$i]}" >> "$OUT/prompts.txt"
done
columns=4; rows=$(( (${#PROMPTS[@]} + columns - 1) / columns ))
ffmpeg -v error -y -framerate 1 -i "$OUT/txt2img/%02d.png" -vf "tile=${columns}x${rows}:padding=4:color=gray" \
    -frames:v 1 "$OUT/contact-sheet.png"
echo "contact sheet: $OUT/contact-sheet.png (prompts in reading order: $OUT/prompts.txt)"

echo "== video: a generated clip (a red disc circling on white, 60 frames) through the img2img stream"
# geq draws the disc at a position that moves with time T; 10 frames/s for 6 s.
r=$(( SIZE / 5 ))
disc="lt(hypot(X-W/2-W/4*cos(T),Y-H/2-H/4*sin(T)),$r)"
ffmpeg -v error -y -f lavfi -i "color=c=white:s=${SIZE}x${SIZE}:r=10:d=6,format=rgb24" \
    -vf "geq=r='if($disc,220,245)':g='if($disc,40,245)':b='if($disc,40,245)'" -pix_fmt yuv420p "$OUT/input.mp4"
"$BIN" video "${MODEL[@]}" "${VIDEO_ARGS[@]}" --prompt "$VIDEO_PROMPT" --input "$OUT/input.mp4" --output "$OUT/video.mp4" \
    --similar-filter-threshold 0.99
echo "demo: results in $OUT/ (contact-sheet.png, video.mp4 from input.mp4 with the prompt \"$VIDEO_PROMPT\")"
echo "demo: for the live browser demo (webcam in, generated frames out) run: make serve  — then open http://127.0.0.1:8080/"
