#!/usr/bin/env python3
"""Generate PyTorch reference fixtures for the Swift CPU tensor engine.

Every fixture is a small safetensors file under Tests/Fixtures/ops/<name>.safetensors.

Conventions (the Swift tests rely on these):
  * All tensors are float32 and contiguous, except `convert.h` which is float16 (F16).
  * Activations (4-D tensors) are stored channels-last (NHWC). The references are
    computed in PyTorch's NCHW layout and permuted with .permute(0, 2, 3, 1).
  * Weights keep PyTorch's layout: conv weight OIHW, linear weight [out, in].
  * Inputs are generated in float32; the op itself is computed in float64 from those
    float32 values and the result is rounded to float32, so the stored outputs are
    accurate references (not "whatever float32 PyTorch happened to produce").
    Exceptions: `timestep_embedding` (computed with the real diffusers function in
    float32, as diffusers does) and `convert` (the conversions themselves).
  * Op parameters are stored as string metadata (safetensors header "__metadata__").
  * No NaN anywhere.

Deterministic: torch.manual_seed(0) at start and a fixed seed per fixture (CRC32 of
its name), single-threaded torch.

Usage: python3 tools/make_op_fixtures.py [--out DIR]
"""

from __future__ import annotations

import argparse
import math
import sys
import zlib
from pathlib import Path

import json
import struct

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

import sys
sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixture_io import canonicalize_header  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "Tests" / "Fixtures" / "ops"

FIXTURES = []  # (name, fn) in registration order


def fixture(fn):
    FIXTURES.append((fn.__name__, fn))
    return fn


# --------------------------------------------------------------------------- helpers

def seed_for(name: str) -> int:
    return zlib.crc32(name.encode("utf-8")) & 0x7FFFFFFF


def randn(*shape, scale: float = 1.0) -> torch.Tensor:
    """float32 standard normal (times scale), rounded to float32."""
    return (torch.randn(*shape, dtype=torch.float32) * scale).float()


def nhwc(t: torch.Tensor) -> torch.Tensor:
    """NCHW -> NHWC, float32, contiguous."""
    assert t.dim() == 4
    return t.permute(0, 2, 3, 1).float().contiguous()


def nchw(t: torch.Tensor) -> torch.Tensor:
    """NHWC -> NCHW view (no copy needed for computation)."""
    assert t.dim() == 4
    return t.permute(0, 3, 1, 2)


def f32(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.float32).contiguous()


def d(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.float64)


def meta(**kw) -> dict:
    return {k: str(v) for k, v in kw.items()}


def gelu_ref(x: torch.Tensor) -> torch.Tensor:
    """Exact (erf) GELU, written with erfc so that the far negative tail is accurate
    (0.5*x*(1+erf(x/sqrt2)) cancels to -0 for x <~ -8 even in float64)."""
    return 0.5 * x * torch.special.erfc(-x / math.sqrt(2.0))


def check_finite(name: str, tensors: dict) -> None:
    for k, v in tensors.items():
        if v.is_floating_point() and torch.isnan(v).any():
            raise AssertionError(f"{name}.{k} contains NaN")


# --------------------------------------------------------------------------- convolution

def _conv(n, h, w, cin, cout, k, stride, pad_tlbr):
    """x is generated NHWC; the reference pads explicitly (top,left,bottom,right)."""
    x = randn(n, h, w, cin)
    fan_in = cin * k * k
    weight = randn(cout, cin, k, k, scale=1.0 / math.sqrt(fan_in))
    bias = randn(cout, scale=0.5)
    top, left, bottom, right = pad_tlbr
    xp = F.pad(d(nchw(x)), (left, right, top, bottom))
    y = F.conv2d(xp, d(weight), d(bias), stride=stride, padding=0)
    tensors = {"x": f32(x), "weight": f32(weight), "bias": f32(bias), "y": nhwc(y)}
    md = meta(op="conv2d", layout="NHWC", weight_layout="OIHW",
              stride=f"{stride},{stride}", padding=",".join(str(p) for p in pad_tlbr),
              padding_order="top,left,bottom,right", dilation="1,1", groups=1)
    return tensors, md


