"""What the median read-out costs the whole network: one model exported with each estimator, run
side by side in ONNX Runtime on the CPU (int8 and fp32), medians of alternating runs.

    python scripts/estimator_bench.py [MODEL] [--height 144 --width 256 --runs 30]

MODEL is a binned checkpoint (default: the bundled model). Each estimator's network is exported
and quantized as the shipped files are (``export.export_onnx``, ``export.quantize_int8``), then
the four sessions run in turn, so the machine's drift touches them alike.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from realtime_color.model.checkpoint import default_model_path
from realtime_color.model.network import ESTIMATORS
from realtime_color.model.weights import load_checkpoint
from realtime_color.runtime.export import export_onnx, quantize_int8


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", nargs="?", default=None)
    ap.add_argument("--height", type=int, default=144)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    ckpt = load_checkpoint(a.model or default_model_path())
    if not ckpt.model.config.ab_bins:
        print("the model predicts ab directly: it has no distribution to read out", file=sys.stderr)
        return 2
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = a.threads
    sessions = {}
    with tempfile.TemporaryDirectory(prefix="rtcolor-estimators-") as tmp:
        for estimator in ESTIMATORS:
            net = copy.deepcopy(ckpt.model)
            net.config.estimator = estimator
            fp32 = export_onnx(net, Path(tmp) / f"{estimator}-fp32.onnx")
            int8 = Path(tmp) / f"{estimator}-int8.onnx"
            print(f"{estimator}: int8 {quantize_int8(fp32, int8)}")
            for precision, path in (("int8", int8), ("fp32", fp32)):
                sessions[(estimator, precision)] = ort.InferenceSession(
                    str(path), opts, providers=["CPUExecutionProvider"]
                )
    x = np.random.default_rng(0).random((1, 1, a.height, a.width), dtype=np.float32)
    name = next(iter(sessions.values())).get_inputs()[0].name
    times = {k: [] for k in sessions}
    for s in sessions.values():
        for _ in range(3):
            s.run(None, {name: x})
    for _ in range(a.runs):
        for k, s in sessions.items():
            t0 = time.perf_counter()
            s.run(None, {name: x})
            times[k].append(time.perf_counter() - t0)
    print(f"{a.height}x{a.width}, {a.runs} runs each, {a.threads} threads:")
    for precision in ("int8", "fp32"):
        ms = {e: np.median(times[(e, precision)]) * 1000 for e in ESTIMATORS}
        print(f"  {precision}: " + ", ".join(f"{e} {v:.1f} ms" for e, v in ms.items()), end="")
        print(f"  (median / mean {ms['median'] / ms['mean']:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
