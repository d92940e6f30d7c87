"""``rtcolor eval``: color pictures and videos as ground truth, colorized from their gray version.

Every figure is reported beside the gray baseline (the same frame with no color at all), and for
video beside the original's own temporal figures, because a colorizer's flicker only means
something next to the flicker the real footage already has.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from ..color import luma_to_L_table
from ..media.frames import Picture, Policy
from ..runtime.colorizer import Colorizer, gray_rgb
from ..video.pipeline import summarize
from ..video.stages import PipelineConfig, colorize_pipeline
from . import metrics
from .scores import GainScores, PictureScores


def score_pair(ours: np.ndarray, gray: np.ndarray, truth: np.ndarray) -> PictureScores:
    """The still-picture metrics of ``ours`` and the gray baseline against ``truth`` (RGB arrays)."""
    return PictureScores(
        psnr=metrics.psnr(ours, truth),
        psnr_gray=metrics.psnr(gray, truth),
        ssim=metrics.ssim(ours, truth),
        ssim_gray=metrics.ssim(gray, truth),
        ciede2000=metrics.ciede2000(ours, truth),
        ciede2000_gray=metrics.ciede2000(gray, truth),
        colorfulness=metrics.colorfulness(ours),
        colorfulness_truth=metrics.colorfulness(truth),
    )


def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)


def true_colors_at(gray: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """What a colorizer that knew the true colors would output for ``gray`` (8-bit): its L with
    ``truth``'s ab, through the same gamut handling as ours, so a dark night frame's colors are
    not held against anyone (known colors are scored against this)."""
    from ..color import AB_SCALE
    from ..runtime.colorizer import compose

    lum = _lab(np.dstack([gray] * 3))[..., :1].transpose(2, 0, 1)[None]
    ab = _lab(truth)[..., 1:].transpose(2, 0, 1)[None] / AB_SCALE
    rgb = compose(lum.astype(np.float32), ab.astype(np.float32))[0]
    return np.clip(rgb.transpose(1, 2, 0) * 255 + 0.5, 0, 255).astype(np.uint8)


def chroma_error(out: np.ndarray, want: np.ndarray, mask: np.ndarray) -> float:
    """Mean CIE Lab ab distance between two 8-bit RGB pictures over ``mask``."""
    return float(np.linalg.norm(_lab(out)[..., 1:] - _lab(want)[..., 1:], axis=-1)[mask].mean())


MIN_SIDE = 3  # SSIM's smallest window (metrics.ssim): a smaller picture cannot be scored


def _check_scorable(path, height: int, width: int) -> None:
    if min(height, width) < MIN_SIDE:
        raise ValueError(f"{path}: {width}x{height} is too small to score (SSIM needs {MIN_SIDE}x{MIN_SIDE} or more)")


def evaluate_image(path: str | Path, colorizer: Colorizer) -> dict:
    """Turn a color picture gray (CIE L kept), colorize it, score it."""
    from ..media.sources import read_still

    truth = read_still(path).pixels
    _check_scorable(path, *truth.shape[:2])
    if truth.ndim == 2:
        raise ValueError(f"{path} is a gray picture; evaluation needs color ground truth")
    truth = truth[..., :3]
    # Stricter than media.images.is_gray (a mean over the picture, which training uses to skip
    # nearly-gray photos): a single colored pixel makes ground truth worth scoring.
    spread = int(np.ptp(truth.astype(np.int32), axis=-1).max())  # largest channel difference of any pixel
    if spread <= (2 * 257 if truth.dtype == np.uint16 else 2):  # equal channels, give or take JPEG noise
        raise ValueError(f"{path} is a gray picture stored as color (its channels are equal); nothing to score")
    gray = metrics.to_gray(truth)
    ours = colorizer.colorize(gray)
    gray3 = gray_rgb(gray, truth.dtype)
    return {
        "path": str(path),
        "kind": "image",
        "frames": 1,
        **score_pair(ours, gray3, truth).to_dict(),
        "luma_psnr": metrics.luma_psnr(ours, gray3),  # the input's luminance kept (video: Y passes through)
        "_sheet": (gray3, ours, truth),
    }


class _VideoScorer:
    """A pipeline sink that scores each colorized picture against the original frame's chroma."""

    def __init__(self, sample_every: int, middle: int = 0):
        self.sample_every, self.middle = sample_every, middle
        self.rows: list[dict] = []
        self.sampled: list[dict] = []
        self.ours_t = metrics.TemporalScores()
        self.truth_t = metrics.TemporalScores()
        self.sheet = None

    def write(self, pic: Picture) -> None:
        tu, tv = pic.decoded_uv
        truth_pic = replace(pic, u=tu, v=tv)  # the same luma with the original chroma
        ours = pic.to_bgr()[..., ::-1]
        truth = truth_pic.to_bgr()[..., ::-1]
        gray = pic.gray_bgr()[..., ::-1]
        self.rows.append({"psnr": metrics.psnr(ours, truth), "psnr_gray": metrics.psnr(gray, truth)})
        if pic.index % self.sample_every == 0:  # SSIM and CIEDE2000 are slow at full HD: sample them
            self.sampled.append(score_pair(ours, gray, truth).to_dict())
            if self.sheet is None and pic.index >= self.middle:
                self.sheet = (gray, ours, truth)  # a frame from the middle, for the contact sheet
        lum = cv2.LUT(pic.y, luma_to_L_table(pic.full_range))
        self.ours_t.add(np.ascontiguousarray(ours), lum)
        self.truth_t.add(np.ascontiguousarray(truth), lum)

    def close(self, complete: bool = True) -> None:
        pass


