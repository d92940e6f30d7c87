"""What the hint inputs cost the int8 CPU network: the same weights exported with and without the
hint branch, timed in ONNX Runtime at one shape.

    python tools/hint_cost_bench.py --model realtime_color/model/bundled/default.safetensors --shape 144x256

Prints the median and quartiles of ``runs`` calls of each: the network without hint inputs (the
old, branch-free export), the hint-capable graph given an all-zero mask (what colorizing without
hints ran before the backend learned to skip the branch), and the onnxruntime backend on the
hint-capable file (what colorizing runs now) without hints (the branch-free cut) and with 10 hints
(the whole graph).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def _time(call, runs: int) -> list[float]:
    for _ in range(3):
        call()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="a hint-capable checkpoint")
    parser.add_argument("--shape", default="144x256")
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()

    import onnxruntime as ort

    from realtime_color.model.network import ModelConfig, build_model
    from realtime_color.model.weights import load_checkpoint
    from realtime_color.runtime.backends.ort import OrtBackend
    from realtime_color.runtime.export import export_onnx, parity_hints, quantize_int8

    h, w = (int(v) for v in args.shape.split("x"))
    ckpt = load_checkpoint(args.model)
    if not ckpt.model.config.hint_channels:
        raise SystemExit(f"{args.model} has no hint inputs")
    base = build_model(ModelConfig.from_dict({**ckpt.model.config.to_dict(), "hint_channels": 0})).eval()
    base.load_state_dict({k: v for k, v in ckpt.model.state_dict().items() if not k.startswith("hints.")})
    opts = ort.SessionOptions()
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    x = np.random.default_rng(0).random((1, 1, h, w), dtype=np.float32)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, model in (("without hint inputs", base), ("with hint inputs", ckpt.model)):
            fp32 = export_onnx(model, Path(tmp) / f"{len(rows)}.onnx")
            int8 = Path(tmp) / f"{len(rows)}-int8.onnx"
            quantize_int8(fp32, int8)
            sess = ort.InferenceSession(str(int8), opts, providers=["CPUExecutionProvider"])
            if name.startswith("without"):
                rows[name] = _time(lambda s=sess: s.run(["ab"], {"L": x}), args.runs)
                continue
            zeros = {"L": x, "hints": np.zeros((1, 3, h, w), np.float32)}
            rows[f"{name}, zeros fed"] = _time(lambda s=sess, f=zeros: s.run(["ab"], f), args.runs)
            backend = OrtBackend(int8, precision="int8")
            rows["backend, no hints (cut)"] = _time(lambda b=backend: b.infer(x), args.runs)
            ten = parity_hints((1, 1, h, w), count=10).numpy()
            rows["backend, 10 hints (whole)"] = _time(lambda b=backend, t=ten: b.infer(x, t), args.runs)
    print(f"int8 ONNX Runtime, CPU, {h}x{w}, batch 1, {args.runs} runs")
    for name, t in rows.items():
        q = statistics.quantiles(t, n=4)
        print(
            f"{name:34s} median {1000 * statistics.median(t):6.1f} ms  (quartiles {1000 * q[0]:.1f}-{1000 * q[2]:.1f})"
        )


if __name__ == "__main__":
    main()
