#!/usr/bin/env bash
# gmaiqa's default model from scratch: train the recipe, ship its Output1 weights, measure item 5.
#   experiments/default-model/run.sh [OUT]      (about 2 h on a 2-core CPU: 85-100 min train, 25 measure)
# 1. `gmaiqa train experiment=default_model` (conf/experiment/default_model.yaml);
# 2. `gmaiqa export format=weights` of its L1 into the package (gmaiqa/default_model/gmanet_default.pt);
# 3. per preset, fresh held-out groups drawn like the training ones (seeds the recipe never used) and
#    `gmaiqa benchmark` of the default model beside every classical measure on them;
# 4. table.py: the README's table (default model vs the best classical measure vs Tenengrad);
# 5. half_check.py: the shipped fp16 weights against the fp32 checkpoint on 3 groups per preset.
set -euo pipefail
out=${1:-outputs/default-model}
run_id=${RUN_ID:-cpu}

uv run gmaiqa train experiment=default_model evaluate=false run_id="$run_id" paths.output_root="$out"
run="$out/default_model/$run_id"
uv run gmaiqa export ckpt="$run" out=gmaiqa/default_model/gmanet_default.pt format=weights overwrite=true

# the recipe's rendering (256x384 frames, objects at half size: 0.4 µm pixels), other seeds
presets=(feces blood leucorrhea dense fluorescence reflected)
for i in "${!presets[@]}"; do
  preset=${presets[$i]}
  uv run gmaiqa synth out="$out/heldout/$preset" preset="$preset" groups=24 seed=$((2000 + i)) \
      height=256 width=384 object_scale=0.5 images=[10,16] workers=-1 overwrite=true
  uv run gmaiqa benchmark data.root="$out/heldout/$preset" out="$out/bench/$preset" overwrite=true \
      "methods=[all_classical,ckpt:default]" curves=0 logger.wandb.mode=disabled
done
uv run python experiments/default-model/table.py "$out/bench" --json experiments/default-model/item5.json

pairs=()
for i in "${!presets[@]}"; do
  preset=${presets[$i]}
  uv run gmaiqa synth out="$out/half/$preset" preset="$preset" groups=3 seed=$((3000 + i)) \
      height=256 width=384 object_scale=0.5 images=[10,16] overwrite=true
  for model in fp32:"$run" fp16:default; do
    uv run gmaiqa predict ckpt="${model#*:}" input="$out/half/$preset" out="$out/half_scores/${model%%:*}/$preset" \
        overwrite=true
  done
  pairs+=("$out/half_scores/fp32/$preset" "$out/half_scores/fp16/$preset")
done
uv run python experiments/default-model/half_check.py "${pairs[@]}"
