"""Shared by the fixture scripts: reproducible safetensors files and the CLIP byte table."""
import json
import struct
from pathlib import Path


def canonicalize_header(path: Path) -> None:
    """safetensors writes the __metadata__ map in hash order; rewrite the JSON header with sorted
    metadata keys so that regenerating gives byte-identical files. Tensor entries and data are
    unchanged; the header stays space-padded to 8 bytes as safetensors pads it."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    md = header.pop("__metadata__", None)
    ordered = {}
    if md is not None:
        ordered["__metadata__"] = dict(sorted(md.items()))
    ordered.update(header)
    text = json.dumps(ordered, separators=(",", ":")).encode("utf-8")
    text += b" " * ((-len(text)) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n:])


def bytes_to_unicode() -> dict[int, str]:
    """The GPT-2 / CLIP reversible byte -> printable unicode character table (insertion order =
    printable bytes first, then the other 68 mapped to U+0100...)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))
