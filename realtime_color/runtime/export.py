"""ONNX export (with a parity check) and TensorRT engine builds (with the engine cache key).

FP16 is baked into the ONNX graph itself (weights in fp16, Cast nodes at the fp32 input and
output): TensorRT 11 dropped ``BuilderFlag.FP16`` and builds strongly typed networks from the
types in the graph, and TensorRT 10 reads the same file. The graph's I/O stays fp32 for every runtime.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .onnx_meta import INT8_RECIPE, INT8_RECIPE_KEY, PRECISION_KEY, export_props

DEFAULT_OPSET = 17
INPUT_NAME, OUTPUT_NAME = "L", "ab"
# A binned head's second output: its tempered distribution (N, H/2, W/2, bins), channels-last.
# ONNX Runtime copies it out only when asked (the editor's suggested colors), never per frame.
BINS_NAME = "bins"
HINTS_NAME = "hints"  # a hint-capable model's second input (N, 3, H, W): a/110, b/110, mask
# Parity tolerances against PyTorch fp32, as PSNR of the ab output over its [-1, 1] range.
PARITY_DB = {"fp32": 40.0, "fp16": 30.0, "int8": 30.0}


def _partial(path: Path) -> Path:
    """A temporary name beside ``path``, unique to this process: two runs filling the same cache
    entry at once (two commands started together) must not write into one file."""
    return path.with_name(f".{path.name}.{os.getpid()}.partial")


class _ExportWrapper(nn.Module):
    """fp32 in -> (optionally fp16 inside) -> fp32 out, on inputs already multiples of 16."""

    def __init__(self, model: nn.Module, fp16: bool) -> None:
        super().__init__()
        self.fp16 = fp16
        self.model = model.half() if fp16 else model
        self.bins = takes_hints(model) and bool(model.config.ab_bins)

    def forward(self, lum: torch.Tensor, hints: torch.Tensor | None = None):
        x = lum.half() if self.fp16 else lum
        if hints is not None and self.fp16:
            hints = hints.half()
        if self.bins:
            ab, p = self.model.forward_with_bins(x, hints=hints)
            return ab.float(), p.float()
        return self.model.forward_aligned(x, hints=hints).float()


def takes_hints(model: nn.Module) -> bool:
    return bool(getattr(getattr(model, "config", None), "hint_channels", 0))


def export_onnx(
    model: nn.Module,
    path: str | Path,
    fp16: bool = False,
    opset: int = DEFAULT_OPSET,
    sample_shape: tuple[int, int, int, int] = (1, 1, 224, 320),
    props: dict[str, str] | None = None,
) -> Path:
    """Write ``model`` as ONNX with dynamic batch, height and width; checked with onnx.checker.

    ``props`` (``onnx_meta.export_props``) go into its metadata_props, so the file says which model it is."""
    import copy

    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapper = _ExportWrapper(copy.deepcopy(model).float().cpu().eval(), fp16)
    tmp = _partial(path)
    dummy = torch.rand(sample_shape)
    args: tuple = (dummy,)
    names = [INPUT_NAME]
    axes = {
        INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
        OUTPUT_NAME: {0: "batch", 2: "height_2", 3: "width_2"},
    }
    outputs = [OUTPUT_NAME]
    if takes_hints(model):  # in the signature always: no hints is an all-zero mask
        args = (dummy, parity_hints(sample_shape))
        names.append(HINTS_NAME)
        axes[HINTS_NAME] = {0: "batch", 2: "height", 3: "width"}
    if wrapper.bins:
        outputs.append(BINS_NAME)
        axes[BINS_NAME] = {0: "batch", 1: "height_2", 2: "width_2"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
        torch.onnx.export(
            wrapper,
            args,
            str(tmp),
            input_names=names,
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=opset,
            dynamo=False,
            do_constant_folding=True,
        )
    if props:
        describe_onnx(tmp, props)
    onnx.checker.check_model(str(tmp))
    os.replace(tmp, path)
    return path


@dataclass
class Parity:
    """How closely a runtime's output matches an fp32 reference on the same inputs."""

    psnr_db: float
    max_abs: float
    threshold_db: float
    reference: str = "PyTorch fp32"

    @property
    def ok(self) -> bool:
        return self.psnr_db >= self.threshold_db

    def __str__(self) -> str:
        verdict = "OK" if self.ok else "FAILED"
        return (
            f"parity vs {self.reference}: {self.psnr_db:.1f} dB (needs >= {self.threshold_db:.0f} dB), "
            f"max |diff| {self.max_abs:.4f}: {verdict}"
        )


