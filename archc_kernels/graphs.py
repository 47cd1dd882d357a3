"""CUDA graphs: replay a computation's kernels without launching them one by one from Python.

For small batches the GPU finishes a fused conv faster than Python can launch the next one; a captured graph
replays the whole sequence of launches at once. ``CudaGraph(module)`` does this for a module's forward,
``capture(fn)`` for a zero-argument function whose tensors stay fixed (what a benchmark times).
"""
import torch


def capture(fn, warmup: int = 2):
    """(graph, output): fn() captured in a torch.cuda.CUDAGraph after ``warmup`` calls on a side stream (which
    also lets autotuners and libraries finish their first-call work). ``graph.replay()`` reruns it in place."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(warmup):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fn()
    return graph, out


class CudaGraph:
    """``module(x)`` replayed from CUDA graphs, one captured per kind of input (shape, strides, dtype, device).

    Each call copies x into the graph's static input and replays. The result is a copy of the graph's static
    output, or, with ``clone=False``, the static output itself, which the next call overwrites. The module's
    parameters must not be replaced after capture (in-place updates are seen). CUDA tensors only; the module
    must run without host synchronisation (archc.fuse's modules do, once their kernels are tuned).
    """

    def __init__(self, module, clone: bool = True, warmup: int = 2):
        self.module, self.clone, self.warmup = module, clone, warmup
        self._graphs = {}

    def __call__(self, x: torch.Tensor):
        if not x.is_cuda:
            raise ValueError(f"CudaGraph replays CUDA work; x is on {x.device}")
        key = (x.shape, x.stride(), x.dtype, x.device)
        entry = self._graphs.get(key)
        if entry is None:
            static = x.clone()
            with torch.no_grad():
                graph, out = capture(lambda: self.module(static), self.warmup)
            entry = self._graphs[key] = (static, graph, out)
        static, graph, out = entry
        static.copy_(x)
        graph.replay()
        if not self.clone:
            return out
        return out.clone() if isinstance(out, torch.Tensor) else type(out)(t.clone() for t in out)
