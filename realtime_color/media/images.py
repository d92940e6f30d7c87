"""Still images: read any common format (8/16-bit, gray/color) as RGB, write atomically."""

from __future__ import annotations

import functools
import glob
import os
from pathlib import Path

import cv2
import numpy as np

from ..errors import RtcolorError
from .outputs import OutputError, discard, explain, temp_path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".jp2"}


class ImageReadError(RtcolorError, ValueError):
    """A file that is missing or cannot be decoded as an image."""


# EXIF orientation (1-8) -> how to turn the stored pixels upright: (transpose, rot90 turns, flip left-right)
_ORIENT = {2: (False, 0, True), 3: (False, 2, False), 4: (False, 2, True), 5: (True, 0, False),
           6: (False, 3, False), 7: (True, 2, False), 8: (False, 1, False)}  # fmt: skip


def _exif_orientation(data: np.ndarray) -> tuple[int, str | None]:
    """The EXIF orientation tag of an encoded picture (1, upright, when there is none) and its
    format as Pillow names it (JPEG, PNG, WEBP, TIFF, ...)."""
    import io

    try:
        from PIL import Image  # reads the header only; Pillow comes with scikit-image

        with Image.open(io.BytesIO(data.tobytes())) as im:
            orientation = int(im.getexif().get(0x0112, 1))
            return (orientation if orientation in _ORIENT else 1), im.format
    except Exception:  # noqa: BLE001 - no readable EXIF: the pixels are shown as stored
        return 1, None


@functools.cache
def _decoder_turns(fmt: str) -> bool:
    """Whether OpenCV's decoder already turns pictures of ``fmt`` upright under IMREAD_UNCHANGED
    (it does for TIFF, not for JPEG, PNG or WebP, and that may change between versions): asked once
    per format with a 2x3 picture tagged "rotate 90", so the tag is never applied twice."""
    import io

    try:
        from PIL import Image

        exif = Image.Exif()
        exif[0x0112] = 6
        buf = io.BytesIO()
        Image.fromarray(np.zeros((2, 3, 3), np.uint8)).save(buf, format=fmt, exif=exif.tobytes())
        img = cv2.imdecode(np.frombuffer(buf.getvalue(), np.uint8), cv2.IMREAD_UNCHANGED)
        return img is not None and img.shape[:2] == (3, 2)
    except Exception:  # noqa: BLE001 - a format Pillow cannot write: OpenCV is taken to leave it as stored
        return False


def _upright(img: np.ndarray, orientation: int) -> np.ndarray:
    transpose, turns, flip = _ORIENT.get(orientation, (False, 0, False))
    if transpose:
        img = np.swapaxes(img, 0, 1)
    if turns:
        img = np.rot90(img, turns)
    if flip:
        img = img[:, ::-1]
    return np.ascontiguousarray(img)


def read_picture(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """The one picture reader of every command: ``path`` -> (RGB (H, W, 3) or gray (H, W), alpha
    (H, W) or None), uint8 or uint16, turned upright as its EXIF orientation says (as every viewer
    shows it; OpenCV's IMREAD_UNCHANGED, needed to keep alpha and 16 bits, does not)."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: no such file")
    data = np.fromfile(str(path), dtype=np.uint8)  # fromfile + imdecode handles any path encoding
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise ImageReadError(f"{path}: not a readable image (truncated, corrupt or not a picture)")
    if img.dtype not in (np.uint8, np.uint16):
        if np.issubdtype(img.dtype, np.floating):
            img = (np.clip(img, 0, 1) * 65535).round().astype(np.uint16)
        else:
            raise ImageReadError(f"{path}: unsupported pixel type {img.dtype}")
    if min(img.shape[:2]) < 1:
        raise ImageReadError(f"{path}: empty image")
    orientation, fmt = _exif_orientation(data)
    if orientation != 1 and not (fmt and _decoder_turns(fmt)):
        img = _upright(img, orientation)
    alpha = None
    if img.ndim == 3 and img.shape[2] in (2, 4):  # gray + alpha, BGRA
        alpha = np.ascontiguousarray(img[:, :, -1])
        img = img[:, :, :-1]
        if alpha.min() == np.iinfo(alpha.dtype).max:
            alpha = None  # an alpha channel that is opaque everywhere holds nothing to keep
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 3:
        img = cv2.cvtColor(np.ascontiguousarray(img[:, :, :3]), cv2.COLOR_BGR2RGB)
    return img, alpha


def read_image(path: str | Path) -> np.ndarray:
    """Decode ``path`` -> RGB (H, W, 3) or gray (H, W), uint8 or uint16, upright, alpha dropped."""
    return read_picture(path)[0]


ALPHA_SUFFIXES = {".png", ".tif", ".tiff", ".webp"}  # formats that hold transparency


def write_image(path: str | Path, rgb: np.ndarray, alpha: np.ndarray | None = None) -> Path:
    """Encode RGB/gray ``rgb`` (and ``alpha``, where the format holds it) to ``path`` through a
    temporary name, so no half file is left."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 else rgb
    if alpha is not None and path.suffix.lower() in ALPHA_SUFFIXES:
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        if alpha.dtype != img.dtype:  # 8-bit alpha beside a 16-bit picture, or the reverse
            alpha = (alpha.astype(np.uint32) * 257).astype(np.uint16) if img.dtype == np.uint16 else alpha >> 8
        img = np.dstack([img, alpha.astype(img.dtype)])
    if img.dtype == np.uint16 and path.suffix.lower() not in (".png", ".tif", ".tiff", ".ppm", ".pgm", ""):
        img = (img >> 8).astype(np.uint8)  # JPEG, WebP, BMP hold 8 bits; PNG and TIFF keep all 16
    ok, buf = cv2.imencode(path.suffix or ".png", img)
    if not ok:
        raise OSError(f"could not encode an image as {path.suffix!r}")
    return atomic_write(path, buf.tobytes())


def is_gray(rgb: np.ndarray, tolerance: float = 2.0) -> bool:
    """True for single-channel images and color images whose channels (nearly) agree."""
    if rgb.ndim == 2:
        return True
    x = rgb.astype(np.float32) * (255.0 / 65535.0 if rgb.dtype == np.uint16 else 1.0)
    return float(np.abs(x[..., 0] - x[..., 1]).mean() + np.abs(x[..., 1] - x[..., 2]).mean()) < tolerance


def expand_inputs(inputs: list[str], suffixes: set[str] = IMAGE_SUFFIXES) -> tuple[list[Path], list[str]]:
    """Files, folders (not recursive) and globs -> (sorted unique image paths, inputs that matched nothing)."""
    found: list[Path] = []
    unmatched: list[str] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            hits = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in suffixes)
        elif p.is_file():
            hits = [p]
        else:
            hits = [Path(q) for q in sorted(glob.glob(item)) if Path(q).is_file()]
        if not hits:
            unmatched.append(item)
        found.extend(hits)
    seen: set[Path] = set()
    unique = []
    for p in found:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique, unmatched


def atomic_write(path: str | Path, data: str | bytes) -> Path:
    """Write a file (stats, JSON, an engine) under a temporary name, then rename it into place."""
    path = Path(path)
    tmp = temp_path(path, "partial")  # fits wherever ``path`` fits (a 250-byte name included)
    try:
        if isinstance(data, str):
            tmp.write_text(data)
        else:
            tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as e:  # a full disk or a read-only folder: no half file left, and a plain reason
        discard(tmp)
        raise OutputError(explain(path, e)) from None
    return path
