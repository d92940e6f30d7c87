"""Soak: `rtcolor stream` on a real RTSP server that is killed every few seconds, for minutes.

    python tools/soak_rtsp.py --minutes 30 --kill-every 60 --down 3 --out soak/

Runs GStreamer's RTSP server (tests/rtsp_server.py, Debian's python3-gi and
gir1.2-gst-rtsp-server-1.0) serving a live generated scene on 127.0.0.1, and `rtcolor stream
rtsp://... --out soak/rec.mp4 --segment 10` against it with the bundled model. Every
``--kill-every`` seconds the server is SIGKILLed (a camera losing power) and restarted ``--down``
seconds later. Every 10 s the stream process's RSS, open file descriptors and threads are sampled
with its fps and latency from its telemetry line. At the end the stream is stopped with Ctrl-C
(SIGINT), every recording is decoded end to end, and a summary is printed (and written to
soak/soak.json): RSS after the first minute and at the end, fd/thread counts, outages, frames.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.rtsp_server import RtspServer, free_port, rtsp_missing  # noqa: E402

TELEMETRY = re.compile(r"out ([\d.]+) fps.*latency p50 (\d+) ms p95 (\d+) ms")


def proc_sample(pid: int) -> dict:
    status = Path(f"/proc/{pid}/status").read_text()
    field = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    field = {k: v.split()[0] for k, v in field.items() if v.split()}
    return {
        "rss_mb": round(int(field["VmRSS"]) / 1024, 1),
        "threads": int(field["Threads"]),
        "fds": len(list(Path(f"/proc/{pid}/fd").iterdir())),
    }


def spread(samples: list[dict], key: str) -> list | None:
    return [min(s[key] for s in samples), max(s[key] for s in samples)] if samples else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--kill-every", type=float, default=60, help="seconds between server kills")
    ap.add_argument("--down", type=float, default=3, help="seconds the server stays down")
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--out", default="soak")
    a = ap.parse_args()
    why = rtsp_missing()
    if why:
        print(f"cannot soak: {why}", file=sys.stderr)
        return 2
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("rec*.mp4"):
        old.unlink()
    server = RtspServer(free_port(), size=a.size, fps=a.fps)
    server.start()
    cmd = [sys.executable, "-m", "realtime_color.cli", "stream", server.url, "--out", str(out / "rec.mp4")]
    cmd += ["--segment", "10", "--stats", str(out / "stats.json"), "--report-every", "10"]
    stream = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    latest: dict = {}

    def reader() -> None:
        for line in stream.stdout:
            lines.append(line.rstrip())
            m = TELEMETRY.search(line)
            if m:
                latest.update(fps=float(m[1]), p50_ms=int(m[2]), p95_ms=int(m[3]))

    threading.Thread(target=reader, daemon=True).start()
    samples, kills = [], 0
    t0 = time.monotonic()
    next_sample, next_kill = t0 + 10, t0 + a.kill_every
    try:
        while time.monotonic() - t0 < a.minutes * 60 and stream.poll() is None:
            now = time.monotonic()
            if now >= next_kill:
                server.kill()
                kills += 1
                time.sleep(a.down)
                server.start()
                next_kill = time.monotonic() + a.kill_every
            if now >= next_sample:
                row = {"t_s": round(now - t0), **proc_sample(stream.pid), **latest}
                samples.append(row)
                print(json.dumps(row), flush=True)
                next_sample += 10
            time.sleep(0.2)
    finally:
        stream.send_signal(signal.SIGINT)
        try:
            code = stream.wait(60)
        except subprocess.TimeoutExpired:  # a stream that does not stop is a finding, not a hang
            stream.kill()
            code = "did not stop within 60 s of SIGINT"
        server.kill()
    import av

    recordings = {}
    for rec in sorted(out.glob("rec*.mp4")):
        with av.open(str(rec)) as c:
            times = [float(f.pts * f.time_base) for f in c.decode(video=0)]
        backwards = sum(b <= a for a, b in zip(times, times[1:], strict=False))
        recordings[rec.name] = {"frames": len(times), "backwards": backwards}
    stats = json.loads((out / "stats.json").read_text()) if (out / "stats.json").exists() else {}
    first_minute = next((s for s in samples if s["t_s"] >= 60), samples[0] if samples else {})
    late = samples[len(samples) // 2 :]
    summary = {
        "command": " ".join(sys.argv),
        "exit_code": code,
        "kills": kills,
        "outages": stats.get("outages"),
        "outage_seconds": stats.get("outage_seconds"),
        "longest_outage_seconds": stats.get("longest_outage_seconds"),
        "frames_in": stats.get("frames_in"),
        "frames_out": stats.get("frames_out"),
        "rss_mb_after_1_min": first_minute.get("rss_mb"),
        "rss_mb_end": samples[-1]["rss_mb"] if samples else None,
        "fds_min_max": spread(samples, "fds"),
        "threads_min_max": spread(samples, "threads"),
        "fps_median_second_half": statistics.median(s["fps"] for s in late if "fps" in s) if late else None,
        "recordings": recordings,
        "tracebacks": sum("Traceback" in line for line in lines),
    }
    (out / "soak.json").write_text(json.dumps({"summary": summary, "samples": samples}, indent=1))
    print(json.dumps(summary, indent=1))
    return 0 if code == 130 and not summary["tracebacks"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
