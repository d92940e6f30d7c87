"""Weight averaging ("model soup", ``rtcolor average``): the element-wise mean of checkpoints of
one network with one initialization (e.g. runs from one checkpoint with other ``--seed`` and one
``--split-seed``).

The checkpoints may differ in temperature, dropout and estimator (they do not change what the
weights mean). The result keeps the first checkpoint's metadata (inference size, normalization,
gain, T, its training record) but not its figures, and records each source (file, sha256, seed,
epoch); calibrate it again (``rtcolor calibrate``) before using it. Shares weight each checkpoint
(relative; default all equal): a soup of three weighted 3 beside two new ingredients is the mean
of all five, without the three's files.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..errors import ConfigError
from ..model.checkpoint import CheckpointError


def _source(path: Path, ckpt) -> dict:
    """What the soup records of one ingredient: the file, and how it was trained where it says."""
    training = ckpt.meta.get("training", {})
    cfg = training.get("config", {})
    out = {"file": path.name, "sha256": ckpt.sha256}
    if "averaged_from" in training:  # itself a soup: its ingredients say how they were trained
        out["averaged_from"] = training["averaged_from"]
        return out
    out.update({k: cfg[k] for k in ("seed", "lr", "epochs", "max_minutes", "freeze_stages") if k in cfg})
    if "init" in training.get("backbone", {}):
        out["init"] = training["backbone"]["init"]
    if "validation" in ckpt.meta.get("metrics", {}):
        out["epoch"] = ckpt.meta["metrics"]["validation"].get("epoch")
    return out


def average_checkpoints(paths: list[Path], out: Path, shares: list[float] | None = None) -> Path:
    """Write the (``shares``-weighted) mean of the checkpoints ``paths`` to ``out``."""
    from ..model.weights import load_checkpoint, save_checkpoint

    if len(paths) < 2:
        raise ConfigError([("checkpoints", len(paths), "two or more to average")])
    weighted = shares is not None
    shares = shares if weighted else [1.0] * len(paths)
    if len(shares) != len(paths) or not all(w > 0 for w in shares):
        raise ConfigError([("weights", ",".join(map(str, shares)), f"{len(paths)} positive numbers, e.g. 3,1,1")])
    ckpts = [load_checkpoint(p) for p in paths]
    first = ckpts[0]

    def shape(cfg):  # the temperature, dropout and estimator do not change the weights' meaning
        return replace(cfg, temperature=1.0, dropout=0.0, estimator="mean")

    for p, c in zip(paths[1:], ckpts[1:], strict=True):
        if shape(c.model.config) != shape(first.model.config):
            raise CheckpointError(f"{p} is another network ({c.model.config}) than {paths[0]}; cannot average them")
    states = [c.model.float().state_dict() for c in ckpts]
    total = sum(shares)
    mean = {
        k: sum(s[k] * (w / total) for s, w in zip(states, shares, strict=True)) if v.is_floating_point() else v
        for k, v in states[0].items()
    }
    model = first.model.float()
    model.load_state_dict(mean)
    # The first's header (inference size, normalization, T, gain, how it was trained), without its
    # figures: they were measured on another network.
    meta = {k: v for k, v in first.meta.items() if k not in ("sha256", "metrics")}
    sources = [_source(p, c) for p, c in zip(paths, ckpts, strict=True)]
    if weighted:
        for src, w in zip(sources, shares, strict=True):
            src["weight"] = w / total
    meta.setdefault("training", {})["averaged_from"] = sources
    return save_checkpoint(model.eval(), out, meta, half=True)
