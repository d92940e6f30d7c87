"""Build the everyday photo set (train/ and a held-out val/) from three Debian packages, reproducibly.

    python tools/fetch_everyday.py OUT [--debs DIR]

DIR holds the packages' ``.deb`` files or their ``dpkg-deb -x`` folders (``DIR/<package>/usr``);
what is missing there is fetched with ``apt-get download`` into DIR. Each ``.deb``'s sha256 is
checked against the one this set was built from (bookworm); a changed package is refused, so the
same command rebuilds the same files byte for byte (same Pillow). OUT gets ``train/*.jpg``,
``val/*.jpg``, ``manifest.tsv`` (every picture looked at, kept or not and why), ``LICENSES.md``
and ``READY``; it is built beside OUT and moved into place at the end.

Packages: ``gcompris-qt-data`` (photographs of animals, objects, monuments, landscapes among the
activities' drawings, inside Qt resource files, read by ``qt_rcc.py``), ``ukui-wallpapers`` and
``gnome-backgrounds``.

**The photograph rule**, fixed before any training, from the file's name and pixels only:

1. the picture decodes (JPEG, PNG or WebP; SVG is skipped) and is at least 200 px on both sides;
2. it is not an exact duplicate of a picture already looked at (sha256 of the bytes; rcc files
   share resources);
3. it is not a reproduction of an artwork: GCompris' ``paintings`` and ``babyshapes`` activities
   (puzzles cut from paintings) and the pictures named after paintings (``PAINTING_NAMES``) are
   left out; from the wallpaper packages only the pictures in ``WALLPAPER_PHOTOS`` are taken, and
   none of bookworm's are photographs (every one is a render or abstract art, checked by eye and
   against the copyright files, whose photo credits name files of older versions); two GCompris
   pictures seen to be a render and a drawn chart are named in ``NOT_PHOTOS``;
4. at most 1% of its pixels are transparent (alpha < 250): cut-outs, sprites, puzzle pieces and
   clip art on a transparent canvas fail;
5. at least 300 distinct colors at 5 bits per channel (the tuxpaint stamps' threshold):
   textures, symbols and grayscale scans fail;
6. its 16 most common colors (5 bits) cover at most 80% of it: flat fills and objects on a plain
   studio background fail;
7. it is colored: the mean over pixels of the largest channel's distance from the pixel's gray
   level is at least 4 (of 255): gray pictures stored as color fail.

(An equal-neighbor rule, as for the tuxpaint stamps, does not work here: WebP's smoothing makes
equal neighbors common in photographs. The thresholds were set from the pictures' statistics and
contact sheets, before any training or scoring on them.)

**The held-out split**, fixed before any training: a kept picture goes to ``val/`` when the
sha256 of ``"everyday-v1:" + its subject`` is 0 mod 5 (about 20%), the subject being the
lower-cased file stem without ``_background``; near duplicates (64-bit difference hashes within 6
bits) take the first subject of their cluster, so one photo shown by two activities lands on one
side. Written pictures: long side at most 512 px (Lanczos, never enlarged), sRGB JPEG quality
92, 4:4:4, named ``<source>-<activity>[-<folder>]-<stem>.jpg``.
"""

from __future__ import annotations

import argparse
import fnmatch
import gzip
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from qt_rcc import RccFile  # noqa: E402  (a sibling file of this script)

DEBS = {  # bookworm's packages this set was built from: version, sha256 of the .deb
    "gcompris-qt-data": ("3.1-2", "e9cf06ab2105529068df73085784e835d2ff03f870d2a8091f09125d40abac9f"),
    "ukui-wallpapers": ("20.04.3-1.1", "6d49be70152e6d603163458e177e501deb0be8f2916389ccbfcf59b0d7fc0262"),
    "gnome-backgrounds": ("43.1-1", "a670dea21572652127d6e55f9cdb3a226d0037854fdbfd037003c7d00ee0dc4e"),
}
SHORT = {"gcompris-qt-data": "gcompris", "ukui-wallpapers": "ukui", "gnome-backgrounds": "gnome"}
RCC_DIR = "usr/share/gcompris-qt/rcc"
WALLPAPER_DIRS = {"ukui-wallpapers": "usr/share/backgrounds", "gnome-backgrounds": "usr/share/backgrounds/gnome"}
WALLPAPER_PHOTOS: dict[str, tuple[str, ...]] = {"ukui-wallpapers": (), "gnome-backgrounds": ()}
ART_ACTIVITIES = ("paintings", "babyshapes")
PAINTING_NAMES = re.compile(r"gogh|tanguy|auvers|gauguin|bruegel|bosschaert|unicorn|renoir|cassat|degas|kandinsky",
                            re.IGNORECASE)
