"""Convolution and pooling geometry: the one output-size rule of archc_kernels (the dispatcher, the Triton
launchers, the oneDNN path and the native pooling kernel all ask it; a test checks it against PyTorch's ops)."""


def pair(value) -> tuple[int, int]:
    """(h, w) from an int or a 2-sequence of ints; anything else raises ValueError."""
    if isinstance(value, int):
        return value, value
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return tuple(value)
    raise ValueError(f"expected an int or a pair of ints, got {value!r}")


def conv_output_hw(hw, kernel, stride, padding, dilation, ceil: bool = False) -> tuple[int, int]:
    """Output (OH, OW) of a 2-d convolution or pooling; every argument but `ceil` is an (h, w) pair. With
    `ceil` (pooling's ceil_mode) the last window may start in the padding's right half, never past it."""
    out = []
    for size, k, s, p, d in zip(hw, kernel, stride, padding, dilation):
        span = size + 2 * p - d * (k - 1) - 1
        o = (-(-span // s) if ceil else span // s) + 1
        if ceil and (o - 1) * s >= size + p:
            o -= 1
        out.append(o)
    return tuple(out)


def pads_past_window(kernel, padding, dilation) -> bool:
    """Some output pixels' windows lie wholly in the padding (padding at least the dilated kernel's extent on an
    axis). oneDNN's CPU convolution crashes on some such calls over channels_last data (torch 2.13 and 2.14, in
    eager F.conv2d too: a batch of 2, 4x1 maps, a 3x1 kernel, dilation 2, stride 2, padding 1, a bias); archc pads
    these inputs explicitly and convolves without padding instead, which computes the same values."""
    return any(p >= d * (k - 1) + 1 for k, p, d in zip(pair(kernel), pair(padding), pair(dilation)))


def extent(t) -> int:
    """Elements between a tensor's first and last addressed element, inclusive (0 when empty)."""
    if t.numel() == 0:
        return 0
    return 1 + sum((size - 1) * abs(step) for size, step in zip(t.shape, t.stride()))
