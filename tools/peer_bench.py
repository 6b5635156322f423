#!/usr/bin/env python3
"""PyTorch/diffusers peer for `streamdiffusion bench models --peer`.

Times the real-size sd-turbo components (SD 2.1-base UNet, TAESD, the 23-layer OpenCLIP-H
text encoder) built from their configs with random weights (torch.manual_seed(0), default
init, eval(), torch.inference_mode()) on PyTorch CPU, with the same thread count and
precision as the Swift run. No model hub access is needed.

  python3 tools/peer_bench.py --threads 2 --dtype fp32 [--components unet,taesd,text]
                              [--batch 1,2] [--size 512] [--repeats 3] [--warmup 1]
                              [--memory-format auto|contiguous|channels_last]
                              [--budget-s 330] [--json]

Install the pinned stack with `make python-tools` (tools/requirements.txt; the text encoder
also needs transformers, pinned in tools/requirements.txt).

Each measurement is the MEDIAN (and min) over `repeats` runs (time.perf_counter, ms) after
`warmup` warm-up runs. Keys: unet_b<B> (one UNet forward, batch B, latents size/8),
taesd_decode ([1,4,size/8,size/8] -> image), taesd_encode ([1,3,size,size] -> latents),
text_encode (input_ids [1,77]).

--dtype bf16 reports two variants:
  * the plain keys (unet_b1, ...): PyTorch's own bf16 autocast, i.e.
    `with torch.autocast("cpu", dtype=torch.bfloat16):` around each forward, fp32 weights
    and fp32 inputs (the weight casts are part of every forward);
  * "<key>_bf16weights": the module converted with .to(torch.bfloat16), bf16 inputs.

--memory-format auto (default) tries contiguous and channels_last for the conv models
(UNet, TAESD) with one untimed + one timed forward each and keeps the faster one (the
choice is reported per result and in "notes").

The whole run is kept inside --budget-s seconds of wall clock (default 330, including
imports and model construction): before each measurement the remaining time is shared
between the remaining measurements by their expected cost, and repeats/warm-ups are
reduced to fit (never below 1 timed run, and 1 warm-up when --warmup >= 1); every
reduction is listed in "notes". --budget-s 0 disables this.

With --json exactly one JSON object is printed on stdout (progress goes to stderr):
  {"peer": "diffusers", "torch_version": "...", "diffusers_version": "...", "threads": N,
   "dtype": "fp32"|"bf16", "results": {"unet_b1": {"ms": .., "min_ms": .., ...}, ...},
   "notes": [...], ...}
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import sys
from pathlib import Path
import time

T_START = time.perf_counter()

import torch  # noqa: E402

COMPONENTS = ("unet", "taesd", "text")
FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}

# Rough single-forward seconds at 512x512, fp32, 2 threads (relative weights for the time
# budget only) and model-construction seconds (reserved from the budget while pending).
EXPECTED_S = {"unet": 3.8, "taesd_decode": 2.1, "taesd_encode": 2.1, "text_encode": 0.8}
BUILD_S = {"unet": 15.0, "taesd": 0.5, "text": 7.0}

# Same token ids as the Swift side ("a photo of a cat", padded with 0 to 77).
TEXT_IDS = [49406, 320, 1125, 539, 320, 2368, 49407] + [0] * 70


def sd_turbo_unet():
    """The SD 2.1-base / sd-turbo UNet from its config, default (random) init."""
    from diffusers import UNet2DConditionModel
    return UNet2DConditionModel(
        in_channels=4, out_channels=4, block_out_channels=(320, 640, 1280, 1280),
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        layers_per_block=2, attention_head_dim=[5, 10, 20, 20], cross_attention_dim=1024,
        use_linear_projection=True, norm_num_groups=32, sample_size=64)


def sd_turbo_text_encoder():
    """sd-turbo's OpenCLIP-H text tower (23 layers, as the diffusers export keeps), random init."""
    from transformers import CLIPTextConfig, CLIPTextModel
    return CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=1024, intermediate_size=4096, num_hidden_layers=23,
        num_attention_heads=16, max_position_embeddings=77, hidden_act="gelu",
        layer_norm_eps=1e-5, projection_dim=512))