STAT_KEYS = ("transparent", "colors", "top16", "chroma")
IMAGE_EXT = (".jpg", ".jpeg", ".png", ".webp")
MIN_SIDE, MAX_TRANSPARENT, MIN_COLORS, MAX_TOP16, MIN_CHROMA = 200, 0.01, 300, 0.80, 4.0
LONG_SIDE, QUALITY, SPLIT_SALT, VAL_MOD, NEAR_DUP = 512, 92, "everyday-v1:", 5, 6
NOT_PHOTOS = {"gcompris-qt-data": ("braille_ball", "chart")}  # a render and a drawn chart, seen by eye


class FetchError(RuntimeError):
    """A package is missing, changed or unreadable."""


def picture_stats(image: Image.Image) -> dict:
    """The statistics rules 4-7 read (see the module docstring)."""
    rgba = np.asarray(image.convert("RGBA"))
    rgb = rgba[..., :3].astype(np.int32)
    q = rgb >> 3
    codes = (q[..., 0] << 10) | (q[..., 1] << 5) | q[..., 2]
    counts = np.bincount(codes.ravel(), minlength=1 << 15)
    top16 = np.sort(counts)[::-1][:16].sum() / codes.size
    gray = rgb.mean(axis=-1, keepdims=True)
    return {
        "transparent": float((rgba[..., 3] < 250).mean()),
        "colors": int((counts > 0).sum()),
        "top16": float(top16),
        "chroma": float(np.abs(rgb - gray).max(axis=-1).mean()),
    }


def photo_verdict(stats: dict) -> str:
    """'' when rules 4-7 keep the picture, else the first failed rule in words."""
    if stats["transparent"] > MAX_TRANSPARENT:
        return f"transparent {stats['transparent']:.3f} > {MAX_TRANSPARENT}"
    if stats["colors"] < MIN_COLORS:
        return f"colors {stats['colors']} < {MIN_COLORS}"
    if stats["top16"] > MAX_TOP16:
        return f"top16 {stats['top16']:.3f} > {MAX_TOP16}"
    if stats["chroma"] < MIN_CHROMA:
        return f"chroma {stats['chroma']:.1f} < {MIN_CHROMA}"
    return ""


def subject(stem: str) -> str:
    return stem.lower().removesuffix("_background")


def is_val(stem: str) -> bool:
    digest = hashlib.sha256((SPLIT_SALT + subject(stem)).encode()).hexdigest()
    return int(digest, 16) % VAL_MOD == 0


def out_name(package: str, inner: str) -> str:
    """``gcompris-<activity>[-<folder>]-<stem>.jpg`` for an rcc path, ``<source>-<stem>.jpg`` else."""
    parts = Path(inner).with_suffix("").parts
    if "activities" in parts:
        parts = parts[parts.index("activities") + 1 :]
        parts = tuple(p for p in parts if p not in ("resource", "image", "images"))
    else:
        parts = parts[-1:]
    return "-".join([SHORT[package], *(re.sub(r"[^A-Za-z0-9_]+", "_", p) for p in parts)]) + ".jpg"


def activity(package: str, inner: str) -> str:
    parts = Path(inner).parts
    if "activities" in parts:
        return parts[parts.index("activities") + 1]
    return SHORT[package]


# --- packages -------------------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def unpacked(package: str, debs: Path) -> Path:
    """The ``dpkg-deb -x`` folder of ``package`` under ``debs``, downloading and unpacking as needed."""
    folder = debs / package
    if (folder / "usr").is_dir():
        return folder
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        subprocess.run(["apt-get", "download", package], cwd=debs, check=True)
        found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        raise FetchError(f"{package}: no .deb in {debs} and apt-get download gave none")
    version, expected = DEBS[package]
    got = sha256_file(found[-1])
    if got != expected:
        raise FetchError(f"{found[-1].name}: sha256 {got} is not the {version} this set was built from ({expected});"
                         " update DEBS after checking the new package")
    tmp = Path(tempfile.mkdtemp(prefix=f".{package}-", dir=debs))
    subprocess.run(["dpkg-deb", "-x", str(found[-1]), str(tmp)], check=True)
    os.replace(tmp, folder)
    return folder


def package_version(root: Path, package: str) -> str:
    """The version on the first line of the package's Debian changelog."""
    log = root / f"usr/share/doc/{package}/changelog.Debian.gz"
    with gzip.open(log, "rt", encoding="utf-8") as f:
        first = f.readline()
    return first.split("(", 1)[1].split(")", 1)[0]


