"""GPU model-only benchmark (torch fp32 / fp16 / fp16 + CUDA graphs), printed as JSON lines.

Run on a CUDA machine: python tools/gpu_bench.py [MODEL.safetensors]
"""

from __future__ import annotations

import json
import sys

import torch

from realtime_color.evaluation.bench import bench_row, machine_info, matmul_peak
from realtime_color.model.network import build_model
from realtime_color.model.weights import load_checkpoint
from realtime_color.runtime.backends.pytorch import TorchBackend


def main() -> None:
    model = load_checkpoint(sys.argv[1]).model if len(sys.argv) > 1 else build_model().eval()
    info = machine_info()
    info["matmul_tflops_fp16"] = round(matmul_peak("cuda", torch.float16, n=8192) / 1e3, 1)
    info["matmul_tflops_fp32"] = round(matmul_peak("cuda", torch.float32, n=8192) / 1e3, 1)
    print(json.dumps({"machine": info}), flush=True)
    for precision, graph in (("fp32", False), ("fp16", False), ("fp16", True)):
        backend = TorchBackend(model, device="cuda", precision=precision, cuda_graph=graph)
        for batch in (1, 8):
            for hw in ((144, 256), (368, 640)):
                row = bench_row(backend, model, batch, hw, runs=30)
                print(json.dumps(row), flush=True)
        backend.close()


if __name__ == "__main__":
    main()
