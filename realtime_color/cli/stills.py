"""Still pictures, training, export and info."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from .app import (
    BACKEND_OPTION,
    DEVICE_OPTION,
    MODEL_OPTION,
    REFERENCE_OPTION,
    SATURATION_OPTION,
    SIZE_OPTION,
    _check_output,
    _check_saturation,
    _colorizer,
    _fail,
    _log,
    _note,
    _references,
    app,
    err,
    out,
)
from .hints import HINTS_HELP, check_takes_hints, image_hints

ENGINE_DIR_HELP = (
    "Where TensorRT engines live. Default: $RTCOLOR_ENGINE_DIR, else the per-user cache "
    "($XDG_CACHE_HOME or ~/.cache)/rtcolor/engines, found from any working directory."
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
    compare: bool = typer.Option(False, "--compare", help="Write gray | color side by side."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing outputs (inputs are never overwritten)."),
    references: list[Path] | None = REFERENCE_OPTION,
    hints: Path | None = typer.Option(
        None,
        "--hints",
        help=HINTS_HELP + ". The same file for every picture, or a folder of <stem>.json, one per picture "
        "(a picture without one gets no hints).",
    ),
    saturation: float | None = SATURATION_OPTION,
) -> None:
    """Colorize still images. Color inputs are turned gray first; 16-bit inputs give 16-bit PNGs.

    A picture whose EXIF orientation says it is shown turned (phone photos; JPEG, PNG, WebP, TIFF)
    is read upright, as viewers show it, and written upright at that size, with no orientation tag
    (so no viewer turns it again).

    Examples:
      rtcolor image old_photos/ scan.tif -o colorized/ --compare
      rtcolor image night.png -o out/ --reference day.png      (a still of the same view)
      rtcolor image portrait.png -o out/ --hints portrait.json  (the coat is red: {"x": .4, "y": .7, ...})
      rtcolor image scans/ -o out/ --hints scans_hints/         (scans_hints/<stem>.json per picture)
    """
    import numpy as np
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..media.images import ALPHA_SUFFIXES, IMAGE_SUFFIXES, ImageReadError, expand_inputs, write_image
    from ..media.outputs import Inputs, OutputError, check_folder, check_output
    from ..media.sources import read_still
    from ..runtime.colorizer import gray_rgb

    _check_saturation(saturation)
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
    refs = _references(references)
    per_picture = image_hints(hints, paths) if hints is not None else {}  # all checked before the model loads
    if hints is not None:
        check_takes_hints(model)
    colorizer = _colorizer(model, backend, device, size, saturation)
    colorizer.references = refs
    input_set = Inputs(paths)
    taken: set[Path] = set()
    done = 0
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err
    ) as bar:
        task = bar.add_task("colorizing", total=len(paths))
        for p in paths:
            dest = output if to_file else output / f"{p.stem}.png"
            try:
                if input_set.holding(dest) is not None:
                    raise ImageReadError(f"{p}: {Inputs.message(dest, input_set.holding(dest), 'its output')}")
                if dest.resolve() in taken:
                    raise ImageReadError(f"{p}: another input already wrote {dest} (same file stem)")
                if dest.exists() and not force:
                    raise ImageReadError(f"{p}: {dest} exists; pass --force to overwrite it")
                pic = read_still(p)  # the picture as decoded, 8 or 16 bits, and its transparency
                img, alpha = pic.pixels, pic.alpha
                result = colorizer.colorize(img, hints=per_picture.get(p, ()))
                if compare:
                    result = np.concatenate([gray_rgb(img, result.dtype), result], axis=1)
                    alpha = None if alpha is None else np.concatenate([alpha, alpha], axis=1)
                if alpha is not None and dest.suffix.lower() not in ALPHA_SUFFIXES:
                    _note("warning", "yellow", f"{p}: its transparency is dropped ({dest.suffix} has none; write .png)")
                write_image(dest, result, alpha)  # color for the picture, its transparency passed through
                taken.add(dest.resolve())
                done += 1
            except (ImageReadError, ValueError, OSError) as e:  # ReferencePictureError too: another view
                _note("failed", "red", f"{p}: {e}" if str(p) not in str(e) else str(e))
                failures += 1
            bar.advance(task)
    _log(f"{done} written to {output}, {failures} failed")
    if failures:
        raise typer.Exit(1)


@app.command()
def export(
    output: Path = typer.Option(..., "-o", "--output", help="ONNX file to write."),
    model: Path | None = MODEL_OPTION,
    fp16: bool = typer.Option(False, "--fp16", help="Bake fp16 into the graph (what TensorRT 11 needs for FP16)."),
    opset: int = typer.Option(17, "--opset", help="ONNX opset."),
    force: bool = typer.Option(False, "--force", help="Replace an existing output file."),
) -> None:
    """Export to ONNX (dynamic batch, height, width), check it, and print a parity check vs PyTorch.

    The graph takes normalized L (N, 1, H, W), H and W multiples of 16, and returns ab at half size.
    The file's metadata_props name the source model (sha256, inference size, chroma gain, normalization).
    Example: rtcolor export -o model.onnx --fp16
    """
    from ..model.checkpoint import default_model_path
    from ..model.weights import load_checkpoint
    from ..runtime.export import export_onnx, onnx_parity
    from ..runtime.onnx_meta import export_props

    _check_output(output, "-o", ".onnx", force, inputs=(model or default_model_path(),))
    ckpt = load_checkpoint(model)
    precision = "fp16" if fp16 else "fp32"
    if opset < 11:
        _fail(f"--opset {opset} is too old; use 11 or newer (17 by default, what TensorRT 10 and 11 read)")
    try:
        path = export_onnx(ckpt.model, output, fp16=fp16, opset=opset, props=export_props(ckpt, precision))
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
    engine_dir: Path | None = typer.Option(None, "--engine-dir", help=ENGINE_DIR_HELP + " Also the timing cache."),
    workspace: float = typer.Option(4.0, "--workspace", help="Builder workspace in GiB."),
) -> None:
    """Build a TensorRT engine for this GPU (TensorRT 10.x / JetPack 6, or 11.x), then check it.

    The engine goes into the engine cache, found from any folder (colorize, stream, image and eval
    use it with --backend auto or tensorrt). The file name and a JSON sidecar hold the cache key (model
    sha256, TensorRT version, GPU and compute capability, precision, min/opt/max shapes); a timing
    cache in the engine folder speeds up rebuilds.
    After the build the engine is inspected (is it really FP16?) and compared with PyTorch.

    Example: rtcolor build-engine --fp16 --max-shape 4x288x512
    """
    from ..model.weights import load_checkpoint
    from ..runtime.engine import Profile, engine_parity, parse_shape
    from ..runtime.engine import build_engine as run_build

    try:
        profile = Profile(parse_shape(min_shape), parse_shape(opt_shape), parse_shape(max_shape))
    except ValueError as e:
        _fail(str(e))
    ckpt = load_checkpoint(model)
    plan = run_build(ckpt, fp16=fp16, profile=profile, engine_dir=engine_dir, workspace_gb=workspace, log=_log)
    result = engine_parity(ckpt, plan)
    _log(f"{plan.name}: {result}")
    if not result.ok:
        raise typer.Exit(1)


@app.command()
def info(
    engine_dir: Path | None = typer.Option(None, "--engine-dir", help=ENGINE_DIR_HELP),
) -> None:
    """Versions, devices, available backends and execution providers, the engine cache, and the default model."""
    import os
    import platform

    from .. import __version__
    from ..model.checkpoint import default_model_path, read_metadata
    from ..runtime.backends import available, cuda_available

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
    from ..runtime.backends.trt import default_engine_dir
    from ..runtime.engine import list_engines

    folder = engine_dir or default_engine_dir()
    engines = list_engines(folder)
    out.print(f"engine cache: {escape(str(folder))}", highlight=False)
    if not engines:
        out.print("engines: none yet (build one with `rtcolor build-engine` on a GPU with TensorRT)")
    for e in engines:
        m = e["meta"]
        out.print(
            f"engine {e['engine']}: {m.get('precision')} for {m.get('gpu')} (sm {m.get('compute_capability')}, "
            f"TensorRT {m.get('tensorrt')}), max {m.get('profile', {}).get('max')}: {e['status']}"
        )
    meta = read_metadata(default_model_path())
    mc = meta.get("model_config", {})
    head = (
        f"{mc['ab_bins']}x{mc['ab_bins']} ab bins, their {mc.get('estimator', 'mean')} at T {mc.get('temperature')}"
        if mc.get("ab_bins")
        else "ab"
    )
    out.print(
        f"default model: {default_model_path()} (size {meta.get('inference_size')}, predicts {head}, chroma gain "
        f"{meta.get('chroma_gain', 1.0)}, {_validation_figures(meta)})"
    )


def _validation_figures(meta: dict) -> str:
    """The checkpoint's validation figures at the temperature and gain it runs with: the calibration
    sweep's row where one was stored, else the training's best epoch (at its own gain)."""
    metrics = meta.get("metrics", {})
    calibration = metrics.get("temperature_calibration", {})
    mc = meta.get("model_config", {})
    row = None  # a sweep of another estimator says nothing of this one
    if calibration.get("estimator", "mean") == mc.get("estimator", "mean"):
        row = calibration.get("sweep", {}).get(f"{mc.get('temperature')},{meta.get('chroma_gain', 1.0)}")
    if row:
        from ..evaluation.scores import CalibrationRow

        r = CalibrationRow.from_dict(row)  # either spelling: headers before 0.2 say "ciede"
        return (
            f"validation {r.psnr_gain:+.2f} dB over gray, CIEDE2000 {r.ciede2000:.2f} (gray "
            f"{r.ciede2000_gray:.2f}), colorfulness {r.colorfulness:.1f} on {r.pictures} pictures"
        )
    val = metrics.get("validation", {})
    return f"val PSNR {val.get('psnr', float('nan')):.2f} dB vs gray {val.get('psnr_gray', float('nan')):.2f}"