def load_synthetic(module, weights_dir, name: str) -> None:
    """Loads the random weights our tool wrote (`SyntheticModels`: <dir>/<name>/weights.fp16.safetensors,
    diffusers/transformers names) into `module`, so both sides of a comparison run the very same
    weights. A name or shape mismatch stops the run."""
    from safetensors.torch import load_file
    state = {k: v.float() for k, v in load_file(str(Path(weights_dir) / name / "weights.fp16.safetensors")).items()}
    if any(k.startswith("text_model.") for k in module.state_dict()):   # transformers 4 names; ours are 5's
        state = {k if k.startswith("text_model.") else "text_model." + k: v for k, v in state.items()}
    missing, unexpected = module.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]   # a buffer, not a weight
    if missing or unexpected:
        sys.exit(f"{name}: our weights do not fit the module: missing {missing[:3]}, unexpected {unexpected[:3]}")


def log(msg: str) -> None:
    print(f"[peer_bench {time.perf_counter() - T_START:6.1f}s] {msg}", file=sys.stderr, flush=True)


class Budget:
    """Shares the remaining wall-clock time between the remaining measurements."""

    def __init__(self, seconds: float):
        self.deadline = T_START + seconds if seconds > 0 else None
        self.pending: dict[str, float] = {}   # measurement key -> expected cost (s)
        self.builds: dict[str, float] = {}    # pending model builds -> expected seconds

    def share(self, key: str) -> float:
        if self.deadline is None:
            return math.inf
        left = self.deadline - time.perf_counter() - sum(self.builds.values())
        total = sum(self.pending.values()) or 1.0
        return max(0.0, left * self.pending.get(key, 0.0) / total)

    def done(self, key: str) -> None:
        self.pending.pop(key, None)

    def built(self, name: str) -> None:
        self.builds.pop(name, None)


