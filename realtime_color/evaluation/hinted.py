"""``rtcolor eval --hints N``: scoring with hints simulated from the ground truth, beside gray and two peers.

Protocol (the same for the network and both peers, so they see exactly the same hints):

* each color picture is turned gray (CIE L kept) and scored against itself, as ``rtcolor eval`` does;
* its hints are drawn by ``training.hint_sim.hints_from_truth`` with a generator seeded by
  ``(seed, crc32 of the file name)``: patches of 1-9 source pixels uniform over the picture, each
  the sRGB color of its patch's mean true Lab. Twenty are drawn and the first N used, so the 5
  hints of a picture include its 2 and its 1;
* figures are means over the pictures of PSNR and CIEDE2000 (scikit-image), beside the gray
  picture's, and each method's seconds per picture (the network's inference, a peer's fill).

The peers fill the same hint channels at the network's input size and are composed with the
full-resolution L like the network's output:

* **nearest**: every pixel takes the color of the nearest hinted pixel (no network);
* **Levin**: Levin, Lischinski and Weiss 2004, "Colorization using Optimization": each unhinted
  pixel's chroma is the weighted mean of its 3x3 neighbors', weights exp(-(dY)^2 / 2 sigma^2) with
  sigma^2 from the local variance of L (as their code does), hinted pixels fixed; the sparse
  linear system is solved with SciPy (``spsolve``).
"""

from __future__ import annotations

import time
import zlib
from pathlib import Path

import numpy as np

from ..runtime.colorizer import (
    Colorizer,
    compose,
    frame_to_L,
    gray_rgb,
    hint_channels,
    inference_shape,
    resize_L,
    unit_to_frame,
)
from . import metrics

COUNTS = (0, 1, 2, 5, 10, 20)
PEERS = ("nearest", "levin")


def simulated_hints(truth: np.ndarray, n: int, name: str, seed: int = 0) -> tuple:
    """The first ``n`` of the 20 (or ``n``, if more) hints the protocol draws for picture ``name``."""
    from ..training.hint_sim import hints_from_truth

    rng = np.random.default_rng([seed, zlib.crc32(Path(name).name.encode())])
    return hints_from_truth(truth, max(20, n), rng)[:n]


def nearest_fill(chan: np.ndarray) -> np.ndarray:
    """Hint channels (3, h, w) -> normalized ab (2, h, w): each pixel the nearest hinted pixel's color."""
    from scipy.ndimage import distance_transform_edt

    mask = chan[2] > 0
    if not mask.any():
        return np.zeros((2, *mask.shape), np.float32)
    iy, ix = distance_transform_edt(~mask, return_distances=False, return_indices=True)
    return chan[:2][:, iy, ix].astype(np.float32)


def levin_fill(lum: np.ndarray, chan: np.ndarray) -> np.ndarray:
    """Levin et al. 2004 on L (h, w) in Lab units and hint channels (3, h, w) -> normalized ab (2, h, w)."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import spsolve

    mask = chan[2] > 0
    h, w = lum.shape
    if not mask.any():
        return np.zeros((2, h, w), np.float32)
    y = lum.astype(np.float64) / 100.0
    pad = np.pad(y, 1, mode="edge")
    valid = np.pad(np.ones((h, w), bool), 1)
    offsets = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
    neigh = np.stack([pad[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] for dy, dx in offsets])
    ok = np.stack([valid[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] for dy, dx in offsets])
    window = np.concatenate([neigh, y[None]])
    inside = np.concatenate([ok, np.ones((1, h, w), bool)])
    count = inside.sum(0)
    mean = (window * inside).sum(0) / count
    var = ((window - mean) ** 2 * inside).sum(0) / count
    # Their code: sigma^2 = 0.6 x the window's variance, at least what puts the nearest neighbor's
    # weight at 0.01, at least 2e-6.
    diff2 = (neigh - y[None]) ** 2
    nearest = np.where(ok, diff2, np.inf).min(0)
    sigma2 = np.maximum(np.maximum(0.6 * var, -nearest / np.log(0.01)), 2e-6)
    wts = np.exp(-diff2 / sigma2[None]) * ok
    wts /= np.maximum(wts.sum(0, keepdims=True), 1e-12)
    idx = np.arange(h * w).reshape(h, w)
    pidx = np.pad(idx, 1, mode="edge")
    free = ~mask
    rows, cols, vals = [idx.ravel()], [idx.ravel()], [np.ones(h * w)]
    for k, (dy, dx) in enumerate(offsets):
        nb = pidx[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
        use = free & ok[k]
        rows.append(idx[use])
        cols.append(nb[use])
        vals.append(-wts[k][use])
    a = sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(h * w, h * w))
    rhs = np.where(mask[None], chan[:2], 0.0).reshape(2, -1).T.astype(np.float64)
    sol = spsolve(a, rhs)
    return sol.T.reshape(2, h, w).astype(np.float32)


def _score(out: np.ndarray, truth: np.ndarray) -> dict:
    return {"psnr": metrics.psnr(out, truth), "ciede2000": metrics.ciede2000(out, truth)}


def evaluate_hinted_image(path: str | Path, colorizer: Colorizer, counts=COUNTS, seed: int = 0, peers=PEERS) -> dict:
    """One color picture, colorized with 0, 1, 2, ... simulated hints (and the peers with the same):
    ``{"path", "gray": {...}, "counts": {n: {"network": {...}, "nearest": {...}, "levin": {...}}}}``."""
    from ..media.sources import read_still

    truth = read_still(path).pixels
    if truth.ndim == 2:
        raise ValueError(f"{path} is a gray picture; evaluation needs color ground truth")
    truth = truth[..., :3]
    if truth.dtype == np.uint16:
        truth = (truth / 257).round().astype(np.uint8)
    gray = metrics.to_gray(truth)
    gray3 = gray_rgb(gray, truth.dtype)
    lum = frame_to_L(gray)[None, None]
    shape = inference_shape(*lum.shape[-2:], colorizer.size)
    small = resize_L(lum, shape)
    out = {"path": str(path), "gray": _score(gray3, truth), "counts": {}}
    for n in counts:
        hints = simulated_hints(truth, n, str(path), seed)
        t = time.perf_counter()
        _, ab = colorizer.analyze([gray], [hints])
        seconds = time.perf_counter() - t
        row = {"network": {**_score(unit_to_frame(compose(lum, ab)[0], np.uint8), truth), "seconds": seconds}}
        chan = hint_channels([hints], shape, lum.shape[-2:])
        chan = np.zeros((1, 3, *shape), np.float32) if chan is None else chan
        for peer in peers:
            t = time.perf_counter()  # the fill alone (the network's row: its inference alone)
            fill = nearest_fill(chan[0]) if peer == "nearest" else levin_fill(small[0, 0], chan[0])
            seconds = time.perf_counter() - t
            row[peer] = {**_score(unit_to_frame(compose(lum, fill[None])[0], np.uint8), truth), "seconds": seconds}
        out["counts"][n] = row
    return out


def summarize_hinted(items: list[dict]) -> dict:
    """Means over pictures: ``{"items", "gray": {...}, "counts": {n: {method: {...}}}}``."""

    def mean(rows: list[dict]) -> dict:
        return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}

    summary = {"items": len(items), "gray": mean([it["gray"] for it in items]), "counts": {}}
    for n in items[0]["counts"]:
        methods = items[0]["counts"][n]
        summary["counts"][n] = {m: mean([it["counts"][n][m] for it in items]) for m in methods}
    return summary
