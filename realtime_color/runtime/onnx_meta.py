"""What an exported ONNX file says about itself: the model it came from, in its ``metadata_props``.

Every ONNX file rtcolor writes (``rtcolor export``, the ONNX Runtime cache, the files shipped with
the default model, the graphs TensorRT engines are built from) carries the source checkpoint's
sha256 and file name, inference size, chroma gain, normalization, model config and this format's
version, so the file opened alone (``InferenceSession(path).get_modelmeta().custom_metadata_map``)
says which model it is and how to run it. Written by ``export.py``, read back by the ONNX Runtime
backend; no PyTorch here.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

PREFIX = "rtcolor."
FORMAT_KEY = "rtcolor.format"
FORMAT = 1  # of these properties; a reader refuses nothing older, it only reads fewer fields
SOURCE_SHA256_KEY = "rtcolor.source_sha256"
PRECISION_KEY = "rtcolor.precision"
# In the cached file's name and in an int8 file's properties: a new quantization recipe must not
# reuse an old file.
INT8_RECIPE = "enc"
INT8_RECIPE_KEY = "rtcolor.int8_recipe"
# In the cached file's name: bump when the exported graph of the same weights changes (a new head
# layout, say), so a cache made by an older rtcolor is exported again instead of reused. 2: the
# binned head runs channels-last.
GRAPH_VERSION = "2"


def export_props(checkpoint, precision: str) -> dict[str, str]:
    """The metadata_props of an export of ``checkpoint`` (a ``weights.Checkpoint`` or
    ``checkpoint.ModelFile``) at ``precision``: every value a string, as ONNX wants."""
    from .. import __version__

    meta = {k: v for k, v in checkpoint.meta.items() if k != "sha256"}
    props = {
        FORMAT_KEY: str(FORMAT),
        SOURCE_SHA256_KEY: checkpoint.sha256,
        "rtcolor.source_file": checkpoint.path.name if getattr(checkpoint, "path", None) else "",
        "rtcolor.package_version": __version__,
        PRECISION_KEY: precision,
        "rtcolor.inference_size": str(checkpoint.inference_size),
        "rtcolor.chroma_gain": repr(checkpoint.chroma_gain),
        "rtcolor.normalization": json.dumps(meta.get("normalization", {}), sort_keys=True),
        "rtcolor.model_config": json.dumps(meta.get("model_config", {}), sort_keys=True),
        "rtcolor.checkpoint_meta": json.dumps(meta, sort_keys=True),
    }
    if precision == "int8":
        props[INT8_RECIPE_KEY] = INT8_RECIPE
    return props


@dataclass(frozen=True)
class ExportInfo:
    """An rtcolor ONNX file's description of itself, read back from its metadata_props."""

    source_sha256: str
    source_file: str
    precision: str
    inference_size: int
    chroma_gain: float
    normalization: dict
    model_config: dict
    format: int

    @classmethod
    def from_props(cls, props: dict[str, str]) -> ExportInfo | None:
        """The description in ``props`` (ONNX Runtime's custom metadata map); None when the file
        was not written by rtcolor (or by one older than these properties)."""
        if FORMAT_KEY not in props or SOURCE_SHA256_KEY not in props:
            return None
        try:
            info = cls(
                source_sha256=props[SOURCE_SHA256_KEY],
                source_file=props.get("rtcolor.source_file", ""),
                precision=props.get(PRECISION_KEY, ""),
                inference_size=int(props.get("rtcolor.inference_size", 256)),
                chroma_gain=float(props.get("rtcolor.chroma_gain", 1.0)),
                normalization=json.loads(props.get("rtcolor.normalization", props.get("rtcolor.normalisation", "{}"))),
                model_config=json.loads(props.get("rtcolor.model_config", "{}")),
                format=int(props[FORMAT_KEY]),
            )
        except (ValueError, TypeError, OverflowError):  # JSONDecodeError is a ValueError: hand-edited, not ours
            return None
        sound = (
            isinstance(info.source_sha256, str)
            and 16 <= info.inference_size <= 2048
            and math.isfinite(info.chroma_gain)
            and info.chroma_gain > 0
            and isinstance(info.normalization, dict)
            and isinstance(info.model_config, dict)
        )
        return info if sound else None  # values no rtcolor writes: not a description to trust

    def describe(self) -> str:
        name = f"{self.source_file} " if self.source_file else ""
        return f"from {name}(sha256 {self.source_sha256[:12]}), size {self.inference_size}, gain {self.chroma_gain:g}"
