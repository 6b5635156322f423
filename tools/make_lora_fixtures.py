#!/usr/bin/env python3
# Requirements: the pins of tools/model_fixtures_requirements.txt (torch 2.13.0+cpu,
# diffusers 0.39.0, transformers 5.24.0, safetensors 0.8.0) plus
#   peft==0.21.2   (pip install peft==0.21.2; it pulls accelerate 1.15.0 and psutil)
"""Generate LoRA (LCM-LoRA style) test fixtures for the tiny SD1.5 UNet.

Input (made by tools/make_model_fixtures.py, read only):
  Tests/Fixtures/models/tiny-sd15/unet/                       base UNet (fp32)
  Tests/Fixtures/models/activations/tiny-sd15-unet.safetensors sample [2,8,8,4] NHWC,
                                                               timesteps [2], encoder_hidden_states [2,77,32]
Output (Tests/Fixtures/models/lora/, see the README.md written there):
  tiny-sd15-lora-diffusers.safetensors  diffusers/PEFT format, written by
                                        StableDiffusionPipeline.save_lora_weights
  tiny-sd15-lora-kohya.safetensors      kohya / A1111 "lora_unet_" format
  tiny-sd15-lora-unmatched.safetensors  kohya file + 2 keys that match no module
  tiny-sd15-lora-reference.safetensors  fused UNet outputs (lora_scale 1.0 and 0.5) and
                                        fused example weights

The LoRA: rank 4, lora_alpha 8 (alpha/r = 2) on the LCM-LoRA target modules (TARGETS).
Every lora_A (down) / lora_B (up) weight is redrawn as randn * 0.1 from a seeded
generator (in sorted parameter-name order), so B is non-zero (unlike peft's default init).

Fusing: W' = W + lora_scale * (alpha / r) * (up.reshape(out, r) @ down.reshape(r, -1)).reshape(W.shape)
The references are diffusers' `pipe.load_lora_weights(...); pipe.fuse_lora(lora_scale=s)`, each from a
freshly loaded base UNet; the script checks that this matches the formula above applied by hand,
the un-fused adapter run with cross_attention_kwargs={"scale": s}, and that the kohya file loaded
by diffusers gives the same result.

Deterministic: re-running gives byte-identical files (metadata keys in the header are sorted).
Usage: python3 tools/make_lora_fixtures.py [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import struct
import sys
import tempfile
import warnings
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import diffusers
import peft
import safetensors
import transformers
from diffusers import StableDiffusionPipeline, UNet2DConditionModel
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict

import sys
sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixture_io import canonicalize_header  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
MODELS = REPO_ROOT / "Tests" / "Fixtures" / "models"
BASE_PIPE = MODELS / "tiny-sd15"
BASE_UNET = BASE_PIPE / "unet"
INPUTS = MODELS / "activations" / "tiny-sd15-unet.safetensors"
DEFAULT_OUT = MODELS / "lora"

RANK = 4
ALPHA = 8
INIT_STD = 0.1
SEED = 1601
SCALES = (1.0, 0.5)
# peft target_modules: a module matches when its name equals an entry or ends with "." + entry.
TARGETS = [
    "to_q", "to_k", "to_v", "to_out.0",      # attn1 / attn2 projections (Linear)
    "proj_in", "proj_out",                   # Transformer2DModel, 1x1 Conv2d here (use_linear_projection false)
    "ff.net.0.proj", "ff.net.2",             # GEGLU proj / FF output (Linear)
    "conv1", "conv2",                        # ResnetBlock2D 3x3 convs
    "time_emb_proj",                         # ResnetBlock2D time embedding (Linear)
    "conv_shortcut",                         # ResnetBlock2D 1x1 shortcut, where in != out channels
]
FUSED_EXAMPLES = [
    "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight",  # Linear [8, 8]
    "down_blocks.0.resnets.0.conv1.weight",                               # 3x3 conv [8, 8, 3, 3]
    "down_blocks.0.attentions.0.proj_in.weight",                          # 1x1 conv [8, 8, 1, 1]
]
UNMATCHED = {
    "lora_unet_down_blocks_9_nonexistent.lora_down.weight": (RANK, 8),
    "lora_unet_down_blocks_9_nonexistent.lora_up.weight": (8, RANK),
}

VERSIONS = dict(torch=torch.__version__, diffusers=diffusers.__version__, peft=peft.__version__,
                transformers=transformers.__version__, safetensors=safetensors.__version__)


# ----------------------------------------------------------------------------- helpers

def nhwc(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(torch.float32).permute(0, 2, 3, 1).contiguous()


def nchw(t: torch.Tensor) -> torch.Tensor:
    return t.permute(0, 3, 1, 2).contiguous()


def save_tensors(path: Path, tensors: dict, metadata: dict) -> None:
    for k, v in tensors.items():
        assert v.dtype == torch.float32, (path.name, k, v.dtype)
        assert torch.isfinite(v).all(), (path.name, k)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path),
              metadata={k: str(v) for k, v in metadata.items()})
    canonicalize_header(path)


def load_base_unet() -> UNet2DConditionModel:
    unet = UNet2DConditionModel.from_pretrained(str(BASE_UNET), torch_dtype=torch.float32)
    return unet.eval()


def load_pipe() -> StableDiffusionPipeline:
    """A fresh StableDiffusionPipeline (fp32) around a freshly loaded base UNet."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe = StableDiffusionPipeline.from_pretrained(
            str(BASE_PIPE), torch_dtype=torch.float32, safety_checker=None,
            feature_extractor=None, requires_safety_checker=False)
    pipe.unet.eval()
    return pipe


