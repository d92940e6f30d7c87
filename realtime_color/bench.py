"""Benchmarks: model-only throughput per backend, and the machine's measured matmul peak.

Figures are medians of several timed runs after a warmup; GFLOP/s uses the model's FLOPs as
counted by ``torch.utils.flop_counter`` (multiply-add = 2 FLOPs).
"""

from __future__ import annotations

import platform
import statistics
import time

import torch

from .model import ColorizerNet


def model_flops(model: ColorizerNet, shape: tuple[int, int, int, int]) -> float:
    """FLOPs of one forward pass at ``shape`` (counted once per size at batch 1, on a fresh CPU model)."""
    key = tuple(shape[2:])
    if key not in _FLOPS:
        from torch.utils.flop_counter import FlopCounterMode

        m = ColorizerNet(model.config).eval()
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


def bench_row(backend, model: ColorizerNet, batch: int, hw: tuple[int, int], runs: int = 10) -> dict:
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
