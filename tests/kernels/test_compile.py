"""The Triton kernels compile for Hopper (sm_90) on a machine without a GPU, through Triton's bundled
ptxas (the interpreter checks what the kernels compute, not that they compile). bench/compile_check.py
compiles every autotuning configuration."""
import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("triton")

SCRIPT = """
import json, sys
import importlib
from archc_kernels.triton import aot
out = {}
for name in aot.TYPICAL:
    module = importlib.import_module("archc_kernels.triton." + name)
    for dtype in ("fp16", "bf16"):
        try:
            c = aot.compile_for(module._kernel, name, dtype, module.DEFAULT)
        except RuntimeError as e:
            if "ptxas" in str(e):
                print(json.dumps({"skip": str(e)})); sys.exit(0)
            raise
        ptx = c.asm["ptx"]
        out[name + "-" + dtype] = [len(c.asm["cubin"]), c.metadata.shared, "mma" in ptx, "cp.async" in ptx,
                                   "ld.global.v4" in ptx or "ld.global.nc.v4" in ptx]
print(json.dumps(out))
"""


def test_default_configs_compile_for_sm90():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}  # compile, do not interpret
    p = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, env=env,
                       cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert p.returncode == 0, p.stderr[-3000:]
    result = json.loads(p.stdout.strip().splitlines()[-1])
    if "skip" in result:
        pytest.skip(result["skip"])
    from archc_kernels.triton.aot import SHARED_MEMORY

    from archc_kernels.triton.aot import TYPICAL

    assert sorted(result) == sorted(f"{name}-{dtype}" for name in TYPICAL for dtype in ("bf16", "fp16"))
    for kernel, (cubin, shared, mma, pipelined, wide_loads) in result.items():
        assert cubin > 0 and shared <= SHARED_MEMORY[90]
        if kernel.startswith("depthwise"):  # no dot: CUDA-core FMAs over 16-byte loads of channels
            assert wide_loads, "depthwise loads must be 16 bytes wide over channels_last x"
        else:
            assert shared > 0
            assert mma, "the dot must lower to tensor-core MMA instructions"
            assert pipelined, "the loads must be software-pipelined (cp.async) in a typical call"
