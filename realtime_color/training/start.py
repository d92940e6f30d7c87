"""What a training run starts from: its pictures (photos split at random, or a camera's footage
split in time) and its network (a new one on a backbone, or a checkpoint's, head included).

Small pure steps the trainer (``trainer.py``) calls in its setup; each refuses what it cannot
use in one line naming the setting.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import numpy as np

from ..errors import ConfigError
from ..model.network import ModelConfig
from .config import TrainConfig
from .data import DataError, load_cutouts, load_images, split, validation_composites


def dist_info() -> tuple[int, int]:
    """This process's rank and the number of processes (1 without torchrun)."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def resolve_device(name: str) -> str:
    """``auto``: this process's GPU (``LOCAL_RANK`` under torchrun), else the CPU."""
    if name == "auto":
        import torch

        if torch.cuda.is_available():
            return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
        return "cpu"
    return name


# ---------------------------------------------------------------------------------------------
# the pictures


@dataclass
class TrainingData:
    """The pictures of a run: crops come from ``train``, validation scores ``val``."""

    train: list[np.ndarray]
    val: list[np.ndarray]
    cutouts: list[np.ndarray] | None  # RGBA objects pasted onto the training crops
    val_names: list[str] | None  # the validation photos' names (None for footage: frames have none)
    record: dict  # what the checkpoint's training metadata says about them


def photo_data(cfg: TrainConfig, log=print, rank: int = 0) -> TrainingData:
    """Color photos from ``cfg.data``, split at random (``split_seed``), with cut-outs from ``paste``
    (some held out and pasted onto the validation photos)."""
    data = load_images(cfg.data)
    if len(data.images) < 2:
        raise DataError(
            f"need at least 2 color images to train, found {len(data.images)} in {cfg.data} "
            f"({len(data.skipped_gray)} gray and {len(data.skipped_unreadable)} unreadable skipped)"
        )
    split_seed = cfg.seed if cfg.split_seed < 0 else cfg.split_seed
    train_idx, val_idx = split(len(data.images), cfg.val_fraction, split_seed)
    say = log if rank == 0 else (lambda *_: None)
    say(
        f"data: {len(data.images)} color images ({len(train_idx)} train, {len(val_idx)} "
        f"validation); skipped {len(data.skipped_gray)} gray, {len(data.skipped_unreadable)} unreadable"
    )
    val = [data.images[i] for i in val_idx]
    cutouts, n_val_cutouts = None, 0
    if cfg.paste:
        all_cutouts, _ = load_cutouts(cfg.paste)
        c_train, c_val = (
            split(len(all_cutouts), cfg.paste_val_fraction, split_seed)
            if cfg.paste_val_fraction
            else (list(range(len(all_cutouts))), [])
        )
        cutouts = [all_cutouts[i] for i in c_train]
        val += validation_composites(val, [all_cutouts[i] for i in c_val], cfg.augment.paste_scale, split_seed)
        n_val_cutouts = len(c_val)
        say(
            f"paste: {len(cutouts)} cut-outs for training, {n_val_cutouts} held out and pasted onto the "
            f"validation photos ({len(val)} validation pictures in all)"
        )
    record = {
        "train_images": [data.names[i] for i in train_idx],
        "val_images": [data.names[i] for i in val_idx],
        "skipped_gray": len(data.skipped_gray),
        "skipped_unreadable": len(data.skipped_unreadable),
        "val_cutouts": n_val_cutouts,
    }
    val_names = [data.names[i] for i in val_idx]
    return TrainingData([data.images[i] for i in train_idx], val, cutouts, val_names, record)


def footage_data(cfg: TrainConfig, log=print) -> TrainingData:
    """Frames sampled from a camera's footage (``cfg.data``) as ``cfg.footage`` says; each source's
    end, in time, is held out."""
    from .footage import sample_frames

    frames = sample_frames(cfg.data, cfg.footage, cfg.val_fraction, log)
    record = {
        "frames": {"train": len(frames.train), "val": len(frames.val), "per_source": frames.per_source},
        "skipped_duplicates": frames.skipped_duplicates,
        "skipped_gray": frames.skipped_gray,
        "skipped_unreadable": frames.skipped_unreadable,
    }
    return TrainingData(frames.train, frames.val, None, None, record)


# ---------------------------------------------------------------------------------------------
# the network


def init_path(spec: str):
    """The checkpoint file ``init`` names ("default": the bundled model)."""
    from ..model.checkpoint import default_model_path

    return default_model_path() if spec == "default" else spec


def resolve(cfg: TrainConfig) -> tuple[TrainConfig, ModelConfig]:
    """``cfg`` with the settings it leaves to its start filled in, and the network it trains.

    A new network is ``cfg``'s (its defaults are the bundled model's head). With ``init`` the
    network is the checkpoint's: its head, and its temperature and inference size unless given;
    a different ``ab_bins`` is refused, and the head's own knobs are checked against its head."""
    if not cfg.init:
        return cfg, ModelConfig(dropout=cfg.dropout, ab_bins=cfg.ab_bins, temperature=cfg.temperature)
    from ..model.checkpoint import CheckpointError, read_metadata

    path = init_path(cfg.init)
    meta = read_metadata(path)  # a missing or unreadable file is refused here, in its own words
    try:
        theirs = ModelConfig.from_dict(meta.get("model_config", {}))
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: bad model config ({e})") from e
    if cfg.ab_bins is not None and cfg.ab_bins != theirs.ab_bins:
        raise ConfigError(
            [("ab_bins", cfg.ab_bins, f"unset (the checkpoint's) or {theirs.ab_bins}, as {cfg.init} was trained with")]
        )
    resolved = replace(  # replace() checks every rule again, now against the checkpoint's head
        cfg,
        ab_bins=theirs.ab_bins,
        temperature=theirs.temperature if cfg.temperature is None else cfg.temperature,
        inference_size=cfg.inference_size or int(meta.get("inference_size", 256)),
    )
    return resolved, replace(theirs, dropout=cfg.dropout, temperature=resolved.temperature)


def start_from(model, spec: str, val_names: list[str] | None) -> tuple[dict, float]:
    """Load the checkpoint ``spec`` ("default": the bundled model) into ``model``; return its
    backbone record and its chroma gain. A checkpoint trained on photos must have been validated
    on this run's validation photos (``val_names``), or validation would score pictures the
    starting weights were trained on."""
    from ..model.weights import load_checkpoint

    ckpt = load_checkpoint(None if spec == "default" else spec)
    theirs_cfg = ckpt.model.config.to_dict()
    ours = model.config.to_dict()
    same = ("dropout", "temperature")  # a run may set these; the weights are the same
    if {**theirs_cfg, **{k: 0 for k in same}} != {**ours, **{k: 0 for k in same}}:
        raise ConfigError([("init", spec, f"a checkpoint of this network ({ours}); it holds {theirs_cfg}")])
    model.load_state_dict(ckpt.model.state_dict())
    training = ckpt.meta.get("training", {})
    theirs = sorted(training.get("val_images", []))
    if val_names is not None and theirs and theirs != sorted(val_names):
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
    return source, ckpt.chroma_gain
