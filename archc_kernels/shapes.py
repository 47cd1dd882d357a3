"""Convolution geometry shared by the dispatcher and the Triton launchers."""


def pair(value) -> tuple[int, int]:
    """(h, w) from an int or a 2-sequence of ints; anything else raises ValueError."""
    if isinstance(value, int):
        return value, value
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return tuple(value)
    raise ValueError(f"expected an int or a pair of ints, got {value!r}")


def conv_output_hw(hw, kernel, stride, padding, dilation) -> tuple[int, int]:
    """Output (OH, OW) of a 2-d convolution; every argument is an (h, w) pair."""
    return tuple((size + 2 * p - d * (k - 1) - 1) // s + 1
                 for size, k, s, p, d in zip(hw, kernel, stride, padding, dilation))


def extent(t) -> int:
    """Elements between a tensor's first and last addressed element, inclusive (0 when empty)."""
    if t.numel() == 0:
        return 0
    return 1 + sum((size - 1) * abs(step) for size, step in zip(t.shape, t.stride()))
