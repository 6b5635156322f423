#!/usr/bin/env python3
"""Writes the safetensors test corpus under Tests/Fixtures/safetensors (standard library only).

malformed/<kind>-<what>.safetensors: files every reader must reject. <kind> is the
ModelFilesError case the Swift parser is expected to throw (badHeader or badTensor); the test
suite replays each file and checks that kind. valid/*.safetensors: small well-formed files whose
values the tests check. The files double as the seed corpus of the fuzzer (`make fuzz`).

Run from the repository root: python3 tools/make_safetensors_corpus.py
"""
import json
import os
import shutil
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "safetensors")


def raw(header: bytes, data: bytes = b"", length=None) -> bytes:
    """A file: u64 LE length (the true one unless given), header bytes, data bytes."""
    n = len(header) if length is None else length
    return struct.pack("<Q", n) + header + data


def st(header_obj, data: bytes = b"", pad_to=8) -> bytes:
    """A file from a header object, padded with spaces (as the Python writer does) so the data
    section starts at a multiple of `pad_to` (1: no padding)."""
    text = json.dumps(header_obj, separators=(",", ":")).encode()
    while (8 + len(text)) % pad_to:
        text += b" "
    return raw(text, data)


def entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def f32(*values) -> bytes:
    return struct.pack("<%df" % len(values), *values)


def f16(*values) -> bytes:
    return struct.pack("<%de" % len(values), *values)


def bf16(*values) -> bytes:
    return b"".join(struct.pack("<I", struct.unpack("<I", struct.pack("<f", v))[0])[2:] for v in values)


