#!/usr/bin/env bash
# The benchmark under shift, stage by stage: headroom first, then the methods, then the severity sweep.
#
#   benchmarks/shift_search.sh            # run (or continue) every stage in order
#   benchmarks/shift_search.sh headroom   # one stage: headroom | range | methods | options | sweep | pools | dv_size | once
#                                         #            | dora | range_more | sweep_methods | seeds34 | anti08
#
# Every stage is a `lit_iwpo table` call into results/: a finished run (its summary.json holds test metrics)
# is collected, never rerun, so the script continues where an interrupted session stopped; run it again with
# the same arguments. Runs go one at a time (2 CPU cores: two at once slow both). Timings on 2 cores: about
# 4 minutes per DPO-family run and 8-9 per IW-DPO run (Algorithm 1 scores a validation batch every step), once
# the reference log-probs of that training set are cached (the first run computes them, about 3 minutes, for
# every later run of any method and seed on the same data).
set -euo pipefail
cd "$(dirname "$0")/.."
source benchmarks/copy_runs.sh

SCENARIOS=(helpful_harmless science culture)
SEEDS=(0 1 2)
M=configs/methods
stage=${1:-all}

table() {  # table OUT BASE METHOD... [-- EXTRA]
  local out=$1 base=$2; shift 2
  lit_iwpo table --base "$base" --out "$out" --seeds "${SEEDS[@]}" --methods "$@"
}
# The rows each table held before stage 7 (names in configs/methods), for the stages that add rows and then
# collect every row; a stage's new rows are appended after these (stage 7's kept estimate before stage 8's rows)
HH_ROWS="dpo_tr_v dpo_oracle_weights dpo_anti_oracle_weights dpo_v wpo iw_dpo_l_kmm iw_dpo_r_kmm iw_dpo_r_kmm_plus_v
  dpo_dv_warm iw_dpo_r_kmm_dv_warm iw_dpo_r_recent iw_dpo_r_refresh"
SCI_ROWS="dpo_tr_v dpo_oracle_weights dpo_v wpo iw_dpo_l_kmm iw_dpo_r_kmm dpo_dv_warm iw_dpo_r_kmm_dv_warm iw_dpo_r_recent
  iw_dpo_r_refresh iw_dpo_r_refresh_kliep_every10"
CUL_ROWS="dpo_tr_v dpo_oracle_weights dpo_anti_oracle_weights dpo_v wpo iw_dpo_r_kmm iw_dpo_l_kmm iw_dpo_r_recent
  iw_dpo_r_refresh"
MS04_ROWS="dpo_tr_v iw_dpo_r_kmm iw_dpo_r_recent iw_dpo_r_refresh iw_dpo_r_refresh_kliep iw_dpo_r_refresh_kliep_every10
  iw_dpo_r_refresh_every10 dpo_v wpo iw_dpo_l_kmm"
