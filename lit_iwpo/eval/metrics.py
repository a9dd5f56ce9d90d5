"""Deployment metrics as pure functions: win rate with ties, AUC of weights, effective sample size."""

from __future__ import annotations

from typing import Sequence

import torch

from lit_iwpo.weighting.density_ratio import effective_sample_size

__all__ = ["auc", "effective_sample_size", "estimates_quality", "group_means", "is_rate", "pair_accuracies",
           "weight_quality", "win_rate"]


def group_means(values: Sequence[float], groups: Sequence[str | None]) -> dict[str, float]:
    """Mean of ``values`` per group label (rows without a label are left out), groups in sorted order."""
    if len(values) != len(groups):
        raise ValueError(f"{len(values)} values but {len(groups)} group labels")
    sums: dict[str, list[float]] = {}
    for value, group in zip(values, groups):
        if group is not None:
            sums.setdefault(str(group), []).append(float(value))
    return {g: sum(v) / len(v) for g, v in sorted(sums.items())}


# a test row's ``contested`` flag -> the accuracy it is pooled into (rows without the flag: neither)
CONTESTED = {True: "contested", False: "uncontested"}


def is_rate(metric: str) -> bool:
    """Rates (shown in points, %): win rates and accuracies, also per group, e.g. ``test/win_rate/risky`` or
    ``test/rewards/accuracies/contested``; other metrics keep their own units."""
    parts = metric.split("/")
    return any(p == "accuracies" or p.startswith("win_rate") for p in parts)


def pair_accuracies(records: Sequence[dict]) -> dict[str, float]:
    """Accuracy per ``group`` of per-pair records (``correct``, ``group``, ``contested``, ``weight_group``), over
    the contested (the training population orders the contrast the other way) and uncontested pairs, and per
    ``weight_group`` (a weight source's own grouping, e.g. IWPO's ``cluster_<c>``); keys
    ``test/rewards/accuracies/<group>``."""
    correct = [r["correct"] for r in records]
    out = group_means(correct, [r.get("group") for r in records])
    out.update(group_means(correct, [CONTESTED.get(r.get("contested")) for r in records]))
    out.update(group_means(correct, [r.get("weight_group") for r in records]))
    return {f"test/rewards/accuracies/{g}": v for g, v in out.items()}


def win_rate(outcomes: Sequence[float]) -> dict[str, float]:
    """Aggregate pairwise outcomes of a policy against a baseline: 1 = win, 0 = loss, 0.5 = tie.

    Outcomes in between come from judges asked in both orders that half-agree (see
    ``judges.judge_both_orders``). ``win_rate`` is the mean outcome, so a tie counts as half a win (the
    "win/match rate" of the IW-DPO paper) and 0.5 means no difference; ``win_rate_strict`` counts only
    outright wins, ``tie_rate`` exact ties and ``loss_rate`` outright losses.
    """
    if not len(outcomes):
        raise ValueError("win_rate needs at least one judged pair")
    bad = [o for o in outcomes if not 0.0 <= o <= 1.0]
    if bad:
        raise ValueError(f"outcomes must lie in [0, 1] (1 win, 0.5 tie, 0 loss); got {bad[:3]}")
    n = len(outcomes)
    return {
        "win_rate": sum(outcomes) / n,
        "win_rate_strict": sum(o == 1.0 for o in outcomes) / n,
        "tie_rate": sum(o == 0.5 for o in outcomes) / n,
        "loss_rate": sum(o == 0.0 for o in outcomes) / n,
        "n_judged": float(n),
    }


def auc(scores: Sequence[float] | torch.Tensor, labels: Sequence[bool] | torch.Tensor) -> float:
    """Area under the ROC curve of ``scores`` for ``labels`` (Mann–Whitney U; ties count one half).

    For importance weights: the probability that a random relevant pair gets a higher weight than a
    random irrelevant one (0.5 = no separation; uniform weights give exactly 0.5).
    """
    s = torch.as_tensor(scores, dtype=torch.float64).flatten()
    y = torch.as_tensor(labels, dtype=torch.bool).flatten()
    if s.numel() != y.numel():
        raise ValueError(f"{s.numel()} scores but {y.numel()} labels")
    pos, neg = s[y], s[~y]
    if pos.numel() == 0 or neg.numel() == 0:
        raise ValueError("AUC needs both relevant and irrelevant samples")
    # average ranks handle ties exactly: U = Σ rank(pos) − n_pos(n_pos+1)/2
    order = torch.argsort(s)
    ranks = torch.empty_like(s)
    ranks[order] = torch.arange(1, s.numel() + 1, dtype=torch.float64)
    uniq, inverse = torch.unique(s, return_inverse=True)
    mean_rank = torch.zeros_like(uniq).index_add_(0, inverse, ranks) / torch.bincount(inverse).double()
    ranks = mean_rank[inverse]
    u = ranks[y].sum() - pos.numel() * (pos.numel() + 1) / 2
    return float(u / (pos.numel() * neg.numel()))


def weight_quality(w: torch.Tensor, relevant: Sequence | None = None) -> dict[str, float]:
    """``iw/ess``, ``iw/ess_ratio``, ``iw/n_weighted`` of weights ``w`` and, where ``relevant`` (True/False, or
    None when unknown, per weight) holds both kinds, ``iw/auc_relevant``."""
    ess = effective_sample_size(w)
    out = {"iw/ess": ess, "iw/ess_ratio": ess / max(1, len(w)), "iw/n_weighted": float(len(w))}
    known = [(float(x), bool(r)) for x, r in zip(w.tolist(), relevant or []) if r is not None]
    labels = [r for _, r in known]
    if any(labels) and not all(labels):
        out["iw/auc_relevant"] = auc([x for x, _ in known], labels)
    return out


def estimates_quality(estimates: Sequence[tuple[torch.Tensor, Sequence]]) -> dict[str, float]:
    """Quality of the estimates training used, each judged on its own: ``(weights, relevant)`` per estimate
    (e.g. one per training batch with IW-DPO's Algorithm 1, one per refresh that weighted a step).

    ``iw/auc_relevant_used``: mean AUC over the estimates whose pairs include both relevant and irrelevant ones
    (``iw/n_estimates_auc`` of them); ``iw/ess_ratio_used``: mean ESS / n over all ``iw/n_estimates_used``.
    Unlike ``iw/auc_relevant`` on the final stored weights, this never ranks weights that were normalised in
    different batches against each other.
    """
    if not estimates:
        return {}
    per = [weight_quality(w, relevant) for w, relevant in estimates]
    out = {"iw/n_estimates_used": float(len(per)),
           "iw/ess_ratio_used": sum(q["iw/ess_ratio"] for q in per) / len(per)}
    aucs = [q["iw/auc_relevant"] for q in per if "iw/auc_relevant" in q]
    out["iw/n_estimates_auc"] = float(len(aucs))
    if aucs:
        out["iw/auc_relevant_used"] = sum(aucs) / len(aucs)
    return out
