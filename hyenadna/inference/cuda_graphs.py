"""Fixed-shape GPU inference as replayed CUDA graphs: latency that follows the work.

A forward of ``large-1m`` at batch 1 launches some 400 kernels (8 layers of projections,
filter spectra, the long convolution, norms, the MLP). On an H200 at 1k-16k bases each is a
few microseconds of work behind tens of microseconds of Python and launch overhead, so the
forward takes 9-11 ms whatever the length. Captured once as a CUDA graph, the same kernels are
launched by the driver in one call.

:class:`GraphedModel` wraps a model's method (``forward`` by default: ``hidden_states`` and
friends too) for grad-free calls on CUDA: the first call of each input shape (and autocast
state) runs the method twice on a side stream (compiling kernels, filling the filter-spectrum
and plan caches), captures a third run, and every later call of that shape copies the input
into the captured buffer, replays the graph and returns a copy of the output. The weights are
read where they lie, so a change of any parameter (an optimiser step, ``load_state_dict``)
is noticed by its version counters (a change of ``model.config`` too) and the graph is captured
again; a change made behind autograd's back (``p.data``, ``torch.no_grad`` writes through
``.data``) is not, so call :meth:`GraphedModel.clear` after one. Calls with gradients, in
training mode, on the CPU, or with keyword arguments run the method as it is.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from typing import NamedTuple

import torch
from torch import nn

from hyenadna.modules.filter_bank import weights_version


class _Captured(NamedTuple):
    graph: torch.cuda.CUDAGraph
    inputs: torch.Tensor
    output: object
    version: tuple
    held: list  # cached tensors the graph reads (filter spectra), kept alive with it


def _clone(output):
    if isinstance(output, torch.Tensor):
        return output.clone()
    return type(output)(_clone(item) for item in output)


class GraphedModel:
    """``GraphedModel(model)(input_ids)`` equals ``model(input_ids)`` under ``torch.no_grad()``
    (module docstring). ``max_graphs``: shapes kept, least recently used dropped (each holds
    its activations' memory)."""

    def __init__(self, model: nn.Module, method: str = "forward", max_graphs: int = 8) -> None:
        self.model = model
        self.method = method
        self.max_graphs = max_graphs
        self._graphs: OrderedDict = OrderedDict()

    def _version(self) -> tuple | None:
        weights = weights_version(self.model)
        return None if weights is None else (repr(getattr(self.model, "config", None)), *weights)

    def __call__(self, inputs: torch.Tensor, **kwargs):
        run = getattr(self.model, self.method)
        if kwargs or inputs.device.type != "cuda" or torch.is_grad_enabled() or self.model.training:
            return run(inputs, **kwargs)
        autocast = torch.is_autocast_enabled("cuda")
        dtype = torch.get_autocast_dtype("cuda") if autocast else None
        key = (tuple(inputs.shape), inputs.dtype, inputs.device, dtype)
        version = self._version()
        if version is None:  # weights no counter tracks (inference tensors): a graph could go stale
            return run(inputs, **kwargs)
        captured = self._graphs.get(key)
        if captured is None or captured.version != version:
            self._graphs.pop(key, None)
            captured = self._capture(run, inputs, version, dtype)
            self._graphs[key] = captured
            while len(self._graphs) > self.max_graphs:
                self._graphs.popitem(last=False)
        self._graphs.move_to_end(key)
        captured.inputs.copy_(inputs)
        captured.graph.replay()
        return _clone(captured.output)

    def _capture(self, run, inputs: torch.Tensor, version: tuple, dtype: torch.dtype | None) -> _Captured:
        """Two runs on a side stream (compile, plan and cache outside the capture), then the
        capture. Under autocast the casts of the weights are captured too (``cache_enabled=False``):
        autocast's cache of cast weights is emptied when the caller's autocast block ends, and a
        graph that read it would read freed memory."""
        device = inputs.device
        with torch.cuda.device(device), torch.inference_mode(False):
            static = inputs.clone()
            cast = torch.autocast("cuda", dtype=dtype, cache_enabled=False) if dtype else contextlib.nullcontext()
            side = torch.cuda.Stream(device=device)
            side.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(side), cast, torch.no_grad():
                for _ in range(2):
                    run(static)
            torch.cuda.current_stream(device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph), cast, torch.no_grad():
                output = run(static)
        held = [t for module in self.model.modules() if hasattr(module, "held_tensors") for t in module.held_tensors()]
        return _Captured(graph, static, output, version, held)

    def clear(self) -> None:
        """Drop every captured graph (and the memory its activations hold)."""
        self._graphs.clear()
