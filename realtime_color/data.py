"""Training data: colour photos in memory, random resized crops, CutMix, L jitter, the Lab split.

Kept apart from the loop in ``train.py``; everything here is deterministic given its generator.
"""

from __future__ import annotations

import math
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .color import normalize_ab, normalize_L, rgb_to_lab
from .media.images import IMAGE_SUFFIXES, ImageReadError, is_gray, read_image

if TYPE_CHECKING:
    from .train import TrainConfig

# Training images are kept in memory at most this large (long side); crops are taken from them.
_MAX_SIDE = 512


@dataclass
class ImageSet:
    images: list[np.ndarray]
    names: list[str]
    skipped_gray: list[str]
    skipped_unreadable: list[str]


def load_images(folders: list[str]) -> ImageSet:
    """Colour images from ``folders`` (files are taken too); gray and unreadable ones are skipped."""
    paths: list[Path] = []
    for item in folders:
        p = Path(item)
        if p.is_dir():
            paths.extend(sorted(q for q in p.rglob("*") if q.suffix.lower() in IMAGE_SUFFIXES))
        elif p.is_file():
            paths.append(p)
        else:
            raise FileNotFoundError(f"training data {item!r} does not exist")
    images, names, gray, bad = [], [], [], []
    for p in paths:
        try:
            img = read_image(p)
        except ImageReadError:
            bad.append(str(p))
            continue
        if is_gray(img):
            gray.append(str(p))
            continue
        if img.dtype == np.uint16:
            img = (img / 257).round().astype(np.uint8)
        scale = _MAX_SIDE / max(img.shape[:2])
        if scale < 1:
            img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        images.append(img)
        names.append(p.name)
    return ImageSet(images, names, gray, bad)


def split(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Deterministic train/validation split of ``n`` items (at least one of each when n >= 2)."""
    order = np.random.default_rng(seed).permutation(n).tolist()
    n_val = min(n - 1, max(1, round(n * fraction))) if n >= 2 else 0
    return sorted(order[n_val:]), sorted(order[:n_val])


def random_crop(img: np.ndarray, size: int, min_scale: float, rng: np.random.Generator) -> np.ndarray:
    """Random resized crop (area fraction in [min_scale, 1], aspect 3/4..4/3) and horizontal flip."""
    h, w = img.shape[:2]
    for _ in range(10):
        area = h * w * rng.uniform(min_scale, 1.0)
        aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        ch, cw = int(round(math.sqrt(area / aspect))), int(round(math.sqrt(area * aspect)))
        if 0 < ch <= h and 0 < cw <= w:
            break
    else:
        ch = cw = min(h, w)
    y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    crop = img[y : y + ch, x : x + cw]
    interp = cv2.INTER_AREA if ch > size else cv2.INTER_LINEAR
    crop = cv2.resize(crop, (size, size), interpolation=interp)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return np.ascontiguousarray(crop)


def make_batch(images: list[np.ndarray], idx: list[int], cfg: TrainConfig, rng: np.random.Generator) -> torch.Tensor:
    """Random crops of the pictures ``idx`` -> uint8 RGB batch (B, 3, S, S)."""
    crops = np.stack([random_crop(images[i], cfg.crop, cfg.min_scale, rng) for i in idx])
    if cfg.cutmix > 0 and len(crops) > 1:
        # CutMix: labels are per pixel, so a pasted patch keeps its own true colours; it breaks
        # the whole-picture context a tiny data set lets the network memorise.
        donors = np.roll(crops, 1, axis=0)  # a copy, so pastes never chain
        for i in range(len(crops)):
            if rng.random() < cfg.cutmix:
                s = cfg.crop
                h, w = rng.integers(s // 4, s // 2 + 1, size=2)
                y, x = rng.integers(0, s - h + 1), rng.integers(0, s - w + 1)
                crops[i, y : y + h, x : x + w] = donors[i, y : y + h, x : x + w]
    return torch.from_numpy(crops).permute(0, 3, 1, 2)


def jitter_L(lum: torch.Tensor, strength: float, gen: torch.Generator | None = None) -> torch.Tensor:
    """Random contrast, brightness and gamma per sample on normalised L (targets untouched).

    Exposure changes the gray input but not what colour things are; night and IR footage differ
    from daylight photos mostly this way.
    """
    if strength <= 0:
        return lum
    n = lum.shape[0]

    def uniform(lo: float, hi: float) -> torch.Tensor:
        r = torch.rand(n, 1, 1, 1, generator=gen).to(lum.device)
        return lo + (hi - lo) * r

    gamma = torch.exp(uniform(-strength * 1.5, strength * 1.5))
    contrast = uniform(1 - strength, 1 + strength)
    shift = uniform(-strength / 2, strength / 2)
    out = lum.clamp(0, 1) ** gamma
    return ((out - 0.5) * contrast + 0.5 + shift).clamp(0, 1)


def lab_split(rgb_u8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 RGB batch -> (normalised L, normalised ab target at half resolution), on its device."""
    lab = rgb_to_lab(rgb_u8.float() / 255.0)
    return normalize_L(lab[:, :1]), F.avg_pool2d(normalize_ab(lab[:, 1:]), 2)


class Batches:
    """Makes training batches in a background thread (OpenCV releases the GIL while it resizes).

    One producer with its own seeded generator keeps the batch sequence reproducible.
    """

    def __init__(self, images, pool: list[int], cfg: TrainConfig, rng: np.random.Generator, depth: int = 6):
        self._q: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()

        def produce() -> None:
            while not self._stop.is_set():
                idx = rng.choice(pool, size=cfg.batch_size, replace=len(pool) < cfg.batch_size)
                batch = make_batch(images, list(idx), cfg, rng)
                while not self._stop.is_set():
                    try:
                        self._q.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue

        self._thread = threading.Thread(target=produce, name="batches", daemon=True)
        self._thread.start()

    def next(self) -> torch.Tensor:
        return self._q.get()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
