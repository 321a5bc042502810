#!/usr/bin/env bash
# Train the default model's GPU recipe (conf/experiment/default_model_gpu.yaml) on a lent GPU machine
# and send back what item 5 needs; run it there through the device tool, from the repository root:
#   run(command="GMAIQA_GIT_COMMIT=$(git rev-parse HEAD) bash experiments/default-model/gpu.sh",
#       carry=[".whl"], timeout_s=600)          (type the commit in: the machine gets no .git)
# Arguments are further overrides of the training (a smoke test: `data.synthetic.groups=5
# stages.0.max_epochs=1 stages.1.max_epochs=1`; then the run is not the recipe, and its log says so).
# with the wheels gpu_wheels.sh put in .whl/ (the machine has torch, torchvision, lightning and
# torchmetrics but no network, and none of hydra, omegaconf or albumentations). About 8 minutes:
# data 0.5, training at most 2 x 3.5 (the recipe's max_time), export 0.5.
# Back in $OUT: log.txt, run.tgz (the run folder without checkpoints or data: config, CSV logs,
# selections) and the fp16 weights in parts of 15 MiB (the tool returns files of at most 16 MiB).
# Then, here:  experiments/default-model/gpu_results.sh /work/.device/... [OUT]
set -euo pipefail
: "${OUT:?run me through the device tool, which sets OUT}"
export PYTHONUNBUFFERED=1
work=/tmp/default-model
log=$OUT/log.txt
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD
{ date -u; nvidia-smi --query-gpu=name,memory.total --format=csv,noheader; nproc
  python3 -c 'import torch, lightning; print("torch", torch.__version__, "lightning", lightning.__version__)'
  echo "commit ${GMAIQA_GIT_COMMIT:-unknown}"; } | tee "$log"
start=$SECONDS
python3 -m gmaiqa train experiment=default_model_gpu evaluate=false run_id=gpu \
    paths.output_root="$work" logger.wandb.mode=disabled trainer.enable_progress_bar=false "$@" 2>&1 |
    tee -a "$log"
echo "train: $((SECONDS - start)) s" | tee -a "$log"
run=$work/default_model_gpu/gpu
python3 -m gmaiqa export ckpt="$run" out="$work/gmanet_gpu.pt" format=weights 2>&1 | tee -a "$log"
split -b 15M -d "$work/gmanet_gpu.pt" "$OUT/gmanet_gpu.pt.part"
(cd "$work/default_model_gpu" && tar czf "$OUT/run.tgz" --exclude='*.ckpt' --exclude='data' gpu)
echo "total: $((SECONDS - start)) s" | tee -a "$log"
