#!/usr/bin/env bash
# The two other published systems on synthetic data, CPU-sized (about 25 min on 2 cores):
#   experiments/other-systems/run.sh [OUT]
# 1. SAQM's Table 2: the four domain-adaptation configurations on the synthetic natural -> ultrasound
#    pair (8 references x 5 distortions per domain, 64x64; 4 random patches per image per epoch), 5 epochs
#    each (paper: 100), lr 5e-4. A forward pass costs 6.1 GFLOP per 32x32 patch (torch.utils.flop_counter): a CPU trains it slowly.
# 2. The absolute-defocus regressor on level patches built from 12 synthetic feces stacks (600x800):
#    sharpest slice by standard deviation, 320 px tiles, ten blur levels (σ = 0..9 px), resized to
#    128 px for the CPU (seed: 320), 5 epochs with batch 16 at lr 1e-4 (seed: lr 1e-5, batch 200,
#    500 epochs on a GPU; random init here needs the larger step).
set -euo pipefail
out=${1:-outputs/other-systems}
common=(paths.output_root="$out" paths.cache_dir="$out/cache" seed=0 trainer.accelerator=cpu trainer.enable_progress_bar=false)

uv run gmaiqa train -m sweep=saqm_da seed=0 run_id=table2 stages.0.max_epochs=5 "${common[@]}" \
    ++data.synthetic.references=8 ++data.synthetic.size=64 ++data.patches_per_image=4
uv run gmaiqa summarize "$out/saqm_da-multirun/table2"

uv run gmaiqa train experiment=defocus_regressor run_id=seed0 "${common[@]}" \
    "data.stacks_synthetic={preset: feces, groups: 12, seed: 0, height: 600, width: 800, images: [8, 12], workers: -1}" \
    data.input_size=128 data.batch_size=16 task.optimizer.lr=1e-4 stages.0.max_epochs=5
