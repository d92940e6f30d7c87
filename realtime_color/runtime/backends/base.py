"""The one small protocol every runtime implements.

A backend takes a batch of normalized L, ``(N, 1, h, w)`` float32 with h, w multiples of 16 (a
numpy array; the torch runtimes also take tensors), and returns normalized ab ``(N, 2, h/2, w/2)``:
a numpy array from ONNX Runtime, a tensor on the device from the torch and TensorRT runtimes (the
colorizer brings either to the host). Backends know nothing of video, color or files.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from ...errors import RtcolorError


class BackendError(RtcolorError, RuntimeError):
    """A runtime that cannot be used here, with the reason and the fix."""


@runtime_checkable
class Backend(Protocol):
    """What the colorizer needs from a runtime."""

    name: str  # "torch", "onnxruntime", "tensorrt"
    device: str  # "cpu", "cuda:0", ...
    precision: str  # "fp32", "fp16" or "int8"

    def infer(self, lum):
        """Normalized L batch -> normalized ab batch (numpy, or a tensor on this backend's device)."""
        ...

    def warmup(self, shape: tuple[int, int, int, int]) -> None:
        """Run once at ``shape`` so that the first real frame is not slow."""
        ...

    def close(self) -> None:
        """Release the runtime's resources."""
        ...

    def describe(self) -> str:
        """One line saying what runs where, for logs."""
        ...


class BackendBase:
    """Shared defaults: warmup runs ``infer`` on zeros; describe names runtime, device, precision."""

    name = "base"
    device = "cpu"
    precision = "fp32"

    def infer(self, lum):  # pragma: no cover - abstract
        raise NotImplementedError

    def warmup(self, shape: tuple[int, int, int, int]) -> None:
        self.infer(np.zeros(shape, np.float32))

    def close(self) -> None:
        pass

    def describe(self) -> str:
        return f"{self.name} on {self.device} ({self.precision})"
