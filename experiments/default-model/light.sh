#!/usr/bin/env bash
# The light-trunk recipe of issue 32 (conf/experiment/default_model_light.yaml) with both of item 4's
# normalisations, then every candidate on the six presets and the real dev set:
#   experiments/default-model/light.sh DEV_SET [OUT]      (about 1 h 15 min on the 2-core CPU)
# 1. `gmaiqa train experiment=default_model_light data.normalize=image|stack` (run ids light_image,
#    light_stack under OUT);
# 2. benchmarks/default_scorer.py with both runs as extra candidates (--model), reusing the committed
#    table's rows for the candidates it already holds; the table lands in OUT/default_scorer.json.
# A trial model ships (gmaiqa export format=weights into gmaiqa/default_model/) only if that table's
# rule prefers it; the choice is then recorded with --write-choice.
set -euo pipefail
dev=${1:?give the real dev set (benchmarks/real_dev_set.py makes it)}
out=${2:-outputs/default-model-light}
for normalize in image stack; do
  uv run gmaiqa train experiment=default_model_light data.normalize="$normalize" evaluate=false \
      run_id="light_$normalize" paths.output_root="$out"
done
uv run python benchmarks/default_scorer.py --dev "$dev" --reuse benchmarks/results/default_scorer.json \
    --model "light_image=$out/default_model_light/light_image" \
    --model "light_stack=$out/default_model_light/light_stack" --out "$out/default_scorer.json"
