#!/usr/bin/env python3
"""Ground-truth pictures for the demo-model quality tests (Tests/Fixtures/demo/): shapes rendered by
tools/demo_data.py exactly as the training data is, so the Swift picture measures (background colour,
foreground hue, circle/square/star) are checked on pictures whose answer is known before they judge
the model's pictures. Also the img2img input frame (a red circle on a white background).

Usage: python3 tools/make_demo_fixtures.py [--out Tests/Fixtures/demo]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

import demo_data

CASES = [  # (colour, shape, size word, background)
    ("red", "circle", "", "white"), ("orange", "square", "", "black"), ("yellow", "star", "", "blue"),
    ("green", "circle", "small", "pink"), ("blue", "square", "large", "yellow"), ("purple", "star", "large", "white"),
    ("pink", "circle", "large", "green"), ("red", "square", "small", "white"), ("blue", "star", "", "orange"),
    ("white", "circle", "", "purple"), ("black", "square", "", "pink"), ("green", "star", "small", "black"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "Tests/Fixtures/demo")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2026)
    cases = []
    for colour, shape, size, background in CASES:
        s = demo_data.Shape(shape, colour, (0.5, 0.5), demo_data.SIZES[size], size)
        caption = demo_data.caption_of([s], (background,))
        name = caption.replace(" ", "-") + ".png"
        Image.fromarray(demo_data.render([s], (background,), rng)).save(args.out / name, optimize=True)
        cases.append({"file": name, "caption": caption, "colour": colour, "shape": shape, "background": background})
    (args.out / "cases.json").write_text(json.dumps(cases, indent=1) + "\n")
    print(f"wrote {len(cases)} pictures to {args.out}")


if __name__ == "__main__":
    main()
