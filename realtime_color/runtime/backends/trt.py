"""TensorRT runtime: a deserialized plan run with the named-tensor API on a torch CUDA stream.

Written against TensorRT 10.x (JetPack 6) and 11.x: ``set_input_shape``, ``set_tensor_address``
and ``execute_async_v3`` exist in both. Input and output buffers are torch CUDA tensors, so no
other CUDA binding is needed. Engines live in one per-user cache (``default_engine_dir``), each
with a JSON sidecar describing it.
A hint-capable model's engine has a second input, ``hints`` (N, 3, H, W), in the same profile.
Unlike the ONNX Runtime backend (which runs a branch-free cut of the graph for batches without
hints), an engine runs the whole graph, the hint branch included, on every call: with no hints it
is fed an all-zero mask. A branch-free engine for hint-free batches would be a second build of
``onnx_graph.branch_free``'s graph, not done while no TensorRT machine can measure what it saves.
A shape seen twice is captured in a CUDA graph and replayed. Never run: no machine with TensorRT
was available while this was written (see README).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from .base import BackendBase, BackendError, refuse_hints

if TYPE_CHECKING:
    import torch

ENGINE_DIR_ENV = "RTCOLOR_ENGINE_DIR"


def default_engine_dir() -> Path:
    """Where engines live unless ``--engine-dir`` says otherwise: ``$RTCOLOR_ENGINE_DIR``, else the
    per-user cache (``$XDG_CACHE_HOME/rtcolor/engines``, ``~/.cache/rtcolor/engines``). Not relative
    to the working directory, so an engine built in one folder is found from every other."""
    env = os.environ.get(ENGINE_DIR_ENV)
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "rtcolor" / "engines"


def _torch_dtype(trt_name: str):
    import torch  # here, not at the top: `rtcolor info` reads sidecars on machines without torch

    return {"FLOAT": torch.float32, "HALF": torch.float16}[trt_name]


def _require_tensorrt():
    try:
        import tensorrt as trt
    except ImportError as e:
        raise BackendError(
            "TensorRT is not installed: pip install 'rtcolor[tensorrt]' (needs an NVIDIA GPU; on "
            "Jetson it comes with JetPack)"
        ) from e
    import torch

    if not torch.cuda.is_available():
        raise BackendError("the TensorRT backend needs a CUDA GPU, and PyTorch sees none here")
    return trt


def gpu_identity() -> dict:
    """What an engine is specific to on this machine."""
    import tensorrt as trt
    import torch

    props = torch.cuda.get_device_properties(0)
    return {"tensorrt": trt.__version__, "gpu": props.name, "compute_capability": f"{props.major}.{props.minor}"}


def engine_problem(sidecar: dict, model_sha256: str | None = None) -> str | None:
    """Why an engine described by ``sidecar`` cannot run here (None when it can)."""
    here = gpu_identity()
    for key in ("tensorrt", "gpu", "compute_capability"):
        if sidecar.get(key) != here[key]:
            return f"built for {key} {sidecar.get(key)!r}, this machine has {here[key]!r}"
    if model_sha256 and sidecar.get("model_sha256") != model_sha256:
        return "built from a different model file"
    return None


def read_sidecars(folder: Path | None = None) -> list[tuple[Path, dict]]:
    """(plan path, sidecar metadata) of every readable ``*.json`` sidecar in ``folder``."""
    folder = Path(folder or default_engine_dir())
    found = []
    for side in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            found.append((side.with_suffix(".engine"), json.loads(side.read_text())))
        except (OSError, json.JSONDecodeError):
            continue
    return found


def find_engine(checkpoint, engine_dir: Path | None = None) -> Path | None:
    """A valid engine for ``checkpoint`` on this GPU and TensorRT, preferring fp16."""
    candidates = [
        (meta.get("precision") != "fp16", plan)
        for plan, meta in read_sidecars(engine_dir)
        if plan.is_file() and engine_problem(meta, checkpoint.sha256) is None
    ]
    return sorted(candidates)[0][1] if candidates else None


class TensorRTBackend(BackendBase):
    """Runs a TensorRT plan; the input shape must lie inside the engine's optimization profile."""

    name = "tensorrt"

    def __init__(self, plan: str | Path, cuda_graph: bool = True) -> None:
        trt = _require_tensorrt()
        plan = Path(plan)
        side = plan.with_suffix(".json")
        self.meta = json.loads(side.read_text()) if side.is_file() else {}
        if self.meta:
            problem = engine_problem(self.meta)
            if problem:
                raise BackendError(
                    f"engine {plan} was {problem}; rebuild it here with `rtcolor build-engine --model MODEL --fp16`"
                )
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        self.engine = self.runtime.deserialize_cuda_engine(plan.read_bytes())
        if self.engine is None:
            raise BackendError(f"{plan} could not be deserialized (corrupt, or another TensorRT version)")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.input = next((n for n in inputs if n != "hints"), inputs[0])
        self.hints_input = "hints" if "hints" in inputs else None
        self.takes_hints = self.hints_input is not None
        outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self.output = "ab" if "ab" in outputs else outputs[0]
        # A hint-capable model's engine also has the distribution output ("bins"): bound, not read.
        self.extra_outputs = [n for n in outputs if n != self.output]
        self.in_dtype = _torch_dtype(self.engine.get_tensor_dtype(self.input).name)
        self.out_dtype = _torch_dtype(self.engine.get_tensor_dtype(self.output).name)
        self.profile = self.engine.get_tensor_profile_shape(self.input, 0)  # (min, opt, max)
        self.device = "cuda:0"
        self.precision = self.meta.get("precision", "fp16")
        import torch

        self.stream = torch.cuda.Stream()
        self.path = plan
        # Video runs one shape for hours: after two eager runs at a shape, the enqueue is captured
        # in a CUDA graph and replayed (no per-layer launch cost). A new shape drops the graph.
        self.use_graph = cuda_graph
        self._graph = None
        self._graph_shape: tuple | None = None
        self._seen: dict[tuple, int] = {}

    @classmethod
    def for_checkpoint(cls, checkpoint, engine_dir: Path | None = None):
        _require_tensorrt()
        plan = find_engine(checkpoint, engine_dir)
        if plan is None:
            where = engine_dir or default_engine_dir()
            raise BackendError(
                f"no TensorRT engine for this model, GPU and TensorRT version in {where}/; "
                "build one with `rtcolor build-engine --fp16`"
            )
        return cls(plan)

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        lo, _, hi = (tuple(s) for s in self.profile)
        if any(v < a or v > b for v, a, b in zip(shape, lo, hi, strict=True)):
            raise BackendError(
                f"input {shape[2]}x{shape[3]} (batch {shape[0]}) is outside the engine profile "
                f"(min {lo[2]}x{lo[3]}, max {hi[2]}x{hi[3]}, batch <= {hi[0]}); rebuild with "
                f"--max-shape {shape[0]}x{shape[2]}x{shape[3]} or lower --size"
            )

    def _bind(self, shape: tuple) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        import torch

        self.context.set_input_shape(self.input, shape)
        x = torch.empty(shape, dtype=self.in_dtype, device="cuda")
        self.context.set_tensor_address(self.input, x.data_ptr())
        h = None
        if self.hints_input is not None:
            hshape = (shape[0], 3, *shape[2:])
            self.context.set_input_shape(self.hints_input, hshape)
            h = torch.zeros(hshape, dtype=self.in_dtype, device="cuda")
            self.context.set_tensor_address(self.hints_input, h.data_ptr())
        out = torch.empty(tuple(self.context.get_tensor_shape(self.output)), dtype=self.out_dtype, device="cuda")
        self.context.set_tensor_address(self.output, out.data_ptr())
        self._extra = []  # every output needs an address; these are kept alive with the binding
        for name in self.extra_outputs:
            dtype = _torch_dtype(self.engine.get_tensor_dtype(name).name)
            buf = torch.empty(tuple(self.context.get_tensor_shape(name)), dtype=dtype, device="cuda")
            self.context.set_tensor_address(name, buf.data_ptr())
            self._extra.append(buf)
        return x, h, out

    @staticmethod
    def _fill(buf, hints) -> None:
        """Copy ``hints`` into the bound hint buffer, or zero it (no hints: an empty mask)."""
        if buf is None:
            return
        if hints is None:
            buf.zero_()
        else:
            import torch

            buf.copy_(torch.as_tensor(hints), non_blocking=True)

    def infer(self, lum, hints=None) -> torch.Tensor:
        import torch

        if not self.takes_hints:
            refuse_hints(hints, f"the engine {self.path.name}")
        lum = torch.as_tensor(lum)
        shape = tuple(lum.shape)
        self._check_shape(shape)
        if self._graph is not None and shape == self._graph_shape:
            self._x.copy_(lum, non_blocking=True)
            self._fill(self._h, hints)
            self._graph.replay()
            return self._out.clone()
        self._graph = None  # the context is rebound below; a captured graph would go stale
        x, h, out = self._bind(shape)
        x.copy_(lum, non_blocking=True)
        self._fill(h, hints)
        self.stream.wait_stream(torch.cuda.current_stream())
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise BackendError("TensorRT execution failed")
        torch.cuda.current_stream().wait_stream(self.stream)
        x.record_stream(self.stream)
        if h is not None:
            h.record_stream(self.stream)
        self._seen[shape] = self._seen.get(shape, 0) + 1
        if self.use_graph and self._seen[shape] >= 2:
            self._capture(shape)
        return out

    def _capture(self, shape: tuple) -> None:
        """Capture the enqueue at ``shape`` into a CUDA graph with its own static buffers."""
        import torch

        self._x, self._h, self._out = self._bind(shape)
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph, stream=self.stream):
                self.context.execute_async_v3(self.stream.cuda_stream)
        except RuntimeError:
            self.use_graph = False  # some engines cannot be captured; stay eager
            return
        self._graph, self._graph_shape = graph, shape

    def close(self) -> None:
        self._graph = None
        self.context = self.engine = self.runtime = None

    def describe(self) -> str:
        return f"tensorrt on {self.device} ({self.precision}, {self.path.name})"
