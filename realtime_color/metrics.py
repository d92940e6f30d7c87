"""Image quality metrics: PSNR, SSIM, CIEDE2000 (scikit-image's), colourfulness, luma fidelity.

All functions take RGB arrays (H, W, 3), uint8 or uint16 or float in [0, 1]; they are converted to
float in [0, 1] first, so figures are comparable across bit depths.
"""

from __future__ import annotations

import numpy as np


def to_float(img: np.ndarray) -> np.ndarray:
    """uint8/uint16/float image -> float64 in [0, 1]; gray (H, W) becomes (H, W, 3)."""
    if img.dtype == np.uint8:
        out = img.astype(np.float64) / 255.0
    elif img.dtype == np.uint16:
        out = img.astype(np.float64) / 65535.0
    else:
        out = img.astype(np.float64)
    if out.ndim == 2:
        out = np.repeat(out[:, :, None], 3, axis=2)
    return out


def psnr(pred: np.ndarray, truth: np.ndarray) -> float:
    """PSNR in dB over all RGB channels (data range 1.0); identical images give inf."""
    from skimage.metrics import peak_signal_noise_ratio

    a, b = to_float(pred), to_float(truth)
    if np.array_equal(a, b):
        return float("inf")
    return float(peak_signal_noise_ratio(b, a, data_range=1.0))


def ssim(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean structural similarity over RGB channels."""
    from skimage.metrics import structural_similarity

    a, b = to_float(pred), to_float(truth)
    win = min(7, *[s if s % 2 else s - 1 for s in a.shape[:2]])
    return float(structural_similarity(b, a, data_range=1.0, channel_axis=2, win_size=max(win, 3)))


def ciede2000(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean CIEDE2000 colour difference (lower is better)."""
    from skimage.color import deltaE_ciede2000, rgb2lab

    return float(np.mean(deltaE_ciede2000(rgb2lab(to_float(truth)), rgb2lab(to_float(pred)))))


def colourfulness(img: np.ndarray) -> float:
    """Hasler & Suesstrunk (2003) colourfulness M, on the 0-255 scale.

    rg = R - G, yb = (R + G) / 2 - B; M = sqrt(sd_rg^2 + sd_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2).
    A gray image scores 0; natural photos typically score 30-60.
    """
    x = to_float(img) * 255.0
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    std = np.sqrt(rg.std() ** 2 + yb.std() ** 2)
    mean = np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    return float(std + 0.3 * mean)


def luma(img: np.ndarray) -> np.ndarray:
    """BT.601 luma Y' in [0, 1] (what a video Y plane and OpenCV's RGB2GRAY hold)."""
    x = to_float(img)
    return x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114


def lab_lightness(img: np.ndarray) -> np.ndarray:
    """CIE L* in [0, 100]."""
    from skimage.color import rgb2lab

    return rgb2lab(to_float(img))[..., 0]


def luma_psnr(pred: np.ndarray, reference: np.ndarray) -> float:
    """PSNR of BT.601 luma between a colorized frame and the gray frame it came from."""
    a, b = luma(pred), luma(reference)
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def to_gray(img: np.ndarray) -> np.ndarray:
    """Colour image -> gray of the same dtype, via Lab L (so the gray keeps CIE lightness)."""
    from skimage.color import lab2rgb, rgb2lab

    lab = rgb2lab(to_float(img))
    lab[..., 1:] = 0
    g = lab2rgb(lab)[..., 0]
    scale = 65535 if img.dtype == np.uint16 else 255
    return np.clip(np.round(g * scale), 0, scale).astype(img.dtype if img.dtype != np.float64 else np.uint8)
