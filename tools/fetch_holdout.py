"""Fetch the held-out test photos: 20 photographs the default model never saw, from Debian.

    python tools/fetch_holdout.py holdout/
    rtcolor eval holdout/ --json

The training set (`../shared/data/train`) holds two pictures of `lomiri-wallpapers-20.04` and
none of the two packages used here:

* `lomiri-wallpapers-16.04`: its 11 photographs (CC-BY / CC-BY-SA 4.0, authors in the file
  names and in the package's copyright file), written under their own names;
* `plasma-workspace-wallpapers` (GPL-2+): its 9 color photographs, written as `plasma-<name>.png`.

Each package's renders, paintings and abstract art are left out: a colorizer is judged on photos.
Otherwise every photo is kept, the hard ones included; only `ColdRipple` and `Gray` of the plasma
package are left out, because they are gray pictures stored as color (nothing to score; `rtcolor
eval` refuses them). Each picture is scaled like the training set (long side at most 1024 px) and
written as PNG.

Needs a Debian/Ubuntu machine whose apt can reach a Debian mirror (bookworm has both packages).
These pictures were never used to train or tune the model.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import cv2

LOMIRI = (
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
PLASMA = (
    "BytheWater",
    "ColorfulCups",
    "DarkestHour",
    "EveningGlow",
    "FallenLeaf",
    "Kite",
    "OneStandsOut",
    "Path",
    "summer_1am",
)
LONG_SIDE = 1024


def unpack_deb(package: str, tmp: Path) -> Path:
    """``apt-get download`` ``package`` into ``tmp/package`` and extract it to ``tmp/package/x``."""
    where = tmp / package
    where.mkdir()
    subprocess.run(["apt-get", "download", package], cwd=where, check=True, capture_output=True, text=True)
    deb = next(where.glob("*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(deb), str(where / "x")], check=True)
    return where / "x"


def _lomiri(root: Path) -> dict[str, Path]:
    found = {p.stem: p for p in root.rglob("*.jpg")}
    return {name: found[name] for name in LOMIRI if name in found}


def _plasma(root: Path) -> dict[str, Path]:
    out = {}
    for name in PLASMA:  # the largest picture of each wallpaper
        pictures = sorted((root / "usr/share/wallpapers" / name / "contents/images").glob("*.jpg"))
        if pictures:
            out[f"plasma-{name}"] = max(pictures, key=lambda p: p.stat().st_size)
    return out


def main(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    with tempfile.TemporaryDirectory() as tmp:
        for package, pick, wanted in (
            ("lomiri-wallpapers-16.04", _lomiri, len(LOMIRI)),
            ("plasma-workspace-wallpapers", _plasma, len(PLASMA)),
        ):
            try:
                photos = pick(unpack_deb(package, Path(tmp)))
            except (OSError, subprocess.CalledProcessError) as e:
                print(f"error: could not download the Debian package {package}: {getattr(e, 'stderr', '') or e}")
                return 1
            if len(photos) != wanted:
                print(f"error: {package} has {len(photos)} of the {wanted} photos this script knows (bookworm's)")
                return 1
            for name, src in photos.items():
                img = cv2.imread(str(src), cv2.IMREAD_COLOR)
                scale = min(1.0, LONG_SIDE / max(img.shape[:2]))
                if scale < 1.0:
                    img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
                cv2.imwrite(str(out / f"{name}.png"), img)
                written += 1
    print(f"wrote {written} photos to {out}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(Path(sys.argv[1])))
