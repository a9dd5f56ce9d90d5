"""``lit_iwpo table``: run (or collect) methods × seeds on a scenario and print the paper-style table.

    lit_iwpo table --base configs/scenarios/helpful_harmless.yaml \\
        --methods configs/methods/dpo_tr_v.yaml configs/methods/iw_dpo_r_kmm.yaml --seeds 0 1 2 \\
        --out results/helpful_harmless

Each (method, seed) runs ``lit_iwpo fit --config BASE --config METHOD --seed_everything S --data.seed S``
in its own process, into ``OUT/runs/METHOD/seedS``, seed by seed (every method at seed 0, then at seed 1,
...); a run whose ``summary.json`` already exists is collected, not rerun (so an interrupted table resumes, and
``--collect`` only aggregates; a run whose summary has no test metrics yet counts as interrupted and starts
again). ``--collect`` without ``--methods`` collects the rows the table in OUT already holds (its
``table.csv``), then any run folder it does not list yet. The table (mean ± sd over seeds, sample sd) is
printed and written as ``table.md``, ``table.csv`` (one row per method × metric, with the per-seed values) and
``table.png``. The table's last column, ``time/minutes``, is each run's wall time (training, validation and
the final test with generation: ``time/total_s`` of its summary, or for older runs the file times from its
saved config to its final metrics), read from the run's files, so it covers runs made by earlier invocations,
and runs copied or checked out from git, too.

What a table needs to be collected again elsewhere (e.g. after ``git clone``) is small, about 100 kB a run:
``config.yaml``, ``summary.json``, ``metrics.csv``, ``generations_test.jsonl``, ``test_pairs.jsonl`` and
``weights/``; ``checkpoints/`` and ``hf/`` are not needed.

Comparisons with confidence (``lit_iwpo.eval.stats``), computed from the runs' saved per-prompt files, so
they work with ``--collect`` and never retrain:

- ``--baseline METHOD [OTHER ...]`` (default ``dpo_tr_v`` when it is among the methods; ``none`` turns it off):
  every other method's paired difference from METHOD, per metric with per-prompt data (``test/win_rate`` from
  the outcomes in ``generations_test.jsonl``, ``test/rewards/accuracies`` and ``test/rewards/margins`` from
  ``test_pairs.jsonl``), over the seeds both have (seed s with seed s: the same data order) and the prompts
  they share, with a 95 % two-level bootstrap interval over seeds × prompts and the minimum detectable
  difference (MDD) at that design; written to ``diffs.md`` / ``diffs.csv``. The table header then states the
  win rate's MDD and how many seeds (at the current prompts) a ``--target``-point difference needs at the
  observed variance, or that it is out of reach within ``--max-seeds``. Each OTHER row named after METHOD is a
  further baseline: every other method's paired difference from it in ``diffs_vs_OTHER.md`` / ``.csv`` (e.g.
  against DPO on D_v, or the batch pool); the header, ``diffs.md`` and a sweep's Δ column stay METHOD's.
- ``--h2h A B`` (repeatable): A's answers against B's on every common seed, judged by the scenario's oracle
  in both orders; the head-to-head win rate with its bootstrap interval (of outcome − 0.5), in ``h2h.md`` /
  ``h2h.csv``. Judging is rule-based and cheap, so it is redone on every invocation (never stale).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

from lit_iwpo.eval.metrics import is_rate

CONTESTED_ACCURACY = "test/rewards/accuracies/contested"
DEFAULT_METRICS = ("test/win_rate", "test/rewards/accuracies", CONTESTED_ACCURACY, "test/rewards/margins",
                   "iw/auc_relevant_used", "iw/ess_ratio_used")
TIME_METRIC = "time/minutes"
DEFAULT_BASELINE = "dpo_tr_v"
WIN_RATE = "test/win_rate"
# metrics with per-prompt (per-pair) values in a run's files: file, field, and the rows it covers
# ({field: value} that a row must match; {} = every row)
PER_PROMPT = {
    WIN_RATE: ("generations_test.jsonl", "outcome", {}),
    "test/rewards/accuracies": ("test_pairs.jsonl", "correct", {}),
    CONTESTED_ACCURACY: ("test_pairs.jsonl", "correct", {"contested": True}),
    "test/rewards/margins": ("test_pairs.jsonl", "margin", {}),
}


def load_test_rows(run: Path, cache: dict | None = None) -> dict[str, dict]:
    """The run's D_te rows by id, rebuilt from ``data.test`` in its saved ``config.yaml``; ``cache`` (a dict
    kept by the caller) reuses rows already built for the same specs (runs of one table share them)."""
    import yaml

    from lit_iwpo.data.records import validate_source
    from lit_iwpo.data.sources import read_source

    specs = yaml.safe_load((run / "config.yaml").read_text())["data"]["test"]
    key = tuple([specs] if isinstance(specs, str) else specs)
    if cache is not None and key in cache:
        return cache[key]
    rows = {}
    for spec in key:
        src = read_source(spec)
        rows.update(zip(validate_source(src, "test"), src.rows))
    if cache is not None:
        cache[key] = rows
    return rows


def rejudge_run(run: Path) -> dict[str, float]:
    """Re-score a finished run from its saved files, no model needed: the win rate of
    ``generations_test.jsonl`` (overall and per prompt category) with the current scenario oracle; the
    per-group and contested/uncontested accuracies of ``test_pairs.jsonl`` with the rows' current ``group``
    and ``contested`` fields (the saved margins are kept); and the weight quality (``iw/*``) of the final
    ``weights/`` snapshot. Rewrites both files, updates ``summary.json`` and returns the new values. Only for
    runs on embedded scenarios (rows with a ``scenario`` field).
    """
    from lit_iwpo.callbacks.artifacts import update_summary
    from lit_iwpo.eval.judges import OracleJudge, judge_both_orders
    from lit_iwpo.eval.metrics import group_means, pair_accuracies, win_rate

    rows = load_test_rows(run)
    gens = [json.loads(line) for line in (run / "generations_test.jsonl").read_text().splitlines()]
    outcomes = judge_both_orders(OracleJudge(), [rows[g["id"]] for g in gens], [g["policy"] for g in gens],
                                 [g["baseline"] for g in gens])
    for g, o in zip(gens, outcomes):
        g["outcome"] = o
    (run / "generations_test.jsonl").write_text("".join(json.dumps(g, ensure_ascii=False) + "\n" for g in gens))
    stats = {f"test/{k}": v for k, v in win_rate(outcomes).items()}
    categories = group_means(outcomes, [rows[g["id"]].get("category") for g in gens])
    stats.update({f"test/win_rate/{c}": v for c, v in categories.items()})
    pairs_path = run / "test_pairs.jsonl"
    if pairs_path.is_file():
        pairs = [json.loads(line) for line in pairs_path.read_text().splitlines() if line.strip()]
        for p in pairs:
            row = rows[p["id"]]
            p.update({k: row.get(k) for k in ("group", "category", "contested")})
        pairs_path.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pairs))
        stats.update(pair_accuracies(pairs))
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


def run_minutes(run: Path, summary: dict | None = None) -> float | None:
    """Wall time of a run in minutes: the run's own clock (``time/total_s`` in its summary) where it has one,
    which survives copying and git; otherwise from ``config.yaml`` (written as fit starts) to ``metrics.csv``
    (last written after the final test) by file times. None when neither is there. Rejudging touches
    neither."""
    if summary and isinstance(summary.get("time/total_s"), (int, float)):
        return summary["time/total_s"] / 60.0
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
                scale = 100.0 if is_rate(m) else 1.0
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


# ---------------------------------------------------------------- comparisons with confidence
def per_prompt_values(run: Path, metric: str) -> dict[str, float] | None:
    """A finished run's per-prompt values of ``metric`` by test row id (see ``PER_PROMPT``); None when the
    run has no such file (e.g. runs made before ``test_pairs.jsonl`` existed)."""
    name, field, where = PER_PROMPT[metric]
    path = run / name
    if not path.is_file():
        return None
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if where and not any(all(k in r for k in where) for r in records):
        return None  # a file written before the rows carried that flag
    return {r["id"]: float(r[field]) for r in records
            if r.get(field) is not None and all(r.get(k) == v for k, v in where.items())}


def paired_matrices(values_a: dict[int, dict[str, float]], values_b: dict[int, dict[str, float]]):
    """Align two methods' per-prompt values: the seeds both have (sorted) and the ids every one of those
    runs has (in the order of A's first seed), as matrices ``[n_seeds, n_prompts]``. Returns
    ``(seeds, ids, a, b)``; no seeds or no ids give empty lists and None matrices."""
    import numpy as np

    seeds = sorted(set(values_a) & set(values_b))
    if not seeds:
        return [], [], None, None
    common = set.intersection(*(set(values_a[s]) & set(values_b[s]) for s in seeds))
    ids = [i for i in values_a[seeds[0]] if i in common]
    if not ids:
        return seeds, [], None, None
    a = np.array([[values_a[s][i] for i in ids] for s in seeds], dtype=float)
    b = np.array([[values_b[s][i] for i in ids] for s in seeds], dtype=float)
    return seeds, ids, a, b


def _values_by_seed(out: Path, method: str, seeds, metric: str) -> dict[int, dict[str, float]]:
    found = {}
    for seed in seeds:
        vals = per_prompt_values(run_dir(out, method, seed), metric)
        if vals:
            found[seed] = vals
    return found


def _planning_se(vc) -> float:
    """The se of a mean over the observed seeds × prompts from the variance components; with one seed, whose
    seed variance is unknown, the se of prompt sampling alone (a lower bound)."""
    from lit_iwpo.eval import stats

    if vc.n_seeds < 2:
        return math.sqrt(vc.prompt / vc.n_prompts) if vc.n_prompts > 1 else math.nan
    return stats.design_se(vc, vc.n_seeds, vc.n_prompts)


def compare_to_baseline(out: Path, seeds_done: dict[str, list[int]], baseline: str, metrics: list[str],
                        n_boot: int = 10000, target: float = 3.0, alpha: float = 0.05,
                        power: float = 0.8) -> list[dict]:
    """Every method's paired difference (method − baseline) per metric with per-prompt data: seeds both
    finished, prompts both scored; the 95 % two-level bootstrap interval, the bootstrap se, the variance
    components of the paired differences, the se and MDD they give at this seeds × prompts design (with one
    seed: prompt sampling alone, a lower bound), and for rates the seeds needed at these
    prompts for an MDD of ``target`` points. Values in the metric's own units (rates as fractions)."""
    from lit_iwpo.eval import stats

    rows = []
    for metric in [m for m in metrics if m in PER_PROMPT]:
        base = _values_by_seed(out, baseline, seeds_done.get(baseline, []), metric)
        for method, done in seeds_done.items():
            if method == baseline:
                continue
            seeds, ids, a, b = paired_matrices(_values_by_seed(out, method, done, metric), base)
            if a is None:
                continue
            pd_ = stats.paired_bootstrap(a, b, n_boot=n_boot)
            vc = stats.variance_components(a - b)
            se = _planning_se(vc)
            mdd = stats.minimum_detectable_difference(se, alpha, power)
            need = None
            if is_rate(metric):
                need = stats.seeds_needed(vc, target / 100.0, len(ids), alpha, power)
            rows.append({"metric": metric, "method": method, "baseline": baseline,
                         "seeds": " ".join(map(str, seeds)), "n_seeds": len(seeds), "n_prompts": len(ids),
                         "diff": pd_.diff, "lo": pd_.lo, "hi": pd_.hi, "se_boot": pd_.se,
                         "se": se, "mdd": mdd,
                         "seeds_needed": "" if need is None else need,
                         "var_seed": vc.seed, "var_prompt": vc.prompt, "var_resid": vc.resid})
    return rows


def design_statement(diffs: list[dict], target: float = 3.0, max_seeds: int = 10, alpha: float = 0.05,
                     power: float = 0.8, minutes_per_run: float | None = None,
                     n_methods: int | None = None) -> str | None:
    """One paragraph for the table header: the win rate's MDD against the baseline, with variance components
    pooled (averaged) over the methods compared (those with ≥ 2 seeds), at the largest seeds × prompts design
    among them, and the seeds a ``target``-point difference needs at these prompts, or why it is out of reach
    within ``max_seeds`` (then the prompts it would need at ``max_seeds`` seeds); with one seed, the MDD from
    prompt sampling alone, as a lower bound. None without win-rate comparisons."""
    from lit_iwpo.eval import stats

    wr = [r for r in diffs if r["metric"] == WIN_RATE and r["n_prompts"] > 1]
    multi = [r for r in wr if r["n_seeds"] > 1]
    wr = multi or wr  # pool the comparisons that show seed variance; one-seed ones only when there is nothing else
    if not wr:
        return None
    n_s, n_p = max((r["n_seeds"], r["n_prompts"]) for r in wr)
    pooled = (statistics.fmean(r[k] for r in wr) for k in ("var_seed", "var_prompt", "var_resid"))
    vc = stats.VarianceComponents(*pooled, n_seeds=n_s, n_prompts=n_p)
    who = f"{len(wr)} method{'s' if len(wr) > 1 else ''} vs {wr[0]['baseline']}"
    head = (f"Win rate, paired differences ({who}; variance pooled): minimum detectable difference "
            f"(two-sided α {alpha:g}, power {power:g})")
    t = target / 100.0
    if not multi:  # one seed: the within-seed variance sits in ``prompt``
        se = _planning_se(vc)
        mdd = 100 * stats.minimum_detectable_difference(se, alpha, power)
        return (f"{head} {mdd:.2f} points at 1 seed × {n_p} prompts, from prompt sampling only: a lower bound, "
                f"since one seed shows no seed-to-seed variance. Run at least 2 seeds per method to plan how many "
                f"a {target:g}-point difference needs.")
    mdd = 100 * stats.minimum_detectable_difference(stats.design_se(vc, n_s, n_p), alpha, power)
    text = f"{head} {mdd:.2f} points at {n_s} seeds × {n_p} prompts. "
    need = stats.seeds_needed(vc, t, n_p, alpha, power)
    cost = ""
    if need is not None and minutes_per_run and n_methods:
        cost = f" (about {need * n_methods * minutes_per_run / 60:.1f} h of runs for {n_methods} methods at " \
               f"{minutes_per_run:.1f} min per run)"
    if need is not None and need <= n_s:
        return text + f"A {target:g}-point difference is detectable at this design (it needs {need} seeds)."
    if need is not None and need <= max_seeds:
        return text + f"A {target:g}-point difference needs {need} seeds at {n_p} prompts{cost}."
    if need is not None:
        why = (f"not reachable within the budget of {max_seeds} seeds at {n_p} prompts "
               f"({need} seeds would be needed)")
    else:
        floor = 100 * stats.minimum_detectable_difference(math.sqrt(vc.prompt / n_p), alpha, power)
        why = (f"not reachable at {n_p} prompts with any number of seeds: the prompt component alone (prompts that "
               f"favour one method under every seed) leaves an MDD of {floor:.2f} points")
    p_need = stats.prompts_needed(vc, t, max_seeds, alpha, power)
    more = (f"; at {max_seeds} seeds it would need {p_need} test prompts" if p_need is not None else
            f"; at {max_seeds} seeds no number of prompts reaches it (the seed variance alone is too large)")
    return text + f"A {target:g}-point difference is {why}{more}."


def _pts(metric: str, x: float, sign: bool = False) -> str:
    scale = 100.0 if is_rate(metric) else 1.0
    return f"{scale * x:+.2f}" if sign else f"{scale * x:.2f}"


def diffs_markdown(diffs: list[dict], target: float, alpha: float = 0.05, power: float = 0.8,
                   n_boot: int = 10000) -> str:
    """``diffs.md``: one row per (metric, method), rates in points."""
    base = diffs[0]["baseline"]
    lines = [f"Paired differences from {base} (method − {base}) over the seeds both finished and the prompts both "
             f"scored; 95 % CI: bootstrap over seeds × prompts ({n_boot} draws, one seed: prompts only); "
             f"MDD: two-sided α {alpha:g}, power {power:g}, from the variance components at this design "
             f"(unbiased; one seed: prompt sampling only, a lower bound; "
             f"the bootstrap counts seed × prompt noise up to three times, so its CI is conservative when that "
             f"noise dominates); rates in points.",
             "",
             f"| metric | method | seeds | prompts | diff | 95 % CI | MDD | seeds for {target:g} pts |",
             "|---|---|---|---|---|---|---|---|"]
    for r in diffs:
        m = r["metric"]
        need = ("–" if not is_rate(m) else "run ≥ 2 seeds" if r["n_seeds"] < 2
                else r["seeds_needed"] or "unreachable")
        lines.append(f"| {m} | {r['method']} | {r['n_seeds']} | {r['n_prompts']} | {_pts(m, r['diff'], True)} | "
                     f"[{_pts(m, r['lo'], True)}, {_pts(m, r['hi'], True)}] | {_pts(m, r['mdd'])} | "
                     f"{need} |")
    return "\n".join(lines)


def head_to_head_runs(out: Path, a: str, b: str, seeds, n_boot: int = 10000, judge=None,
                      rows_cache: dict | None = None, alpha: float = 0.05, power: float = 0.8) -> dict | None:
    """A's ``policy`` answers against B's on every seed both finished, on the prompts both answered, judged in
    both orders by ``judge`` (default: the scenario's oracle, rows rebuilt from A's ``config.yaml``). The win
    rate of A over B with the bootstrap interval of (outcome − 0.5) over seeds × prompts; None when no seed has
    generations from both."""
    import numpy as np

    from lit_iwpo.eval import stats
    from lit_iwpo.eval.judges import OracleJudge

    judge = judge if judge is not None else OracleJudge()
    gens = {}
    for seed in seeds:
        ra, rb = run_dir(out, a, seed), run_dir(out, b, seed)
        if all(finished(r / "summary.json") and (r / "generations_test.jsonl").is_file() for r in (ra, rb)):
            ga, gb = ({g["id"]: g for g in map(json.loads, (r / "generations_test.jsonl").read_text().splitlines())}
                      for r in (ra, rb))
            gens[seed] = (ga, gb, ra)
    if not gens:
        return None
    common = set.intersection(*(set(ga) & set(gb) for ga, gb, _ in gens.values()))
    first = gens[min(gens)][0]
    ids = [i for i in first if i in common]
    if not ids:
        return None
    outcomes = []
    for seed, (ga, gb, ra) in sorted(gens.items()):
        rows = load_test_rows(ra, rows_cache)
        h = stats.head_to_head([rows[i] for i in ids], [ga[i]["policy"] for i in ids],
                               [gb[i]["policy"] for i in ids], judge)
        outcomes.append(h.outcomes)
    o = np.array(outcomes, dtype=float)
    pd_ = stats.paired_bootstrap(o, np.full_like(o, 0.5), n_boot=n_boot)
    mdd = stats.minimum_detectable_difference(_planning_se(stats.variance_components(o)), alpha, power)
    return {"a": a, "b": b, "seeds": " ".join(map(str, sorted(gens))), "n_seeds": o.shape[0],
            "n_prompts": o.shape[1], "win_rate": float(o.mean()), "lo": 0.5 + pd_.lo, "hi": 0.5 + pd_.hi,
            "se_boot": pd_.se, "mdd": mdd,
            "wins": float((o == 1.0).mean()), "ties": float((o == 0.5).mean()), "losses": float((o == 0.0).mean())}


def h2h_markdown(results: list[dict], n_boot: int = 10000) -> str:
    """``h2h.md``: one row per (A, B), in points."""
    lines = ["Head-to-head: A's answers against B's on the same D_te prompts and seeds, judged by the scenario's "
             f"oracle in both orders (ties half); 95 % CI: bootstrap over seeds × prompts ({n_boot} draws) of "
             "outcome − 0.5; MDD of the win rate from 50, in points.",
             "",
             "| A | B | seeds | prompts | win rate of A | 95 % CI | MDD | wins | ties | losses |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['a']} | {r['b']} | {r['n_seeds']} | {r['n_prompts']} | {100 * r['win_rate']:.2f} | "
                     f"[{100 * r['lo']:.2f}, {100 * r['hi']:.2f}] | {100 * r['mdd']:.2f} | {100 * r['wins']:.1f} | "
                     f"{100 * r['ties']:.1f} | {100 * r['losses']:.1f} |")
    return "\n".join(lines)


def _write_diffs(stem: Path, diffs: list[dict], args: argparse.Namespace) -> str:
    """Paired differences from one baseline into ``stem``.md (in points) and ``stem``.csv; returns the markdown."""
    text = diffs_markdown(diffs, args.target, n_boot=args.n_boot)
    (stem.parent / (stem.name + ".md")).write_text(text + "\n")  # not with_suffix: a stem may hold a dot
    _write_csv(stem.parent / (stem.name + ".csv"), diffs)
    return text


def _write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lit_iwpo table", description=__doc__.split("\n\n")[0])
    p.add_argument("--base", type=Path, required=True, help="scenario config (data, model, trainer)")
    p.add_argument("--methods", type=Path, nargs="+", default=None,
                   help="method configs; the file stem names the row. With --collect it may be left out: the rows "
                        "are then those of the table in --out (table.csv's order), then any run folder it does not "
                        "list yet (OUT/runs/NAME, by name)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--metrics", nargs="+", default=list(DEFAULT_METRICS))
    p.add_argument("--collect", action="store_true", help="only aggregate runs that already finished")
    p.add_argument("--rejudge", action="store_true",
                   help="re-score saved generations (current oracle) and weight snapshots before aggregating")
    p.add_argument("--baseline", nargs="+", default=None, metavar="METHOD",
                   help=f"method stem to compare every other method with (paired differences, diffs.md); default "
                        f"{DEFAULT_BASELINE} when among the methods; 'none' for no comparison. Further stems: "
                        f"more baselines, each in diffs_vs_<stem>.md/.csv")
    p.add_argument("--h2h", nargs=2, action="append", default=[], metavar=("A", "B"),
                   help="judge method A's answers against method B's (stems), both orders, per common seed "
                        "(h2h.md); repeatable")
    p.add_argument("--target", type=float, default=3.0,
                   help="win-rate difference in points the header plans for (seeds needed to detect it)")
    p.add_argument("--max-seeds", type=int, default=10, help="seed budget per method for that plan")
    p.add_argument("--n-boot", type=int, default=10000, help="bootstrap draws of the confidence intervals")
    p.add_argument("--vary", metavar="KEY=V1,V2,...", default=None,
                   help="one table per value of a scenario option of data.train (e.g. severity=0.2,0.4,0.6,0.8), "
                        "each in OUT/KEY=VALUE, then sweep.md/.csv/.png in OUT (see lit_iwpo.eval.sweep)")
    p.add_argument("--sweep-metrics", nargs="+", default=[WIN_RATE, CONTESTED_ACCURACY], metavar="METRIC",
                   help="with --vary: the metrics of sweep.md/.csv, one plot each (sweep.png for the first); "
                        "those no table holds are left out")
    p.add_argument("extra", nargs=argparse.REMAINDER, help="after --: overrides passed to every fit")
    return p


def rows_on_disk(out: Path) -> list[str]:
    """The rows a table folder holds, for ``--collect`` without ``--methods``: the methods of its ``table.csv`` in
    their order, then every run folder (``OUT/runs/NAME``) the table does not list yet, by name."""
    names: list[str] = []
    if (out / "table.csv").is_file():
        with (out / "table.csv").open(newline="") as fh:
            names = list(dict.fromkeys(row["method"] for row in csv.DictReader(fh)))
    if (out / "runs").is_dir():
        names += sorted(d.name for d in (out / "runs").iterdir() if d.is_dir() and d.name not in names)
    return names


def table_main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    extra = args.extra[1:] if args.extra[:1] == ["--"] else args.extra
    from lit_iwpo.eval import sweep

    key, values = sweep.parse_vary(args.vary) if args.vary else (None, [])
    if args.methods is None:
        if not args.collect:
            parser.error("--methods is needed to run; only --collect can take the rows from the table in --out")
        tables = [sweep.point_dir(args.out, key, value) for value in values] or [args.out]
        names: list[str] = []
        for folder in tables:
            names += [n for n in rows_on_disk(folder) if n not in names]
        if not names:
            parser.error(f"--collect without --methods: {args.out} holds no table.csv and no runs/ folder to collect")
        args.methods = [Path(f"{name}.yaml") for name in names]  # only the stems are read when collecting
    methods = [m.stem for m in args.methods]
    if args.baseline is None:
        baseline = DEFAULT_BASELINE if DEFAULT_BASELINE in methods else None
    elif [b.lower() for b in args.baseline] == ["none"]:
        baseline = None
    else:
        for b in args.baseline:
            if b not in methods:
                parser.error(f"--baseline {b} is not one of the methods ({', '.join(methods)})")
        if len(set(args.baseline)) < len(args.baseline):
            parser.error(f"--baseline names a row twice ({' '.join(args.baseline)})")
        baseline = args.baseline[0]
    args.more_baselines = args.baseline[1:] if args.baseline and baseline else []
    if not args.vary:
        return run_table(args, extra, methods, baseline)
    spec = sweep.base_train_spec(args.base)
    rc = 1
    for value in values:
        print(f"[table] {key}={value}", flush=True)
        point = argparse.Namespace(**{**vars(args), "out": sweep.point_dir(args.out, key, value)})
        rc = min(rc, run_table(point, [*extra, "--data.train", sweep.with_option(spec, key, value)], methods, baseline))
    text = sweep.write_sweep(args.out, key, values, args.sweep_metrics, baseline, title=args.base.stem)
    if text:
        print("\n" + text)
    return rc


def run_table(args: argparse.Namespace, extra: list[str], methods: list[str], baseline: str | None) -> int:
    """Run (or collect) every method × seed of one table into ``args.out`` and write its files."""
    summaries: dict[str, dict[int, dict]] = {m: {} for m in methods}
    # seed by seed, every method at one seed before the next: an interrupted table holds whole seeds, each
    # one a paired comparison of every method
    for seed in args.seeds:
        for cfg in args.methods:
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
                if (minutes := run_minutes(path.parent, summaries[cfg.stem][seed])) is not None:
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
    diffs = (compare_to_baseline(args.out, seeds_done, baseline, args.metrics, args.n_boot, args.target)
             if baseline else [])
    times = [d[TIME_METRIC] for by_seed in summaries.values() for d in by_seed.values() if TIME_METRIC in d]
    statement = design_statement(diffs, args.target, args.max_seeds,
                                 minutes_per_run=statistics.fmean(times) if times else None, n_methods=len(methods))
    if statement:
        header += statement + "\n\n"
    (args.out / "table.md").write_text(header + md + "\n")
    with (args.out / "table.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["method", "metric", "mean", "sd", "n", "values"])
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, methods, args.metrics, args.out / "table.png")
    print(header + md)
    if diffs:
        print("\n" + _write_diffs(args.out / "diffs", diffs, args))
    elif baseline and len(methods) > 1:
        print(f"\n[table] no paired differences from {baseline}: no seed with per-prompt results from both")
    for other in args.more_baselines:
        more = compare_to_baseline(args.out, seeds_done, other, args.metrics, args.n_boot, args.target)
        if not more:
            print(f"\n[table] no paired differences from {other}: no seed with per-prompt results from it and another")
            continue
        _write_diffs(args.out / f"diffs_vs_{other}", more, args)
        print(f"\n[table] written: {args.out / f'diffs_vs_{other}.md'}")
    h2h, cache = [], {}
    for a, b in args.h2h:
        result = head_to_head_runs(args.out, a, b, args.seeds, n_boot=args.n_boot, rows_cache=cache)
        if result is None:
            print(f"[table] head-to-head {a} vs {b}: no seed with generations from both")
        else:
            h2h.append(result)
    if h2h:
        text = h2h_markdown(h2h, n_boot=args.n_boot)
        (args.out / "h2h.md").write_text(text + "\n")
        _write_csv(args.out / "h2h.csv", h2h)
        print("\n" + text)
    return 0
