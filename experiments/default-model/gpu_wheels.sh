#!/usr/bin/env bash
# The wheels gpu.sh installs on a lent GPU machine, into .whl/ (git-ignored; the device tool's `carry`
# takes it there). That machine's image has Python 3.12 with torch, torchvision, lightning, torchmetrics,
# numpy, scipy, opencv, tifffile and matplotlib, no network, and none of what is fetched here: hydra-core
# and omegaconf (with antlr4, which PyPI has only as source, so it is built here: pure Python) and
# albumentations with what it needs. Versions are this checkout's locked ones, read from its environment.
#   experiments/default-model/gpu_wheels.sh [PYTHON_VERSION]     (default 3.12, the machine's)
set -euo pipefail
py=${1:-3.12}
dest=.whl
names=(hydra-core omegaconf albumentations albucore pydantic pydantic-core annotated-types
       typing-inspection typing-extensions simsimd stringzilla)
pins=$(uv run python -c "
import sys
from importlib.metadata import version
print(' '.join(f'{n}=={version(n)}' for n in sys.argv[1:]))" "${names[@]}" antlr4-python3-runtime)
rm -rf "$dest" && mkdir -p "$dest"
binary=()
for pin in $pins; do
  case $pin in antlr4-python3-runtime==*) antlr=$pin ;; *) binary+=("$pin") ;; esac
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$py" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$dest" "${binary[@]}"
python3 -m pip wheel -q --no-deps -w "$dest" "$antlr"
ls -1 "$dest"
du -sh "$dest"
