"""Measurement: rtcolor bench and rtcolor eval."""

from __future__ import annotations

from pathlib import Path

import typer

from ..video.temporal import DEFAULT_K, TemporalConfig
from .app import (
    BACKEND_OPTION,
    DEVICE_OPTION,
    MODEL_OPTION,
    SATURATION_OPTION,
    SIZE_OPTION,
    _check_saturation,
    _colorizer,
    _fail,
    _log,
    _note,
    app,
    out,
)


@app.command()
def bench(
    backends: list[str] = typer.Option(
        ["torch", "onnxruntime", "onnxruntime-int8"], "--backend", help="Backends to time (repeatable)."
    ),
    sizes: list[str] = typer.Option(
        ["256x144", "512x288"], "--net-size", help="WxH network inputs, as --resolution (multiples of 16; repeatable)."
    ),
    old_shapes: list[str] = typer.Option([], "--shape", hidden=True, help="HxW network inputs (before 0.2)."),
    batches: list[int] = typer.Option([1, 4], "--batch-size", help="Batch sizes (repeatable)."),
    runs: int = typer.Option(7, help="Timed runs per row (the median is reported)."),
    model: Path | None = MODEL_OPTION,
    device: str = typer.Option("auto", "--device"),
    e2e: bool = typer.Option(True, "--e2e/--no-e2e", help="Also time the whole video job on a generated clip."),
    clip: Path | None = typer.Option(None, "--clip", help="Video for the end-to-end rows (default: a generated one)."),
    resolution: str = typer.Option("1280x720", "--resolution", help="WxH of the generated clip."),
    seconds: float = typer.Option(10.0, "--seconds", help="Length of the generated clip (30 fps)."),
    keyframe_interval: int = typer.Option(DEFAULT_K, "--keyframe-interval", "-k", help="Keyframe interval of our row."),
    peers: bool = typer.Option(True, "--peers/--no-peers", help="Time the Zhang et al. network (OpenCV DNN, ORT)."),
    naive_frames: int = typer.Option(30, "--naive-frames", help="Frames timed for the slow frame-by-frame rows."),
    whole: int = typer.Option(
        3,
        "--whole-runs",
        help="Whole-process runs (startup included; default model, auto backend): image, colorize, transcode; 0: none",
    ),
    cameras: list[int] = typer.Option(
        [], "--cameras", help="Also run N paced generated cameras through one stream process (repeatable: 1 2 4)."
    ),
    camera_fps: float = typer.Option(15.0, "--camera-fps", help="Frame rate of each generated camera."),
    camera_source: str = typer.Option(
        "file",
        "--camera-source",
        help="file: each camera a generated H.264 clip played at its rate (what a real camera costs: "
        "decoding); synth: synth:// cameras drawn in the process (heavier).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
    hints_dir: Path | None = typer.Option(
        None,
        "--hints",
        help="Instead: color photos in this folder, with 0, 1, 5, 10 and 20 hints simulated from the truth; "
        "the network beside the nearest-hint and Levin et al. 2004 peers (quality and seconds per picture).",
    ),
) -> None:
    """Model-only throughput per backend, size and batch, beside the machine's matmul peak; then the
    end-to-end video job (ours, a naive frame-by-frame loop, a plain transcode, and the Zhang et al.
    network in OpenCV DNN) on one clip, in the same run. With ``--hints DIR``: the guided-color
    section alone (the network and its two peers given the same simulated hints).

    Example: rtcolor bench --backend torch --backend onnxruntime --net-size 256x144 --batch-size 1 --batch-size 4
    """
    import json

    import torch
    from rich.table import Table

    from ..evaluation.bench import bench_row, machine_info, matmul_peak
    from ..model.weights import load_checkpoint
    from ..runtime.backends import BackendError, open_backend

    try:  # (H, W) for the network; --net-size is written WxH like every picture size of the CLI
        shapes = [tuple(int(v) for v in s.lower().split("x"))[::-1] for s in sizes]
        if old_shapes:  # the hidden pre-0.2 option, HxW
            shapes = [tuple(int(v) for v in s.lower().split("x")) for s in old_shapes]
        assert all(len(s) == 2 and s[0] % 16 == 0 and s[1] % 16 == 0 for s in shapes)
    except (ValueError, AssertionError):
        _fail(f"--net-size values must look like 256x144 (WxH) with multiples of 16, got {old_shapes or sizes}")
    if e2e and clip is not None:  # a missing or unreadable clip fails now, not after the network timings
        from ..media.video import VideoError, open_input

        try:
            open_input(clip).close()
        except VideoError as e:
            _fail(f"--clip {e}")
    ckpt = load_checkpoint(model)
    dev = "cuda:0" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device)
    info = machine_info()
    info["matmul_gflops_fp32"] = round(matmul_peak(dev), 1)
    rows = []
    for name in backends:
        try:
            be = open_backend(name, ckpt, device=dev)
        except BackendError as e:
            _note("skipped", "yellow", f"{name}: {e}")
            continue
        for hw in shapes:
            for b in batches:
                rows.append(bench_row(be, ckpt.model, b, hw, runs=runs))
                _log(f"{rows[-1]['describe']} batch {b} {hw[0]}x{hw[1]}: {rows[-1]['median_ms']} ms")
        be.close()
    import shutil
    import tempfile

    import av

    from ..media.video import VideoError

    tmp = Path(tempfile.mkdtemp(prefix="rtcolor-bench-"))  # generated clip and outputs: hundreds of MB at 720p
    e2e_rows, whole_rows, camera_table = [], [], []
    try:
        if peers:
            from ..evaluation.bench import peer_rows
            from ..evaluation.peers import export_zhang

            rows += peer_rows(export_zhang(tmp / "zhang.onnx"), runs=min(runs, 5))
            for r in rows[-2:]:
                _log(f"{r['describe']} 1 256x256: {r['median_ms']} ms")
        if e2e:
            e2e_rows = _end_to_end(ckpt, dev, clip, tmp, resolution, seconds, keyframe_interval, peers, naive_frames)
            if whole > 0:
                whole_rows = _whole_process(Path(e2e_rows[0]["clip"]), tmp, e2e_rows[0]["frames"], whole)
        if cameras:
            from ..evaluation.bench import camera_rows

            if camera_source not in ("file", "synth"):
                _fail(f"--camera-source {camera_source!r}: use file or synth")

            w, h = (int(v) for v in resolution.lower().split("x"))
            _log(f"running {', '.join(map(str, cameras))} {camera_source} {w}x{h} cameras at {camera_fps:g} fps ...")
            camera_table = camera_rows(cameras, camera_fps, w, h, min(seconds, 20.0), tmp, camera_source)
    except (VideoError, av.error.FFmpegError) as e:
        _fail(f"--clip {clip}: {e}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if as_json:
        result = {"machine": info, "rows": rows, "end_to_end": e2e_rows, "whole_process": whole_rows}
        out.print_json(json.dumps({**result, "cameras": camera_table}))
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
    if e2e_rows:
        t2 = Table(title=f"end to end: {e2e_rows[0]['clip']}")
        for col in ("job", "frames", "seconds", "fps", "x transcode time"):
            t2.add_column(col)
        floor = e2e_rows[0]["fps"]
        for r in e2e_rows:
            t2.add_row(r["name"], str(r["frames"]), f"{r['seconds']:.1f}", f"{r['fps']:.2f}", f"{floor / r['fps']:.1f}")
        out.print(t2)
    if whole_rows:
        t3 = Table(title="whole processes, startup included (medians; transcode and colorize alternated)")
        for col in ("command", "seconds", "first output s", "x transcode time"):
            t3.add_column(col)
        for r in whole_rows:
            first = r.get("first_output_s", r["seconds"] if "frames" not in r else None)
            t3.add_row(
                r["name"], f"{r['seconds']:.2f}", "" if first is None else f"{first:.2f}", str(r.get("x_transcode", ""))
            )
        out.print(t3)
    if camera_table:
        t4 = Table(title="cameras through one stream process (paced, recordings written)")
        cols = ("cameras", "size @ fps", "frames kept (worst camera)", "latency ms p50 / p95 / max (worst)")
        for col in (*cols, "keyframe age p95 frames / ms (worst)", "network queue max", "peak RSS MB"):
            t4.add_column(col)
        for r in camera_table:
            age = r.get("keyframe_age_p95_frames"), r.get("keyframe_age_p95_ms")
            t4.add_row(
                str(r["cameras"]),
                f"{r['size']} @ {r['fps_offered']:g}",
                f"{r['kept_min']:.1%}",
                f"{r['p50_ms_max']:.0f} / {r['p95_ms_max']:.0f} / {r['max_ms_max']:.0f}",
                "" if age[0] is None else f"{age[0]:.0f} / {age[1]:.0f}",
                "" if r.get("network_queue_max") is None else f"{r['network_queue_max']:.0f}",
                f"{r['peak_rss_mb']:.0f}",
            )
        out.print(t4)


def _whole_process(clip: Path, tmp: Path, frames: int, runs: int) -> list[dict]:
    from ..evaluation.bench import whole_process_rows
    from ..media.images import write_image
    from ..media.synth import SceneClip

    picture = write_image(tmp / "one.png", SceneClip(720, 1280, 30.0, seed=5).frame(0))
    _log(f"timing whole processes ({runs} runs each) ...")
    return whole_process_rows(clip, picture, tmp, frames, runs=runs)


def _end_to_end(ckpt, dev, clip, tmp, resolution, seconds, k, peers, naive_frames) -> list[dict]:
    from ..evaluation.bench import naive_fps, pipeline_fps, transcode_fps
    from ..media.synth import write_clip
    from ..runtime.backends import open_backend
    from ..runtime.colorizer import Colorizer
    from ..video.stages import PipelineConfig

    if clip is None:
        try:
            w, h = (int(v) for v in resolution.lower().split("x"))
        except ValueError:
            _fail(f"--resolution {resolution!r} must look like 1280x720")
        _log(f"generating a {w}x{h} {seconds:g} s gray clip ...")
        clip = write_clip(tmp / f"bench_{w}x{h}.mp4", seconds=seconds, width=w, height=h, gray=True, cut_at=seconds / 2)
    be = open_backend("auto", ckpt, device=dev, log=_log)
    colorizer = Colorizer(be, size=ckpt.inference_size, chroma_gain=ckpt.chroma_gain, hinted_gain=ckpt.hinted_gain)
    rows = [transcode_fps(clip, tmp / "transcode.mp4")]
    cfg = PipelineConfig(temporal=TemporalConfig(keyframe_interval=k))
    rows.append(pipeline_fps(clip, tmp / "ours.mp4", colorizer, cfg, f"rtcolor colorize (k={k}, {be.describe()})"))
    rows.append(
        naive_fps(clip, tmp / "naive.mp4", colorizer.colorize, f"naive frame by frame ({be.name})", naive_frames)
    )
    if peers:
        from ..evaluation.peers import ZhangOpenCV, zhang_colorize

        net = ZhangOpenCV(tmp / "zhang.onnx")  # exported for the model-only peer rows, in the same run
        rows.append(
            naive_fps(
                clip,
                tmp / "zhang.mp4",
                lambda rgb: zhang_colorize(net, rgb),
                "Zhang et al. in OpenCV DNN",
                naive_frames,
            )
        )
    for r in rows:
        r["clip"] = str(clip)
        _log(f"{r['name']}: {r['fps']} fps")
    return rows


@app.command("eval")
def evaluate(
    paths: list[str] = typer.Argument(..., help="Color pictures and/or color videos (files, folders, globs)."),
    model: Path | None = MODEL_OPTION,
    size: int | None = SIZE_OPTION,
    backend: str = BACKEND_OPTION,
    device: str = DEVICE_OPTION,
    keyframe_interval: int = typer.Option(
        DEFAULT_K, "--keyframe-interval", "-k", help="Video: network every K-th frame."
    ),
    smoothing: float = typer.Option(
        TemporalConfig.smoothing, "--smoothing", help="Video: temporal smoothing (see rtcolor colorize)."
    ),
    sample_every: int = typer.Option(10, "--sample-every", help="Video: SSIM/CIEDE2000 on every N-th frame."),
    sheet: Path | None = typer.Option(None, "--sheet", help="Write a contact sheet (gray | ours | truth) PNG."),
    allow_partial: bool = typer.Option(
        False, "--allow-partial", help="Score damaged videos on the frames that decode (else they count as failed)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (means at the top level)."),
    saturation: float | None = SATURATION_OPTION,
    hints: str | None = typer.Option(
        None,
        "--hints",
        help="Pictures: simulate N color hints per picture from the truth (N, or a list such as 0,1,2,5,10,20; "
        "fixed seed) and score each count beside gray and two peers given the same hints.",
    ),
    hint_seed: int = typer.Option(0, "--hint-seed", help="With --hints: the simulation's seed."),
    peers: bool = typer.Option(True, "--peers/--no-peers", help="With --hints: also the nearest-hint and Levin peers."),
) -> None:
    """Score the model on color ground truth: each item is turned gray, colorized and compared.

    PSNR, SSIM, CIEDE2000 (scikit-image) and colorfulness, beside the gray baseline; for video also
    chroma flicker in static areas and CDC, beside the original's own.

    Example: rtcolor eval holdout/ street.mp4 --sheet sheet.png --json
    """
    import json

    from rich.table import Table

    from ..evaluation.evaluate import contact_sheet, evaluate_image, evaluate_video, gain_interval, mean_scores
    from ..media.images import IMAGE_SUFFIXES, ImageReadError, expand_inputs, write_image
    from ..media.video import VIDEO_SUFFIXES, VideoError
    from ..video.pipeline import summarize
    from ..video.stages import PipelineConfig

    _check_saturation(saturation)
    files, unmatched = expand_inputs(paths, suffixes=IMAGE_SUFFIXES | VIDEO_SUFFIXES)
    for item in unmatched:
        _note("skipped", "red", f"{item}: no such file, or a folder/glob with no pictures or videos")
    if not files:
        _fail("nothing to evaluate")
    if sample_every < 1:
        _fail(f"--sample-every {sample_every} must be at least 1")
    if sheet is not None:  # checked before the long part, and never one of the pictures it scores
        if sheet.suffix.lower() not in (".png", ".jpg", ".jpeg"):
            _fail(f"--sheet {sheet}: name a .png or .jpg file")
        from ..media.outputs import Inputs

        if Inputs(files).holding(sheet) is not None:
            _fail(f"--sheet {sheet} is one of the pictures being evaluated; choose another name")
        from ..media.outputs import OutputError, check_output

        try:
            check_output(sheet, "--sheet")
        except OutputError as e:
            _fail(str(e))
    try:
        cfg = PipelineConfig(temporal=TemporalConfig(keyframe_interval=keyframe_interval, smoothing=smoothing))
    except ValueError as e:
        _fail(str(e))
    colorizer = _colorizer(model, backend, device, size, saturation)
    if hints is not None:
        from .hinted import eval_hinted

        eval_hinted(files, colorizer, hints, hint_seed, peers, as_json, failures=len(unmatched))
        return
    items, failures, partial = [], len(unmatched), 0
    for f in files:
        try:
            if f.suffix.lower() not in IMAGE_SUFFIXES:  # a video, or a file named oddly (tone.m4a)
                r = evaluate_video(f, colorizer, cfg, sample_every=sample_every, allow_partial=allow_partial)
                for w in r["warnings"]:
                    _note("warning", "yellow", f"{f}: {w}")
                if r["problems"]:  # only with --allow-partial: evaluate_video refuses them otherwise
                    text = f"{f}: damaged, {r['frames']} frames decoded: {summarize(r['problems'])}"
                    _note("warning", "yellow", f"{text}; scored on those frames (--allow-partial)")
                    partial += 1
            else:
                r = evaluate_image(f, colorizer)
            items.append(r)
            _log(f"{f}: {r['psnr']:.2f} dB (gray {r['psnr_gray']:.2f})")
        except (ImageReadError, VideoError, ValueError, RuntimeError) as e:
            _note("failed", "red", f"{e}")
            failures += 1
    if not items:
        _fail("no item could be evaluated")
    if sheet is not None:
        try:
            write_image(sheet, contact_sheet(items))
        except OSError as e:  # checked at the start; a disk that filled since
            _fail(str(e), code=1)
        _log(f"contact sheet: {sheet}")
    public = [{k: v for k, v in it.items() if not k.startswith("_")} for it in items]
    summary = {
        **mean_scores(public),
        **gain_interval(public),
        "items_detail": public,
        "failed": failures,
        "partial": partial,
    }
    if as_json:
        out.print_json(json.dumps(summary, default=float))
    else:
        table = Table(title="rtcolor eval (ours | gray baseline)")
        for col in ("item", "PSNR dB", "SSIM", "CIEDE2000", "colorfulness", "luma dB", "flicker", "CDC"):
            table.add_column(col)
        for r in [*public, {"path": "mean", **summary}]:
            vid = "flicker" in r
            table.add_row(
                Path(r["path"]).name,
                f"{r['psnr']:.2f} | {r['psnr_gray']:.2f}",
                f"{r['ssim']:.3f} | {r['ssim_gray']:.3f}",
                f"{r['ciede2000']:.2f} | {r['ciede2000_gray']:.2f}",
                f"{r['colorfulness']:.1f} (truth {r['colorfulness_truth']:.1f})",
                f"{r['luma_psnr']:.1f}" if "luma_psnr" in r else "-",
                f"{r['flicker']:.3f} (truth {r['flicker_truth']:.3f})" if vid else "-",
                f"{r['cdc']:.4f} (truth {r['cdc_truth']:.4f})" if vid else "-",
            )
        out.print(table)
        if "psnr_gain" in summary:
            lo, hi = summary["psnr_gain_interval"]
            out.print(
                f"PSNR gain over gray: {summary['psnr_gain']:+.2f} dB, {summary['interval_level']:.0%} bootstrap "
                f"interval {lo:+.2f} to {hi:+.2f} dB over {summary['items']} items; "
                f"{summary['above_gray']} of {summary['items']} above gray",
                highlight=False,
            )
    if failures:
        raise typer.Exit(1)
