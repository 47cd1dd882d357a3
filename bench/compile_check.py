"""Compile every autotuning configuration of the Triton kernels for sm_90 (Hopper) without a GPU, and
record compile time and shared memory per block. Usage: python bench/compile_check.py
Writes bench/results/compile_check.md."""

import datetime
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    import triton

    import importlib

    from archc_kernels.triton import aot

    lines = ["| kernel | dtype | BLOCK_M x N x K | stages | warps | shared KiB | fits sm_90 | tensor cores (mma) | "
             "pipelined loads (cp.async) | compile s |", "|---|---|---|---:|---:|---:|---|---|---|---:|"]
    failures = 0
    for name in aot.TYPICAL:
        module = importlib.import_module(f"archc_kernels.triton.{name}")
        for dtype in ("fp16", "bf16", "fp32"):
            for cfg in [*module.CONFIGS, module.DEFAULT]:
                k = {"BLOCK_N": "-", "BLOCK_K": "-", **aot.DERIVED.get(name, dict)(), **cfg.kwargs}
                t = time.perf_counter()
                try:
                    c = aot.compile_for(module._kernel, name, dtype, cfg)
                    shared, mma = c.metadata.shared, "mma" in c.asm["ptx"]
                    pipelined = "cp.async" in c.asm["ptx"]
                    fits = shared <= aot.SHARED_MEMORY[90]
                except Exception as e:  # record and go on: the table says which failed
                    shared, mma, pipelined, fits = 0, False, False, f"error: {type(e).__name__}"
                failures += fits is not True
                lines.append(f"| {name} | {dtype} | {k['BLOCK_M']}x{k['BLOCK_N']}x{k['BLOCK_K']} | {cfg.num_stages} | "
                             f"{cfg.num_warps} | {shared / 1024:.0f} | {fits} | {mma} | {pipelined} | "
                             f"{time.perf_counter() - t:.1f} |")
                print(lines[-1], flush=True)
    text = (f"# Triton kernels compiled for sm_90 without a GPU\n\ndate {datetime.date.today()}, triton "
            f"{triton.__version__}, target cuda sm_90 (H100/H200), specialised as a typical call on channels_last "
            "tensors (archc_kernels/triton/aot.py: ResNet-50's convs, ResNeXt-50's 4-channel groups, MobileNetV2's "
            "depthwise); epilogue: shift + residual + relu. Depthwise has no dot (no mma, no cp.async expected). "
            f"fp32 dots in IEEE precision. Shared-memory limit per block {aot.SHARED_MEMORY[90]} bytes.\n\n"
            + "\n".join(lines) + f"\n\n{failures} configuration(s) failed to compile or do not fit.\n")
    (ROOT / "bench" / "results" / "compile_check.md").write_text(text)
    print(text)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
