"""Rebuild the ONNX files shipped with the bundled default model, after it changes.

    python tools/build_default_onnx.py

Reads realtime_color/model/bundled/default.safetensors (needs PyTorch) and writes, beside it,
default-fp32.onnx (weights kept in fp16, as the checkpoint stores them) and default-int8.onnx
(the encoder quantized as `--backend onnxruntime-int8` does), each recording the checkpoint's
sha256 in its metadata_props. tests/test_lean.py fails until they match the checkpoint;
at run time a stale file is not used (the model is exported into the user's cache instead).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from realtime_color.model.checkpoint import default_model_path  # noqa: E402
from realtime_color.runtime.export import build_shipped_onnx  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=default_model_path(), help="checkpoint (default: bundled)")
    parser.add_argument("--out", type=Path, default=None, help="folder to write to (default: beside the checkpoint)")
    args = parser.parse_args()
    written = build_shipped_onnx(args.model, args.out or args.model.parent)
    for precision, path in written.items():
        print(f"wrote {path} ({precision}, {path.stat().st_size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
