"""PyTorch runtime: CPU, or CUDA with fp16, channels_last and (optionally) CUDA graphs."""

from __future__ import annotations

import copy

import torch

from .base import BackendBase, BackendError, refuse_hints


class TorchBackend(BackendBase):
    """Runs a model (``model.build_model``) eagerly; on CUDA in fp16 and channels_last by default."""

    name = "torch"

    def __init__(
        self,
        model: torch.nn.Module,
        device: str = "cpu",
        precision: str | None = None,
        cuda_graph: bool = False,
        readout=None,
    ) -> None:
        """``readout`` (a ``model.network.Readout``): a binned head's temperature and estimator to
        run with instead of the model's own (calibration sweeps them)."""
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendError("--device cuda was asked for, but PyTorch sees no CUDA GPU here")
        self.device = device
        on_cuda = device.startswith("cuda")
        self.precision = precision or ("fp16" if on_cuda else "fp32")
        if self.precision == "fp16" and not on_cuda:
            raise BackendError("fp16 with the torch backend needs CUDA; on the CPU use fp32")
        self.dtype = torch.float16 if self.precision == "fp16" else torch.float32
        if on_cuda or self.dtype != torch.float32:
            # Work on a copy: converting in place would turn the caller's model (the checkpoint
            # that export, evaluation or another backend also use) into fp16 / CUDA behind its back.
            model = copy.deepcopy(model)
        self.model = model.eval().to(device=device, dtype=self.dtype)
        self.takes_hints = bool(getattr(getattr(model, "config", None), "hint_channels", 0))
        if on_cuda:
            # Tensor cores want NHWC; on the CPU the default oneDNN path is already fastest.
            self.model = self.model.to(memory_format=torch.channels_last)
        self.cuda_graph = cuda_graph and on_cuda
        self.readout = readout
        self._graphs: dict[tuple[int, ...], tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]] = {}

    @torch.inference_mode()
    def infer(self, lum, hints=None) -> torch.Tensor:
        if not self.takes_hints:
            refuse_hints(hints, "this model")
            hints = None
        x = torch.as_tensor(lum).to(self.device, self.dtype, non_blocking=True)
        h = None if hints is None else torch.as_tensor(hints).to(self.device, self.dtype, non_blocking=True)
        if self.device.startswith("cuda"):
            x = x.contiguous(memory_format=torch.channels_last)
        if self.cuda_graph:
            if self.takes_hints and h is None:  # one graph per shape: always feed the hint input
                h = torch.zeros((x.shape[0], 3, *x.shape[2:]), dtype=self.dtype, device=self.device)
            return self._replay(x, h)
        return self._run(x, h)

    def _run(self, x: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        kw = {} if h is None else {"hints": h}
        if self.readout is not None:
            kw["readout"] = self.readout
        return self.model(x, **kw)

    @torch.inference_mode()
    def infer_bins(self, lum, hints=None) -> torch.Tensor:
        """A binned head's tempered distribution (N, h/2, w/2, bins), for suggested colors."""
        if not getattr(self.model.config, "ab_bins", 0) or not hasattr(self.model, "forward_with_bins"):
            raise BackendError("this model has no per-pixel color distribution (its head predicts ab directly)")
        x = torch.as_tensor(lum).to(self.device, self.dtype)
        h = None if hints is None or not self.takes_hints else torch.as_tensor(hints).to(self.device, self.dtype)
        if not self.takes_hints:
            refuse_hints(hints, "this model")
        return self.model.forward_with_bins(x, hints=h)[1]

    def _replay(self, x: torch.Tensor, h: torch.Tensor | None) -> torch.Tensor:
        # A CUDA graph removes the per-kernel launch cost that dominates small batches; one graph
        # is captured per input shape, with static input/output buffers.
        key = tuple(x.shape)
        run = self._run
        if key not in self._graphs:
            static_in = x.clone()
            static_h = None if h is None else h.clone()
            args = (static_in,) if h is None else (static_in, static_h)
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(2):
                    run(*args)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = run(*args)
            self._graphs[key] = (graph, static_in, static_h, static_out)
        graph, static_in, static_h, static_out = self._graphs[key]
        static_in.copy_(x)
        if static_h is not None:
            static_h.copy_(h)
        graph.replay()
        return static_out.clone()

    def close(self) -> None:
        self._graphs.clear()

    def describe(self) -> str:
        extra = ", CUDA graphs" if self.cuda_graph else ""
        return f"torch on {self.device} ({self.precision}{extra})"
