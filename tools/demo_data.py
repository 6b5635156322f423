#!/usr/bin/env python3
"""Captioned images of coloured shapes: the training data of the bundled demo model (Models/demo).

Each image is 128×128 RGB: a solid or two-colour vertical-gradient background with one or two shapes
(circle, square, triangle, star, ring) in named colours. The caption names everything the picture
depends on, so that a model's best single-step guess (the mean image given the caption) is still a
clean picture; only small jitter (position ±3 px, size ±8 %, colour ±8 per channel, rotation ±6°)
is left to chance:

  "a red circle on a blue background"                 one shape, centred, medium size
  "a small yellow star on the left on a black background"
  "a large green ring at the top on a pink and white gradient"   gradient: first colour at the top
  "a red circle and a blue square on a white background"         two shapes: first left, second right
  "a purple triangle"                                 no background named: mid grey

Deterministic from a seed: `sample(rng)` with `numpy.random.default_rng(seed)`.
The colour and shape tables here are mirrored by the Swift quality tests (Tests/DemoModelTests).

Usage: python3 tools/demo_data.py --out sheet.png [--seed 0] [--count 64]   (a contact sheet to look at)
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

import numpy as np

SIZE = 128
SUPERSAMPLE = 2  # shapes are drawn at 2× and box-filtered down: anti-aliased edges

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "orange": (245, 140, 30),
    "yellow": (240, 220, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "purple": (140, 60, 190),
    "pink": (245, 130, 190),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}
GREY = (128, 128, 128)
SHAPES = ("circle", "square", "triangle", "star", "ring")
SIZES = {"small": 0.11, "": 0.2, "large": 0.3}  # radius as a fraction of the image side
POSITIONS = {"": (0.5, 0.5), "on the left": (0.3, 0.5), "on the right": (0.7, 0.5),
             "at the top": (0.5, 0.3), "at the bottom": (0.5, 0.7)}


@dataclass
class Shape:
    kind: str
    colour: str
    centre: tuple[float, float]  # fractions of the side (x, y)
    radius: float                # fraction of the side
    size_word: str = ""
    position_word: str = ""


def caption_of(shapes: list[Shape], background: tuple[str, ...]) -> str:
    def phrase(s: Shape, with_position: bool) -> str:
        words = ([s.size_word] if s.size_word else []) + [s.colour, s.kind]
        words.insert(0, "an" if words[0][0] in "aeiou" else "a")
        if with_position and s.position_word:
            words.append(s.position_word)
        return " ".join(words)
    text = " and ".join(phrase(s, len(shapes) == 1) for s in shapes)
    if background:
        article = "an" if background[0][0] in "aeiou" else "a"
        text += f" on {article} {' and '.join(background)} {'background' if len(background) == 1 else 'gradient'}"
    return text


def sample(rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """One (image uint8 [128, 128, 3], caption) pair."""
    names = list(COLOURS)
    count = 2 if rng.random() < 0.2 else 1
    shape_colours = [names[i] for i in rng.choice(len(names), size=count, replace=False)]
    shapes = []
    for i, colour in enumerate(shape_colours):
        kind = SHAPES[rng.integers(len(SHAPES))]
        if count == 1:
            size_word = rng.choice(list(SIZES), p=[0.25, 0.5, 0.25])
            position_word = rng.choice(list(POSITIONS), p=[0.6, 0.1, 0.1, 0.1, 0.1])
            shapes.append(Shape(kind, colour, POSITIONS[position_word], SIZES[size_word], size_word, position_word))
        else:
            shapes.append(Shape(kind, colour, (0.28 + 0.44 * i, 0.5), 0.16))
    others = [n for n in names if n not in shape_colours]
    r = rng.random()
    if r < 0.1:
        background: tuple[str, ...] = ()
    elif r < 0.75:
        background = (others[rng.integers(len(others))],)
    else:
        pair = rng.choice(len(others), size=2, replace=False)
        background = (others[pair[0]], others[pair[1]])
    return render(shapes, background, rng), caption_of(shapes, background)


def jitter_colour(rgb: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    return np.clip(np.array(rgb, np.float32) + rng.uniform(-8, 8, 3), 0, 255)


def render(shapes: list[Shape], background: tuple[str, ...], rng: np.random.Generator) -> np.ndarray:
    n = SIZE * SUPERSAMPLE
    if not background:
        canvas = np.broadcast_to(jitter_colour(GREY, rng), (n, n, 3)).copy()
    else:
        top = jitter_colour(COLOURS[background[0]], rng)
        bottom = jitter_colour(COLOURS[background[-1]], rng)
        t = np.linspace(0, 1, n, dtype=np.float32)[:, None, None]
        canvas = np.broadcast_to(top * (1 - t) + bottom * t, (n, n, 3)).copy()
    ys, xs = np.mgrid[0:n, 0:n].astype(np.float32) + 0.5
    for s in shapes:
        cx = (s.centre[0] + rng.uniform(-3, 3) / SIZE) * n
        cy = (s.centre[1] + rng.uniform(-3, 3) / SIZE) * n
        radius = s.radius * rng.uniform(0.92, 1.08) * n
        angle = math.radians(rng.uniform(-6, 6))
        mask = shape_mask(s.kind, xs - cx, ys - cy, radius, angle)
        canvas[mask] = jitter_colour(COLOURS[s.colour], rng)
    small = canvas.reshape(SIZE, SUPERSAMPLE, SIZE, SUPERSAMPLE, 3).mean(axis=(1, 3))
    return np.round(small).astype(np.uint8)


def shape_mask(kind: str, dx: np.ndarray, dy: np.ndarray, radius: float, angle: float) -> np.ndarray:
    if kind == "circle":
        return dx * dx + dy * dy <= radius * radius
    if kind == "ring":
        d2 = dx * dx + dy * dy
        return (d2 <= radius * radius) & (d2 >= (0.55 * radius) ** 2)
    if kind == "square":
        c, s = math.cos(angle), math.sin(angle)
        u, v = c * dx + s * dy, -s * dx + c * dy
        half = radius * 0.85  # same area scale as the circle, roughly
        return (np.abs(u) <= half) & (np.abs(v) <= half)
    if kind == "triangle":
        points = [(radius * math.cos(angle - math.pi / 2 + k * 2 * math.pi / 3),
                   radius * 1.1 * math.sin(angle - math.pi / 2 + k * 2 * math.pi / 3) + 0.2 * radius) for k in range(3)]
        return polygon_mask(points, dx, dy)
    if kind == "star":
        points = []
        for k in range(10):
            r = radius * (1.0 if k % 2 == 0 else 0.42)
            a = angle - math.pi / 2 + k * math.pi / 5
            points.append((r * math.cos(a), r * math.sin(a) + 0.05 * radius))
        return polygon_mask(points, dx, dy)
    raise ValueError(f"unknown shape {kind}")


def polygon_mask(points: list[tuple[float, float]], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Even-odd rule, one crossing test per edge, vectorised over the pixels."""
    inside = np.zeros(x.shape, bool)
    for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1]):
        if y0 == y1:
            continue
        crosses = (y0 > y) != (y1 > y)
        xi = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (x < xi)
    return inside


def batch(seed: int, count: int) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    pairs = [sample(rng) for _ in range(count)]
    return np.stack([p[0] for p in pairs]), [p[1] for p in pairs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="contact sheet PNG")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--count", type=int, default=64)
    args = ap.parse_args()
    from PIL import Image
    images, captions = batch(args.seed, args.count)
    columns = 8
    rows = (len(images) + columns - 1) // columns
    sheet = np.zeros((rows * SIZE, columns * SIZE, 3), np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        sheet[r * SIZE:(r + 1) * SIZE, c * SIZE:(c + 1) * SIZE] = image
    Image.fromarray(sheet).save(args.out)
    for i, caption in enumerate(captions):
        print(f"{i:3d} {caption}")


if __name__ == "__main__":
    main()
