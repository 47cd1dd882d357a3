"""Ahead-of-time compilation of the kernels for a GPU target, without a GPU: Triton's bundled ptxas turns
them into cubins. Used to check, on machines with no GPU, that every configuration compiles and fits in
shared memory (the interpreter checks what the kernels compute, not that they compile).

The JIT specialises arguments on the values of a call: pointers and integers divisible by 16 get a
divisibility hint and integers equal to 1 become constants, which is what lets loads vectorise and the
software pipeliner multi-buffer them. `TYPICAL` reproduces a ResNet-50 call on channels_last tensors, so
the shared memory reported here is the one a GPU run would use.
"""
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

HOPPER = GPUTarget("cuda", 90, 32)
SHARED_MEMORY = {90: 232448}  # bytes per block on sm_90 (H100/H200) with the opt-in carve-out

# Per kernel module: arguments equal to 1, and integer arguments divisible by 16, in a typical call
# (ResNet-50's convs; ResNeXt-50's 3x3 with 4 channels per group; MobileNetV2's 3x3 depthwise).
TYPICAL = {
    "conv": ({"sxc": 1, "swi": 1}, {"CIN_G", "COUT_G", "COUT", "sxn", "sxh", "sxw", "swo", "swh", "sww"}),
    "gemm1x1": ({"swk": 1, "stride_h": 1, "stride_w": 1}, {"COUT", "CIN", "swn", "sxn", "sxh", "sxw"}),
    "grouped": ({"sxc": 1}, {"CIN", "COUT", "sxn", "sxh", "sxw"}),
    "depthwise": ({"sxc": 1, "sww": 1, "MULT": 1}, {"COUT", "sxn", "sxh", "sxw"}),
}
# Per kernel module: constexprs its host launcher derives from the shape (grouped: 4 channels per group).
DERIVED = {"grouped": lambda: __import__(f"{__package__}.grouped", fromlist=["tiling"]).tiling(4, 4),
           "conv": lambda: {"FLAT_K": False}, "gemm1x1": lambda: {"STRIDED": False}}


def compile_for(kernel, name: str, dtype: str, config: triton.Config, target=HOPPER, **flags):
    """Kernel `name` (a key of TYPICAL) compiled for pointer dtype `dtype` ("fp16", "bf16", "fp32"), tile
    `config` and epilogue `flags` (HAS_SCALE, HAS_SHIFT, HAS_RES, ACT, PRECISION; default: shift,
    residual, relu), specialised as in a typical call."""
    ones, divisible = TYPICAL[name]
    flags = {"HAS_SCALE": False, "HAS_SHIFT": True, "HAS_RES": True, "ACT": 1,
             "PRECISION": "ieee" if dtype == "fp32" else "tf32", **DERIVED.get(name, dict)(), **flags,
             **config.kwargs, **ones}
    signature = {p.name: "constexpr" if p.is_constexpr or p.name in ones else
                 "*" + dtype if p.name.endswith("_ptr") else "i32" for p in kernel.params}
    index = kernel.arg_names.index
    attrs = {(index(p.name),): [["tt.divisibility", 16]] for p in kernel.params
             if p.name.endswith("_ptr") or p.name in divisible}
    source = ASTSource(fn=kernel, signature=signature, constexprs={(index(k),): v for k, v in flags.items()},
                       attrs=attrs)
    return triton.compile(source, target=target,
                          options={"num_warps": config.num_warps, "num_stages": config.num_stages})
