"""``lit_iwpo table --vary KEY=V1,V2,...``: one table per value of a scenario option, and the sweep figure.

    lit_iwpo table --base configs/scenarios/helpful_harmless.yaml --methods configs/methods/{dpo_tr_v,wpo}.yaml \\
        --seeds 0 1 2 3 4 --out results/sweep/helpful_harmless --vary severity=0.2,0.4,0.6,0.8

For each value the table of :mod:`lit_iwpo.eval.table` runs into ``OUT/<KEY>=<VALUE>/`` with the base
config's training source rewritten to that option (``scenario:NAME:train?severity=0.6``; D_v and D_te do not
depend on severity or shift type, so every point is judged on the same test set). Each of those tables
resumes on its own, so an interrupted sweep continues where it stopped. Then ``OUT/sweep.md`` /
``sweep.csv`` hold every method's mean, standard deviation and 95 % interval (Student t over seeds, cut to
[0, 1] for rates) per value, and the paired difference from the baseline with its bootstrap interval where the
table computed one; ``OUT/sweep.png`` draws the win rate against the value, one line per method. Contested
accuracy (whether the deployment preference was learned, on label-shift scenarios) gets its own section and
plot (``sweep_test_rewards_accuracies_contested.png``) where the tables hold it; ``--sweep-metrics`` picks
others.

Methods whose runs never read D_tr (``data.train_on: val``) get the same runs at every value: give them at
one value only (e.g. a separate ``lit_iwpo table`` at the default) rather than paying for identical runs.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from lit_iwpo.errors import ConfigError
from lit_iwpo.eval.metrics import is_rate

# two-sided 97.5 % quantiles of Student's t by degrees of freedom (1..30); beyond: the normal's
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def parse_vary(text: str) -> tuple[str, list[str]]:
    """``"severity=0.2,0.4"`` -> ("severity", ["0.2", "0.4"])."""
    key, sep, values = text.partition("=")
    items = [v.strip() for v in values.split(",") if v.strip()]
    if not sep or not key.strip() or not items:
        raise ConfigError(f"--vary {text!r}: expected KEY=V1,V2,... (e.g. severity=0.2,0.4,0.6,0.8)")
    return key.strip(), items


def with_option(spec: str, key: str, value: str) -> str:
    """The scenario source ``spec`` with option ``key`` set to ``value`` (added, or replacing its value)."""
    if not isinstance(spec, str) or not spec.startswith("scenario:"):
        raise ConfigError(f"--vary needs data.train to be one embedded scenario (scenario:NAME:train), got {spec!r}")
    body, _, query = spec.partition("?")
    options = [(k, v) for k, v in parse_qsl(query) if k != key] + [(key, value)]
    return f"{body}?{urlencode(options, safe=',')}"


def base_train_spec(base: Path) -> str:
    import yaml

    try:
        config = yaml.safe_load(Path(base).read_text()) or {}
    except OSError as err:
        raise ConfigError(f"{base}: cannot read the scenario config ({err.strerror})") from None
    return (config.get("data") or {}).get("train")


def point_dir(out: Path, key: str, value: str) -> Path:
    return Path(out) / f"{key}={value}"


def t_interval(values: list[float]) -> tuple[float, float, float, float]:
    """(mean, sd, lower, upper): the 95 % Student-t interval of the mean over seeds (zero width for one seed)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0, mean, mean
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = (T975[n - 2] if n - 1 <= len(T975) else 1.96) * sd / math.sqrt(n)
    return mean, sd, mean - half, mean + half


