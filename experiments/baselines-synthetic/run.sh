#!/usr/bin/env bash
# GMANet vs the deep IQA baselines vs every classical measure on one synthetic feces set (CPU sizes).
#   experiments/baselines-synthetic/run.sh [OUT]      (about 25 min on a 2-core CPU)
# Every method is trained by the same framework on the same groups and split (seed 0), then all are
# scored on the same test groups by `gmaiqa benchmark`. Reductions from the paper (CPU time): 24 groups
# of 384x512 frames with 8-12 images, resized to 192x256 with 96x128 crops, φ 8x8; GMANet L0 4 + L1 3
# epochs, baselines 6 epochs (paper: 70 + 40 and "a similar" schedule); lr 1e-4 from random init.
set -euo pipefail
out=${1:-outputs/baselines-synthetic}
common=(paths.output_root="$out" paths.cache_dir="$out/cache" run_id=seed0 seed=0 trainer.accelerator=cpu
        trainer.enable_progress_bar=false logger.wandb.tags=[baselines-synthetic]
        "data.synthetic={preset: feces, groups: 24, seed: 0, height: 384, width: 512, images: [8, 12], workers: -1}"
        data.resize=[192,256] data.crop=[96,128] data.block=[8,8] task.optimizer.lr=1e-4)

uv run gmaiqa train experiment=gmanet_paper "${common[@]}" stages.0.max_epochs=4 stages.1.max_epochs=3 \
    inference.patch=[96,128] inference.step=[96,128] inference.max_pixels=983040
for model in wadiqam_nr wadiqam_fr twostream_iqa; do
  uv run gmaiqa train experiment=baseline_$model "${common[@]}" stages.0.max_epochs=6
done

data=$(ls -d "$out"/cache/synthetic/feces-*)
ckpts=$(for run in gmanet_paper baseline_wadiqam_nr baseline_wadiqam_fr baseline_twostream_iqa; do
  printf 'ckpt:%s,' "$(python3 -c "import json,sys;print(json.load(open(sys.argv[1]))['checkpoint'])" "$out/$run/seed0/done.json")"
done)
uv run gmaiqa benchmark data.root="$data" split=test data.seed=0 "methods=[${ckpts}all_classical]" \
    out="$out/benchmark" accelerator=cpu
