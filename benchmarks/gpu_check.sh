#!/usr/bin/env bash
# The GPU checks of the fast-scoring and throughput issues, as run on a lent H100/H200 (`device` tool):
# the device-side attention maps against the CPU's, bench_model.py's GPU rows (fp32/bf16/fp16 x
# window/full x channels-last/compile) and bench_data.py's GPU rows (training step, maps, the share of
# step time spent waiting for data in a bf16 fit with maps in the loader and on the device).
# That machine has PyTorch and Lightning but no package index: the few other packages gmaiqa imports
# travel as wheels in .whl/ (see /work/.library/device/README.md).
set -o pipefail
OUT=${OUT:-benchmarks/results}
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1
nvidia-smi -L
python3 -m pytest -q -p no:cacheprovider tests/test_device_maps.py -k context 2>&1 | tail -3 | tee "$OUT/gpu_pytest.log"
timeout 260 python3 benchmarks/bench_model.py --device cuda --repeats 3 --out "$OUT/bench_model_gpu.json" 2>&1 | grep -v Warning | tee "$OUT/bench_model_gpu.log"
timeout 200 python3 benchmarks/bench_data.py --gpu-only --groups 24 --fit-steps 80 --out "$OUT/bench_data_gpu.json" 2>&1 | grep -v Warning | tee "$OUT/bench_data_gpu.log"
