#!/usr/bin/env bash
# IWPO (our reconstruction) against DPO on D_tr ∪ D_v and IW-DPO-R: on the embedded mixed-task scenario (two tasks
# whose preference levels overlap, no deployment shift: IWPO's setting) with its two ablations (loss weights
# instead of resampling; one cluster), and on helpful-harmless. Same steps and seeds for every method.
# Resumable: finished runs are collected, never rerun; tables go seed by seed.
#
#   benchmarks/iwpo_table.sh              # SEEDS="0 1 2" by default
#
# On helpful-harmless the DPO and IW-DPO-R runs of the headroom and DoRA tables (results/{headroom,dora}/
# helpful_harmless, the identical commands) are copied in rather than run again. Timings on 2 cores: ~4-5 minutes
# per DPO-family run (IWPO adds one embedding pass over the training set, cached), ~8-9 per IW-DPO run.
set -euo pipefail
cd "$(dirname "$0")/.."
source benchmarks/copy_runs.sh
SEEDS=(${SEEDS:-0 1 2})
M=configs/methods

lit_iwpo table --base configs/scenarios/mixed_task.yaml --out results/iwpo/mixed_task --seeds "${SEEDS[@]}" \
  --methods $M/dpo_tr_v.yaml $M/iwpo.yaml configs/iwpo/loss_weights.yaml configs/iwpo/one_cluster.yaml \
  $M/iw_dpo_r_kmm.yaml

OUT=results/iwpo/helpful_harmless
copy_runs results/headroom/helpful_harmless "$OUT" "${SEEDS[*]}" dpo_tr_v iw_dpo_r_kmm
copy_runs results/dora/helpful_harmless "$OUT" "${SEEDS[*]}" dpo_tr_v iw_dpo_r_kmm
lit_iwpo table --base configs/scenarios/helpful_harmless.yaml --out "$OUT" --seeds "${SEEDS[@]}" \
  --methods $M/dpo_tr_v.yaml $M/iwpo.yaml $M/iw_dpo_r_kmm.yaml
