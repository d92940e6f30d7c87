"""Training: the loop over color photos (DDP-aware); its losses and schedule are ``fitting.py``'s.

Run on one process (CPU or GPU) with ``rtcolor train``; on several GPUs with
``torchrun --nproc_per_node N -m realtime_color.cli train ...`` (DistributedDataParallel; gloo on
CPU, nccl on CUDA). Rank 0 validates and writes checkpoints.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, NotFoundError
from ..evaluation.evaluate import evaluate_gains, pick_gain
from ..model.backbones import init_backbone, load_backbone
from ..model.network import ModelConfig, build_model
from ..model.weights import save_checkpoint
from .config import AugmentConfig, TrainConfig  # noqa: F401 - the configs of a run, importable from here
from .data import (
    Batches,
    DataError,
    FeatureCache,
    jitter_L,
    lab_split,
    load_cutouts,
    load_images,
    split,
    validation_composites,
)
from .fitting import bin_prior, fit_loss, lr_at, optimizer_step, rebalance_weights

# ---------------------------------------------------------------------------------------------
# the loop


def _dist_info() -> tuple[int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def resolve_device(name: str) -> str:
    if name == "auto":
        if torch.cuda.is_available():
            rank_local = int(os.environ.get("LOCAL_RANK", 0))
            return f"cuda:{rank_local}"
        return "cpu"
    return name


def state_path(out: Path) -> Path:
    """Where the resumable training state of ``out`` lives."""
    return out.with_name(out.stem + ".train-state.pt")


def train(cfg: TrainConfig, log=print, progress=None) -> dict:
    """Run a training; returns the summary written into the checkpoint metadata."""
    rank, world = _dist_info()
    device = resolve_device(cfg.device)
    if world > 1:
        import torch.distributed as dist

        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
        if device.startswith("cuda"):
            torch.cuda.set_device(device)
    torch.manual_seed(cfg.seed + rank)
    rng = np.random.default_rng(cfg.seed + rank)
    out = Path(cfg.out)

    data = load_images(cfg.data)
    if len(data.images) < 2:
        raise DataError(
            f"need at least 2 color images to train, found {len(data.images)} in {cfg.data} "
            f"({len(data.skipped_gray)} gray and {len(data.skipped_unreadable)} unreadable skipped)"
        )
    split_seed = cfg.seed if cfg.split_seed < 0 else cfg.split_seed
    train_idx, val_idx = split(len(data.images), cfg.val_fraction, split_seed)
    if rank == 0:
        log(
            f"data: {len(data.images)} color images ({len(train_idx)} train, {len(val_idx)} "
            f"validation); skipped {len(data.skipped_gray)} gray, "
            f"{len(data.skipped_unreadable)} unreadable"
        )
    my_train = train_idx[rank::world] or train_idx
    val_images = [data.images[i] for i in val_idx]
    cutouts, n_val_cutouts = None, 0
    if cfg.paste:
        all_cutouts, _ = load_cutouts(cfg.paste)
        c_train, c_val = (
            split(len(all_cutouts), cfg.paste_val_fraction, split_seed)
            if cfg.paste_val_fraction
            else (
                list(range(len(all_cutouts))),
                [],
            )
        )
        cutouts = [all_cutouts[i] for i in c_train]
        val_images += validation_composites(
            val_images, [all_cutouts[i] for i in c_val], cfg.augment.paste_scale, split_seed
        )
        n_val_cutouts = len(c_val)
        if rank == 0:
            log(
                f"paste: {len(cutouts)} cut-outs for training, {n_val_cutouts} held out and pasted onto the "
                f"validation photos ({len(val_images)} validation pictures in all)"
            )
    if world > 1 and rank == 0:
        log(f"DDP: {world} processes ({'nccl' if device.startswith('cuda') else 'gloo'})")

    model = build_model(_network_config(cfg))
    if cfg.init:
        backbone_source = _start_from(model, cfg.init, data, val_idx)
        pretrained = True
    else:
        backbone = load_backbone(cfg.backbone)
        if backbone is not None:
            init_backbone(model, backbone)
        backbone_source = backbone.source if backbone else {"spec": "none"}
        pretrained = backbone is not None
    freeze_epochs = cfg.freeze_epochs if cfg.freeze_epochs >= 0 else (2 if pretrained else 0)
    if cfg.cache_crops and world > 1:
        raise ConfigError([("cache_crops", cfg.cache_crops, "0 under torchrun (caching runs on one process)")])
    on_cuda = device.startswith("cuda")
    model.to(device)
    if on_cuda:
        model = model.to(memory_format=torch.channels_last)
    frozen_params = {id(p) for stage in model.encoder[: cfg.freeze_stages] for p in stage.parameters()}
    for stage in model.encoder[: cfg.freeze_stages]:
        stage.requires_grad_(False)
    opt = torch.optim.AdamW(
        [
            {
                "params": [p for p in model.encoder_parameters() if id(p) not in frozen_params],
                "lr_mult": cfg.encoder_lr_mult,
            },
            {"params": model.decoder_parameters(), "lr_mult": 1.0},
        ],
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
    )
    # The same step count on every rank: DDP's all-reduces must pair up or the ranks hang.
    steps_per_epoch = max(1, math.ceil(len(train_idx) * cfg.repeat / (cfg.batch_size * world)))
    total_steps = steps_per_epoch * cfg.epochs
    start_epoch, best, history = 0, None, []
    sp = state_path(out)
    if cfg.resume:
        if not sp.is_file():
            raise NotFoundError(f"cannot resume: no training state at {sp}")
        st = torch.load(sp, map_location="cpu", weights_only=True)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        start_epoch, best = int(st["epoch"]), st.get("best")
        history = json.loads(st.get("history", "[]"))
        rng = np.random.default_rng(cfg.seed + rank + 1000 * start_epoch)
        log(f"resumed from {sp} at epoch {start_epoch}")

    net, net_frozen = model, None
    amp_dtype = torch.bfloat16 if on_cuda and torch.cuda.is_bf16_supported() else torch.float16
    t0 = time.time()
    batches = Batches(data.images, my_train, cfg.augment, cfg.batch_size, rng, cutouts=cutouts)
    jitter_gen = torch.Generator().manual_seed(cfg.seed + rank)
    cache = None
    if cfg.cache_crops:
        cache = FeatureCache.build(
            model, batches, cfg.freeze_stages, cfg.cache_crops, cfg.augment.l_jitter, jitter_gen, device, log, progress
        )
        batches.close()  # every step now samples the cache
    bin_weights = None
    if cfg.rebalance:
        # The color prior from what this run trains on: the cached crops, or 32 fresh batches.
        # (Under torchrun each rank estimates it from its own shard.)
        seen = cache.ab if cache is not None else torch.cat([lab_split(batches.next())[1] for _ in range(32)])
        prior = bin_prior(seen, model.config.ab_bins)
        bin_weights = rebalance_weights(prior, cfg.rebalance).to(device)
        used = bin_weights[prior > 1e-4]
        log(f"rebalancing colors (mix {cfg.rebalance}): bin weights {used.min():.2f} to {used.max():.2f}")

    def time_frac() -> float:
        return (time.time() - t0) / (60 * cfg.max_minutes) if cfg.max_minutes > 0 else 0.0

    step = start_epoch * steps_per_epoch
    task = progress.add_task("train", total=total_steps, completed=step) if progress else None
    for epoch in range(start_epoch, cfg.epochs):
        frozen = epoch < freeze_epochs
        for p in model.encoder_parameters():
            p.requires_grad_(not frozen and id(p) not in frozen_params)
        if world > 1 and net_frozen != frozen:
            # DDP fixes the set of parameters it reduces when it is built: rebuild it on (un)freeze.
            from torch.nn.parallel import DistributedDataParallel

            net, net_frozen = DistributedDataParallel(model, device_ids=[device] if on_cuda else None), frozen
        net.train()
        losses = []
        for _ in range(steps_per_epoch):
            for g in opt.param_groups:
                g["lr"] = lr_at(step, total_steps, cfg.lr, cfg.warmup_steps, time_frac()) * g["lr_mult"]
            if cache is not None:
                feats, ab = cache.sample(cfg.batch_size, rng, device)
                with torch.autocast("cuda", dtype=amp_dtype, enabled=on_cuda):
                    pred = model.decode(feats + model.encode(feats[-1], start=len(feats)), logits=True)
            else:
                lum, ab = lab_split(batches.next().to(device, non_blocking=True))
                lum = jitter_L(lum, cfg.augment.l_jitter, jitter_gen)
                if on_cuda:
                    lum = lum.contiguous(memory_format=torch.channels_last)
                with torch.autocast("cuda", dtype=amp_dtype, enabled=on_cuda):
                    pred = net(lum, logits=True)
            losses.append(
                optimizer_step(
                    opt, fit_loss(pred.float(), ab, model.config.ab_bins, cfg.loss, cfg.chroma_weight, bin_weights)
                )
            )
            step += 1
            if progress:
                progress.update(task, advance=1, description=f"epoch {epoch + 1}/{cfg.epochs} loss {losses[-1]:.4f}")
        out_of_time = cfg.max_minutes > 0 and (time.time() - t0) / 60 > cfg.max_minutes
        if rank == 0:
            sweep = evaluate_gains(model, val_images, cfg.inference_size, device)
            gain = pick_gain(sweep, cfg.min_colorfulness)
            val = dict(sweep[gain], chroma_gain=gain)
            val.update(epoch=epoch + 1, train_loss=float(np.mean(losses)), frozen=frozen)
            history.append(val)
            log(
                f"epoch {epoch + 1}: loss {val['train_loss']:.4f}  val PSNR {val['psnr']:.2f} dB "
                f"(gray {val['psnr_gray']:.2f})  colorfulness {val['colorfulness']:.1f} "
                f"(truth {val['colorfulness_truth']:.1f})  luma PSNR {val['luma_psnr']:.1f}"
                + f"  gain {gain:.2f}"
                + ("  [encoder frozen]" if frozen else "")
            )
            if _better(val, best, cfg.min_colorfulness):
                best = val
                extra = {"backbone": backbone_source, "val_cutouts": n_val_cutouts}
                _save(model, cfg, data, train_idx, val_idx, history, best, time.time() - t0, device, extra)
            state = {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "epoch": epoch + 1,
                "best": best,
                "history": json.dumps(history),
            }
            torch.save(state, sp.with_name(sp.name + ".partial"))
            sp.with_name(sp.name + ".partial").replace(sp)  # Ctrl-C while saving keeps the last whole state
        if world > 1:
            import torch.distributed as dist

            flag = torch.tensor([1 if out_of_time else 0])
            dist.broadcast(flag, 0)
            out_of_time = bool(flag.item())
        if out_of_time:
            if rank == 0:
                log(f"time budget of {cfg.max_minutes} min reached after epoch {epoch + 1}")
            break
        if cfg.stop_after and epoch + 1 >= cfg.stop_after:  # the same on every rank: no broadcast
            if rank == 0:
                log(f"stopped after epoch {epoch + 1} of {cfg.epochs}, as --stop-after asked")
            break
    batches.close()
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
    return {"best": best, "history": history, "seconds": time.time() - t0}


def _network_config(cfg: TrainConfig) -> ModelConfig:
    """The network this run trains: a new one as ``cfg`` says, or with ``init`` the checkpoint's
    (its head and temperature; this run's dropout). ``ab_bins`` given with ``init`` must agree."""
    if not cfg.init:
        return ModelConfig(dropout=cfg.dropout, ab_bins=cfg.ab_bins, temperature=cfg.temperature)
    from ..model.checkpoint import CheckpointError, default_model_path, read_metadata

    path = default_model_path() if cfg.init == "default" else cfg.init
    meta = read_metadata(path)  # a missing or unreadable file is refused here, in its own words
    try:
        theirs = ModelConfig.from_dict(meta.get("model_config", {}))
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: bad model config ({e})") from e
    if cfg.ab_bins and cfg.ab_bins != theirs.ab_bins:
        raise ConfigError(
            [("ab_bins", cfg.ab_bins, f"0 (the checkpoint's) or {theirs.ab_bins}, as {cfg.init} was trained with")]
        )
    # The knobs that belong to one kind of head, checked against the head this run continues.
    if theirs.ab_bins and (cfg.chroma_weight or cfg.loss != "mse"):
        raise ConfigError(
            [
                (
                    "chroma_weight" if cfg.chroma_weight else "loss",
                    cfg.chroma_weight or cfg.loss,
                    f"unset: {cfg.init} predicts ab bins, fitted by their cross-entropy",
                )
            ]
        )
    if cfg.rebalance and not theirs.ab_bins:
        raise ConfigError([("rebalance", cfg.rebalance, f"0: {cfg.init} predicts ab itself, it has no bins to weight")])
    theirs.dropout = cfg.dropout
    return theirs


def _start_from(model, spec: str, data, val_idx: list[int]) -> dict:
    """Load the checkpoint ``spec`` ("default": the bundled model) into ``model`` and return its
    backbone record. Its validation pictures must be this run's, or validation would score pictures
    the starting weights were trained on."""
    from ..model.weights import load_checkpoint

    ckpt = load_checkpoint(None if spec == "default" else spec)
    theirs_cfg = ckpt.model.config.to_dict()
    if {**theirs_cfg, "dropout": 0} != {**model.config.to_dict(), "dropout": 0}:
        raise ConfigError(
            [("init", spec, f"a checkpoint of this network ({model.config.to_dict()}); it holds {theirs_cfg}")]
        )
    model.load_state_dict(ckpt.model.state_dict())
    training = ckpt.meta.get("training", {})
    theirs = sorted(training.get("val_images", []))
    ours = sorted(data.names[i] for i in val_idx)
    if theirs and theirs != ours:
        raise ConfigError(
            [
                (
                    "init",
                    spec,
                    "a checkpoint validated on this run's validation pictures (same data, --split-seed or --seed, and "
                    f"val_fraction); it was validated on {len(theirs)} others, some of which this run trains on",
                )
            ]
        )
    source = dict(training.get("backbone") or {"spec": "unknown"})
    source["init"] = {"file": ckpt.path.name, "sha256": ckpt.sha256}
    return source


def _better(val: dict, best: dict | None, min_color: float) -> bool:
    """Highest validation PSNR, preferring epochs whose output is colorful enough."""
    if best is None:
        return True
    ok, best_ok = val["colorfulness"] >= min_color, best["colorfulness"] >= min_color
    if ok != best_ok:
        return ok
    return val["psnr"] > best["psnr"]


def _save(model, cfg, data, train_idx, val_idx, history, best, seconds, device, extra: dict) -> None:
    import platform

    machine = (
        torch.cuda.get_device_name(device) if device.startswith("cuda") else platform.processor() or platform.machine()
    )
    meta = {
        "inference_size": cfg.inference_size,
        # The loss trades saturation against error; one scalar on ab, chosen on the validation
        # split (highest PSNR among gains giving colorfulness >= min_colorfulness), sets it.
        "chroma_gain": best["chroma_gain"],
        "training": {
            "config": asdict(cfg),
            "train_images": [data.names[i] for i in train_idx],
            "val_images": [data.names[i] for i in val_idx],
            "skipped_gray": len(data.skipped_gray),
            "skipped_unreadable": len(data.skipped_unreadable),
            "seconds": round(seconds, 1),
            "device": machine,
            "epochs_run": len(history),
            "world_size": int(os.environ.get("WORLD_SIZE", 1)),
            **extra,
        },
        "metrics": {"validation": best, "history": history},
    }
    save_checkpoint(model, cfg.out, meta, half=True)
