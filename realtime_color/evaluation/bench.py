"""Benchmarks: model-only throughput per backend, and the machine's measured matmul peak.

Figures are medians of several timed runs after a warmup; GFLOP/s uses the model's FLOPs as
counted by ``torch.utils.flop_counter`` (multiply-add = 2 FLOPs).
"""

from __future__ import annotations

import platform
import statistics
import time

import torch

from ..model.network import build_model


def model_flops(model: torch.nn.Module, shape: tuple[int, int, int, int]) -> float:
    """FLOPs of one forward pass at ``shape`` (counted once per size at batch 1, on a fresh CPU model)."""
    key = tuple(shape[2:])
    if key not in _FLOPS:
        from torch.utils.flop_counter import FlopCounterMode

        m = build_model(model.config).eval()
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            m.forward_aligned(torch.zeros(1, 1, *key))
        _FLOPS[key] = float(counter.get_total_flops())
    return _FLOPS[key] * shape[0]


_FLOPS: dict[tuple[int, ...], float] = {}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_backend(backend, shape: tuple[int, int, int, int], warmup: int = 3, runs: int = 10) -> list[float]:
    """Seconds per call of ``backend.infer`` on a fixed input (input already on the host)."""
    x = torch.rand(shape)
    for _ in range(warmup):
        backend.infer(x)
    _sync(backend.device)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        backend.infer(x)
        _sync(backend.device)  # CPU-GPU sync point: time the work, not the launch
        times.append(time.perf_counter() - t)
    return times


def matmul_peak(device: str, dtype: torch.dtype = torch.float32, n: int = 2048, runs: int = 5) -> float:
    """Measured dense matmul GFLOP/s on ``device`` (the roof the model's figure is compared with)."""
    a = torch.rand(n, n, device=device, dtype=dtype)
    b = torch.rand(n, n, device=device, dtype=dtype)
    a @ b
    _sync(device)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        a @ b
        _sync(device)
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times) / 1e9


def bench_row(backend, model: torch.nn.Module, batch: int, hw: tuple[int, int], runs: int = 10) -> dict:
    shape = (batch, 1, *hw)
    times = time_backend(backend, shape, runs=runs)
    med = statistics.median(times)
    flops = model_flops(model, shape)
    return {
        "backend": backend.name,
        "device": backend.device,
        "precision": backend.precision,
        "describe": backend.describe(),
        "batch": batch,
        "height": hw[0],
        "width": hw[1],
        "median_ms": round(med * 1e3, 2),
        "frames_per_s": round(batch / med, 1),
        "gflop_per_frame": round(flops / batch / 1e9, 2),
        "gflop_per_s": round(flops / med / 1e9, 1),
    }


def machine_info() -> dict:
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info


# End to end: a video file in, a colorized H.264 file out, on this machine.


def transcode_fps(clip, out, preset: str = "veryfast", crf: int = 18) -> dict:
    """The floor: plain PyAV decode + libx264 encode of the same clip, nothing else."""
    import av

    t = time.perf_counter()
    n = 0
    with av.open(str(clip)) as inp, av.open(str(out), "w") as o:
        vs = inp.streams.video[0]
        vs.thread_type = "AUTO"
        s = o.add_stream("libx264", rate=vs.average_rate)
        s.width, s.height, s.pix_fmt = vs.codec_context.width, vs.codec_context.height, "yuv420p"
        s.options = {"preset": preset, "crf": str(crf)}
        for f in inp.decode(vs):
            o.mux(s.encode(f.reformat(format="yuv420p")))
            n += 1
        o.mux(s.encode())
    dt = time.perf_counter() - t
    return {"name": f"decode + libx264 {preset}", "frames": n, "seconds": round(dt, 2), "fps": round(n / dt, 1)}


