#!/usr/bin/env python3
"""Build Tests/Fixtures/rng/randn.safetensors for the Swift `TorchRandomSource` tests.

Reference: torch==2.13.0 (CPU wheel), `torch.Generator("cpu").manual_seed(seed)` then
`torch.randn(size, generator=g)` / `torch.rand(size, generator=g)` in fp32.

Contents (all tensors F32, 1-D):
  randn.s{seed}.n{size}           full output, for sizes < 16384
  randn.s{seed}.n16384.head/.tail first / last 256 values of the 16384-element (4x64x64) output;
                                  the whole tensor is pinned by an FNV-1a-64 checksum of its
                                  little-endian fp32 bytes plus its sum and sum of squares (metadata)
  rand.s{seed}.n{size}            torch.rand outputs
  scalar.s{seed}.n{size}[.head/.tail]
                                  randn under ATEN_CPU_CAPABILITY=default (torch's portable
                                  normal_fill_16 with libm logf/cosf/sinf, what ARM builds run);
                                  generated in a subprocess, sizes >= 16 only (smaller sizes take
                                  the same double path under every capability)
  seq.{name}.{step}               successive calls on ONE generator (state persistence, the cached
                                  second normal of the < 16 path surviving other calls)

`__metadata__`: torch_version, cpu_capability (of the main process, which must be AVX2 or AVX512:
both run the AVX2 kernel on x86), scalar_cpu_capability (the subprocess), and `cases`, a JSON list
describing every case (op, seed, size, kernel, tensor names, checksum) and every sequence (seed and
its steps). Run from the repository root:  python tools/make_rng_fixtures.py
"""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixture_io import canonicalize_header  # noqa: E402

SEEDS = [0, 1, 42, 2**32 + 7, 123456789]
SIZES = [1, 3, 15, 16, 17, 31, 100, 4 * 8 * 8, 4 * 64 * 64]
RAND_SIZES = [1, 17, 100]
SCALAR_SEEDS = [0, 42]
LARGE = 4 * 64 * 64  # stored as head/tail + checksum
EDGE = 256

# Successive calls on one generator: (name, seed, [(op, size), ...]).
SEQUENCES = [
    # The spec's example: cached normal consumed across randn(3)/randn(5), then vectorised calls.
    ("cache", 7, [("randn", 3), ("randn", 5), ("randn", 20), ("randn", 1), ("randn", 16)]),
    # The cached sample left by randn(1) survives a vectorised randn(16) and a randn(17).
    ("survives", 7, [("randn", 1), ("randn", 16), ("randn", 1), ("randn", 2), ("randn", 17), ("randn", 1)]),
    # rand() draws from the same engine but leaves the cached normal alone.
    ("mixed", 123, [("rand", 5), ("randn", 1), ("rand", 3), ("randn", 1), ("randn", 33), ("rand", 20), ("randn", 15)]),
    # Engine position after a large call (1000 = 62 blocks + a 16-element tail).
    ("long", 2024, [("randn", 1000), ("randn", 7), ("rand", 4), ("randn", 64)]),
]


def fnv1a64(values: np.ndarray) -> str:
    h = 0xCBF29CE484222325
    for byte in values.astype("<f4").tobytes():
        h ^= byte
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def draw(op: str, size: int, g: torch.Generator) -> np.ndarray:
    fn = torch.randn if op == "randn" else torch.rand
    t = fn(size, generator=g, dtype=torch.float32)
    return t.numpy().astype(np.float32).copy()


def fresh(op: str, seed: int, size: int) -> np.ndarray:
    return draw(op, size, torch.Generator("cpu").manual_seed(seed))


def add_case(tensors, cases, name, op, seed, size, kernel, values):
    case = {"name": name, "op": op, "seed": seed, "size": size, "kernel": kernel}
    if size >= LARGE:
        tensors[name + ".head"] = values[:EDGE]
        tensors[name + ".tail"] = values[-EDGE:]
        case.update(head=name + ".head", tail=name + ".tail", edge=EDGE,
                    fnv1a64=fnv1a64(values),
                    sum=float(values.astype(np.float64).sum()),
                    sumsq=float((values.astype(np.float64) ** 2).sum()))
    else:
        tensors[name] = values
        case["tensor"] = name
    cases.append(case)


def scalar_child(out_path: str) -> None:
    """Runs under ATEN_CPU_CAPABILITY=default: dumps the portable-kernel randn outputs."""
    arrays = {f"s{seed}.n{size}": fresh("randn", seed, size)
              for seed in SCALAR_SEEDS for size in SIZES if size >= 16}
    arrays["capability"] = np.frombuffer(torch.backends.cpu.get_cpu_capability().encode(), dtype=np.uint8)
    np.savez(out_path, **arrays)


def main() -> None:
    assert torch.__version__.split("+")[0] == "2.13.0", torch.__version__
    capability = torch.backends.cpu.get_cpu_capability()
    assert capability in ("AVX2", "AVX512"), f"run on an x86 machine with AVX2 (got {capability})"

    tensors: dict[str, np.ndarray] = {}
    cases: list[dict] = []
    for seed in SEEDS:
        for size in SIZES:
            add_case(tensors, cases, f"randn.s{seed}.n{size}", "randn", seed, size, "avx2",
                     fresh("randn", seed, size))
        for size in RAND_SIZES:
            add_case(tensors, cases, f"rand.s{seed}.n{size}", "rand", seed, size, "avx2",
                     fresh("rand", seed, size))

    # manual_seed keeps only the low 32 bits.
    assert np.array_equal(fresh("randn", 2**32 + 7, 100), fresh("randn", 7, 100))

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "scalar.npz")
        env = dict(os.environ, ATEN_CPU_CAPABILITY="default")
        subprocess.run([sys.executable, __file__, "--scalar-child", out], env=env, check=True)
        scalar = dict(np.load(out))
    scalar_capability = bytes(scalar.pop("capability")).decode()
    assert scalar_capability == "DEFAULT", scalar_capability
    for seed in SCALAR_SEEDS:
        for size in SIZES:
            if size >= 16:
                add_case(tensors, cases, f"scalar.s{seed}.n{size}", "randn", seed, size, "scalar",
                         scalar[f"s{seed}.n{size}"])

    sequences = []
    for name, seed, steps in SEQUENCES:
        g = torch.Generator("cpu").manual_seed(seed)
        described = []
        for i, (op, size) in enumerate(steps):
            tensor = f"seq.{name}.{i}"
            tensors[tensor] = draw(op, size, g)
            described.append({"op": op, "size": size, "tensor": tensor})
        sequences.append({"name": name, "seed": seed, "steps": described})

    metadata = {
        "torch_version": torch.__version__,
        "cpu_capability": capability,
        "scalar_cpu_capability": scalar_capability,
        "cases": json.dumps({"cases": cases, "sequences": sequences}, separators=(",", ":")),
    }
    root = Path(__file__).resolve().parent.parent / "Tests" / "Fixtures" / "rng"
    root.mkdir(parents=True, exist_ok=True)
    path = root / "randn.safetensors"
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}, str(path),
              metadata=metadata)
    canonicalize_header(path)
    print(f"{path}: {len(tensors)} tensors, {len(cases)} cases, {len(sequences)} sequences, "
          f"{path.stat().st_size} bytes (torch {torch.__version__}, {capability})")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--scalar-child":
        scalar_child(sys.argv[2])
    else:
        main()