def malformed():
    A = entry("F32", [2], 0, 8)
    good8 = f32(1, 2)
    cases = {
        # --- the length prefix and the file size
        "badHeader-empty-file": b"",
        "badHeader-3-bytes": b"\x01\x00\x00",
        "badHeader-7-bytes": b"\x02\x00\x00\x00\x00\x00\x00",
        "badHeader-length-zero": raw(b""),
        "badHeader-length-zero-with-data": raw(b"", good8),
        "badHeader-length-past-end": raw(b'{"a":1}', length=100),
        "badHeader-length-one-past-end": raw(b"{}", length=3),
        "badHeader-length-2pow63": raw(b"{}", length=1 << 63),
        "badHeader-length-u64-max": raw(b"{}", length=(1 << 64) - 1),
        "badHeader-length-over-100mb": raw(b"{}", length=100_000_001),
        # --- the header text
        "badHeader-not-json": raw(b"hello world"),
        "badHeader-json-array": raw(b"[]"),
        "badHeader-json-string": raw(b'"a"'),
        "badHeader-json-number": raw(b"42"),
        "badHeader-json-null": raw(b"null"),
        "badHeader-bad-utf8": raw(b'{"\xff":' + json.dumps(A).encode() + b"}", good8),
        "badHeader-overlong-utf8": raw(b'{"\xc0\xaf":' + json.dumps(A).encode() + b"}", good8),
        "badHeader-utf8-surrogate": raw(b'{"\xed\xa0\x80":' + json.dumps(A).encode() + b"}", good8),
        "badHeader-truncated-utf8": raw(b'{"a\xe2\x82', good8),
        "badHeader-utf8-bom": raw(b"\xef\xbb\xbf{}"),
        "badHeader-truncated-json": raw(b'{"a":{"dtype":"F32"', good8),
        "badHeader-trailing-garbage": raw(b"{} x"),
        "badHeader-trailing-nul": raw(b"{}\x00\x00"),
        "badHeader-two-objects": raw(b"{}{}"),
        "badHeader-deep-arrays": raw(b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":' + b"[" * 100000 + b"]" * 100000 + b"}}", good8),
        "badHeader-deep-objects": raw(b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":' + b'{"a":' * 5000 + b"1" + b"}" * 5000 + b"}}", good8),
        "badHeader-deep-unclosed": raw(b'{"a":{"x":' + b"[" * 10000),
        "badHeader-unterminated-string": raw(b'{"a'),
        "badHeader-bad-escape": raw(b'{"\\x41":1}'),
        "badHeader-lone-high-surrogate": raw(b'{"\\ud800":' + json.dumps(A).encode() + b"}", good8),
        "badHeader-lone-low-surrogate": raw(b'{"\\udc00":' + json.dumps(A).encode() + b"}", good8),
        "badHeader-short-unicode-escape": raw(b'{"\\u12'),
        "badHeader-raw-control-char": raw(b'{"a\x01b":' + json.dumps(A).encode() + b"}", good8),
        "badHeader-single-quotes": raw(b"{'a':1}"),
        "badHeader-trailing-comma": raw(b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},}', good8),
        "badHeader-missing-colon": raw(b'{"a" {}}'),
        "badHeader-leading-zero": raw(b'{"a":{"dtype":"F32","shape":[02],"data_offsets":[0,8]}}', good8),
        "badHeader-nan-literal": raw(b'{"a":{"dtype":"F32","shape":[NaN],"data_offsets":[0,8]}}', good8),
        "badHeader-bare-minus": raw(b'{"a":{"dtype":"F32","shape":[-],"data_offsets":[0,8]}}', good8),
        "badHeader-comment": raw(b'{/* c */}'),
        # --- __metadata__ and coverage of the data section
        "badHeader-metadata-number": raw(b'{"__metadata__":1}'),
        "badHeader-metadata-non-string-value": raw(b'{"__metadata__":{"format":"pt","n":1}}'),
        "badHeader-metadata-nested": raw(b'{"__metadata__":{"x":{"y":"z"}}}'),
        "badHeader-metadata-duplicate-key": raw(b'{"__metadata__":{"k":"a","k":"b"}}'),
        "badHeader-metadata-twice": raw(b'{"__metadata__":{},"__metadata__":{}}'),
        "badHeader-trailing-data": st({"a": A}, good8 + b"\x00" * 8),
        "badHeader-data-but-no-tensors": st({}, good8),
        # --- one tensor's entry
        "badTensor-entry-not-object": raw(b'{"a":1}'),
        "badTensor-entry-array": raw(b'{"a":["F32",[2],[0,8]]}', good8),
        "badTensor-missing-dtype": st({"a": {"shape": [2], "data_offsets": [0, 8]}}, good8),
        "badTensor-missing-shape": st({"a": {"dtype": "F32", "data_offsets": [0, 8]}}, good8),
        "badTensor-missing-offsets": st({"a": {"dtype": "F32", "shape": [2]}}, good8),
        "badTensor-dtype-number": st({"a": {"dtype": 5, "shape": [2], "data_offsets": [0, 8]}}, good8),
        "badTensor-unknown-dtype": st({"a": entry("F128", [2], 0, 8)}, good8),
        "badTensor-lowercase-dtype": st({"a": entry("f32", [2], 0, 8)}, good8),
        "badTensor-dtype-torch-name": st({"a": entry("float32", [2], 0, 8)}, good8),
        "badTensor-shape-negative": st({"a": entry("F32", [-1, 2], 0, 8)}, good8),
        "badTensor-shape-float": raw(b'{"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}', good8),
        "badTensor-shape-exponent": raw(b'{"a":{"dtype":"F32","shape":[2e0],"data_offsets":[0,8]}}', good8),
        "badTensor-shape-int-overflow": raw(b'{"a":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,8]}}', good8),
        "badTensor-shape-2pow63": raw(b'{"a":{"dtype":"F32","shape":[9223372036854775808],"data_offsets":[0,8]}}', good8),
        "badTensor-shape-product-overflow": st({"a": entry("F32", [1 << 32, 1 << 32], 0, 8)}, good8),
        "badTensor-shape-bytes-overflow": st({"a": entry("U64", [1 << 61], 0, 8)}, good8),
        "badTensor-shape-huge-dims": st({"a": entry("F32", [1000000, 1000000], 0, 8)}, good8),
        "badTensor-shape-not-array": st({"a": {"dtype": "F32", "shape": 2, "data_offsets": [0, 8]}}, good8),
        "badTensor-shape-string-dim": st({"a": entry("F32", ["2"], 0, 8)}, good8),
        "badTensor-shape-null-dim": st({"a": entry("F32", [None], 0, 8)}, good8),
        "badTensor-shape-rank-100": st({"a": entry("F32", [1] * 98 + [2], 0, 8)}, good8),
        "badTensor-offsets-begin-after-end": st({"a": entry("F32", [2], 8, 0)}, good8),
        "badTensor-offsets-past-end": st({"a": entry("F32", [2], 0, 1000)}, good8),
        "badTensor-offsets-one-value": st({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8]}}, good8),
        "badTensor-offsets-three-values": st({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8, 8]}}, good8),
        "badTensor-offsets-negative": st({"a": entry("F32", [2], -8, 0)}, good8),
        "badTensor-offsets-float": raw(b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8.0]}}', good8),
        "badTensor-offsets-overflow": raw(b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551624]}}', good8),
        "badTensor-size-mismatch": st({"a": entry("F32", [3], 0, 8)}, good8),
        "badTensor-size-mismatch-f16": st({"a": entry("F16", [2], 0, 8)}, good8),
        "badTensor-size-mismatch-i64": st({"a": entry("I64", [2], 0, 8)}, good8),
        "badTensor-scalar-wrong-size": st({"a": entry("F32", [], 0, 8)}, good8),
        "badTensor-subbyte-not-whole": st({"a": entry("F4", [3], 0, 2)}, b"\x00\x00"),
        "badTensor-overlap": st({"a": entry("F32", [2], 0, 8), "b": entry("F32", [2], 4, 12)}, f32(1, 2, 3)),
        "badTensor-same-range": st({"a": entry("F32", [2], 0, 8), "b": entry("F32", [2], 0, 8)}, good8),
        "badTensor-empty-inside-other": st({"a": entry("F32", [2], 0, 8), "b": entry("F32", [0], 4, 4)}, good8),
        "badTensor-gap": st({"a": entry("F32", [1], 0, 4), "b": entry("F32", [1], 8, 12)}, f32(1, 2, 3)),
        "badTensor-not-from-zero": st({"a": entry("F32", [1], 4, 8)}, good8),
        "badTensor-duplicate-name": raw(b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', good8),
        "badTensor-duplicate-field": raw(b'{"a":{"dtype":"F32","dtype":"F16","shape":[2],"data_offsets":[0,8]}}', good8),
        "badTensor-unsupported-dtype-past-end": st({"ids": entry("I64", [4], 0, 32)}, good8),
    }
    return cases