def _read_csv(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def by_value(values: list[str]) -> list[str]:
    """The values in numeric order when every one is a number (``--vary`` runs them in the order given, e.g.
    the ends of a range first; the tables read in order); otherwise as given."""
    try:
        return sorted(values, key=float)
    except ValueError:
        return list(values)


def sweep_rows(out: Path, key: str, values: list[str], metric: str) -> list[dict]:
    """One row per (value, method) that has finished runs, from each point's ``table.csv`` and ``diffs.csv``,
    the values in numeric order (:func:`by_value`)."""
    rows = []
    for value in by_value(values):
        point = point_dir(out, key, value)
        diffs = {(d["method"], d["metric"]): d for d in _read_csv(point / "diffs.csv")}
        for r in _read_csv(point / "table.csv"):
            if r["metric"] != metric:
                continue
            seeds = [float(v) for v in r["values"].split()]
            mean, sd, lo, hi = t_interval(seeds)
            if is_rate(metric):  # a rate's mean lies in [0, 1]: the interval is cut there
                lo, hi = max(lo, 0.0), min(hi, 1.0)
            d = diffs.get((r["method"], metric))
            rows.append({
                key: value, "method": r["method"], "metric": metric, "n": len(seeds), "mean": mean, "sd": sd,
                "ci_low": lo, "ci_high": hi,
                "diff": float(d["diff"]) if d else None,
                "diff_low": float(d["lo"]) if d else None,
                "diff_high": float(d["hi"]) if d else None,
            })
    return rows


def sweep_markdown(rows: list[dict], key: str, metric: str, baseline: str | None) -> str:
    scale = 100.0 if is_rate(metric) else 1.0
    head = (f"{metric} against {key}: mean ± sd over seeds [95 % t interval of the mean"
            + (", cut to 0–100" if scale == 100.0 else "") + "]"
            + (f"; Δ = paired difference from {baseline} [95 % bootstrap CI over seeds × prompts]" if baseline else "")
            + (" (points)." if scale == 100.0 else "."))
    lines = [head, "", f"| {key} | method | seeds | {metric} | Δ |", "|---|---|---|---|---|"]
    for r in rows:
        delta = ("–" if r["diff"] is None else
                 f"{scale * r['diff']:+.2f} [{scale * r['diff_low']:+.2f}, {scale * r['diff_high']:+.2f}]")
        lines.append(f"| {r[key]} | {r['method']} | {r['n']} | {scale * r['mean']:.2f} ± {scale * r['sd']:.2f} "
                     f"[{scale * r['ci_low']:.2f}, {scale * r['ci_high']:.2f}] | {delta} |")
    return "\n".join(lines)


def sweep_plot(rows: list[dict], key: str, metric: str, path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scale = 100.0 if is_rate(metric) else 1.0
    fig, ax = plt.subplots(figsize=(5.4, 3.8))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    for i, method in enumerate(methods):
        mine = sorted((r for r in rows if r["method"] == method), key=lambda r: float(r[key]))
        x = [float(r[key]) + (i - (len(methods) - 1) / 2) * 0.006 for r in mine]  # a small dodge
        y = [scale * r["mean"] for r in mine]
        err = [[scale * (r["mean"] - r["ci_low"]) for r in mine], [scale * (r["ci_high"] - r["mean"]) for r in mine]]
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=method)
    ax.set_xlabel(key)
    ax.set_ylabel(metric + (" (%)" if scale == 100.0 else ""))
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_name(metric: str, first: bool) -> str:
    """``sweep.png`` for the sweep's first metric, ``sweep_<metric with / as _>.png`` for each further one."""
    return "sweep.png" if first else "sweep_" + metric.replace("/", "_") + ".png"


def write_sweep(out: Path, key: str, values: list[str], metrics: list[str], baseline: str | None,
                title: str = "") -> str:
    """``sweep.md`` (one section per metric that has rows), ``sweep.csv`` (every row) and one plot per metric.

    Metrics no point's table holds (e.g. contested accuracy on a scenario without contested pairs) are left out.
    """
    sections, every = [], []
    for metric in metrics:
        rows = sweep_rows(out, key, values, metric)
        if not rows:
            continue
        sweep_plot(rows, key, metric, Path(out) / plot_name(metric, not sections),
                   f"{title}: {metric}" if title else "")
        sections.append(sweep_markdown(rows, key, metric, baseline))
        every += rows
    if not every:
        return ""
    text = "\n\n".join(sections)
    (Path(out) / "sweep.md").write_text(text + "\n")
    with (Path(out) / "sweep.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(every[0]))
        writer.writeheader()
        writer.writerows(every)
    return text
