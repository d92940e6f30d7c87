"""Image quality metrics: PSNR, SSIM, CIEDE2000 (scikit-image's), colorfulness, luma fidelity.

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
    """Mean CIEDE2000 color difference (lower is better)."""
    from skimage.color import deltaE_ciede2000, rgb2lab

    return float(np.mean(deltaE_ciede2000(rgb2lab(to_float(truth)), rgb2lab(to_float(pred)))))


def colorfulness(img: np.ndarray) -> float:
    """Hasler & Suesstrunk (2003) colorfulness M, on the 0-255 scale.

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
    """Color image -> gray of the same dtype, via Lab L (so the gray keeps CIE lightness)."""
    from skimage.color import lab2rgb, rgb2lab

    lab = rgb2lab(to_float(img))
    lab[..., 1:] = 0
    g = lab2rgb(lab)[..., 0]
    scale = 65535 if img.dtype == np.uint16 else 255
    return np.clip(np.round(g * scale), 0, scale).astype(img.dtype if img.dtype != np.float64 else np.uint8)


# Temporal metrics for video. They are computed on frames downscaled by ``scale`` (flicker) and
# on full frames (histograms), streaming: only the last few frames' histograms are kept.

CDC_DILATIONS = (1, 2, 4)


def channel_histograms(img: np.ndarray, bins: int = 256) -> np.ndarray:
    """Normalized per-channel histograms (3, bins) of an 8-bit RGB frame."""
    idx = img.astype(np.int32) * bins // 256
    hists = [np.bincount(idx[..., c].ravel(), minlength=bins) for c in range(3)]
    h = np.stack(hists).astype(np.float64)
    return h / h.sum(axis=1, keepdims=True)


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence (natural log, 0..ln 2) between histograms, averaged over rows."""
    m = 0.5 * (p + q)

    def kl(a, b):
        mask = a > 0
        return np.where(mask, a * np.log(np.where(mask, a, 1) / np.where(mask, b, 1)), 0.0).sum(axis=-1)

    return float(np.mean(0.5 * kl(p, m) + 0.5 * kl(q, m)))


class TemporalScores:
    """Chroma flicker in static areas and color distribution consistency (CDC) of one sequence.

    * flicker: mean Euclidean |delta (a, b)| between consecutive frames over pixels whose L moved
      less than ``static_tol`` (L units), judged on the ``reference_L`` sequence (the input's L, the
      same for the colorized video and its original).
    * CDC (Liu et al., temporally consistent video colorization): mean Jensen-Shannon divergence of
      per-channel RGB histograms between frames t and t+d, averaged over d in 1, 2, 4.
    """

    def __init__(self, static_tol: float = 2.0, scale: float = 0.5):
        self.static_tol, self.scale = static_tol, scale
        self.prev_lab: np.ndarray | None = None
        self.prev_ref: np.ndarray | None = None
        self.hists: list[np.ndarray] = []
        self.flicker_sum = 0.0
        self.flicker_n = 0
        self.cdc = {d: [] for d in CDC_DILATIONS}

    def _lab(self, rgb: np.ndarray) -> np.ndarray:
        import cv2

        small = cv2.resize(rgb, None, fx=self.scale, fy=self.scale, interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(small.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)

    def add(self, rgb: np.ndarray, reference_L: np.ndarray) -> None:
        """One 8-bit RGB frame and the L (any scale, resized here) that decides what is static."""
        import cv2

        lab = self._lab(rgb)
        ref = cv2.resize(reference_L.astype(np.float32), (lab.shape[1], lab.shape[0]), interpolation=cv2.INTER_AREA)
        if self.prev_lab is not None:
            static = np.abs(ref - self.prev_ref) < self.static_tol
            if static.any():
                d = np.sqrt(((lab[..., 1:] - self.prev_lab[..., 1:]) ** 2).sum(-1))[static]
                self.flicker_sum += float(d.sum())
                self.flicker_n += int(d.size)
        self.prev_lab, self.prev_ref = lab, ref
        hist = channel_histograms(rgb)
        for d in CDC_DILATIONS:
            if len(self.hists) >= d:
                self.cdc[d].append(js_divergence(self.hists[-d], hist))
        self.hists = (self.hists + [hist])[-max(CDC_DILATIONS) :]

    def result(self) -> dict:
        per = [float(np.mean(v)) for v in self.cdc.values() if v]
        return {
            "flicker": self.flicker_sum / self.flicker_n if self.flicker_n else 0.0,
            "cdc": float(np.mean(per)) if per else 0.0,
        }
