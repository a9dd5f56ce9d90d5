"""DoRA's calibration weights (pure torch): a probabilistic "target vs other" classifier on response
embeddings, and h = 1 / (α + a · (1 − p) / p) from its probability p = P(target | x, y); or, from the same
classifier, the density ratio p_target / p_other (:func:`ratio_weights`).

α is the target share of the classifier's data and a the response's own source share; for a target
response h = p / α. The classifier here is logistic regression on frozen embeddings, fitted by L-BFGS and
cross-fitted (every response's p comes from a model that did not see it), with its calibration error and
AUC from torchmetrics.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import torch
from torch import Tensor
from torch.nn.functional import binary_cross_entropy
from torchmetrics.functional.classification import binary_auroc, binary_calibration_error


def source_shares(sources: Sequence[str]) -> dict[str, float]:
    """Each source's share of the responses."""
    counts = Counter(sources)
    n = sum(counts.values())
    return {s: c / n for s, c in counts.items()}


def calibration_weights(p: Tensor, target_share: float, source_share: Tensor, eps: float = 1e-6) -> Tensor:
    """h = 1 / (α + a (1 − p) / p) per response; ``source_share`` a [N] holds each response's source share.
    p is clamped to [eps, 1 − eps] (a classifier certain of "other" would give h = 0 exactly)."""
    if not 0 < target_share <= 1:
        raise ValueError(f"the target share α must be in (0, 1], got {target_share}")
    p = p.double().clamp(eps, 1 - eps)
    return (1.0 / (target_share + source_share.double() * (1 - p) / p)).float()


def ratio_weights(p: Tensor, target_share: float, eps: float = 1e-6) -> Tensor:
    """The density ratio p_target(z) / p_other(z) from a classifier's p = P(target | z) (probabilistic
    classification, Sugiyama, Suzuki & Kanamori 2012, ch. 4): w = ((1 − α) / α) · p / (1 − p), α the target
    share of the classifier's data; p clamped to [eps, 1 − eps]."""
    if not 0 < target_share < 1:
        raise ValueError(f"the target share α must be in (0, 1), got {target_share}")
    p = p.double().clamp(eps, 1 - eps)
    return ((1 - target_share) / target_share * p / (1 - p)).float()


def pair_weights(h_chosen: Tensor, h_rejected: Tensor) -> Tensor:
    """h̄ = the mean of the pair's two responses' weights."""
    return (h_chosen + h_rejected) / 2


def fit_logistic(x: Tensor, y: Tensor, l2: float = 1e-2, max_iter: int = 100) -> tuple[Tensor, Tensor]:
    """(w, b) of L2-regularised logistic regression on standardised features, by L-BFGS (deterministic)."""
    x, y = x.double(), y.double()
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-9, tolerance_change=1e-12)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ w + b, y) + 0.5 * l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()


def _standardise(train: Tensor, *others: Tensor) -> list[Tensor]:
    mu, sd = train.mean(0), train.std(0).clamp_min(1e-6)
    return [(t - mu) / sd for t in (train, *others)]


def cross_fit_probabilities(x: Tensor, y: Tensor, folds: int = 5, l2: float = 1e-2, seed: int = 0,
                            groups: Tensor | None = None) -> Tensor:
    """Out-of-fold P(y = 1 | x) [N]: fold k's points are scored by a model fitted on the other folds (folds
    stratified by label, assigned by a seeded permutation). ``groups`` [N]: points of one group (e.g. the two
    responses of a pair, which share a prompt) always share a fold, so no model sees a sibling of a point
    it scores; a group is stratified by its first point's label."""
    x = x.double()
    n = x.shape[0]
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    groups = torch.arange(n) if groups is None else groups.long()
    first = {}
    for i, grp in enumerate(groups.tolist()):
        first.setdefault(grp, i)
    keys = torch.tensor(list(first))
    key_label = y[torch.tensor(list(first.values()))]
    g = torch.Generator().manual_seed(seed)
    group_fold = {}
    for label in (0, 1):
        idx = keys[key_label == label]
        if len(idx) < folds:
            raise ValueError(f"the classifier needs at least {folds} {'pairs' if len(keys) < n else 'responses'} "
                             f"of each class, got {len(idx)} {'target' if label else 'other'} ones")
        idx = idx[torch.randperm(len(idx), generator=g)]
        group_fold.update({int(k): j % folds for j, k in enumerate(idx.tolist())})
    fold = torch.tensor([group_fold[grp] for grp in groups.tolist()], dtype=torch.long)
    p = torch.empty(n, dtype=torch.float64)
    for k in range(folds):
        test = fold == k
        xtr, xte = _standardise(x[~test], x[test])
        w, b = fit_logistic(xtr, y[~test], l2=l2)
        p[test] = torch.sigmoid(xte @ w + b)
    return p.float()


def select_l2(x: Tensor, y: Tensor, grid: Sequence[float], folds: int = 5, seed: int = 0,
              groups: Tensor | None = None) -> tuple[float, Tensor, dict[float, float]]:
    """(the L2 penalty of ``grid`` whose out-of-fold probabilities have the lowest log-loss (the first on
    ties), its out-of-fold p, the log-loss of every value): the penalty chosen from the classifier's own
    labels, never from anything about the weights it leads to."""
    losses, probs = {}, {}
    for l2 in grid:
        probs[l2] = cross_fit_probabilities(x, y, folds=folds, l2=l2, seed=seed, groups=groups)
        losses[l2] = float(binary_cross_entropy(probs[l2].double().clamp(1e-6, 1 - 1e-6), y.double()))
    best = min(grid, key=lambda l2: losses[l2])
    return best, probs[best], losses


def classifier_quality(p: Tensor, y: Tensor, n_bins: int = 10) -> dict[str, float]:
    """Held-out expected calibration error (torchmetrics, ``n_bins`` equal-width bins) and AUC."""
    y = y.long()
    return {"ece": float(binary_calibration_error(p.float(), y, n_bins=n_bins)),
            "auc": float(binary_auroc(p.float(), y))}
