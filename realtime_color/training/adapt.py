"""``rtcolor adapt``: fine-tune a model on a camera's own color footage, within a time budget.

A surveillance camera records color by day and infrared by night; an archive has a few color
reels beside the gray ones. Their color footage is the best training data there is. This
samples frames from it (skipping near-duplicates: a static camera repeats itself), holds out the
last part of each source *in time* for validation (neighboring frames would leak otherwise),
freezes the early encoder stages (generic edges and textures) and fine-tunes the late stages and
the decoder, then reports validation PSNR and colorfulness before and after, beside gray.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from ..errors import NotFoundError
from ..evaluation.evaluate import evaluate_gains, pick_gain
from ..media.images import IMAGE_SUFFIXES, ImageReadError, expand_inputs, is_gray
from ..media.sources import read_still
from ..model.weights import load_checkpoint, save_checkpoint
from .config import AdaptConfig
from .data import Batches, DataError, lab_split
from .fitting import fit_loss, lr_at, optimizer_step


@dataclass
class Frames:
    train: list[np.ndarray]
    val: list[np.ndarray]
    skipped_duplicates: int = 0
    skipped_gray: int = 0
    per_source: dict = field(default_factory=dict)
    skipped_unreadable: list[str] = field(default_factory=list)


def _small(rgb: np.ndarray, long_side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    s = long_side / max(h, w)
    if s >= 1:
        return np.ascontiguousarray(rgb)
    return cv2.resize(rgb, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)


def _video_frames(path: Path, max_frames: int):
    from ..media.frames import Policy, pictures
    from ..media.sources import open_source

    source = open_source(path, Policy.FILE, kind="file", chroma=True)
    try:
        # Spread the samples over the whole source (the held-out part must be its real end).
        total = source.info.frames
        step = max(1, total // max_frames) if total else 1
        for pic in pictures(source):
            if pic.index % step == 0:
                yield pic.decoded_rgb()  # read with the matrix and range the file declares
    finally:
        source.close()


def _pictures(paths: list[Path], unreadable: list[str], log):
    """The readable pictures of ``paths`` in name order; the others are logged and listed."""
    for path in sorted(paths):
        try:
            yield read_still(path).pixels[..., :3]
        except ImageReadError as e:  # one damaged frame must not cost the whole run
            unreadable.append(str(path))
            log(f"skipped {e}")


def sample_frames(cfg: AdaptConfig, log=print) -> Frames:
    """Color frames from videos, folders and pictures, in time order, de-duplicated and split."""
    from ..media.video import VIDEO_SUFFIXES

    train, val = [], []
    dup = gray = 0
    per_source, unreadable = {}, []
    for src in cfg.sources:
        p = Path(src)
        if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES:
            frames = _video_frames(p, cfg.max_frames)
        else:
            paths, _ = expand_inputs([src], suffixes=IMAGE_SUFFIXES)
            if not paths:
                raise NotFoundError(f"{src}: no color video or pictures found")
            frames = _pictures(paths, unreadable, log)
        kept, last = [], None
        for rgb in frames:
            if rgb.dtype == np.uint16:
                rgb = (rgb >> 8).astype(np.uint8)
            if rgb.ndim == 2 or is_gray(rgb):
                gray += 1
                continue
            small = _small(rgb, cfg.frame_long_side)
            lum = cv2.cvtColor(small, cv2.COLOR_RGB2Lab)[..., 0].astype(np.float32) * (100 / 255)
            thumb = cv2.resize(lum, (64, 36), interpolation=cv2.INTER_AREA)
            # "Moved" = more than 3 L units: above sensor noise at thumbnail scale, below any object.
            if last is not None and float((np.abs(thumb - last) > 3.0).mean()) < cfg.dedup:
                dup += 1
                continue
            kept.append(small)
            last = thumb
            if len(kept) >= cfg.max_frames:
                break
        n_val = max(1, round(len(kept) * cfg.val_fraction)) if len(kept) >= 2 else 0
        train += kept[: len(kept) - n_val]
        val += kept[len(kept) - n_val :]
        per_source[src] = {"train": len(kept) - n_val, "val": n_val}
        log(f"{src}: {len(kept)} frames kept ({len(kept) - n_val} train, {n_val} validation, the last in time)")
    if len(train) < 2 or not val:
        raise DataError(
            f"need at least 3 distinct color frames, found {len(train) + len(val)} "
            f"({dup} near-duplicates, {gray} gray and {len(unreadable)} unreadable frames skipped)"
        )
    return Frames(train, val, dup, gray, per_source, unreadable)


def adapt(cfg: AdaptConfig, log=print, progress=None) -> dict:
    """Fine-tune ``cfg.base`` on ``cfg.sources``; writes ``cfg.out``; returns before/after figures."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    ckpt = load_checkpoint(cfg.base)
    model = ckpt.model.float().train()
    size = ckpt.inference_size
    frames = sample_frames(cfg, log)
    before = evaluate_gains(model, frames.val, size, "cpu", gains=(ckpt.chroma_gain,))[ckpt.chroma_gain]
    log(
        f"before: val PSNR {before['psnr']:.2f} dB (gray {before['psnr_gray']:.2f}), "
        f"colorfulness {before['colorfulness']:.1f} (truth {before['colorfulness_truth']:.1f})"
    )
    for stage in model.encoder[: cfg.frozen_stages]:
        for p in stage.parameters():
            p.requires_grad_(False)  # early stages: generic edges and textures, and most of the cost
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.01)
    batches = Batches(frames.train, list(range(len(frames.train))), cfg.augment, cfg.batch_size, rng)
    budget = cfg.minutes * 60.0
    t0 = time.monotonic()
    best_state, best = None, None
    step, next_eval, losses = 0, cfg.eval_every, []
    task = progress.add_task("adapting", total=budget) if progress else None
    interrupted = False
    try:
        while True:
            frac = (time.monotonic() - t0) / budget  # how far along: time, or steps where they end it sooner
            if cfg.steps:
                frac = max(frac, step / cfg.steps)
            if frac >= next_eval or frac >= 1.0:
                val = _validate(model, frames.val, size)
                log(f"{frac * 100:3.0f}% ({step} steps): val PSNR {val['psnr']:.2f} dB, gain {val['chroma_gain']:.2f}")
                if best is None or val["psnr"] > best["psnr"]:
                    best, best_state = val, {k: v.detach().clone() for k, v in model.state_dict().items()}
                next_eval += cfg.eval_every
                if frac >= 1.0:
                    break
            lum, ab = lab_split(batches.next())
            for g in opt.param_groups:
                g["lr"] = lr_at(step, 10**9, cfg.lr, 20, time_fraction=frac)
            losses.append(optimizer_step(opt, fit_loss(model(lum, logits=True), ab, model.config.ab_bins)))
            step += 1
            if progress:
                progress.update(task, completed=min(1.0, frac) * budget, description=f"loss {losses[-1]:.4f}")
    except KeyboardInterrupt:
        if best_state is None:
            raise  # nothing validated yet: nothing worth keeping
        interrupted = True  # keep the best state validated so far, then stop as asked
        log(f"interrupted: keeping the best state validated so far ({best['psnr']:.2f} dB)")
    finally:
        batches.close()
    if best["psnr"] <= before["psnr"]:
        log("the adapted model is not better on the held-out frames than the base; keeping its best state anyway")
    model.load_state_dict(best_state)
    meta = {
        "inference_size": size,
        "chroma_gain": best["chroma_gain"],
        "training": {
            "adapted_from": str(cfg.base or "bundled default"),
            "base_training": ckpt.meta.get("training", {}),
            "adapt_config": asdict(cfg),
            "frames": {"train": len(frames.train), "val": len(frames.val), "per_source": frames.per_source},
            "skipped_duplicates": frames.skipped_duplicates,
            "skipped_gray": frames.skipped_gray,
            "skipped_unreadable": frames.skipped_unreadable,
            "steps": step,
            "seconds": round(time.monotonic() - t0, 1),
        },
        "metrics": {"validation": best, "before": before},
    }
    save_checkpoint(model.eval(), cfg.out, meta, half=True)
    if interrupted:
        raise KeyboardInterrupt
    return {
        "before": before,
        "after": best,
        "steps": step,
        "train_frames": len(frames.train),
        "val_frames": len(frames.val),
    }


def _validate(model, images: list[np.ndarray], size: int) -> dict:
    sweep = evaluate_gains(model, images, size, "cpu")
    gain = pick_gain(sweep, 0.0)  # on its own footage PSNR decides; colorfulness follows the truth
    return dict(sweep[gain], chroma_gain=gain)
