"""Click-to-update time of the hints editor (``rtcolor edit``) on a 720p picture.

One "click" is what the page does when the user clicks the picture (or picks a color for a hint):
send the hint list with the change (the server writes the hints file) and fetch the re-colorized
picture; timed from the request to the last byte of the JPEG, over HTTP on 127.0.0.1 through the
real server (token and Host checks included). The suggested colors the page asks for beside it
(for the chooser, not on the way to the picture) are timed on their own. The browser's JPEG decode
and paint (a few ms) are not included. Prints p50 / p95 / max, the process's CPU time per click
(all threads), and the network alone on the same picture: on a machine shared with other work,
wall time also holds the waits for a core, and the network's line says how loaded it was.

    python tools/editor_latency.py --backend onnxruntime-int8 --clicks 60
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="onnxruntime-int8")
    ap.add_argument("--model", default=None, help="checkpoint; the bundled default model when omitted")
    ap.add_argument("--clicks", type=int, default=60)
    ap.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT of the picture")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from realtime_color.editor.inputs import PictureInput
    from realtime_color.editor.jobs import Job
    from realtime_color.editor.server import EditorServer
    from realtime_color.editor.session import Session
    from realtime_color.media.images import write_image
    from realtime_color.media.synth import SceneClip
    from realtime_color.model.checkpoint import ModelFile
    from realtime_color.runtime.backends import open_backend
    from realtime_color.runtime.colorizer import Colorizer

    w, h = (int(v) for v in args.size.split("x"))
    tmp = Path(tempfile.mkdtemp(prefix="editor-latency-"))
    picture = tmp / "frame.png"
    rgb = SceneClip(h, w, 25.0, seed=args.seed).frame(0)
    write_image(picture, np.repeat(rgb.mean(-1, keepdims=True).astype(np.uint8), 3, -1))  # a gray 720p frame
    ckpt = ModelFile.open(Path(args.model) if args.model else None)
    backend = open_backend(args.backend, ckpt, device="cpu")
    colorizer = Colorizer(backend, size=ckpt.inference_size, chroma_gain=ckpt.chroma_gain,
                          hinted_gain=getattr(ckpt, "hinted_gain", 1.0))  # fmt: skip
    session = Session(PictureInput(picture), colorizer, tmp / "frame.json")
    session.create()
    server = EditorServer(session, Job(session, tmp, []), "127.0.0.1", 0).start()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)  # kept alive, as a browser does
    headers = {"X-Rtcolor-Token": server.guard.token, "Host": f"127.0.0.1:{server.port}"}

    def call(method: str, path: str, body: bytes | None = None) -> bytes:
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        if r.status != 200:
            raise SystemExit(f"{method} {path}: {r.status} {data[:200]!r}")
        return data

    rng = np.random.default_rng(args.seed)
    hints: list[dict] = []
    call("GET", "/api/frame.jpg?view=color")  # warm-up: the first call builds the runtime's kernels
    parts: dict[str, list[float]] = {"save": [], "picture": [], "click": [], "suggest": [], "cpu per click": []}
    for _ in range(args.clicks):
        x, y = (round(float(v), 4) for v in rng.uniform(0.05, 0.95, 2))
        color = "#" + "".join(f"{int(v):02x}" for v in rng.integers(0, 256, 3))
        hints.append({"x": x, "y": y, "color": color})
        c0, t0 = time.process_time(), time.perf_counter()
        call("PUT", "/api/hints", json.dumps({"hints": hints[-10:]}).encode())  # the last ten: a typical page
        t1 = time.perf_counter()
        jpeg = call("GET", f"/api/frame.jpg?view=color&rev={len(hints)}")
        t2, c1 = time.perf_counter(), time.process_time()
        assert jpeg[:2] == b"\xff\xd8"
        call("GET", f"/api/suggest?x={x}&y={y}")
        t3 = time.perf_counter()
        for name, dt in (("save", t1 - t0), ("picture", t2 - t1), ("click", t2 - t0), ("suggest", t3 - t2),
                         ("cpu per click", c1 - c0)):  # fmt: skip
            parts[name].append(dt * 1000)
    server.close()
    # The network alone on the same picture, in the same conditions: what a click costs beyond it.
    from realtime_color.runtime.colorizer import frame_to_L, inference_shape, resize_L

    lum = frame_to_L(session.media.frame(0))[None, None]
    small = resize_L(lum, inference_shape(*lum.shape[-2:], colorizer.size))
    for _ in range(args.clicks):
        t0 = time.perf_counter()
        colorizer.predict_ab(small)
        parts.setdefault("network alone", []).append((time.perf_counter() - t0) * 1000)
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    state = session.state()
    print(
        f"{w}x{h} picture, backend {backend.describe()}, suggestions from the {state['suggest_from']}, "
        f"hints used by the model: {session.hints_used}"
    )
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average {load[0]:.1f}")
    for name, values in parts.items():
        print(
            f"{name:13s} p50 {percentile(values, 50):6.1f} ms  p95 {percentile(values, 95):6.1f} ms  "
            f"max {max(values):6.1f} ms  ({len(values)} clicks)"
        )


if __name__ == "__main__":
    main()
