#!/usr/bin/env python3
"""Writes the tensor layout (name -> shape) of the real-size models as diffusers builds them.

The Swift real-size check (`streamdiffusion bench unet`, and a test at a small latent size) writes
random fp16 weights under exactly these names and shapes as a diffusers folder, then loads it
through the normal loader: proof that our models bind the real diffusers layout without shipping
gigabytes of weights. Models are built on the `meta` device, so nothing is allocated.

    python3 tools/export_layouts.py   # -> Tests/Fixtures/layouts/*.json
Pins: tools/requirements.txt (diffusers 0.39.0, torch 2.13.0); transformers for the text encoder.
"""
import json
import pathlib

import torch
from diffusers import AutoencoderKL, AutoencoderTiny, UNet2DConditionModel

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests" / "Fixtures" / "layouts"

SD21_UNET = dict(
    in_channels=4, out_channels=4, block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    layers_per_block=2, attention_head_dim=[5, 10, 20, 20], cross_attention_dim=1024,
    use_linear_projection=True, norm_num_groups=32, sample_size=64,
)
SD_VAE = dict(
    in_channels=3, out_channels=3, block_out_channels=(128, 256, 512, 512), layers_per_block=2,
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    latent_channels=4, norm_num_groups=32, scaling_factor=0.18215,
)


def layout(model, config):
    return {
        "config": config,
        "tensors": {name: list(t.shape) for name, t in model.state_dict().items()},
    }


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    with torch.device("meta"):
        items = {
            "sd-turbo-unet": (UNet2DConditionModel(**SD21_UNET), SD21_UNET),
            "sd-vae": (AutoencoderKL(**SD_VAE), SD_VAE),
            "taesd": (AutoencoderTiny(), {}),
        }
        try:
            from transformers import CLIPTextConfig, CLIPTextModel
            text = dict(vocab_size=49408, hidden_size=1024, intermediate_size=4096, num_hidden_layers=23,
                        num_attention_heads=16, max_position_embeddings=77, hidden_act="gelu",
                        layer_norm_eps=1e-5, projection_dim=512)
            items["sd-turbo-text-encoder"] = (CLIPTextModel(CLIPTextConfig(**text)), text)
        except ImportError:
            print("transformers not installed: skipping the text encoder layout")
    for name, (model, config) in items.items():
        data = layout(model, {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()})
        path = OUT / f"{name}.json"
        path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        count = sum(int(torch.tensor(s).prod()) if s else 1 for s in data["tensors"].values())
        print(f"{path.relative_to(ROOT)}: {len(data['tensors'])} tensors, {count / 1e6:.1f} M parameters")


if __name__ == "__main__":
    main()
