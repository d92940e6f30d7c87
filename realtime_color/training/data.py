"""Training data: color photos in memory, random resized crops, CutMix, pasted cut-outs, L jitter, the Lab split.

Kept apart from the loop in ``train.py``; everything here is deterministic given its generator.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..color import normalize_ab, normalize_L, rgb_to_lab
from ..errors import NotFoundError, RtcolorError
from ..media.images import IMAGE_SUFFIXES, ImageReadError, is_gray, read_image
from .config import AugmentConfig

# Training images are kept in memory at most this large (long side); crops are taken from them.
_MAX_SIDE = 512


class DataError(RtcolorError, ValueError):
    """Training pictures or frames that cannot be trained on, with the reason."""


@dataclass
class ImageSet:
    images: list[np.ndarray]
    names: list[str]
    skipped_gray: list[str]
    skipped_unreadable: list[str]


def load_images(folders: list[str]) -> ImageSet:
    """Color images from ``folders`` (files are taken too); gray and unreadable ones are skipped."""
    paths: list[Path] = []
    for item in folders:
        p = Path(item)
        if p.is_dir():
            paths.extend(sorted(q for q in p.rglob("*") if q.suffix.lower() in IMAGE_SUFFIXES))
        elif p.is_file():
            paths.append(p)
        else:
            raise NotFoundError(f"training data {item!r} does not exist")
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


# Cut-outs are kept at most this large (long side); they are pasted at a fraction of the crop.
_MAX_CUTOUT_SIDE = 256


def load_cutouts(folder: str | Path) -> tuple[list[np.ndarray], list[str]]:
    """RGBA cut-outs (photographed objects on a transparent background) from ``folder``, searched
    recursively. Pictures without a real alpha channel (some pixels transparent, some opaque) are
    skipped; a folder with none is refused, since pasting them would paste rectangles."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NotFoundError(f"cut-outs {folder}: no such folder (give a folder of RGBA PNG/WebP cut-outs)")
    images, names = [], []
    for p in sorted(q for q in folder.rglob("*") if q.suffix.lower() in (".png", ".webp", ".tif", ".tiff")):
        img = cv2.imdecode(np.fromfile(str(p), dtype=np.uint8), cv2.IMREAD_UNCHANGED)
        if img is None or img.ndim != 3 or img.shape[2] != 4:
            continue
        if img.dtype == np.uint16:
            img = (img / 257).round().astype(np.uint8)
        alpha = img[..., 3]
        if not ((alpha < 16).any() and (alpha > 240).sum() >= 64):
            continue
        ys, xs = np.nonzero(alpha)  # trim the empty margin so the scale applies to the object
        img = img[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        scale = _MAX_CUTOUT_SIDE / max(img.shape[:2])
        if scale < 1:
            img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        images.append(np.ascontiguousarray(cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)))
        names.append(p.name)
    if not images:
        raise DataError(
            f"cut-outs {folder}: no RGBA pictures found (cut-outs need an alpha channel with transparent "
            "and opaque pixels, e.g. PNG stamps; tools/fetch_training_extras.py makes such a folder)"
        )
    return images, names


