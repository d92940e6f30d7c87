"""Still pictures, training, export and info."""

from __future__ import annotations

from pathlib import Path

import typer

from . import BACKEND_HELP, MODEL_HELP, SIZE_HELP, _colorizer, _fail, app, err, out


@app.command()
def image(
    inputs: list[str] = typer.Argument(..., help="Image files, folders or globs ('photos/*.jpg')."),
    output: Path = typer.Option(..., "-o", "--output", help="Output folder; each result is OUTDIR/<stem>.png."),
    model: Path | None = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    size: int | None = typer.Option(None, "--size", help=SIZE_HELP + " Default: the model's (256)."),
    backend: str = typer.Option("auto", "--backend", help=BACKEND_HELP),
    device: str = typer.Option("auto", "--device", help="cpu, cuda, cuda:N or auto."),
    compare: bool = typer.Option(False, "--compare", help="Write gray | colour side by side."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing outputs (inputs are never overwritten)."),
) -> None:
    """Colorize still images. Colour inputs are turned gray first; 16-bit inputs give 16-bit PNGs.

    Example: rtcolor image old_photos/ scan.tif -o colorized/ --compare
    """
    import numpy as np
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..colorizer import gray_rgb
    from ..media.images import ImageReadError, expand_inputs, read_image, write_image

    paths, unmatched = expand_inputs(inputs)
    failures = 0
    for item in unmatched:
        err.print(f"[red]skipped[/] {item}: no such file, or a folder/glob with no images", highlight=False)
        failures += 1
    if not paths:
        _fail("no input images found")
    if output.exists() and not output.is_dir():
        _fail(f"--output {output} exists and is not a folder")
    colorizer = _colorizer(model, backend, device, size)
    input_set = {p.resolve() for p in paths}
    taken: set[Path] = set()
    done = 0
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err
    ) as bar:
        task = bar.add_task("colorizing", total=len(paths))
        for p in paths:
            dest = output / f"{p.stem}.png"
            try:
                if dest.resolve() in input_set:
                    raise ImageReadError(f"{p}: its output {dest} would overwrite an input; choose another -o")
                if dest.resolve() in taken:
                    raise ImageReadError(f"{p}: another input already wrote {dest} (same file stem)")
                if dest.exists() and not force:
                    raise ImageReadError(f"{p}: {dest} exists; pass --force to overwrite it")
                img = read_image(p)
                result = colorizer.colorize(img)
                if compare:
                    result = np.concatenate([gray_rgb(img, result.dtype), result], axis=1)
                write_image(dest, result)
                taken.add(dest.resolve())
                done += 1
            except (ImageReadError, ValueError, OSError) as e:
                err.print(f"[red]failed[/] {e}", highlight=False)
                failures += 1
            bar.advance(task)
    err.print(f"{done} written to {output}, {failures} failed", highlight=False)
    if failures:
        raise typer.Exit(1)


