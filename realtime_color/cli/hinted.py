"""``rtcolor eval --hints N``: the table of figures per hint count (``evaluation.hinted`` scores)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .app import _fail, _log, _note, out


def parse_counts(text: str) -> tuple[int, ...]:
    """``"10"`` or ``"0,1,2,5,10,20"`` -> the hint counts, each 0 to 1000."""
    try:
        counts = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        counts = ()
    if not counts or any(not 0 <= n <= 1000 for n in counts):
        _fail(f"--hints {text!r}: give a count of hints per picture (0-1000) or a list such as 0,1,2,5,10,20")
    return tuple(dict.fromkeys(counts))


def eval_hinted(
    files: list[Path],
    colorizer,
    text: str,
    seed: int,
    peers: bool,
    as_json: bool,
    failures: int = 0,
    timing: bool = False,
) -> None:
    """Score ``files`` at each hint count of ``text``; print a table (with ``timing``, seconds per
    picture of each method: what ``rtcolor bench --hints`` shows) or JSON."""
    from rich.table import Table

    from ..evaluation.hinted import PEERS, evaluate_hinted_image, summarize_hinted
    from ..media.images import IMAGE_SUFFIXES, ImageReadError

    counts = parse_counts(text)
    if any(counts) and not getattr(colorizer.backend, "takes_hints", False):
        _fail("--hints: this model takes no hints (it was trained without hint inputs); use a hint-capable model")
    items = []
    for f in files:
        if f.suffix.lower() not in IMAGE_SUFFIXES:
            _note("skipped", "yellow", f"{f}: --hints scores pictures; score videos without it")
            continue
        try:
            r = evaluate_hinted_image(f, colorizer, counts, seed, PEERS if peers else ())
        except (ImageReadError, ValueError, RuntimeError) as e:
            _note("failed", "red", f"{e}")
            failures += 1
            continue
        items.append(r)
        last = r["counts"][counts[-1]]["network"]
        _log(f"{f}: {counts[-1]} hints {last['psnr']:.2f} dB (gray {r['gray']['psnr']:.2f})")
    if not items:
        _fail("no picture could be evaluated")
    summary = summarize_hinted(items)
    summary.update(seed=seed, failed=failures)
    if as_json:
        out.print_json(json.dumps({**summary, "items_detail": items}, default=float))
    else:
        gray = summary["gray"]
        methods = ["network", *(PEERS if peers else ())]
        table = Table(
            title=f"rtcolor eval --hints ({summary['items']} pictures, seed {seed}; gray "
            f"{gray['psnr']:.2f} dB, CIEDE2000 {gray['ciede2000']:.2f})"
        )
        table.add_column("hints")
        for m in methods:
            table.add_column(f"{m} PSNR dB (vs gray)")
            table.add_column(f"{m} CIEDE2000 (x gray)")
            if timing:
                table.add_column(f"{m} s/picture")
        for n, row in summary["counts"].items():
            cells = [str(n)]
            for m in methods:
                cells.append(f"{row[m]['psnr']:.2f} ({row[m]['psnr'] - gray['psnr']:+.2f})")
                cells.append(f"{row[m]['ciede2000']:.2f} ({row[m]['ciede2000'] / gray['ciede2000']:.2f}x)")
                if timing:
                    cells.append(f"{row[m]['seconds']:.3f}")
            table.add_row(*cells)
        out.print(table)
    if failures:
        raise typer.Exit(1)
