"""TensorRT engine builds: ONNX -> plan in the engine cache, with the cache key and a JSON sidecar.

Engines live in one per-user folder (``backends.trt.default_engine_dir``: ``$RTCOLOR_ENGINE_DIR``,
else ``$XDG_CACHE_HOME/rtcolor/engines`` or ``~/.cache/rtcolor/engines``; ``--engine-dir``
overrides it), so every working directory finds them. The engine file name holds everything that
invalidates an engine (model sha256, TensorRT version, GPU name and compute capability, precision,
shape profile), and the sidecar repeats it as JSON, so the plan itself stays a plain TensorRT file
that ``trtexec`` and Polygraphy can read.

Precision across versions:

* TensorRT 10.x (JetPack 6): an fp32 ONNX with ``BuilderFlag.FP16`` (TensorRT picks fp16 kernels).
* TensorRT 11.x: ``BuilderFlag.FP16`` is gone and every network is strongly typed; fp16 is baked
  into the ONNX (``export_onnx(fp16=True)``), so the graph's types are the engine's types.

Either way the engine is inspected after the build (layer formats from the engine inspector)
because a build can silently fall back to fp32, and a parity check against PyTorch follows.

This module has never run on a machine with TensorRT (none was available while writing it); it
follows the TensorRT 10/11 Python API documentation. The pure parts (shapes, names) are tested.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import RtcolorError
from ..media.images import atomic_write
from .backends.trt import default_engine_dir


class EngineBuildError(RtcolorError, RuntimeError):
    """TensorRT could not build a usable engine (the input was fine: exit status 1)."""

    exit_code = 1


@dataclass(frozen=True)
class Profile:
    """Optimization profile for the input L: (batch, height, width) at min, opt and max."""

    min: tuple[int, int, int] = (1, 64, 64)
    opt: tuple[int, int, int] = (1, 144, 256)
    max: tuple[int, int, int] = (8, 512, 512)

    def __post_init__(self):
        for name in ("min", "opt", "max"):
            b, h, w = getattr(self, name)
            if b < 1 or h % 16 or w % 16 or h < 16 or w < 16:
                raise ValueError(f"--{name}-shape {b}x{h}x{w}: batch >= 1 and height, width multiples of 16")
        if not all(a <= o <= m for a, o, m in zip(self.min, self.opt, self.max, strict=True)):
            raise ValueError(f"shapes must satisfy min <= opt <= max in every dimension, got {self}")

    def tensor_shapes(self) -> tuple[tuple[int, ...], ...]:
        return tuple((b, 1, h, w) for b, h, w in (self.min, self.opt, self.max))

    def tag(self) -> str:
        """min, opt and max, each BxHxW: two profiles that differ anywhere build different engines."""
        return "-".join("x".join(map(str, shape)) for shape in (self.min, self.opt, self.max))


def parse_shape(text: str) -> tuple[int, int, int]:
    """'8x288x512' (batch x height x width) -> (8, 288, 512); 'HxW' means batch 1."""
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) == 2:
        parts = [1, *parts]
    if len(parts) != 3 or min(parts) < 1:
        raise ValueError(f"shape {text!r} must look like BATCHxHEIGHTxWIDTH, e.g. 8x288x512")
    return tuple(parts)  # type: ignore[return-value]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def engine_name(model_sha256: str, identity: dict, precision: str, profile: Profile) -> str:
    """The cache key as a file stem: model, TensorRT, GPU + compute capability, precision, profile."""
    cc = identity["compute_capability"].replace(".", "")
    return (
        f"rtcolor_{model_sha256[:12]}_{_slug(identity['gpu'])}_sm{cc}_trt{identity['tensorrt']}"
        f"_{precision}_{profile.tag()}"
    )


def fp16_layer_fraction(engine_json: str) -> float:
    """Fraction of the engine's layers whose outputs are half precision (from the inspector's JSON)."""
    info = json.loads(engine_json)
    layers = [layer for layer in info.get("Layers", []) if isinstance(layer, dict)]
    if not layers:
        return 0.0
    half = 0
    for layer in layers:
        # TensorRT 10 writes one "Format/Datatype" string per output; 11 splits it into "Format"
        # and "DataType": read every string field of the outputs either way.
        fields = " ".join(
            str(v) for o in layer.get("Outputs", []) if isinstance(o, dict) for v in o.values() if isinstance(v, str)
        )
        half += "Half" in fields or "FP16" in fields.upper()
    return half / len(layers)


def build_engine(
    checkpoint,
    fp16: bool = True,
    profile: Profile | None = None,
    engine_dir: Path | None = None,
    workspace_gb: float = 4.0,
    log=print,
) -> Path:
    """Build (or reuse) the engine for ``checkpoint`` on this GPU in ``engine_dir`` (the engine
    cache by default); returns the plan's path."""
    from .backends.trt import _require_tensorrt, gpu_identity
    from .export import export_onnx
    from .onnx_meta import export_props

    trt = _require_tensorrt()
    profile = profile or Profile()
    precision = "fp16" if fp16 else "fp32"
    identity = gpu_identity()
    engine_dir = Path(engine_dir or default_engine_dir())
    engine_dir.mkdir(parents=True, exist_ok=True)
    stem = engine_name(checkpoint.sha256, identity, precision, profile)
    plan_path, side_path = engine_files(engine_dir, stem)
    if plan_path.is_file() and side_path.is_file():
        log(f"engine already built: {plan_path}")
        return plan_path

    has_fp16_flag = hasattr(trt.BuilderFlag, "FP16")  # TensorRT 10 yes, 11 no
    strongly_typed = fp16 and not has_fp16_flag
    onnx_path = export_onnx(
        checkpoint.model, engine_dir / f"{stem}.onnx", fp16=strongly_typed, props=export_props(checkpoint, precision)
    )
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network()  # 10.x: weakly typed with the FP16 flag; 11.x: always strongly typed
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineBuildError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED  # layer formats for the fp16 check
    if fp16 and has_fp16_flag:
        config.set_flag(trt.BuilderFlag.FP16)
    opt_profile = builder.create_optimization_profile()
    shapes = profile.tensor_shapes()
    for i in range(network.num_inputs):
        # A hint-capable model has a second input, hints (N, 3, H, W), over the same batch and size
        # range as L (TensorRT 10 API; never run here).
        inp = network.get_input(i)
        channels = 1 if inp.name == "L" else 3
        opt_profile.set_shape(inp.name, *((s[0], channels, *s[2:]) for s in shapes))
    config.add_optimization_profile(opt_profile)

    cache_path = engine_dir / f"timing_{_slug(identity['gpu'])}_trt{identity['tensorrt']}.cache"
    cache = config.create_timing_cache(cache_path.read_bytes() if cache_path.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    log(f"building {precision} engine ({'strongly typed' if strongly_typed else 'builder flag'}); minutes ...")
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise EngineBuildError("TensorRT failed to build the engine (see the messages above)")
    atomic_write(cache_path, bytes(config.get_timing_cache().serialize()))

    engine = trt.Runtime(logger).deserialize_cuda_engine(bytes(plan))
    fraction = fp16_layer_fraction(
        engine.create_engine_inspector().get_engine_information(trt.LayerInformationFormat.JSON)
    )
    if fp16 and fraction < 0.5:  # nothing was stored: the cache holds only engines that passed
        raise EngineBuildError(
            f"asked for FP16 but only {fraction:.0%} of the engine's layers are half precision: TensorRT "
            "built FP32 (does this GPU have fast FP16?); use --fp32 if that is what you want"
        )
    sidecar = {
        **identity,
        "model_sha256": checkpoint.sha256,
        "model_file": checkpoint.path.name if getattr(checkpoint, "path", None) else "",
        "precision": precision,
        "strongly_typed": strongly_typed,
        "fp16_layer_fraction": round(fraction, 3),
        "profile": {"min": profile.min, "opt": profile.opt, "max": profile.max},
        "onnx": onnx_path.name,
    }
    store_engine(engine_dir, stem, bytes(plan), sidecar)
    log(f"wrote {plan_path} ({fraction:.0%} of layers fp16) and {side_path.name}")
    return plan_path


def engine_files(engine_dir: Path, stem: str) -> tuple[Path, Path]:
    """The plan and its JSON sidecar for the cache key ``stem`` (``engine_name``)."""
    return engine_dir / f"{stem}.engine", engine_dir / f"{stem}.json"


def store_engine(engine_dir: Path, stem: str, plan: bytes, sidecar: dict) -> Path:
    """Put a plan and its sidecar into the cache, each atomically; the sidecar last, because an
    engine counts as present once its sidecar is (``read_sidecars``)."""
    plan_path, side_path = engine_files(engine_dir, stem)
    engine_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(plan_path, plan)
    atomic_write(side_path, json.dumps(sidecar, indent=2).encode())
    return plan_path


def engine_parity(checkpoint, plan_path: Path):
    """Run the engine and PyTorch fp32 on the same picture-like inputs; returns export.Parity."""
    import torch

    from .backends.trt import TensorRTBackend
    from .export import parity, parity_inputs

    backend = TensorRTBackend(plan_path)
    x = parity_inputs(shape=tuple(backend.profile[1][2:]))  # the opt shape
    with torch.inference_mode():
        ref = checkpoint.model.float().cpu().eval().forward_aligned(x).numpy()
    got = backend.infer(x).float().cpu().numpy()
    return parity(ref, got, backend.precision)


def list_engines(engine_dir: Path | None = None) -> list[dict]:
    """Engines found in ``engine_dir`` (the engine cache by default) with their sidecars and
    whether each can run here."""
    from .backends.trt import engine_problem, read_sidecars

    rows = []
    for plan, meta in read_sidecars(engine_dir):
        row = {"engine": str(plan), "meta": meta}
        if not plan.is_file():
            row["status"] = "sidecar without its .engine file"
        else:
            try:
                problem = engine_problem(meta)
                row["status"] = "valid here" if problem is None else f"not valid here: {problem}"
            except ImportError:
                row["status"] = "cannot check: TensorRT is not installed here"
            except Exception as e:  # noqa: BLE001 - e.g. no CUDA device to compare with
                row["status"] = f"cannot check: {e}"
        rows.append(row)
    return rows
