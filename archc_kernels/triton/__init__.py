"""Triton kernels for the fused ops (imported lazily by archc_kernels.dispatch).

One op per module, each laid out as: configs, the private ``_kernel``, the host launcher
``conv_bn_act`` that checks, allocates and launches.
"""
