"""ONNX Runtime: CPU, or the CUDA / TensorRT execution providers where they are installed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .base import BackendBase, BackendError


def onnx_cache_dir() -> Path:
    return Path(torch.hub.get_dir()).parent / "rtcolor" / "onnx"


def cpu_has_fast_int8() -> bool:
    """x86 with VNNI (AVX512-VNNI or AVX-VNNI) or arm64 with dot-product instructions: the CPUs where
    ONNX Runtime's int8 convolutions are fast and free of plain AVX2's u8s8 saturation."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return False
    return bool(flags & {"avx512_vnni", "avx_vnni", "asimddp"})


class OrtBackend(BackendBase):
    """Runs an exported ONNX model in an InferenceSession."""

    name = "onnxruntime"

    def __init__(self, onnx_path: str | Path, device: str = "cpu", precision: str = "fp32") -> None:
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise BackendError("onnxruntime is not installed: pip install onnxruntime") from e
        available = ort.get_available_providers()
        if device.startswith("cuda"):
            wanted = [p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider") if p in available]
            if not wanted:
                raise BackendError(
                    "onnxruntime here has no CUDA provider (available: "
                    f"{', '.join(available)}); pip install onnxruntime-gpu, or use --device cpu"
                )
            providers = wanted + ["CPUExecutionProvider"]
        else:
            providers = ["CPUExecutionProvider"]
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(onnx_path), opts, providers=providers)
        self.device = device
        self.precision = precision
        self.providers = self.session.get_providers()
        self.path = Path(onnx_path)

    @classmethod
    def from_checkpoint(cls, checkpoint, device: str = "cpu", precision: str | None = None, log=None) -> OrtBackend:
        """Export the checkpoint once into the cache (keyed by its sha256) and open it. int8 is
        quantised from the fp32 export and kept only if it passes its parity check."""
        from ..export import INT8_RECIPE, export_onnx, quantize_int8

        precision = precision or "fp32"
        if precision not in ("fp32", "fp16", "int8"):
            raise BackendError(f"onnxruntime precision {precision!r}: use fp32, fp16 or int8")
        key = (checkpoint.sha256 or "unsaved")[:16]
        reuse = checkpoint.sha256 != ""  # an unsaved model has no stable key: always rebuild

        def cache_file(tag: str) -> Path:
            return onnx_cache_dir() / f"{key}-{tag}.onnx"

        path = cache_file(f"int8{INT8_RECIPE}" if precision == "int8" else precision)
        if not (reuse and path.is_file()):
            if log:
                log(f"preparing the ONNX {precision} model (once; cached in {path.parent})")
            try:
                if precision == "int8":
                    fp32 = cache_file("fp32")
                    if not (reuse and fp32.is_file()):
                        export_onnx(checkpoint.model, fp32)
                    quantize_int8(fp32, path)
                else:
                    export_onnx(checkpoint.model, path, fp16=precision == "fp16")
            except Exception as e:
                raise BackendError(f"ONNX {precision} build for onnxruntime failed: {e}") from e
        return cls(path, device=device, precision=precision)

    def infer(self, lum: torch.Tensor) -> torch.Tensor:
        x = np.ascontiguousarray(lum.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self.session.run(None, {"L": x})[0])

    def close(self) -> None:
        self.session = None

    def describe(self) -> str:
        return f"onnxruntime on {self.device} ({self.precision}, {self.providers[0]})"
