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
from archc_kernels.triton import aot, conv, gemm1x1
out = {}
for name, module in (("conv", conv), ("gemm1x1", gemm1x1)):
    for dtype in ("fp16", "bf16"):
        try:
            c = aot.compile_for(module._kernel, name, dtype, module.DEFAULT)
        except RuntimeError as e:
            if "ptxas" in str(e):
                print(json.dumps({"skip": str(e)})); sys.exit(0)
            raise
        ptx = c.asm["ptx"]
        out[name + "-" + dtype] = [len(c.asm["cubin"]), c.metadata.shared, "mma" in ptx, "cp.async" in ptx]
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

    assert sorted(result) == ["conv-bf16", "conv-fp16", "gemm1x1-bf16", "gemm1x1-fp16"]
    for cubin, shared, mma, pipelined in result.values():
        assert cubin > 0 and 0 < shared <= SHARED_MEMORY[90]
        assert mma, "the dot must lower to tensor-core MMA instructions"
        assert pipelined, "the loads must be software-pipelined (cp.async) in a typical call"
