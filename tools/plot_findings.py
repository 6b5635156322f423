#!/usr/bin/env python3
"""Charts for docs/FINDINGS.md from the three findings benchmarks' JSON.

    S=.build/release/streamdiffusion
    $S bench scaling --repeats 5 --json > docs/charts/findings-scaling.json
    $S bench guidance --json > docs/charts/findings-guidance.json
    $S bench ssf --json > docs/charts/findings-ssf.json
    python3 tools/plot_findings.py docs/charts

Reads findings-{scaling,guidance,ssf}.json from the folder (any that exist) and writes
findings-scaling.png, findings-guidance.png and findings-ssf.png next to them. The numbers are
the tool's; this script only draws them.
"""
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

CFG_STYLE = {"none": ("#555555", "--"), "self": ("#c0504d", "-"), "initialize": ("#f79646", "-"), "full": ("#3b6ea8", "-")}
CLIP_COLOURS = {"static": "#3b6ea8", "slow-pan": "#9bbb59", "fast-pan": "#c0504d", "cuts": "#8064a2"}


def scaling_chart(report, out):
    rows = report["rows"]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2), dpi=100)
    panels = [("framesPerSecond", "frames per second"), ("latencyMs", "per-frame latency (ms, log)"),
              ("peakRSSMiB", "peak RSS (MiB)")]
    for ax, (key, label) in zip(axes, panels):
        for steps in sorted({r["steps"] for r in rows}):
            pts = sorted((r["rows"], r[key], r["frameBufferSize"]) for r in rows if r["steps"] == steps)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"{steps} step{'s' if steps > 1 else ''}")
            for x, y, f in pts:
                ax.annotate(f"F={f}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted({r["rows"] for r in rows}), [str(v) for v in sorted({r["rows"] for r in rows})])
        ax.set_xlabel("UNet rows per call (steps × frame_buffer_size)")
        ax.set_ylabel(label)
        if key == "latencyMs":
            ax.set_yscale("log")
        if key == "peakRSSMiB" and all(r.get("rssBeforeMiB") for r in rows):
            before = sum(r["rssBeforeMiB"] for r in rows) / len(rows)
            ax.axhline(before, color="#999999", linestyle=":", label=f"model loaded ({before:.0f} MiB)")
        ax.legend(fontsize=8)
    fig.suptitle(f"Stream batch scaling, {report['mode']}, {report['size']}², {report['model']}\n{report['backend']}", fontsize=9)
    fig.tight_layout()
    save(fig, out / "findings-scaling.png")


def guidance_chart(report, out):
    rows = report["rows"]
    settings = []
    for r in rows:
        key = (r["mode"], tuple(r["tIndexList"]))
        if key not in settings:
            settings.append(key)
    fig, axes = plt.subplots(2, len(settings), figsize=(4.6 * len(settings), 7), dpi=100, squeeze=False)
    for col, (mode, indices) in enumerate(settings):
        mine = [r for r in rows if r["mode"] == mode and tuple(r["tIndexList"]) == indices]
        scales = sorted({r["guidance"] for r in mine if r["cfg"] != "none"}) or [1.0]
        for row, (key, label) in enumerate([("score", "score (fraction of pictures right)"),
                                            ("diversity", "diversity (mean pairwise distance)")]):
            ax = axes[row][col]
            for cfg, (colour, style) in CFG_STYLE.items():
                pts = sorted((r["guidance"], r[key]) for r in mine if r["cfg"] == cfg)
                if not pts:
                    continue
                if cfg == "none":  # guidance is irrelevant: one run, drawn flat
                    pts = [(scales[0], pts[0][1]), (scales[-1], pts[0][1])]
                ax.plot([p[0] for p in pts], [p[1] for p in pts], style, color=colour,
                        marker=None if cfg == "none" else "o", label=cfg)
            ax.set_xlabel("guidance scale")
            ax.set_ylabel(label)
            if key == "score":
                ax.set_ylim(-0.03, 1.03)
                ax.set_title(f"{mode}, t-index {','.join(map(str, indices))}", fontsize=10)
            ax.legend(fontsize=8)
    fig.suptitle(f"RCFG vs full CFG on the demo model, {report['size']}², {report['prompts']} prompts × "
                 f"{len(report['seeds'])} seeds, delta {report['delta']}\n{report['backend']}", fontsize=9)
    fig.tight_layout()
    save(fig, out / "findings-guidance.png")


def ssf_chart(report, out):
    rows = report["rows"]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2), dpi=100)
    panels = [("skipRate", "skip rate"), ("cpuMsPerFrame", "CPU ms per input frame"),
              ("stutter", "stutter (longest run of repeated outputs)")]
    for ax, (key, label) in zip(axes, panels):
        for clip in dict.fromkeys(r["clip"] for r in rows):
            on = sorted((r["threshold"], r[key]) for r in rows if r["clip"] == clip and r["filterOn"])
            colour = CLIP_COLOURS.get(clip)
            ax.plot([p[0] for p in on], [p[1] for p in on], marker="o", color=colour, label=clip)
            off = [r[key] for r in rows if r["clip"] == clip and not r["filterOn"]]
            if key == "cpuMsPerFrame" and off:
                ax.axhline(off[0], color=colour, linestyle=":", linewidth=1)
        ax.set_xlabel("threshold η")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    axes[1].set_title("dotted: filter off", fontsize=8)
    fig.suptitle(f"Similarity filter, {report['size']}², t-index {report['tIndexList']}, cfg {report['cfg']}, "
                 f"max skip {report['maxSkipFrames']}, {len(report['seeds'])} seeds, {report['model']} model\n{report['backend']}", fontsize=9)
    fig.tight_layout()
    save(fig, out / "findings-ssf.png")


def save(fig, path):
    fig.savefig(path)
    plt.close(fig)
    print(f"wrote {path}")


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__)
    folder = Path(argv[1])
    drawn = 0
    for name, draw in [("scaling", scaling_chart), ("guidance", guidance_chart), ("ssf", ssf_chart)]:
        path = folder / f"findings-{name}.json"
        if path.exists():
            draw(json.loads(path.read_text()), folder)
            drawn += 1
    if drawn == 0:
        sys.exit(f"no findings-*.json in {folder}")


if __name__ == "__main__":
    main(sys.argv)
