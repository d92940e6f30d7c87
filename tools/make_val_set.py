"""Write the validation pictures `rtcolor train` scores on, so `rtcolor eval` can score any model on them.

    python tools/make_val_set.py ../shared/data/train extras/paste valset/

The same seeded split as `rtcolor train --seed 0` with the default --val-fraction and
--paste-val-fraction: the held-out photos, and one composite per held-out cut-out (a held-out
photo, in turn, with that cut-out pasted on). None of these pictures or cut-outs is trained on.
"""

from __future__ import annotations

import sys
from pathlib import Path

from realtime_color.media.images import write_image
from realtime_color.training.config import TrainConfig
from realtime_color.training.data import load_cutouts, load_images, split, validation_composites


def main(photos: str, paste: str, out: Path) -> int:
    cfg = TrainConfig()
    data = load_images([photos])
    _, val_idx = split(len(data.images), cfg.val_fraction, cfg.seed)
    cutouts, names = load_cutouts(paste)
    _, c_val = split(len(cutouts), cfg.paste_val_fraction, cfg.seed)
    val = [data.images[i] for i in val_idx]
    out.mkdir(parents=True, exist_ok=True)
    for i in val_idx:
        write_image(out / f"photo-{Path(data.names[i]).stem}.png", data.images[i])
    composites = validation_composites(val, [cutouts[i] for i in c_val], cfg.augment.paste_scale, cfg.seed)
    for i, img in zip(c_val, composites, strict=True):
        write_image(out / f"paste-{Path(names[i]).stem}.png", img)
    print(f"wrote {len(val_idx)} photos and {len(composites)} composites to {out}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2], Path(sys.argv[3])))
