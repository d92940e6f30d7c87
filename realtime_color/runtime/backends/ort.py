"""ONNX Runtime: CPU, or the CUDA / TensorRT execution providers where they are installed.

The bundled default model ships as ONNX beside its checkpoint (``model/bundled/default-fp32.onnx`` and
``default-int8.onnx``, each recording the sha256 of the checkpoint it came from), so colorizing
with it needs neither PyTorch nor a first-run export. Other checkpoints are exported once into a
cache keyed by their sha256; that export needs PyTorch.

A hint-capable graph is opened twice: cut before its hint branch (``onnx_graph.branch_free``),
which every batch without hints runs, so the hint inputs cost nothing there; and whole, opened
on the first batch with hints or the first ``infer_bins`` (the editor's suggested colors).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from ...model.checkpoint import TORCH_EXTRA, shipped_onnx_path
from ..onnx_meta import GRAPH_VERSION, INT8_RECIPE, INT8_RECIPE_KEY, SOURCE_SHA256_KEY, ExportInfo, export_props
from .base import BackendBase, BackendError, refuse_hints

PRECISIONS = ("fp32", "fp16", "int8")
# export.py's names (it needs torch): the hint input, the ab output and a binned head's distribution.
HINTS_INPUT, OUTPUT, BINS_OUTPUT = "hints", "ab", "bins"


def onnx_cache_dir() -> Path:
    """Where exports of non-bundled models are kept: beside PyTorch's hub cache, found the way
    ``torch.hub.get_dir()`` finds it ($TORCH_HOME, else $XDG_CACHE_HOME/torch), without torch."""
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "torch"
    )
    return Path(torch_home) / "rtcolor" / "onnx"


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
            import onnx
            import onnxruntime as ort

            from ..onnx_graph import branch_free
        except ImportError as e:
            raise BackendError(f"{e.name or 'onnxruntime'} is not installed: pip install onnx onnxruntime") from e
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
        # Idle pool threads sleep instead of spinning: in a video job the network runs on one
        # frame in 16 while decode, flow and the encoder need the same cores (spinning cost 0.9
        # of 6.5 CPU-seconds on a 10 s 720p clip, 2 cores; the network's own time is unchanged).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
        self._ort, self._opts, self._providers = ort, opts, providers
        self.device = device
        self.precision = precision
        self.path = Path(onnx_path)
        model = onnx.load(str(onnx_path))
        self.metadata = {p.key: p.value for p in model.metadata_props}
        self.export_info = ExportInfo.from_props(self.metadata)  # which model this file came from
        self.takes_hints = HINTS_INPUT in {i.name for i in model.graph.input}
        self.has_bins = BINS_OUTPUT in {o.name for o in model.graph.output}
        # A hint-capable graph runs its hint branch on every call, hints or not; batches without
        # hints run the same graph cut before the branch instead (onnx_graph.branch_free: the same
        # weights and output, exactly), and the whole graph is loaded on the first batch with hints.
        cut = branch_free(model, OUTPUT, HINTS_INPUT) if self.takes_hints else None
        self._model = model if cut is not None else None  # kept to open the whole graph later
        self.base_session = self._open(cut if cut is not None else model)
        self._full_session = None if cut is not None else self.base_session
        self._lock = threading.Lock()
        self.providers = self.base_session.get_providers()

    def _open(self, model):
        return self._ort.InferenceSession(model.SerializeToString(), self._opts, providers=self._providers)

    @property
    def session(self):
        """The whole graph (hints and the bins output); opened on first use when a branch-free cut
        serves batches without hints."""
        with self._lock:
            if self._full_session is None and self._model is not None:
                self._full_session = self._open(self._model)
                self._model = None
            return self._full_session

    @classmethod
    def from_checkpoint(cls, checkpoint, device: str = "cpu", precision: str | None = None, log=None) -> OrtBackend:
        """The shipped ONNX file for the bundled default, if it was built from this very checkpoint;
        otherwise export the checkpoint once into the cache (keyed by its sha256 and the export
        graph's version) and open it. int8 is quantized from the fp32 export and kept only if it
        passes its parity check."""
        precision = precision or "fp32"
        if precision not in PRECISIONS:
            raise BackendError(f"onnxruntime precision {precision!r}: use fp32, fp16 or int8")
        shipped = _shipped(checkpoint, device, precision, log)
        if shipped is not None:
            return shipped
        key = (checkpoint.sha256 or "unsaved")[:16]
        reuse = checkpoint.sha256 != ""  # an unsaved model has no stable key: always rebuild

        def cache_file(tag: str) -> Path:
            return onnx_cache_dir() / f"{key}-g{GRAPH_VERSION}-{tag}.onnx"

        path = cache_file(f"int8{INT8_RECIPE}" if precision == "int8" else precision)
        if reuse and path.is_file():
            cached = cls(path, device=device, precision=precision)
            info = cached.export_info  # None: cached before exports described themselves (keyed by sha256 all the same)
            if info is None or info.source_sha256 == checkpoint.sha256:
                return cached
            cached.close()
            reuse = False  # a file under this key from another model: export again
        if log:
            log(f"preparing the ONNX {precision} model (once; cached in {path.parent})")
        try:
            from ...model.weights import torch_model
            from ..export import export_onnx, quantize_int8

            if precision == "int8":
                fp32 = cache_file("fp32")
                if not (reuse and fp32.is_file()):
                    export_onnx(torch_model(checkpoint), fp32, props=export_props(checkpoint, "fp32"))
                quantize_int8(fp32, path)
            else:
                props = export_props(checkpoint, precision)
                export_onnx(torch_model(checkpoint), path, fp16=precision == "fp16", props=props)
        except ImportError as e:  # no torch: the export cannot be made here
            raise BackendError(
                f"{getattr(checkpoint, 'path', 'this model')} has no ONNX export here yet, and making one "
                f"needs PyTorch ({e}): install it with {TORCH_EXTRA} (once; the export is cached), "
                "or use the bundled default model"
            ) from e
        except Exception as e:
            raise BackendError(f"ONNX {precision} build for onnxruntime failed: {e}") from e
        return cls(path, device=device, precision=precision)

    def infer(self, lum, hints=None) -> np.ndarray:
        if hasattr(lum, "detach"):  # a torch tensor (training-time callers)
            lum = lum.detach().cpu().numpy()
        x = np.ascontiguousarray(lum, dtype=np.float32)
        if hints is not None and hasattr(hints, "detach"):
            hints = hints.detach().cpu().numpy()
        if not self.takes_hints:
            refuse_hints(hints, f"the model in {self.path.name}")
        elif hints is not None and np.any(np.asarray(hints)[:, 2] > 0):  # a hint in some picture
            feed = {"L": x, HINTS_INPUT: np.ascontiguousarray(hints, dtype=np.float32)}
            return self.session.run([OUTPUT], feed)[0]
        if self.base_session is self._full_session and self.takes_hints:  # no cut: no hints is an all-zero mask
            return self.base_session.run([OUTPUT], {"L": x, HINTS_INPUT: _no_hints(x)})[0]
        return self.base_session.run([OUTPUT], {"L": x})[0]

    def infer_bins(self, lum, hints=None) -> np.ndarray:
        """The binned head's tempered distribution (N, h/2, w/2, bins), for suggested colors; off
        the per-frame path (the whole graph's second output, copied only here)."""
        if not self.has_bins:
            raise BackendError(
                f"{self.path.name} has no per-pixel color distribution (export a binned, hint-capable model)"
            )
        x = np.ascontiguousarray(lum, dtype=np.float32)
        hints = _no_hints(x) if hints is None else np.ascontiguousarray(hints, np.float32)
        return self.session.run([BINS_OUTPUT], {"L": x, HINTS_INPUT: hints})[0]

    def close(self) -> None:
        self._full_session = self.base_session = self._model = None

    def describe(self) -> str:
        return f"onnxruntime on {self.device} ({self.precision}, {self.providers[0]})"


def _no_hints(x: np.ndarray) -> np.ndarray:
    return np.zeros((x.shape[0], 3, *x.shape[2:]), np.float32)


def shipped_problem(metadata: dict, sha256: str, precision: str) -> str | None:
    """Why a shipped ONNX file described by ``metadata`` cannot stand in for the checkpoint with
    ``sha256`` (None when it can)."""
    source = metadata.get(SOURCE_SHA256_KEY)
    if source != sha256:
        return f"it was built from checkpoint sha256 {str(source)[:16]}..., not this one ({sha256[:16]}...)"
    if precision == "int8" and metadata.get(INT8_RECIPE_KEY) != INT8_RECIPE:
        return f"its int8 recipe is {metadata.get(INT8_RECIPE_KEY)!r}, this rtcolor uses {INT8_RECIPE!r}"
    return None


def _shipped(checkpoint, device: str, precision: str, log) -> OrtBackend | None:
    if not getattr(checkpoint, "is_default", False) or not checkpoint.sha256:
        return None
    path = shipped_onnx_path(precision)
    if not path.is_file():
        return None
    backend = OrtBackend(path, device=device, precision=precision)
    problem = shipped_problem(backend.metadata, checkpoint.sha256, precision)
    if problem is None:
        return backend
    backend.close()
    if log:
        log(
            f"warning: the shipped {path.name} does not match the default model: {problem}; regenerate "
            "it with `python tools/build_default_onnx.py` (using a cached export meanwhile)"
        )
    return None
