#!/usr/bin/env bash
# Paired differences of a finished table against other baselines, each into OUT/diffs_vs_<baseline>.md, with
# diffs.md (against the default baseline, dpo_tr_v) and the table left as a plain collect writes them.
#   benchmarks/diffs_vs.sh "BASELINE..." OUT BASE METHOD... [-- EXTRA]
# METHOD... and EXTRA are the table's own (every row it holds): e.g.
#   benchmarks/diffs_vs.sh "iw_dpo_r_kmm dpo_v" results/pools/mixed_source_severity0.4 \
#     configs/scenarios/mixed_source.yaml configs/methods/{dpo_tr_v,iw_dpo_r_kmm,dpo_v}.yaml \
#     -- --data.train "scenario:mixed_source:train?severity=0.4"
# Only collects (never starts a run); the seeds are 0 1 2, as in benchmarks/shift_search.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
baselines=$1 out=$2 base=$3; shift 3
for b in $baselines; do
  lit_iwpo table --collect --base "$base" --out "$out" --seeds 0 1 2 --baseline "$b" --methods "$@" > /dev/null
  mv "$out/diffs.md" "$out/diffs_vs_$b.md"
  echo "written: $out/diffs_vs_$b.md"
done
lit_iwpo table --collect --base "$base" --out "$out" --seeds 0 1 2 --methods "$@" > /dev/null
