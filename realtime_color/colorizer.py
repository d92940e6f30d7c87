"""Frame in -> frame out: pre-processing, a backend, post-processing.

The network only ever sees a small L image (the inference size); its ab prediction is upsampled
and recombined with the full-resolution L of the input, so no detail is lost and the output's
luminance is the input's. Frames are numpy arrays, RGB order, uint8 or uint16, gray (H, W) or
colour (H, W, 3); colour input is turned gray first (only its luminance is used).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .color import (
    chroma_scale,
    denormalize_ab,
    lab_to_rgb,
    lab_to_rgb_in_gamut,
    luma_to_L_table,
    luminance_to_L,
    normalize_L,
    rgb_to_L,
    rgb_to_ycbcr,
)
from .model import STRIDE

DEFAULT_SIZE = 256
# ab is low-frequency, so more than this buys nothing; the network's memory grows with the square.
MAX_SIZE = 2048


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


def frame_to_unit(frame: np.ndarray) -> torch.Tensor:
    """uint8/uint16/float frame (H, W) or (H, W, C) -> float32 tensor in [0, 1], (C, H, W)."""
    if frame.ndim == 2:
        frame = frame[:, :, None]
    if frame.ndim != 3 or frame.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"expected a gray or colour frame, got an array of shape {frame.shape}")
    frame = frame[:, :, :3] if frame.shape[2] >= 3 else frame[:, :, :1]  # drop alpha
    if frame.dtype == np.uint8:
        scale = 255.0
    elif frame.dtype == np.uint16:
        scale = 65535.0
    elif np.issubdtype(frame.dtype, np.floating):
        scale = 1.0
    else:
        raise ValueError(f"unsupported frame dtype {frame.dtype} (use uint8, uint16 or float)")
    t = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1).float()
    return t / scale


def unit_to_L(unit: torch.Tensor) -> torch.Tensor:
    """(C, H, W) sRGB in [0, 1] -> (1, H, W) Lab L. Colour input keeps only its luminance."""
    return luminance_to_L(unit) if unit.shape[0] == 1 else rgb_to_L(unit)


def resize_L(lum: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """(N, 1, H, W) L -> network input at ``shape`` (area-averaged, so no aliasing)."""
    return F.interpolate(lum, size=shape, mode="bilinear", align_corners=False, antialias=True)


def compose(lum: torch.Tensor, ab_small: torch.Tensor) -> torch.Tensor:
    """Full-resolution L (N, 1, H, W) + low-resolution normalised ab -> sRGB (N, 3, H, W) in [0, 1].

    Where L + ab falls outside the sRGB gamut, chroma is reduced rather than the channels clipped,
    because clipping changes the luminance and the output's luminance must stay the input's.
    """
    h, w = lum.shape[-2:]
    ab = F.interpolate(denormalize_ab(ab_small.float()), size=(h, w), mode="bilinear", align_corners=False)
    scale = torch.ones_like(lum)
    for _ in range(4):
        rgb = lab_to_rgb(torch.cat([lum, ab * scale], 1), clip=False)
        over = ((rgb < -0.002) | (rgb > 1.002)).any(1, keepdim=True)
        if not bool(over.any()):
            break
        scale = torch.where(over, scale * 0.6, scale)
    else:
        rgb = lab_to_rgb(torch.cat([lum, ab * torch.where(over, 0.0, scale)], 1), clip=False)
    return rgb.clamp(0, 1)


def unit_to_frame(rgb: torch.Tensor, dtype: np.dtype) -> np.ndarray:
    """(3, H, W) in [0, 1] -> (H, W, 3) array of ``dtype`` (uint8 or uint16), rounded."""
    scale = 65535.0 if dtype == np.uint16 else 255.0
    out = (rgb.clamp(0, 1) * scale).round().permute(1, 2, 0).contiguous().cpu().numpy()
    return out.astype(np.uint16 if dtype == np.uint16 else np.uint8)


def gray_rgb(frame: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The gray picture the network sees, as an RGB frame of ``dtype`` (for side-by-side views)."""
    lum = unit_to_L(frame_to_unit(frame))
    rgb = lab_to_rgb(torch.cat([lum, torch.zeros(2, *lum.shape[1:])]))
    return unit_to_frame(rgb, dtype)


@dataclass
class Colorizer:
    """Colorizes frames with a backend (see ``backends``) at a given inference size."""

    backend: object
    size: int = DEFAULT_SIZE
    chroma_gain: float = 1.0  # calibrated per model on its validation split (checkpoint metadata)

    def __post_init__(self) -> None:
        check_size(self.size)

    def predict_ab(self, lum_small: torch.Tensor) -> torch.Tensor:
        """(N, 1, h, w) L at inference size -> normalised ab (N, 2, h/2, w/2) on the CPU."""
        ab = self.backend.infer(normalize_L(lum_small)).float().cpu()
        return ab * self.chroma_gain if self.chroma_gain != 1.0 else ab

    def colorize(self, frame: np.ndarray) -> np.ndarray:
        """One frame (gray or colour, uint8/uint16, any size) -> RGB frame of the same dtype."""
        return self.colorize_batch([frame])[0]

    def analyse(self, frames: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames of one size -> (full-resolution L (N, 1, H, W), low-resolution normalised ab)."""
        lums = torch.stack([unit_to_L(frame_to_unit(f)) for f in frames])
        ab = self.predict_ab(resize_L(lums, inference_shape(*lums.shape[-2:], self.size)))
        return lums, ab

    def colorize_batch(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        """Frames of one size -> colour frames; the network runs once on the whole batch."""
        if not frames:
            return []
        rgb = compose(*self.analyse(frames))
        out_dtype = np.uint16 if frames[0].dtype == np.uint16 else np.uint8
        return [unit_to_frame(x, out_dtype) for x in rgb]

    def predict_small(self, lums: list[np.ndarray]) -> list[np.ndarray]:
        """Small L arrays (h, w), one shape -> normalised ab (h, w, 2) each, upsampled from h/2 x w/2."""
        batch = torch.from_numpy(np.stack(lums))[:, None]
        ab = F.interpolate(self.predict_ab(batch), size=batch.shape[-2:], mode="bilinear", align_corners=False)
        return list(ab.permute(0, 2, 3, 1).contiguous().numpy())


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
    """Small L (h, w) + normalised ab (h, w, 2) -> 8-bit Cb, Cr planes of ``chroma_shape``.

    The colour is made in Lab at the small size (with the same gamut handling as stills) and
    only its chroma is kept, so the picture's own luma is never replaced.
    """
    rgb = lab_to_rgb_in_gamut(lum, denormalize_ab(ab))
    cbcr = np.ascontiguousarray(rgb_to_ycbcr(rgb, matrix)[..., 1:])
    cbcr = cv2.resize(cbcr, (chroma_shape[1], chroma_shape[0]), interpolation=cv2.INTER_LINEAR)
    # One pass: scale, offset, round and saturate to uint8 (in gamut the values are >= 0, so the
    # absolute value this OpenCV call also takes changes nothing), then two contiguous planes.
    u, v = cv2.split(cv2.convertScaleAbs(cbcr, alpha=chroma_scale(full_range), beta=128.0))
    return u, v
