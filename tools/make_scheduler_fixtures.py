#!/usr/bin/env python3
"""Build the scheduler fixtures for the Swift `StreamDiffusion` scheduler tests.

Writes Tests/Fixtures/scheduler/lcm.json with reference values from diffusers 0.39.0 on
torch 2.13.0 (CPU):

  noise_schedules   betas / alphas / alphas_cumprod of LCMScheduler(beta_schedule=...) for
                    "scaled_linear" (SD 1.5 / 2.x / sd-turbo / SDXL), "linear" and
                    "squaredcos_cap_v2", all 1000 entries as float32 bit patterns (8 hex digits)
  torch_sqrt        torch's own float32 `alphas_cumprod.sqrt()` and `(1 - alphas_cumprod).sqrt()`
                    (scaled_linear), i.e. the alpha_prod_t_sqrt / beta_prod_t_sqrt that StreamDiffusion
                    precomputes; torch's CPU sqrt is not always correctly rounded (see the report below)
  lcm_timesteps     LCMScheduler.set_timesteps(n, strength=s) for n in {1,2,3,4,8,25,50},
                    s in {1.0, 0.5, 0.75}, plus original_inference_steps overrides, custom timestep
                    lists and the requests diffusers rejects ("error": the exception's class)
  boundary_scalings get_scalings_for_boundary_condition_discrete(t) for a python int t (python floats,
                    i.e. double, as 16 hex digits) and for a 0-dim int64 tensor t (float32 torch math,
                    as a pipeline loop `for t in scheduler.timesteps` passes it)
  steps             whole LCMScheduler.step chains (every step's model_output, sample, noise,
                    prev_sample, denoised) for epsilon (4 steps: first, middle, last; and 1 step),
                    v_prediction and sample prediction
  euler_trailing    EulerDiscreteScheduler(timestep_spacing="trailing", steps_offset=1) timesteps for
                    n in {1, 2, 4} (sd-turbo's scheduler config), for the record

The noise of LCMScheduler.step: diffusers draws z with `randn_tensor(...)` inside `step`, looked up
as the module-global `diffusers.schedulers.scheduling_lcm.randn_tensor`. This script replaces that
global with a function that returns the step's fixed noise array (checking the requested shape), so
`step` itself runs unchanged and its output uses exactly the recorded noise. The timestep passed to
`step` is the 0-dim int64 tensor from `scheduler.timesteps`, as the diffusers pipelines pass it.

Arrays of 16 values are float32 (shape [1, 4, 2, 2], row-major), written as bit patterns ("bits")
next to their decimal value (readable only; tests use the bits).

Usage: python tools/make_scheduler_fixtures.py   (from the repository root; pinned versions in
tools/requirements.txt: torch==2.13.0 (CPU wheel), diffusers==0.39.0, numpy)
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import diffusers
import numpy as np
import torch
from diffusers import EulerDiscreteScheduler, LCMScheduler
from diffusers.schedulers import scheduling_lcm

OUT = Path(__file__).resolve().parent.parent / "Tests" / "Fixtures" / "scheduler" / "lcm.json"
SHAPE = (1, 4, 2, 2)


def f32_bits(values) -> list[str]:
    arr = np.ascontiguousarray(np.asarray(values, dtype=np.float32)).reshape(-1)
    return [f"{int(b):08x}" for b in arr.view(np.uint32)]


def f64_bits(value: float) -> str:
    return struct.pack(">d", float(value)).hex()


def f32_array(values) -> dict:
    arr = np.asarray(values, dtype=np.float32).reshape(-1)
    return {"bits": f32_bits(arr), "values": [float(v) for v in arr]}


def noise_schedules() -> dict:
    out = {}
    for schedule in ["scaled_linear", "linear", "squaredcos_cap_v2"]:
        s = LCMScheduler(beta_schedule=schedule)
        out[schedule] = {
            "num_train_timesteps": 1000,
            "beta_start": 0.00085,
            "beta_end": 0.012,
            "betas": f32_bits(s.betas.numpy()),
            "alphas": f32_bits(s.alphas.numpy()),
            "alphas_cumprod": f32_bits(s.alphas_cumprod.numpy()),
        }
    return out


def torch_sqrt() -> dict:
    ac = LCMScheduler().alphas_cumprod
    return {
        "alpha_prod_sqrt": f32_bits(ac.sqrt().numpy()),
        "beta_prod_sqrt": f32_bits((1 - ac).sqrt().numpy()),
    }


def timesteps_case(n=None, strength=1.0, original=None, custom=None) -> dict:
    s = LCMScheduler()
    case = {"num_inference_steps": n, "strength": strength, "original_inference_steps": original,
            "custom_timesteps": custom}
    try:
        s.set_timesteps(num_inference_steps=n, strength=strength, original_inference_steps=original,
                        timesteps=custom)
        case["timesteps"] = [int(t) for t in s.timesteps]
    except Exception as e:  # the class is what the Swift tests check (a thrown error)
        case["error"] = type(e).__name__
    return case


def lcm_timesteps() -> list[dict]:
    cases = [timesteps_case(n, s) for s in [1.0, 0.5, 0.75] for n in [1, 2, 3, 4, 8, 25, 50]]
    cases += [
        timesteps_case(51, 1.0),           # more steps than the original schedule
        timesteps_case(1001, 1.0),         # more steps than training timesteps
        timesteps_case(4, 0.01),           # int(50 * 0.01) = 0 origin steps
        timesteps_case(4, 1.0, original=100),
        timesteps_case(7, 1.0, original=30),   # k = 33: origin 32, 65, ..., 989
        timesteps_case(3, 0.6, original=30),
        timesteps_case(4, 1.0, original=2000),  # original steps > training timesteps
        timesteps_case(custom=[999, 759, 499, 259]),
        timesteps_case(custom=[999, 759, 499, 259], strength=0.5),
        timesteps_case(custom=[999, 700, 3], strength=0.7),
        timesteps_case(custom=[999, 999, 499]),     # not descending
        timesteps_case(custom=[1000, 499]),         # starts at/after num_train_timesteps
    ]
    return cases


def boundary_scalings() -> list[dict]:
    s = LCMScheduler()
    out = []
    for t in [0, 1, 3, 5, 19, 49, 80, 99, 259, 359, 499, 559, 679, 759, 999]:
        cs, co = s.get_scalings_for_boundary_condition_discrete(t)
        cs32, co32 = s.get_scalings_for_boundary_condition_discrete(torch.tensor(t))
        assert cs32.dtype == torch.float32 and co32.dtype == torch.float32
        out.append({"timestep": t, "c_skip": f64_bits(cs), "c_out": f64_bits(co),
                    "c_skip_value": cs, "c_out_value": co,
                    "c_skip_f32": f32_bits([cs32.item()])[0], "c_out_f32": f32_bits([co32.item()])[0]})
    return out


def step_chain(name: str, prediction_type: str, n: int, seed: int) -> dict:
    s = LCMScheduler(prediction_type=prediction_type)
    s.set_timesteps(n)
    g = torch.Generator().manual_seed(seed)
    sample = torch.randn(SHAPE, generator=g)
    steps = []
    original = scheduling_lcm.randn_tensor
    try:
        for i, t in enumerate(s.timesteps):
            model_output = torch.randn(SHAPE, generator=g)
            noise = torch.randn(SHAPE, generator=g)
            used = {"noise": False}

            def fixed_noise(shape, generator=None, device=None, dtype=None, layout=None, _n=noise):
                assert tuple(shape) == SHAPE and dtype == torch.float32
                used["noise"] = True
                return _n.clone()

            scheduling_lcm.randn_tensor = fixed_noise
            prev_sample, denoised = s.step(model_output, t, sample, return_dict=False)
            last = i == n - 1
            assert used["noise"] != last
            steps.append({
                "step_index": i,
                "timestep": int(t),
                "prev_timestep": int(s.timesteps[i + 1]) if not last else None,
                "model_output": f32_array(model_output),
                "sample": f32_array(sample),
                "noise": f32_array(noise) if not last else None,
                "denoised": f32_array(denoised),
                "prev_sample": f32_array(prev_sample),
            })
            sample = prev_sample
    finally:
        scheduling_lcm.randn_tensor = original
    return {"name": name, "prediction_type": prediction_type, "num_inference_steps": n,
            "timesteps": [int(t) for t in s.timesteps], "steps": steps}


def euler_trailing() -> list[dict]:
    out = []
    for n in [1, 2, 4]:
        s = EulerDiscreteScheduler(beta_schedule="scaled_linear", timestep_spacing="trailing", steps_offset=1)
        s.set_timesteps(n)
        out.append({"num_inference_steps": n, "timesteps": [float(t) for t in s.timesteps]})
    return out


def dumps(value, indent: int = 0) -> str:
    """JSON with one key per line but every list of scalars on a single line (compact, diffable)."""
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f'{pad} {json.dumps(k)}: {dumps(v, indent + 1)}' for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        items = [f"{pad} {dumps(v, indent + 1)}" for v in value]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(value, separators=(", ", ": "))


def main() -> None:
    # torch's non-FMA "DEFAULT" CPU kernels give a linspace that differs by 1 ulp in some entries
    # (alphas_cumprod: 121 entries, <= 1.2e-7 relative); the fixtures are the AVX2/AVX-512 values.
    if torch.backends.cpu.get_cpu_capability() == "DEFAULT":
        raise SystemExit("run on a CPU with AVX2 or AVX-512 (and without ATEN_CPU_CAPABILITY=default)")
    fixture = {
        "generator": {
            "script": "tools/make_scheduler_fixtures.py",
            "diffusers": diffusers.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        },
        "noise_schedules": noise_schedules(),
        "torch_sqrt": torch_sqrt(),
        "lcm_timesteps": lcm_timesteps(),
        "boundary_scalings": boundary_scalings(),
        "steps": [
            step_chain("epsilon-4", "epsilon", 4, seed=0),
            step_chain("epsilon-1", "epsilon", 1, seed=1),
            step_chain("v_prediction-3", "v_prediction", 3, seed=2),
            step_chain("sample-2", "sample", 2, seed=3),
        ],
        "euler_trailing": euler_trailing(),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(dumps(fixture) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
