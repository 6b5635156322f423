#!/usr/bin/env python3
"""Generate tiny random-weight Stable Diffusion model folders and PyTorch reference
activations for the Swift model tests.

Output (under Tests/Fixtures/models/, see the README.md written there):
  tiny-sd15/    diffusers pipeline folder, SD1.5 style (conv proj, int attention_head_dim,
                quick_gelu CLIP, LCMScheduler). No tokenizer/ folder (provided separately).
  tiny-sd21/    diffusers pipeline folder, SD2.1 / sd-turbo style (linear proj, per-level
                attention_head_dim list, gelu CLIP, EulerDiscreteScheduler "trailing").
  tiny-taesd/   single-model folder like madebyollin/taesd (AutoencoderTiny).
  activations/  float32 reference tensors (safetensors) computed with the fp32 models.

Every model is built from a config (no hub access) and every parameter is re-drawn from
a seeded generator so that activations stay O(1) (see init_weights). Each model is saved
with save_pretrained in float32 plus an fp16 variant (`*.fp16.safetensors`, the fp32
weights rounded with .half()).

Conventions (the Swift tests rely on these):
  * All activation tensors are float32, contiguous. Image/latent tensors (4-D) are
    stored channels-last (NHWC), permuted from PyTorch's NCHW. Token ids and
    timesteps are stored as F32 too.
  * Scalar parameters / notes are safetensors "__metadata__" strings (sorted keys).
  * References are computed in float32, eval mode, torch.no_grad, single-threaded.

Deterministic: fixed seeds (SEEDS below), torch.use_deterministic_algorithms, one thread.
Re-running regenerates byte-identical weight and activation files (the json configs
carry the diffusers/transformers version strings).

Usage: python3 tools/make_model_fixtures.py [--out DIR] [--skip-verify]
Requirements: tools/requirements.txt
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import struct
import sys
import tempfile
import warnings
from pathlib import Path

import torch
import torch.nn as nn
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import diffusers
import transformers
from diffusers import (
    AutoencoderKL,
    AutoencoderTiny,
    EulerDiscreteScheduler,
    LCMScheduler,
    StableDiffusionPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel

import sys
sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixture_io import canonicalize_header  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "Tests" / "Fixtures" / "models"

# One seed per model (weights) and per activation file (inputs).
SEEDS = {
    "sd15.unet": 1501,
    "sd15.vae": 1502,
    "sd15.text_encoder": 1503,
    "sd21.unet": 2101,
    "sd21.vae": 2102,
    "sd21.text_encoder": 2103,
    "taesd": 3001,
    "inputs.sd15.text": 11,
    "inputs.sd15.unet": 12,
    "inputs.sd15.vae": 13,
    "inputs.sd21.text": 21,
    "inputs.sd21.unet": 22,
    "inputs.sd21.vae": 23,
    "inputs.taesd": 31,
}

VOCAB_SIZE = 1000
BOS_ID = 998  # stands in for <|startoftext|> (49406 in the real CLIP vocab)
EOS_ID = 999  # stands in for <|endoftext|>  (49407)

# ----------------------------------------------------------------------------- configs

SD15_UNET = dict(
    sample_size=8,
    in_channels=4,
    out_channels=4,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    block_out_channels=(8, 16, 16),
    layers_per_block=2,
    attention_head_dim=2,  # diffusers quirk: this is the number of heads (head dim 4/8/8)
    cross_attention_dim=32,
    norm_num_groups=4,
    use_linear_projection=False,
)

SD21_UNET = dict(
    sample_size=8,
    in_channels=4,
    out_channels=4,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    block_out_channels=(8, 16, 24),
    layers_per_block=2,
    attention_head_dim=[2, 4, 6],  # heads per level -> head dim 4 everywhere (SD2: 64)
    cross_attention_dim=48,
    norm_num_groups=4,
    use_linear_projection=True,
)

VAE = dict(
    sample_size=64,
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(4, 8, 8, 8),  # 4 levels -> spatial factor 8 like the real SD VAE (128,256,512,512)
    layers_per_block=1,
    latent_channels=4,
    norm_num_groups=2,
    scaling_factor=0.18215,
)

TAESD = dict(
    in_channels=3,
    out_channels=3,
    encoder_block_out_channels=(8, 8, 8, 8),
    decoder_block_out_channels=(8, 8, 8, 8),
    num_encoder_blocks=(1, 3, 3, 3),
    num_decoder_blocks=(3, 3, 3, 1),
    latent_channels=4,
    latent_magnitude=3,
    latent_shift=0.5,
    scaling_factor=1.0,
)

SD15_TEXT = dict(
    vocab_size=VOCAB_SIZE,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    max_position_embeddings=77,
    hidden_act="quick_gelu",
    layer_norm_eps=1e-5,
    projection_dim=32,
    # Legacy placeholder ids as in the real SD text_encoder/config.json (ignored by SD).
    bos_token_id=0,
    eos_token_id=2,
    pad_token_id=1,
)

SD21_TEXT = dict(
    SD15_TEXT,
    hidden_size=48,
    intermediate_size=96,
    num_hidden_layers=3,
    num_attention_heads=4,
    hidden_act="gelu",
    projection_dim=48,
)

# ----------------------------------------------------------------------------- helpers


def nhwc(t: torch.Tensor) -> torch.Tensor:
    assert t.dim() == 4
    return t.permute(0, 2, 3, 1).float().contiguous()


def nchw(t: torch.Tensor) -> torch.Tensor:
    assert t.dim() == 4
    return t.permute(0, 3, 1, 2).contiguous()


def f32(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(torch.float32).contiguous()


def save_tensors(path: Path, tensors: dict, metadata: dict) -> None:
    for k, v in tensors.items():
        assert v.dtype == torch.float32, (path.name, k, v.dtype)
        assert torch.isfinite(v).all(), (path.name, k)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path),
              metadata={k: str(v) for k, v in metadata.items()})
    canonicalize_header(path)


@torch.no_grad()
def init_weights(model: nn.Module, seed: int, *, gain: float = 1.0, bias_scale: float = 0.1,
                 norm_jitter: float = 0.1, emb_scale: float = 0.5) -> None:
    """Re-draw every parameter from a seeded generator:
      Conv2d / Linear weight: N(0, 1) * gain / sqrt(fan_in)   (variance preserving)
      Conv2d / Linear bias:   N(0, 1) * bias_scale
      GroupNorm / LayerNorm:  weight 1 + N(0,1)*norm_jitter, bias N(0,1)*norm_jitter
      Embedding:              N(0, 1) * emb_scale
    Fails if the model has a parameter of any other kind."""
    g = torch.Generator().manual_seed(seed)

    def rn(shape):
        return torch.randn(shape, generator=g, dtype=torch.float32)

    done = set()
    for mname, mod in model.named_modules():
        if isinstance(mod, (nn.Conv2d, nn.Linear)):
            fan_in = mod.weight[0].numel()
            mod.weight.copy_(rn(mod.weight.shape) * (gain / math.sqrt(fan_in)))
            done.add(id(mod.weight))
            if mod.bias is not None:
                mod.bias.copy_(rn(mod.bias.shape) * bias_scale)
                done.add(id(mod.bias))
        elif isinstance(mod, (nn.GroupNorm, nn.LayerNorm)):
            if mod.weight is not None:
                mod.weight.copy_(1.0 + rn(mod.weight.shape) * norm_jitter)
                done.add(id(mod.weight))
            if mod.bias is not None:
                mod.bias.copy_(rn(mod.bias.shape) * norm_jitter)
                done.add(id(mod.bias))
        elif isinstance(mod, nn.Embedding):
            mod.weight.copy_(rn(mod.weight.shape) * emb_scale)
            done.add(id(mod.weight))
    missing = [n for n, p in model.named_parameters() if id(p) not in done]
    if missing:
        raise AssertionError(f"parameters not re-initialised: {missing}")


class LayerStats:
    """Forward hooks on every leaf module with parameters (and the blocks that have
    none): record the output std / max|x| to catch collapsing or exploding layers."""

    def __init__(self, model: nn.Module):
        self.rows = []
        self.handles = []
        for name, mod in model.named_modules():
            if name and len(list(mod.children())) == 0:
                self.handles.append(mod.register_forward_hook(self._hook(name)))

    def _hook(self, name):
        def fn(_mod, _inp, out):
            if isinstance(out, (tuple, list)):
                out = out[0]
            if isinstance(out, torch.Tensor) and out.is_floating_point() and out.numel() > 1:
                o = out.detach().float()
                self.rows.append((name, o.std().item(), o.abs().max().item()))
        return fn

    def close(self):
        for h in self.handles:
            h.remove()

    def report(self, label: str, problems: list) -> str:
        if not self.rows:
            return f"  {label}: no layer stats"
        lo = min(self.rows, key=lambda r: r[1])
        hi = max(self.rows, key=lambda r: r[2])
        for name, sd, mx in self.rows:
            # Dropout / identity outputs are the same as their inputs; anything tiny or huge is a problem
            if sd < 0.05 or mx > 50:
                problems.append(f"{label}: layer {name} std={sd:.4g} max={mx:.4g}")
        return (f"  {label}: {len(self.rows)} layer outputs; min std {lo[1]:.3f} ({lo[0]}), "
                f"max |x| {hi[2]:.2f} ({hi[0]})")


def stats(t: torch.Tensor) -> str:
    t = t.float()
    sd = t.std().item() if t.numel() > 1 else 0.0
    return f"mean {t.mean().item():+.4f} std {sd:.4f} max|x| {t.abs().max().item():.4f}"


def save_model_dir(model, out_dir: Path) -> None:
    """diffusers model: fp32 save_pretrained + fp16 variant (weights file only copied,
    config.json comes from the fp32 save)."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    with tempfile.TemporaryDirectory() as tmp:
        half = type(model).from_config(model.config)
        half.load_state_dict(model.state_dict())
        half = half.half()
        half.save_pretrained(tmp, safe_serialization=True, variant="fp16")
        cfg32 = json.loads((out_dir / "config.json").read_text())
        cfg16 = json.loads((Path(tmp) / "config.json").read_text())
        assert cfg32 == cfg16, "fp16 config differs"
        for f in Path(tmp).glob("*.fp16.safetensors"):
            shutil.copyfile(f, out_dir / f.name)