def copyright_stanzas(text: str) -> list[tuple[list[str], str]]:
    """(Files patterns, License) of each DEP-5 ``Files:`` paragraph, in file order."""
    stanzas = []
    for para in re.split(r"\n\s*\n", text):
        match = re.match(r"Files:(.*?)(?=^\S)", para + "\nX", re.S | re.M)
        lic = re.search(r"^License:\s*(.+)$", para, re.M)
        if match and lic:
            stanzas.append((match.group(1).split(), lic.group(1).strip()))
    return stanzas


def licence_of(stanzas: list[tuple[list[str], str]], inner: str) -> str:
    """The last matching paragraph's licence (DEP-5); the copyright file names the sources'
    .png/.jpg/.svg where the package ships .webp, so the stem is tried with each."""
    path = inner.removeprefix("gcompris/")
    stem = path.rsplit(".", 1)[0]
    names = [path] + [stem + ext for ext in (".png", ".jpg", ".jpeg", ".svg", ".webp")]
    found = "?"
    for patterns, lic in stanzas:
        hit = [p for p in patterns if any(fnmatch.fnmatchcase(n, p) for n in names)]
        if hit:
            found = lic if hit != ["*"] else f"{lic} (the catch-all Files: *)"
    return found


# --- the set --------------------------------------------------------------------------------------


def candidates(package: str, root: Path):
    """(path inside the package, bytes) of every raster picture the package holds."""
    if package == "gcompris-qt-data":
        for rcc in sorted((root / RCC_DIR).glob("*.rcc")):
            for inner, blob in RccFile.open(rcc).files():
                if inner.lower().endswith(IMAGE_EXT):
                    yield f"{RCC_DIR}/{rcc.name}:{inner}", blob
    else:
        for path in sorted((root / WALLPAPER_DIRS[package]).iterdir()):
            if path.suffix.lower() in IMAGE_EXT:
                yield str(path.relative_to(root)), path.read_bytes()


def judge(package: str, where: str, blob: bytes, seen: set[str]) -> tuple[Image.Image | None, str, dict]:
    """(picture or None, why it was left out or '', stats) by the photograph rule."""
    inner = where.split(":", 1)[-1]
    digest = hashlib.sha256(blob).hexdigest()
    if digest in seen:
        return None, "duplicate", {}
    seen.add(digest)
    try:
        image = Image.open(io.BytesIO(blob))
        image.load()
    except Exception as exc:  # a picture Pillow cannot read is reported, not fatal
        return None, f"undecodable ({exc.__class__.__name__})", {}
    if min(image.size) < MIN_SIDE:
        return None, f"small {image.size[0]}x{image.size[1]}", {}
    stem = Path(inner).stem
    if package == "gcompris-qt-data":
        if activity(package, inner) in ART_ACTIVITIES:
            return None, "artwork (activity)", {}
        if PAINTING_NAMES.search(stem):
            return None, "artwork (painting name)", {}
        if stem in NOT_PHOTOS[package]:
            return None, "artwork (listed: not a photograph)", {}
    elif stem not in WALLPAPER_PHOTOS[package]:
        return None, "artwork (not a listed photograph)", {}
    stats = picture_stats(image)
    return image, photo_verdict(stats), stats


