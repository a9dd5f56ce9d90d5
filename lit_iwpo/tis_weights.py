"""``lit_iwpo tis-weights``: from data to TIS-DPO's token weights, with the same arguments as the fit.

    lit_iwpo tis-weights --config configs/scenarios/helpful_harmless.yaml --config configs/methods/tis_dpo.yaml
    lit_iwpo fit         --config configs/scenarios/helpful_harmless.yaml --config configs/methods/tis_dpo.yaml

1. With contrastive adapters (``ContrastiveAdapters``), each missing adapter is trained by ``lit_iwpo fit`` on
   the fit's training split with the same settings: forward DPO and reverse DPO (pairs swapped) for ``kind: dpo``,
   SFT on chosen and SFT on rejected responses for ``kind: sft``; the trained adapter is saved into the folder
   the objective names (or the one derived from the training data's fingerprint).
2. The token weights are computed with the contrast (batched, no grad) and cached under a fingerprint of
   data, tokenizer, models and map settings, and the table of every token's raw value and weight is written
   to the run directory (``weights/tokens=000000.parquet``). The fit then loads them from the cache.
"""

from __future__ import annotations

import sys

from lit_iwpo.errors import ConfigError

USAGE = __doc__


def tis_weights_main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    from lit_iwpo.cli import cli
    from lit_iwpo.models.refcache import data_fingerprint, tokenizer_fingerprint
    from lit_iwpo.objectives import TISDPO
    from lit_iwpo.objectives.weights.token import ContrastiveAdapters

    parsed = cli(argv, run=False)  # the configured objective and data; nothing trained
    if parsed.trainer.world_size > 1:
        raise ConfigError("tis-weights trains and saves the contrastive adapters in this process: run it on one "
                          "device (--trainer.devices 1); the TIS-DPO fit itself may use several")
    objective = parsed.model.objective
    if not isinstance(objective, TISDPO):
        raise ConfigError(f"tis-weights prepares TIS-DPO's token weights, but model.objective is "
                          f"{type(objective).__name__}: add a TIS-DPO method config (configs/methods/tis_*.yaml)")
    contrast = objective.token_weights.contrast
    if isinstance(contrast, ContrastiveAdapters):
        dm = parsed.datamodule
        contrast.resolve(data_fingerprint(dm.load_split("train")), tokenizer_fingerprint(dm.tokenizer))
        missing = contrast.missing()
        for folder, objective_path, swap in contrast.training():
            if folder not in missing:
                print(f"[tis-weights] adapter {folder}: present, kept", flush=True)
                continue
            print(f"[tis-weights] training {folder}: {objective_path.rsplit('.', 1)[-1]}"
                  f"{' on swapped pairs' if swap else ''}", flush=True)
            # the same training split as the TIS-DPO fit (its fingerprint names the folders)
            run = cli(["fit", *argv, "--model.objective", objective_path, "--data.swap_pairs", str(swap).lower(),
                       "--test_after_fit", "false", "--eval.win_rate", "false"])
            run.model.save_hf(folder)
            print(f"[tis-weights] saved {folder} (run: {run.trainer.log_dir})", flush=True)
    # a fit of zero steps: the module's fit start computes (or loads) the token weights and caches them, and
    # the run directory gets the token table
    run = cli(["fit", *argv, "--trainer.max_steps", "0", "--test_after_fit", "false", "--eval.win_rate", "false"])
    tw = run.model.objective.token_weights
    # a fit of zero steps runs no training loop, so no refresh callback snapshots the table: write it here
    from lit_iwpo.callbacks.iw_refresh import ImportanceWeightRefresh

    if run.trainer.is_global_zero:
        ImportanceWeightRefresh.write(run.trainer, tw.weight_tables(run.model.context), run.trainer.global_step)
    print(f"[tis-weights] token weights of {len(tw.ids)} training pairs; run directory {run.trainer.log_dir} "
          "(weights/tokens=000000.parquet)")
    for name, value in sorted(tw.summary().items()):
        print(f"  {name}: {value:.4f}")
    return 0
