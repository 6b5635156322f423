# Sourced by demo.sh and serve.sh: the best model on this machine — sd-turbo from the local Hugging
# Face cache when it is there, else the demo model bundled in Models/demo (128×128 coloured shapes,
# trained by tools/train_demo_model.py; the CLI picks it by itself when no --model is given and says
# so). Sets MODEL (CLI arguments), SIZE, PROMPTS (txt2img prompts for the contact sheet), VIDEO_PROMPT
# and VIDEO_ARGS.
cache="${HF_HUB_CACHE:-${HF_HOME:-$HOME/.cache/huggingface}/hub}"
if [ -d "$cache/models--stabilityai--sd-turbo" ]; then
    MODEL=(--model stabilityai/sd-turbo --t-index-list 0 --cfg-type none)
    [ -d "$cache/models--madebyollin--taesd" ] && MODEL+=(--vae taesd)
    SIZE=512
    PROMPTS=("a photo of a red fox in the snow" "a watercolor painting of a lighthouse at dawn"
             "a bowl of ramen, studio lighting" "an astronaut riding a horse, oil painting")
    VIDEO_PROMPT="a watercolor painting"
    VIDEO_ARGS=(--t-index-list 32,45)
else
    MODEL=()
    SIZE=128
    PROMPTS=("a red circle on a blue background" "a yellow star on a black background"
             "a large green square on a white background" "a small purple triangle on the left on a yellow background"
             "a blue ring on a pink and white gradient" "an orange circle and a blue star on a white background"
             "a white star at the top on a purple background" "a pink square on the right on a green background")
    VIDEO_PROMPT="a blue circle on a black background"
    # The demo model restyles only from high noise (t-index 16): it never saw a picture that
    # contradicts its caption, so at img2img's usual 32 it cannot repaint the input.
    VIDEO_ARGS=(--t-index-list 16,32,45)
fi
