# Sourced by demo.sh and serve.sh: the best model on this machine — sd-turbo from the local Hugging
# Face cache when it is there, else the tiny fixture model shipped in the repository (random
# weights: it proves the pipeline, not art). Sets MODEL (CLI arguments) and SIZE.
cache="${HF_HUB_CACHE:-${HF_HOME:-$HOME/.cache/huggingface}/hub}"
if [ -d "$cache/models--stabilityai--sd-turbo" ]; then
    MODEL=(--model stabilityai/sd-turbo --t-index-list 0 --cfg-type none --width 512 --height 512)
    [ -d "$cache/models--madebyollin--taesd" ] && MODEL+=(--vae taesd)
    SIZE=512
    echo "using stabilityai/sd-turbo from $cache"
else
    MODEL=(--model Tests/Fixtures/models/tiny-sd15 --vae Tests/Fixtures/models/tiny-taesd --width 64 --height 64)
    SIZE=64
    echo "no sd-turbo in the Hugging Face cache ($cache); using the tiny fixture model (random weights)"
fi
