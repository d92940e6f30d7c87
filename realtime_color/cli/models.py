"""Commands that make a model from models: calibrate its temperature and gain, average several.

Both write a new checkpoint (``-o/--output``), never the one they read.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ..errors import ConfigError
from ..evaluation.rules import CALIBRATION_RULES, DEFAULT_FALLBACK_CIEDE2000
from .app import _check_output, _log, app, out


def _numbers(option: str, text: str | None, count: int | None = None) -> tuple[float, ...] | None:
    """``"0.6,1.2"`` -> (0.6, 1.2); a bad list is refused naming ``option``."""
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not values or (count is not None and len(values) != count) or not all(v > 0 for v in values):
        want = f"{count} positive numbers" if count else "positive numbers"
        raise ConfigError([(option, text, f"{want}, comma-separated (e.g. 0.6,1.2)")])
    return values


@app.command()
def calibrate(
    model: Path = typer.Argument(..., help="Checkpoint to calibrate (read, never written)."),
    pictures: list[str] = typer.Argument(..., help="Validation pictures (files or folders) it was not trained on."),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="Write the calibrated model here; without it, report the sweep only."
    ),
    rule: str = typer.Option(
        "psnr",
        "--rule",
        help="psnr: the highest PSNR gain among cells colorful enough, no worse than gray in CIEDE2000 and "
        "+0.2 dB over gray; ciede: the lowest CIEDE2000 with +0.5 dB (each rule's text is stored with the pick).",
    ),
    fallback_ciede2000: float = typer.Option(
        DEFAULT_FALLBACK_CIEDE2000,
        "--fallback-ciede2000",
        help="--rule psnr, when no cell meets its bars: the highest PSNR gain with CIEDE2000 at most this.",
    ),
    temperatures: str | None = typer.Option(None, "--temperatures", help="T values instead of the rule's: 0.6,1.0"),
    gains: str | None = typer.Option(None, "--gains", help="Chroma gains instead of the rule's: 1.0,1.2"),
    only: str | None = typer.Option(None, "--only", help="Score one cell T,GAIN only (e.g. on a test set)."),
    estimator: str | None = typer.Option(
        None, "--estimator", help="mean or median (default: the model's own); stored with the pick."
    ),
    device: str = typer.Option("cpu", "--device", help="Where the network runs (fp32): cpu, cuda."),
    json_path: Path | None = typer.Option(None, "--json", help="Write every cell, and each picture's figures, here."),
    force: bool = typer.Option(False, "--force", help="Replace an existing OUTPUT."),
) -> None:
    """Choose a model's temperature and chroma gain on validation pictures, by a rule fixed in advance.

    A binned model's temperature x gain grid is swept (a regression head: its gains); per cell the
    mean PSNR gain over gray with its 95% interval, CIEDE2000 beside gray's and colorfulness. Run it
    after training, on pictures the model was not trained on:

    rtcolor calibrate model.safetensors valset/ -o calibrated.safetensors
    """
    from ..media.images import expand_inputs
    from ..model.network import ESTIMATORS  # PyTorch: this command needs it, the lean ones must not
    from ..model.weights import load_checkpoint
    from ..training.calibration import cell_name, grid_of, sweep, write_calibrated

    if rule not in CALIBRATION_RULES:
        raise ConfigError([("rule", rule, " or ".join(CALIBRATION_RULES))])
    if estimator is not None and estimator not in ESTIMATORS:
        raise ConfigError([("estimator", estimator, " or ".join(ESTIMATORS))])
    own_grid = not (only or temperatures or gains)
    if output is not None and not own_grid:  # said before the sweep, not after it
        raise ConfigError(
            [
                (
                    "output",
                    str(output),
                    "unset with --only, --temperatures or --gains: only a pick from the rule's own grid is written",
                )
            ]
        )
    if output is not None:
        _check_output(output, "--output", ".safetensors", force, inputs=(model,))
    chosen_rule = CALIBRATION_RULES[rule]
    temps, gain_list = _numbers("temperatures", temperatures), _numbers("gains", gains)
    cell = _numbers("only", only, 2)
    paths, _ = expand_inputs(list(pictures))
    ckpt = load_checkpoint(model)
    binned = bool(ckpt.model.config.ab_bins)
    grid = [(cell[0] if binned else None, cell[1])] if cell else grid_of(chosen_rule, binned, temps, gain_list)
    rows = sweep(ckpt.model, ckpt.inference_size, paths, grid, estimator, device, log=_log)
    used = estimator or ckpt.model.config.estimator
    out.print(f"estimator: {used}" if binned else "regression head: gains only", highlight=False)
    out.print(
        f"    T  gain  PSNR gain (95%)           CIEDE2000 (gray)  colorfulness  above gray  [{len(paths)} pictures]",
        highlight=False,
    )
    for (t, g), r in rows.items():
        lo, hi = r.psnr_gain_95
        out.print(
            f"{'-' if t is None else f'{t:5.2f}':>5}  {g:4.2f}  {r.psnr_gain:+.3f} ({lo:+.2f} to {hi:+.2f})  "
            f"{r.ciede2000:.2f} ({r.ciede2000_gray:.2f})     {r.colorfulness:5.1f}         {r.above_gray}",
            highlight=False,
        )
    pick, full = chosen_rule.pick(rows, fallback_ciede2000)
    text = chosen_rule.text(fallback_ciede2000)
    said = "nothing" if pick is None else (f"gain {pick[1]}" if pick[0] is None else f"T {pick[0]}, gain {pick[1]}")
    out.print(f"rule ({text}) picks: {said}" + (" (meets every bar)" if full else ""), highlight=False)
    if json_path is not None:
        doc = {
            "rule": text,
            "estimator": used,
            "rows": {cell_name(k): v.to_dict() for k, v in rows.items()},
            "chosen": list(pick) if pick else None,
            "meets_bars": full,
        }
        json_path.write_text(json.dumps(doc, indent=1))
    if output is not None and pick is not None:
        record = {
            "rule": text,
            "estimator": used,
            "meets_bars": full,
            "pictures": len(paths),
            "sweep": {cell_name(k): v.to_dict(per_picture=False) for k, v in rows.items()},
        }
        write_calibrated(ckpt, output, pick, record, estimator)
        _log(f"wrote {output}: {said}")
    elif output is not None:
        _log(f"nothing written: no cell met the rule ({text})")


@app.command()
def average(
    checkpoints: list[Path] = typer.Argument(..., help="Checkpoints of one network (same architecture and init)."),
    output: Path = typer.Option(..., "-o", "--output", help="The averaged checkpoint to write."),
    weights: str | None = typer.Option(
        None, "--weights", help="Each checkpoint's share, comma-separated (relative; default: equal), e.g. 3,1,1."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing OUTPUT (never one of the inputs)."),
) -> None:
    """Average the weights of checkpoints of one network ("model soup").

    Runs of one recipe from one checkpoint (other --seed, one --split-seed) average into a model
    better than each; it keeps the first's header but not its figures: calibrate it before use.

    rtcolor average e2.safetensors e3.safetensors -o soup.safetensors
    """
    from ..training.averaging import average_checkpoints

    _check_output(output, "--output", ".safetensors", force, inputs=tuple(checkpoints))
    shares = None
    if weights is not None:  # refused as typed, before any checkpoint is read
        try:
            shares = [float(w) for w in weights.split(",")]
        except ValueError:
            shares = []
        if len(shares) != len(checkpoints) or not all(w > 0 for w in shares):
            raise ConfigError([("weights", weights, f"{len(checkpoints)} positive numbers, e.g. 3,1,1")])
    average_checkpoints(list(checkpoints), output, shares)
    _log(f"wrote {output}: the {'weighted ' if shares else ''}mean of {len(checkpoints)} checkpoints")
