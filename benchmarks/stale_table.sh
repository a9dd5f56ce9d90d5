#!/usr/bin/env bash
# What reusing D_v transforms costs IW-DPO-R's weights (`val_transforms_every: k`, ours, for speed): the paper's
# Algorithm 1 (a fresh validation batch every step, k = 1) against k = 8 and k = 16, on mixed_source (the
# embedded scenario where IW-DPO-R beats DPO), beside DPO on D_tr ∪ D_v. Same steps and seeds for every method;
# the table reports win rate, the difference from DPO and the weights' AUC for target pairs.
# Resumable: finished runs are collected, never rerun.
#
#   benchmarks/stale_table.sh              # SEEDS="0 1 2" by default
#
# DPO and IW-DPO-R (k = 1) are copied from the DoRA table (results/dora/mixed_source, the identical commands).
set -euo pipefail
cd "$(dirname "$0")/.."
source benchmarks/copy_runs.sh
SEEDS=(${SEEDS:-0 1 2})
M=configs/methods
OUT=results/stale/mixed_source

copy_runs results/dora/mixed_source "$OUT" "${SEEDS[*]}" dpo_tr_v iw_dpo_r_kmm
lit_iwpo table --base configs/scenarios/mixed_source.yaml --out "$OUT" --seeds "${SEEDS[@]}" \
  --methods $M/dpo_tr_v.yaml $M/iw_dpo_r_kmm.yaml $M/iw_dpo_r_kmm_every8.yaml $M/iw_dpo_r_kmm_every16.yaml
