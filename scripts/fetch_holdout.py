"""Fetch the held-out test photos: 11 natural photos the default model never saw, from Debian.

    python scripts/fetch_holdout.py holdout/
    rtcolor eval holdout/ --json

The training set (`../shared/data/train`) holds two pictures of `lomiri-wallpapers-20.04` and none
of `lomiri-wallpapers-16.04`. That package's photographs (CC-BY / CC-BY-SA 4.0, authors in the
file names and in the package's copyright file) serve as an independent check of the model. The
package also holds renders and abstract art, which are left out: a colorizer is judged on photos.
Each picture is scaled like the training set (long side at most 1024 px) and written as PNG.

Needs a Debian/Ubuntu machine whose apt can reach a Debian mirror (bookworm has the package).
These pictures were never used to train or tune the model: the model and its chroma gain were
fixed before they were first scored.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import cv2

PACKAGE = "lomiri-wallpapers-16.04"
PHOTOS = (
    "Bridge_by_Sander_Klootwijk",
    "Dragonfly_by_Bolly",
    "Picture_0B_by_freespace",
    "Picture_1A_by_freespace",
    "Wine_by_Jakkub_Mede",
    "aitzgorri_by_Aitzol_Berasategi",
    "friends_by_Aitzol_Berasategi",
    "life_by_Aitzol_Berasategi",
    "picosdeeuropa_by_Aitzol_Berasategi",
    "seeding_by_Clements_Engelhardt",
    "sunset_by_Aitzol_Berasategi",
)
LONG_SIDE = 1024


def main(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            subprocess.run(["apt-get", "download", PACKAGE], cwd=tmp, check=True, capture_output=True, text=True)
        except (OSError, subprocess.CalledProcessError) as e:
            print(f"error: could not download the Debian package {PACKAGE}: {getattr(e, 'stderr', '') or e}")
            return 1
        deb = next(Path(tmp).glob("*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(Path(tmp) / "x")], check=True)
        found = {p.stem: p for p in (Path(tmp) / "x").rglob("*.jpg")}
        missing = [name for name in PHOTOS if name not in found]
        if missing:
            print(f"error: {deb.name} lacks {', '.join(missing)}; this script knows bookworm's 20.04.0-2")
            return 1
        for name in PHOTOS:
            img = cv2.imread(str(found[name]), cv2.IMREAD_COLOR)
            scale = min(1.0, LONG_SIDE / max(img.shape[:2]))
            if scale < 1.0:
                img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            cv2.imwrite(str(out / f"{name}.png"), img)
    print(f"wrote {len(PHOTOS)} photos to {out} (from {deb.name})")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(Path(sys.argv[1])))
