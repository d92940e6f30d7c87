"""Checkpoints (safetensors + JSON metadata) and the bundled default model (backbones: ``backbones.py``).

A checkpoint is one ``.safetensors`` file: the tensors, plus a JSON document under the header key
``rtcolor`` that makes it self-describing (model config, normalization, inference size, how it was
trained, its validation figures, the package version). Nothing is ever unpickled from a model file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .. import __version__
from ..color import AB_SCALE, L_SCALE

# The torch-free half (metadata, hashing, errors) lives in checkpoint.py; re-exported here.
from .checkpoint import (  # noqa: F401
    FORMAT_VERSION,
    META_KEY,
    CheckpointError,
    MetaView,
    default_model_path,
    file_sha256,
    read_metadata,
)
from .checkpoint import existing as _existing
from .network import ModelConfig, build_model


@dataclass
class Checkpoint(MetaView):
    """A loaded model and the metadata it carried."""

    model: torch.nn.Module  # what model.build_model made from the checkpoint's config
    meta: dict = field(default_factory=dict)
    path: Path | None = None


def save_checkpoint(
    model: torch.nn.Module, path: str | Path, meta: dict | None = None, half: bool = False, config=None
) -> Path:
    """Write ``model`` and its metadata atomically (temporary name, then rename). ``config`` (a
    ``ModelConfig`` of the same network, e.g. with a calibrated temperature) is recorded instead of
    the model's own: the weights are the same, the model object is left as it is."""
    from safetensors.torch import save_file

    path = Path(path)
    doc = {
        "format": FORMAT_VERSION,
        "package_version": __version__,
        "model_config": (config or model.config).to_dict(),
        "normalization": {"L_scale": L_SCALE, "ab_scale": AB_SCALE, "input": "L/100", "output": "ab/110"},
        "dtype": "float16" if half else "float32",
    }
    doc.update(meta or {})
    # The network's own config wins: a header copied from another checkpoint (meta=ckpt.meta, to
    # re-save with a new gain or temperature) must not describe the old network.
    doc["model_config"] = (config or model.config).to_dict()
    tensors = {
        k: (v.detach().half() if half and v.is_floating_point() else v.detach()).contiguous().cpu()
        for k, v in model.state_dict().items()
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    save_file(tensors, str(tmp), metadata={META_KEY: json.dumps(doc)})
    tmp.replace(path)
    return path


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
        model = build_model(config)
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


def torch_model(checkpoint) -> torch.nn.Module:
    """The PyTorch model of a loaded ``Checkpoint``, or of a ``checkpoint.ModelFile`` (loaded at
    first use and kept on it, so a runtime, an export and a parity check share one copy)."""
    if isinstance(checkpoint, Checkpoint):
        return checkpoint.model
    if checkpoint.loaded is None:
        checkpoint.loaded = load_checkpoint(checkpoint.path).model
    return checkpoint.loaded
