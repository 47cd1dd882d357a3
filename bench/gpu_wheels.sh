#!/usr/bin/env bash
# Wheels for what the GPU machine's image lacks (jsonschema and its dependencies: archc validates specs with it;
# attrs too, in case the image's is older than jsonschema needs),
# for its Python (3.12, manylinux x86_64), into .whl/ (git-ignored). The device call carries .whl and
# bench/gpu_run.sh installs them there. Usage: bash bench/gpu_wheels.sh [PYTHON_VERSION]   (default 3.12)
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:-3.12}
rm -rf .whl && mkdir -p .whl
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64; do
  platforms+=(--platform "$p")
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$version" --implementation cp \
  "${platforms[@]}" -d .whl jsonschema jsonschema-specifications referencing rpds-py attrs
ls .whl
