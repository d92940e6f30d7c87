"""Average the weights of checkpoints of one network ("model soup"): same architecture, same
initialisation (e.g. two training runs with one --seed), element-wise mean of every tensor.

    python scripts/average_weights.py e2.safetensors e3.safetensors -o soup.safetensors

The checkpoints may differ in temperature and dropout (they do not change what the weights
mean). The result keeps the first checkpoint's metadata (inference size, normalisation, gain, T)
and records its sources; calibrate it again (scripts/calibrate_temperature.py) before using it.
MODEL_CARD.md's E6 is the mean of two runs of the default's recipe.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from realtime_color.weights import CheckpointError, load_checkpoint, save_checkpoint


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="+", type=Path)
    ap.add_argument("-o", "--out", type=Path, required=True)
    a = ap.parse_args()
    if len(a.checkpoints) < 2:
        print("give two checkpoints or more to average", file=sys.stderr)
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

    def shape(cfg):  # the temperature and dropout do not change the weights' meaning
        return replace(cfg, temperature=1.0, dropout=0.0)

    for p, c in zip(a.checkpoints[1:], ckpts[1:], strict=True):
        if shape(c.model.config) != shape(first.model.config):
            print(f"{p} is another network ({c.model.config}) than {a.checkpoints[0]}", file=sys.stderr)
            return 2
    states = [c.model.float().state_dict() for c in ckpts]
    mean = {k: sum(s[k] for s in states) / len(states) if v.is_floating_point() else v for k, v in states[0].items()}
    model = first.model.float()
    model.load_state_dict(mean)
    meta = {k: v for k, v in first.meta.items() if k != "sha256"}
    meta.setdefault("training", {})["averaged_from"] = [
        {"file": p.name, "sha256": c.sha256} for p, c in zip(a.checkpoints, ckpts, strict=True)
    ]
    save_checkpoint(model.eval(), a.out, meta, half=True)
    print(f"wrote {a.out}: the mean of {len(ckpts)} checkpoints")
    return 0


if __name__ == "__main__":
    sys.exit(main())
