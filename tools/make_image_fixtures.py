"""Writes Tests/Fixtures/images/: small PNG/JPEG files and the RGB bytes Pillow decodes from them,
Pillow resize outputs, and diffusers' float <-> image conversions, for Tests/MediaTests.

Pinned: Pillow 13.0.0 (its wheel bundles libjpeg-turbo 3.2.0), numpy 2.4.6, and for the float
fixtures diffusers 0.39.0 with torch (tools/requirements.txt). Deterministic: rerunning rewrites
identical files. Every expected array is a .npy file (uint8 (H, W, 3) pixels, or float32).

    python3 tools/make_image_fixtures.py
"""
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import PIL
from PIL import Image

PILLOW_VERSION = "13.0.0"
OUT = Path(__file__).resolve().parent.parent / "Tests" / "Fixtures" / "images"


# Pillow suggests RGBA for palette images with per-entry transparency; the fixture wants exactly that.
warnings.filterwarnings("ignore", message="Palette images with Transparency")


def check_versions():
    if PIL.__version__ != PILLOW_VERSION:
        raise SystemExit(f"Pillow {PILLOW_VERSION} expected, found {PIL.__version__}")


def pattern(h, w, seed, channels=3):
    """Smooth gradients plus noise: exercises every byte range and JPEG's smooth and busy blocks."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack([x / max(w - 1, 1), y / max(h - 1, 1), (x + y) / max(w + h - 2, 1)], axis=-1)
    base = np.concatenate([base] * 2, axis=-1)[..., :channels]
    noise = rng.uniform(-0.25, 0.25, size=(h, w, channels))
    return np.clip((base + noise) * 255, 0, 255).round().astype(np.uint8)


def pattern16(h, w, seed, channels):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 65536, size=(h, w, channels), dtype=np.uint16)


# ---- A minimal PNG writer for what Pillow cannot write (16-bit colour, 2-bit gray, interlace) ----

def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def raw_png(width, height, bit_depth, color_type, rows, interlace=0, extra=b""):
    """`rows(x0, y0, dx, dy)` returns the filter-0 scanlines (bytes, without filter byte) of the
    sub-image starting at (x0, y0) with steps (dx, dy): the whole image when not interlaced, one
    Adam7 pass otherwise."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, interlace)
    if interlace:
        passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    else:
        passes = [(0, 0, 1, 1)]
    raw = b""
    for x0, y0, dx, dy in passes:
        for line in rows(x0, y0, dx, dy):
            raw += b"\x00" + line
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def rows_of(array, pack=None):
    """Scanline function over an (H, W, C) array: big-endian samples, or `pack` for sub-byte gray."""
    def rows(x0, y0, dx, dy):
        sub = array[y0::dy, x0::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            return []
        if pack is not None:
            return [pack(r) for r in sub]
        return [r.astype(sub.dtype.newbyteorder(">")).tobytes() for r in sub]
    return rows


def pack2(row):
    v = row[:, 0].astype(np.uint8)
    v = np.concatenate([v, np.zeros((-len(v)) % 4, np.uint8)])
    return bytes(((v[0::4] << 6) | (v[1::4] << 4) | (v[2::4] << 2) | v[3::4]).astype(np.uint8))


def save_expected(file_name):
    """Pillow's decode of `file_name`, as `file_name.npy` (e.g. rgb.png.npy)."""
    image = Image.open(OUT / file_name)
    np.save(OUT / f"{file_name}.npy", np.asarray(image.convert("RGB")), allow_pickle=False)


def pngs():
    h, w = 13, 17
    rgb = pattern(h, w, 1)
    rgba = pattern(h, w, 2, 4)
    Image.fromarray(rgb).save(OUT / "rgb.png")
    Image.fromarray(rgba, "RGBA").save(OUT / "rgba.png")
    Image.fromarray(rgb[..., 0]).save(OUT / "gray.png")
    Image.fromarray(rgb[..., 1] > 128).save(OUT / "gray1.png")  # mode "1": a 1-bit PNG
    Image.fromarray(rgba[..., :2], "LA").save(OUT / "la.png")
    pal = Image.fromarray(rgb).quantize(16, dither=Image.Dither.NONE)
    pal.save(OUT / "palette4.png", bits=4)
    pal = Image.fromarray(rgb).quantize(200, dither=Image.Dither.NONE)
    pal.save(OUT / "palette8.png")
    pal.save(OUT / "palette_trns.png", transparency=bytes(range(0, 250, 5)))
    for name in ["rgb", "rgba", "gray", "gray1", "la", "palette4", "palette8", "palette_trns"]:
        save_expected(f"{name}.png")
    assert Image.open(OUT / "palette_trns.png").info.get("transparency") is not None
    assert Image.open(OUT / "palette4.png").mode == "P"

    # 16-bit grayscale: Pillow opens it as I;16 and its convert("RGB") clips every sample to 255;
    # the Swift decoder keeps the high byte instead (as Pillow does for all other 16-bit types), so
    # the expected bytes here are `sample >> 8`, not Pillow's.
    g16 = pattern16(h, w, 3, 1)[..., 0]
    Image.fromarray(g16).save(OUT / "gray16.png")
    im = Image.open(OUT / "gray16.png")
    assert im.mode == "I;16" and (np.asarray(im) == g16).all()
    np.save(OUT / "gray16.png.npy", np.repeat((g16 >> 8).astype(np.uint8)[..., None], 3, axis=-1))

    # Written by hand: 16-bit RGB, RGBA and gray+alpha, 2-bit gray, Adam7 interlace, gAMA.
    rgb16 = pattern16(h, w, 4, 3)
    rgba16 = pattern16(h, w, 5, 4)
    la16 = pattern16(h, w, 6, 2)
    gray2 = np.random.default_rng(7).integers(0, 4, size=(h, w, 1), dtype=np.uint8)
    gama = chunk(b"gAMA", struct.pack(">I", 100000))  # gamma 1.0: must not change the pixels
    files = {
        "rgb16": raw_png(w, h, 16, 2, rows_of(rgb16)),
        "rgba16": raw_png(w, h, 16, 6, rows_of(rgba16)),
        "la16": raw_png(w, h, 16, 4, rows_of(la16)),
        "gray2": raw_png(w, h, 2, 0, rows_of(gray2, pack2)),
        "interlaced": raw_png(w, h, 8, 2, rows_of(rgb), interlace=1),
        "interlaced16": raw_png(w, h, 16, 6, rows_of(rgba16), interlace=1),
        "gamma": raw_png(w, h, 8, 2, rows_of(rgb), extra=gama),
    }
    for name, data in files.items():
        (OUT / f"{name}.png").write_bytes(data)
        save_expected(f"{name}.png")
    # Pillow's decode of these is the high byte / the plain samples: the hand writer is right.
    assert (np.load(OUT / "rgb16.png.npy") == (rgb16 >> 8)).all()
    assert (np.load(OUT / "rgba16.png.npy") == (rgba16[..., :3] >> 8)).all()
    assert (np.load(OUT / "interlaced.png.npy") == rgb).all()
    assert (np.load(OUT / "gamma.png.npy") == rgb).all()
    assert (np.load(OUT / "gray2.png.npy")[..., 0] == gray2[..., 0] * 85).all()

    # A valid-CRC header claiming 100000 x 100000 pixels, followed by a tiny IDAT.
    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    (OUT / "huge_dims.png").write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b""))


