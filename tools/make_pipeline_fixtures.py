#!/usr/bin/env python3
"""Parity fixtures between the Swift `StreamPipeline` and the official `streamdiffusion` package.

Writes, under Tests/Fixtures/pipeline/:
  tokenizer/           a byte-level CLIP tokenizer folder whose ids stay < 1000 (the tiny text
                       encoder's vocab_size): ids 0-255 = the 256 byte symbols in bytes_to_unicode
                       order, 256-511 = the same with "</w>", "<|startoftext|>" = 998,
                       "<|endoftext|>" = 999 (also pad/unk), no merges (merges.txt = header only).
                       Exactly the tokenizer StreamPipelineTests builds in Swift.
  pipeline.safetensors every tensor (F32, contiguous; 4-D images/latents NHWC, permuted from NCHW)
  cases.json           what each case is (parameters, seeds, tensor keys, schedule constants,
                       token ids, the similarity filter's draws and decisions)

The official package drives a diffusers `StableDiffusionPipeline` assembled in memory from the tiny
fixtures: Tests/Fixtures/models/tiny-sd15/{unet,text_encoder,scheduler} (fp32 files) and
Tests/Fixtures/models/tiny-taesd (AutoencoderTiny) as the VAE, with the tokenizer above.
`streamdiffusion.StreamDiffusion(pipe, ..., torch_dtype=float32, width=64, height=64,
frame_buffer_size=1)` then `prepare(prompt, negative_prompt, 50, guidance_scale, delta,
generator=torch.Generator("cpu").manual_seed(S), seed=S)` are called directly on the CPU.

Versions: streamdiffusion 0.1.1 (`pip install --no-deps streamdiffusion==0.1.1`; its own pin
diffusers==0.24.0 is NOT installed) next to tools/requirements.txt (torch 2.13.0+cpu,
diffusers 0.39.0, transformers 5.24.0, safetensors 0.8.0). The 0.1.1 wheel's pipeline.py and
image_filter.py are byte-identical to cumulo-autumn/StreamDiffusion at b623251.

In-process adaptations (site-packages is never touched):
  * torch.cuda.Event / torch.cuda.synchronize are replaced by no-ops (the official __call__ times
    every frame with CUDA events); elapsed time is 0, so the similarity filter's sleep is 0 s.
  * `streamdiffusion.image_filter.random` (the module's reference to Python's `random`) is replaced
    by a recorder over a seeded `random.Random`, so the filter's U(0,1) draws are reproducible and
    stored for the Swift test to replay.
  * `predict_x0_batch`, `decode_image` and `unet` are wrapped on the StreamDiffusion *instance* to
    record what goes in and out; nothing they compute changes.

Cases (all 64x64 images, 8x8x4 latents, num_inference_steps 50, frame_buffer_size 1):
  img2img  6 random input frames in [-1, 1] (shared), stream batch on, t_index_list [32, 45] and
           [20, 35, 45] x cfg none/full/self/initialize (guidance 1.4, delta 0.7; "none" forces
           guidance 1), do_add_noise on; plus do_add_noise off for self [32, 45] and initialize
           [20, 35, 45]. Per call: x_t (the encoded, noised input = predict_x0_batch's argument),
           x0 (x_0_pred_out, predict_x0_batch's result), and the decoded output for the last two
           calls (decoded images for every call would exceed the ~2 MB budget; the latents of
           every call are kept).
  txt2img_turbo  t_index_list [0], cfg none: `txt2img_sd_turbo()` x3. The official code draws its
           noise UNSEEDED from torch's global generator: `torch.manual_seed(G_k)` is called before
           call k, and the noise it drew (captured at the UNet input) is stored; it equals
           torch.Generator().manual_seed(G_k)'s first randn(1,4,8,8), which the script asserts.
  txt2img  t_index_list [0, 16, 32, 45], cfg none, stream batch: `txt2img()` x6, same seeding.
  similarity  t [32, 45], cfg self (1.4 / 0.7), filter threshold 0.98, max_skip_frame 2, 12 inputs
           built from the shared frames (repeats, small perturbations giving cos ~0.99, new frames).
           Stored: the new inputs, the draws (one per call after the first), cos, skip decisions,
           x_t and x0 of every processed call and the decoded output of the last two (a skipped
           call returns the previous output unchanged).
  sequential  use_denoising_batch=False, t [20, 35, 45], cfg self (1.4 / 0.7), do_add_noise on,
           3 frames. Official quirks recorded as they are: init_noise is overwritten by each call's
           x_t (so the next frame is noised with the previous frame's x_t, not the seeded noise),
           stock_noise stays 0 (eps_uncond = 0, so eps = 1.4 * eps_text), and between steps fresh
           UNSEEDED torch.randn_like noise is drawn (global RNG seeded with G_k before call k; the
           draws, recovered from the UNet inputs, equal torch.Generator().manual_seed(G_k)'s
           successive randn(1,4,8,8), asserted). Per call and step the UNet input is stored.

Also stored: init_noise of every case (NCHW draw permuted to NHWC), the prompt embeddings the
official encode_prompt returns, and per case timesteps / alpha / beta / c_skip / c_out.

Deterministic (fixed seeds, one thread): re-running writes byte-identical files.
Usage: python3 tools/make_pipeline_fixtures.py [--out DIR]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import random
import sys
import tempfile
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from fixture_io import bytes_to_unicode, canonicalize_header  # noqa: E402

MODELS = ROOT / "Tests" / "Fixtures" / "models"
STREAMDIFFUSION_VERSION = "0.1.1"
SIZE = 64
LATENT = SIZE // 8
PROMPT = "a red fox in the snow, oil painting"
NEGATIVE = "blurry, low quality"
GUIDANCE = 1.4
DELTA = 0.7
PREPARE_SEED = 7
TXT2IMG_PREPARE_SEED = 11
FRAME_SEED = 1234
FILTER_SEED = 99
FRAMES = 6


README = """# Official StreamDiffusion parity fixtures

