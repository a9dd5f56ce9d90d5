#!/usr/bin/env bash
# DoRA against DPO on D_tr ∪ D_v and IW-DPO-R, on the embedded mixed-source scenario (per-response sources: the
# setting DoRA is for) and on helpful-harmless (no source column: D_v is the target sample, target_from: val).
# Same steps and seeds for every method. Resumable: finished runs are collected, never rerun; tables go seed by
# seed, so an interrupted one holds whole seeds.
#
#   benchmarks/dora_table.sh              # SEEDS="0 1 2" by default
#
# mixed_source also runs the oracle weights (weights = the ground-truth `relevant` column: the headroom any
# pair weighting has there). On helpful-harmless the DPO and IW-DPO-R runs already made for the headroom table
# (results/headroom/helpful_harmless, the identical commands) are copied in rather than run again.
# Timings on 2 cores: ~4-5 minutes per DPO-family run (DoRA adds one embedding pass, cached), ~8-9 per IW-DPO run.
set -euo pipefail
cd "$(dirname "$0")/.."
source benchmarks/copy_runs.sh
SEEDS=(${SEEDS:-0 1 2})
M=configs/methods

lit_iwpo table --base configs/scenarios/mixed_source.yaml --out results/dora/mixed_source --seeds "${SEEDS[@]}" \
  --methods $M/dpo_tr_v.yaml $M/dpo_oracle_weights.yaml configs/dora/dora_source.yaml $M/iw_dpo_r_kmm.yaml

OUT=results/dora/helpful_harmless
copy_runs results/headroom/helpful_harmless "$OUT" "${SEEDS[*]}" dpo_tr_v iw_dpo_r_kmm
lit_iwpo table --base configs/scenarios/helpful_harmless.yaml --out "$OUT" --seeds "${SEEDS[@]}" \
  --methods $M/dpo_tr_v.yaml $M/dora.yaml $M/iw_dpo_r_kmm.yaml
