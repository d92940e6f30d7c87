"""Runtimes behind one protocol, and the automatic choice between them.

``open_backend("auto", ...)`` picks, in order: a valid TensorRT engine for this GPU, torch CUDA
fp16, then the fastest CPU runtime (ONNX Runtime, measured about 1.5x faster than PyTorch eager
for VGG16 on a 2-core x86 machine; see BENCHMARKS.md), and says what it chose.

PyTorch is imported only where it is used: a machine without an NVIDIA driver goes straight to
ONNX Runtime without loading it (importing torch is most of a still picture's time on 2 cores).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ...model.checkpoint import TORCH_EXTRA
from .base import Backend, BackendBase, BackendError

NAMES = ("auto", "torch", "onnxruntime", "onnxruntime-int8", "tensorrt")
# Files an NVIDIA driver (desktop, server or Jetson) leaves; without them there is no CUDA to ask for.
_NVIDIA_FILES = ("/proc/driver/nvidia/version", "/dev/nvidia0", "/dev/nvhost-ctrl-gpu", "/etc/nv_tegra_release")

__all__ = ["Backend", "BackendBase", "BackendError", "NAMES", "open_backend", "available", "cuda_available"]


def _torch_installed() -> bool:
    return importlib.util.find_spec("torch") is not None


def cuda_available() -> bool:
    """Whether PyTorch sees a CUDA GPU; answered without importing torch where no driver is present."""
    if not _torch_installed() or not any(Path(p).exists() for p in _NVIDIA_FILES):
        return False
    import torch

    return torch.cuda.is_available()


def available() -> dict[str, str]:
    """Which runtimes can be imported here, with a short note each."""
    if not _torch_installed():
        out = {"torch": f"not installed (needed for train, adapt, export, GPUs: {TORCH_EXTRA})"}
    elif cuda_available():
        import torch

        out = {"torch": f"{torch.__version__} (CUDA {torch.version.cuda})"}
    else:
        from importlib.metadata import version

        out = {"torch": f"{version('torch')} (CPU)"}
    if importlib.util.find_spec("onnxruntime"):
        import onnxruntime

        from .ort import cpu_has_fast_int8

        out["onnxruntime"] = f"{onnxruntime.__version__} ({', '.join(onnxruntime.get_available_providers())})"
        out["onnxruntime-int8"] = (
            "the CPU default here (the CPU has VNNI / dot product)"
            if cpu_has_fast_int8()
            else "available, but not the default: this CPU lacks VNNI / dot product"
        )
    if importlib.util.find_spec("tensorrt"):
        out["tensorrt"] = "installed"
    return out


def open_backend(
    name: str,
    checkpoint,
    device: str = "auto",
    precision: str | None = None,
    engine_dir: Path | None = None,
    log=None,
) -> Backend:
    """Build the backend ``name`` for a ``checkpoint.ModelFile`` (or a loaded ``weights.Checkpoint``)."""
    if name not in NAMES:
        raise BackendError(f"unknown backend {name!r}; choose one of {', '.join(NAMES)}")
    if device == "auto":
        device = "cuda:0" if cuda_available() else "cpu"
    if name == "auto":
        backend = _auto(checkpoint, device, precision, engine_dir, log)
        if log:
            log(f"backend: {backend.describe()} (auto)")
        return backend
    if name == "torch":
        return _torch_backend(checkpoint, device, precision)
    if name == "onnxruntime":
        from .ort import OrtBackend

        return OrtBackend.from_checkpoint(checkpoint, device=device, precision=precision)
    if name == "onnxruntime-int8":
        from .ort import OrtBackend

        return OrtBackend.from_checkpoint(checkpoint, device="cpu", precision="int8")
    from .trt import TensorRTBackend

    return TensorRTBackend.for_checkpoint(checkpoint, engine_dir=engine_dir)


def _auto(checkpoint, device: str, precision: str | None, engine_dir: Path | None, log=None) -> Backend:
    if device.startswith("cuda"):
        if importlib.util.find_spec("tensorrt"):
            from .trt import TensorRTBackend, find_engine

            engine = find_engine(checkpoint, engine_dir)
            if engine is not None:
                return TensorRTBackend(engine)
        return _torch_backend(checkpoint, device, precision or "fp16")
    if importlib.util.find_spec("onnxruntime"):
        from .ort import OrtBackend, cpu_has_fast_int8

        # int8 (encoder only) where the CPU runs it fast: 2.8x the fp32 network here, ab within
        # 46 dB of fp32 (median over the training photos), the validation split within 0.04 dB
        # (BENCHMARKS.md). A build that fails its parity check falls through to fp32.
        for prec in ("int8", "fp32") if cpu_has_fast_int8() else ("fp32",):
            try:
                return OrtBackend.from_checkpoint(checkpoint, device="cpu", precision=prec, log=log)
            except BackendError as e:
                if log:
                    log(f"{e}; trying the next runtime")
    return _torch_backend(checkpoint, "cpu", None)


def _torch_backend(checkpoint, device: str, precision: str | None) -> Backend:
    if not _torch_installed():
        raise BackendError(f"the torch backend needs PyTorch, which is not installed: {TORCH_EXTRA}")
    from ...model.weights import torch_model
    from .pytorch import TorchBackend

    return TorchBackend(torch_model(checkpoint), device=device, precision=precision)