def evaluate_video(
    path: str | Path, colorizer: Colorizer, cfg: PipelineConfig, sample_every: int = 10, allow_partial: bool = False
) -> dict:
    """Colorize a color video from its luma through the full pipeline and score every frame.
    A damaged video (frames lost) is a failure unless ``allow_partial``: a score on the frames
    that decoded is not the clip's score."""
    from ..media.sources import open_source

    source = open_source(path, Policy.FILE, kind="file", chroma=True)
    try:
        _check_scorable(path, source.info.height, source.info.width)
    except ValueError:
        source.close()
        raise
    scorer = _VideoScorer(sample_every, middle=source.info.frames // 2)
    try:
        result = colorize_pipeline(colorizer, [scorer], cfg, Policy.FILE).run(source)
    finally:
        source.close()
    if result.failure is not None:
        raise RuntimeError(f"{path}: {result.failure}") from None
    stats = result.stats
    if not scorer.rows:
        raise ValueError(f"{path}: no frame could be decoded")
    if source.problems and not allow_partial:
        raise ValueError(
            f"{path}: damaged, {len(scorer.rows)} frames decoded: {summarize(source.problems)}; "
            "pass --allow-partial to score the frames that decoded"
        )
    truth_color = float(np.mean([r["colorfulness_truth"] for r in scorer.sampled]))
    if truth_color < 1.0:  # a gray clip: its gray baseline is the truth itself, so the scores say nothing
        raise ValueError(
            f"{path} is a gray video (the original's colorfulness is {truth_color:.1f}); "
            "evaluation needs color ground truth"
        )
    out = {"path": str(path), "kind": "video", "frames": len(scorer.rows)}
    for key in ("psnr", "psnr_gray"):
        out[key] = float(np.mean([r[key] for r in scorer.rows if np.isfinite(r[key])]))
    for key in ("ssim", "ssim_gray", "ciede2000", "ciede2000_gray", "colorfulness", "colorfulness_truth"):
        out[key] = float(np.mean([r[key] for r in scorer.sampled]))
    ours_t, truth_t = scorer.ours_t.result(), scorer.truth_t.result()
    out.update(
        flicker=ours_t["flicker"],
        flicker_truth=truth_t["flicker"],
        cdc=ours_t["cdc"],
        cdc_truth=truth_t["cdc"],
        keyframes=stats.counts["keyframes"],
        scene_cuts=stats.counts["scene_cuts"],
        fps=stats.summary()["fps"],
        problems=list(source.problems),
        warnings=list(source.warnings),  # a size change: later frames scaled, as `colorize` does
        _sheet=scorer.sheet,
    )
    return out


def mean_scores(items: list[dict]) -> dict:
    """Means over items of every numeric figure (each item, picture or video, counts once)."""
    keys = {k: None for it in items for k, v in it.items() if isinstance(v, float | int) and not isinstance(v, bool)}
    out = {}
    for k in keys:
        vals = [it[k] for it in items if k in it and np.isfinite(it[k])]
        if vals and k != "frames":
            out[k] = float(np.mean(vals))
    out["items"] = len(items)
    out["frames"] = int(sum(it.get("frames", 1) for it in items))
    return out


def gain_interval(items: list[dict], level: float = 0.95, resamples: int = 10_000, seed: int = 0) -> dict:
    """The mean PSNR gain over gray, its bootstrap interval over items, and how many items beat gray.

    Per picture the gain spreads over several dB, so a mean over a handful of pictures says little
    without its interval; resampling the items (not the pixels) asks how the mean would move on
    another set drawn like this one. Seeded: the same items give the same interval."""
    gains = np.array([it["psnr"] - it["psnr_gray"] for it in items])
    gains = gains[np.isfinite(gains)]
    if gains.size == 0:
        return {}
    means = np.random.default_rng(seed).choice(gains, (resamples, gains.size)).mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return {
        "psnr_gain": float(gains.mean()),
        "psnr_gain_interval": [float(lo), float(hi)],
        "interval_level": level,
        "above_gray": int((gains > 0).sum()),
    }


def tile_sheet(rows: list[tuple[list[tuple[np.ndarray, str]], str | None]], height: int = 180) -> np.ndarray:
    """Rows of labelled pictures, each scaled to ``height`` and labelled at its top left, with an
    optional caption along the row's bottom; rows padded to the widest. RGB uint8."""

    def label(img: np.ndarray, text: str, y: int, color: tuple) -> None:
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
        cv2.rectangle(img, (0, y - th - 5), (tw + 10, y + 5), (0, 0, 0), -1)  # legible on any picture
        cv2.putText(img, text, (5, y), cv2.FONT_HERSHEY_SIMPLEX, 0.45, color, 1, cv2.LINE_AA)

    out = []
    for tiles, caption in rows:
        scaled = []
        for img, text in tiles:
            img = (img // 257).astype(np.uint8) if img.dtype == np.uint16 else img
            img = np.repeat(img[..., None], 3, 2) if img.ndim == 2 else img
            w = max(1, round(img.shape[1] * height / img.shape[0]))
            tile = cv2.resize(np.ascontiguousarray(img), (w, height), interpolation=cv2.INTER_AREA)
            label(tile, text, 16, (255, 255, 255))
            scaled.append(tile)
        row = np.concatenate(scaled, axis=1)
        if caption:
            label(row, caption, height - 8, (255, 255, 0))
        out.append(row)
    if not out:
        raise ValueError("nothing to put on the contact sheet")
    width = max(r.shape[1] for r in out)
    return np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in out], axis=0)


