"""Calibration: choose a model's temperature and chroma gain on validation pictures, by a rule
fixed in advance (``rtcolor calibrate``; the rules are ``evaluation/rules.py``'s).

A model with a binned head predicts a distribution over ab and outputs its annealed mean at the
temperature T stored in it: T = 1 is the mean (what a squared error gives), lower T commits to
the likeliest hue. This sweeps T x chroma gain (the network runs once per picture and T; each
gain only rescales its ab) and reports per cell the mean PSNR gain over gray with its 95%
interval, CIEDE2000 beside gray's and colorfulness. A regression head (``--ab-bins 0``) has no
temperature: its gains alone are swept. The temperature is passed to the network for each run
(``Readout``), never written into the model it was given.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from ..evaluation import metrics
from ..evaluation.evaluate import gain_interval
from ..evaluation.rules import CalibrationRule
from ..evaluation.scores import CalibrationRow
from ..media.images import read_image
from ..model.network import Readout

Cell = tuple  # (temperature or None, chroma gain)


def grid_of(rule: CalibrationRule, binned: bool, temperatures=None, gains=None) -> list[Cell]:
    """The cells a sweep scores: the rule's grid, or the temperatures and gains given; a
    regression head's cells have no temperature."""
    temps = tuple(temperatures or rule.temperatures) if binned else (None,)
    return [(t, g) for t in temps for g in (gains or rule.gains)]


def sweep(model, size: int, paths: list, grid: list[Cell], estimator: str | None = None, device="cpu", log=None):
    """``{cell: CalibrationRow}`` over the pictures ``paths``: ``model`` runs once per picture and
    temperature, read out with ``estimator`` (default: the model's own)."""
    from ..runtime.backends.pytorch import TorchBackend
    from ..runtime.colorizer import Colorizer, compose, unit_to_frame

    acc: dict = {k: [] for k in grid}
    temps = sorted({t for t, _ in grid}, key=lambda t: -1 if t is None else -t)
    colorizers = {
        t: Colorizer(
            TorchBackend(model, device=device, precision="fp32", readout=_readout(model, t, estimator)), size=size
        )
        for t in temps
    }
    for n, path in enumerate(paths, 1):
        img = read_image(path)[..., :3]
        gray = metrics.to_gray(img)
        gray3 = None
        for t in temps:
            lum, ab = colorizers[t].analyze([gray])
            if gray3 is None:
                gray3 = unit_to_frame(compose(lum, np.zeros_like(ab))[0], img.dtype)
                pg, cg = metrics.psnr(gray3, img), metrics.ciede2000(gray3, img)
            for k in (k for k in grid if k[0] == t):
                out = unit_to_frame(compose(lum, ab * np.float32(k[1]))[0], img.dtype)
                acc[k].append((metrics.psnr(out, img) - pg, metrics.ciede2000(out, img), cg, metrics.colorfulness(out)))
        if log:
            log(f"{n}/{len(paths)} {path}")
    rows = {}
    for k, r in acc.items():
        m = np.array(r)
        lo, hi = gain_interval([{"psnr": g, "psnr_gray": 0.0} for g in m[:, 0]])["psnr_gain_interval"]
        mean = m.mean(0)
        rows[k] = CalibrationRow(
            psnr_gain=float(mean[0]),
            ciede2000=float(mean[1]),
            ciede2000_gray=float(mean[2]),
            colorfulness=float(mean[3]),
            psnr_gain_95=(float(lo), float(hi)),
            above_gray=int((m[:, 0] > 0).sum()),
            pictures=len(m),
            per_picture={"psnr_gain": m[:, 0].tolist(), "ciede2000": m[:, 1].tolist()},
        )
    return rows


def _readout(model, temperature: float | None, estimator: str | None) -> Readout | None:
    if temperature is None:  # a regression head: nothing to read out
        return None
    return Readout(temperature, estimator or model.config.estimator)


def cell_name(cell: Cell) -> str:
    """How a cell is named in JSON and headers: "T,gain" ("gain" for a regression head)."""
    t, g = cell
    return f"{g}" if t is None else f"{t},{g}"


def write_calibrated(ckpt, out: Path, cell: Cell, record: dict, estimator: str | None = None) -> Path:
    """A copy of ``ckpt`` at ``out`` with the chosen temperature (and estimator) and gain, and the
    calibration's ``record`` under its metrics; the checkpoint it was read from is left as it is."""
    from ..model.weights import save_checkpoint

    t, gain = cell
    config = ckpt.model.config
    if t is not None:
        config = replace(config, temperature=t, estimator=estimator or config.estimator)
    meta = {k: v for k, v in ckpt.meta.items() if k != "sha256"}
    meta["chroma_gain"] = gain
    meta.setdefault("metrics", {})["temperature_calibration" if t is not None else "gain_calibration"] = record
    return save_checkpoint(ckpt.model, out, meta, half=meta.get("dtype") == "float16", config=config)
