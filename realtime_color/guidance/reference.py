"""Known colors: a color picture of the same camera view lends its chroma wherever the scene is
unchanged, and the network colors only what moved or changed.

A fixed surveillance or night-vision camera films the same scene day and night; one color frame
of it (or a photo from the same spot) holds the true colors of the walls, road, grass and signs.
Per region the reference applies where the frame's *structure* matches it, judged at the
network's resolution, so the cost per frame is a handful of box filters on a ~256x144 picture:

1. **Alignment, once per view size**: ORB features on contrast-equalised L (robust to exposure
   and sensor noise), a similarity transform by RANSAC, so a little camera shake or drift between
   the reference and now does not matter. A reference that does not match the view is refused
   with how much of it matched.
2. **Tone**: the frame's L is mapped onto the reference's by histogram matching (a night frame is
   darker, an IR frame differently toned; a monotone curve absorbs both to first order).
3. **Where it applies**: local normalized cross-correlation of the two L (structure: edges and
   texture line up) times the agreement of their local means after the tone map (flat regions:
   the same brightness), feathered so that the borders blend smoothly.
4. ab = w * ab_reference + (1 - w) * ab_network, at the network's chroma resolution (chroma is
   low-frequency; the full-resolution L of the frame keeps all detail). With several references
   (day and dusk, summer and winter) each pixel takes the one that matches it best.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..color import AB_SCALE
from ..errors import RtcolorError


class ReferencePictureError(RtcolorError, ValueError):
    """A reference picture that cannot be used (unreadable, gray, another view, another shape)."""


@dataclass(frozen=True)
class ReferenceConfig:
    window: int = 7  # structure window (pixels at the working resolution, ``work_side``)
    min_match: float = 0.5  # share of the view that must match for the reference to be used
    sigma_l: float = 8.0  # L units: a local mean this far from the reference's no longer matches
    min_ncc: float = 0.15  # below this correlation, textured regions do not match ...
    full_ncc: float = 0.55  # ... above this they fully do
    flat_var: float = 4.0  # L^2: a window this smooth in both pictures is judged by brightness only
    sure: tuple[float, float] = (0.25, 0.7)  # match below the first: not this scene; above the second: surely
    feather: float = 1.0  # Gaussian sigma (pixels at the working resolution) of the weight map
    max_aspect_change: float = 0.03  # a reference of another aspect ratio is another framing
    work_side: int = 128  # long side the match is judged at: coarse enough to average sensor noise out


def _box(x: np.ndarray, k: int) -> np.ndarray:
    return cv2.boxFilter(x, cv2.CV_32F, (k, k), borderType=cv2.BORDER_REFLECT)


def _cdf(lum: np.ndarray, bins: int = 256) -> np.ndarray:
    c = np.cumsum(np.histogram(lum, bins, range=(0.0, 100.0))[0]).astype(np.float64)
    return c / c[-1]


def tone_map(src: np.ndarray, ref: np.ndarray, ref_cdf: np.ndarray | None = None, bins: int = 256) -> np.ndarray:
    """``src`` (L in [0, 100]) remapped so that its histogram matches ``ref``'s (whose CDF may be
    given: the reference's is the same on every frame)."""
    ref_cdf = _cdf(ref, bins) if ref_cdf is None else ref_cdf
    centers = (np.arange(bins, dtype=np.float32) + 0.5) * (100.0 / bins)
    lut = np.interp(_cdf(src, bins), ref_cdf, centers).astype(np.float32)
    idx = np.clip((src * (bins / 100.0)).astype(np.int32), 0, bins - 1)
    return lut[idx]


def match_weights(frame_L: np.ndarray, ref_L: np.ndarray, cfg: ReferenceConfig, ref_cdf=None) -> np.ndarray:
    """Per pixel, how surely the reference applies (0..1): structure and brightness agree."""
    return _match(frame_L, ref_L, cfg, ref_cdf=ref_cdf)[0]


def match_score(frame_L: np.ndarray, ref_L: np.ndarray, cfg: ReferenceConfig) -> float:
    """The share of the view's *textured* windows whose structure matches the reference.

    Flat regions (sky, a wall) say nothing about whether this is the same place (any two street
    scenes have a sky above a road), so only windows with texture in either picture count."""
    w, textured = _match(frame_L, ref_L, cfg, feather=False)
    return float(w[textured].mean()) if textured.any() else 0.0


