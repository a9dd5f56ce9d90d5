# Sourced by the table scripts: copy finished runs of another table made with the identical command (same
# scenario config, method config and seed) instead of running them again.
#   copy_runs FROM_TABLE TO_TABLE "SEED..." METHOD...
copy_runs() {
  local from=$1 to=$2 seeds=$3; shift 3
  local m seed
  for m in "$@"; do
    for seed in $seeds; do
      if [[ -f $from/runs/$m/seed$seed/summary.json && ! -e $to/runs/$m/seed$seed ]]; then
        mkdir -p "$to/runs/$m" && cp -r "$from/runs/$m/seed$seed" "$to/runs/$m/" && cp "$from/runs/$m/seed$seed.log" "$to/runs/$m/" || true
      fi
    done
  done
}
