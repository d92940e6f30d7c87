"""Frame in -> frame out: pre-processing, a backend, post-processing.

The network only ever sees a small L image (the inference size); its ab prediction is upsampled
and recombined with the full-resolution L of the input, so no detail is lost and the output's
luminance is the input's. Frames are numpy arrays, RGB order, uint8 or uint16, gray (H, W) or
color (H, W, 3); color input is turned gray first (only its luminance is used).

Everything here is numpy and OpenCV: with an ONNX Runtime backend, colorizing never imports
PyTorch (see ``color``). Batches are ``(N, C, H, W)`` float32 arrays, as the network takes them.

Hints (``guidance.hints.Hint``: a point, a color) are rasterized here at the network's input size;
the caller decides which hints apply to which frame. A frame with hints is scaled by the model's
``hinted_gain`` (the hints are the user's colors: not to be shrunk like a guess), one without by
``chroma_gain``; ``saturation`` multiplies either (0 gray, 1 as calibrated, up to 2).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..color import (
    chroma_scale,
    denormalize_ab,
    lab_to_rgb_in_gamut,
    luma_to_L_table,
    luminance_to_L,
    normalize_L,
    rgb_to_L_np,
    rgb_to_ycbcr,
)

DEFAULT_SIZE = 256
# ab is low-frequency, so more than this buys nothing; the network's memory grows with the square.
MAX_SIZE = 2048
MAX_SATURATION = 2.0
# The network's input must be a multiple of this (four max-pools; model.STRIDE, which needs torch).
STRIDE = 16


def check_size(size: int) -> int:
    """``size`` if it is a usable inference size, else ``ValueError`` naming the allowed range."""
    if not STRIDE <= size <= MAX_SIZE:
        raise ValueError(f"inference size {size} is out of range; use {STRIDE} to {MAX_SIZE} (default {DEFAULT_SIZE})")
    return size


def inference_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """Network input shape: the long side becomes ``size``, aspect kept, both multiples of 16."""
    check_size(size)
    scale = size / max(height, width)
    h = max(STRIDE, int(round(height * scale / STRIDE)) * STRIDE)
    w = max(STRIDE, int(round(width * scale / STRIDE)) * STRIDE)
    return h, w


def frame_to_L(frame: np.ndarray) -> np.ndarray:
    """uint8/uint16/float frame (H, W) or (H, W, C) -> Lab L (H, W) float32. Color input keeps
    only its luminance; alpha is dropped."""
    if frame.ndim == 2:
        frame = frame[:, :, None]
    if frame.ndim != 3 or frame.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"expected a gray or color frame, got an array of shape {frame.shape}")
    if frame.dtype == np.uint8:
        scale = 255.0
    elif frame.dtype == np.uint16:
        scale = 65535.0
    elif np.issubdtype(frame.dtype, np.floating):
        scale = 1.0
    else:
        raise ValueError(f"unsupported frame dtype {frame.dtype} (use uint8, uint16 or float)")
    if frame.shape[2] < 3:
        gray = np.ascontiguousarray(frame[:, :, 0])
        if gray.dtype == np.uint8:  # 256 possible values: a table, as for video luma
            return cv2.LUT(gray, luma_to_L_table(True))
        return luminance_to_L(gray.astype(np.float32) / np.float32(scale))
    return rgb_to_L_np(frame[:, :, :3].astype(np.float32) / np.float32(scale))


@functools.lru_cache(maxsize=16)
def _aa_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) matrix of PyTorch's antialiased bilinear resize (a triangle filter as wide
    as the scale factor, like PIL's), so the network sees what it saw in training."""
    scale = n_in / n_out
    support, inv = (scale, 1.0 / scale) if scale >= 1 else (1.0, 1.0)
    m = np.zeros((n_out, n_in), np.float64)
    for i in range(n_out):
        center = scale * (i + 0.5)
        lo, hi = max(int(center - support + 0.5), 0), min(int(center + support + 0.5), n_in)
        w = np.maximum(0.0, 1.0 - np.abs((np.arange(lo, hi) - center + 0.5) * inv))
        m[i, lo:hi] = w / w.sum()
    return m.astype(np.float32)