def naive_fps(clip, out, colorize_rgb, name: str, max_frames: int = 60, preset: str = "veryfast") -> dict:
    """The naive baseline: one thread; decode a frame to RGB, colorize it whole, encode it, repeat."""
    import av

    t = time.perf_counter()
    n = 0
    with av.open(str(clip)) as inp, av.open(str(out), "w") as o:
        vs = inp.streams.video[0]
        s = o.add_stream("libx264", rate=vs.average_rate)
        s.width, s.height, s.pix_fmt = vs.codec_context.width, vs.codec_context.height, "yuv420p"
        s.options = {"preset": preset, "crf": "18"}
        for f in inp.decode(vs):
            rgb = colorize_rgb(f.to_ndarray(format="rgb24"))
            o.mux(s.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")))
            n += 1
            if n >= max_frames:
                break
        o.mux(s.encode())
    dt = time.perf_counter() - t
    return {"name": name, "frames": n, "seconds": round(dt, 2), "fps": round(n / dt, 2)}


def pipeline_fps(clip, out, colorizer, cfg, name: str, preset: str = "veryfast") -> dict:
    """Ours: the threaded pipeline with keyframes, flow and smoothing (``rtcolor colorize``)."""
    from ..media.video import EncoderSettings
    from ..video.stages import colorize_file

    t = time.perf_counter()
    s = colorize_file(clip, out, colorizer, cfg, EncoderSettings(preset=preset)).summary()
    dt = time.perf_counter() - t
    return {
        "name": name,
        "frames": s["frames_out"],
        "seconds": round(dt, 2),
        "fps": round(s["frames_out"] / dt, 1),
        "keyframes": s["keyframes"],
        "stage_seconds": s["stage_seconds"],
    }


def peer_rows(onnx_path, runs: int = 5) -> list[dict]:
    """Model-only rows for the Zhang et al. network (random weights) in OpenCV DNN and ONNX Runtime."""
    import numpy as np

    from .peers import ZHANG_SIZE, ZhangNet, ZhangOpenCV, ZhangOrt

    flops = None
    rows = []
    x = np.random.default_rng(0).uniform(0, 100, (ZHANG_SIZE, ZHANG_SIZE)).astype(np.float32)
    for cls in (ZhangOpenCV, ZhangOrt):
        net = cls(onnx_path)
        net(x)
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            net(x)
            times.append(time.perf_counter() - t)
        if flops is None:
            from torch.utils.flop_counter import FlopCounterMode

            with torch.inference_mode(), FlopCounterMode(display=False) as counter:
                ZhangNet().eval()(torch.zeros(1, 1, ZHANG_SIZE, ZHANG_SIZE))
            flops = float(counter.get_total_flops())
        med = statistics.median(times)
        rows.append(
            {
                "backend": cls.name,
                "device": "cpu",
                "precision": "fp32",
                "describe": f"{cls.name} (random weights)",
                "batch": 1,
                "height": ZHANG_SIZE,
                "width": ZHANG_SIZE,
                "median_ms": round(med * 1e3, 2),
                "frames_per_s": round(1 / med, 2),
                "gflop_per_frame": round(flops / 1e9, 2),
                "gflop_per_s": round(flops / med / 1e9, 1),
            }
        )
    return rows


# Whole processes, startup included: what a user, a batch script or a restarting service waits for.
# The yardstick is the same PyAV decode + libx264 loop as transcode_fps, run as its own process.
_TRANSCODE = """
import sys, av
with av.open(sys.argv[1]) as inp, av.open(sys.argv[2], "w") as o:
    vs = inp.streams.video[0]
    vs.thread_type = "AUTO"
    s = o.add_stream("libx264", rate=vs.average_rate)
    s.width, s.height, s.pix_fmt = vs.codec_context.width, vs.codec_context.height, "yuv420p"
    s.options = {"preset": sys.argv[3], "crf": sys.argv[4]}
    for f in inp.decode(vs):
        o.mux(s.encode(f.reformat(format="yuv420p")))
    o.mux(s.encode())
"""


def _wall(cmd: list[str]) -> float:
    import subprocess
    import sys

    t = time.perf_counter()
    r = subprocess.run([sys.executable, *cmd], capture_output=True, text=True)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed: {r.stderr.strip().splitlines()[-1:]}")
    return dt


def whole_process_rows(clip, picture, tmp, frames: int, runs: int = 3, preset: str = "veryfast") -> list[dict]:
    """Medians over ``runs`` of whole-process wall times, the transcode and ours alternated (A B A
    B ...) so that a machine whose speed drifts moves both: `rtcolor image` on one picture, the plain
    transcode, and `rtcolor colorize` with its time to the first written frame."""
    import json
    from pathlib import Path

    tmp = Path(tmp)
    cli = ["-m", "realtime_color.cli"]
    image = [_wall([*cli, "image", str(picture), "-o", str(tmp / "still.png"), "--force"]) for _ in range(runs)]
    plain, ours, first = [], [], []
    for _ in range(runs):
        plain.append(_wall(["-c", _TRANSCODE, str(clip), str(tmp / "plain.mp4"), preset, "18"]))
        stats = tmp / "stats.json"
        ours.append(
            _wall(
                [*cli, "colorize", str(clip), "-o", str(tmp / "ours.mp4"), "--preset", preset]
                + ["--stats", str(stats), "--force"]
            )
        )
        run = json.loads(stats.read_text())["runs"][0]
        # Startup and teardown are what the process spent outside the pipeline; the first frame
        # came first_output_s into it (teardown counted too: an upper bound).
        first.append(ours[-1] - run["seconds"] + run["first_output_s"])
    med = statistics.median
    return [
        {"name": "rtcolor image, one picture (whole process)", "seconds": round(med(image), 3)},
        {"name": f"plain decode + libx264 {preset} (whole process)", "frames": frames, "seconds": round(med(plain), 3)},
        {
            "name": "rtcolor colorize (whole process)",
            "frames": frames,
            "seconds": round(med(ours), 3),
            "first_output_s": round(med(first), 3),
            "x_transcode": round(med([o / p for o, p in zip(ours, plain, strict=True)]), 2),
        },
    ]


def _peak_rss_mb(pid: int, stop) -> list[float]:
    """Samples a process's resident memory every 0.2 s until ``stop`` is set; returns [peak MB]."""
    peak = [0.0]

    def sample():
        while not stop.is_set():
            try:
                for line in open(f"/proc/{pid}/status"):
                    if line.startswith("VmRSS:"):
                        peak[0] = max(peak[0], int(line.split()[1]) / 1024)
            except OSError:
                return
            stop.wait(0.2)

    import threading

    threading.Thread(target=sample, daemon=True).start()
    return peak


def _worst(cams: list[dict], name: str, q: str = "p95") -> float | None:
    """The worst camera's ``q`` of a distribution its stats carry (None when none has it)."""
    values = [c[name][q] for c in cams if isinstance(c.get(name), dict) and q in c[name]]
    return max(values) if values else None


def camera_rows(
    counts: list[int], fps: float, width: int, height: int, seconds: float, tmp, source: str = "file"
) -> list[dict]:
    """N paced cameras through one `rtcolor stream` process each (recordings written): per N, the
    worst camera's share of its frames kept, the worst p50, p95 and max capture-to-output latency,
    the worst p95 age of the keyframe whose chroma a frame was shown with (frames and ms), the most
    keyframes out at once (in the network or waiting), the process's peak RSS and the mean
    keyframe batch.

    ``source`` "file": each camera is a generated gray H.264 clip played at its frame rate (looped),
    which costs the process what a real camera's stream does (decoding, ~4 ms a 720p frame here);
    "synth": synth:// cameras, which draw and add noise to every frame in the process (~22 ms a
    720p frame here, tools/frame_costs.py), a heavier load than any real camera's."""
    import json
    import subprocess
    import sys
    import threading
    from pathlib import Path

    from ..media.synth import write_clip

    rows = []
    clips = []
    if source == "file":
        for i in range(max(counts, default=0)):
            clip = Path(tmp) / f"camera{i}.mp4"
            write_clip(clip, seconds=10.0, width=width, height=height, fps=fps, gray=True, audio=False, seed=i)
            clips.append(str(clip))
    for n in counts:
        if source == "file":
            source_args = [*clips[:n], "--loop"]  # --loop: a 10 s clip plays for as long as the run
        else:
            source_args = [f"synth://?fps={fps:g}&size={width}x{height}&seed={i}" for i in range(n)]
        out = Path(tmp) / f"cams{n}"
        stats = Path(tmp) / f"cams{n}.json"
        outs = ["--out", str(out / "{name}.mp4")] if n > 1 else ["--out", str(out / "cam.mp4")]
        if n == 1:
            out.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "realtime_color.cli", "stream", *source_args, *outs, "--duration", f"{seconds:g}"]
        proc = subprocess.Popen([*cmd, "--stats", str(stats), "--report-every", "0", "--force"], stderr=subprocess.PIPE)
        stop = threading.Event()
        peak = _peak_rss_mb(proc.pid, stop)
        _, err = proc.communicate()
        stop.set()
        if proc.returncode != 0:
            raise RuntimeError(f"{n} cameras: {err.decode().strip().splitlines()[-1:]}")
        data = json.loads(stats.read_text())
        cams = list(data["cameras"].values()) if "cameras" in data else [data]
        rows.append(
            {
                "cameras": n,
                "source": source,
                "fps_offered": fps,
                "size": f"{width}x{height}",
                "kept_min": round(min(c["frames_out"] / max(1, c["frames_in"]) for c in cams), 3),
                "p95_ms_max": max(c["latency_p95_ms"] or 0 for c in cams),
                "p50_ms_max": max(c["latency_p50_ms"] or 0 for c in cams),
                "max_ms_max": max(c.get("latency_max_ms") or 0 for c in cams),
                # How old the chroma shown is (live: the network runs beside the stream), worst camera
                "keyframe_age_p95_frames": _worst(cams, "keyframe_age_frames"),
                "keyframe_age_p95_ms": _worst(cams, "keyframe_age_ms"),
                "network_queue_max": _worst(cams, "network_queue", "max"),
                "peak_rss_mb": round(peak[0], 1),
                "mean_batch": data.get("mean_batch", 1.0),
            }
        )
    return rows