@app.command()
def train(
    data: list[str] = typer.Argument(..., help="Folders (searched recursively) or files of colour images."),
    out_path: Path = typer.Option(Path("model.safetensors"), "--out", "-o", help="Checkpoint to write (best epoch)."),
    backbone: str = typer.Option(
        "imagenet",
        "--backbone",
        help="Encoder init: imagenet (torchvision VGG16 weights), none, or a local VGG16 state-dict FILE.",
    ),
    epochs: int = typer.Option(20, help="Epochs."),
    repeat: int = typer.Option(8, help="Passes over the training images per epoch (new random crops each pass)."),
    batch_size: int = typer.Option(16, "--batch-size", "-b"),
    crop: int = typer.Option(176, help="Training crop size (multiple of 16)."),
    lr: float = typer.Option(3e-4, help="Peak learning rate (AdamW; warmup, then cosine decay)."),
    freeze_epochs: int = typer.Option(
        -1, "--freeze-epochs", help="Epochs with the encoder frozen; -1: 2 for a pretrained backbone, 0 otherwise."
    ),
    loss: str = typer.Option("mse", help="mse, huber or l1 (on ab). mse targets PSNR directly."),
    weight_decay: float = typer.Option(0.05, "--weight-decay"),
    l_jitter: float = typer.Option(0.15, "--l-jitter", help="Strength of random exposure changes of the input L."),
    cutmix: float = typer.Option(0.5, help="Probability of CutMix per crop."),
    dropout: float = typer.Option(0.1, help="Decoder Dropout2d."),
    min_scale: float = typer.Option(0.15, "--min-scale", help="Smallest crop area fraction."),
    chroma_weight: float = typer.Option(
        0.0, "--chroma-weight", help="Weight of the anti-sepia chroma term (0: off; see MODEL_CARD.md)."
    ),
    val_fraction: float = typer.Option(0.15, "--val-fraction"),
    size: int = typer.Option(256, "--size", help="Inference size stored in the model and used for validation."),
    seed: int = typer.Option(0),
    device: str = typer.Option("auto", help="cpu, cuda, cuda:N or auto."),
    max_minutes: float = typer.Option(
        0.0, "--max-minutes", help="Stop after the epoch that passes this budget (0: none)."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT's .train-state.pt."),
) -> None:
    """Train a colorization model on folders of colour photos.

    Multi-GPU: torchrun --nproc_per_node 4 -m realtime_color.cli train DATA --out m.safetensors
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from ..train import TrainConfig
    from ..train import train as run_train
    from ..weights import CheckpointError

    if crop % 16:
        _fail(f"--crop {crop} must be a multiple of 16 (e.g. {crop - crop % 16 or 16})")
    if out_path.exists() and out_path.is_dir():
        _fail(f"--out {out_path} is a folder; name a .safetensors file")
    cfg = TrainConfig(
        data=list(data),
        out=str(out_path),
        backbone=backbone,
        epochs=epochs,
        repeat=repeat,
        batch_size=batch_size,
        crop=crop,
        lr=lr,
        freeze_epochs=freeze_epochs,
        loss=loss,
        chroma_weight=chroma_weight,
        weight_decay=weight_decay,
        l_jitter=l_jitter,
        cutmix=cutmix,
        dropout=dropout,
        min_scale=min_scale,
        val_fraction=val_fraction,
        inference_size=size,
        seed=seed,
        device=device,
        resume=resume,
        max_minutes=max_minutes,
    )
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err,
            disable=not err.is_terminal,
        ) as bar:
            result = run_train(cfg, log=lambda m: err.print(m, highlight=False), progress=bar)
    except (CheckpointError, FileNotFoundError, ValueError) as e:
        _fail(str(e))
    best = result["best"]
    if best is not None:  # only rank 0 validates
        err.print(
            f"best: val PSNR {best['psnr']:.2f} dB (gray {best['psnr_gray']:.2f}), colourfulness "
            f"{best['colourfulness']:.1f} at chroma gain {best['chroma_gain']:.2f}; wrote {out_path}",
            highlight=False,
        )


@app.command()
def export(
    output: Path = typer.Option(..., "-o", "--output", help="ONNX file to write."),
    model: Path | None = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    fp16: bool = typer.Option(False, "--fp16", help="Bake fp16 into the graph (what TensorRT 11 needs for FP16)."),
    opset: int = typer.Option(17, "--opset", help="ONNX opset."),
) -> None:
    """Export to ONNX (dynamic batch, height, width), check it, and print a parity check vs PyTorch.

    The graph takes normalised L (N, 1, H, W), H and W multiples of 16, and returns ab at half size.
    Example: rtcolor export -o model.onnx --fp16
    """
    from ..export import export_onnx, onnx_parity
    from ..weights import CheckpointError, load_checkpoint

    if output.exists() and output.is_dir():
        _fail(f"-o {output} is a folder; name an .onnx file")
    try:
        ckpt = load_checkpoint(model)
    except CheckpointError as e:
        _fail(str(e))
    precision = "fp16" if fp16 else "fp32"
    path = export_onnx(ckpt.model, output, fp16=fp16, opset=opset)
    result = onnx_parity(ckpt.model, path, precision)
    err.print(f"wrote {path} ({precision}, opset {opset}); {result}", highlight=False)
    if not result.ok:
        raise typer.Exit(1)


@app.command()
def info() -> None:
    """Versions, devices, available backends and execution providers, and the default model."""
    import platform

    import torch

    from .. import __version__
    from ..backends import available
    from ..weights import default_model_path, read_metadata

    out.print(f"rtcolor {__version__}, Python {platform.python_version()}, {platform.machine()}")
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            out.print(f"cuda:{i}: {p.name}, compute capability {p.major}.{p.minor}, {p.total_memory / 2**30:.0f} GiB")
    else:
        out.print(f"no CUDA GPU; CPU with {torch.get_num_threads()} threads")
    for name, note in available().items():
        out.print(f"backend {name}: {note}")
    meta = read_metadata(default_model_path())
    val = meta.get("metrics", {}).get("validation", {})
    out.print(
        f"default model: {default_model_path()} (size {meta.get('inference_size')}, val PSNR "
        f"{val.get('psnr', float('nan')):.2f} dB vs gray {val.get('psnr_gray', float('nan')):.2f})"
    )