class Bench:
    def __init__(self, args, budget: Budget):
        self.args = args
        self.budget = budget
        self.results: dict[str, dict] = {}
        self.notes: list[str] = []

    # -- timing -------------------------------------------------------------------------
    def measure(self, key: str, fn, *, extra: dict | None = None, allowance: float | None = None) -> None:
        """Times fn: W warm-ups then R timed runs, both reduced to fit the budget share."""
        warmup, repeats = self.args.warmup, self.args.repeats
        if allowance is None:
            allowance = self.budget.share(key)
        t_item = time.perf_counter()
        t0 = time.perf_counter()
        fn()  # first run: warm-up #1, or timed run #1 when --warmup 0; estimates the cost
        first = time.perf_counter() - t0
        times: list[float] = []
        if warmup == 0:
            times.append(first * 1000.0)
            done_warmup = 0
        else:
            done_warmup = 1
        est = max(first, 1e-6)
        left = allowance - (time.perf_counter() - t_item)
        want_extra = max(warmup - 1, 0)
        want_timed = repeats - len(times)
        extra_warmup, timed = want_extra, want_timed
        if want_extra * est + want_timed * est > left:
            # Keep timed runs first (at least one in total), then warm-ups.
            timed = max(1 - len(times), min(want_timed, int(left / est)))
            extra_warmup = max(0, min(want_extra, int((left - timed * est) / est)))
        for _ in range(extra_warmup):
            fn()
        done_warmup += extra_warmup
        for _ in range(timed):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1000.0)
        if extra_warmup < want_extra or len(times) < repeats:
            self.notes.append(
                f"{key}: time budget (--budget-s {self.args.budget_s:g}) reduced warm-up "
                f"{warmup}->{done_warmup}, repeats {repeats}->{len(times)} "
                f"(one run ~{first:.1f} s)")
        entry = {"ms": round(statistics.median(times), 3), "min_ms": round(min(times), 3),
                 "runs": len(times), "warmup": done_warmup}
        if extra:
            entry.update(extra)
        self.results[key] = entry
        self.budget.done(key)
        log(f"{key}: median {entry['ms']:.1f} ms, min {entry['min_ms']:.1f} ms "
            f"({len(times)} runs [{', '.join(f'{t:.0f}' for t in times)}], {done_warmup} warm-up, "
            f"first run {first * 1000:.0f} ms)")

    def pick_format(self, label: str, module: torch.nn.Module, make_fn, share: float) -> tuple[str, float]:
        """Chooses the memory format of module + inputs; returns (name, seconds spent).

        make_fn(memory_format) returns the zero-argument forward for that format. The module
        is left converted to the chosen format.
        """
        choice = self.args.memory_format
        if choice != "auto":
            module.to(memory_format=FORMATS[choice])
            return choice, 0.0
        t_start = time.perf_counter()
        fns = {}
        for name, fmt in FORMATS.items():
            module.to(memory_format=fmt)
            fns[name] = make_fn(fmt)
            fns[name]()  # untimed: first-use costs (primitive creation, weight reorders)
        # Up to two interleaved timed rounds (min per format); the second only if it fits
        # in a third of this measurement's budget share.
        timed: dict[str, float] = {}
        rounds = 0
        for _ in range(2):
            rounds += 1
            t_round = time.perf_counter()
            for name, fmt in FORMATS.items():
                module.to(memory_format=fmt)
                t0 = time.perf_counter()
                fns[name]()
                timed[name] = min(timed.get(name, math.inf), time.perf_counter() - t0)
            round_s = time.perf_counter() - t_round
            if time.perf_counter() - t_start + round_s > share / 3:
                break
        best = min(timed, key=timed.get)
        module.to(memory_format=FORMATS[best])
        spent = time.perf_counter() - t_start
        self.notes.append(
            f"{label}: memory format {best} (trial, best of {rounds} after 1 untimed: "
            + ", ".join(f"{n} {s * 1000:.0f} ms" for n, s in timed.items()) + ")")
        log(f"{label}: memory format trial -> {best} "
            + ", ".join(f"{n} {s * 1000:.0f} ms" for n, s in timed.items()))
        return best, spent

    # -- variants -----------------------------------------------------------------------
    @staticmethod
    def runner(forward, autocast: bool):
        if not autocast:
            return forward

        def run():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return forward()
        return run

    def modes(self):
        """[(suffix, input dtype, autocast, convert weights to bf16 first)]."""
        if self.args.dtype == "fp32":
            return [("", torch.float32, False, False)]
        return [("", torch.float32, True, False), ("_bf16weights", torch.bfloat16, False, True)]

    # -- components ---------------------------------------------------------------------
    def run_unet(self):
        log("building UNet (SD 2.1-base / sd-turbo config, random weights)")
        torch.manual_seed(0)
        unet = sd_turbo_unet().eval()
        if self.args.weights:
            load_synthetic(unet, self.args.weights, "sd-turbo-unet")
        self.budget.built("unet")
        procs = {type(p).__name__ for p in unet.attn_processors.values()}
        self.notes.append(f"unet: {sum(p.numel() for p in unet.parameters()) / 1e6:.1f} M parameters, "
                          f"attention processor {', '.join(sorted(procs))}")
        lat = self.args.size // 8
        g = torch.Generator().manual_seed(0)
        inputs = {b: (torch.randn(b, 4, lat, lat, generator=g),
                      torch.full((b,), 999, dtype=torch.long),
                      torch.randn(b, 77, 1024, generator=g)) for b in self.args.batches}
        last = None
        for suffix, dtype, autocast, to_bf16 in self.modes():
            if to_bf16:
                unet.to(torch.bfloat16)
            fmt, spent = None, 0.0
            for b in self.args.batches:
                sample, t, ehs = inputs[b]
                key = f"unet_b{b}{suffix}"

                def make(memory_format, sample=sample, t=t, ehs=ehs):
                    s = sample.to(dtype).contiguous(memory_format=memory_format)
                    e = ehs.to(dtype)

                    def forward():
                        nonlocal last
                        last = unet(s, t, e).sample
                        return last
                    return self.runner(forward, autocast)

                share = self.budget.share(key)  # the format trial is paid from this share
                if fmt is None:  # trial at the first batch size, reused for the others
                    fmt, spent = self.pick_format(f"unet{suffix} b{b}", unet, make, share)
                self.measure(key, make(FORMATS[fmt]), extra={"memory_format": fmt}, allowance=share - spent)
                spent = 0.0
        self.check_finite("unet", last)
        del unet, inputs, last

    def run_taesd(self):
        from diffusers import AutoencoderTiny
        log("building AutoencoderTiny (default config, random weights)")
        torch.manual_seed(0)
        vae = AutoencoderTiny().eval()
        if self.args.weights:
            load_synthetic(vae, self.args.weights, "taesd")
        self.budget.built("taesd")
        size, lat = self.args.size, self.args.size // 8
        g = torch.Generator().manual_seed(1)
        latents = torch.randn(1, 4, lat, lat, generator=g)
        image = torch.rand(1, 3, size, size, generator=g) * 2 - 1
        outs = {}
        for suffix, dtype, autocast, to_bf16 in self.modes():
            if to_bf16:
                vae.to(torch.bfloat16)
            for what, x in (("decode", latents), ("encode", image)):
                key = f"taesd_{what}{suffix}"

                def make(memory_format, what=what, x=x):
                    xi = x.to(dtype).contiguous(memory_format=memory_format)
                    if what == "decode":
                        def forward():
                            outs["decode"] = vae.decode(xi).sample
                    else:
                        def forward():
                            outs["encode"] = vae.encode(xi).latents
                    return self.runner(forward, autocast)

                share = self.budget.share(key)  # the format trial is paid from this share
                fmt, spent = self.pick_format(key, vae, make, share)
                self.measure(key, make(FORMATS[fmt]), extra={"memory_format": fmt}, allowance=share - spent)
        for what, out in outs.items():
            self.check_finite(f"taesd_{what}", out)
        del vae

    def run_text(self):
        log("building CLIPTextModel (OpenCLIP-H text config, 23 layers, random weights)")
        torch.manual_seed(0)
        model = sd_turbo_text_encoder().eval()
        if self.args.weights:
            load_synthetic(model, self.args.weights, "sd-turbo-text-encoder")
        self.budget.built("text")
        attn = getattr(model.config, "_attn_implementation", None)
        self.notes.append(f"text: transformers attention implementation {attn!r}")
        ids = torch.tensor([TEXT_IDS], dtype=torch.long)
        out = {}
        for suffix, _dtype, autocast, to_bf16 in self.modes():
            if to_bf16:
                model.to(torch.bfloat16)

            def forward():
                out["h"] = model(ids).last_hidden_state
            self.measure(f"text_encode{suffix}", self.runner(forward, autocast))
        self.check_finite("text", out.get("h"))
        del model

    def check_finite(self, label: str, out) -> None:
        if out is not None and not bool(torch.isfinite(out.float()).all()):
            self.notes.append(f"{label}: output has non-finite values with random weights "
                              "(timing still valid; no NaN special-casing in PyTorch kernels)")


