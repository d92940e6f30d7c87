"""Simulated color hints, drawn from a picture's true colors: what training and ``eval --hints`` use.

The protocol (after Zhang et al. 2017, "Real-Time User-Guided Image Colorization with Learned
Deep Priors", with their locations spread over the whole picture rather than gathered at its
center):

* **count**: ``geometric(p) - 1`` with p = 1/8, so no hint at all 1 time in 8 (the automatic
  colorizer stays trained), one hint 1 in 9.1, a mean of 7, capped at ``max_count``. ``eval``
  asks for exactly N instead.
* **patch**: a square of side drawn uniformly from ``min_size``..``max_size`` (1-9) pixels.
* **location**: uniform over the picture, the whole patch inside it; patches may overlap.
* **color**: the patch's mean true ab (training), or for a ``Hint`` the sRGB color of the patch's
  mean true Lab (its mean L with its mean a, b, brought into gamut), as a user's color picker
  would hand it over.

NumPy only (no PyTorch), so ``rtcolor eval --hints`` runs on the torch-free install.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class HintSampler:
    """The simulator's settings; one instance serves a whole training run or evaluation."""

    p: float = 1 / 8
    max_count: int = 64
    min_size: int = 1
    max_size: int = 9

    def __post_init__(self) -> None:
        if not 0 < self.p <= 1:
            raise ValueError(f"p {self.p} must be in (0, 1]")
        if not 1 <= self.min_size <= self.max_size:
            raise ValueError(f"patch sizes {self.min_size}..{self.max_size}: need 1 <= min <= max")

    def count(self, rng: np.random.Generator) -> int:
        """How many hints one training picture gets: geometric(p) - 1 (zero 1 time in 1/p), capped."""
        return int(min(rng.geometric(self.p) - 1, self.max_count))

    def patches(self, height: int, width: int, n: int, rng: np.random.Generator) -> list[tuple[int, int, int]]:
        """``n`` patches (y0, x0, side), uniform over a ``height`` x ``width`` picture, each inside it."""
        out = []
        for _ in range(n):
            side = int(rng.integers(self.min_size, self.max_size + 1))
            side = max(1, min(side, height, width))
            out.append((int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1)), side))
        return out


def hint_maps(ab: np.ndarray, sampler: HintSampler, rng: np.random.Generator, n: int | None = None) -> np.ndarray:
    """Normalized true ab (2, H, W) -> the network's hint channels (3, H, W): each patch filled with
    its mean true ab (normalized), and the mask. ``n`` hints, or ``sampler.count`` of them."""
    _, h, w = ab.shape
    out = np.zeros((3, h, w), np.float32)
    for y, x, s in sampler.patches(h, w, sampler.count(rng) if n is None else n, rng):
        out[:2, y : y + s, x : x + s] = ab[:, y : y + s, x : x + s].mean(axis=(1, 2), keepdims=True)
        out[2, y : y + s, x : x + s] = 1.0
    return out


def batch_hint_maps(ab: np.ndarray, sampler: HintSampler, rng: np.random.Generator) -> np.ndarray:
    """(N, 2, H, W) normalized true ab -> (N, 3, H, W) hint channels, a fresh count per picture."""
    return np.stack([hint_maps(a, sampler, rng) for a in ab])


def hints_from_truth(truth_rgb: np.ndarray, n: int, rng: np.random.Generator, sampler: HintSampler | None = None):
    """``n`` ``Hint``s for a color picture (H, W, 3, uint8 or uint16): what ``eval --hints N`` gives
    the colorizer. The patch side is in source pixels; x, y are the patch center as fractions."""
    import cv2

    from ..color import lab_to_rgb_in_gamut
    from ..guidance.hints import Hint

    sampler = sampler or HintSampler()
    scale = 65535.0 if truth_rgb.dtype == np.uint16 else 255.0
    lab = cv2.cvtColor(truth_rgb[..., :3].astype(np.float32) / np.float32(scale), cv2.COLOR_RGB2Lab)
    h, w = lab.shape[:2]
    hints = []
    for y, x, s in sampler.patches(h, w, n, rng):
        mean = lab[y : y + s, x : x + s].reshape(-1, 3).mean(0)
        rgb = lab_to_rgb_in_gamut(np.full((1, 1), mean[0], np.float32), mean[1:].reshape(1, 1, 2).astype(np.float32))
        color = "#" + "".join(f"{int(round(float(np.clip(c, 0, 1)) * 255)):02x}" for c in rgb[0, 0])
        cx, cy = (x + (s - 1) / 2) / max(1, w - 1), (y + (s - 1) / 2) / max(1, h - 1)
        hints.append(Hint(x=float(min(cx, 1.0)), y=float(min(cy, 1.0)), color=color, size=s))
    return tuple(hints)