def encode(image: Image.Image) -> bytes:
    rgb = image.convert("RGB")
    scale = LONG_SIDE / max(rgb.size)
    if scale < 1:
        rgb = rgb.resize((max(1, round(rgb.size[0] * scale)), max(1, round(rgb.size[1] * scale))),
                         Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    rgb.save(buf, "JPEG", quality=QUALITY, subsampling=0, optimize=False)
    return buf.getvalue()


def dhash(jpeg: bytes) -> int:
    """A 64-bit difference hash of the picture's luminance (9x8 grid, left-right gradients)."""
    small = np.asarray(Image.open(io.BytesIO(jpeg)).convert("L").resize((9, 8), Image.Resampling.BOX), dtype=np.int16)
    bits = (small[:, 1:] > small[:, :-1]).ravel()
    return int("".join("1" if b else "0" for b in bits), 2)


def split_groups(kept: list[dict]) -> None:
    """Set each kept picture's ``split``: near duplicates (dhash within NEAR_DUP bits) share their
    cluster's first subject in name order, so one photo shown twice cannot sit on both sides."""
    parent = list(range(len(kept)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(kept)):
        for j in range(i + 1, len(kept)):
            if bin(kept[i]["dhash"] ^ kept[j]["dhash"]).count("1") <= NEAR_DUP:
                parent[find(j)] = find(i)
    clusters: dict[int, list[dict]] = {}
    for i, entry in enumerate(kept):
        clusters.setdefault(find(i), []).append(entry)
    for members in clusters.values():
        key = min(subject(m["stem"]) for m in members)
        for m in members:
            m["split"] = "val" if is_val(key) else "train"
            m["group"] = key


def build(debs: Path, out: Path) -> dict:
    """Write the set into ``out`` (a fresh folder); returns counts per (activity, verdict)."""
    (out / "train").mkdir(parents=True)
    (out / "val").mkdir()
    header = "file\tpackage\tversion\tpath\tsize\tverdict\twhy\tlicense\ttransparent\tcolors\ttop16\tchroma"
    entries: list[dict] = []
    versions, copyrights = {}, {}
    seen: set[str] = set()
    names: set[str] = set()
    for package in DEBS:
        root = unpacked(package, debs)
        versions[package] = package_version(root, package)
        copyrights[package] = (root / f"usr/share/doc/{package}/copyright").read_text(encoding="utf-8")
        stanzas = copyright_stanzas(copyrights[package])
        for where, blob in candidates(package, root):
            inner = where.split(":", 1)[-1]
            image, why, stats = judge(package, where, blob, seen)
            entry = {"package": package, "where": where, "inner": inner, "stem": Path(inner).stem, "why": why,
                     "stats": stats, "name": "-", "split": "rejected",
                     "size": f"{image.size[0]}x{image.size[1]}" if image is not None else "-",
                     "license": licence_of(stanzas, inner) if package == "gcompris-qt-data" else "see copyright"}
            if image is not None and not why:
                name = out_name(package, inner)
                if name in names:
                    name = name[:-4] + "-" + hashlib.sha256(where.encode()).hexdigest()[:6] + ".jpg"
                names.add(name)
                entry["name"], entry["jpeg"] = name, encode(image)
                entry["dhash"] = dhash(entry["jpeg"])
            entries.append(entry)
    kept = [e for e in entries if "jpeg" in e]
    split_groups(kept)
    rows, counts = [header], {}
    for e in entries:
        if "jpeg" in e:
            (out / e["split"] / e["name"]).write_bytes(e["jpeg"])
        verdict = e["split"] if "jpeg" in e else e["why"].split(" ")[0]
        key = (activity(e["package"], e["inner"]), verdict)
        counts[key] = counts.get(key, 0) + 1
        why = e["why"] or f"photograph (group {e['group']})"
        cells = [f"{e['stats'][k]:.4g}" if k in e["stats"] else "-" for k in STAT_KEYS]
        rows.append("\t".join([e["name"], e["package"], versions[e["package"]], e["where"], e["size"], e["split"],
                               why, e["license"], *cells]))
    used = {e["license"] for e in kept}
    (out / "manifest.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (out / "LICENSES.md").write_text(licenses_md(versions, copyrights, used), encoding="utf-8")
    return counts


def licenses_md(versions: dict, copyrights: dict, used: set[str]) -> str:
    lines = ["# Licences of the everyday photo set", "",
             "Each picture's licence is in manifest.tsv (column `license`, from the DEP-5 paragraph of the",
             "package's copyright file that matches its source path). Licences of the kept pictures: "
             + ", ".join(sorted(used)) + ".", ""]
    for package, text in copyrights.items():
        lines += [f"## {package} {versions[package]} (usr/share/doc/{package}/copyright)", "", "```", text.rstrip(),
                  "```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--debs", type=Path, help="folder with the .deb files or their dpkg-deb -x folders")
    parser.add_argument("--list", action="store_true", help="print every picture's verdict (manifest.tsv has them)")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    debs = args.debs or Path(tempfile.mkdtemp(prefix="everyday-debs-"))
    debs.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    try:
        counts = build(debs.resolve(), tmp)
        if args.list:
            for row in (tmp / "manifest.tsv").read_text(encoding="utf-8").splitlines()[1:]:
                cells = row.split("\t")
                print(f"{cells[5]:8s} {cells[0]:60s} {cells[3].split(':')[-1]}  {cells[6]}")
    except (FetchError, subprocess.CalledProcessError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    (tmp / "READY").write_text("complete\n", encoding="utf-8")
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old)
    else:
        os.replace(tmp, out)
    for (act, verdict), n in sorted(counts.items()):
        print(f"{act:24s} {verdict:12s} {n:5d}")
    kept = sum(n for (_, v), n in counts.items() if v in ("train", "val"))
    val = sum(n for (_, v), n in counts.items() if v == "val")
    print(f"kept {kept} ({kept - val} train, {val} val) of {sum(counts.values())} pictures looked at; see {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
