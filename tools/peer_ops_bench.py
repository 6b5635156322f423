#!/usr/bin/env python3
"""PyTorch peer for `streamdiffusion bench ops --peer`.

Times a fixed set of Stable-Diffusion-sized CPU ops in PyTorch so the Swift engine can
be compared against it on the same machine, with the same thread count and dtype.

  python3 tools/peer_ops_bench.py --threads 1 --dtype fp32 [--repeats 10] [--warmup 3]
                                  [--ops conv3x3_c320_64x64,linear_4096x320x1280]
                                  [--op-budget-s 12] [--json]

Each op is timed as the MEDIAN over `repeats` runs (time.perf_counter, milliseconds)
after `warmup` warm-up runs, under torch.inference_mode(), batch 1. Convolution and
group-norm activations (and conv weights) use torch.channels_last, which is the fair
comparison against an NHWC engine. With --dtype bf16 inputs and weights are bfloat16.

Slow ops are kept inside a per-op time budget (--op-budget-s, default 12 s): after the
first warm-up run the number of further warm-up and timed runs is reduced so the op
takes about that long, but never fewer than 1 warm-up and 3 timed runs.

With --json exactly one JSON object is printed on stdout:
  {"peer": "pytorch", "torch_version": "...", "threads": N, "dtype": "fp32",
   "results": {"conv3x3_c320_64x64": {"ms": 12.3}, ...}}
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F

CL = torch.channels_last


def _randn(*shape, dtype, scale=1.0, channels_last=False):
    t = torch.randn(*shape, dtype=torch.float32) * scale
    t = t.to(dtype)
    if channels_last:
        t = t.contiguous(memory_format=CL)
    return t


def make_conv(c: int, hw: int):
    def build(dtype):
        x = _randn(1, c, hw, hw, dtype=dtype, channels_last=True)
        w = _randn(c, c, 3, 3, dtype=dtype, scale=(c * 9) ** -0.5, channels_last=True)
        b = _randn(c, dtype=dtype, scale=0.1)
        return lambda: F.conv2d(x, w, b, stride=1, padding=1)
    return build


def make_linear(m: int, k: int, n: int):
    def build(dtype):
        x = _randn(m, k, dtype=dtype)
        w = _randn(n, k, dtype=dtype, scale=k ** -0.5)
        b = _randn(n, dtype=dtype, scale=0.1)
        return lambda: F.linear(x, w, b)
    return build


def make_attention(heads: int, lq: int, lk: int, d: int):
    def build(dtype):
        q = _randn(1, heads, lq, d, dtype=dtype)
        k = _randn(1, heads, lk, d, dtype=dtype)
        v = _randn(1, heads, lk, d, dtype=dtype)
        return lambda: F.scaled_dot_product_attention(q, k, v)
    return build


def make_group_norm(c: int, hw: int, groups: int = 32):
    def build(dtype):
        x = _randn(1, c, hw, hw, dtype=dtype, channels_last=True)
        w = _randn(c, dtype=dtype, scale=0.1) + 1
        b = _randn(c, dtype=dtype, scale=0.1)
        return lambda: F.group_norm(x, groups, w, b, eps=1e-5)
    return build


OPS = {
    "conv3x3_c320_64x64": make_conv(320, 64),
    "conv3x3_c640_32x32": make_conv(640, 32),
    "conv3x3_c1280_16x16": make_conv(1280, 16),
    "linear_4096x320x1280": make_linear(4096, 320, 1280),
    "attention_self_4096_5x64": make_attention(5, 4096, 4096, 64),
    "attention_cross_4096x77_5x64": make_attention(5, 4096, 77, 64),
    "groupnorm_c320_64x64": make_group_norm(320, 64),
}

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def time_op(fn, warmup: int, repeats: int, budget_s: float):
    """Returns (median_ms, warmup_runs, timed_runs)."""
    t0 = time.perf_counter()
    fn()  # first warm-up run always happens; it also estimates the cost of one run
    est = max(time.perf_counter() - t0, 1e-6)
    done_warmup = 1
    if budget_s > 0:
        extra_warmup = min(max(warmup - 1, 0), int(0.25 * budget_s / est))
        repeats = max(3, min(repeats, int(0.75 * budget_s / est)))
    else:
        extra_warmup = max(warmup - 1, 0)
        repeats = max(1, repeats)
    for _ in range(extra_warmup):
        fn()
    done_warmup += extra_warmup
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times), done_warmup, repeats


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="PyTorch peer for `streamdiffusion bench ops --peer`")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="fp32")
    ap.add_argument("--repeats", type=int, default=10, help="timed runs per op (median), default 10")
    ap.add_argument("--warmup", type=int, default=3, help="warm-up runs per op, default 3")
    ap.add_argument("--ops", default="", help="comma-separated subset of: " + ",".join(OPS))
    ap.add_argument("--op-budget-s", type=float, default=12.0,
                    help="approximate seconds per op; reduces warm-up/repeats for slow ops "
                         "(min 1 warm-up, 3 timed runs); 0 disables (default 12)")
    ap.add_argument("--json", action="store_true", help="print one JSON object and nothing else")
    args = ap.parse_args(argv)

    if args.threads < 1:
        ap.error("--threads must be >= 1")
    if args.repeats < 1 or args.warmup < 0:
        ap.error("--repeats must be >= 1 and --warmup >= 0")
    names = [s.strip() for s in args.ops.split(",") if s.strip()] or list(OPS)
    unknown = [n for n in names if n not in OPS]
    if unknown:
        ap.error(f"unknown ops: {', '.join(unknown)} (known: {', '.join(OPS)})")

    # Must happen before any parallel work starts.
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dtype = DTYPES[args.dtype]

    results = {}
    details = {}
    # Keep stdout clean for --json: anything printed while running goes to stderr.
    with contextlib.redirect_stdout(sys.stderr), torch.inference_mode():
        for name in names:
            fn = OPS[name](dtype)
            ms, w, r = time_op(fn, args.warmup, args.repeats, args.op_budget_s)
            results[name] = {"ms": round(ms, 4)}
            details[name] = (w, r)
            del fn

    if args.json:
        out = {"peer": "pytorch", "torch_version": torch.__version__,
               "threads": torch.get_num_threads(), "dtype": args.dtype, "results": results}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()
    else:
        print(f"PyTorch {torch.__version__}  threads={torch.get_num_threads()}  "
              f"interop={torch.get_num_interop_threads()}  dtype={args.dtype}")
        width = max(len(n) for n in names)
        print(f"{'op'.ljust(width)}  {'median ms':>10}  {'warmup':>6}  {'runs':>4}")
        for name in names:
            w, r = details[name]
            print(f"{name.ljust(width)}  {results[name]['ms']:10.3f}  {w:6d}  {r:4d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
