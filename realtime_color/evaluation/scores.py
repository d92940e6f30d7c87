"""Scores as types: what a picture, a validation and a calibration cell measure, one name each.

Every figure sits beside its gray baseline (the same picture with no color at all): a PSNR means
little alone. Checkpoint headers and JSON reports hold these as dicts (``to_dict``); headers
written before 0.2 spelled CIEDE2000 ``ciede`` in calibration sweeps, which ``from_dict`` reads.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields


def _known(cls, d: dict) -> dict:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in d.items() if k in names}


@dataclass(frozen=True)
class PictureScores:
    """One colorized picture against its truth, beside the gray baseline (``rtcolor eval``)."""

    psnr: float
    psnr_gray: float
    ssim: float
    ssim_gray: float
    ciede2000: float
    ciede2000_gray: float
    colorfulness: float
    colorfulness_truth: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class GainScores:
    """Means over validation pictures at one chroma gain (training's and adapt's validation)."""

    psnr: float
    psnr_gray: float
    colorfulness: float
    colorfulness_truth: float
    luma_psnr: float

    def describe(self) -> str:
        return (
            f"val PSNR {self.psnr:.2f} dB (gray {self.psnr_gray:.2f}), colorfulness {self.colorfulness:.1f} "
            f"(truth {self.colorfulness_truth:.1f})"
        )


@dataclass(frozen=True)
class Validation(GainScores):
    """One validation of a training run: the scores at the gain its rule chose, and when."""

    chroma_gain: float = 1.0
    epoch: int = 0  # 0: the starting checkpoint, before any training
    train_loss: float | None = None
    frozen: bool = False
    steps: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Validation:
        return cls(**_known(cls, d))


@dataclass(frozen=True)
class CalibrationRow:
    """One (temperature, gain) cell of a calibration sweep: means over the pictures, the PSNR
    gain's 95% bootstrap interval, and (``per_picture``) each picture's PSNR gain and CIEDE2000."""

    psnr_gain: float
    ciede2000: float
    ciede2000_gray: float
    colorfulness: float
    psnr_gain_95: tuple[float, float] = (0.0, 0.0)
    above_gray: int = 0
    pictures: int = 0
    per_picture: dict = field(default_factory=dict, compare=False)

    def to_dict(self, per_picture: bool = True) -> dict:
        d = asdict(self)
        d["psnr_gain_95"] = list(self.psnr_gain_95)
        if not per_picture:
            del d["per_picture"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> CalibrationRow:
        d = dict(d)
        for old, new in (("ciede", "ciede2000"), ("ciede_gray", "ciede2000_gray")):  # headers before 0.2
            if old in d:
                d.setdefault(new, d.pop(old))
        if "psnr_gain_95" in d:
            d["psnr_gain_95"] = tuple(d["psnr_gain_95"])
        return cls(**_known(cls, d))