HH08_ROWS="dpo_tr_v iw_dpo_r_kmm iw_dpo_r_recent iw_dpo_r_refresh_kliep_every10"
add() {  # add OUT BASE "ROWS..." "NEW..." [EXTRA...]: run the new rows (method config paths) beside DPO, whose
  # runs are there (collected), then collect every row: ROWS are names in configs/methods, NEW come last
  local out=$1 base=$2 rows=$3 new=$4; shift 4
  local extra=(); (($#)) && extra=(-- "$@")
  lit_iwpo table --base "$base" --out "$out" --seeds "${SEEDS[@]}" --methods $M/dpo_tr_v.yaml $new "${extra[@]}"
  lit_iwpo table --collect --base "$base" --out "$out" --seeds "${SEEDS[@]}" \
    --methods $(printf "$M/%s.yaml " $rows) $new "${extra[@]}"
}

if [[ $stage == all || $stage == headroom ]]; then
  # 1. headroom: do irrelevant pairs cost deployment quality? oracle weights vs DPO on D_tr ∪ D_v
  for s in "${SCENARIOS[@]}"; do
    table "results/headroom/$s" "configs/scenarios/$s.yaml" $M/dpo_tr_v.yaml $M/dpo_oracle_weights.yaml
  done
fi
if [[ $stage == all || $stage == range ]]; then
  # 2. the range: the anti-oracle (only the irrelevant pairs) beside them, in the same tables
  for s in "${SCENARIOS[@]}"; do
    table "results/headroom/$s" "configs/scenarios/$s.yaml" \
      $M/dpo_tr_v.yaml $M/dpo_oracle_weights.yaml $M/dpo_anti_oracle_weights.yaml
  done
fi
if [[ $stage == all || $stage == methods ]]; then
  # 3. the methods at each scenario's defaults, in the same tables (paired with the same seeds)
  for s in "${SCENARIOS[@]}"; do
    table "results/headroom/$s" "configs/scenarios/$s.yaml" \
      $M/dpo_tr_v.yaml $M/dpo_oracle_weights.yaml $M/dpo_anti_oracle_weights.yaml \
      $M/dpo_v.yaml $M/wpo.yaml $M/iw_dpo_l_kmm.yaml $M/iw_dpo_r_kmm.yaml $M/iw_dpo_r_refresh.yaml \
      $M/iw_dpo_r_recent.yaml
  done
fi
if [[ $stage == all || $stage == options ]]; then
  # 3b. our options beyond Algorithm 1, beside the methods (same tables, same seeds): D_v trained at weight 1
  # inside IW-DPO-R, a warm start on D_v (with its unweighted twin), D_v transforms every 8 steps (speed), and
  # the refresh pool with KLIEP every 10 steps (the variant that keeps the gain on mixed_source, stage 5)
  for s in "${SCENARIOS[@]}"; do
    table "results/headroom/$s" "configs/scenarios/$s.yaml" \
      $M/dpo_tr_v.yaml $M/dpo_oracle_weights.yaml $M/dpo_anti_oracle_weights.yaml \
      $M/dpo_v.yaml $M/wpo.yaml $M/iw_dpo_l_kmm.yaml $M/iw_dpo_r_kmm.yaml $M/iw_dpo_r_kmm_plus_v.yaml \
      $M/dpo_dv_warm.yaml $M/iw_dpo_r_kmm_dv_warm.yaml $M/iw_dpo_r_refresh.yaml $M/iw_dpo_r_recent.yaml \
      $M/iw_dpo_r_kmm_every8.yaml $M/iw_dpo_r_refresh_kliep_every10.yaml
  done
fi
if [[ $stage == all || $stage == sweep ]]; then
  # 4. severity sweep (DPO on D_v never reads D_tr: its runs above stand for every severity). At a scenario's
  # default severity (helpful_harmless 0.4, science 0.7, culture 0.5: the same data as ?severity=<default>) the
  # headroom table's runs are copied in, and that point joins the sweep. First DPO, the oracle and the paper's
  # IW-DPO-R; the other methods are the next step (same command, more --methods: finished runs are kept)
  declare -A DEFAULT_SEVERITY=([helpful_harmless]=0.4 [science]=0.7 [culture]=0.5)
  for s in "${SCENARIOS[@]}"; do
    d=${DEFAULT_SEVERITY[$s]}
    values=$(printf '%s\n' 0.2 0.4 0.6 0.8 "$d" | sort -u | paste -sd,)
    copy_runs "results/headroom/$s" "results/sweep/$s/severity=$d" "${SEEDS[*]}" dpo_tr_v dpo_oracle_weights iw_dpo_r_kmm
    lit_iwpo table --base "configs/scenarios/$s.yaml" --out "results/sweep/$s" --seeds "${SEEDS[@]}" \
      --vary "severity=$values" --methods $M/dpo_tr_v.yaml $M/dpo_oracle_weights.yaml $M/iw_dpo_r_kmm.yaml
  done
  # the same sweep on mixed_source (a response shift, where IW-DPO-R beats DPO at the default severity):
  # the paper's claim that the gain shrinks as the shift grows (README, "Severity and pools")
  lit_iwpo table --base configs/scenarios/mixed_source.yaml --out results/sweep/mixed_source --seeds "${SEEDS[@]}" \
    --vary severity=0.2,0.4,0.6,0.8 --methods $M/dpo_tr_v.yaml $M/dpo_oracle_weights.yaml $M/iw_dpo_r_kmm.yaml
fi
if [[ $stage == all || $stage == pools ]]; then
  # 5. the pools on mixed_source, where the 4-pair batch fails (severity 0.8) and at the default (0.4):
  # normalising over 64 recent pairs or over all of D_tr instead of within each batch; the refresh pool also
  # with KLIEP in place of RuLSIF, and with KLIEP and estimates every 10 steps from step 10. The DPO and IW-DPO-R
  # (batch) runs are the sweep's own at that severity (same data, seeds and command) where it has them:
  # copied in, so the table collects them instead of running them again. At the default severity the table
  # also holds the other baselines and methods, so weighting is compared with every one of them there
  for severity in 0.8 0.4; do
    pools=results/pools/mixed_source_severity$severity
    rest=()
    [[ $severity == 0.4 ]] && rest=($M/dpo_v.yaml $M/wpo.yaml $M/iw_dpo_l_kmm.yaml $M/iw_dpo_r_refresh_every10.yaml)
    copy_runs "results/sweep/mixed_source/severity=$severity" "$pools" "${SEEDS[*]}" dpo_tr_v iw_dpo_r_kmm
    lit_iwpo table --base configs/scenarios/mixed_source.yaml --out "$pools" \
      --seeds "${SEEDS[@]}" --methods $M/dpo_tr_v.yaml $M/iw_dpo_r_kmm.yaml $M/iw_dpo_r_recent.yaml \
      $M/iw_dpo_r_refresh.yaml $M/iw_dpo_r_refresh_kliep.yaml $M/iw_dpo_r_refresh_kliep_every10.yaml "${rest[@]}" \
      -- --data.train "scenario:mixed_source:train?severity=$severity"
  done
  # the same question under a label conflict: helpful-harmless at 0.8, where the 4-pair batch keeps the flipped
  # pairs (README, "Severity (helpful-harmless)"); DPO and the batch pool from the sweep
  pools=results/pools/helpful_harmless_severity0.8
  copy_runs "results/sweep/helpful_harmless/severity=0.8" "$pools" "${SEEDS[*]}" dpo_tr_v iw_dpo_r_kmm
  lit_iwpo table --base configs/scenarios/helpful_harmless.yaml --out "$pools" --seeds "${SEEDS[@]}" \
    --methods $M/dpo_tr_v.yaml $M/iw_dpo_r_kmm.yaml $M/iw_dpo_r_recent.yaml $M/iw_dpo_r_refresh_kliep_every10.yaml \
    -- --data.train "scenario:helpful_harmless:train?severity=0.8"
fi
if [[ $stage == all || $stage == dv_size ]]; then
  # 6. how small D_v must be before weighting beats training on it: mixed_source at the default severity with
  # the first 8 and the first 2 of the 32 D_v pairs (each a prefix of the same stream; D_tr and D_te unchanged)
  for n in 8 2; do
    methods=($M/dpo_v.yaml $M/iw_dpo_r_kmm.yaml)
    [[ $n == 8 ]] && methods+=($M/iw_dpo_r_recent.yaml $M/dpo_tr_v.yaml)
    lit_iwpo table --base configs/scenarios/mixed_source.yaml --out "results/dv_size/mixed_source_nval$n" \
      --seeds "${SEEDS[@]}" --methods "${methods[@]}" -- --data.val "scenario:mixed_source:val?n_val=$n"
  done
fi
if [[ $stage == all || $stage == once ]]; then
  # 7. the KLIEP refresh pool with one estimate, kept for the run (ours: iw_dpo_r_refresh_kliep_once.yaml), in
  # every table above where the other pools ran, paired with the same seeds: each scenario's defaults,
  # mixed_source's pools at 0.8 and 0.4, helpful-harmless at 0.8 and across its sweep. Each table is run with
  # DPO and the new row (DPO's runs are there: they are collected), then collected with all its rows
  once=$M/iw_dpo_r_refresh_kliep_once.yaml
  add results/headroom/helpful_harmless configs/scenarios/helpful_harmless.yaml "$HH_ROWS" "$once"
  add results/headroom/science configs/scenarios/science.yaml "$SCI_ROWS" "$once"
  add results/headroom/culture configs/scenarios/culture.yaml "$CUL_ROWS" "$once"
  add results/pools/mixed_source_severity0.8 configs/scenarios/mixed_source.yaml "dpo_tr_v iw_dpo_r_kmm \
    iw_dpo_r_recent iw_dpo_r_refresh iw_dpo_r_refresh_kliep_every10" "$once" \
    --data.train "scenario:mixed_source:train?severity=0.8"
  add results/pools/mixed_source_severity0.4 configs/scenarios/mixed_source.yaml "$MS04_ROWS" "$once" \
    --data.train "scenario:mixed_source:train?severity=0.4"
  add results/pools/helpful_harmless_severity0.8 configs/scenarios/helpful_harmless.yaml "$HH08_ROWS" "$once" \
    --data.train "scenario:helpful_harmless:train?severity=0.8"
  # the sweep: its 0.4 and 0.8 runs of the new row are the tables' above (the same command), copied in
  copy_runs results/headroom/helpful_harmless "results/sweep/helpful_harmless/severity=0.4" "${SEEDS[*]}" \
    iw_dpo_r_refresh_kliep_once
  copy_runs results/pools/helpful_harmless_severity0.8 "results/sweep/helpful_harmless/severity=0.8" "${SEEDS[*]}" \
    iw_dpo_r_refresh_kliep_once
  lit_iwpo table --base configs/scenarios/helpful_harmless.yaml --out results/sweep/helpful_harmless \
    --seeds "${SEEDS[@]}" --vary severity=0.2,0.4,0.6,0.8 --methods $M/dpo_tr_v.yaml $M/dpo_oracle_weights.yaml \
    $M/iw_dpo_r_kmm.yaml $M/iw_dpo_r_refresh_kliep_once.yaml
  # the science sweep with it (0.7, the default, from the headroom table); the severities where most pairs are
  # flipped first (sweep.md orders them by value)
  copy_runs results/headroom/science "results/sweep/science/severity=0.7" "${SEEDS[*]}" iw_dpo_r_refresh_kliep_once
  lit_iwpo table --base configs/scenarios/science.yaml --out results/sweep/science --seeds "${SEEDS[@]}" \
    --vary severity=0.8,0.6,0.4,0.2,0.7 --methods $M/dpo_tr_v.yaml $M/dpo_oracle_weights.yaml $M/iw_dpo_r_kmm.yaml \
    $M/iw_dpo_r_refresh_kliep_once.yaml
fi
if [[ $stage == all || $stage == dora ]]; then
  # 8. DoRA's calibration weights (a D_v-vs-D_tr classifier on the base model's response embeddings) in the three
  # scenarios' tables, with DRO (the paper) and in a weighted mean (its "h without DRO" ablation), and the same
  # classifier on whole pairs as a density ratio (ours: iw_dpo_embedding_ratio.yaml), paired with the same seeds.
  # helpful-harmless's DoRA runs are the DoRA table's (the same command): copied in
  copy_runs results/dora/helpful_harmless results/headroom/helpful_harmless "${SEEDS[*]}" dora
  dora="$M/iw_dpo_embedding_ratio.yaml $M/dora.yaml configs/dora/reweight_only.yaml"
  kept=iw_dpo_r_refresh_kliep_once  # stage 7's row, now in every table here
  add results/headroom/helpful_harmless configs/scenarios/helpful_harmless.yaml "$HH_ROWS $kept" "$dora"
  add results/headroom/science configs/scenarios/science.yaml "$SCI_ROWS $kept" "$dora"
  add results/headroom/culture configs/scenarios/culture.yaml "$CUL_ROWS $kept" "$dora"
  # the pair classifier beside the pools where they ran: mixed_source at 0.4 (a response shift) and
  # helpful-harmless at 0.8 (most pairs flipped)
  ratio=$M/iw_dpo_embedding_ratio.yaml
  add results/pools/mixed_source_severity0.4 configs/scenarios/mixed_source.yaml "$MS04_ROWS $kept" "$ratio" \
    --data.train "scenario:mixed_source:train?severity=0.4"
  add results/pools/helpful_harmless_severity0.8 configs/scenarios/helpful_harmless.yaml "$HH08_ROWS $kept" "$ratio" \
    --data.train "scenario:helpful_harmless:train?severity=0.8"
  # the culture sweep with DPO, the oracle, the paper's IW-DPO-R, the kept estimate and the pair classifier (0.5,
  # the default, from the headroom table); the ends of the range first
  copy_runs results/headroom/culture "results/sweep/culture/severity=0.5" "${SEEDS[*]}" dpo_tr_v dpo_oracle_weights \
    iw_dpo_r_kmm iw_dpo_r_refresh_kliep_once iw_dpo_embedding_ratio
  lit_iwpo table --base configs/scenarios/culture.yaml --out results/sweep/culture --seeds "${SEEDS[@]}" \
    --vary severity=0.8,0.2,0.6,0.4,0.5 --methods $M/dpo_tr_v.yaml $M/dpo_oracle_weights.yaml $M/iw_dpo_r_kmm.yaml \
    $M/iw_dpo_r_refresh_kliep_once.yaml "$ratio"
fi
if [[ $stage == all || $stage == range_more ]]; then
  # 9. the anti-oracle (only the irrelevant pairs) where stage 2 left it out: science's defaults, and mixed_source at
  # its default severity (the pools table, which holds every method there); each table collected with all its rows
  anti=$M/dpo_anti_oracle_weights.yaml
  dora_rows="$M/iw_dpo_embedding_ratio.yaml $M/dora.yaml configs/dora/reweight_only.yaml"
  add results/headroom/science configs/scenarios/science.yaml "$SCI_ROWS iw_dpo_r_refresh_kliep_once" "$dora_rows $anti"
  add results/pools/mixed_source_severity0.4 configs/scenarios/mixed_source.yaml \
    "$MS04_ROWS iw_dpo_r_refresh_kliep_once" "$M/iw_dpo_embedding_ratio.yaml $anti" \
    --data.train "scenario:mixed_source:train?severity=0.4"
fi
if [[ $stage == all || $stage == sweep_methods ]]; then
  # 10. the sweep's other methods (issue: every method at every severity): WPO, IW-DPO-L, IW-DPO-R with the recent
  # and refresh pools, and the pair classifier, beside the rows the sweeps hold (their runs collected). Runs made
  # with the identical command elsewhere are copied in: each scenario's default severity from its headroom table
  # (mixed_source: its pools table at 0.4), and the pools tables at 0.8. Helpful-harmless first, then the response
  # shift, then science and culture; within a sweep the severity where most pairs are flipped first
  more="wpo iw_dpo_l_kmm iw_dpo_r_recent iw_dpo_r_refresh iw_dpo_embedding_ratio"
  kept=iw_dpo_r_refresh_kliep_once
  sweep_rows() {  # sweep_rows SCENARIO VALUES ROWS...: the sweep's table over VALUES with ROWS (names in $M)
    local s=$1 values=$2; shift 2
    lit_iwpo table --base "configs/scenarios/$s.yaml" --out "results/sweep/$s" --seeds "${SEEDS[@]}" \
      --vary "severity=$values" --methods $(printf "$M/%s.yaml " "$@")
  }
  copy_runs results/headroom/helpful_harmless "results/sweep/helpful_harmless/severity=0.4" "${SEEDS[*]}" $more
  copy_runs results/pools/helpful_harmless_severity0.8 "results/sweep/helpful_harmless/severity=0.8" "${SEEDS[*]}" \
    $more
  sweep_rows helpful_harmless 0.8,0.2,0.6,0.4 dpo_tr_v dpo_oracle_weights iw_dpo_r_kmm $kept $more
  copy_runs results/pools/mixed_source_severity0.4 "results/sweep/mixed_source/severity=0.4" "${SEEDS[*]}" $kept $more
  copy_runs results/pools/mixed_source_severity0.8 "results/sweep/mixed_source/severity=0.8" "${SEEDS[*]}" $kept $more
  sweep_rows mixed_source 0.8,0.2,0.6,0.4 dpo_tr_v dpo_oracle_weights iw_dpo_r_kmm $kept $more
  copy_runs results/headroom/science "results/sweep/science/severity=0.7" "${SEEDS[*]}" $more
  sweep_rows science 0.8,0.6,0.4,0.2,0.7 dpo_tr_v dpo_oracle_weights iw_dpo_r_kmm $kept $more
  copy_runs results/headroom/culture "results/sweep/culture/severity=0.5" "${SEEDS[*]}" $more
  sweep_rows culture 0.8,0.2,0.6,0.4,0.5 dpo_tr_v dpo_oracle_weights iw_dpo_r_kmm $kept $more
fi
if [[ $stage == all || $stage == seeds34 ]]; then
  # 11. seeds 3 and 4 where the budget allowed (issue: at least 5 seeds), DPO beside the rows in question. Culture: the
  # two leads of the sweep (the recent pool at 0.6, the pair classifier at 0.4), the sweep collected over seeds 0-4
  # (seeds a method lacks are skipped; differences pair the seeds both rows have). Each scenario's defaults: every row
  # of the default table but two (below), collected at 0-4 in the headroom table's five_seeds/ (its runs are the
  # table's, linked) while the table itself stays at seeds 0-2
  lit_iwpo table --base configs/scenarios/culture.yaml --out results/sweep/culture --seeds 3 4 --vary severity=0.6 \
    --methods $M/dpo_tr_v.yaml $M/iw_dpo_r_recent.yaml
  lit_iwpo table --base configs/scenarios/culture.yaml --out results/sweep/culture --seeds 3 4 --vary severity=0.4 \
    --methods $M/dpo_tr_v.yaml $M/iw_dpo_embedding_ratio.yaml
  lit_iwpo table --collect --base configs/scenarios/culture.yaml --out results/sweep/culture --seeds 0 1 2 3 4 \
    --vary severity=0.8,0.2,0.6,0.4,0.5 --methods $(printf "$M/%s.yaml " dpo_tr_v dpo_oracle_weights iw_dpo_r_kmm \
    iw_dpo_r_refresh_kliep_once wpo iw_dpo_l_kmm iw_dpo_r_recent iw_dpo_r_refresh iw_dpo_embedding_ratio)
  five_seeds() {  # five_seeds SCENARIO ROWS...: seeds 3-4 of ROWS (names in $M, or config paths), then ROWS collected
    # at seeds 0-4 against the baselines in $BASELINES (default DPO on D_tr ∪ D_v)
    local s=$1 t=results/headroom/$1 cfgs=() r; shift
    for r in "$@"; do [[ $r == */* ]] && cfgs+=("$r") || cfgs+=("$M/$r.yaml"); done
    mkdir -p "$t/five_seeds" && ln -sfn ../runs "$t/five_seeds/runs"
    lit_iwpo table --base "configs/scenarios/$s.yaml" --out "$t/five_seeds" --seeds 3 4 --methods "${cfgs[@]}"
    lit_iwpo table --collect --base "configs/scenarios/$s.yaml" --out "$t/five_seeds" --seeds 0 1 2 3 4 \
      --methods "${cfgs[@]}" --baseline ${BASELINES:-dpo_tr_v}
  }
  # each scenario's default table at five seeds: every row of the three-seed table (in its order) except
  # iw_dpo_r_kmm_plus_v (seed 0 only) and science's every-10 variant; paired against DPO on D_tr ∪ D_v and a
  # second baseline (helpful-harmless: the warm start without weights; science and culture: DPO on D_v)
  BASELINES="dpo_tr_v dpo_dv_warm" five_seeds helpful_harmless dpo_tr_v dpo_oracle_weights dpo_anti_oracle_weights \
    dpo_v wpo iw_dpo_l_kmm iw_dpo_r_kmm dpo_dv_warm iw_dpo_r_kmm_dv_warm iw_dpo_r_recent iw_dpo_r_refresh \
    iw_dpo_r_refresh_kliep_once iw_dpo_embedding_ratio dora configs/dora/reweight_only.yaml
  BASELINES="dpo_tr_v dpo_v" five_seeds science dpo_tr_v dpo_oracle_weights dpo_anti_oracle_weights dpo_v wpo \
    iw_dpo_l_kmm iw_dpo_r_kmm dpo_dv_warm iw_dpo_r_kmm_dv_warm iw_dpo_r_recent iw_dpo_r_refresh \
    iw_dpo_r_refresh_kliep_once iw_dpo_embedding_ratio dora configs/dora/reweight_only.yaml
  BASELINES="dpo_tr_v dpo_v" five_seeds culture dpo_tr_v dpo_oracle_weights dpo_anti_oracle_weights dpo_v wpo \
    iw_dpo_l_kmm iw_dpo_r_kmm iw_dpo_r_recent iw_dpo_r_refresh iw_dpo_r_refresh_kliep_once iw_dpo_embedding_ratio \
    dora configs/dora/reweight_only.yaml
fi
if [[ $stage == all || $stage == anti08 ]]; then
  # 12. culture at severity 0.8: does the oracle's win-rate gain there come from the custom? The anti-oracle beside
  # DPO and the oracle, whose runs are the sweep's own (copied: the identical command)
  copy_runs results/sweep/culture/severity=0.8 results/sweep/culture_anti_oracle/severity=0.8 "${SEEDS[*]}" \
    dpo_tr_v dpo_oracle_weights
  lit_iwpo table --base configs/scenarios/culture.yaml --out results/sweep/culture_anti_oracle --seeds "${SEEDS[@]}" \
    --vary severity=0.8 --methods $M/dpo_tr_v.yaml $M/dpo_oracle_weights.yaml $M/dpo_anti_oracle_weights.yaml
fi