def parse_list(text: str, what: str, ap) -> list[str]:
    items = [s.strip() for s in text.split(",") if s.strip()]
    if not items:
        ap.error(f"--{what} is empty")
    return items


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="diffusers/PyTorch peer for `streamdiffusion bench models --peer`")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    ap.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32",
                    help="fp32, or bf16 (autocast with fp32 weights, plus *_bf16weights keys)")
    ap.add_argument("--components", default=",".join(COMPONENTS),
                    help="comma-separated subset of: unet,taesd,text (default all)")
    ap.add_argument("--batch", default="1,2", help="UNet batch sizes, comma-separated (default 1,2)")
    ap.add_argument("--size", type=int, default=512, help="image size in pixels; latents are size/8 (default 512)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (median), default 3")
    ap.add_argument("--warmup", type=int, default=1, help="untimed warm-up runs per measurement, default 1")
    ap.add_argument("--memory-format", choices=("auto",) + tuple(FORMATS), default="auto",
                    help="activation/weight memory format for UNet and TAESD; auto tries both (default)")
    ap.add_argument("--budget-s", type=float, default=330.0,
                    help="wall-clock budget for the whole run; reduces warm-ups/repeats to fit "
                         "(0 disables; default 330)")
    ap.add_argument("--weights", default="",
                    help="folder of our tool's synthetic weights (bench's --cache): run the same random weights")
    ap.add_argument("--json", action="store_true", help="print one JSON object on stdout and nothing else")
    args = ap.parse_args(argv)

    if args.threads < 1:
        ap.error("--threads must be >= 1")
    if args.repeats < 1 or args.warmup < 0:
        ap.error("--repeats must be >= 1 and --warmup >= 0")
    if args.size < 64 or args.size % 64:
        ap.error("--size must be a positive multiple of 64")
    comps = parse_list(args.components, "components", ap)
    unknown = [c for c in comps if c not in COMPONENTS]
    if unknown:
        ap.error(f"unknown components: {', '.join(unknown)} (known: {', '.join(COMPONENTS)})")
    try:
        args.batches = [int(b) for b in parse_list(args.batch, "batch", ap)]
    except ValueError:
        ap.error(f"bad --batch {args.batch!r}")
    if any(b < 1 for b in args.batches):
        ap.error("batch sizes must be >= 1")
    args.batches = list(dict.fromkeys(args.batches))

    # Must happen before any parallel work starts.
    interop_note = None
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError as e:
        interop_note = f"set_num_interop_threads(1) not allowed: {e}"
    torch.set_num_threads(args.threads)

    # Time budget plan: expected cost of each measurement (incl. warm-ups and format trial).
    scale = (args.size / 512) ** 2 * (2 / args.threads)
    runs = args.warmup + args.repeats
    trial = 6 if args.memory_format == "auto" else 0  # 1 untimed + 2 timed rounds
    budget = Budget(args.budget_s)
    modes = [""] if args.dtype == "fp32" else ["", "_bf16weights"]
    order = [c for c in COMPONENTS if c in comps]
    for c in order:
        budget.builds[c] = BUILD_S[c]
    for m in modes:
        dscale = 0.6 if m == "_bf16weights" else 1.0  # autocast pays per-forward weight casts
        if "unet" in comps:
            for i, b in enumerate(args.batches):
                budget.pending[f"unet_b{b}{m}"] = EXPECTED_S["unet"] * b * scale * dscale * (runs + (trial if i == 0 else 0))
        if "taesd" in comps:
            for what in ("decode", "encode"):
                budget.pending[f"taesd_{what}{m}"] = EXPECTED_S[f"taesd_{what}"] * scale * dscale * (runs + trial)
        if "text" in comps:
            budget.pending[f"text_encode{m}"] = EXPECTED_S["text_encode"] * (2 / args.threads) * dscale * runs

    bench = Bench(args, budget)
    if interop_note:
        bench.notes.append(interop_note)

    # Keep stdout clean for --json: anything printed while running goes to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        import diffusers
        versions = {"diffusers_version": diffusers.__version__}
        if "text" in comps:
            import transformers
            versions["transformers_version"] = transformers.__version__
        if args.dtype == "bf16":
            supported = None
            with contextlib.suppress(Exception):
                supported = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
            bench.notes.append(
                "bf16: plain keys = torch.autocast('cpu', dtype=torch.bfloat16) around each forward "
                "with fp32 weights and fp32 inputs (autocast casts the fp32 weights to bf16 inside every "
                "forward, since its cast cache is cleared when the autocast context exits, so each "
                "timed forward includes casting all weights; matmul/conv/attention run in bf16, ops "
                "on autocast's fp32 list such as group/layer norm stay fp32); "
                "'*_bf16weights' keys = module.to(torch.bfloat16) with bf16 inputs"
                + (f"; oneDNN bf16 supported: {supported}" if supported is not None else ""))
        bench.notes.append(
            f"threads: intra-op {torch.get_num_threads()}, inter-op {torch.get_num_interop_threads()}; "
            "torch.inference_mode(), eval(), random weights (torch.manual_seed(0), default init)")
        with torch.inference_mode():
            for c in order:
                getattr(bench, f"run_{c}")()

    elapsed = time.perf_counter() - T_START
    out = {"peer": "diffusers", "torch_version": torch.__version__, **versions,
           "threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads(),
           "dtype": args.dtype, "size": args.size, "latent_size": args.size // 8,
           "batches": args.batches, "repeats": args.repeats, "warmup": args.warmup,
           "results": bench.results, "notes": bench.notes, "elapsed_s": round(elapsed, 1)}
    if args.dtype == "bf16":
        out["bf16_variants"] = {
            "autocast": "plain keys: torch.autocast('cpu', dtype=torch.bfloat16), fp32 weights and inputs",
            "bf16weights": "'_bf16weights' keys: module.to(torch.bfloat16), bf16 inputs"}
    if args.json:
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()
    else:
        print(f"diffusers {versions['diffusers_version']} on PyTorch {torch.__version__}  "
              f"threads={out['threads']}  interop={out['interop_threads']}  dtype={args.dtype}  "
              f"size={args.size}")
        width = max([len(k) for k in bench.results] + [3])
        print(f"{'key'.ljust(width)}  {'median ms':>10}  {'min ms':>10}  {'runs':>4}  {'warmup':>6}  format")
        for k, r in bench.results.items():
            print(f"{k.ljust(width)}  {r['ms']:10.1f}  {r['min_ms']:10.1f}  {r['runs']:4d}  "
                  f"{r['warmup']:6d}  {r.get('memory_format', '-')}")
        for n in bench.notes:
            print(f"note: {n}")
        print(f"elapsed {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
