"""How a binned head's layout costs in ONNX Runtime: the head alone, three ways, same numbers,
and the median read-out beside them.

    python scripts/head_layout_bench.py [--height 72 --width 128 --bins 21 --runs 15]

The input is what the decoder gives the head (1 x 32 x H x W; 72x128 for a 144x256 frame). Each
variant is exported to ONNX and timed on the CPU (median of --runs); its output is checked against
the first. Variants:
  nchw-softmax   head conv, softmax over the channel axis, sum over bins (the first export)
  nhwc-logits    head conv, transpose the logits, softmax over the last axis, MatMul
  nhwc-features  transpose the 32 features, head as a MatMul (1/T folded in), softmax, MatMul
                 (model.binned_ab: what ships)
  nhwc-median    the same layout, then a's and b's medians instead of the MatMul
                 (model.binned_ab with estimator "median"; checked against model.binned_median)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as F

from realtime_color.model.network import annealed_mean, bin_centers, binned_ab, binned_median


class NchwSoftmax(torch.nn.Module):
    def __init__(self, head, n, t):
        super().__init__()
        self.head, self.n, self.t = head, n, t

    def forward(self, y):
        p = torch.softmax(self.head(y) / self.t, 1)
        return F.conv2d(p, bin_centers(self.n).t().reshape(2, self.n * self.n, 1, 1))


class NhwcLogits(NchwSoftmax):
    def forward(self, y):
        z = (self.head(y) / self.t).permute(0, 2, 3, 1)
        return (torch.softmax(z, -1) @ bin_centers(self.n)).permute(0, 3, 1, 2)


class NhwcFeatures(NchwSoftmax):
    def forward(self, y):
        return binned_ab(y, self.head, self.n, self.t)


class NhwcMedian(NchwSoftmax):
    def forward(self, y):
        return binned_ab(y, self.head, self.n, self.t, estimator="median")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--height", type=int, default=72)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--bins", type=int, default=21)
    ap.add_argument("--runs", type=int, default=15)
    a = ap.parse_args()
    torch.manual_seed(0)
    n, t = a.bins, 0.6
    head = torch.nn.Conv2d(32, n * n, 1)
    x = torch.randn(1, 32, a.height, a.width)
    with torch.no_grad():
        refs = {"mean": annealed_mean(head(x), n, t).numpy(), "median": binned_median(head(x), n, t).numpy()}
    tmp = Path(tempfile.mkdtemp())
    for cls in (NchwSoftmax, NhwcLogits, NhwcFeatures, NhwcMedian):
        kind = "median" if cls is NhwcMedian else "mean"
        path = tmp / f"{cls.__name__}.onnx"
        torch.onnx.export(cls(head, n, t).eval(), (x,), str(path), input_names=["y"], opset_version=17, dynamo=False)
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for _ in range(3):
            out = sess.run(None, {"y": x.numpy()})[0]
        times = []
        for _ in range(a.runs):
            t0 = time.perf_counter()
            sess.run(None, {"y": x.numpy()})
            times.append(time.perf_counter() - t0)
        diff = float(np.abs(out - refs[kind]).max())
        print(f"{cls.__name__:13s} {np.median(times) * 1000:6.1f} ms  max |diff| vs the {kind}'s definition {diff:.1e}")


if __name__ == "__main__":
    main()