def contact_sheet(items: list[dict], height: int = 180) -> np.ndarray:
    """One row per item: gray | ours | truth, each scaled to ``height``, labelled. RGB uint8."""
    rows = [
        (
            list(zip(it["_sheet"], ("gray", "rtcolor", "truth"), strict=True)),
            f"{Path(it['path']).name}: {it['psnr']:.2f} dB (gray {it['psnr_gray']:.2f})",
        )
        for it in items
        if it.get("_sheet") is not None
    ]
    return tile_sheet(rows, height)


# ---------------------------------------------------------------------------------------------
# the chroma-gain sweep of training and adapt (a PyTorch model, imported lazily)


GAINS = (0.5, 0.65, 0.8, 1.0, 1.25, 1.5)


def evaluate_gains(model, images: list[np.ndarray], size: int, device: str, gains=GAINS) -> dict[float, GainScores]:
    """Colorize each validation picture (turned gray) at ``size`` with the PyTorch ``model``: mean
    figures per chroma gain. The network runs once per picture (``TorchBackend`` runs it without
    autograd); each gain only rescales its ab before composing.
    """
    from ..runtime.backends.pytorch import TorchBackend
    from ..runtime.colorizer import Colorizer, compose, unit_to_frame

    was_training = model.training
    model.eval()
    colorizer = Colorizer(TorchBackend(model, device=device, precision="fp32"), size=size)
    rows: dict[float, list[tuple]] = {g: [] for g in gains}
    for img in images:
        gray = metrics.to_gray(img)
        lum, ab = colorizer.analyze([gray])
        psnr_gray, truth_colorfulness = metrics.psnr(gray, img), metrics.colorfulness(img)
        for g in gains:
            out = unit_to_frame(compose(lum, ab * g)[0], np.uint8)
            rows[g].append(
                (
                    metrics.psnr(out, img),
                    psnr_gray,
                    metrics.colorfulness(out),
                    truth_colorfulness,
                    metrics.luma_psnr(out, gray),
                )
            )
    model.train(was_training)
    return {g: GainScores(*map(float, np.mean(rs, axis=0))) for g, rs in rows.items() if rs}