def jpegs():
    rgb = pattern(13, 19, 8)  # odd sizes: partial MCUs at the right and bottom edges
    Image.fromarray(rgb).save(OUT / "baseline420.jpg", quality=90)
    Image.fromarray(rgb).save(OUT / "baseline444.jpg", quality=90, subsampling=0)
    Image.fromarray(rgb).save(OUT / "baseline422.jpg", quality=75, subsampling=1)
    Image.fromarray(rgb).save(OUT / "progressive.jpg", quality=85, progressive=True)
    Image.fromarray(rgb[..., 0]).save(OUT / "gray.jpg", quality=90)
    Image.fromarray(rgb).convert("CMYK").save(OUT / "cmyk.jpg", quality=90)  # refused by the reader
    for name in ["baseline420", "baseline444", "baseline422", "progressive", "gray"]:
        save_expected(f"{name}.jpg")
    # Pillow's encoder at its defaults (4:2:0) and quality 95, for the Swift encoder to match.
    src = pattern(24, 32, 9)
    Image.fromarray(src).save(OUT / "encode_source.png")
    Image.fromarray(src).save(OUT / "pillow_q95.jpg", quality=95)
    save_expected("pillow_q95.jpg")


RESIZE_FILTERS = {
    "box": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "hamming": Image.Resampling.HAMMING,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
# Down, up, one axis, and both sides of Pillow 13's pass-order rule (vertical pass first when the
# height shrinks by more than twice as many pixels as the width): (17, 5) is the tie.
RESIZE_SIZES = [(11, 9), (37, 29), (23, 8), (5, 17), (64, 3), (17, 5), (30, 10), (18, 4)]


def resizes():
    src = Image.fromarray(pattern(17, 23, 10))
    src.save(OUT / "resize_source.png")
    for name, f in RESIZE_FILTERS.items():
        for w, h in RESIZE_SIZES:
            np.save(OUT / f"resize_{name}_{w}x{h}.npy", np.asarray(src.resize((w, h), f)), allow_pickle=False)


def conversions():
    """diffusers' VaeImageProcessor on both directions, NHWC in the files."""
    import torch
    from diffusers.image_processor import VaeImageProcessor

    proc = VaeImageProcessor()
    # postprocess: values at and around every rounding boundary, out of range, infinities, noise.
    k = np.arange(256, dtype=np.float64)
    edges = ((k + 0.5) / 255 * 2 - 1).astype(np.float32)
    values = [edges, np.nextafter(edges, np.float32(2)), np.nextafter(edges, np.float32(-2)),
              ((k / 255) * 2 - 1).astype(np.float32),
              np.array([-1, 1, 0, -1.5, 1.5, -0.0, np.inf, -np.inf, 1e-8, -1e-8, 3e38, -3e38], np.float32)]
    flat = np.concatenate(values)
    rng = np.random.default_rng(11)
    fill = rng.normal(0, 0.8, size=16 * 64 * 3 - flat.size).astype(np.float32)
    nhwc = np.concatenate([flat, fill]).reshape(1, 16, 64, 3)
    out = proc.postprocess(torch.from_numpy(nhwc).permute(0, 3, 1, 2).contiguous(), output_type="pil")[0]
    np.save(OUT / "post_input.npy", nhwc[0], allow_pickle=False)
    np.save(OUT / "post_expected.npy", np.asarray(out), allow_pickle=False)

    # preprocess: a 16x16 image holding every byte value in every channel.
    v = np.arange(256, dtype=np.uint8).reshape(16, 16)
    img = np.stack([v, v[::-1, ::-1], v.T], axis=-1)
    Image.fromarray(img).save(OUT / "pre_source.png")
    t = proc.preprocess(Image.open(OUT / "pre_source.png"))
    assert tuple(t.shape) == (1, 3, 16, 16) and t.dtype == torch.float32
    np.save(OUT / "pre_expected.npy", t[0].permute(1, 2, 0).contiguous().numpy(), allow_pickle=False)


def main():
    check_versions()
    OUT.mkdir(parents=True, exist_ok=True)
    pngs()
    jpegs()
    resizes()
    conversions()
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {len(list(OUT.iterdir()))} files, {total} bytes, to {OUT}")


if __name__ == "__main__":
    main()