def _match(frame_L: np.ndarray, ref_L: np.ndarray, cfg: ReferenceConfig, feather: bool = True, ref_cdf=None):
    f = tone_map(frame_L.astype(np.float32), ref_L, ref_cdf)
    r = ref_L.astype(np.float32)
    k = cfg.window
    mf, mr = _box(f, k), _box(r, k)
    vf = np.maximum(_box(f * f, k) - mf * mf, 0.0)
    vr = np.maximum(_box(r * r, k) - mr * mr, 0.0)
    cov = _box(f * r, k) - mf * mr
    ncc = cov / np.sqrt(vf * vr + 1e-3)
    structure = np.clip((ncc - cfg.min_ncc) / (cfg.full_ncc - cfg.min_ncc), 0.0, 1.0)
    textured = (vf >= cfg.flat_var) | (vr >= cfg.flat_var)
    structure = np.where(textured, structure, 1.0)
    brightness = np.exp(-(((mf - mr) / cfg.sigma_l) ** 2))
    w = (structure * brightness).astype(np.float32)
    if feather:  # per pixel a decision (the reference's color or the network's), soft only at borders
        lo, hi = cfg.sure
        w = np.clip((w - lo) / (hi - lo), 0.0, 1.0)
    if feather and cfg.feather > 0:
        w = cv2.GaussianBlur(w, (0, 0), cfg.feather)
    return w, textured


def _equalised(lum: np.ndarray, long_side: int = 640) -> np.ndarray:
    h, w = lum.shape
    s = long_side / max(h, w)
    small = cv2.resize(lum, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    u8 = np.clip(small * 2.55, 0, 255).astype(np.uint8)
    return cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(u8)


def orb_features(lum: np.ndarray):
    """ORB keypoints and descriptors of L (contrast-equalised, long side 640), and that picture's width."""
    eq = _equalised(lum)
    kp, desc = cv2.ORB_create(1500).detectAndCompute(eq, None)
    return kp, desc, eq.shape[1]


def estimate_alignment(frame_L: np.ndarray, ref_L: np.ndarray, ref_features=None) -> np.ndarray | None:
    """The 2x3 similarity that maps the reference onto the frame (full-resolution pixels), or
    None when too few features agree (a featureless view: then it is used as it is).
    ``ref_features``: the reference's ``orb_features``, computed once by the caller."""
    ka, da, wa = orb_features(frame_L)
    kb, db, wb = ref_features or orb_features(ref_L)
    if da is None or db is None or len(ka) < 12 or len(kb) < 12:
        return None
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(db, da, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < 0.8 * p[1].distance]
    if len(good) < 12:
        return None
    src = np.float32([kb[m.queryIdx].pt for m in good])
    dst = np.float32([ka[m.trainIdx].pt for m in good])
    m, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=3.0)
    if m is None or inliers is None or inliers.sum() < 12:
        return None
    sa = frame_L.shape[1] / wa  # back to the frame's pixels (both at the same long side)
    sb = ref_L.shape[1] / wb
    return (np.diag([sa, sa]) @ m @ np.diag([1 / sb, 1 / sb, 1.0])).astype(np.float32)


