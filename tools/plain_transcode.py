"""The yardstick for `rtcolor colorize`: a plain PyAV decode + libx264 encode, nothing else.

    python tools/plain_transcode.py IN.mp4 OUT.mp4 [--preset veryfast] [--crf 18]

The same libraries, encoder, preset and quality as `rtcolor colorize`, and the same frames, so
the whole-process time of `rtcolor colorize IN -o OUT` over this one is what colorizing costs
(BENCHMARKS.md). `rtcolor bench` times the same loop in-process (bench.transcode_fps).
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    import av

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--preset", default="veryfast")
    parser.add_argument("--crf", default="18")
    args = parser.parse_args()
    t = time.perf_counter()
    n = 0
    with av.open(args.input) as inp, av.open(args.output, "w") as out:
        vs = inp.streams.video[0]
        vs.thread_type = "AUTO"
        s = out.add_stream("libx264", rate=vs.average_rate)
        s.width, s.height, s.pix_fmt = vs.codec_context.width, vs.codec_context.height, "yuv420p"
        s.options = {"preset": args.preset, "crf": str(args.crf)}
        for f in inp.decode(vs):
            out.mux(s.encode(f.reformat(format="yuv420p")))
            n += 1
        out.mux(s.encode())
    dt = time.perf_counter() - t
    print(f"{n} frames in {dt:.2f} s ({n / dt:.1f} fps)")


if __name__ == "__main__":
    main()