def save_clip_dir(model: CLIPTextModel, out_dir: Path) -> None:
    """transformers 5.x saves a freshly built CLIPTextModel without the `text_model.`
    key prefix; real SD repos (and the spec) use `text_model.embeddings...`, which
    transformers 5 maps on load (PrefixChange). So the weights are written here with the
    prefix, with the same {"format": "pt"} metadata save_pretrained writes; config.json
    comes from save_pretrained (fp32)."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    model.save_pretrained(str(out_dir))  # config.json (+ unprefixed weights, replaced below)
    for f in out_dir.glob("*.safetensors"):
        f.unlink()
    sd = {f"text_model.{k}": v.detach().contiguous() for k, v in model.state_dict().items()
          if not k.endswith("position_ids")}
    save_file({k: v.float().contiguous() for k, v in sd.items()}, str(out_dir / "model.safetensors"),
              metadata={"format": "pt"})
    save_file({k: v.half().contiguous() for k, v in sd.items()}, str(out_dir / "model.fp16.safetensors"),
              metadata={"format": "pt"})


def write_model_index(pipe_dir: Path, scheduler_cls: str) -> None:
    """model_index.json as StableDiffusionPipeline.save_pretrained writes it. Built with
    a real pipeline object (tokenizer/safety_checker/feature_extractor/image_encoder =
    None), then the tokenizer entry is set to CLIPTokenizer (its files are linked in
    separately)."""
    unet = UNet2DConditionModel(**SD15_UNET)
    vae = AutoencoderKL(**VAE)
    te = CLIPTextModel(CLIPTextConfig(**SD15_TEXT))
    sched = {"LCMScheduler": LCMScheduler, "EulerDiscreteScheduler": EulerDiscreteScheduler}[scheduler_cls]()
    with warnings.catch_warnings():  # steps_offset deprecation note about the default scheduler
        warnings.simplefilter("ignore")
        pipe = StableDiffusionPipeline(vae=vae, text_encoder=te, tokenizer=None, unet=unet, scheduler=sched,
                                       safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False)
    with tempfile.TemporaryDirectory() as tmp:
        pipe.save_config(tmp)
        idx = json.loads((Path(tmp) / "model_index.json").read_text())
    idx["tokenizer"] = ["transformers", "CLIPTokenizer"]
    (pipe_dir / "model_index.json").write_text(json.dumps(idx, indent=2, sort_keys=True) + "\n")


# ----------------------------------------------------------------------------- builders


def build_unet(cfg, seed):
    m = UNet2DConditionModel(**cfg)
    init_weights(m, seed)
    return m.eval()


def build_vae(seed):
    m = AutoencoderKL(**VAE)
    init_weights(m, seed)
    return m.eval()


def build_taesd(seed):
    m = AutoencoderTiny(**TAESD)
    # ReLU network with residual blocks (skip + conv branch, then ReLU): a gain a bit above 1
    # keeps the conv branches comparable to the skip path without growing through 20 blocks.
    init_weights(m, seed, gain=1.05)
    return m.eval()


def build_text(cfg, seed):
    m = CLIPTextModel(CLIPTextConfig(**cfg))
    init_weights(m, seed, emb_scale=0.5)
    return m.eval()


# ----------------------------------------------------------------------------- activations


def make_ids(gen: torch.Generator, lengths, pad_id: int) -> torch.Tensor:
    rows = []
    for n in lengths:
        body = torch.randint(1, BOS_ID, (n,), generator=gen)
        row = torch.cat([torch.tensor([BOS_ID]), body, torch.tensor([EOS_ID])])
        row = torch.cat([row, torch.full((77 - row.numel(),), pad_id)])
        rows.append(row)
    return torch.stack(rows).long()


@torch.no_grad()
def text_activations(model: CLIPTextModel, seed: int, pad_id: int, style: str):
    gen = torch.Generator().manual_seed(seed)
    ids = make_ids(gen, (14, 5), pad_id)
    out = model(ids, output_hidden_states=True)
    last = out.last_hidden_state
    hs = out.hidden_states
    assert len(hs) == model.config.num_hidden_layers + 1
    assert torch.allclose(model.final_layer_norm(hs[-1]), last, atol=1e-6)
    pen = model.final_layer_norm(hs[-2])
    tensors = {
        "input_ids": ids.float(),
        "last_hidden_state": f32(last),
        "hidden_state_penultimate": f32(pen),
        "pooler_output": f32(out.pooler_output),
    }
    md = dict(
        style=style,
        bos_id=BOS_ID, eos_id=EOS_ID, pad_id=pad_id, vocab_size=VOCAB_SIZE,
        prompt_lengths="14,5 (tokens between BOS and EOS)",
        input_ids_dtype="stored as F32, integral values",
        last_hidden_state="CLIPTextModel(input_ids).last_hidden_state (after final_layer_norm), no attention mask",
        hidden_state_penultimate="final_layer_norm(hidden_states[-2]) = clip_skip 2 (diffusers clip_skip=1 semantics)",
        pooler_output="last_hidden_state at argmax(input_ids) per row (legacy eos_token_id==2 rule) = first EOS here",
        hidden_act=model.config.hidden_act,
    )
    return tensors, md, ids


@torch.no_grad()
def unet_activations(model: UNet2DConditionModel, seed: int, ehs: torch.Tensor, style: str):
    gen = torch.Generator().manual_seed(seed)
    cross = model.config.cross_attention_dim
    sample = torch.randn(2, 4, 8, 8, generator=gen)
    timesteps = torch.tensor([999.0, 259.0])
    assert ehs.shape == (2, 77, cross)

    # Intermediates of the batch-2 case (debug aids for a mismatching port).
    inter = {}
    hooks = []

    def grab(name):
        def fn(_m, _i, o):
            inter[name] = o[0] if isinstance(o, tuple) else o
        return fn

    hooks.append(model.time_proj.register_forward_hook(grab("debug_t_sinusoid")))
    hooks.append(model.time_embedding.register_forward_hook(grab("debug_t_emb")))
    hooks.append(model.conv_in.register_forward_hook(grab("debug_conv_in")))
    for i, b in enumerate(model.down_blocks):
        hooks.append(b.register_forward_hook(grab(f"debug_down_{i}")))
    hooks.append(model.mid_block.register_forward_hook(grab("debug_mid")))
    for i, b in enumerate(model.up_blocks):
        hooks.append(b.register_forward_hook(grab(f"debug_up_{i}")))
    out = model(sample, timesteps, encoder_hidden_states=ehs).sample
    for h in hooks:
        h.remove()

    sample_b1 = torch.randn(1, 4, 8, 8, generator=gen)
    ehs_b1 = torch.randn(1, 77, cross, generator=gen)
    t_b1 = torch.tensor([500.0])
    out_b1 = model(sample_b1, t_b1, encoder_hidden_states=ehs_b1).sample

    # Odd latent size: 10 x 14 is not a multiple of 2**num_upsamplers = 4, so diffusers
    # passes `upsample_size` (the skip tensor's H, W) to every upsampler:
    # 10x14 -> 5x7 -> 3x4 on the way down; up: 3x4 -> nearest to 5x7 -> 10x14.
    sample_odd = torch.randn(1, 4, 10, 14, generator=gen)
    ehs_odd = torch.randn(1, 77, cross, generator=gen)
    t_odd = torch.tensor([759.0])
    out_odd = model(sample_odd, t_odd, encoder_hidden_states=ehs_odd).sample

    tensors = {
        "sample": nhwc(sample),
        "timesteps": timesteps,
        "encoder_hidden_states": f32(ehs),
        "output": nhwc(out),
        "sample_b1": nhwc(sample_b1),
        "timesteps_b1": t_b1,
        "ehs_b1": f32(ehs_b1),
        "output_b1": nhwc(out_b1),
        "sample_odd": nhwc(sample_odd),
        "timesteps_odd": t_odd,
        "ehs_odd": f32(ehs_odd),
        "output_odd": nhwc(out_odd),
    }
    for k, v in inter.items():
        tensors[k] = nhwc(v) if v.dim() == 4 else f32(v)
    md = dict(
        style=style,
        layout="NHWC for sample/output/debug_* 4-D tensors",
        call="unet(sample, timesteps, encoder_hidden_states).sample (float32, eval)",
        timesteps="999,259", timesteps_b1="500", timesteps_odd="759",
        encoder_hidden_states_source="last_hidden_state of the text fixture of the same model (input_ids there)",
        ehs_b1_source="randn", ehs_odd_source="randn",
        odd_case="10x14 latent (not a multiple of 4): diffusers forwards upsample_size = skip H,W; "
                 "Upsample2D uses F.interpolate(size=..., mode='nearest') i.e. src = floor(dst * in / out)",
        debug="debug_t_sinusoid = time_proj(timesteps) [2, C0]; debug_t_emb = time_embedding(...) [2, 4*C0]; "
              "debug_conv_in; debug_down_i = hidden state output of down block i (after its downsampler); "
              "debug_mid; debug_up_i = output of up block i (after its upsampler) -- batch-2 case only",
    )
    return tensors, md


@torch.no_grad()
def vae_activations(model: AutoencoderKL, seed: int, style: str):
    gen = torch.Generator().manual_seed(seed)
    image = torch.rand(1, 3, 32, 32, generator=gen) * 2 - 1
    dist = model.encode(image).latent_dist
    latents = torch.randn(1, 4, 4, 4, generator=gen)
    decoded = model.decode(latents).sample
    tensors = {
        "image": nhwc(image),
        "latent_mean": nhwc(dist.mean),
        "latent_logvar": nhwc(dist.logvar),
        "latents": nhwc(latents),
        "decoded": nhwc(decoded),
    }
    md = dict(
        style=style,
        layout="NHWC",
        image="uniform in [-1, 1]",
        latent_mean="vae.encode(image).latent_dist.mean: quant_conv output channels 0..3, NOT multiplied by scaling_factor",
        latent_logvar="latent_dist.logvar (channels 4..7 of quant_conv output, clamped to [-30, 20])",
        latents="randn, fed to decode as is",
        decoded="vae.decode(latents).sample: decode applies post_quant_conv + decoder only; no division by "
                "scaling_factor inside (the pipeline does latents / scaling_factor before decode) and no clamp "
                "(the image processor does (x/2+0.5).clamp(0,1))",
        scaling_factor=VAE["scaling_factor"],
    )
    return tensors, md


@torch.no_grad()
def taesd_activations(model: AutoencoderTiny, seed: int):
    gen = torch.Generator().manual_seed(seed)
    image = torch.rand(1, 3, 32, 32, generator=gen) * 2 - 1
    encoded = model.encode(image).latents
    latents = torch.randn(1, 4, 4, 4, generator=gen) * 1.5
    decoded = model.decode(latents).sample
    tensors = {
        "image": nhwc(image),
        "encoded": nhwc(encoded),
        "latents": nhwc(latents),
        "decoded": nhwc(decoded),
    }
    md = dict(
        layout="NHWC",
        image="uniform in [-1, 1]",
        encoded="AutoencoderTiny.encode(image).latents: EncoderTiny maps the image [-1,1] -> [0,1] "
                "(x.add(1).div(2)) before its first conv; output = last conv, no scaling, no clamp",
        latents="randn * 1.5 (so the tanh clamp is exercised)",
        decoded="AutoencoderTiny.decode(latents).sample: DecoderTiny applies tanh(x/3)*3 to the input, "
                "then its layers, then maps [0,1] -> [-1,1] with x.mul(2).sub(1); no output clamp",
        scaling_factor=TAESD["scaling_factor"],
    )
    return tensors, md


# ----------------------------------------------------------------------------- verification


def compare(label, got, want, atol, rtol, problems):
    err = (got.float() - want.float()).abs()
    tol = atol + rtol * want.float().abs()
    ok = bool((err <= tol).all())
    msg = f"    {label}: max abs err {err.max().item():.3g} {'ok' if ok else 'FAIL'}"
    if not ok:
        problems.append(msg.strip())
    return msg


def check_fp16_file(dir_: Path, fname32: str, fname16: str, problems):
    a = load_file(str(dir_ / fname32))
    b = load_file(str(dir_ / fname16))
    if a.keys() != b.keys():
        problems.append(f"{dir_}: fp16 keys differ")
        return
    for k in a:
        if a[k].dtype != torch.float32 or b[k].dtype != torch.float16 or not torch.equal(a[k].half(), b[k]):
            problems.append(f"{dir_}/{fname16}: {k} is not the fp16 rounding of the fp32 tensor")
            return


@torch.no_grad()
def verify(out: Path, problems: list) -> list:
    lines = ["verification (reload from disk):"]
    act = out / "activations"
    fp16_tol = dict(atol=3e-2, rtol=3e-2)
    for style in ("sd15", "sd21"):
        pdir = out / f"tiny-{style}"
        # text encoder
        t = load_file(str(act / f"tiny-{style}-text.safetensors"))
        ids = t["input_ids"].long()
        for variant in (None, "fp16"):
            m, info = CLIPTextModel.from_pretrained(
                str(pdir / "text_encoder"), variant=variant, output_loading_info=True,
                dtype=torch.float16 if variant else torch.float32)
            bad = {k: v for k, v in info.items() if v}
            if bad:
                problems.append(f"{style} text_encoder {variant}: loading info {bad}")
            m = m.float().eval()
            o = m(ids, output_hidden_states=True)
            tol = fp16_tol if variant else dict(atol=1e-5, rtol=1e-5)
            lines.append(compare(f"{style} text_encoder[{variant or 'fp32'}] last_hidden_state",
                                 o.last_hidden_state, t["last_hidden_state"], problems=problems, **tol))
            lines.append(compare(f"{style} text_encoder[{variant or 'fp32'}] penultimate",
                                 m.final_layer_norm(o.hidden_states[-2]), t["hidden_state_penultimate"],
                                 problems=problems, **tol))
        check_fp16_file(pdir / "text_encoder", "model.safetensors", "model.fp16.safetensors", problems)
        keys = list(safe_open(str(pdir / "text_encoder" / "model.safetensors"), "pt").keys())
        if not all(k.startswith("text_model.") for k in keys):
            problems.append(f"{style} text_encoder keys lack text_model. prefix")

        # unet
        u = load_file(str(act / f"tiny-{style}-unet.safetensors"))
        for variant in (None, "fp16"):
            m = UNet2DConditionModel.from_pretrained(
                str(pdir / "unet"), variant=variant,
                torch_dtype=torch.float16 if variant else torch.float32).float().eval()
            tol = fp16_tol if variant else dict(atol=1e-5, rtol=1e-5)
            for suf, (s, tk, e) in {"": ("sample", "timesteps", "encoder_hidden_states"),
                                    "_b1": ("sample_b1", "timesteps_b1", "ehs_b1"),
                                    "_odd": ("sample_odd", "timesteps_odd", "ehs_odd")}.items():
                o = m(nchw(u[s]), u[tk], encoder_hidden_states=u[e]).sample
                lines.append(compare(f"{style} unet[{variant or 'fp32'}] output{suf}", nhwc(o),
                                     u["output" + suf], problems=problems, **tol))
        check_fp16_file(pdir / "unet", "diffusion_pytorch_model.safetensors",
                        "diffusion_pytorch_model.fp16.safetensors", problems)

        # vae
        v = load_file(str(act / f"tiny-{style}-vae.safetensors"))
        for variant in (None, "fp16"):
            m = AutoencoderKL.from_pretrained(
                str(pdir / "vae"), variant=variant,
                torch_dtype=torch.float16 if variant else torch.float32).float().eval()
            tol = fp16_tol if variant else dict(atol=1e-5, rtol=1e-5)
            lines.append(compare(f"{style} vae[{variant or 'fp32'}] latent_mean",
                                 nhwc(m.encode(nchw(v["image"])).latent_dist.mean), v["latent_mean"],
                                 problems=problems, **tol))
            lines.append(compare(f"{style} vae[{variant or 'fp32'}] decoded",
                                 nhwc(m.decode(nchw(v["latents"])).sample), v["decoded"],
                                 problems=problems, **tol))
        check_fp16_file(pdir / "vae", "diffusion_pytorch_model.safetensors",
                        "diffusion_pytorch_model.fp16.safetensors", problems)

        # whole pipeline folder loads (tokenizer folder is absent here -> pass None)
        try:
            pipe = StableDiffusionPipeline.from_pretrained(str(pdir), tokenizer=None, safety_checker=None,
                                                           feature_extractor=None)
            lines.append(f"    {style} pipeline folder loads: scheduler {type(pipe.scheduler).__name__} "
                         f"{dict((k, pipe.scheduler.config[k]) for k in ('timestep_spacing', 'beta_schedule', 'steps_offset'))}")
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{style} pipeline from_pretrained failed: {exc!r}")

    # taesd
    tdir = out / "tiny-taesd"
    a = load_file(str(act / "tiny-taesd.safetensors"))
    for variant in (None, "fp16"):
        m = AutoencoderTiny.from_pretrained(str(tdir), variant=variant,
                                            torch_dtype=torch.float16 if variant else torch.float32).float().eval()
        tol = fp16_tol if variant else dict(atol=1e-5, rtol=1e-5)
        lines.append(compare(f"taesd[{variant or 'fp32'}] encoded", nhwc(m.encode(nchw(a["image"])).latents),
                             a["encoded"], problems=problems, **tol))
        lines.append(compare(f"taesd[{variant or 'fp32'}] decoded", nhwc(m.decode(nchw(a["latents"])).sample),
                             a["decoded"], problems=problems, **tol))
    check_fp16_file(tdir, "diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors",
                    problems)
    return lines


# ----------------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--skip-verify", action="store_true")
    args = ap.parse_args()
    out: Path = args.out

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)

    problems: list[str] = []
    report: list[str] = [f"torch {torch.__version__}, diffusers {diffusers.__version__}, "
                         f"transformers {transformers.__version__}"]
    act_dir = out / "activations"
    act_dir.mkdir(parents=True, exist_ok=True)

    styles = {
        "sd15": dict(unet=SD15_UNET, text=SD15_TEXT, pad_id=EOS_ID, scheduler=LCMScheduler()),
        "sd21": dict(unet=SD21_UNET, text=SD21_TEXT, pad_id=0,
                     scheduler=EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012,
                                                      beta_schedule="scaled_linear", steps_offset=1,
                                                      timestep_spacing="trailing",
                                                      prediction_type="epsilon")),
    }
    for style, spec in styles.items():
        pdir = out / f"tiny-{style}"
        pdir.mkdir(parents=True, exist_ok=True)
        for sub in ("unet", "vae", "text_encoder", "scheduler"):
            if (pdir / sub).exists():
                shutil.rmtree(pdir / sub)

        text = build_text(spec["text"], SEEDS[f"{style}.text_encoder"])
        unet = build_unet(spec["unet"], SEEDS[f"{style}.unet"])
        vae = build_vae(SEEDS[f"{style}.vae"])

        # activations (with per-layer stats)
        ls = LayerStats(text)
        tt, tmd, _ = text_activations(text, SEEDS[f"inputs.{style}.text"], spec["pad_id"], style)
        ls.close()
        report.append(ls.report(f"{style} text_encoder", problems))
        ls = LayerStats(unet)
        ut, umd = unet_activations(unet, SEEDS[f"inputs.{style}.unet"], tt["last_hidden_state"], style)
        ls.close()
        report.append(ls.report(f"{style} unet", problems))
        ls = LayerStats(vae)
        vt, vmd = vae_activations(vae, SEEDS[f"inputs.{style}.vae"], style)
        ls.close()
        report.append(ls.report(f"{style} vae", problems))

        for name, (tens, md) in {"text": (tt, tmd), "unet": (ut, umd), "vae": (vt, vmd)}.items():
            md = dict(md, model=f"tiny-{style}", seed_inputs=SEEDS[f"inputs.{style}.{name}"],
                      torch=torch.__version__, diffusers=diffusers.__version__,
                      transformers=transformers.__version__)
            save_tensors(act_dir / f"tiny-{style}-{name}.safetensors", tens, md)
            for k, v in tens.items():
                report.append(f"    {style}-{name}.{k} {list(v.shape)}: {stats(v)}")

        # model folders
        save_model_dir(unet, pdir / "unet")
        save_model_dir(vae, pdir / "vae")
        save_clip_dir(text, pdir / "text_encoder")
        spec["scheduler"].save_config(str(pdir / "scheduler"))
        write_model_index(pdir, type(spec["scheduler"]).__name__)

    # taesd
    taesd = build_taesd(SEEDS["taesd"])
    ls = LayerStats(taesd)
    at, amd = taesd_activations(taesd, SEEDS["inputs.taesd"])
    ls.close()
    report.append(ls.report("taesd", problems))
    amd = dict(amd, model="tiny-taesd", seed_inputs=SEEDS["inputs.taesd"], torch=torch.__version__,
               diffusers=diffusers.__version__)
    save_tensors(act_dir / "tiny-taesd.safetensors", at, amd)
    for k, v in at.items():
        report.append(f"    taesd.{k} {list(v.shape)}: {stats(v)}")
    save_model_dir(taesd, out / "tiny-taesd")

    if not args.skip_verify:
        report.extend(verify(out, problems))

    report.append("files:")
    total = 0
    for f in sorted(out.rglob("*")):
        if f.is_file():
            total += f.stat().st_size
            report.append(f"    {f.relative_to(out)}  {f.stat().st_size}")
    report.append(f"total {total} bytes ({total / 1e6:.2f} MB)")
    print("\n".join(report))
    if problems:
        print("\nPROBLEMS:\n  " + "\n  ".join(problems))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
