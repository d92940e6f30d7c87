"""A checkpoint's metadata without PyTorch: what inference needs to know about a model file.

A ``.safetensors`` file starts with an 8-byte little-endian header length and a JSON header, so its
``rtcolor`` metadata (inference size, chroma gain, model config) is read with the standard library.
``ModelFile`` is what the inference commands carry around: the metadata and the file's sha256,
and the PyTorch model only when a runtime asks for it (``weights.load_checkpoint``, which needs torch).
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ..errors import RtcolorError

META_KEY = "rtcolor"
FORMAT_VERSION = 1
TORCH_EXTRA = "pip install 'rtcolor[torch]'"
_MAX_HEADER = 100 << 20  # safetensors' own limit on the JSON header


class CheckpointError(RtcolorError, ValueError):
    """A model file that cannot be used, with the reason and what to do about it."""


def default_model_path() -> Path:
    """The model shipped inside the package, used whenever no model is named."""
    return Path(str(resources.files("realtime_color") / "model" / "bundled" / "default.safetensors"))


def shipped_onnx_path(precision: str) -> Path:
    """The bundled default model as ONNX (``fp32`` or ``int8``), made by tools/build_default_onnx.py."""
    return default_model_path().with_name(f"default-{precision}.onnx")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"model file {path} does not exist")
    return path


def _header(path: Path) -> dict:
    """The safetensors JSON header (tensor table and ``__metadata__``)."""
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError("shorter than a safetensors header")
        (n,) = struct.unpack("<Q", head)
        if not 2 <= n <= _MAX_HEADER:
            raise ValueError(f"header length {n} is implausible")
        raw = f.read(n)
    if len(raw) < n:
        raise ValueError("the header is cut short")
    doc = json.loads(raw)
    if not isinstance(doc, dict):
        raise ValueError("the header is not a JSON object")
    return doc


def read_metadata(path: str | Path) -> dict:
    """The JSON metadata of a checkpoint, without loading its tensors (nor PyTorch)."""
    path = existing(path)
    try:
        raw = (_header(path).get("__metadata__") or {}).get(META_KEY)
    except (OSError, ValueError, AttributeError) as e:  # JSONDecodeError is a ValueError
        raise CheckpointError(
            f"{path} is not a readable safetensors checkpoint ({e}); it may be truncated or "
            "corrupt: re-copy it, or train one with `rtcolor train`"
        ) from e
    if raw is None:
        raise CheckpointError(
            f"{path} has no '{META_KEY}' metadata, so it is not an rtcolor checkpoint; "
            "train one with `rtcolor train` or use the bundled default (omit --model)"
        )
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: its metadata is not valid JSON ({e})") from e
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_VERSION:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise CheckpointError(f"{path} has checkpoint format {found!r}; this rtcolor reads format {FORMAT_VERSION}")
    _check_runtime_fields(path, doc)
    return us_spelling(doc)


def _check_runtime_fields(path: Path, doc: dict) -> None:
    """The fields every runtime reads: a hand-edited or damaged header is refused here, in one line,
    not as a TypeError from the colorizer (or NaN colors from a NaN gain)."""
    size = doc.get("inference_size", 256)
    if isinstance(size, bool) or not isinstance(size, int) or not 16 <= size <= 2048:
        raise CheckpointError(f"{path}: its inference_size {size!r} must be a whole number from 16 to 2048")
    gain = doc.get("chroma_gain", 1.0)
    if isinstance(gain, bool) or not isinstance(gain, int | float) or not (math.isfinite(gain) and 0 < gain <= 10):
        raise CheckpointError(f"{path}: its chroma_gain {gain!r} must be a number above 0 and at most 10")


def us_spelling(value):
    """Metadata keys as this version spells them: files written before 0.2 said ``normalisation``
    and ``colourfulness``; their keys are read as ``normalization`` and ``colorfulness``."""
    if isinstance(value, dict):
        return {_us(k): us_spelling(v) for k, v in value.items()}
    if isinstance(value, list):
        return [us_spelling(v) for v in value]
    return value


def _us(key):
    return key.replace("colour", "color").replace("normalis", "normaliz") if isinstance(key, str) else key


class MetaView:
    """What a model's metadata says that the runtime needs; shared by ``ModelFile`` and
    ``weights.Checkpoint`` (both hold the document in ``meta``)."""

    meta: dict

    @property
    def inference_size(self) -> int:
        return int(self.meta.get("inference_size", 256))

    @property
    def chroma_gain(self) -> float:
        return float(self.meta.get("chroma_gain", 1.0))

    @property
    def hinted_gain(self) -> float:
        """The chroma gain of frames with hints (calibrated apart: the hints are the user's colors)."""
        return float(self.meta.get("hinted_chroma_gain", 1.0))

    @property
    def takes_hints(self) -> bool:
        """Whether the model has hint inputs (``ModelConfig.hint_channels``)."""
        return bool((self.meta.get("model_config") or {}).get("hint_channels", 0))

    @property
    def sha256(self) -> str:
        return self.meta.get("sha256", "")


@dataclass
class ModelFile(MetaView):
    """A checkpoint as the inference commands see it: its metadata now, its tensors on demand.

    Has the attributes of ``weights.Checkpoint`` that backends use (``meta``, ``path``, ``sha256``,
    ``inference_size``, ``chroma_gain``); a runtime that needs the PyTorch model asks
    ``weights.torch_model`` for it, which loads it at first use and keeps it in ``loaded``, so a run
    on ONNX Runtime with an exported model never imports torch.
    """

    path: Path
    meta: dict = field(default_factory=dict)
    loaded: object = field(
        default=None, init=False, repr=False
    )  # the PyTorch model, once weights.torch_model loaded it

    @classmethod
    def open(cls, path: str | Path | None = None) -> ModelFile:
        """The checkpoint at ``path`` (the bundled default when None), checked and hashed."""
        path = existing(path if path is not None else default_model_path())
        meta = read_metadata(path)
        meta["sha256"] = file_sha256(path)
        return cls(path=path, meta=meta)

    @property
    def is_default(self) -> bool:
        """Whether this is the bundled default (which ships with ready ONNX files)."""
        return self.path.resolve() == default_model_path().resolve()
