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
is noticed by its version counters and the graph is captured again. Calls with gradients, on
the CPU, or with keyword arguments run the method as it is.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

import torch
from torch import nn


class _Captured(NamedTuple):
    graph: torch.cuda.CUDAGraph
    inputs: torch.Tensor
    output: torch.Tensor
    version: tuple


class GraphedModel:
    """``GraphedModel(model)(input_ids)`` equals ``model(input_ids)`` under ``torch.no_grad()``
    (module docstring). ``max_graphs``: shapes kept, least recently used dropped (each holds
    its activations' memory)."""

    def __init__(self, model: nn.Module, method: str = "forward", max_graphs: int = 8) -> None:
        self.model = model
        self.method = method
        self.max_graphs = max_graphs
        self._graphs: OrderedDict = OrderedDict()

    def _version(self) -> tuple:
        return tuple((t.data_ptr(), t._version) for t in (*self.model.parameters(), *self.model.buffers()))

    def __call__(self, inputs: torch.Tensor, **kwargs) -> torch.Tensor:
        run = getattr(self.model, self.method)
        if kwargs or inputs.device.type != "cuda" or torch.is_grad_enabled() or self.model.training:
            return run(inputs, **kwargs)
        autocast = torch.is_autocast_enabled("cuda")
        key = (tuple(inputs.shape), inputs.dtype, inputs.device, autocast,
               torch.get_autocast_dtype("cuda") if autocast else None)  # fmt: skip
        version = self._version()
        captured = self._graphs.get(key)
        if captured is None or captured.version != version:
            self._graphs.pop(key, None)
            captured = self._capture(run, inputs, version)
            self._graphs[key] = captured
            while len(self._graphs) > self.max_graphs:
                self._graphs.popitem(last=False)
        self._graphs.move_to_end(key)
        captured.inputs.copy_(inputs)
        captured.graph.replay()
        return captured.output.clone()

    @staticmethod
    def _capture(run, inputs: torch.Tensor, version: tuple) -> _Captured:
        static = inputs.clone()
        side = torch.cuda.Stream(device=inputs.device)
        side.wait_stream(torch.cuda.current_stream(inputs.device))
        with torch.cuda.stream(side):
            for _ in range(2):  # compile, plan and cache outside the capture
                run(static)
        torch.cuda.current_stream(inputs.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            output = run(static)
        return _Captured(graph, static, output, version)

    def clear(self) -> None:
        """Drop every captured graph (and the memory its activations hold)."""
        self._graphs.clear()
