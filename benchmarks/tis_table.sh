#!/usr/bin/env bash
# TIS-DPO against DPO on the embedded helpful-harmless scenario: the three constructions of the paper and the
# released code's two maps, same steps and seeds as DPO on D_tr ∪ D_v (the baseline, whose runs are those of
# results/headroom/helpful_harmless: the identical command). Resumable: finished runs are collected, never rerun.
#
#   benchmarks/tis_table.sh            # adapters (once per training set), then the table
#
# Timings on 2 cores: each contrastive adapter is a 60-step fit (~3 min), the token weights one scoring pass
# over D_tr ∪ D_v (~1-2 min, cached), a TIS-DPO run about as long as a DPO run (~4 min).
set -euo pipefail
cd "$(dirname "$0")/.."
S=configs/scenarios/helpful_harmless.yaml
OUT=results/tis/helpful_harmless
SEEDS=(${SEEDS:-0 1 2})
for m in tis_dpo tis_dpo_sft; do
  lit_iwpo tis-weights --config "$S" --config "configs/tis/$m.yaml"
done
mkdir -p "$OUT/runs"
if [[ -d results/headroom/helpful_harmless/runs/dpo_tr_v && ! -e "$OUT/runs/dpo_tr_v" ]]; then
  cp -r results/headroom/helpful_harmless/runs/dpo_tr_v "$OUT/runs/dpo_tr_v"
fi
lit_iwpo table --base "$S" --out "$OUT" --seeds "${SEEDS[@]}" --methods configs/methods/dpo_tr_v.yaml \
  configs/tis/tis_dpo.yaml configs/tis/tis_dpo_sft.yaml configs/tis/tis_dpo_prompts.yaml \
  configs/tis/tis_dpo_threshold.yaml configs/tis/tis_dpo_rank.yaml