def parity(reference: np.ndarray, other: np.ndarray, precision: str, against: str = "PyTorch fp32") -> Parity:
    """PSNR of ``other`` against ``reference`` over the normalized ab range [-1, 1] (peak 2)."""
    diff = reference.astype(np.float64) - other.astype(np.float64)
    mse = float(np.mean(diff**2))
    db = float("inf") if mse == 0 else 10 * np.log10(4.0 / mse)
    return Parity(db, float(np.abs(diff).max()), PARITY_DB[precision], against)


def parity_inputs(seed: int = 0, shape: tuple[int, int] = (224, 320)) -> torch.Tensor:
    """Picture-like L inputs for parity checks: smooth gradients plus texture, not pure noise."""
    g = torch.Generator().manual_seed(seed)
    h, w = shape
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    base = 0.5 + 0.3 * torch.sin(6 * xx + 3 * yy) * torch.cos(4 * yy)
    noise = torch.nn.functional.interpolate(torch.rand(2, 1, h // 8, w // 8, generator=g), size=(h, w), mode="bilinear")
    return (0.7 * base + 0.3 * noise).clamp(0, 1)


def parity_hints(shape: tuple[int, ...], seed: int = 0, count: int = 12) -> torch.Tensor:
    """Hint channels (N, 3, H, W) for parity checks: ``count`` 3x3 patches of random colors per picture."""
    g = torch.Generator().manual_seed(seed)
    n, h, w = shape[0], shape[-2], shape[-1]
    hints = torch.zeros(n, 3, h, w)
    for i in range(n):
        for _ in range(count):
            y, x = int(torch.randint(0, h - 3, (1,), generator=g)), int(torch.randint(0, w - 3, (1,), generator=g))
            hints[i, :2, y : y + 3, x : x + 3] = (torch.rand(2, 1, 1, generator=g) - 0.5) * 1.2
            hints[i, 2, y : y + 3, x : x + 3] = 1.0
    return hints


def onnx_parity(
    model: nn.Module,
    onnx_path: Path,
    precision: str,
    inputs: torch.Tensor | None = None,
    hints: torch.Tensor | None = None,
) -> Parity:
    """Run the ONNX file in ONNX Runtime (CPU) and compare with the PyTorch fp32 model (a
    hint-capable one with ``hints``, by default ``parity_hints``)."""
    import onnxruntime as ort

    x = parity_inputs() if inputs is None else inputs
    feed = {INPUT_NAME: x.numpy()}
    if takes_hints(model):
        hints = parity_hints(tuple(x.shape)) if hints is None else hints
        feed[HINTS_NAME] = hints.numpy()
    else:
        hints = None
    with torch.inference_mode():
        ref = model.float().cpu().eval().forward_aligned(x, hints=hints).numpy()
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run([OUTPUT_NAME], feed)[0]
    return parity(ref, got, precision)


# int8 for CPUs (ONNX Runtime static quantization). Calibration needs pictures the network would
# see; generated scenes serve (the same on every machine, no photo shipped). Only the encoder is
# quantized: with the decoder in int8 too, quality moved with the calibration set
# (docs/experiments/2026-11-27-first-default.md).


def calibration_inputs(shape: tuple[int, int] = (144, 256), scenes: int = 12, seed: int = 0) -> list[np.ndarray]:
    """Normalized L network inputs (1, 1, h, w) from generated street scenes, two frames each."""
    from ..color import normalize_L
    from ..media.synth import SceneClip
    from .colorizer import frame_to_L, resize_L

    out = []
    for i in range(scenes):
        clip = SceneClip(2 * shape[0], 2 * shape[1], 30.0, seed=seed + i)
        for index in (0, 40):
            lum = frame_to_L(clip.frame(index))[None, None]
            out.append(normalize_L(resize_L(lum, shape)).astype(np.float32))
    return out


# The head's ops the quantizer would otherwise wrap in QDQ: the annealed mean's (Softmax, MatMul)
# and the median's (ReduceSum, CumSum, Sub, Div, Max, Min, Clip, Mul, Add).
_HEAD_OPS = ("Softmax", "MatMul", "Add", "Div", "Sub", "Mul", "Max", "Min", "Clip", "ReduceSum", "CumSum")


def fp32_nodes(onnx_path: str | Path) -> list[str]:
    """The nodes int8 leaves in fp32: the first convolution (it sees raw L), the whole decoder, and
    a binned head's softmax and what turns it into one color (probabilities of 441 bins in uint8
    would be steps of 1/255, coarser than most of them).

    The VGG16 encoder is most of the compute and quantizes well; the decoder turns features into
    ab and is where int8 error shows. Measured on the 44 training photos against fp32 (ab PSNR):
    everything int8 gives median 38.2 dB, worst 22.7 dB, 30.6 ms (144x256, this CPU); the encoder
    only gives median 46.0 dB, worst 31.8 dB, 38.0 ms (fp32: 107.7 ms)."""
    import onnx

    nodes = onnx.load(str(onnx_path)).graph.node
    convs = [n.name for n in nodes if n.op_type == "Conv"]
    encoder = [c for c in convs if c.startswith("/encoder")]
    if not encoder:
        raise ValueError(f"{onnx_path}: no encoder convolutions (node names /encoder...) to quantize")
    head = [n.name for n in nodes if not n.name.startswith("/encoder") and n.op_type in _HEAD_OPS]
    # The hint branch: hint colors in uint8 would be steps of about 1 ab unit, and it is cheap.
    hints = [n.name for n in nodes if "/hints/" in n.name and n.name not in convs and n.name not in head]
    return encoder[:1] + [c for c in convs if c not in encoder] + head + hints


def quantize_int8(fp32_onnx: str | Path, path: str | Path) -> Parity:
    """Static int8 quantization (QDQ; per-channel int8 weights, uint8 activations) of an fp32 ONNX
    file, calibrated on generated scenes; checked against the fp32 file on other scenes. The file
    is written only if the check passes (otherwise ``ValueError``)."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    with_hints = HINTS_NAME in {i.name for i in onnx.load(str(fp32_onnx), load_external_data=False).graph.input}

    def feed(x: np.ndarray, seed: int) -> dict:
        if not with_hints:
            return {INPUT_NAME: x}
        # Half the calibration pictures without hints, half with: the encoder sees L only either way.
        h = parity_hints(x.shape, seed=seed).numpy() if seed % 2 else np.zeros((len(x), 3, *x.shape[2:]), np.float32)
        return {INPUT_NAME: x, HINTS_NAME: h}

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(feed(x, i) for i, x in enumerate(calibration_inputs()))

        def get_next(self):
            return next(self._it, None)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _partial(path)
    quiet = logging.getLogger()  # ONNX Runtime's quantizer advises through the root logger
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        quantize_static(
            str(fp32_onnx),
            str(tmp),
            _Reader(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            nodes_to_exclude=fp32_nodes(fp32_onnx),
        )
        check = feed(np.concatenate(calibration_inputs(scenes=2, seed=1000)), 1)
        runs = [
            ort.InferenceSession(str(f), providers=["CPUExecutionProvider"]).run([OUTPUT_NAME], check)[0]
            for f in (fp32_onnx, tmp)
        ]
        result = parity(runs[0], runs[1], "int8", against="ONNX Runtime fp32")
        if not result.ok:
            raise ValueError(f"int8 model rejected: {result}")

        described = {p.key: p.value for p in onnx.load(str(fp32_onnx), load_external_data=False).metadata_props}
        if described:  # the fp32 file's description, now of an int8 file
            describe_onnx(tmp, {**described, PRECISION_KEY: "int8", INT8_RECIPE_KEY: INT8_RECIPE})
    except BaseException:
        from ..media.outputs import discard

        discard(tmp)  # no half-written or rejected file is left in the cache (quietly: the error is the news)
        raise
    finally:
        quiet.setLevel(level)
    os.replace(tmp, path)
    return result


# The bundled default model ships as ONNX too, so inference needs neither PyTorch nor a first-run
# export (tools/build_default_onnx.py rebuilds both files after the checkpoint changes).


def store_weights_fp16(onnx_path: str | Path) -> int:
    """Keep in fp16 the float weights that fp16 holds exactly, each followed by a Cast to fp32.

    The checkpoint stores its weights in fp16, so its fp32 export is twice the size for nothing.
    ONNX Runtime folds the Casts when it loads the model: the graph it runs, and its output, are
    the fp32 export's. Returns how many weights were stored in fp16 (in place)."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(onnx_path))
    graph = model.graph
    casts, kept = [], []
    for init in graph.initializer:
        arr = numpy_helper.to_array(init) if init.data_type == onnx.TensorProto.FLOAT else None
        half = arr.astype(np.float16) if arr is not None and arr.size >= 64 else None
        if half is None or not np.array_equal(half.astype(np.float32), arr):
            kept.append(init)
            continue
        kept.append(numpy_helper.from_array(half, f"{init.name}__fp16"))
        casts.append(helper.make_node("Cast", [f"{init.name}__fp16"], [init.name], to=onnx.TensorProto.FLOAT))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(onnx_path))
    return len(casts)


def describe_onnx(onnx_path: str | Path, props: dict[str, str]) -> None:
    """Write ``props`` into the file's metadata_props (what ONNX Runtime reads back as the model's
    custom metadata), replacing earlier values of the same keys."""
    import onnx

    model = onnx.load(str(onnx_path))
    old = {p.key: p.value for p in model.metadata_props}
    old.update(props)
    del model.metadata_props[:]
    for k, v in old.items():
        model.metadata_props.add(key=k, value=v)
    onnx.save(model, str(onnx_path))


def build_shipped_onnx(checkpoint_path: str | Path, out_dir: str | Path, log=print) -> dict[str, Path]:
    """fp32 and int8 ONNX files of the checkpoint, named as the package ships the default model
    (``default-fp32.onnx``, ``default-int8.onnx``), each describing its source checkpoint in its
    metadata_props (``onnx_meta.export_props``); each is checked against PyTorch before it replaces
    an older file."""
    import shutil
    import tempfile

    from ..model.weights import load_checkpoint

    ckpt = load_checkpoint(checkpoint_path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rtcolor-ship-") as tmp:
        fp32 = export_onnx(ckpt.model, Path(tmp) / "fp32.onnx")
        int8 = Path(tmp) / "int8.onnx"
        log(f"int8: {quantize_int8(fp32, int8)}")
        compact = Path(tmp) / "fp32-compact.onnx"
        compact.write_bytes(fp32.read_bytes())
        n = store_weights_fp16(compact)
        results = {"fp32": onnx_parity(ckpt.model, compact, "fp32"), "int8": onnx_parity(ckpt.model, int8, "int8")}
        log(f"fp32: {n} weights stored as fp16 (exact); {results['fp32']}")
        log(f"int8 vs PyTorch: {results['int8']}")
        bad = [k for k, r in results.items() if not r.ok]
        if bad:
            raise ValueError(f"{', '.join(bad)} export failed its parity check; nothing was replaced")
        written = {}
        for precision, src in (("fp32", compact), ("int8", int8)):
            describe_onnx(src, export_props(ckpt, precision))
            dest = out_dir / f"default-{precision}.onnx"
            partial = _partial(dest)
            shutil.copyfile(src, partial)
            os.replace(partial, dest)
            written[precision] = dest
    return written
