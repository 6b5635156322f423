#!/usr/bin/env python3
"""Build the CLIP tokenizer fixtures for the Swift `Models.CLIPTokenizer` tests.

Writes, under Tests/Fixtures/tokenizer/:
  sd15/  vocab.json, merges.txt, special_tokens_map.json, tokenizer_config.json  (pad "<|endoftext|>")
  sd21/  special_tokens_map.json, tokenizer_config.json (pad "!"), and vocab.json / merges.txt as
         relative symlinks to ../sd15/ (one copy of the big files in git)
  expected.json  reference ids (77 each, padded) computed by transformers.CLIPTokenizer

No model hub is reachable, so the vocabulary is rebuilt from the BPE file that `open_clip_torch` ships
(`open_clip/bpe_simple_vocab_16e6.txt.gz`, the same file as OpenAI CLIP's) with the construction of
the original CLIP `SimpleTokenizer`: byte chars, byte chars + "</w>", the 48894 merges joined, then
"<|startoftext|>", "<|endoftext|>" (49408 entries, "!" = 0, "!</w>" = 256, as the hub's
openai/clip-vit-large-patch14; the known SD prompt ids are asserted below).

Pinned versions (install in a throw-away venv; none of them is needed by the Swift build):
  transformers==5.23.0   (pulls tokenizers==0.23.3)
  open_clip_torch==3.3.0 (only downloaded as a wheel with `pip download --no-deps`; not installed)
  ftfy: NOT installed (transformers 5 has no slow CLIPTokenizer; see the note below)

File layout: the folders mirror a diffusers repo's `tokenizer/` (SD 1.5, SD 2.1, sd-turbo): vocab.json,
merges.txt, special_tokens_map.json, tokenizer_config.json. tokenizer_config.json is what
`CLIPTokenizer.save_pretrained` writes; transformers 5 no longer writes vocab.json / merges.txt /
special_tokens_map.json (only a 3.6 MB tokenizer.json, dropped here), so vocab.json and merges.txt are
written in the hub's layout and special_tokens_map.json in the hub's format (bos/eos/unk
"normalized": true, pad "!" "normalized": false as in the SD 2 / SDXL tokenizer_2 repos). The reference
ids are computed by `CLIPTokenizer.from_pretrained` on the written folders, so they reflect how
transformers reads exactly these files.

Normalisation note: in transformers 5, `transformers.CLIPTokenizer` *is* the tokenizers-backed
("fast") tokenizer; the slow Python one is gone. Its normaliser is NFC -> collapse `\\s+` to " " ->
lowercase (no ftfy, no html.unescape). That is the behaviour the Swift tokenizer reproduces and the
reference ids encode. Registered special tokens are split out of the *raw* text before normalisation,
so with sd21's pad token "!" every literal "!" becomes id 0 (diffusers #4153), exactly as HF does.
Checked once against transformers 4.57.1 (tokenizers 0.22.2): `CLIPTokenizerFast` gives the same ids
for every case here; the old slow `CLIPTokenizer` differs only on exotic text — with ftfy 6.3.1 on 5
of the prompts (ligature "ﬁ", "'ſ" taken as a contraction by its case-insensitive regex, Greek final
sigma, zero-width space / BOM / NEL, control characters), without ftfy on 6 (BasicTokenizer also
splits CJK and emoji differently). Every ASCII prompt agrees across all of them.

Usage: python tools/make_tokenizer_fixtures.py [--bpe path/to/bpe_simple_vocab_16e6.txt.gz]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixture_io import bytes_to_unicode  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests" / "Fixtures" / "tokenizer"
OPEN_CLIP_VERSION = "3.3.0"
MAX_LEN = 77


def fetch_bpe(tmp: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", f"open_clip_torch=={OPEN_CLIP_VERSION}", "-d", str(tmp)],
        check=True,
    )
    wheel = next(tmp.glob("open_clip_torch-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        data = z.read("open_clip/bpe_simple_vocab_16e6.txt.gz")
    out = tmp / "bpe_simple_vocab_16e6.txt.gz"
    out.write_bytes(data)
    return out


def build_vocab(bpe_path: Path) -> tuple[dict[str, int], list[tuple[str, str]]]:
    lines = gzip.open(bpe_path).read().decode("utf-8").split("\n")
    merges = [tuple(m.split()) for m in lines[1 : 49152 - 256 - 2 + 1]]
    assert len(merges) == 48894 and all(len(m) == 2 for m in merges)
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    encoder = {tok: i for i, tok in enumerate(vocab)}
    assert len(encoder) == 49408, len(encoder)
    assert encoder["!"] == 0 and encoder["!</w>"] == 256
    return encoder, merges


def write_vocab_files(folder: Path, encoder: dict[str, int], merges: list[tuple[str, str]]) -> None:
    # Same layout transformers' CLIP save_vocabulary uses (sorted-by-id JSON, "#version: 0.2" header).
    with open(folder / "vocab.json", "w", encoding="utf-8") as f:
        f.write(json.dumps(encoder, ensure_ascii=False) + "\n")
    with open(folder / "merges.txt", "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{a} {b}\n")


PROMPTS: list[str] = [
    # plain
    "a photo of a cat",
    "a photo of an astronaut riding a horse on mars",
    "an astronaut riding a horse on mars",
    "a beautiful landscape painting of mountains at sunset, trending on artstation",
    "portrait of a woman, highly detailed, digital art, 8k",
    "cyberpunk city street at night with neon lights and rain",
    # punctuation
    "a cat, a dog; and... a bird!?",
    "(masterpiece:1.2), [best quality], {ultra-detailed}",
    "hello-world_foo/bar\\baz@example.com #tag $5 %50 ^&*",
    "\"quoted\" 'single' `back`",
    # numbers
    "1024 x 768 in 2023",
    "3.14159 and -42 and 1e10",
    # apostrophes / contractions
    "it's don't we'll",
    "IT'S I'M YOU'RE THEY'VE HE'D SHE'LL",
    "the cat's toy isn't there'",
    "rock 'n' roll",
    "''s 'sup ?'s it'S it'ſ",
    # case
    "A Photo Of A CAT",
    "McDonald's iPhone NASA",
    # whitespace
    "  a   photo\tof\n\na  cat  ",
    "\t\n  \r\n",
    "a\u00a0photo\u2003of\u3000a cat",
    # non-ASCII
    "café crème",
    "ゴジラ",
    "🐱 emoji",
    "naïve Ωmega",
    "Straße ÆØÅ ﬁ İstanbul",
    "cafe\u0301 (decomposed e + combining acute)",
    "中文提示词 한국어 русский текст العربية",
    "👨‍👩‍👧 family 🏳️‍🌈 flag",
    "x² ½ ① Ⅻ ٣",
    "नमस्ते दुनिया",
    "ΟΔΟΣ ΣΊΣΥΦΟΣ",
    "zero\u200bwidth\ufeffbom next\u0085line",
    "control\u0007bell \u00ad soft-hyphen",
    # special-token strings in the text
    "a cat<|endoftext|>a dog",
    "<|startoftext|>hello",
    "a <|EndOfText|> b <|endoftext| <<|endoftext|>>",
    # empty
    "",
    # over-long (> 77 tokens)
    "a photo of a cat " * 20,
    ", ".join(f"word{i}" for i in range(60)),
    # exactly at the boundary: 75 tokens + BOS + EOS = 77
    " ".join(["cat"] * 75),
    " ".join(["cat"] * 76),
]

# Prompts that contain a literal "!" (tokenised in both folders; sd21 shows the diffusers #4153 quirk).
BANG_PROMPTS: list[str] = [
    "! !! !!!",
    "hello world!",
    "wow!!! amazing!",
    "a cat!dog",
    "!?! what?!",
    "!<|endoftext|>! ¡hola!",
]


def make_folder(folder: Path, encoder, merges, pad: str | None, link_to: Path | None):
    from transformers import CLIPTokenizer

    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as t:
        t = Path(t)
        write_vocab_files(t, encoder, merges)
        tok = CLIPTokenizer(vocab=str(t / "vocab.json"), merges=str(t / "merges.txt"), model_max_length=MAX_LEN)
        if pad is not None:
            # What the SD 2.x / sd-turbo / SDXL tokenizer_2 repos carry: pad_token "!" (id 0).
            tok.add_special_tokens({"pad_token": pad})
        tok.save_pretrained(str(folder))
    # Keep only the four files the Swift reader needs (transformers 5 also writes tokenizer.json).
    for p in folder.iterdir():
        if p.name not in ("special_tokens_map.json", "tokenizer_config.json"):
            p.unlink()
    if link_to is None:
        write_vocab_files(folder, encoder, merges)
    else:
        rel = os.path.relpath(link_to, folder)
        for name in ("vocab.json", "merges.txt"):
            os.symlink(os.path.join(rel, name), folder / name)
    # transformers 5 does not write special_tokens_map.json; write it as the hub repos have it.
    if not (folder / "special_tokens_map.json").exists():
        def tokspec(content: str, normalized: bool) -> dict:
            return {"content": content, "lstrip": False, "normalized": normalized, "rstrip": False, "single_word": False}
        stm = {
            "bos_token": tokspec("<|startoftext|>", True),
            "eos_token": tokspec("<|endoftext|>", True),
            "pad_token": tokspec(pad, False) if pad is not None else tokspec("<|endoftext|>", True),
            "unk_token": tokspec("<|endoftext|>", True),
        }
        (folder / "special_tokens_map.json").write_text(json.dumps(stm, indent=2, ensure_ascii=False) + "\n")
    return CLIPTokenizer.from_pretrained(str(folder))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bpe", type=Path, help="bpe_simple_vocab_16e6.txt.gz (default: fetched from the open_clip_torch wheel)")
    args = ap.parse_args()

    import transformers

    with tempfile.TemporaryDirectory() as tmp:
        bpe = args.bpe or fetch_bpe(Path(tmp))
        encoder, merges = build_vocab(bpe)

    OUT.mkdir(parents=True, exist_ok=True)
    sd15 = make_folder(OUT / "sd15", encoder, merges, None, None)
    sd21 = make_folder(OUT / "sd21", encoder, merges, "!", OUT / "sd15")

    def ids(tok, text: str) -> list[int]:
        return tok(text, padding="max_length", max_length=MAX_LEN, truncation=True).input_ids

    # Sanity checks from the spec (models.md §A4).
    assert ids(sd15, "a photo of a cat")[:7] == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert ids(sd15, "a photo of an astronaut riding a horse on mars")[:12] == [
        49406, 320, 1125, 539, 550, 18376, 6765, 320, 4558, 525, 7496, 49407]
    assert sd15.pad_token_id == 49407 and sd21.pad_token_id == 0
    assert ids(sd21, "! !! !!!")[:8] == [49406, 0, 0, 0, 0, 0, 0, 49407]  # diffusers #4153

    cases = []
    for folder, tok in (("sd15", sd15), ("sd21", sd21)):
        for text in PROMPTS:
            cases.append({"folder": folder, "text": text, "ids": ids(tok, text)})
        for text in BANG_PROMPTS:
            cases.append({"folder": folder, "text": text, "ids": ids(tok, text)})
    for c in cases:
        assert len(c["ids"]) == MAX_LEN
    meta = {
        "generator": "tools/make_tokenizer_fixtures.py",
        "transformers": transformers.__version__,
        "tokenizer": f"transformers.{type(sd15).__name__} (tokenizers backend; NFC + whitespace collapse + lowercase, no ftfy)",
        "max_length": MAX_LEN,
    }
    (OUT / "expected.json").write_text(
        json.dumps({"meta": meta, "cases": cases}, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(cases)} cases to {OUT / 'expected.json'}")


if __name__ == "__main__":
    main()