Generated by `python3 tools/make_pipeline_fixtures.py` (streamdiffusion 0.1.1 installed with
`pip install --no-deps streamdiffusion==0.1.1` next to tools/requirements.txt: torch 2.13.0+cpu,
diffusers 0.39.0, transformers 5.24.0). Read by Tests/StreamDiffusionTests/OfficialParityTests.swift.

- `tokenizer/` byte-level CLIP tokenizer folder (ids < 1000 for the tiny text encoder): byte symbols
  0-255 in bytes_to_unicode order, the same with `</w>` 256-511, `<|startoftext|>` 998,
  `<|endoftext|>` 999 (eos/unk/pad), merges.txt = `#version: 0.2` header only.
- `pipeline.safetensors` F32 tensors; 4-D images/latents NHWC (official NCHW permuted).
- `cases.json` the cases: parameters, seeds, tensor keys, schedule constants, token ids, the
  similarity filter's draws, cosines and decisions. See the script's docstring for every case.

Official model: a diffusers StableDiffusionPipeline built in memory from ../models/tiny-sd15
(unet, text_encoder, scheduler; fp32 files) with ../models/tiny-taesd (AutoencoderTiny) as VAE,
driven through `streamdiffusion.StreamDiffusion` (torch_dtype float32, 64x64, frame_buffer_size 1)
and `prepare(..., generator=torch.Generator("cpu").manual_seed(S), seed=S)` on the CPU.
"""


# ----------------------------------------------------------------------------------------------
# Environment

class _NoCudaEvent:
    """Stands in for torch.cuda.Event on a CPU-only machine: records nothing, 0 ms elapsed."""

    def __init__(self, *args, **kwargs):
        pass

    def record(self, *args, **kwargs):
        pass

    def elapsed_time(self, other):
        return 0.0


def patch_cuda_timing() -> None:
    torch.cuda.Event = _NoCudaEvent
    torch.cuda.synchronize = lambda *args, **kwargs: None


def check_versions() -> dict:
    versions = {name: importlib.metadata.version(name)
                for name in ("streamdiffusion", "diffusers", "transformers", "torch", "safetensors")}
    if versions["streamdiffusion"] != STREAMDIFFUSION_VERSION:
        sys.exit(f"streamdiffusion {versions['streamdiffusion']} installed; this script is pinned to "
                 f"{STREAMDIFFUSION_VERSION}: pip install --no-deps streamdiffusion=={STREAMDIFFUSION_VERSION}")
    return versions


# ----------------------------------------------------------------------------------------------
# Tokenizer

def write_tokenizer(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    symbols = list(bytes_to_unicode().values())
    vocab = {s: i for i, s in enumerate(symbols)}
    vocab.update({s + "</w>": 256 + i for i, s in enumerate(symbols)})
    vocab["<|startoftext|>"] = 998
    vocab["<|endoftext|>"] = 999
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False) + "\n", encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    token = lambda content: {"content": content, "lstrip": False, "normalized": True, "rstrip": False,
                             "single_word": False}
    special = {"bos_token": token("<|startoftext|>"), "eos_token": token("<|endoftext|>"),
               "pad_token": token("<|endoftext|>"), "unk_token": token("<|endoftext|>")}
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n", encoding="utf-8")
    config = {"backend": "tokenizers", "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
              "model_max_length": 77, "pad_token": "<|endoftext|>", "tokenizer_class": "CLIPTokenizer",
              "unk_token": "<|endoftext|>"}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def expected_ids(text: str) -> list[int]:
    """What the byte-level vocabulary must give, written out independently of transformers:
    lowercase, CLIP's word split (letters / digits / other runs; ASCII prompts only), each word's
    bytes as symbols with "</w>" on the last one, BOS/EOS, padded with EOS to 77."""
    import re
    table = bytes_to_unicode()
    index = {s: i for i, s in enumerate(table.values())}
    ids = [998]
    for word in re.findall(r"[a-z]+|[0-9]|[^\sa-z0-9]+", " ".join(text.lower().split())):
        chars = [table[b] for b in word.encode("utf-8")]
        ids += [index[c] for c in chars[:-1]] + [256 + index[chars[-1]]]
    ids = ids[:76] + [999]
    return ids + [999] * (77 - len(ids))


# ----------------------------------------------------------------------------------------------
# Pipeline

def build_pipe(tokenizer_folder: Path):
    from diffusers import AutoencoderTiny, LCMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(str(tokenizer_folder))
    text_encoder = CLIPTextModel.from_pretrained(str(MODELS / "tiny-sd15" / "text_encoder"), dtype=torch.float32)
    unet = UNet2DConditionModel.from_pretrained(str(MODELS / "tiny-sd15" / "unet"), torch_dtype=torch.float32)
    vae = AutoencoderTiny.from_pretrained(str(MODELS / "tiny-taesd"), torch_dtype=torch.float32)
    scheduler = LCMScheduler.from_pretrained(str(MODELS / "tiny-sd15" / "scheduler"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                       scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False)
    pipe.to("cpu")
    for model in (unet, vae, text_encoder):
        model.eval()
    assert pipe.vae_scale_factor == 8, pipe.vae_scale_factor
    return pipe, tokenizer


def nhwc(x: torch.Tensor) -> torch.Tensor:
    assert x.dim() == 4, x.shape
    return x.detach().permute(0, 2, 3, 1).contiguous().to(torch.float32).clone()


class Recorder:
    """Wraps the official instance's predict_x0_batch / decode_image / unet to record tensors."""

    def __init__(self, sd):
        self.sd = sd
        self.x_t, self.x0, self.decoded, self.unet_in, self.unet_t = [], [], [], [], []
        predict, decode, unet = sd.predict_x0_batch, sd.decode_image, sd.unet

        def predict_x0_batch(x_t):
            self.x_t.append(x_t.detach().clone())
            out = predict(x_t)
            self.x0.append(out.detach().clone())
            return out

        def decode_image(x0):
            if len(self.x0) < len(self.decoded) + 1:   # txt2img_sd_turbo bypasses predict_x0_batch
                self.x0.append(x0.detach().clone())
            out = decode(x0)
            self.decoded.append(out.detach().clone())
            return out

        def unet_call(sample, timesteps, *args, **kwargs):
            self.unet_in.append(sample.detach().clone())
            self.unet_t.append([int(t) for t in torch.as_tensor(timesteps).reshape(-1)])
            return unet(sample, timesteps, *args, **kwargs)

        sd.predict_x0_batch = predict_x0_batch
        sd.decode_image = decode_image
        sd.unet = unet_call


