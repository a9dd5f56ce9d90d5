"""IWPO's multi-cluster reward model (MCRM, a reconstruction): Bradley–Terry reward heads on frozen embeddings.

A head is linear, r(x, y) = θ·φ(x, y) on standardised embeddings φ; it is fitted by L2-regularised logistic
regression on the pair differences φ(y_w) − φ(y_l) (label 1) and their negatives (label 0), the
Bradley–Terry likelihood P(y_w ≻ y_l) = σ(r_w − r_l) (the symmetric data make the intercept 0). Two layouts:

- ``per_cluster``: one head per cluster, fitted on that cluster's pairs; a cluster with fewer than
  ``min_pairs`` training pairs uses the shared head instead (named in ``fallback`` for the caller's warning);
- ``shared``: one head on all pairs, its rewards normalised per cluster afterwards like the others.

Held-out pair accuracy per cluster: ``holdout`` of each cluster's pairs (seeded) are left out of the fit and
scored; the final heads are then refitted on every pair. Everything here is pure torch (no Lightning).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from lit_iwpo.weighting.calibration import fit_logistic

LAYOUTS = ("per_cluster", "shared")
SHARED = -1  # the key of the shared head


@dataclass
class RewardHeads:
    """Fitted heads: ``heads[c]`` = (mean, sd, θ) of cluster c's head; ``heads[SHARED]`` the shared one."""

    heads: dict[int, tuple[Tensor, Tensor, Tensor]] = field(default_factory=dict)
    fallback: list[int] = field(default_factory=list)  # clusters that use the shared head (too few pairs)
    accuracy: dict[int, float] = field(default_factory=dict)  # held-out pair accuracy per cluster
    pairs: dict[int, int] = field(default_factory=dict)  # training pairs per cluster

    def head_of(self, cluster: int) -> tuple[Tensor, Tensor, Tensor]:
        return self.heads.get(cluster, self.heads[SHARED])

    def reward(self, x: Tensor, clusters: Tensor) -> Tensor:
        """r [n] of points ``x`` [n, d], each by its cluster's head."""
        x = x.double()
        out = torch.empty(x.shape[0], dtype=torch.float64)
        for c in clusters.unique().tolist():
            sel = clusters == c
            mu, sd, theta = self.head_of(int(c))
            out[sel] = ((x[sel] - mu) / sd) @ theta
        return out.float()


def fit_head(x_w: Tensor, x_l: Tensor, l2: float = 1e-2) -> tuple[Tensor, Tensor, Tensor]:
    """(mean, sd, θ) of one Bradley–Terry head on pairs (x_w[i] preferred to x_l[i])."""
    both = torch.cat([x_w, x_l]).double()
    mu, sd = both.mean(0), both.std(0).clamp_min(1e-6)
    diff = (x_w.double() - x_l.double()) / sd
    x = torch.cat([diff, -diff])
    y = torch.cat([torch.ones(len(diff)), torch.zeros(len(diff))]).double()
    theta, _ = fit_logistic(x, y, l2=l2)
    return mu, sd, theta


def _accuracy(head: tuple[Tensor, Tensor, Tensor], x_w: Tensor, x_l: Tensor) -> float:
    mu, sd, theta = head
    margin = ((x_w.double() - mu) / sd) @ theta - ((x_l.double() - mu) / sd) @ theta
    return float(((margin > 0).double() + 0.5 * (margin == 0).double()).mean())


def fit_reward_heads(x_w: Tensor, x_l: Tensor, clusters: Tensor, *, layout: str = "per_cluster",
                     min_pairs: int = 16, l2: float = 1e-2, holdout: float = 0.2, seed: int = 0) -> RewardHeads:
    """Fit the heads on pairs (embeddings of chosen ``x_w`` and rejected ``x_l`` [n, d]) with each pair's
    cluster ``clusters`` [n] (the cluster of its chosen response)."""
    if layout not in LAYOUTS:
        raise ValueError(f"reward head layout must be one of {LAYOUTS}, got {layout!r}")
    if not 0 <= holdout < 1:
        raise ValueError(f"holdout must be in [0, 1), got {holdout}")
    n = x_w.shape[0]
    g = torch.Generator().manual_seed(seed)
    held = torch.zeros(n, dtype=torch.bool)
    for c in clusters.unique().tolist():  # a seeded share of each cluster's pairs, for the held-out accuracy
        idx = (clusters == c).nonzero().flatten()
        k = int(round(holdout * len(idx))) if len(idx) > 1 else 0
        held[idx[torch.randperm(len(idx), generator=g)[:k]]] = True
    out = RewardHeads()
    fit = ~held

    def heads_on(mask: Tensor) -> dict[int, tuple[Tensor, Tensor, Tensor]]:
        heads = {SHARED: fit_head(x_w[mask], x_l[mask], l2)}
        if layout == "per_cluster":
            for c in clusters.unique().tolist():
                sel = mask & (clusters == c)
                if int((clusters == c).sum()) >= min_pairs and sel.sum() >= 2:
                    heads[int(c)] = fit_head(x_w[sel], x_l[sel], l2)
        return heads

    if held.any():
        trial = RewardHeads(heads_on(fit))
        for c in clusters.unique().tolist():
            sel = held & (clusters == c)
            if sel.any():
                out.accuracy[int(c)] = _accuracy(trial.head_of(int(c)), x_w[sel], x_l[sel])
    out.heads = heads_on(torch.ones(n, dtype=torch.bool))
    for c in clusters.unique().tolist():
        out.pairs[int(c)] = int((clusters == c).sum())
        if layout == "per_cluster" and int(c) not in out.heads:
            out.fallback.append(int(c))
    return out


__all__ = ["LAYOUTS", "RewardHeads", "SHARED", "fit_head", "fit_reward_heads"]