def kohya_name(path: str) -> str:
    return "lora_unet_" + path.replace(".", "_")


def maxdiff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.float() - b.float()).abs().max().item()


# ----------------------------------------------------------------------------- build the LoRA

@torch.no_grad()
def build_lora() -> tuple[dict, dict]:
    """Returns (peft state dict with module paths (`<path>.lora_A.weight`), adapter config dict)."""
    unet = load_base_unet()
    config = LoraConfig(r=RANK, lora_alpha=ALPHA, target_modules=TARGETS, init_lora_weights=True)
    unet.add_adapter(config)
    gen = torch.Generator().manual_seed(SEED)
    params = dict(unet.named_parameters())
    lora_names = sorted(n for n in params if ".lora_A." in n or ".lora_B." in n)
    for n in lora_names:
        p = params[n]
        p.copy_(torch.randn(p.shape, generator=gen) * INIT_STD)
    sd = get_peft_model_state_dict(unet)
    sd = {k: v.detach().clone().contiguous() for k, v in sorted(sd.items())}
    assert len(sd) == len(lora_names), (len(sd), len(lora_names))
    cfg = unet.peft_config["default"].to_dict()
    # to_dict() keeps target_modules as a set; a sorted list keeps the file deterministic.
    cfg["target_modules"] = sorted(cfg["target_modules"])
    cfg["peft_type"] = str(cfg["peft_type"].value if hasattr(cfg["peft_type"], "value") else cfg["peft_type"])
    return sd, cfg


def module_table(sd: dict) -> dict:
    """module path -> (down, up)"""
    mods = {}
    for k, v in sd.items():
        path, rest = k.split(".lora_", 1)
        mods.setdefault(path, {})["down" if rest.startswith("A.") else "up"] = v
    return {p: (m["down"], m["up"]) for p, m in sorted(mods.items())}


# ----------------------------------------------------------------------------- fusing

def delta(down: torch.Tensor, up: torch.Tensor, shape) -> torch.Tensor:
    r = down.shape[0]
    return (up.reshape(up.shape[0], r).double() @ down.reshape(r, -1).double()).reshape(shape)


@torch.no_grad()
def manual_fused_unet(mods: dict, alpha: float, scale: float) -> UNet2DConditionModel:
    """The spec formula applied by hand to a fresh base UNet (product in float64, cast to f32)."""
    unet = load_base_unet()
    params = dict(unet.named_parameters())
    for path, (down, up) in mods.items():
        w = params[path + ".weight"]
        r = down.shape[0]
        w.copy_((w.double() + scale * (alpha / r) * delta(down, up, w.shape)).float())
    return unet