@fixture
def conv3x3_s1():
    return _conv(2, 9, 7, 5, 6, 3, 1, (1, 1, 1, 1))


@fixture
def conv3x3_s2():
    return _conv(1, 9, 8, 4, 8, 3, 2, (1, 1, 1, 1))


@fixture
def conv1x1():
    return _conv(2, 5, 6, 7, 3, 1, 1, (0, 0, 0, 0))


@fixture
def conv3x3_s2_asym():
    # VAE encoder Downsample2D: F.pad(x, (0, 1, 0, 1)) then conv stride 2, padding 0.
    x = randn(1, 8, 8, 4)
    weight = randn(4, 4, 3, 3, scale=1.0 / math.sqrt(4 * 9))
    bias = randn(4, scale=0.5)
    xp = F.pad(d(nchw(x)), (0, 1, 0, 1), mode="constant", value=0.0)
    y = F.conv2d(xp, d(weight), d(bias), stride=2, padding=0)
    tensors = {"x": f32(x), "weight": f32(weight), "bias": f32(bias), "y": nhwc(y)}
    md = meta(op="conv2d", layout="NHWC", weight_layout="OIHW", stride="2,2",
              padding="0,0,1,1", padding_order="top,left,bottom,right",
              dilation="1,1", groups=1)
    return tensors, md


# --------------------------------------------------------------------------- linear / matmul

@fixture
def linear():
    x = randn(3, 5, 16)
    weight = randn(12, 16, scale=1.0 / 4.0)
    bias = randn(12, scale=0.5)
    y = F.linear(d(x), d(weight), d(bias))
    return ({"x": f32(x), "weight": f32(weight), "bias": f32(bias), "y": f32(y)},
            meta(op="linear", weight_layout="out,in"))


@fixture
def matmul():
    a = randn(2, 3, 5, 7)
    b = randn(2, 3, 7, 4)
    y = d(a) @ d(b)
    bt = b.transpose(-1, -2).contiguous()
    return ({"a": f32(a), "b": f32(b), "bt": f32(bt), "y": f32(y)},
            meta(op="matmul", note="y = a @ b; bt = b.transpose(-1,-2) (for transposeB)"))


# --------------------------------------------------------------------------- normalization

@fixture
def group_norm():
    x = randn(2, 6, 5, 32)
    weight = (1.0 + randn(32, scale=0.2)).float()
    bias = randn(32, scale=0.2)
    groups, eps = 8, 1e-5
    y = F.group_norm(d(nchw(x)), groups, d(weight), d(bias), eps=eps)
    y_silu = F.silu(y)
    return ({"x": f32(x), "weight": f32(weight), "bias": f32(bias),
             "y": nhwc(y), "y_silu": nhwc(y_silu)},
            meta(op="group_norm", layout="NHWC", groups=groups, eps=repr(eps)))


@fixture
def group_norm_offset():
    x = (randn(2, 6, 5, 32) + 100.0).float()
    weight = (1.0 + randn(32, scale=0.2)).float()
    bias = randn(32, scale=0.2)
    groups, eps = 4, 1e-6
    y = F.group_norm(d(nchw(x)), groups, d(weight), d(bias), eps=eps)
    return ({"x": f32(x), "weight": f32(weight), "bias": f32(bias), "y": nhwc(y)},
            meta(op="group_norm", layout="NHWC", groups=groups, eps=repr(eps),
                 note="x has +100 offset: tests variance numeric stability"))


@fixture
def layer_norm():
    x = randn(4, 7, 40)
    weight = (1.0 + randn(40, scale=0.2)).float()
    bias = randn(40, scale=0.2)
    eps = 1e-5
    y = F.layer_norm(d(x), (40,), d(weight), d(bias), eps=eps)
    return ({"x": f32(x), "weight": f32(weight), "bias": f32(bias), "y": f32(y)},
            meta(op="layer_norm", normalized_shape=40, eps=repr(eps)))


