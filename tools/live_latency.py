"""Live latency before/after in one run: keyframes waited for (the old live path) against the network
beside the stream (video/live.py), on paced 720p cameras recorded as `rtcolor stream` records them.

    python tools/live_latency.py [--seconds 12] [--repeats 3] [--presets veryfast superfast]
                                   [--setups 1x30 4x15] [--quality [--photos A.png B.png]]
                                   [--clips DIR] [--json out.json]

Each setup NxF is N generated gray 720p H.264 clips (13 s, so a 12 s run never loops; made once into
``--clips DIR`` if given) played at F fps into one process (one model; the cameras' keyframes share the
network through backends.batching, as `rtcolor stream SRC ...` does), each
camera recorded with libx264 at the preset named. Every run is a fresh process; the two paths
alternate within each repeat, so both see the same machine load. Printed per row: the medians over
the repeats of the worst camera's frames kept (out / read), frames read / offered, capture-to-output
latency p50 / p95 / max, and (the new path) the p95 age of the keyframe behind the chroma shown.

``--quality``: a generated 720p 30 fps color clip (10 s, a scene cut at 5 s) colorized by the file
path (`colorize`) and played paced through the live path; both scored the same way against the
clip's own chroma (PSNR, chroma flicker in static areas) on the frames each one showed. With
``--photos`` the two shots are real pictures (tools/fetch_holdout.py) instead of generated scenes.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

MODES = {"wait": True, "beside": False}  # PipelineConfig.wait_for_keyframes


def one_run(spec: dict) -> dict:
    """In this process: the cameras of ``spec`` for ``spec['seconds']``; per camera its figures."""
    from dataclasses import replace

    from realtime_color.media.frames import Policy
    from realtime_color.media.sinks import open_sink
    from realtime_color.media.sources import open_source
    from realtime_color.model.checkpoint import ModelFile
    from realtime_color.runtime.backends import open_backend
    from realtime_color.runtime.backends.batching import BatchingBackend
    from realtime_color.runtime.colorizer import Colorizer
    from realtime_color.video.cameras import CameraSet
    from realtime_color.video.stages import PipelineConfig, colorize_pipeline

    ckpt = ModelFile.open(None)
    colorizer = Colorizer(open_backend("auto", ckpt), size=ckpt.inference_size, chroma_gain=ckpt.chroma_gain)
    n = len(spec["clips"])
    batching = BatchingBackend(colorizer.backend, callers=n)  # as `rtcolor stream` does, one camera or several
    colorizer = replace(colorizer, backend=batching)
    out = Path(spec["out"])
    out.mkdir(parents=True, exist_ok=True)
    sources = [open_source(c, Policy.LIVE, pace=True, loop=True) for c in spec["clips"]]
    sinks = [
        open_sink(str(out / f"cam{i}.mp4"), force=True, codec="libx264", crf=20, preset=spec["preset"])
        for i in range(n)
    ]
    cfg = PipelineConfig(wait_for_keyframes=spec["wait"])
    pipes = [colorize_pipeline(colorizer, [s], cfg, Policy.LIVE) for s in sinks]
    cams = CameraSet([f"cam{i}" for i in range(n)], pipes, sources)
    threading.Timer(spec["seconds"], cams.stop).start()
    cams.start()
    cams.join(spec["seconds"] + 60)
    for src, sink in zip(sources, sinks, strict=True):
        src.close()
        sink.close(complete=True)
    batching.close()
    rows = []
    for pipe in pipes:
        s = pipe.stats.summary()
        age = s.get("keyframe_age_frames", {})
        rows.append(
            {
                "kept": s["frames_out"] / max(1, s["frames_in"]),
                "read": s["frames_in"] / (spec["fps"] * s["seconds"]),
                "p50": s["latency_p50_ms"],
                "p95": s["latency_p95_ms"],
                "max": s["latency_max_ms"],
                "age_p95_frames": age.get("p95"),
                "age_p95_ms": s.get("keyframe_age_ms", {}).get("p95"),
                "gray_frames": s.get("gray_frames"),
                "new_shot_gray_ms": s.get("new_shot_gray_ms", {}).get("max"),
                "keyframes": s["keyframes"],
                "skipped": s.get("keyframes_skipped"),
            }
        )
    return {"cameras": rows, "network_calls": batching.calls}


def worst(rows: list[dict]) -> dict:
    """The worst camera of one run: least kept, highest latencies and age."""
    out = {"kept": min(r["kept"] for r in rows), "read": min(r["read"] for r in rows)}
    for k in ("p50", "p95", "max", "age_p95_frames", "age_p95_ms", "new_shot_gray_ms"):
        vals = [r[k] for r in rows if r[k] is not None]
        out[k] = max(vals) if vals else None
    return out


def median_of(runs: list[dict]) -> dict:
    out = {}
    for k in runs[0]:
        vals = [r[k] for r in runs if r[k] is not None]
        out[k] = statistics.median(vals) if vals else None
    return out


def quality(tmp: Path, photos: list[str] | None = None) -> dict:
    """The same color clip through colorize (file path) and a paced live run, scored alike."""
    from dataclasses import replace

    from realtime_color.evaluation.evaluate import _VideoScorer
    from realtime_color.media.frames import Policy, Status
    from realtime_color.media.images import read_image
    from realtime_color.media.sources import open_source
    from realtime_color.media.synth import write_clip
    from realtime_color.model.checkpoint import ModelFile
    from realtime_color.runtime.backends import open_backend
    from realtime_color.runtime.colorizer import Colorizer
    from realtime_color.video.stages import PipelineConfig, colorize_pipeline

    clip = tmp / ("color720p_" + ("_".join(Path(p).stem for p in photos) if photos else "generated") + ".mp4")
    if not clip.is_file():  # made once (in --clips DIR)
        pictures = [read_image(p) for p in photos] if photos else None  # the two shots' scenes (else generated)
        part = clip.with_name(clip.stem + ".part.mp4")
        write_clip(part, seconds=10, width=1280, height=720, fps=30, cut_at=5, audio=False, photos=pictures)
        part.replace(clip)
    ckpt = ModelFile.open(None)
    colorizer = Colorizer(open_backend("auto", ckpt), size=ckpt.inference_size, chroma_gain=ckpt.chroma_gain)

    class Keep:  # the chroma shown, by frame index (cheap: the scoring is done after the run)
        def __init__(self):
            self.uv = {}

        def write(self, pic):
            self.uv[pic.index] = (pic.u.copy(), pic.v.copy())

        def close(self, complete=True):
            pass

    def run(policy, wait=False) -> dict:
        keep = Keep()
        src = open_source(str(clip), policy, kind="file", pace=policy is Policy.LIVE)
        cfg = PipelineConfig(wait_for_keyframes=wait)
        result = colorize_pipeline(colorizer, [keep], cfg, policy).run(src)
        src.close()
        assert result.failure is None, result.failure
        truth = open_source(str(clip), Policy.FILE, kind="file", chroma=True)
        scorer = _VideoScorer(sample_every=10**9)  # PSNR and flicker on every frame shown; SSIM not needed
        total = 0
        while (r := truth.read()).status is not Status.END:
            if r.status is not Status.FRAME:
                continue
            total += 1
            if r.item.index in keep.uv:
                u, v = keep.uv[r.item.index]
                scorer.write(replace(r.item, u=u, v=v))
        truth.close()
        t = scorer.ours_t.result()
        s = result.stats.summary()
        return {
            "frames_shown": len(scorer.rows),
            "frames": total,
            "psnr": statistics.fmean(x["psnr"] for x in scorer.rows),
            "psnr_gray": statistics.fmean(x["psnr_gray"] for x in scorer.rows),
            "flicker": t["flicker"],
            "flicker_truth": scorer.truth_t.result()["flicker"],
            "gray_frames": s.get("gray_frames"),
            "new_shot_gray_ms": s.get("new_shot_gray_ms"),
        }

    # Live indices count frames read; a paced file read whole keeps them equal to the file's.
    return {"colorize": run(Policy.FILE), "live": run(Policy.LIVE), "live_waiting": run(Policy.LIVE, wait=True)}


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["--one"]:
        print(json.dumps(one_run(json.loads(args[1]))))
        return
    opts = {"--seconds": "12", "--repeats": "3", "--json": "", "--clips": ""}
    presets, setups, do_quality, photos = ["veryfast", "superfast"], ["1x30", "4x15"], False, None
    i = 0
    while i < len(args):
        if args[i] == "--presets":
            presets, i = [], i + 1
            while i < len(args) and not args[i].startswith("--"):
                presets.append(args[i])
                i += 1
        elif args[i] == "--setups":
            setups, i = [], i + 1
            while i < len(args) and not args[i].startswith("--"):
                setups.append(args[i])
                i += 1
        elif args[i] == "--quality":
            do_quality, i = True, i + 1
        elif args[i] == "--photos":
            photos, i = args[i + 1 : i + 3], i + 3
        else:
            opts[args[i]], i = args[i + 1], i + 2
    seconds, repeats = float(opts["--seconds"]), int(opts["--repeats"])

    report = {"seconds": seconds, "repeats": repeats, "uptime_before": _uptime(), "rows": []}
    with tempfile.TemporaryDirectory(prefix="rtcolor-latency-") as scratch:
        tmp = Path(scratch)
        made = Path(opts["--clips"]) if opts["--clips"] else tmp  # --clips: kept for the next run
        made.mkdir(parents=True, exist_ok=True)
        if do_quality:
            report["quality"] = quality(made, photos)
            print(json.dumps(report["quality"], indent=1), flush=True)
        clips: dict[tuple[int, float], list[str]] = {}
        for setup in setups:
            n, fps = (float(v) for v in setup.split("x"))
            clips[(int(n), fps)] = [_clip(made / f"gray720p_{fps:g}fps_{j}.mp4", fps, j) for j in range(int(n))]
        results: dict[tuple, list[dict]] = {}
        for rep in range(repeats):
            for (n, fps), paths in clips.items():
                for preset in presets:
                    order = list(MODES) if rep % 2 == 0 else list(MODES)[::-1]
                    for mode in order:
                        spec = {"clips": paths, "fps": fps, "preset": preset, "wait": MODES[mode]}
                        spec.update(seconds=seconds, out=str(tmp / "rec"))
                        t = time.monotonic()
                        proc = subprocess.run(
                            [sys.executable, __file__, "--one", json.dumps(spec)], capture_output=True, text=True
                        )
                        if proc.returncode != 0:
                            raise SystemExit(proc.stderr.strip().splitlines()[-1:])
                        w = worst(json.loads(proc.stdout.strip().splitlines()[-1])["cameras"])
                        results.setdefault((n, fps, preset, mode), []).append(w)
                        print(f"repeat {rep + 1} {n}x{fps:g} {preset} {mode}: {json.dumps(w)} "
                              f"({time.monotonic() - t:.0f} s)", flush=True)  # fmt: skip
    report["uptime_after"] = _uptime()
    print(f"\nmedians of {repeats} runs, worst camera; uptime before: {report['uptime_before']}")
    print(f"uptime after: {report['uptime_after']}")
    print("| cameras | preset | keyframes | frames kept | read/offered | latency p50 / p95 / max ms | key age p95 |")
    print("|---|---|---|---|---|---|---|")
    for (n, fps, preset, mode), runs in results.items():
        m = median_of(runs)
        report["rows"].append({"cameras": n, "fps": fps, "preset": preset, "mode": mode, **m, "runs": runs})
        age = "" if m["age_p95_frames"] is None else f"{m['age_p95_frames']:.0f} frames / {m['age_p95_ms']:.0f} ms"
        print(
            f"| {n} x 720p {fps:g} fps | {preset} | {'waited for' if mode == 'wait' else 'beside the stream'} | "
            f"{m['kept']:.1%} | {m['read']:.1%} | {m['p50']:.0f} / {m['p95']:.0f} / {m['max']:.0f} | {age} |"
        )
    if opts["--json"]:
        Path(opts["--json"]).write_text(json.dumps(report, indent=1))


def _clip(path: Path, fps: float, seed: int) -> str:
    """A 13 s gray 720p camera clip (made once: an existing file of that name is used as it is)."""
    from realtime_color.media.synth import write_clip

    if not path.is_file():
        part = path.with_name(path.stem + ".part.mp4")  # renamed when whole: an interrupted one is not reused
        write_clip(part, seconds=13, width=1280, height=720, fps=fps, gray=True, audio=False, seed=seed)
        part.replace(path)
    return str(path)


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"


if __name__ == "__main__":
    main()
