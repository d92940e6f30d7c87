"""Selection rules: how a chroma gain, a best epoch and a calibration cell are chosen.

Each rule is written down before the models it chooses are scored (MODEL_CARD.md), so each is an
object that both chooses and prints its own text; the text is stored in the checkpoint beside
what it chose. ``rtcolor train`` and ``rtcolor adapt`` choose with ``GainRule`` (the chroma gain of
each validation, and the best epoch), ``rtcolor calibrate`` with a ``CalibrationRule``.
Kept free of PyTorch and NumPy: pure functions of the scores.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass

from .scores import CalibrationRow, GainScores


@dataclass(frozen=True)
class GainRule:
    """The highest validation PSNR among gains whose output is colorful enough; when none is, the
    most colorful gain. Between epochs likewise: a colorful enough epoch beats one that is not,
    then the higher PSNR wins."""

    min_colorfulness: float = 12.0

    def text(self) -> str:
        if self.min_colorfulness <= 0:
            return "highest validation PSNR"
        return f"highest validation PSNR with colorfulness >= {self.min_colorfulness:g}; none: the most colorful"

    def pick_gain(self, rows: Mapping[float, GainScores]) -> float:
        ok = {g: r for g, r in rows.items() if r.colorfulness >= self.min_colorfulness}
        if ok:
            return max(ok, key=lambda g: ok[g].psnr)
        return max(rows, key=lambda g: rows[g].colorfulness)

    def better(self, val: GainScores, best: GainScores | None) -> bool:
        """Whether the validation ``val`` beats the best so far."""
        if best is None:
            return True
        ok, best_ok = val.colorfulness >= self.min_colorfulness, best.colorfulness >= self.min_colorfulness
        if ok != best_ok:
            return ok
        return val.psnr > best.psnr


@dataclass(frozen=True)
class CalibrationRule:
    """A rule choosing a binned model's temperature and chroma gain (a regression head: its gain)
    on validation pictures: among the grid's cells with colorfulness >= ``min_colorfulness``,
    CIEDE2000 no higher than gray's and a PSNR gain over gray of ``min_psnr_gain`` dB or more,
    the best by ``objective``; when none qualifies, the ``fallback``."""

    name: str
    temperatures: tuple[float, ...]
    gains: tuple[float, ...]
    min_psnr_gain: float
    objective: str  # "psnr": the highest PSNR gain; "ciede2000": the lowest CIEDE2000 (ties: higher PSNR)
    min_colorfulness: float = 20.0
    tie: float = 0.005  # CIEDE2000 within this of the lowest counts as a tie
    fallback: bool = False  # none qualifying: the highest PSNR gain with CIEDE2000 <= fallback_ciede2000

    def text(self, fallback_ciede2000: float | None = None) -> str:
        bars = (
            f"colorfulness >= {self.min_colorfulness:g}, CIEDE2000 <= gray's and PSNR >= gray + "
            f"{self.min_psnr_gain:g} dB"
        )
        if self.objective == "psnr":
            head = f"highest validation PSNR gain with {bars}"
        else:
            head = f"lowest validation CIEDE2000 with {bars} (within {self.tie:g}: the higher PSNR gain)"
        if self.fallback and fallback_ciede2000 is not None:
            return f"{head}; else the highest with CIEDE2000 <= {fallback_ciede2000:g}"
        return head if self.fallback else f"{head}; none: no pick"

    def qualifies(self, r: CalibrationRow) -> bool:
        return (
            r.colorfulness >= self.min_colorfulness
            and r.ciede2000 <= r.ciede2000_gray
            and r.psnr_gain >= self.min_psnr_gain
        )

    def pick(
        self, rows: Mapping[Hashable, CalibrationRow], fallback_ciede2000: float | None = None
    ) -> tuple[Hashable | None, bool]:
        """(the chosen cell, whether it met every bar); (None, False) when nothing is eligible."""
        ok = [k for k, r in rows.items() if self.qualifies(r)]
        if ok and self.objective == "ciede2000":
            best = min(rows[k].ciede2000 for k in ok)
            near = [k for k in ok if rows[k].ciede2000 <= best + self.tie]
            return max(near, key=lambda k: rows[k].psnr_gain), True
        if ok:
            return max(ok, key=lambda k: rows[k].psnr_gain), True
        if not self.fallback or fallback_ciede2000 is None:
            return None, False
        fall = [k for k, r in rows.items() if r.ciede2000 <= fallback_ciede2000]
        return (max(fall, key=lambda k: rows[k].psnr_gain) if fall else None), False


# The two calibration rules, each fixed before the models it chose were scored (MODEL_CARD.md).
CALIBRATION_RULES = {
    "psnr": CalibrationRule(
        "psnr", (1.0, 0.6, 0.38, 0.25), (0.5, 0.65, 0.8, 1.0, 1.2), min_psnr_gain=0.2, objective="psnr", fallback=True
    ),
    "ciede": CalibrationRule(
        "ciede", (1.0, 0.6, 0.38), (0.8, 1.0, 1.2, 1.5, 1.8), min_psnr_gain=0.5, objective="ciede2000"
    ),
}
DEFAULT_FALLBACK_CIEDE2000 = 10.70  # the psnr rule's fallback: the CIEDE2000 of the model it replaced