# --------------------------------------------------------------------------- elementwise

@fixture
def unary():
    x = randn(1000, scale=4.0)
    specials = torch.tensor([0.0, 1e-4, -1e-4, 10.0, -10.0, 30.0, -30.0], dtype=torch.float32)
    x[: specials.numel()] = specials
    xd = d(x)
    return ({
        "x": f32(x),
        "y_silu": f32(F.silu(xd)),
        "y_gelu": f32(gelu_ref(xd)),
        "y_gelu_tanh": f32(F.gelu(xd, approximate="tanh")),
        "y_quick_gelu": f32(xd * torch.sigmoid(1.702 * xd)),
        "y_tanh": f32(torch.tanh(xd)),
        "y_clamp": f32(torch.clamp(xd, -1.0, 1.0)),
    }, meta(op="unary", gelu="erf (exact), computed as 0.5*x*erfc(-x/sqrt2)", gelu_tanh="approximate=tanh",
            quick_gelu="x*sigmoid(1.702x)", clamp="-1,1"))


@fixture
def geglu():
    x = randn(3, 5, 48)
    xd = d(x)
    value, gate = xd[..., :24], xd[..., 24:]
    y = value * gelu_ref(gate)
    return ({"x": f32(x), "y": f32(y)},
            meta(op="geglu", note="y = x[..., :24] * gelu_erf(x[..., 24:]) (diffusers GEGLU)"))


@fixture
def softmax():
    x = randn(6, 77, scale=3.0)
    x_large = (1000.0 + randn(2, 50, scale=5.0)).float()
    return ({"x": f32(x), "y": f32(torch.softmax(d(x), dim=-1)),
             "x_large": f32(x_large), "y_large": f32(torch.softmax(d(x_large), dim=-1))},
            meta(op="softmax", dim=-1))


# --------------------------------------------------------------------------- attention

def _attention(q, k, v, heads):
    n, lq, c = q.shape
    lk = k.shape[1]
    hd = c // heads

    def split(t, l):
        return d(t).reshape(n, l, heads, hd).permute(0, 2, 1, 3)

    o = F.scaled_dot_product_attention(split(q, lq), split(k, lk), split(v, lk))
    y = o.permute(0, 2, 1, 3).reshape(n, lq, c)
    return ({"q": f32(q), "k": f32(k), "v": f32(v), "y": f32(y)},
            meta(op="attention", heads=heads, head_dim=hd, scale=repr(1.0 / math.sqrt(hd)),
                 layout="[N, L, heads*head_dim]"))


@fixture
def attention_self():
    return _attention(randn(2, 64, 80), randn(2, 64, 80), randn(2, 64, 80), heads=5)


@fixture
def attention_cross():
    return _attention(randn(2, 64, 80), randn(2, 77, 80), randn(2, 77, 80), heads=2)


@fixture
def attention_dim160():
    return _attention(randn(1, 20, 320), randn(1, 77, 320), randn(1, 77, 320), heads=2)


# --------------------------------------------------------------------------- shape ops

@fixture
def upsample():
    x = randn(2, 3, 4, 5)
    y = F.interpolate(d(nchw(x)), scale_factor=2, mode="nearest")
    return {"x": f32(x), "y": nhwc(y)}, meta(op="upsample_nearest", layout="NHWC", scale=2)


@fixture
def concat():
    a = randn(2, 3, 4, 5)
    b = randn(2, 3, 4, 7)
    y = torch.cat([nchw(a), nchw(b)], dim=1)
    return {"a": f32(a), "b": f32(b), "y": nhwc(y)}, meta(op="concat", layout="NHWC", axis="C")


@fixture
def binary():
    a = randn(2, 3, 4, 5)
    b_channel = randn(5)
    b_nc = randn(2, 1, 1, 5)
    b_full = randn(2, 3, 4, 5)
    ad = d(a)
    return ({
        "a": f32(a), "b_channel": f32(b_channel), "b_nc": f32(b_nc), "b_full": f32(b_full),
        "y_add_channel": f32(ad + d(b_channel)),
        "y_mul_nc": f32(ad * d(b_nc)),
        "y_sub_full": f32(ad - d(b_full)),
        "y_scale": f32(ad * 0.18215 + 0.5),
    }, meta(op="binary", layout="NHWC", scale="0.18215", shift="0.5"))