def make_stream(pipe, t_index_list, cfg, add_noise=True, batch=True):
    from streamdiffusion import StreamDiffusion
    return StreamDiffusion(pipe, t_index_list=t_index_list, torch_dtype=torch.float32, width=SIZE, height=SIZE,
                           do_add_noise=add_noise, use_denoising_batch=batch, frame_buffer_size=1, cfg_type=cfg)


def prepare(sd, seed, prompt=PROMPT, negative=NEGATIVE, guidance=GUIDANCE, delta=DELTA):
    sd.prepare(prompt, negative, num_inference_steps=50, guidance_scale=guidance, delta=delta,
               generator=torch.Generator("cpu").manual_seed(seed), seed=seed)
    expected = torch.randn(tuple(sd.init_noise.shape), generator=torch.Generator("cpu").manual_seed(seed))
    assert torch.equal(sd.init_noise, expected), "init_noise is not the seeded generator's first draw"


def schedule_of(sd) -> dict:
    f = lambda t: [float(v) for v in t.detach().reshape(-1).tolist()]
    return {"timesteps": [int(t) for t in sd.sub_timesteps], "alpha": f(sd.alpha_prod_t_sqrt),
            "beta": f(sd.beta_prod_t_sqrt), "c_skip": f(sd.c_skip), "c_out": f(sd.c_out),
            "guidance_scale": float(sd.guidance_scale), "delta": float(sd.delta)}


