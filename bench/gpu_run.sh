#!/usr/bin/env bash
# The GPU check as one device call, from the repository root: installs the wheels bench/gpu_wheels.sh put in
# .whl (if any), records the GPU's state, runs bench/gpu_check.py into $OUT (or bench/results/gpu), logging
# everything there too. BUDGET (seconds, default 400) bounds gpu_check.py; keep the call's limit above it.
set -u
out=${OUT:-bench/results/gpu}
mkdir -p "$out"
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,clocks.max.sm,power.draw,power.limit,temperature.gpu \
  --format=csv > "$out/nvidia-smi.csv" 2>&1
python3 -c "import jsonschema, sys; print('jsonschema', jsonschema.__version__ if hasattr(jsonschema, '__version__') else 'ok')" 2>&1
export PYTHONUNBUFFERED=1
python3 bench/gpu_check.py --out "$out" --budget "${BUDGET:-400}" "$@" 2>&1 | tee "$out/gpu_check.log"
status=${PIPESTATUS[0]}
nvidia-smi --query-gpu=clocks.sm,clocks.mem,power.draw,temperature.gpu --format=csv,noheader >> "$out/nvidia-smi.csv" 2>&1
exit "$status"