# --------------------------------------------------------------------------- timestep embedding

@fixture
def timestep_embedding():
    from diffusers.models.embeddings import get_timestep_embedding

    t = torch.tensor([999.0, 500.5, 1.0], dtype=torch.float32)
    y_320 = get_timestep_embedding(t, 320, flip_sin_to_cos=True, downscale_freq_shift=0)
    y_64 = get_timestep_embedding(t, 64, flip_sin_to_cos=False, downscale_freq_shift=1)
    y_9 = get_timestep_embedding(t, 9, flip_sin_to_cos=True, downscale_freq_shift=1)
    assert y_320.shape == (3, 320) and y_64.shape == (3, 64) and y_9.shape == (3, 9)
    return ({"t": f32(t), "y_320": f32(y_320), "y_64": f32(y_64), "y_9": f32(y_9)},
            meta(op="timestep_embedding", computed_in="float32 (diffusers)",
                 y_320="dim=320,flip_sin_to_cos=True,downscale_freq_shift=0",
                 y_64="dim=64,flip_sin_to_cos=False,downscale_freq_shift=1",
                 y_9="dim=9,flip_sin_to_cos=True,downscale_freq_shift=1",
                 scale=1, max_period=10000))


# --------------------------------------------------------------------------- dtype conversion

def _bits_to_f32(bits) -> torch.Tensor:
    arr = np.asarray(bits, dtype=np.uint32).view(np.float32)
    return torch.from_numpy(arr.copy())


def _bf16_rne_reference(x: torch.Tensor) -> torch.Tensor:
    """Independent round-to-nearest-even f32 -> bf16 -> f32 (no NaN inputs)."""
    u = x.numpy().view(np.uint32).astype(np.uint64)
    lsb = (u >> 16) & 1
    r = ((u + 0x7FFF + lsb) >> 16) << 16
    return torch.from_numpy((r & 0xFFFFFFFF).astype(np.uint32).view(np.float32).copy())


