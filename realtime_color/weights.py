"""Checkpoints (safetensors + JSON metadata) and the bundled default model (backbones: ``backbones.py``).

A checkpoint is one ``.safetensors`` file: the tensors, plus a JSON document under the header key
``rtcolor`` that makes it self-describing (model config, normalisation, inference size, how it was
trained, its validation figures, the package version). Nothing is ever unpickled from a model file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch

from . import __version__
from .color import AB_SCALE, L_SCALE
from .model import ColorizerNet, ModelConfig

META_KEY = "rtcolor"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A model file that cannot be used, with the reason and what to do about it."""


@dataclass
class Checkpoint:
    """A loaded model and the metadata it carried."""

    model: ColorizerNet
    meta: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def inference_size(self) -> int:
        return int(self.meta.get("inference_size", 256))

    @property
    def chroma_gain(self) -> float:
        return float(self.meta.get("chroma_gain", 1.0))

    @property
    def sha256(self) -> str:
        return self.meta.get("sha256", "")


def default_model_path() -> Path:
    """The model shipped inside the package, used whenever no model is named."""
    return Path(str(resources.files("realtime_color") / "models" / "default.safetensors"))


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_checkpoint(model: ColorizerNet, path: str | Path, meta: dict | None = None, half: bool = False) -> Path:
    """Write ``model`` and its metadata atomically (temporary name, then rename)."""
    from safetensors.torch import save_file

    path = Path(path)
    doc = {
        "format": FORMAT_VERSION,
        "package_version": __version__,
        "model_config": model.config.to_dict(),
        "normalisation": {"L_scale": L_SCALE, "ab_scale": AB_SCALE, "input": "L/100", "output": "ab/110"},
        "dtype": "float16" if half else "float32",
    }
    doc.update(meta or {})
    tensors = {
        k: (v.detach().half() if half and v.is_floating_point() else v.detach()).contiguous().cpu()
        for k, v in model.state_dict().items()
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    save_file(tensors, str(tmp), metadata={META_KEY: json.dumps(doc)})
    tmp.replace(path)
    return path


def read_metadata(path: str | Path) -> dict:
    """The JSON metadata of a checkpoint, without loading its tensors."""
    from safetensors import safe_open

    path = _existing(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(META_KEY)
    except Exception as e:  # safetensors raises its own error type for bad headers
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
    if doc.get("format") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {doc.get('format')!r}; this rtcolor reads format {FORMAT_VERSION}"
        )
    return doc


def load_checkpoint(path: str | Path | None = None, device: str | torch.device = "cpu") -> Checkpoint:
    """Load a checkpoint (the bundled default when ``path`` is None) as an fp32 model in eval mode."""
    from safetensors.torch import load_file

    path = _existing(path if path is not None else default_model_path())
    meta = read_metadata(path)
    try:
        config = ModelConfig.from_dict(meta.get("model_config", {}))
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: bad model config ({e})") from e
    try:
        tensors = load_file(str(path))
    except Exception as e:
        raise CheckpointError(f"{path}: tensors could not be read ({e}); the file is truncated or corrupt") from e
    with torch.device("meta"):  # no random init (about a second for VGG16): every weight is loaded below
        model = ColorizerNet(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{path} does not match the model it declares: missing {missing[:3]}"
            f"{'...' if len(missing) > 3 else ''}, unexpected {unexpected[:3]}"
            f"{'...' if len(unexpected) > 3 else ''}"
        )
    for k, v in tensors.items():
        if v.shape != expected[k].shape:
            raise CheckpointError(
                f"{path}: tensor {k} has shape {tuple(v.shape)}, the model needs {tuple(expected[k].shape)}"
            )
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise CheckpointError(f"{path}: tensor {k} holds NaN or infinite values")
    model.load_state_dict({k: v.float() for k, v in tensors.items()}, assign=True)
    model.eval().to(device)
    meta["sha256"] = file_sha256(path)
    return Checkpoint(model=model, meta=meta, path=path)


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"model file {path} does not exist")
    return path
