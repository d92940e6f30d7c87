"""Average the weights of checkpoints of one network ("model soup"): same architecture, same
initialization (e.g. runs from one checkpoint with other --seed and one --split-seed),
element-wise mean of every tensor.

    python scripts/average_weights.py e2.safetensors e3.safetensors -o soup.safetensors
    python scripts/average_weights.py soup3 e12 e13 --weights 3,1,1 -o s5.safetensors

The checkpoints may differ in temperature and dropout (they do not change what the weights
mean). The result keeps the first checkpoint's metadata (inference size, normalization, gain, T,
its training record) but not its figures, and records each source (file, sha256, seed, epoch);
calibrate it again (scripts/calibrate_temperature.py) before using it. ``--weights`` gives each
checkpoint a share (relative; default all equal): a soup of three weighted 3 beside two new
ingredients is the mean of all five, without the three's files. docs/experiments/' E6 is the mean of
two runs of one recipe; the C4 default (2026-11-28) the mean of three continuations.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from realtime_color.model.weights import CheckpointError, load_checkpoint, save_checkpoint


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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="+", type=Path)
    ap.add_argument("-o", "--out", type=Path, required=True)
    ap.add_argument("--weights", default=None, help="comma-separated shares, one per checkpoint (default: equal)")
    a = ap.parse_args()
    if len(a.checkpoints) < 2:
        print("give two checkpoints or more to average", file=sys.stderr)
        return 2
    try:
        shares = [float(w) for w in a.weights.split(",")] if a.weights else [1.0] * len(a.checkpoints)
    except ValueError:
        shares = []
    if len(shares) != len(a.checkpoints) or not all(w > 0 for w in shares):
        print(f"--weights {a.weights}: give {len(a.checkpoints)} positive numbers, e.g. 3,1,1", file=sys.stderr)
        return 2
    if a.out.resolve() in {p.resolve() for p in a.checkpoints}:
        print(f"{a.out} is one of the inputs; name a new file", file=sys.stderr)
        return 2
    try:
        ckpts = [load_checkpoint(p) for p in a.checkpoints]
    except (CheckpointError, OSError) as e:
        print(f"cannot average: {e}", file=sys.stderr)
        return 2
    first = ckpts[0]

    def shape(cfg):  # the temperature, dropout and estimator do not change the weights' meaning
        return replace(cfg, temperature=1.0, dropout=0.0, estimator="mean")

    for p, c in zip(a.checkpoints[1:], ckpts[1:], strict=True):
        if shape(c.model.config) != shape(first.model.config):
            print(f"{p} is another network ({c.model.config}) than {a.checkpoints[0]}", file=sys.stderr)
            return 2
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
    sources = [_source(p, c) for p, c in zip(a.checkpoints, ckpts, strict=True)]
    if a.weights:
        for src, w in zip(sources, shares, strict=True):
            src["weight"] = w / total
    meta.setdefault("training", {})["averaged_from"] = sources
    save_checkpoint(model.eval(), a.out, meta, half=True)
    print(f"wrote {a.out}: the {'weighted ' if a.weights else ''}mean of {len(ckpts)} checkpoints")
    return 0


if __name__ == "__main__":
    sys.exit(main())
