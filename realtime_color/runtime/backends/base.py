"""The one small protocol every runtime implements.

A backend takes a batch of normalized L, ``(N, 1, h, w)`` float32 with h, w multiples of 16 (a
numpy array; the torch runtimes also take tensors), and returns normalized ab ``(N, 2, h/2, w/2)``:
a numpy array from ONNX Runtime, a tensor on the device from the torch and TensorRT runtimes (the
colorizer brings either to the host). Backends know nothing of video, color or files.

A hint-capable model (``ModelConfig.hint_channels``) also takes ``hints``, ``(N, 3, h, w)`` float32
at the same size: a/110, b/110 at hinted pixels and a mask (``guidance.hints.rasterize``). None
means no hints. A model without hint inputs refuses hints that hint anything (``NoHintsError``).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from ...errors import RtcolorError


class BackendError(RtcolorError, RuntimeError):
    """A runtime that cannot be used here, with the reason and the fix."""


class NoHintsError(RtcolorError, ValueError):
    """Hints were given to a model that has no hint inputs."""


def has_hints(hints) -> bool:
    """Whether a hints batch (N, 3, h, w) marks any pixel (None and an all-zero mask do not)."""
    return hints is not None and bool((hints[:, 2] > 0).any())


def refuse_hints(hints, what: str) -> None:
    """Raise ``NoHintsError`` if ``hints`` hint anything: ``what`` (a model) takes none."""
    if has_hints(hints):
        raise NoHintsError(
            f"{what} takes no hints (it was trained without hint inputs); use a hint-capable model such "
            "as the bundled default, or drop the hints"
        )


@runtime_checkable
class Backend(Protocol):
    """What the colorizer needs from a runtime."""

    name: str  # "torch", "onnxruntime", "tensorrt"
    device: str  # "cpu", "cuda:0", ...
    precision: str  # "fp32", "fp16" or "int8"

    takes_hints: bool  # whether the model has hint inputs

    def infer(self, lum, hints=None):
        """Normalized L batch (and hints) -> normalized ab batch (numpy, or a tensor on this backend's device)."""
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
    takes_hints = False

    def infer(self, lum, hints=None):  # pragma: no cover - abstract
        raise NotImplementedError

    def warmup(self, shape: tuple[int, int, int, int]) -> None:
        self.infer(np.zeros(shape, np.float32))

    def close(self) -> None:
        pass

    def describe(self) -> str:
        return f"{self.name} on {self.device} ({self.precision})"