@torch.no_grad()
def diffusers_fused(lora_file: Path, scale: float, fuse: bool = True):
    """pipe.load_lora_weights + pipe.fuse_lora(lora_scale=scale) on a fresh pipeline."""
    pipe = load_pipe()
    pipe.load_lora_weights(str(lora_file.parent), weight_name=lora_file.name, adapter_name="lcm")
    if fuse:
        pipe.fuse_lora(lora_scale=scale)
    return pipe.unet


@torch.no_grad()
def run(unet, inputs, scale=None) -> torch.Tensor:
    kw = {} if scale is None else {"cross_attention_kwargs": {"scale": scale}}
    return unet(inputs["sample"], inputs["timesteps"],
                encoder_hidden_states=inputs["encoder_hidden_states"], **kw).sample


def fused_base_weight_name(unet, name: str) -> torch.Tensor:
    """Weight of a (possibly peft-wrapped) module by its plain path."""
    sd = unet.state_dict()
    if name in sd:
        return sd[name]
    wrapped = name.rsplit(".", 1)[0] + ".base_layer.weight"
    return sd[wrapped]


# ----------------------------------------------------------------------------- main

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(0)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    diffusers.utils.logging.set_verbosity_error()
    transformers.utils.logging.set_verbosity_error()

    act = load_file(str(INPUTS))
    inputs = {"sample": nchw(act["sample"]), "timesteps": act["timesteps"],
              "encoder_hidden_states": act["encoder_hidden_states"]}
    lines = []
    problems = []

    def check(name, got, want, tol):
        d = maxdiff(got, want)
        ok = d <= tol
        lines.append(f"  {'ok ' if ok else 'BAD'} {name}: max|diff| = {d:.3g} (tol {tol:g})")
        if not ok:
            problems.append(name)
        return d

    base_out = run(load_base_unet(), inputs)
    check("base unet reproduces activations/tiny-sd15-unet.safetensors:output", nhwc(base_out), act["output"], 1e-5)

    # ---- the LoRA
    sd, cfg = build_lora()
    mods = module_table(sd)
    n_params = sum(v.numel() for v in sd.values())
    kinds = sorted({t for t in TARGETS if any(p == t or p.endswith("." + t) for p in mods)})
    assert kinds == sorted(TARGETS), (kinds, TARGETS)

    # ---- 1. diffusers / PEFT format, exactly as save_lora_weights writes it
    diff_file = out / "tiny-sd15-lora-diffusers.safetensors"
    with tempfile.TemporaryDirectory() as td:
        StableDiffusionPipeline.save_lora_weights(
            td, unet_lora_layers=sd, unet_lora_adapter_metadata=cfg, weight_name=diff_file.name)
        shutil.copyfile(Path(td) / diff_file.name, diff_file)
    canonicalize_header(diff_file)

    # ---- 2. kohya format (written by hand: diffusers' convert_state_dict_to_kohya stores alpha = rank)
    kohya = {}
    for path, (down, up) in mods.items():
        kn = kohya_name(path)
        kohya[kn + ".lora_down.weight"] = down
        kohya[kn + ".lora_up.weight"] = up
        kohya[kn + ".alpha"] = torch.tensor(float(ALPHA), dtype=torch.float32)  # 0-d, shape []
    kohya_md = {
        "ss_network_module": "networks.lora", "ss_network_dim": str(RANK), "ss_network_alpha": str(float(ALPHA)),
        "ss_base_model_version": "sd_v1", "ss_training_comment": "random test fixture, tools/make_lora_fixtures.py",
    }
    kohya_file = out / "tiny-sd15-lora-kohya.safetensors"
    save_tensors(kohya_file, kohya, kohya_md)

    # diffusers' own PEFT->kohya conversion must give the same key names
    from diffusers.utils import convert_state_dict_to_kohya
    conv = convert_state_dict_to_kohya({"unet." + k: v for k, v in sd.items()})
    if set(conv) != set(kohya):
        problems.append("kohya key names differ from diffusers.utils.convert_state_dict_to_kohya")
    conv_alpha = conv[next(k for k in conv if k.endswith(".alpha"))]
    lines.append(f"  note: convert_state_dict_to_kohya gives the same {len(conv)} key names; its alpha is "
                 f"{conv_alpha.dtype} shape {list(conv_alpha.shape)} value {conv_alpha.item()} (= rank, not lora_alpha)")

    # ---- 3. unmatched keys
    gen = torch.Generator().manual_seed(SEED + 1)
    unmatched = dict(kohya)
    for k, shape in UNMATCHED.items():
        unmatched[k] = torch.randn(shape, generator=gen) * INIT_STD
    unm_file = out / "tiny-sd15-lora-unmatched.safetensors"
    save_tensors(unm_file, unmatched, dict(kohya_md, fixture_note="kohya file + 2 keys matching no module: "
                                           + ", ".join(UNMATCHED)))

    # ---- 4. references
    ref = {"output_base": nhwc(base_out)}
    outs = {}
    for s in SCALES:
        tag = "1" if s == 1.0 else str(s).replace(".", "_")
        u = diffusers_fused(diff_file, s)
        o = run(u, inputs)
        outs[s] = o
        ref[f"output_scale_{tag}"] = nhwc(o)
        # fused weights vs the formula
        for name in FUSED_EXAMPLES:
            path = name.rsplit(".", 1)[0]
            down, up = mods[path]
            w0 = load_base_unet().state_dict()[name]
            want = (w0.double() + s * (ALPHA / RANK) * delta(down, up, w0.shape)).float()
            got = fused_base_weight_name(u, name)
            check(f"scale {s}: diffusers fused {name} == W + s*(alpha/r)*up@down", got, want, 1e-6)
            if s == 1.0:
                ref["fused_" + name] = got.detach().float().contiguous()
        del u
        # the same via the hand-applied formula, the un-fused adapter, and the kohya file
        check(f"scale {s}: hand-fused (formula) output == diffusers fuse_lora output",
              run(manual_fused_unet(mods, ALPHA, s), inputs), o, 1e-5)
        check(f"scale {s}: un-fused adapter, cross_attention_kwargs scale == fused output",
              run(diffusers_fused(diff_file, s, fuse=False), inputs, scale=s), o, 1e-5)
        check(f"scale {s}: kohya file via pipe.load_lora_weights + fuse_lora == diffusers-file output",
              run(diffusers_fused(kohya_file, s), inputs), o, 1e-5)

    d_full = maxdiff(outs[1.0], base_out)
    d_half = maxdiff(outs[0.5], base_out)
    d_12 = maxdiff(outs[1.0], outs[0.5])
    base_absmax = base_out.abs().max().item()
    lines.append(f"  base output max|x| = {base_absmax:.4g}; max|scale1 - base| = {d_full:.4g}; "
                 f"max|scale0.5 - base| = {d_half:.4g}; max|scale1 - scale0.5| = {d_12:.4g}")
    for name, d in (("scale 1 vs base", d_full), ("scale 0.5 vs base", d_half), ("scale 1 vs 0.5", d_12)):
        if d < 0.05:
            problems.append(f"{name}: outputs barely differ ({d:.3g})")

    # ---- what diffusers does with the unmatched file (informational)
    try:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            u = diffusers_fused(unm_file, 1.0)
        o = run(u, inputs)
        lines.append(f"  note: diffusers loads the unmatched file without error "
                     f"({len(w)} warnings); output vs scale-1 reference max|diff| = {maxdiff(o, outs[1.0]):.3g}")
    except Exception as e:  # noqa: BLE001
        lines.append(f"  note: diffusers rejects the unmatched file: {type(e).__name__}: {str(e)[:300]}")

    # ---- what diffusers does with a PEFT-format file WITHOUT the adapter metadata (informational)
    with tempfile.TemporaryDirectory() as td:
        StableDiffusionPipeline.save_lora_weights(td, unet_lora_layers=sd, weight_name="nometa.safetensors")
        with safe_open(str(Path(td) / "nometa.safetensors"), "pt") as f:
            nometa_md = f.metadata()
        o = run(diffusers_fused(Path(td) / "nometa.safetensors", 1.0), inputs)
        o_alpha_r = run(manual_fused_unet(mods, RANK, 1.0), inputs)
        lines.append(f"  note: save_lora_weights without unet_lora_adapter_metadata writes metadata {nometa_md}; "
                     f"diffusers then uses alpha = r: output vs hand-fused with alpha=r max|diff| = "
                     f"{maxdiff(o, o_alpha_r):.3g}, vs the alpha=8 reference {maxdiff(o, outs[1.0]):.3g}")
        # and a PEFT file carrying unet.<path>.alpha tensors (and no metadata)
        sd_alpha = {"unet." + k: v for k, v in sd.items()}
        for path in mods:
            sd_alpha[f"unet.{path}.alpha"] = torch.tensor(float(ALPHA))
        save_file(sd_alpha, str(Path(td) / "alpha.safetensors"), metadata={"format": "pt"})
        try:
            o = run(diffusers_fused(Path(td) / "alpha.safetensors", 1.0), inputs)
            lines.append(f"  note: a PEFT file with unet.<path>.alpha tensors loads in diffusers; output vs alpha=8 "
                         f"reference {maxdiff(o, outs[1.0]):.3g}, vs alpha=r {maxdiff(o, o_alpha_r):.3g}")
        except Exception as e:  # noqa: BLE001
            lines.append(f"  note: diffusers rejects a PEFT file with unet.<path>.alpha tensors: "
                         f"{type(e).__name__}: {str(e)[:200]}")

    ref_md = dict(
        VERSIONS,
        base_model="tiny-sd15/unet (fp32)",
        inputs="activations/tiny-sd15-unet.safetensors keys sample (NHWC), timesteps, encoder_hidden_states",
        layout="output_* are NHWC [2,8,8,4]; fused_* weights keep the PyTorch/model-file layout "
               "(Linear [out,in], Conv2d [out,in,kh,kw])",
        rank=str(RANK), alpha=str(ALPHA), alpha_over_rank=str(ALPHA / RANK),
        scales=",".join(str(s) for s in SCALES),
        target_modules=",".join(TARGETS),
        target_match="peft: module name == entry or endswith('.' + entry)",
        lora_modules=str(len(mods)), lora_params=str(n_params),
        lora_init=f"every lora_A/lora_B = randn*{INIT_STD}, torch.Generator().manual_seed({SEED}), sorted param order",
        fusion="W' = W + lora_scale * (alpha/r) * (up.reshape(out,r) @ down.reshape(r,-1)).reshape(W.shape)",
        call="pipe.load_lora_weights(tiny-sd15-lora-diffusers.safetensors); pipe.fuse_lora(lora_scale=s); "
             "pipe.unet(sample, timesteps, encoder_hidden_states).sample; fresh base UNet per scale",
        fused_examples=",".join("fused_" + n for n in FUSED_EXAMPLES),
        fused_examples_paths=",".join(FUSED_EXAMPLES),
        fused_examples_scale="1.0",
        max_abs_diff_scale_1_vs_base=f"{d_full:.6g}",
        max_abs_diff_scale_0_5_vs_base=f"{d_half:.6g}",
        max_abs_diff_scale_1_vs_0_5=f"{d_12:.6g}",
        seed=str(SEED),
    )
    save_tensors(out / "tiny-sd15-lora-reference.safetensors", ref, ref_md)

    total = sum(p.stat().st_size for p in out.glob("*.safetensors"))
    print(f"LoRA: {len(mods)} modules, {n_params} parameters, rank {RANK}, alpha {ALPHA}")
    print("\n".join(lines))
    for p in sorted(out.glob("*.safetensors")):
        print(f"  {p.relative_to(REPO_ROOT)}: {p.stat().st_size} bytes")
    print(f"  total {total} bytes")
    if problems:
        print("PROBLEMS:\n  " + "\n  ".join(problems))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