def paste_cutout(img: np.ndarray, cutout: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Alpha-composite one RGBA ``cutout`` onto RGB ``img`` (in place and returned): its long side
    ``scale`` times the picture's short side, at a random place (it may overhang an edge), randomly
    mirrored. The soft alpha edge is kept: the blended pixels get the color they are given, and the
    labels, computed from the composite, agree with them."""
    h, w = img.shape[:2]
    long_side = max(4, int(round(scale * min(h, w))))
    f = long_side / max(cutout.shape[:2])
    ch, cw = max(1, int(round(cutout.shape[0] * f))), max(1, int(round(cutout.shape[1] * f)))
    c = cv2.resize(cutout, (cw, ch), interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        c = c[:, ::-1]
    y = int(rng.integers(-ch // 4, max(1, h - 3 * ch // 4)))
    x = int(rng.integers(-cw // 4, max(1, w - 3 * cw // 4)))
    y0, x0, y1, x1 = max(0, y), max(0, x), min(h, y + ch), min(w, x + cw)
    if y1 <= y0 or x1 <= x0:
        return img
    part = c[y0 - y : y1 - y, x0 - x : x1 - x].astype(np.float32)
    a = part[..., 3:] / 255.0
    region = img[y0:y1, x0:x1].astype(np.float32)
    img[y0:y1, x0:x1] = np.clip(a * part[..., :3] + (1 - a) * region + 0.5, 0, 255).astype(np.uint8)
    return img


def validation_composites(
    images: list[np.ndarray], cutouts: list[np.ndarray], scale: tuple[float, float], seed: int
) -> list[np.ndarray]:
    """One validation picture per held-out cut-out: a validation photo (in turn) with it pasted on.

    Eight validation photos cannot rank models 0.3 dB apart; these add pictures whose objects the
    training never saw, at a fixed seed so every run is scored on the same set.
    """
    rng = np.random.default_rng(seed)
    out = []
    for i, c in enumerate(cutouts):
        base = images[i % len(images)].copy()
        out.append(paste_cutout(base, c, float(rng.uniform(*scale)), rng))
    return out


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


def make_batch(
    images: list[np.ndarray],
    idx: list[int],
    aug: AugmentConfig,
    rng: np.random.Generator,
    cutouts: list[np.ndarray] | None = None,
) -> torch.Tensor:
    """Random crops of the pictures ``idx`` -> uint8 RGB batch (B, 3, S, S), with cut-outs pasted."""
    crops = np.stack([random_crop(images[i], aug.crop, aug.min_scale, rng) for i in idx])
    if aug.cutmix > 0 and len(crops) > 1:
        # CutMix: labels are per pixel, so a pasted patch keeps its own true colors; it breaks
        # the whole-picture context a tiny data set lets the network memorise.
        donors = np.roll(crops, 1, axis=0)  # a copy, so pastes never chain
        for i in range(len(crops)):
            if rng.random() < aug.cutmix:
                s = aug.crop
                h, w = rng.integers(s // 4, s // 2 + 1, size=2)
                y, x = rng.integers(0, s - h + 1), rng.integers(0, s - w + 1)
                crops[i, y : y + h, x : x + w] = donors[i, y : y + h, x : x + w]
    if cutouts:
        # Copy-paste: real photographed objects (a horse, a rose, broccoli) teach object colors
        # that landscapes and wallpapers cannot; pasted last so each object stays whole.
        for i in range(len(crops)):
            for _ in range(2):
                if rng.random() < aug.paste_prob:
                    c = cutouts[int(rng.integers(len(cutouts)))]
                    paste_cutout(crops[i], c, float(rng.uniform(*aug.paste_scale)), rng)
    return torch.from_numpy(crops).permute(0, 3, 1, 2)


def jitter_L(lum: torch.Tensor, strength: float, gen: torch.Generator | None = None) -> torch.Tensor:
    """Random contrast, brightness and gamma per sample on normalized L (targets untouched).

    Exposure changes the gray input but not what color things are; night and IR footage differ
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
    """uint8 RGB batch -> (normalized L, normalized ab target at half resolution), on its device."""
    lab = rgb_to_lab(rgb_u8.float() / 255.0)
    return normalize_L(lab[:, :1]), F.avg_pool2d(normalize_ab(lab[:, 1:]), 2)


class Batches:
    """Makes training batches in a background thread (OpenCV releases the GIL while it resizes).

    One producer with its own seeded generator keeps the batch sequence reproducible.
    """

    def __init__(
        self,
        images,
        pool: list[int],
        aug: AugmentConfig,
        batch_size: int,
        rng: np.random.Generator,
        depth: int = 6,
        cutouts: list[np.ndarray] | None = None,
    ):
        self._q: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()

        def produce() -> None:
            while not self._stop.is_set():
                idx = rng.choice(pool, size=batch_size, replace=len(pool) < batch_size)
                batch = make_batch(images, list(idx), aug, rng, cutouts)
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


class FeatureCache:
    """The frozen stages' outputs for a fixed set of augmented crops, computed once.

    On a CPU the frozen early VGG stages are most of a training step's arithmetic; with them frozen,
    their output for a given crop never changes, so each crop costs them once instead of once per
    visit. The price is a fixed pool of crops (augmentation happens before caching), so the pool
    should be much larger than a batch: cached features are stored in fp16.
    """

    def __init__(self, feats: list[torch.Tensor], ab: torch.Tensor, stages: int):
        self.feats, self.ab, self.stages = feats, ab, stages

    @classmethod
    @torch.no_grad()
    def build(cls, model, batches, stages: int, crops: int, l_jitter: float, jitter_gen, device, log, progress):
        """Run the first ``stages`` encoder stages on ``crops`` crops from ``batches`` (L jittered by ``l_jitter``)."""
        k = stages
        keep = list(range(1, k)) if k >= 2 else [0]  # the decoder never reads stage 1's output
        chunks: dict[int, list[torch.Tensor]] = {i: [] for i in keep}
        abs_: list[torch.Tensor] = []
        task = progress.add_task("caching frozen stages", total=crops) if progress else None
        was_training = model.training
        model.eval()
        n, t0 = 0, time.time()
        while n < crops:
            lum, ab = lab_split(batches.next().to(device))
            lum = jitter_L(lum, l_jitter, jitter_gen)
            x = lum
            for i, stage in enumerate(model.encoder[:k]):
                x = stage(x)
                if i in chunks:
                    chunks[i].append(x.half().cpu())
            abs_.append(ab.half().cpu())
            n += len(lum)
            if progress:
                progress.update(task, advance=len(lum))
        model.train(was_training)
        feats = [torch.cat(chunks[i])[:crops] for i in keep]
        ab = torch.cat(abs_)[:crops]
        size = sum(f.numel() * 2 for f in feats) + ab.numel() * 2
        log(f"cached stages 1-{k} for {len(ab)} crops ({size / 2**30:.1f} GiB) in {time.time() - t0:.0f} s")
        return cls(feats, ab, k)

    def sample(self, n: int, rng: np.random.Generator, device) -> tuple[list, torch.Tensor]:
        """A random batch: the stage outputs 1..k (stage 1's as None unless k is 1) and its ab target."""
        idx = torch.from_numpy(rng.choice(len(self.ab), size=n, replace=len(self.ab) < n))
        got = [f[idx].to(device).float() for f in self.feats]
        feats = [None] + got if self.stages >= 2 else got
        return feats, self.ab[idx].to(device).float()
