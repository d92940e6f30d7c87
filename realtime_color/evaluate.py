"""``rtcolor eval``: colour pictures and videos as ground truth, colorized from their gray version.

Every figure is reported beside the gray baseline (the same frame with no colour at all), and for
video beside the original's own temporal figures, because a colorizer's flicker only means
something next to the flicker the real footage already has.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import metrics
from .colorizer import Colorizer, gray_rgb
from .media.frames import Picture
from .media.images import read_image
from .pipeline import Pipeline, PipelineConfig, Policy


@dataclass
class ImageScore:
    """Figures for one colour picture: ours vs truth and gray vs truth."""

    path: str
    psnr: float
    psnr_gray: float
    ssim: float
    ssim_gray: float
    ciede2000: float
    ciede2000_gray: float
    colourfulness: float
    colourfulness_truth: float


def score_pair(ours: np.ndarray, gray: np.ndarray, truth: np.ndarray) -> dict:
    """The still-picture metrics of ``ours`` and the gray baseline against ``truth`` (RGB arrays)."""
    return {
        "psnr": metrics.psnr(ours, truth),
        "psnr_gray": metrics.psnr(gray, truth),
        "ssim": metrics.ssim(ours, truth),
        "ssim_gray": metrics.ssim(gray, truth),
        "ciede2000": metrics.ciede2000(ours, truth),
        "ciede2000_gray": metrics.ciede2000(gray, truth),
        "colourfulness": metrics.colourfulness(ours),
        "colourfulness_truth": metrics.colourfulness(truth),
    }


def evaluate_image(path: str | Path, colorizer: Colorizer) -> dict:
    """Turn a colour picture gray (CIE L kept), colorize it, score it."""
    truth = read_image(path)
    if truth.ndim == 2:
        raise ValueError(f"{path} is a gray picture; evaluation needs colour ground truth")
    truth = truth[..., :3]
    gray = metrics.to_gray(truth)
    ours = colorizer.colorize(gray)
    return {"path": str(path), "kind": "image", "frames": 1, **score_pair(ours, gray_rgb(gray, truth.dtype), truth)}


class _VideoScorer:
    """A pipeline sink that scores each colorized picture against the original frame's chroma."""

    def __init__(self, sample_every: int):
        self.sample_every = sample_every
        self.rows: list[dict] = []
        self.sampled: list[dict] = []
        self.ours_t = metrics.TemporalScores()
        self.truth_t = metrics.TemporalScores()
        self.table = None

    def write(self, pic: Picture) -> None:
        from .color import luma_to_L_table

        tu, tv = pic.meta["truth_uv"]
        truth_pic = Picture(y=pic.y, index=pic.index, full_range=pic.full_range, matrix=pic.matrix, u=tu, v=tv)
        truth_pic.subsampling = pic.subsampling
        ours = pic.to_bgr()[..., ::-1]
        truth = truth_pic.to_bgr()[..., ::-1]
        gray = pic.gray_bgr()[..., ::-1]
        self.rows.append({"psnr": metrics.psnr(ours, truth), "psnr_gray": metrics.psnr(gray, truth)})
        if pic.index % self.sample_every == 0:  # SSIM and CIEDE2000 are slow at full HD: sample them
            self.sampled.append(score_pair(ours, gray, truth))
        if self.table is None:
            self.table = luma_to_L_table(pic.full_range)
        lum = self.table[pic.y]
        self.ours_t.add(np.ascontiguousarray(ours), lum)
        self.truth_t.add(np.ascontiguousarray(truth), lum)

    def close(self, complete: bool = True) -> None:
        pass


def evaluate_video(path: str | Path, colorizer: Colorizer, cfg: PipelineConfig, sample_every: int = 10) -> dict:
    """Colorize a colour video from its luma through the full pipeline and score every frame."""
    from .media.video import FileSource

    source = FileSource(path, keep_chroma=True)
    scorer = _VideoScorer(sample_every)
    pipe = Pipeline(source, [scorer], colorizer, cfg, Policy.FILE)
    try:
        stats = pipe.run()
    finally:
        source.close()
    if pipe.error is not None:
        stage, e = pipe.error
        raise RuntimeError(f"{path}: {stage} stage failed: {e}") from e
    if not scorer.rows:
        raise ValueError(f"{path}: no frame could be decoded")
    out = {"path": str(path), "kind": "video", "frames": len(scorer.rows)}
    for key in ("psnr", "psnr_gray"):
        out[key] = float(np.mean([r[key] for r in scorer.rows if np.isfinite(r[key])]))
    for key in ("ssim", "ssim_gray", "ciede2000", "ciede2000_gray", "colourfulness", "colourfulness_truth"):
        out[key] = float(np.mean([r[key] for r in scorer.sampled]))
    ours_t, truth_t = scorer.ours_t.result(), scorer.truth_t.result()
    out.update(
        flicker=ours_t["flicker"],
        flicker_truth=truth_t["flicker"],
        cdc=ours_t["cdc"],
        cdc_truth=truth_t["cdc"],
        keyframes=stats.keyframes,
        scene_cuts=stats.cuts,
        fps=stats.summary()["fps"],
        problems=list(source.problems),
    )
    return out
