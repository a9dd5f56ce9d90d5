"""``lit_iwpo table``: run (or collect) methods × seeds on a scenario and print the paper-style table.

    lit_iwpo table --base configs/scenarios/helpful_harmless.yaml \\
        --methods configs/methods/dpo_tr_v.yaml configs/methods/iw_dpo_r_kmm.yaml --seeds 0 1 2 \\
        --out results/helpful_harmless

Each (method, seed) runs ``lit_iwpo fit --config BASE --config METHOD --seed_everything S --data.seed S``
in its own process, into ``OUT/runs/METHOD/seedS``; a run whose ``summary.json`` already exists is
collected, not rerun (so an interrupted table resumes, and ``--collect`` only aggregates; a run whose
summary has no test metrics yet counts as interrupted and starts again). The table
(mean ± sd over seeds, sample sd) is printed and written as ``table.md``, ``table.csv`` (one row per
method × metric, with the per-seed values) and ``table.png``. The table's last column, ``time/minutes``,
is each run's wall time from its saved config to its final metrics (training, validation and the final
test with generation), read from the run's files, so it covers runs made by earlier invocations too.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
from pathlib import Path

DEFAULT_METRICS = ("test/win_rate", "test/rewards/accuracies", "test/rewards/margins", "iw/auc_relevant", "iw/ess_ratio")
TIME_METRIC = "time/minutes"


def rejudge_run(run: Path) -> dict[str, float]:
    """Re-score a finished run from its saved files, no model needed: the win rate of
    ``generations_test.jsonl`` with the current scenario oracle, and the weight quality (``iw/*``) of the
    final ``weights/`` snapshot. Updates ``summary.json`` and returns the new values. Only for runs on
    embedded scenarios (rows with a ``scenario`` field).
    """
    import yaml

    from lit_iwpo.callbacks.artifacts import update_summary
    from lit_iwpo.data.records import validate_source
    from lit_iwpo.data.sources import read_source
    from lit_iwpo.eval.judges import OracleJudge, judge_both_orders
    from lit_iwpo.eval.metrics import win_rate

    cfg = yaml.safe_load((run / "config.yaml").read_text())
    specs = cfg["data"]["test"]
    rows = {}
    for spec in [specs] if isinstance(specs, str) else specs:
        src = read_source(spec)
        rows.update(zip(validate_source(src, "test"), src.rows))
    gens = [json.loads(line) for line in (run / "generations_test.jsonl").read_text().splitlines()]
    outcomes = judge_both_orders(OracleJudge(), [rows[g["id"]] for g in gens], [g["policy"] for g in gens],
                                 [g["baseline"] for g in gens])
    for g, o in zip(gens, outcomes):
        g["outcome"] = o
    (run / "generations_test.jsonl").write_text("".join(json.dumps(g, ensure_ascii=False) + "\n" for g in gens))
    stats = {f"test/{k}": v for k, v in win_rate(outcomes).items()}
    snapshots = sorted((run / "weights").glob("step=*.parquet"))
    if snapshots:  # weight quality from the final snapshot, with the current definition
        import pandas as pd
        import torch

        from lit_iwpo.eval.metrics import weight_quality

        final = pd.read_parquet(snapshots[-1])
        final = final[final["weight_step"] >= 0]
        if len(final):
            from lit_iwpo.data.records import as_relevance

            rel = [as_relevance(r) for r in final["relevant"].tolist()]
            stats.update(weight_quality(torch.tensor(final["weight"].values), rel))
    update_summary(run / "summary.json", stats)
    return stats


def finished(summary_path: Path) -> bool:
    """A run is finished once its summary holds test metrics (written after training and validation)."""
    if not summary_path.is_file():
        return False
    return any(k.startswith("test/") for k in json.loads(summary_path.read_text()))


def run_minutes(run: Path) -> float | None:
    """Wall time of a run in minutes: from ``config.yaml`` (written as fit starts) to ``metrics.csv``
    (last written after the final test); None when either is missing. Rejudging touches neither."""
    start, end = run / "config.yaml", run / "metrics.csv"
    if not (start.is_file() and end.is_file()):
        return None
    return (end.stat().st_mtime - start.stat().st_mtime) / 60.0


def run_dir(out: Path, method: str, seed: int) -> Path:
    return out / "runs" / method / f"seed{seed}"


def fit_command(base: Path, method_cfg: Path, seed: int, out: Path, extra: list[str]) -> list[str]:
    method = method_cfg.stem
    return [
        sys.executable, "-m", "lit_iwpo.cli", "fit", "--config", str(base), "--config", str(method_cfg),
        "--seed_everything", str(seed), "--data.seed", str(seed),
        "--trainer.logger.init_args.save_dir", str(out / "runs"),
        "--trainer.logger.init_args.name", method,
        "--trainer.logger.init_args.version", f"seed{seed}",
        *extra,
    ]


def summarize(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) if len(values) > 1 else 0.0


def aggregate(summaries: dict[str, dict[int, dict]], metrics: list[str]) -> list[dict]:
    """One row per (method, metric) with mean, sd, n and the per-seed values; missing metrics are skipped."""
    rows = []
    for method, by_seed in summaries.items():
        for metric in metrics:
            vals = {s: d[metric] for s, d in sorted(by_seed.items()) if metric in d}
            if vals:
                mean, sd = summarize(list(vals.values()))
                rows.append({"method": method, "metric": metric, "mean": mean, "sd": sd, "n": len(vals),
                             "values": " ".join(f"{v:.4f}" for v in vals.values())})
    return rows


def markdown(rows: list[dict], methods: list[str], metrics: list[str]) -> str:
    """Methods down, metrics across; rates shown in % as in the paper."""
    cell = {(r["method"], r["metric"]): r for r in rows}
    used = [m for m in metrics if any((meth, m) in cell for meth in methods)]
    lines = ["| method | " + " | ".join(used) + " |", "|---|" + "---|" * len(used)]
    for meth in methods:
        parts = []
        for m in used:
            r = cell.get((meth, m))
            if r is None:
                parts.append("–")
            else:
                scale = 100.0 if m.endswith(("win_rate", "accuracies")) else 1.0
                parts.append(f"{scale * r['mean']:.2f} ± {scale * r['sd']:.2f}")
        lines.append(f"| {meth} | " + " | ".join(parts) + " |")
    return "\n".join(lines)


def plot(rows: list[dict], methods: list[str], metrics: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cell = {(r["method"], r["metric"]): r for r in rows}
    shown = [m for m in metrics if any((meth, m) in cell for meth in methods)]
    fig, axes = plt.subplots(1, len(shown), figsize=(3.2 * len(shown), 3.4), squeeze=False)
    for ax, metric in zip(axes[0], shown):
        have = [meth for meth in methods if (meth, metric) in cell]
        ax.bar(range(len(have)), [cell[(m, metric)]["mean"] for m in have],
               yerr=[cell[(m, metric)]["sd"] for m in have], capsize=3, color="tab:blue")
        ax.set_xticks(range(len(have)), have, rotation=60, ha="right", fontsize=7)
        ax.set_title(metric, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lit_iwpo table", description=__doc__.split("\n\n")[0])
    p.add_argument("--base", type=Path, required=True, help="scenario config (data, model, trainer)")
    p.add_argument("--methods", type=Path, nargs="+", required=True, help="method configs; the file stem names the row")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--metrics", nargs="+", default=list(DEFAULT_METRICS))
    p.add_argument("--collect", action="store_true", help="only aggregate runs that already finished")
    p.add_argument("--rejudge", action="store_true",
                   help="re-score saved generations (current oracle) and weight snapshots before aggregating")
    p.add_argument("extra", nargs=argparse.REMAINDER, help="after --: overrides passed to every fit")
    return p


def table_main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    extra = args.extra[1:] if args.extra[:1] == ["--"] else args.extra
    methods = [m.stem for m in args.methods]
    summaries: dict[str, dict[int, dict]] = {m: {} for m in methods}
    for cfg in args.methods:
        for seed in args.seeds:
            path = run_dir(args.out, cfg.stem, seed) / "summary.json"
            if not finished(path) and not args.collect:
                if path.parent.exists():  # an interrupted run: start it again from scratch
                    import shutil

                    shutil.rmtree(path.parent)
                cmd = fit_command(args.base, cfg, seed, args.out, extra)
                print(f"[table] {cfg.stem} seed {seed}: {' '.join(cmd[2:])}", flush=True)
                log = path.parent.parent / f"seed{seed}.log"
                log.parent.mkdir(parents=True, exist_ok=True)
                with log.open("w") as fh:
                    rc = subprocess.call(cmd, stdout=fh, stderr=subprocess.STDOUT)
                if rc != 0:
                    print(f"[table] {cfg.stem} seed {seed} failed (exit {rc}); see {log}", flush=True)
                    continue
            if finished(path):
                if args.rejudge:
                    rejudge_run(path.parent)
                summaries[cfg.stem][seed] = json.loads(path.read_text())
                if (minutes := run_minutes(path.parent)) is not None:
                    summaries[cfg.stem][seed][TIME_METRIC] = minutes
    metrics = [*args.metrics, TIME_METRIC]
    rows = aggregate(summaries, metrics)
    if not rows:
        print("[table] no finished runs to aggregate")
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    md = markdown(rows, methods, metrics)
    seeds_done = {m: sorted(s) for m, s in summaries.items()}
    header = f"Scenario config: {args.base}; seeds per method: {seeds_done}; mean ± sd over seeds.\n\n"
    (args.out / "table.md").write_text(header + md + "\n")
    with (args.out / "table.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["method", "metric", "mean", "sd", "n", "values"])
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, methods, args.metrics, args.out / "table.png")
    print(header + md)
    return 0