@fixture
def convert():
    n = 1000
    special_bits = [
        0x00000000, 0x80000000,              # +0, -0
        0x7F800000, 0xFF800000,              # +inf, -inf
        0x7F7FFFFF, 0xFF7FFFFF,              # +-max float (rounds to +-inf in bf16)
        0x7F7F0000, 0x7F7F7FFF, 0x7F7F8000,  # bf16 max, just below tie, tie->inf
        0x00000001, 0x80000001,              # smallest subnormal
        0x00007FFF, 0x00008000, 0x00018000,  # subnormal: below tie, tie even, tie odd
        0x00010000, 0x007FFFFF, 0x00800000,  # subnormals / min normal
        0x3F800000, 0xBF800000,              # +-1
        0x3F808000, 0x3F818000,              # ties: even (down), odd (up)
        0xBF808000, 0xBF818000,              # negative ties
        0x3F7FFFFF, 0x3F7F8000,              # carry into exponent
        0x3F807FFF, 0x3F808001,              # just below / above tie
        0x40490FDB,                          # pi
    ]
    g = np.random.default_rng(seed_for("convert"))
    # tie cases: random sign/exponent/mantissa-high, low 16 bits exactly 0x8000,
    # bit 16 forced even (64 values) and odd (64 values); exponents kept finite.
    hi = g.integers(0, 1 << 16, size=128, dtype=np.uint32)
    hi = np.where(((hi >> 7) & 0xFF) == 0xFF, hi & ~np.uint32(0x4000), hi)  # avoid inf/NaN exp
    hi[:64] &= ~np.uint32(1)
    hi[64:] |= np.uint32(1)
    tie_bits = (hi << 16) | np.uint32(0x8000)
    # random bit patterns with finite exponent (exercise all rounding directions)
    rb = g.integers(0, 1 << 32, size=200, dtype=np.uint64).astype(np.uint32)
    rb = np.where(((rb >> 23) & 0xFF) == 0xFF, rb & ~np.uint32(0x40000000), rb)
    bits = np.concatenate([np.array(special_bits, dtype=np.uint32), tie_bits, rb])
    head = _bits_to_f32(bits)
    rest = randn(n - head.numel(), scale=10.0)
    x = torch.cat([head, rest]).contiguous()
    assert x.numel() == n and not torch.isnan(x).any()

    y_bf16 = x.to(torch.bfloat16).to(torch.float32)
    ref = _bf16_rne_reference(x)
    assert torch.equal(y_bf16.view(torch.int32), ref.view(torch.int32)), \
        "torch bf16 conversion disagrees with RNE reference"

    # float16: specials, every positive subnormal, some negative subnormals, random values
    h_special = [
        0x0000, 0x8000,                      # +-0
        0x7C00, 0xFC00,                      # +-inf
        0x7BFF, 0xFBFF,                      # +-65504
        0x0400, 0x8400,                      # +-min normal 6.1035e-5
        0x03FF, 0x83FF,                      # +-max subnormal
        0x3C00, 0xBC00, 0x3555, 0x4248,      # 1, -1, ~1/3, ~pi
    ]
    h_bits = np.array(h_special, dtype=np.uint16)
    sub_pos = np.arange(1, 0x400, 7, dtype=np.uint16)               # sampled positive subnormals
    sub_neg = (np.arange(1, 0x400, 31, dtype=np.uint16) | 0x8000).astype(np.uint16)
    h_head = torch.from_numpy(np.concatenate([h_bits, sub_pos, sub_neg]).view(np.float16).copy())
    h_named = torch.tensor([6e-8, 3e-5, -3e-5, 0.1, -2.5, 1000.0, 65504.0, -65504.0],
                           dtype=torch.float16)
    h_rand = (torch.randn(512 - h_head.numel() - h_named.numel()) * 100.0).to(torch.float16)
    h = torch.cat([h_head, h_named, h_rand]).contiguous()
    assert h.dtype == torch.float16 and not torch.isnan(h).any()
    h_f32 = h.float()

    return ({"x": f32(x), "y_bf16": f32(y_bf16), "h": h, "h_f32": f32(h_f32)},
            meta(op="convert", y_bf16="x.to(bfloat16).to(float32), round-to-nearest-even",
                 h_dtype="F16", h_f32="h.float()"))


# --------------------------------------------------------------------------- main

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT,
                    help=f"output directory (default: {DEFAULT_OUT})")
    ap.add_argument("--only", default="", help="comma-separated subset of fixture names")
    args = ap.parse_args(argv)

    torch.set_num_threads(1)  # reproducible reductions
    torch.manual_seed(0)
    only = {s for s in args.only.split(",") if s}
    unknown = only - {name for name, _ in FIXTURES}
    if unknown:
        ap.error(f"unknown fixtures: {', '.join(sorted(unknown))}")

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    total = 0
    for name, fn in FIXTURES:
        if only and name not in only:
            continue
        torch.manual_seed(seed_for(name))
        tensors, md = fn()
        check_finite(name, tensors)
        for k, v in tensors.items():
            assert v.is_contiguous(), f"{name}.{k} not contiguous"
            if not (name == "convert" and k == "h"):
                assert v.dtype == torch.float32, f"{name}.{k} is {v.dtype}"
        md = {"fixture": name, "generator": "tools/make_op_fixtures.py",
              "torch_version": torch.__version__, **md}
        path = out / f"{name}.safetensors"
        save_file(tensors, str(path), metadata=md)
        canonicalize_header(path)
        size = path.stat().st_size
        total += size
        shapes = ", ".join(
            f"{k}{list(v.shape)}" + ("" if v.dtype == torch.float32 else f":{str(v.dtype).split('.')[-1]}")
            for k, v in tensors.items())
        print(f"wrote {path} ({size} bytes): {shapes}")
    print(f"total {total} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
