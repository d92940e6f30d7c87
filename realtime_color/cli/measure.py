"""Measurement: rtcolor bench and rtcolor eval."""

from __future__ import annotations

from pathlib import Path

import typer

from . import MODEL_HELP, _fail, app, err, out


@app.command()
def bench(
    backends: list[str] = typer.Option(["torch", "onnxruntime"], "--backend", help="Backends to time (repeatable)."),
    sizes: list[str] = typer.Option(["144x256", "288x512"], "--shape", help="HxW network inputs (multiples of 16)."),
    batches: list[int] = typer.Option([1, 4], "--batch", help="Batch sizes (repeatable)."),
    runs: int = typer.Option(7, help="Timed runs per row (the median is reported)."),
    model: Path | None = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    device: str = typer.Option("auto", "--device"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
) -> None:
    """Model-only throughput per backend, size and batch, beside the machine's matmul peak.

    Example: rtcolor bench --backend torch --backend onnxruntime --shape 144x256 --batch 1 --batch 4
    """
    import json

    import torch
    from rich.table import Table

    from ..backends import BackendError, open_backend
    from ..bench import bench_row, machine_info, matmul_peak
    from ..weights import CheckpointError, load_checkpoint

    try:
        shapes = [tuple(int(v) for v in s.lower().split("x")) for s in sizes]
        assert all(len(s) == 2 and s[0] % 16 == 0 and s[1] % 16 == 0 for s in shapes)
    except (ValueError, AssertionError):
        _fail(f"--shape values must look like 144x256 with multiples of 16, got {sizes}")
    try:
        ckpt = load_checkpoint(model)
    except CheckpointError as e:
        _fail(str(e))
    dev = "cuda:0" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device)
    info = machine_info()
    info["matmul_gflops_fp32"] = round(matmul_peak(dev), 1)
    rows = []
    for name in backends:
        try:
            be = open_backend(name, ckpt, device=dev)
        except BackendError as e:
            err.print(f"[yellow]skipped[/] {name}: {e}", highlight=False)
            continue
        for hw in shapes:
            for b in batches:
                rows.append(bench_row(be, ckpt.model, b, hw, runs=runs))
                err.print(
                    f"{rows[-1]['describe']} batch {b} {hw[0]}x{hw[1]}: {rows[-1]['median_ms']} ms", highlight=False
                )
        be.close()
    if as_json:
        out.print_json(json.dumps({"machine": info, "rows": rows}))
        return
    table = Table(title=f"model-only, {info.get('gpu', info['cpu'])}, matmul peak {info['matmul_gflops_fp32']} GFLOP/s")
    for col in ("backend", "precision", "batch", "input", "median ms", "frames/s", "GFLOP/s"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["backend"],
            r["precision"],
            str(r["batch"]),
            f"{r['height']}x{r['width']}",
            f"{r['median_ms']:.1f}",
            f"{r['frames_per_s']:.1f}",
            f"{r['gflop_per_s']:.0f}",
        )
    out.print(table)
