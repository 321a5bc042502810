#!/usr/bin/env bash
# The two other published systems on synthetic data, CPU-sized (measured on 2 cores: 44 min for the
# four SAQM jobs on their own, 98 min for the regressor beside an SAQM sweep; results in README.md here):
#   experiments/other-systems/run.sh [OUT]
# 1. SAQM's Table 2: the four domain-adaptation configurations on the synthetic natural -> ultrasound
#    pair (24 references x 5 distortions per domain, 64x64; 8 random patches per image per epoch),
#    100 epochs and lr 5e-4 as the paper. The trunk is narrowed to a quarter of Table 1's widths
#    (model.width=0.25, C = 128): Table 1 costs 6.1 GFLOP per 32x32 patch, 11x slower to train here,
#    and SAQM needs a few hundred steps to leave its initial plateau. Two jobs at a time (joblib).
# 2. The absolute-defocus regressor on level patches built from 16 synthetic feces stacks (1200x1600):
#    sharpest slice by standard deviation, 320 px tiles (the 8 with most content per stack), ten blur
#    levels (σ = 0..9 px), resized to 128 px for the CPU (seed: 320), 25 epochs with batch 16 at lr 1e-4
#    (seed: lr 1e-5, batch 200, 500 epochs; random init here - no model hub - needs the larger step).
set -euo pipefail
out=${1:-outputs/other-systems}
common=(paths.output_root="$out" paths.cache_dir="$out/cache" seed=0 trainer.accelerator=cpu trainer.enable_progress_bar=false)

uv run gmaiqa train -m sweep=saqm_da run_id=table2 "${common[@]}" ++model.width=0.25 ++model.channels=128 \
    ++data.synthetic.references=24 ++data.synthetic.size=64 ++data.patches_per_image=8 \
    hydra/launcher=local_parallel data.num_workers=0
uv run gmaiqa summarize "$out/saqm_da-multirun/table2"

uv run gmaiqa train experiment=defocus_regressor run_id=seed0 "${common[@]}" \
    "data.stacks_synthetic={preset: feces, groups: 16, seed: 0, height: 1200, width: 1600, images: [10, 14], workers: -1}" \
    data.input_size=128 data.batch_size=16 task.optimizer.lr=1e-4 stages.0.max_epochs=25
