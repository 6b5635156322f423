#!/usr/bin/env python3
"""Train the bundled demo model (Models/demo): a small Stable-Diffusion-family model of coloured shapes
that the StreamDiffusion pipeline turns into clean 128×128 pictures in 1–4 LCM steps.

Stages (each resumes from its checkpoint in --work; re-running the script continues where it stopped):
  1. vae     AutoencoderTiny (TAESD's block counts with 32 instead of 64 channels, latents /8 with 4
             channels) trained as an autoencoder on tools/demo_data.py images: MSE of the decoded
             image, decoded from latents with Gaussian noise σ ~ U(0, 0.1) added (so the decoder forgives
             an imperfect denoiser; 4000 steps of 32 random 64×64 crops, AdamW lr 5e-4, MSE + 0.5·L1), plus a small penalty keeping each latent channel near mean 0 and
             std 1 (the UNet's noise schedule assumes unit-scale latents; TAESD's scaling factor is 1).
  2. data    DATA_COUNT captioned images from tools/demo_data.py (seeded), encoded once to latents and
             tokenized with the real CLIP BPE vocabulary (Tests/Fixtures/tokenizer/sd15, rebuilt from the
             open_clip_torch BPE file by tools/make_tokenizer_fixtures.py).
  3. unet    A CLIPTextModel (3 layers, width 64, the full 49408-token vocabulary) and a
             UNet2DConditionModel (64/128/128 channels, cross-attention at 8×8 and 4×4) trained together.
             Recipe: x0-accurate epsilon prediction at the LCM timesteps. The pipeline (ours and the
             official StreamDiffusion) reads the UNet output as epsilon and takes
             x0 = (x_t − sqrt(1−ᾱ)·ε̂)/sqrt(ᾱ) at timesteps 999, 979, …, 19 (50-step LCM grid), so we
             train exactly that: t drawn from those 50 timesteps (40 % of rows at t = 999, the one-step
             case), loss = (1 + min(SNR, 5)) · ‖x0 − x̂0‖². Plain epsilon MSE would weight the t = 999
             x0 error by ᾱ/(1−ᾱ) ≈ 0.005 and give blurry one-step images; x0-space loss is what a
             1–4 step consistency sampler needs, and the boost at low noise keeps the last refinement
             steps trained. Because every caption names everything the image depends on (demo_data.py),
             the x0-optimal prediction is a sharp picture, not a blur of alternatives — no adversarial or
             distillation stage is needed. 10 % of captions are dropped to "" (unconditional rows for
             CFG). AdamW, lr 3e-4 with 300 warm-up steps and cosine decay, batch 32, EMA 0.999 of the
             weights (exported), bf16 autocast on CPU.
  4. export  The EMA weights as a standard diffusers folder: fp16 safetensors, configs, tokenizer,
             model_index.json (vae = AutoencoderTiny, scheduler = LCMScheduler), plus training.json
             (this recipe, seeds, the loss every 100 steps) and training.log (every stage's log).

Every random draw is seeded from --seed and the step number, so a resumed run equals an unbroken one
(up to floating-point reduction order). On 2 CPU cores the whole run takes about 90 minutes (VAE 15, data 6, UNet 66).

Usage: python3 tools/train_demo_model.py [--out Models/demo] [--work .build/demo-train] [--unet-steps 12000]
       python3 tools/train_demo_model.py --preview sheet.png   (sample the current checkpoint, 1 and 4 steps)
Requirements: tools/requirements.txt
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import demo_data  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TOKENIZER = ROOT / "Tests/Fixtures/tokenizer/sd15"
DATA_COUNT = 40_000
VAE_STEPS, VAE_BATCH, VAE_CROP = 4000, 32, 64
BATCH = 32
LCM_TIMESTEPS = [19 + 20 * k for k in range(50)]  # LCMScheduler, original_inference_steps 50


def vae_model():
    from diffusers import AutoencoderTiny
    return AutoencoderTiny(encoder_block_out_channels=(32,) * 4, decoder_block_out_channels=(32,) * 4,
                           num_encoder_blocks=(1, 3, 3, 3), num_decoder_blocks=(3, 3, 3, 1), latent_channels=4)


def text_model():
    from transformers import CLIPTextConfig, CLIPTextModel
    return CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=64, intermediate_size=256, num_hidden_layers=3, num_attention_heads=4,
        max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=64,
        bos_token_id=49406, eos_token_id=49407, pad_token_id=49407))


def unet_model():
    from diffusers import UNet2DConditionModel
    return UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, block_out_channels=(64, 128, 128), layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=64, attention_head_dim=4, norm_num_groups=16)


def scheduler():
    from diffusers import LCMScheduler
    return LCMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                        num_train_timesteps=1000, original_inference_steps=50, timestep_scaling=10.0,
                        set_alpha_to_one=True, clip_sample=False, prediction_type="epsilon")


def tokenizer():
    from transformers import CLIPTokenizer
    return CLIPTokenizer(str(TOKENIZER / "vocab.json"), str(TOKENIZER / "merges.txt"), model_max_length=77)


def tokens(tok, captions: list[str]) -> torch.Tensor:
    return torch.tensor(tok(captions, padding="max_length", max_length=77, truncation=True)["input_ids"])


def to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1)


def log(work: Path, line: str) -> None:
    print(line, flush=True)
    with open(work / "train.log", "a") as f:
        f.write(line + "\n")


def cosine_lr(step: int, total: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def train_vae(work: Path, seed: int) -> None:
    path = work / "vae.pt"
    vae = vae_model()
    opt = torch.optim.AdamW(vae.parameters(), lr=5e-4, weight_decay=0.0)
    step = 0
    if path.exists():
        state = torch.load(path)
        vae.load_state_dict(state["model"]); opt.load_state_dict(state["opt"]); step = state["step"]
    if step >= VAE_STEPS:
        return
    start = time.time()
    while step < VAE_STEPS:
        # Random 64×64 crops of 8 pictures: the autoencoder is convolutional, and crops give 4× the
        # variety of whole pictures for the same compute.
        images, _ = demo_data.batch(seed * 1_000_003 + 7919 * step, VAE_BATCH // 4)
        g = torch.Generator().manual_seed(seed * 31 + step)
        corners = torch.randint(0, demo_data.SIZE - VAE_CROP + 1, (VAE_BATCH, 2), generator=g).tolist()
        x = to_tensor(np.stack([images[i // 4][y:y + VAE_CROP, x:x + VAE_CROP] for i, (y, x) in enumerate(corners)]))
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, VAE_STEPS, 5e-4, 100)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            z = vae.encode(x).latents.float()
            sigma = torch.rand(z.shape[0], 1, 1, 1, generator=g) * 0.1
            y = vae.decode(z + sigma * torch.randn(z.shape, generator=g)).sample.float()
        recon = F.mse_loss(y, x) + 0.5 * F.l1_loss(y, x)   # L1 keeps the flat-colour edges sharp
        mean, std = z.mean(dim=(0, 2, 3)), z.std(dim=(0, 2, 3))
        scale = (mean.pow(2) + torch.log(std).pow(2)).mean()
        loss = recon + 0.02 * scale
        opt.zero_grad(set_to_none=True); loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 250 == 0 or step == VAE_STEPS:
            log(work, f"vae step {step}/{VAE_STEPS} recon {recon.item():.5f} latent-scale {scale.item():.4f} "
                      f"std {[round(s, 2) for s in std.tolist()]} {time.time() - start:.0f}s")
            torch.save({"model": vae.state_dict(), "opt": opt.state_dict(), "step": step}, path)


def make_data(work: Path, seed: int) -> None:
    path = work / "data.pt"
    if path.exists():
        return
    vae = vae_model(); vae.load_state_dict(torch.load(work / "vae.pt")["model"]); vae.eval()
    tok = tokenizer()
    latents, ids, start = [], [], time.time()
    chunk = 500
    with torch.no_grad():
        for i in range(0, DATA_COUNT, chunk):
            images, captions = demo_data.batch(seed * 7_000_003 + i, chunk)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                latents.append(vae.encode(to_tensor(images)).latents.float().half())
            ids.append(tokens(tok, captions))
            if (i // chunk) % 10 == 0:
                log(work, f"data {i + chunk}/{DATA_COUNT} {time.time() - start:.0f}s")
    latents_t = torch.cat(latents)
    log(work, f"data: latent mean {latents_t.float().mean((0, 2, 3)).tolist()} std {latents_t.float().std((0, 2, 3)).tolist()}")
    torch.save({"latents": latents_t, "ids": torch.cat(ids), "empty": tokens(tok, [""])[0]}, path)


class Models(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.text, self.unet = text_model(), unet_model()

    def forward(self, x_t, t, ids):
        return self.unet(x_t, t, self.text(ids).last_hidden_state).sample


def alphas_cumprod() -> torch.Tensor:
    return scheduler().alphas_cumprod.float()


def train_unet(work: Path, seed: int, total: int) -> dict:
    path = work / "unet.pt"
    data = torch.load(work / "data.pt")
    latents, ids, empty = data["latents"], data["ids"], data["empty"]
    models = Models()
    torch.manual_seed(seed)
    ema = Models(); ema.load_state_dict(models.state_dict()); ema.requires_grad_(False)
    opt = torch.optim.AdamW(models.parameters(), lr=3e-4, weight_decay=0.01)
    step, history = 0, []
    if path.exists():
        state = torch.load(path)
        models.load_state_dict(state["model"]); ema.load_state_dict(state["ema"]); opt.load_state_dict(state["opt"])
        step, history = state["step"], state["history"]
    ac = alphas_cumprod()
    lcm = torch.tensor(LCM_TIMESTEPS)
    start, window = time.time(), []
    while step < total:
        g = torch.Generator().manual_seed(seed * 1_000_033 + step)
        rows = torch.randint(0, latents.shape[0], (BATCH,), generator=g)
        x0 = latents[rows].float()
        cond = ids[rows].clone()
        cond[torch.rand(BATCH, generator=g) < 0.1] = empty
        t = lcm[torch.randint(0, 50, (BATCH,), generator=g)]
        t[torch.rand(BATCH, generator=g) < 0.4] = 999
        a = ac[t].view(-1, 1, 1, 1)
        noise = torch.randn(x0.shape, generator=g)
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, total, 3e-4, 300)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            eps = models(x_t, t, cond).float()
        x0_hat = (x_t - (1 - a).sqrt() * eps) / a.sqrt()
        weight = 1 + torch.clamp(a / (1 - a), max=5.0)
        per_row = (x0_hat - x0).pow(2).mean(dim=(1, 2, 3))
        loss = (weight.view(-1) * per_row).mean()
        opt.zero_grad(set_to_none=True); loss.backward()
        torch.nn.utils.clip_grad_norm_(models.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            decay = min(0.999, (1 + step) / (10 + step))
            for p_ema, p in zip(ema.parameters(), models.parameters()):
                p_ema.lerp_(p, 1 - decay)
        step += 1
        high = per_row[t == 999]
        window.append((loss.item(), high.mean().item() if len(high) else float("nan")))
        if step % 100 == 0 or step == total:
            mean_loss = float(np.mean([w[0] for w in window])); mean_high = float(np.nanmean([w[1] for w in window]))
            window = []
            history.append({"step": step, "loss": mean_loss, "x0_mse_t999": mean_high})
            rate = (time.time() - start) / max(1, len(history) and 100)
            log(work, f"unet step {step}/{total} loss {mean_loss:.4f} x0-mse@999 {mean_high:.4f} "
                      f"lr {opt.param_groups[0]['lr']:.2e} {time.time() - start:.0f}s")
            if step % 500 == 0 or step == total:
                torch.save({"model": models.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                            "step": step, "history": history}, path)
    return {"history": history}


def load_trained(work: Path):
    vae = vae_model(); vae.load_state_dict(torch.load(work / "vae.pt")["model"]); vae.eval()
    models = Models(); models.load_state_dict(torch.load(work / "unet.pt")["ema"]); models.eval()
    return vae, models


@torch.no_grad()
def sample(vae, models, prompts: list[str], t_list: list[int], seed: int) -> torch.Tensor:
    """The StreamDiffusion txt2img loop (cfg none): x0 at each timestep, re-noised to the next."""
    ac = alphas_cumprod()
    ids = tokens(tokenizer(), prompts)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(prompts), 4, 16, 16, generator=g)
    for i, t in enumerate(t_list):
        a = ac[t]
        eps = models(x, torch.full((len(prompts),), t), ids)
        x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()
        if i + 1 < len(t_list):
            a_next = ac[t_list[i + 1]]
            x = a_next.sqrt() * x0 + (1 - a_next).sqrt() * torch.randn(x.shape, generator=g)
        else:
            x = x0
    return vae.decode(x).sample.clamp(-1, 1)


def preview(work: Path, out: Path) -> None:
    from PIL import Image
    vae, models = load_trained(work)
    prompts = ["a red circle on a blue background", "a yellow star on a black background",
               "a green square on a white background", "a large blue ring on a pink background",
               "a small purple triangle on the left on a yellow background",
               "a red circle and a blue square on a white background",
               "an orange star on a green and white gradient", "a pink circle"]
    rows = [sample(vae, models, prompts, [999], 0), sample(vae, models, prompts, [999, 679, 359, 99], 0)]
    grid = torch.cat([torch.cat(list(r), dim=2) for r in rows], dim=1)
    Image.fromarray(((grid + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()).save(out)
    print(f"preview: {out} (rows: 1 step, 4 steps)")


def export(work: Path, out: Path, recipe: dict) -> None:
    vae, models = load_trained(work)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():   # a fresh folder, but the hand-written model card stays
        if old.name != "README.md":
            shutil.rmtree(old) if old.is_dir() else old.unlink()
    vae.half().save_pretrained(out / "vae", variant="fp16")
    models.unet.half().save_pretrained(out / "unet", variant="fp16")
    models.text.half().save_pretrained(out / "text_encoder", variant="fp16")
    scheduler().save_pretrained(out / "scheduler")
    (out / "tokenizer").mkdir()
    for name in ("vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json"):
        shutil.copy(TOKENIZER / name, out / "tokenizer" / name)
    index = {"_class_name": "StableDiffusionPipeline", "_diffusers_version": __import__("diffusers").__version__,
             "feature_extractor": [None, None], "image_encoder": [None, None], "requires_safety_checker": False,
             "safety_checker": [None, None], "scheduler": ["diffusers", "LCMScheduler"],
             "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
             "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderTiny"]}
    (out / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
    (out / "training.json").write_text(json.dumps(recipe, indent=2) + "\n")
    shutil.copy(work / "train.log", out / "training.log")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"export: {out} ({size / 1e6:.1f} MB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "Models/demo")
    ap.add_argument("--work", type=Path, default=ROOT / ".build/demo-train")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--unet-steps", type=int, default=12_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--preview", type=Path, help="only sample the current checkpoint into this PNG")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.preview:
        return preview(args.work, args.preview)
    started = time.time()
    log(args.work, f"== train_demo_model seed {args.seed} unet-steps {args.unet_steps} torch {torch.__version__}")
    train_vae(args.work, args.seed)
    make_data(args.work, args.seed)
    result = train_unet(args.work, args.seed, args.unet_steps)
    recipe = {"seed": args.seed, "unet_steps": args.unet_steps, "batch": BATCH, "vae_steps": VAE_STEPS,
              "vae_batch": VAE_BATCH, "data_count": DATA_COUNT, "lcm_timesteps": "19 + 20k, k = 0..49; 40 % at 999",
              "loss": "(1 + min(SNR, 5)) * mse(x0_hat, x0), x0_hat from the epsilon output",
              "optimizer": "AdamW lr 3e-4 warmup 300 cosine, weight decay 0.01, grad clip 1, EMA 0.999, bf16 autocast",
              "torch": torch.__version__, "diffusers": __import__("diffusers").__version__,
              "loss_history": result["history"]}
    export(args.work, args.out, recipe)
    log(args.work, f"== done in {time.time() - started:.0f} s (this run; resumed stages count only their remaining steps)")


if __name__ == "__main__":
    main()
