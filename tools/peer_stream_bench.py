#!/usr/bin/env python3
"""The official `streamdiffusion` package as the same-run peer of `streamdiffusion bench stream --peer`.

Builds the real-size sd-turbo architecture (SD 2.1-base UNet, the 23-layer OpenCLIP-H text
encoder, TAESD) from configs, with the random weights our tool wrote when --weights names its
synthetic model cache (`bench stream` passes it, so both sides run the same weights), else
torch.manual_seed(0)'s, assembles a diffusers StableDiffusionPipeline in memory, wraps it in
`streamdiffusion.StreamDiffusion` exactly as its img2img demo does (torch_dtype float32,
cfg_type "none", frame_buffer_size 1, the TAESD VAE) and times one stream call on a fixed input
image once the stream is full, on PyTorch CPU with --threads threads.

  python3 tools/peer_stream_bench.py --threads 2 [--sizes 512,256] [--t-index-list 32]
                                     [--repeats 3] [--rcfg-size 256] [--json]

With --rcfg-size, rcfg_<cfg>_<size>_<steps>step times cfg_type none, self, initialize and full
(guidance 1.4, negative prompt "blurry") with --rcfg-t-index-list.

With --steps-size S, img2img_<S>_<n>step is also timed for each t-index list of --steps-lists
(lists separated by '|'), and diffusers_img2img_<S>_<n>step times plain diffusers — a
StableDiffusionImg2ImgPipeline on the same components, strength 1 and no guidance, so each frame
runs n UNet steps of one row and a TAESD encode and decode — for each n of --diffusers-steps: the
seeds' baseline (their "diffusers" column). --sequential-t-index-list adds
sequential_<S>_<n>step (use_denoising_batch=False), and --similarity-clip adds
similarity_static_<size>_filter_{off,on} (process CPU time per input frame over our clip).

Keys: img2img_<size>_<steps>step -> {"ms": median, "min_ms": min} over `repeats` calls after
len(t_index_list) untimed calls (the stream batch's fill plus a warm-up). With --json exactly one
JSON object goes to stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from make_pipeline_fixtures import patch_cuda_timing  # noqa: E402  (the official __call__ times with CUDA events)
from peer_bench import load_synthetic, sd_turbo_text_encoder, sd_turbo_unet  # noqa: E402

PROMPT = "a photograph of a mountain lake at dawn"


def log(message: str) -> None:
    print(f"[peer_stream_bench] {message}", file=sys.stderr, flush=True)


def build_pipe(tokenizer_folder: Path, weights: str = ""):
    from diffusers import AutoencoderTiny, LCMScheduler, StableDiffusionPipeline
    from transformers import CLIPTokenizer

    torch.manual_seed(0)
    log("building the sd-turbo UNet, text encoder and TAESD (random weights)")
    unet = sd_turbo_unet()
    text_encoder = sd_turbo_text_encoder()
    vae = AutoencoderTiny()
    if weights:   # the very weights our side runs (its synthetic model cache)
        log(f"loading our synthetic weights from {weights}")
        load_synthetic(unet, weights, "sd-turbo-unet")
        load_synthetic(text_encoder, weights, "sd-turbo-text-encoder")
        load_synthetic(vae, weights, "taesd")
    tokenizer = CLIPTokenizer.from_pretrained(str(tokenizer_folder))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                       scheduler=LCMScheduler(), safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False)
    pipe.to("cpu")
    for model in (unet, vae, text_encoder):
        model.eval()
    return pipe


def prepared_stream(pipe, size: int, t_index_list: list[int], cfg: str = "none", batch: bool = True):
    """The official StreamDiffusion wrapper as its img2img demo sets it up (fp32, frame_buffer_size 1);
    guidance 1.4 with the negative prompt "blurry" when cfg is not none."""
    from streamdiffusion import StreamDiffusion

    stream = StreamDiffusion(pipe, t_index_list=t_index_list, torch_dtype=torch.float32, width=size, height=size,
                             frame_buffer_size=1, use_denoising_batch=batch, cfg_type=cfg)
    stream.prepare(PROMPT, negative_prompt="blurry" if cfg != "none" else "", num_inference_steps=50,
                   guidance_scale=1.0 if cfg == "none" else 1.4)
    return stream


def measure(pipe, size: int, t_index_list: list[int], repeats: int, cfg: str = "none", batch: bool = True) -> dict:
    stream = prepared_stream(pipe, size, t_index_list, cfg, batch)
    image = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(1))   # [0, 1], as a camera frame
    times = []
    with torch.inference_mode():
        for _ in range(len(t_index_list)):   # fill the stream (and warm up)
            stream(image)
        for _ in range(repeats):
            start = time.perf_counter()
            out = stream(image)
            times.append((time.perf_counter() - start) * 1000)
    if not bool(torch.isfinite(out).all()):
        log(f"{size}: non-finite output with random weights (timing still valid)")
    return {"ms": statistics.median(times), "min_ms": min(times), "repeats": repeats}


class CountingFilter:
    """Wraps the official SimilarImageFilter to count the frames it skips (it returns None)."""

    def __init__(self, inner):
        self.inner, self.skipped = inner, 0

    def __call__(self, x):
        out = self.inner(x)
        self.skipped += out is None
        return out


def measure_similarity(pipe, clip_path: str, size: int, frames: int, filter_on: bool) -> dict:
    """The official stream over our clip (raw float32 NHWC in [-1, 1], written by `bench stream`),
    1 step, filter off or on (threshold 0.98, max skip 10): process CPU time per input frame over
    every thread, our energy proxy, with no warm-up, exactly as our side measures. A skipped frame
    makes the official code sleep for its average frame time, which costs wall time, not CPU."""
    import random

    import numpy as np

    clip = np.fromfile(clip_path, dtype=np.float32)
    if clip.size != frames * size * size * 3:
        sys.exit(f"{clip_path}: {clip.size} values, expected {frames}×{size}×{size}×3")
    images = [torch.from_numpy(((f.transpose(2, 0, 1)[None] + 1) / 2).copy())
              for f in clip.reshape(frames, size, size, 3)]   # [0, 1] NCHW: the package's camera input
    stream = prepared_stream(pipe, size, [32])
    random.seed(2)
    if filter_on:
        stream.enable_similar_image_filter(0.98, 10)
    counter = stream.similar_filter = CountingFilter(stream.similar_filter)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    with torch.inference_mode():
        for image in images:
            stream(image)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {"ms": 1000 * wall / frames, "cpu_ms": 1000 * cpu / frames, "skipped": counter.skipped, "frames": frames}


def measure_diffusers(pipe, size: int, steps: int, repeats: int) -> dict:
    from diffusers import StableDiffusionImg2ImgPipeline

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        img2img = StableDiffusionImg2ImgPipeline(**pipe.components, requires_safety_checker=False)
    img2img.set_progress_bar_config(disable=True)
    image = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    call = lambda: img2img(PROMPT, image=image, strength=1.0, num_inference_steps=steps, guidance_scale=0.0,
                           output_type="pt", generator=torch.Generator().manual_seed(2))
    times = []
    with torch.inference_mode():
        call()   # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            call()
            times.append((time.perf_counter() - start) * 1000)
    return {"ms": statistics.median(times), "min_ms": min(times), "repeats": repeats}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--sizes", default="512,256")
    ap.add_argument("--t-index-list", default="32")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rcfg-size", type=int, default=0,
                    help="also time cfg_type none/self/initialize/full at this size with --rcfg-t-index-list")
    ap.add_argument("--rcfg-t-index-list", default="32,36,40,45")
    ap.add_argument("--steps-size", type=int, default=0,
                    help="also time the --steps-lists and --diffusers-steps rows at this size")
    ap.add_argument("--steps-lists", default="", help="t-index lists separated by '|', e.g. 32,45|32,36,40,45")
    ap.add_argument("--diffusers-steps", default="", help="step counts for plain diffusers img2img, e.g. 1,4,10")
    ap.add_argument("--sequential-t-index-list", default="",
                    help="also time use_denoising_batch=False with this list at --steps-size")
    ap.add_argument("--similarity-clip", default="", help="raw float32 NHWC clip in [-1, 1] (our static clip)")
    ap.add_argument("--similarity-size", type=int, default=0)
    ap.add_argument("--similarity-frames", type=int, default=0)
    ap.add_argument("--weights", default="", help="folder of our tool's synthetic weights (bench's --cache)")
    ap.add_argument("--tokenizer", default=str(ROOT / "Tests/Fixtures/tokenizer/sd21"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
        t_index_list = [int(s) for s in args.t_index_list.split(",") if s.strip()]
    except ValueError as error:
        ap.error(f"bad list: {error}")
    if not sizes or any(s < 64 or s % 64 for s in sizes) or not t_index_list or args.repeats < 1:
        ap.error("sizes must be multiples of 64, t-index-list non-empty, repeats >= 1")
    torch.set_num_threads(args.threads)
    patch_cuda_timing()
    pipe = build_pipe(Path(args.tokenizer), args.weights)
    results = {}
    for size in sizes:
        key = f"img2img_{size}_{len(t_index_list)}step"
        log(f"timing {key} (t_index_list {t_index_list})")
        results[key] = measure(pipe, size, t_index_list, args.repeats)
        log(f"{key}: {results[key]['ms']:.1f} ms")
    if args.rcfg_size:
        rcfg_list = [int(s) for s in args.rcfg_t_index_list.split(",") if s.strip()]
        for cfg in ("none", "self", "initialize", "full"):
            key = f"rcfg_{cfg}_{args.rcfg_size}_{len(rcfg_list)}step"
            log(f"timing {key} (t_index_list {rcfg_list})")
            results[key] = measure(pipe, args.rcfg_size, rcfg_list, args.repeats, cfg)
            log(f"{key}: {results[key]['ms']:.1f} ms")
    if args.steps_size:
        for part in filter(None, args.steps_lists.split("|")):
            indices = [int(s) for s in part.split(",") if s.strip()]
            key = f"img2img_{args.steps_size}_{len(indices)}step"
            log(f"timing {key} (t_index_list {indices})")
            results[key] = measure(pipe, args.steps_size, indices, args.repeats)
            log(f"{key}: {results[key]['ms']:.1f} ms")
        for steps in [int(s) for s in args.diffusers_steps.split(",") if s.strip()]:
            key = f"diffusers_img2img_{args.steps_size}_{steps}step"
            log(f"timing {key}")
            results[key] = measure_diffusers(pipe, args.steps_size, steps, args.repeats)
            log(f"{key}: {results[key]['ms']:.1f} ms")
    if args.steps_size and args.sequential_t_index_list:
        indices = [int(s) for s in args.sequential_t_index_list.split(",") if s.strip()]
        key = f"sequential_{args.steps_size}_{len(indices)}step"
        log(f"timing {key} (t_index_list {indices}, use_denoising_batch False)")
        results[key] = measure(pipe, args.steps_size, indices, args.repeats, batch=False)
        log(f"{key}: {results[key]['ms']:.1f} ms")
    if args.similarity_clip:
        for on in (False, True):
            key = f"similarity_static_{args.similarity_size}_filter_{'on' if on else 'off'}"
            log(f"timing {key}")
            results[key] = measure_similarity(pipe, args.similarity_clip, args.similarity_size, args.similarity_frames, on)
            log(f"{key}: {results[key]['cpu_ms']:.1f} CPU ms per frame, {results[key]['skipped']} skipped")
    report = {"peer": "streamdiffusion " + importlib.metadata.version("streamdiffusion"),
              "torch_version": torch.__version__, "threads": args.threads, "dtype": "fp32",
              "t_index_list": t_index_list, "results": results}
    print(json.dumps(report) if args.json else json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
