#!/usr/bin/env bash
# The GMANet study (§4.3, §5.1) in the paper's order, each step five rounds (seeds 0-4), reusing each
# round's L0 and L1 as the paper does. Idempotent: run it again after a crash or pre-emption and every
# finished job is skipped, every unfinished one resumed (resume=auto, fixed run ids).
#
#   experiments/gmanet-paper/launch.sh STUDY [key=value ...]
#
# STUDY names this launch (run ids STUDY-l0, STUDY-l1, ...). Extra overrides go to every step, e.g.
#   data.root=/data/feces eval_datasets=paper eval_datasets.leucorrhea.root=/data/leucorrhea \
#   eval_datasets.blood.root=/data/blood model.backbone.weights_path=/weights/vgg16_bn.pth trainer=ddp
# Without data overrides it runs on the built-in synthetic presets at the paper's sizes (slow on a CPU;
# see README.md here for the reduced CPU demonstration).
set -euo pipefail
study=${1:?usage: launch.sh STUDY [key=value ...]}
shift
out=${OUTPUT_ROOT:-outputs}

train() { uv run gmaiqa train -m "paths.output_root=$out" "$@"; }

# 1. Table 1: L0, then L1 from the L0 of the same round
train sweep=seeds experiment=gmanet_l0 "run_id=$study-l0" "$@"
train sweep=seeds experiment=gmanet_l1 "init_from=$out/gmanet_l0-multirun/$study-l0" "run_id=$study-l1" "$@"
# 2. Fig. 9: L2 from each round's L1; L1* trained directly
train sweep=seeds experiment=gmanet_l2 "init_from=$out/gmanet_l1-multirun/$study-l1" "run_id=$study-l2" "$@"
train sweep=seeds experiment=gmanet_l1_direct "run_id=$study-l1direct" "$@"
# 3. Fig. 10: L1 with Tenengrad vs local max gradient, from the same L0s
train sweep=attention_map experiment=gmanet_l1 "init_from=$out/gmanet_l0-multirun/$study-l0" "run_id=$study" "$@"
# 4. Table 2: without auxiliary outputs (L0 retrained 100 epochs, then L1)
train sweep=seeds experiment=gmanet_no_aux "run_id=$study-noaux" "$@"
# 5. Backbone: ResNet-50 in place of VGG16-BN
train sweep=seeds experiment=gmanet_paper model/backbone=resnet50 "run_id=$study-resnet50" "$@"

dirs=("$out/gmanet_l0-multirun/$study-l0" "$out/gmanet_l1-multirun/$study-l1" "$out/gmanet_l2-multirun/$study-l2"
      "$out/gmanet_l1_direct-multirun/$study-l1direct" "$out/ablation_attention_map-multirun/$study"
      "$out/gmanet_no_aux-multirun/$study-noaux" "$out/gmanet_paper-multirun/$study-resnet50")
for dir in "${dirs[@]}"; do
  uv run gmaiqa summarize "$dir"
done
# one document for the whole study: tables, Figs. 9-11 style charts, learning curves, selections, links
# (mode=online saves it as a W&B Report instead: `uv run --extra reports`, after `wandb sync` of the runs)
uv run gmaiqa report "${dirs[@]}" "title='GMANet study $study'" "out=$out/$study-report"