def resize_L(lum: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """L (..., H, W) -> (..., h, w) at the network's ``shape``, area-weighted (no aliasing)."""
    h, w = shape
    return _aa_weights(lum.shape[-2], h) @ lum @ _aa_weights(lum.shape[-1], w).T


def compose(lum: np.ndarray, ab_small: np.ndarray) -> np.ndarray:
    """Full-resolution L (N, 1, H, W) + low-resolution normalized ab (N, 2, h, w) -> sRGB
    (N, 3, H, W) float32 in [0, 1].

    Where L + ab falls outside the sRGB gamut, chroma is reduced rather than the channels clipped,
    because clipping changes the luminance and the output's luminance must stay the input's.
    """
    h, w = lum.shape[-2:]
    out = np.empty((len(lum), 3, h, w), np.float32)
    for i, (lu, ab) in enumerate(zip(lum, ab_small, strict=True)):
        ab_full = cv2.resize(
            np.ascontiguousarray(ab.transpose(1, 2, 0), np.float32), (w, h), interpolation=cv2.INTER_LINEAR
        )
        out[i] = lab_to_rgb_in_gamut(lu[0], denormalize_ab(ab_full.reshape(h, w, 2))).transpose(2, 0, 1)
    return out


def unit_to_frame(rgb: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """(3, H, W) in [0, 1] -> (H, W, 3) array of ``dtype`` (uint8 or uint16), rounded."""
    scale = 65535.0 if dtype == np.uint16 else 255.0
    out = np.rint(np.clip(rgb.transpose(1, 2, 0), 0, 1) * np.float32(scale))
    return out.astype(np.uint16 if dtype == np.uint16 else np.uint8)


def gray_rgb(frame: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The gray picture the network sees, as an RGB frame of ``dtype`` (for side-by-side views)."""
    lum = frame_to_L(frame)
    rgb = cv2.cvtColor(np.dstack([lum, np.zeros_like(lum), np.zeros_like(lum)]), cv2.COLOR_Lab2RGB)
    return unit_to_frame(rgb.transpose(2, 0, 1), dtype)


def _to_numpy(ab) -> np.ndarray:
    """A backend's output (numpy, or a torch tensor on any device) -> float32 numpy on the host."""
    if hasattr(ab, "detach"):
        ab = ab.detach().float().cpu().numpy()  # CPU-GPU sync point for the torch / TensorRT backends
    return np.asarray(ab, np.float32)


def check_saturation(value: float) -> float:
    """``value`` if it is a usable saturation (0 gray, 1 the model's calibrated output, up to 2)."""
    if not 0.0 <= value <= MAX_SATURATION:  # NaN fails too
        raise ValueError(f"saturation {value} is out of range; use 0 (gray) to {MAX_SATURATION:g} (1: as calibrated)")
    return float(value)


def hint_channels(hints_per_frame, shape: tuple[int, int], source_hw: tuple[int, int] | None = None):
    """Per-frame sequences of ``Hint`` -> the network's hint input (N, 3, h, w) float32
    (a/110, b/110, mask), or None when no frame has a hint."""
    if hints_per_frame is None or not any(len(h) for h in hints_per_frame):
        return None
    from ..color import AB_SCALE
    from ..guidance.hints import rasterize

    out = np.zeros((len(hints_per_frame), 3, *shape), np.float32)
    for i, hints in enumerate(hints_per_frame):
        if len(hints):
            ab, mask = rasterize(tuple(hints), shape[0], shape[1], source_hw)
            out[i, :2], out[i, 2:] = ab / np.float32(AB_SCALE), mask
    return out


@dataclass(frozen=True)
class ModelChoice:
    """Which model runs, on what: the checkpoint (None: the bundled default), the runtime
    (``auto`` or a backend's name), the device and the inference size (None: the model's). One
    value from the command line to the colorizer, on this machine or a cluster's worker."""

    model: str | None = None
    backend: str = "auto"
    device: str = "auto"
    size: int | None = None
    saturation: float | None = None  # 0 gray .. 2; None: the model's calibrated output (1)

    def open(self, log=None) -> Colorizer:
        """The colorizer this choice names. A bad model or runtime raises an RtcolorError (one
        line); only the metadata is read unless a torch runtime needs the tensors."""
        from pathlib import Path

        from ..model.checkpoint import ModelFile
        from .backends import open_backend

        if self.size is not None:
            check_size(self.size)  # ValueError naming the range; the command says it in one line first
        ckpt = ModelFile.open(Path(self.model) if self.model else None)
        kw = {"log": log} if log is not None else {}
        backend = open_backend(self.backend, ckpt, device=self.device, **kw)
        return Colorizer(
            backend,
            size=self.size or ckpt.inference_size,
            chroma_gain=ckpt.chroma_gain,
            hinted_gain=ckpt.hinted_gain,
            saturation=1.0 if self.saturation is None else self.saturation,
        )


@dataclass
class Colorizer:
    """Colorizes frames with a backend (see ``backends``) at a given inference size."""

    backend: object
    size: int = DEFAULT_SIZE
    chroma_gain: float = 1.0  # calibrated per model on its validation split (checkpoint metadata)
    references: list = field(default_factory=list)  # reference.Reference: known colors of the view
    hinted_gain: float = 1.0  # the gain of frames with hints (checkpoint metadata ``hinted_chroma_gain``)
    saturation: float = 1.0  # the user's: 0 gray, 1 as calibrated, up to 2

    def __post_init__(self) -> None:
        check_size(self.size)
        check_saturation(self.saturation)

    def predict_ab(self, lum_small: np.ndarray, hints: np.ndarray | None = None) -> np.ndarray:
        """(N, 1, h, w) L at inference size (and hint channels (N, 3, h, w), see ``hint_channels``)
        -> normalized ab (N, 2, h/2, w/2), float32 on the host."""
        x = np.ascontiguousarray(normalize_L(lum_small), np.float32)
        ab = _to_numpy(self.backend.infer(x) if hints is None else self.backend.infer(x, hints))
        gain = np.full((len(ab), 1, 1, 1), self.chroma_gain * self.saturation, np.float32)
        if hints is not None:
            hinted = (hints[:, 2] > 0).reshape(len(ab), -1).any(1)
            gain[hinted] = self.hinted_gain * self.saturation
        return ab if np.all(gain == 1.0) else ab * gain

    def colorize(self, frame: np.ndarray, hints=()) -> np.ndarray:
        """One frame (gray or color, uint8/uint16, any size) and its hints (``Hint``s) -> RGB frame
        of the same dtype."""
        return self.colorize_batch([frame], [hints] if len(hints) else None)[0]

    def analyze(self, frames: list[np.ndarray], hints=None) -> tuple[np.ndarray, np.ndarray]:
        """Frames of one size (and per frame a sequence of ``Hint``s, or None) -> (full-resolution
        L (N, 1, H, W), low-resolution normalized ab)."""
        lums = np.stack([frame_to_L(f) for f in frames])[:, None]
        shape = inference_shape(*lums.shape[-2:], self.size)
        if hints is not None and len(hints) != len(frames):
            raise ValueError(f"{len(hints)} hint lists for {len(frames)} frames")
        ab = self.predict_ab(resize_L(lums, shape), hint_channels(hints, shape, lums.shape[-2:]))
        return lums, ab

    def suggest(self, frame: np.ndarray, x: float, y: float, hints=(), k: int = 6) -> list[tuple[str, float]]:
        """The ``k`` likeliest colors at (``x``, ``y``) (fractions of width and height), as sRGB
        hex and probability, from the binned head's distribution there (given ``hints``): what a
        hints editor offers. Each color keeps the pixel's own L."""
        from ..color import AB_SCALE

        if not hasattr(self.backend, "infer_bins"):
            raise ValueError(
                f"{self.backend.describe()} offers no color distribution; use the torch or onnxruntime backend"
            )
        lum = frame_to_L(frame)[None, None]
        shape = inference_shape(*lum.shape[-2:], self.size)
        small = resize_L(lum, shape)
        chan = hint_channels([hints], shape, lum.shape[-2:])
        p = _to_numpy(self.backend.infer_bins(np.ascontiguousarray(normalize_L(small), np.float32), chan))[0]
        n = int(round(np.sqrt(p.shape[-1])))
        row = int(round(min(max(y, 0.0), 1.0) * (p.shape[0] - 1)))
        col = int(round(min(max(x, 0.0), 1.0) * (p.shape[1] - 1)))
        probs = p[row, col].astype(np.float64)
        order = np.argsort(probs)[::-1][:k]
        axis = np.linspace(-1.0, 1.0, n)  # model.network.bin_centers (BIN_RANGE 1), without torch
        L = float(small[0, 0, min(2 * row, shape[0] - 1), min(2 * col, shape[1] - 1)])
        out = []
        for q in order:
            ab = np.array([[[axis[q // n], axis[q % n]]]], np.float32) * np.float32(AB_SCALE)
            rgb = lab_to_rgb_in_gamut(np.full((1, 1), L, np.float32), ab)[0, 0]
            hexa = "#" + "".join(f"{int(round(float(np.clip(c, 0, 1)) * 255)):02x}" for c in rgb)
            out.append((hexa, float(probs[q] / probs.sum())))
        return out

    def colorize_batch(self, frames: list[np.ndarray], hints=None) -> list[np.ndarray]:
        """Frames of one size (and per frame its ``Hint``s, or None) -> color frames; the network
        runs once on the whole batch."""
        if not frames:
            return []
        lums, ab = self.analyze(frames, hints)
        if self.references:  # known colors of this view (reference.py), blended where they apply
            from ..guidance.reference import blend_references, fit_references

            for i, (lum, one) in enumerate(zip(lums, ab, strict=True)):
                fit_references(self.references, one.shape[1:], lambda lum=lum: lum[0])
                ab[i] = blend_references(self.references, lum[0], one.transpose(1, 2, 0)).transpose(2, 0, 1)
        rgb = compose(lums, ab)
        out_dtype = np.uint16 if frames[0].dtype == np.uint16 else np.uint8
        return [unit_to_frame(x, out_dtype) for x in rgb]

    def predict_small(
        self, lums: list[np.ndarray], hints=None, source_hw: tuple[int, int] | None = None
    ) -> list[np.ndarray]:
        """Small L arrays (h, w), one shape (and per array its ``Hint``s, or None; patch sizes in
        pixels of a ``source_hw`` picture) -> normalized ab (h, w, 2) each, upsampled from h/2 x w/2."""
        batch = np.stack(lums)[:, None]
        h, w = batch.shape[-2:]
        ab = self.predict_ab(batch, hint_channels(hints, (h, w), source_hw))
        return [
            cv2.resize(np.ascontiguousarray(a.transpose(1, 2, 0)), (w, h), interpolation=cv2.INTER_LINEAR) for a in ab
        ]


# Video: pictures arrive as Y'CbCr planes. The network and all temporal work run on the small L;
# chroma is computed there and upsampled to the chroma planes (chroma is low-frequency anyway,
# and 4:2:0 stores it at half resolution), while the luma plane passes through untouched.


def luma_to_small_L(y: np.ndarray, full_range: bool, shape: tuple[int, int]) -> np.ndarray:
    """8-bit luma plane (H, W) -> Lab L (h, w) float32 at the inference ``shape`` (area-averaged)."""
    lum = cv2.LUT(y, luma_to_L_table(full_range))
    return cv2.resize(lum, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)


def ab_to_chroma(
    lum: np.ndarray, ab: np.ndarray, matrix: str, full_range: bool, chroma_shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Small L (h, w) + normalized ab (h, w, 2) -> 8-bit Cb, Cr planes of ``chroma_shape``.

    The color is made in Lab at the small size (with the same gamut handling as stills) and
    only its chroma is kept, so the picture's own luma is never replaced.
    """
    rgb = lab_to_rgb_in_gamut(lum, denormalize_ab(ab))
    cbcr = np.ascontiguousarray(rgb_to_ycbcr(rgb, matrix)[..., 1:])
    # Scale, offset, round and saturate to 8 bits at the small size, in one pass (in gamut the
    # values are >= 0, so the absolute value this OpenCV call also takes changes nothing); then
    # upsample the 8-bit planes, which OpenCV does in fixed point: a third of the float work per
    # frame at 720p, the planes within one code of upsampling first.
    small = cv2.convertScaleAbs(cbcr, alpha=chroma_scale(full_range), beta=128.0)
    u, v = cv2.split(cv2.resize(small, (chroma_shape[1], chroma_shape[0]), interpolation=cv2.INTER_LINEAR))
    return u, v
