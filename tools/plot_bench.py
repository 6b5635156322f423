#!/usr/bin/env python3
"""Charts for docs/BENCHMARKS.md from `streamdiffusion bench stream --json`.

    .build/release/streamdiffusion bench stream --sizes 256 --steps 1,2,4 --json > stream.json
    python3 tools/plot_bench.py stream.json docs/charts

Writes one PNG per table present in the JSON: steps.png, rcfg.png, similarity.png, scaling.png,
clients.png, breakdown.png, and with --peer peer.png. The numbers are the tool's; this script
only draws them.
"""
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def bars(ax, labels, values, unit, color="#3b6ea8"):
    ax.bar(range(len(values)), values, color=color)
    ax.set_xticks(range(len(values)), labels, rotation=20, ha="right")
    ax.set_ylabel(unit)
    for i, v in enumerate(values):
        ax.annotate(f"{v:.0f}" if v >= 10 else f"{v:.2f}", (i, v), ha="center", va="bottom", fontsize=8)


def steps_chart(rows, ax):
    for mode, marker in [("img2img stream batch", "o"), ("img2img sequential", "s"),
                         ("txt2img stream batch", "^"), ("txt2img sequential", "v")]:
        for size in sorted({r["size"] for r in rows}):
            pts = sorted((r["steps"], r["msPerFrame"]) for r in rows if r["mode"] == mode and r["size"] == size)
            if mode.endswith("sequential"):  # 1 step has no sequential row: it is the same call
                pts = sorted(pts + [(r["steps"], r["msPerFrame"]) for r in rows
                                    if r["mode"] == mode.replace("sequential", "stream batch")
                                    and r["size"] == size and r["steps"] == 1])
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=marker, label=f"{mode} {size}²")
    ax.set_xticks(sorted({r["steps"] for r in rows}))
    ax.set_xlabel("denoising steps")
    ax.set_ylabel("ms per frame")
    ax.set_title("Latency per frame: stream batch vs sequential")
    ax.legend(fontsize=7)


def peer_chart(rows, ax):
    """Our stream-batch img2img against the official package and plain diffusers, per step count."""
    ours = {(r["size"], r["steps"]): r["msPerFrame"] for r in rows
            if r["table"] == "steps" and r["mode"] == "img2img stream batch"}
    peers = [("official", "peer", "#c0504d"), ("diffusers", "peer-diffusers", "#9bbb59")]
    keys = sorted({(r["size"], r["steps"]) for r in rows if r["table"] in ("peer", "peer-diffusers")
                   and (r["size"], r["steps"]) in ours})
    width = 0.27
    for k, (label, table, color) in enumerate([("ours", None, "#3b6ea8")] + peers):
        values = [ours[key] if table is None else
                  next((r["msPerFrame"] for r in rows if r["table"] == table and (r["size"], r["steps"]) == key), 0)
                  for key in keys]
        ax.bar([i + (k - 1) * width for i in range(len(keys))], values, width, label=label, color=color)
    ax.set_xticks(range(len(keys)), [f"{s}², {n} step{'s' if n > 1 else ''}" for s, n in keys])
    ax.set_yscale("log")
    ax.set_ylabel("ms per frame (log)")
    ax.set_title("img2img per frame: ours vs the official package and plain diffusers (PyTorch CPU fp32)")
    ax.legend(fontsize=8)


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    rows = json.loads(Path(argv[1]).read_text())
    out = Path(argv[2])
    out.mkdir(parents=True, exist_ok=True)
    tables = {}
    for r in rows:
        tables.setdefault(r["table"], []).append(r)

    def save(name, draw, data=None):
        fig, ax = plt.subplots(figsize=(7, 4) if data is None else (8, 4), dpi=100)
        draw(tables[name] if data is None else data, ax)
        fig.tight_layout()
        fig.savefig(out / f"{name}.png")
        plt.close(fig)
        print(f"wrote {out / name}.png")

    if "steps" in tables:
        save("steps", steps_chart)
    if "rcfg" in tables:
        save("rcfg", lambda rs, ax: (bars(ax, [f"{r['cfg']} ({r['unetRowsPerFrame']} rows)" for r in rs],
                                          [r["msPerFrame"] for r in rs], "ms per frame"),
                                     ax.set_title(f"RCFG at {rs[0]['steps']} steps, {rs[0]['size']}²")))
    if "similarity" in tables:
        save("similarity", lambda rs, ax: (
            bars(ax, [f"{r['mode']}\n{r['framesProcessed']} run / {r['framesSkipped']} skipped" for r in rs],
                 [r["cpuMsPerFrame"] for r in rs], "CPU ms per input frame"),
            ax.set_title("Similarity filter: process CPU time per input frame (energy proxy)")))
    if "scaling" in tables:
        save("scaling", lambda rs, ax: (bars(ax, [f"frame_buffer_size {i + 1}" for i in range(len(rs))],
                                             [r["fps"] for r in rs], "frames per second"),
                                        ax.set_title(f"Stream batch scaling, 1 step, {rs[0]['size']}²")))
    if "clients" in tables:
        save("clients", lambda rs, ax: (bars(ax, [r["mode"] for r in rs], [r["fps"] for r in rs], "frames per second"),
                                        ax.set_title(f"Clients sharing one UNet call, 1 step, {rs[0]['size']}²")))
    if "peer" in tables or "peer-diffusers" in tables:
        save("peer", peer_chart, rows)
    if "breakdown" in tables:
        save("breakdown", lambda rs, ax: (bars(ax, [r["mode"] for r in rs], [r["msPerFrame"] for r in rs], "ms"),
                                          ax.set_title(f"One 1-step img2img frame, {rs[0]['size']}²")))


if __name__ == "__main__":
    main(sys.argv)
