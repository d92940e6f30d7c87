"""Still images: read any common format (8/16-bit, gray/colour) as RGB, write atomically."""

from __future__ import annotations

import glob
import os
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".jp2"}


class ImageReadError(ValueError):
    """A file that is missing or cannot be decoded as an image."""


def read_image(path: str | Path) -> np.ndarray:
    """Decode ``path`` -> RGB (H, W, 3) or gray (H, W), uint8 or uint16, alpha dropped."""
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
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 3:
        img = img[:, :, :3]
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if min(img.shape[:2]) < 1:
        raise ImageReadError(f"{path}: empty image")
    return img


def write_image(path: str | Path, rgb: np.ndarray) -> Path:
    """Encode RGB/gray ``rgb`` to ``path`` through a temporary name, so no half file is left."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 else rgb
    if img.dtype == np.uint16 and path.suffix.lower() not in (".png", ".tif", ".tiff", ".ppm", ".pgm", ""):
        img = (img >> 8).astype(np.uint8)  # JPEG, WebP, BMP hold 8 bits; PNG and TIFF keep all 16
    ok, buf = cv2.imencode(path.suffix or ".png", img)
    if not ok:
        raise OSError(f"could not encode an image as {path.suffix!r}")
    return atomic_write(path, buf.tobytes())


def is_gray(rgb: np.ndarray, tolerance: float = 2.0) -> bool:
    """True for single-channel images and colour images whose channels (nearly) agree."""
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
    tmp = path.with_name(f".{path.name}.partial")
    try:
        if isinstance(data, str):
            tmp.write_text(data)
        else:
            tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as e:  # a full disk or a read-only folder: no half file left, and a plain reason
        tmp.unlink(missing_ok=True)
        raise OSError(f"cannot write {path}: {e.strerror or e}") from None
    return path