# ----------------------------------------------------------------------------------------------
# Fixtures

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "Tests" / "Fixtures" / "pipeline")
    args = parser.parse_args()
    versions = check_versions()
    patch_cuda_timing()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.set_grad_enabled(False)
    # The official __call__ hands diffusers' preprocess a tensor already in [-1, 1] (left as it is).
    warnings.filterwarnings("ignore", message="Passing `image` as torch tensor", category=FutureWarning)

    out: Path = args.out
    write_tokenizer(out / "tokenizer")
    pipe, tokenizer = build_pipe(out / "tokenizer")

    tensors: dict[str, torch.Tensor] = {}
    doc: dict = {
        "generator": "tools/make_pipeline_fixtures.py",
        "versions": versions,
        "layout": "F32; 4-D image/latent tensors NHWC (official NCHW permuted); images in [-1, 1], decoded "
                  "outputs unclamped (the official tensor output)",
        "size": {"width": SIZE, "height": SIZE, "latent": [LATENT, LATENT, 4]},
        "num_inference_steps": 50, "frame_buffer_size": 1,
        "prompt": PROMPT, "negative_prompt": NEGATIVE,
        "tolerance": "max |swift - official| <= 1e-4 * max |official| (fp32)",
        "cases": [],
    }

    # Tokens: transformers vs the independent expectation; the Swift test checks CLIPTokenizer(folder:).
    prompts = [PROMPT, NEGATIVE, "", "Hello, World! 42 times"]
    doc["tokens"] = []
    for text in prompts:
        ids = tokenizer(text, padding="max_length", max_length=77, truncation=True).input_ids
        assert ids == expected_ids(text), (text, ids, expected_ids(text))
        assert max(ids) < 1000
        doc["tokens"].append({"text": text, "ids": ids})

    # Prompt embeddings as the official prepare gets them (encode_prompt with CFG on).
    cond, uncond = pipe.encode_prompt(PROMPT, "cpu", 1, True, NEGATIVE)
    tensors["embeddings/prompt"] = cond.contiguous().clone()
    tensors["embeddings/negative"] = uncond.contiguous().clone()

    # Shared input frames: uniform in [-1, 1], NCHW for the official code, stored NHWC.
    g = torch.Generator("cpu").manual_seed(FRAME_SEED)
    frames = [torch.rand((1, 3, SIZE, SIZE), generator=g) * 2 - 1 for _ in range(FRAMES)]
    tensors["inputs/frames"] = nhwc(torch.cat(frames))
    # The official preprocess leaves a [-1, 1] tensor of the right size as it is.
    probe = make_stream(pipe, [32, 45], "none")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert torch.equal(probe.image_processor.preprocess(frames[0], SIZE, SIZE), frames[0])

    def store_calls(name: str, rec: Recorder, decoded_calls: list[int]) -> dict:
        keys = {}
        if rec.x_t:
            tensors[f"{name}/x_t"] = nhwc(torch.cat(rec.x_t))
            keys["x_t"] = f"{name}/x_t"
        tensors[f"{name}/x0"] = nhwc(torch.cat(rec.x0))
        keys["x0"] = f"{name}/x0"
        tensors[f"{name}/decoded"] = nhwc(torch.cat([rec.decoded[k] for k in decoded_calls]))
        keys["decoded"] = f"{name}/decoded"
        return keys

    # ---- img2img, stream batch
    variants = [(t, cfg, True) for t in ([32, 45], [20, 35, 45]) for cfg in ("none", "full", "self", "initialize")]
    variants += [([32, 45], "self", False), ([20, 35, 45], "initialize", False)]
    for t_list, cfg, add_noise in variants:
        name = f"img2img/t{'-'.join(map(str, t_list))}/{cfg}/{'noise' if add_noise else 'nonoise'}"
        sd = make_stream(pipe, t_list, cfg, add_noise)
        prepare(sd, PREPARE_SEED)
        tensors[f"{name}/init_noise"] = nhwc(sd.init_noise)
        rec = Recorder(sd)
        for frame in frames:
            sd(frame)
        decoded_calls = [FRAMES - 2, FRAMES - 1]
        case = {"name": name, "kind": "img2img", "t_index_list": t_list, "cfg_type": cfg, "do_add_noise": add_noise,
                "use_denoising_batch": True, "guidance_scale": GUIDANCE, "delta": DELTA, "seed": PREPARE_SEED,
                "inputs": "inputs/frames", "input_calls": list(range(FRAMES)), "init_noise": f"{name}/init_noise",
                "decoded_calls": decoded_calls, "schedule": schedule_of(sd),
                "unet_rows": len(rec.unet_in[0])}
        case.update(store_calls(name, rec, decoded_calls))
        doc["cases"].append(case)

    # ---- txt2img: sd-turbo one step, and the multi-step stream batch
    for name, t_list, calls, turbo in (("txt2img/turbo", [0], 3, True), ("txt2img/t0-16-32-45", [0, 16, 32, 45], 6, False)):
        sd = make_stream(pipe, t_list, "none")
        prepare(sd, TXT2IMG_PREPARE_SEED, negative="", guidance=1.0, delta=1.0)
        tensors[f"{name}/init_noise"] = nhwc(sd.init_noise)
        rec = Recorder(sd)
        global_seeds = [500 + k for k in range(calls)]
        noises = []
        for seed in global_seeds:
            torch.manual_seed(seed)
            if turbo:
                sd.txt2img_sd_turbo(1)
                noise = rec.unet_in[-1]
            else:
                sd.txt2img(1)
                noise = rec.x_t[-1]
            assert torch.equal(noise, torch.randn((1, 4, LATENT, LATENT), generator=torch.Generator().manual_seed(seed)))
            noises.append(noise)
        tensors[f"{name}/noise"] = nhwc(torch.cat(noises))
        decoded_calls = list(range(calls)) if turbo else [calls - 2, calls - 1]
        case = {"name": name, "kind": "txt2img_sd_turbo" if turbo else "txt2img", "t_index_list": t_list,
                "cfg_type": "none", "do_add_noise": True, "use_denoising_batch": True, "guidance_scale": 1.0,
                "delta": 1.0, "seed": TXT2IMG_PREPARE_SEED, "negative_prompt": "", "global_seeds": global_seeds,
                "noise": f"{name}/noise", "init_noise": f"{name}/init_noise", "decoded_calls": decoded_calls,
                "schedule": schedule_of(sd)}
        rec.x_t = []   # the noise is stored once, under "noise"
        case.update(store_calls(name, rec, decoded_calls))
        doc["cases"].append(case)

    # ---- similarity filter
    import streamdiffusion.image_filter as image_filter
    draws: list[float] = []
    filter_rng = random.Random(FILTER_SEED)

    class RecordingRandom:
        @staticmethod
        def uniform(a, b):
            u = filter_rng.uniform(a, b)
            draws.append(u)
            return u

    image_filter.random = RecordingRandom
    g = torch.Generator("cpu").manual_seed(FRAME_SEED + 1)
    near = lambda x, s: (x + s * torch.randn(x.shape, generator=g)).clamp(-1, 1)
    f0, f1, f2 = frames[0], frames[1], frames[2]
    f1a = near(f1, 0.08)
    f1b = near(f1, 0.08)
    f2a = near(f2, 0.05)
    sequence = [f0, f0, f0, f0, f0, f0, f1, f1a, f1b, f2, f2a, f2]
    new_inputs = [f1a, f1b, f2a]
    tensors["similarity/extra_frames"] = nhwc(torch.cat(new_inputs))
    # Sources: ("frames", k) = inputs/frames[k], ("extra", k) = similarity/extra_frames[k].
    sources = [["frames", 0]] * 6 + [["frames", 1], ["extra", 0], ["extra", 1], ["frames", 2], ["extra", 2], ["frames", 2]]
    name = "similarity/t32-45/self"
    sd = make_stream(pipe, [32, 45], "self")
    sd.enable_similar_image_filter(0.98, 2)
    prepare(sd, PREPARE_SEED)
    tensors[f"{name}/init_noise"] = nhwc(sd.init_noise)
    rec = Recorder(sd)
    cosines: list[float] = []
    cos = sd.similar_filter.cos

    def recording_cos(a, b):
        value = cos(a, b)
        cosines.append(float(value))
        return value

    sd.similar_filter.cos = recording_cos
    skipped, outputs = [], []
    for x in sequence:
        before = len(rec.x0)
        outputs.append(sd(x))
        skipped.append(len(rec.x0) == before)
        if skipped[-1]:
            assert outputs[-1] is outputs[-2] or torch.equal(outputs[-1], outputs[-2])
    assert len(draws) == len(sequence) - 1 and len(cosines) == len(sequence) - 1
    assert any(skipped) and not all(skipped[1:])
    processed = [k for k, s in enumerate(skipped) if not s]
    case = {"name": name, "kind": "similarity", "t_index_list": [32, 45], "cfg_type": "self", "do_add_noise": True,
            "use_denoising_batch": True, "guidance_scale": GUIDANCE, "delta": DELTA, "seed": PREPARE_SEED,
            "threshold": 0.98, "max_skip_frame": 2, "sources": sources, "extra_frames": "similarity/extra_frames",
            "draws": draws, "cosines": cosines, "skipped": skipped, "processed_calls": processed,
            "init_noise": f"{name}/init_noise", "schedule": schedule_of(sd),
            "note": "draws[k] is the U(0,1) draw made at call k + 1 (the first call draws nothing); x_t and x0 "
                    "are per processed call (processed_calls), decoded for decoded_calls; a skipped call "
                    "returns the previous output unchanged"}
    # x0 of every processed call; decoded output of the last two processed calls (budget).
    case.update(store_calls(name, rec, [len(rec.decoded) - 2, len(rec.decoded) - 1]))
    case["decoded_calls"] = processed[-2:]
    doc["cases"].append(case)
    image_filter.random = random

    # ---- sequential denoising (use_denoising_batch=False)
    name = "sequential/t20-35-45/self"
    t_list = [20, 35, 45]
    sd = make_stream(pipe, t_list, "self", True, batch=False)
    prepare(sd, PREPARE_SEED)
    tensors[f"{name}/init_noise"] = nhwc(sd.init_noise)
    rec = Recorder(sd)
    step_x0 = []
    unet_step = sd.unet_step

    def recording_unet_step(x, t, idx=None):
        x0, pred = unet_step(x, t, idx)
        step_x0.append(x0.detach().clone())
        return x0, pred

    sd.unet_step = recording_unet_step
    global_seeds = [700 + k for k in range(3)]
    step_noise = []
    alpha, beta = sd.alpha_prod_t_sqrt.reshape(-1), sd.beta_prod_t_sqrt.reshape(-1)
    for k, seed in enumerate(global_seeds):
        torch.manual_seed(seed)
        sd(frames[k])
        replay = torch.Generator().manual_seed(seed)
        for i in range(1, len(t_list)):
            drawn = torch.randn((1, 4, LATENT, LATENT), generator=replay)
            # The UNet input of step i is alpha_i * x0 of step i-1 + beta_i * the fresh draw.
            n = k * len(t_list) + i
            used = (rec.unet_in[n] - alpha[i] * step_x0[n - 1]) / beta[i]
            assert (used - drawn).abs().max() < 1e-4, (k, i, (used - drawn).abs().max())
            step_noise.append(drawn)
    unet_in = torch.cat(rec.unet_in)
    assert unet_in.shape[0] == 3 * len(t_list)
    tensors[f"{name}/unet_inputs"] = nhwc(unet_in)
    tensors[f"{name}/step_x0"] = nhwc(torch.cat(step_x0))
    tensors[f"{name}/step_noise"] = nhwc(torch.cat(step_noise))
    case = {"name": name, "kind": "sequential", "t_index_list": t_list, "cfg_type": "self", "do_add_noise": True,
            "use_denoising_batch": False, "guidance_scale": GUIDANCE, "delta": DELTA, "seed": PREPARE_SEED,
            "inputs": "inputs/frames", "input_calls": [0, 1, 2], "global_seeds": global_seeds,
            "init_noise": f"{name}/init_noise", "unet_inputs": f"{name}/unet_inputs",
            "step_noise": f"{name}/step_noise", "step_x0": f"{name}/step_x0", "decoded_calls": [2], "schedule": schedule_of(sd),
            "note": "official quirks: init_noise := x_t of the current call (so call k+1 is noised with call k's "
                    "x_t); stock_noise stays 0 (eps = g * eps_text for self); between steps x = alpha[i+1]*x0 + "
                    "beta[i+1]*randn_like (global RNG, seeded with global_seeds[k] before call k); unet_inputs "
                    "[calls*steps] are the UNet inputs per call and step; step_noise[k*(S-1)+i-1] is the noise "
                    "drawn before step i of call k"}
    case.update(store_calls(name, rec, [2]))
    doc["cases"].append(case)

    # ---- write
    out.mkdir(parents=True, exist_ok=True)
    from safetensors.torch import save_file
    path = out / "pipeline.safetensors"
    save_file({k: v.contiguous() for k, v in sorted(tensors.items())}, str(path),
              metadata={"generator": "tools/make_pipeline_fixtures.py", "streamdiffusion": versions["streamdiffusion"]})
    canonicalize_header(path)
    (out / "cases.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    (out / "README.md").write_text(README, encoding="utf-8")
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {path} ({path.stat().st_size} bytes), {len(doc['cases'])} cases; folder total {total} bytes")


if __name__ == "__main__":
    main()
