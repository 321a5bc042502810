#!/usr/bin/env bash
# What gpu.sh sent back from a lent GPU machine, measured here as the shipped model was (run.sh steps
# 3-4: item 5's held-out groups, every classical measure beside the new weights, the table) and plotted:
#   experiments/default-model/gpu_results.sh FILES_AT [OUT]     (FILES_AT: the device tool's files_at)
# About 25 min on the 2-core CPU. The weights stay in OUT (default outputs/default-model-gpu) until
# their table is read: to ship them, copy OUT/gmanet_gpu.pt over gmaiqa/default_model/gmanet_default.pt
# and rerun `RUN=OUT/gpu WEIGHTS=gmaiqa/default_model/gmanet_default.pt run.sh`, which then writes the
# committed item5.json.
set -euo pipefail
from=${1:?usage: gpu_results.sh FILES_AT [OUT]}
out=${2:-outputs/default-model-gpu}
here=$(dirname "$0")
mkdir -p "$out"
cat "$from"/gmanet_gpu.pt.part* > "$out/gmanet_gpu.pt"
tar xzf "$from/run.tgz" -C "$out"
cp "$from/log.txt" "$out/gpu.log"
grep -E "WARNING trained|train: |total: " "$out/gpu.log" || true
uv run python "$here/curves.py" "$out/gpu" "$out/training_curves.png"
RUN="$out/gpu" WEIGHTS="$out/gmanet_gpu.pt" "$here/run.sh" "$out"