class Reference:
    """A color picture of the view. ``fit`` once per view size (``fit_references``), then
    ``blend_references`` on every frame."""

    def __init__(self, path: str | Path, cfg: ReferenceConfig | None = None):
        from ..media.images import ImageReadError, read_image

        self.path, self.cfg = Path(path), cfg or ReferenceConfig()
        try:
            rgb = read_image(self.path)
        except (ImageReadError, OSError, ValueError) as e:
            raise ReferencePictureError(f"reference {self.path}: {e}") from None
        if rgb.ndim == 2 or int(np.ptp(rgb[..., :3].astype(np.int32), axis=-1).max()) <= 2:
            raise ReferencePictureError(f"reference {self.path} is a gray picture; a reference must be in color")
        rgb = rgb[..., :3].astype(np.float32) / (65535.0 if rgb.dtype == np.uint16 else 255.0)
        self.lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)  # L 0..100, a and b in Lab units
        self._fitted: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}  # ab shape: L, ab, L's CDF
        self._views: dict[tuple, tuple] = {}  # frame size: (the reference resampled to it, its ORB features)
        self.matched: float | None = None  # share of the view that matched at the last fit

    def fit(self, frame_L: np.ndarray, ab_shape: tuple[int, int], strict: bool = True) -> None:
        """Align the reference to this view (``frame_L``: the frame's L at any resolution) and
        resample it to the network's chroma resolution. Refuses another framing, and (``strict``)
        another scene; not strict, a poor match only means low weights (a moving shot)."""
        h, w = frame_L.shape
        rh, rw = self.lab.shape[:2]
        if abs((rw / rh) / (w / h) - 1.0) > self.cfg.max_aspect_change:
            raise ReferencePictureError(
                f"reference {self.path} is {rw}x{rh} and the view {w}x{h}: another framing "
                f"(aspect {rw / rh:.2f} vs {w / h:.2f}); crop the reference to the camera's view"
            )
        if (h, w) not in self._views:  # a color frame is refitted on every frame of its shot: once is enough
            lab = cv2.resize(self.lab, (w, h), interpolation=cv2.INTER_AREA if rw > w else cv2.INTER_LINEAR)
            self._views[(h, w)] = (lab, orb_features(lab[..., 0]))
        lab, features = self._views[(h, w)]
        m = estimate_alignment(frame_L.astype(np.float32), lab[..., 0], features)
        if m is not None:
            lab = cv2.warpAffine(lab, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        small = cv2.resize(lab, (ab_shape[1], ab_shape[0]), interpolation=cv2.INTER_AREA)
        ref_ab = np.ascontiguousarray(small[..., 1:]) / np.float32(AB_SCALE)  # (h, w, 2), as the tracker's
        work = self._work_shape(ab_shape)
        ref_L = np.ascontiguousarray(cv2.resize(lab[..., 0], (work[1], work[0]), interpolation=cv2.INTER_AREA))
        self._fitted[tuple(ab_shape)] = (ref_L, ref_ab.astype(np.float32), _cdf(ref_L))
        lum = cv2.resize(frame_L.astype(np.float32), (work[1], work[0]), interpolation=cv2.INTER_AREA)
        self.matched = match_score(lum, ref_L, self.cfg)
        if strict and self.matched < self.cfg.min_match:
            del self._fitted[tuple(ab_shape)]
            raise ReferencePictureError(
                f"reference {self.path} does not match the view: {self.matched:.0%} of its detail matches in "
                f"structure (needs {self.cfg.min_match:.0%}); use a picture taken from this camera's position"
            )

    def fitted(self, ab_shape: tuple[int, int]) -> bool:
        return tuple(ab_shape) in self._fitted

    def chroma(self, ab_shape: tuple[int, int]) -> np.ndarray:
        """The aligned reference's ab (normalized, (h, w, 2)) at the chroma resolution."""
        return self._fitted[tuple(ab_shape)][1]

    def _work_shape(self, ab_shape: tuple[int, int]) -> tuple[int, int]:
        h, w = ab_shape
        s = min(1.0, self.cfg.work_side / max(h, w))
        return max(8, round(h * s)), max(8, round(w * s))

    def weights(self, lum: np.ndarray, ab_shape: tuple[int, int] | None = None) -> np.ndarray:
        """How surely the reference applies, at the chroma resolution (``lum``: L at any size)."""
        ab_shape = tuple(ab_shape or next(iter(self._fitted)))
        ref_L, _, ref_cdf = self._fitted[ab_shape]
        if lum.shape != ref_L.shape:
            lum = cv2.resize(lum.astype(np.float32), ref_L.shape[::-1], interpolation=cv2.INTER_AREA)
        w = match_weights(lum, ref_L, self.cfg, ref_cdf)
        if w.shape != ab_shape:
            w = cv2.resize(w, (ab_shape[1], ab_shape[0]), interpolation=cv2.INTER_LINEAR)
        return w


def fit_references(refs: list[Reference], shape: tuple[int, int], full_L) -> None:
    """Fit the references not yet fitted at this chroma ``shape``; ``full_L()`` gives the frame's L
    (called only when one needs it: the conversion is not paid on every frame)."""
    todo = [r for r in refs if not r.fitted(shape)]
    if todo:
        lum = full_L()
        for r in todo:
            r.fit(lum, shape)


def blend_references(refs: list[Reference], lum: np.ndarray, ab: np.ndarray, priors=None) -> np.ndarray:
    """ab (normalized, (h, w, 2)) with, per pixel, the best-matching reference's chroma blended in
    by how surely it applies (``lum``: the frame's L, any size; the references fitted to (h, w)).
    ``priors`` (one per reference, 0..1) scale how much each is trusted (nearer in time: more)."""
    shape = ab.shape[:2]
    if len(refs) == 1 and priors is None:  # the common case, without the gather below
        w = refs[0].weights(lum, shape)[..., None]
        return (w * refs[0].chroma(shape) + (1.0 - w) * ab).astype(np.float32)
    weights = np.stack([r.weights(lum, shape) for r in refs])  # (R, h, w)
    if priors is not None:
        weights *= np.asarray(priors, np.float32)[:, None, None]
    best = weights.argmax(0)[None]
    w = np.take_along_axis(weights, best, 0)[0][..., None]
    ref_ab = np.stack([r.chroma(shape) for r in refs])  # (R, h, w, 2)
    chosen = np.take_along_axis(ref_ab, best[..., None], 0)[0]
    return (w * chosen + (1.0 - w) * ab).astype(np.float32)
