"""Re-estimate a run's importance weights from its recorded transforms, with other estimators.

A run with ``pool: refresh`` records, at every re-estimate, the transforms of all of D_tr and D_v that the
estimate used (``weights/step=S.parquet`` with columns z0, z1, ..., the weight used and the ground-truth
``relevant`` column; ``weights/val_step=S.parquet``). This script fits each estimator given on exactly those
points and prints, per run and step, how well the weights rank relevant above irrelevant pairs (AUC) and the
mean weight an irrelevant pair keeps after normalising to mean 1 over D_tr (what ``refresh`` trains with).
The first row of each step is the weight the run used, so a run whose estimator is listed again checks that
the refit reproduces it. Each row also gives the kernel width the fit used (chosen by cross-validation for
RuLSIF and KLIEP, the median heuristic for KMM), as a multiple of the median heuristic, and RuLSIF's ridge.

    python benchmarks/reestimate_weights.py results/pools/mixed_source_severity0.4/runs/iw_dpo_r_refresh/seed*
    python benchmarks/reestimate_weights.py RUN... --estimators RuLSIF RuLSIF:alpha=0 RuLSIF:lambda_=0.001 KLIEP KMM

Runs with ``pool: batch`` or ``recent`` record transforms too, but their estimates were made per batch, so
refitting all of D_tr at once does not describe what they trained with.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import torch

from lit_iwpo import weighting
from lit_iwpo.eval.metrics import auc

DEFAULT_ESTIMATORS = ("RuLSIF", "RuLSIF:alpha=0", "RuLSIF:alpha=0.5", "RuLSIF:lambda_=0.001", "KLIEP", "KMM")


def make_estimator(spec: str) -> weighting.DensityRatioEstimator:
    """``Name`` or ``Name:key=value,key=value`` (values parsed as float) to an estimator of lit_iwpo.weighting."""
    name, _, args = spec.partition(":")
    cls = getattr(weighting, name, None)
    if not (isinstance(cls, type) and issubclass(cls, weighting.DensityRatioEstimator)):
        raise SystemExit(f"unknown estimator {name!r} in {spec!r}: one of KMM, KLIEP, RuLSIF")
    kwargs = {}
    for item in filter(None, args.split(",")):
        key, _, value = item.partition("=")
        kwargs[key] = float(value)
    return cls(**kwargs)


def summarize(weights: torch.Tensor, relevant: torch.Tensor) -> tuple[float, float]:
    """AUC of relevant over irrelevant pairs, and the irrelevant pairs' mean weight after normalising to mean 1."""
    w = weighting.normalize_mean_one(weights.double())
    return auc(w, relevant), float(w[~relevant].mean())


def chosen(estimator) -> str:
    """The kernel width the fit used, in standardised units and, where the fit computed the median heuristic
    (the cross-validation grids are multiples of it), as a multiple of it; and RuLSIF's ridge."""
    params = estimator.last_params
    sigma = params.get("sigma") or (2.0 * params["gamma"]) ** -0.5
    median = params.get("median")
    text = f"sigma {sigma:.2f}" + (f" ({sigma / median:.2g} x median)" if median else "")
    return text + (f", lambda {params['lambda']:g}" if "lambda" in params else "")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories (with weights/step=*.parquet)")
    parser.add_argument("--estimators", nargs="+", default=list(DEFAULT_ESTIMATORS),
                        help="Name or Name:key=value,... (default: %(default)s)")
    args = parser.parse_args(argv)
    print("| run | step | estimator | chosen width / ridge | AUC relevant | mean weight, irrelevant |")
    print("|---|---|---|---|---|---|")
    for run in args.runs:
        for path in sorted((run / "weights").glob("step=*.parquet")):
            step = path.stem.split("=", 1)[1]
            val_path = run / "weights" / f"val_step={step}.parquet"
            train = pd.read_parquet(path)
            if not val_path.exists() or "relevant" not in train or "z0" not in train:
                print(f"{run}: step {step} has no D_v transforms or no relevant column; skipped", file=sys.stderr)
                continue
            val = pd.read_parquet(val_path)
            cols = sorted((c for c in train.columns if c.startswith("z") and c[1:].isdigit()), key=lambda c: int(c[1:]))
            z_train = torch.tensor(train[cols].to_numpy(), dtype=torch.float32)
            z_val = torch.tensor(val[cols].to_numpy(), dtype=torch.float32)
            relevant = torch.tensor(train["relevant"].to_numpy(dtype=bool))
            rows = [("used by the run", "", torch.tensor(train["weight"].to_numpy()))]
            for spec in args.estimators:
                est = make_estimator(spec)
                w = est(z_train, z_val)
                rows.append((spec, chosen(est), w))
            for name, params, w in rows:
                a, irr = summarize(w, relevant)
                print(f"| {run} | {int(step)} | {name} | {params} | {a:.2f} | {irr:.3f} |", flush=True)


if __name__ == "__main__":
    main()