def valid():
    pos = struct.pack("<4q", 0, 1, 2, 3)
    return {
        # F32, F16 and BF16 side by side, with metadata, in the Python writer's padded layout.
        "mixed_formats": st({"__metadata__": {"format": "pt", "note": "caf\u00e9"},
                             "w32": entry("F32", [2, 2], 0, 16),
                             "w16": entry("F16", [3], 16, 22),
                             "wbf": entry("BF16", [2], 22, 26)},
                            f32(1.0, -2.0, 0.5, 3.25) + f16(1.0, -2.0, 0.5) + bf16(1.5, -3.0)),
        # Header of odd length, no padding: the data section starts unaligned (MLX-style).
        "unaligned": st({"a": entry("F32", [3], 0, 12), "b": entry("F16", [1], 12, 14)},
                        f32(1.0, 2.0, 3.0) + f16(-1.0), pad_to=1),
        # A 0-d scalar.
        "scalar": st({"s": entry("F32", [], 0, 4)}, f32(3.5)),
        # What real text encoder exports carry: I64 position ids beside float weights.
        "with_int64": st({"text_model.embeddings.position_ids": entry("I64", [1, 4], 0, 32),
                          "text_model.embeddings.token_embedding.weight": entry("F32", [2, 2], 32, 48),
                          "text_model.final_layer_norm.bias": entry("F16", [2], 48, 52)},
                         pos + f32(0.25, 0.5, 0.75, 1.0) + f16(2.0, 4.0)),
        # No tensors at all.
        "empty": raw(b"{}"),
        # Empty tensors next to a real one, entries listed out of data order, a null __metadata__,
        # and an unknown extra field (ignored).
        "zero_size": raw(b'  {"__metadata__":null,"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":[1,{"k":null}]},'
                         b'"a":{"dtype":"F16","shape":[0,3],"data_offsets":[0,0]},'
                         b'"c":{"dtype":"BF16","shape":[4,0],"data_offsets":[8,8]}}  ', f32(7.0, 8.0)),
        # Names with escapes and raw UTF-8.
        "unicode_names": raw('{"caf\u00e9.w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                             '"tab\\tslash\\/quote\\"snow\\u2603clef\\ud834\\udd1e":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}'
                             .encode(), f32(1.0, 2.0)),
        # Every non-loadable dtype once, plus one F32: all open, all listed as unsupported.
        "all_dtypes": all_dtypes(),
    }


def all_dtypes():
    bits = {"BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8,
            "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8, "I16": 16, "U16": 16, "I32": 32, "U32": 32,
            "C64": 64, "F64": 64, "I64": 64, "U64": 64}
    header, offset = {}, 0
    for name, b in bits.items():
        n = 4 * b // 8  # four elements (whole bytes for F4 and F6)
        header[name.lower()] = entry(name, [4], offset, offset + n)
        offset += n
    header["f32"] = entry("F32", [1], offset, offset + 4)
    return st(header, bytes(i % 256 for i in range(offset)) + f32(9.0))


def main():
    for sub, files in (("malformed", malformed()), ("valid", valid())):
        folder = os.path.join(ROOT, sub)
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        for name, content in sorted(files.items()):
            with open(os.path.join(folder, name + ".safetensors"), "wb") as f:
                f.write(content)
        print(f"{len(files)} files in {os.path.relpath(folder)}")


if __name__ == "__main__":
    main()
