#!/usr/bin/env bash
# gmaiqa's default model from scratch: train the recipe, ship its Output1 weights, measure item 5.
#   experiments/default-model/run.sh [OUT]      (about 2 h on a 2-core CPU: 85-100 min train, 25 measure)
#   EXPERIMENT=default_model_full RUN_ID=full WEIGHTS=outputs/full.pt experiments/default-model/run.sh
#       the paper-scale recipe on a GPU of one's own (days of training), its weights kept beside the
#       shipped ones until measured
#   RUN=DIR WEIGHTS=FILE experiments/default-model/run.sh [OUT]
#       steps 3-5 only, for a run trained elsewhere (gpu_results.sh: a lent GPU's run, which brings
#       back its weights and logs but no checkpoint, so step 5 is left to the export's own check)
#   HELDOUT_GROUPS=N: held-out groups per preset (default 24, the README's table; fewer for a smoke test)
# 1. `gmaiqa train experiment=$EXPERIMENT` (conf/experiment/default_model.yaml by default);
# 2. `gmaiqa export format=weights` of its L1 to $WEIGHTS (default: the package's
#    gmaiqa/default_model/gmanet_default.pt);
# 3. per preset, fresh held-out groups drawn like the training ones (the run's own frame size, object
#    scale and images per group, read from its resolved config; seeds the recipe never used) and
#    `gmaiqa benchmark` of those weights beside every classical measure on them;
# 4. table.py: the README's table (default model vs the best classical measure vs Tenengrad);
# 5. half_check.py: the fp16 weights against the fp32 checkpoint on 3 groups per preset.
set -euo pipefail
out=${1:-outputs/default-model}
run_id=${RUN_ID:-cpu}
experiment=${EXPERIMENT:-default_model}
shipped=gmaiqa/default_model/gmanet_default.pt
weights=${WEIGHTS:-$shipped}
model=$([ "$weights" = "$shipped" ] && echo default || echo "$weights")  # ckpt:default is the package's

groups=${HELDOUT_GROUPS:-24}
if [ -n "${RUN:-}" ]; then
  run=$RUN
  [ -n "${WEIGHTS:-}" ] || { echo "RUN=$RUN needs WEIGHTS=<its exported weights>" >&2; exit 2; }
else
  uv run gmaiqa train experiment="$experiment" evaluate=false run_id="$run_id" paths.output_root="$out"
  run="$out/$experiment/$run_id"
  uv run gmaiqa export ckpt="$run" out="$weights" format=weights overwrite=true
fi

# the recipe's own rendering (default_model: 256x384 frames, objects at half size, i.e. 0.4 µm
# pixels, 10-16 images), other seeds
rendering=$(uv run python -c "
from omegaconf import OmegaConf
s = OmegaConf.load('$run/config.yaml').data.synthetic
scale = 'null' if s.object_scale is None else s.object_scale
print(f'height={s.height} width={s.width} object_scale={scale} images=[{s.images[0]},{s.images[1]}]')")
echo "held-out groups rendered as the recipe's: $rendering"
presets=(feces blood leucorrhea dense fluorescence reflected)
for i in "${!presets[@]}"; do
  preset=${presets[$i]}
  # shellcheck disable=SC2086  # $rendering is four key=value words
  uv run gmaiqa synth out="$out/heldout/$preset" preset="$preset" groups="$groups" seed=$((2000 + i)) \
      $rendering workers=-1 overwrite=true
  uv run gmaiqa benchmark data.root="$out/heldout/$preset" out="$out/bench/$preset" overwrite=true \
      "methods=[all_classical,ckpt:$model]" curves=0 logger.wandb.mode=disabled
done
# the shipped model's table is the committed one; a trial's stays in its output folder
json=$([ "$model" = default ] && echo experiments/default-model/item5.json || echo "$out/item5.json")
uv run python experiments/default-model/table.py "$out/bench" --model "$model" --json "$json"

if ! compgen -G "$run/l1/checkpoints/*.ckpt" > /dev/null; then
  echo "step 5 skipped: $run has no fp32 checkpoint; the export's own fp16 check is in $weights's metadata"
  exit 0
fi
pairs=()
for i in "${!presets[@]}"; do
  preset=${presets[$i]}
  # shellcheck disable=SC2086
  uv run gmaiqa synth out="$out/half/$preset" preset="$preset" groups=3 seed=$((3000 + i)) \
      $rendering overwrite=true
  for pair in fp32:"$run" fp16:"$model"; do
    uv run gmaiqa predict ckpt="${pair#*:}" input="$out/half/$preset" out="$out/half_scores/${pair%%:*}/$preset" \
        overwrite=true
  done
  pairs+=("$out/half_scores/fp32/$preset" "$out/half_scores/fp16/$preset")
done
uv run python experiments/default-model/half_check.py "${pairs[@]}"
