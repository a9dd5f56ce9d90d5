"""Clusters of (prompt, response) embeddings and the IWPO weights that use them (pure torch + faiss).

IWPO (a reconstruction: only the paper's abstract is public) clusters the training data by task or attribute,
normalises rewards within each cluster so that preference levels of different clusters become comparable
(the multi-cluster reward model, MCRM), and weights each pair by how likely its preferred response is under
the optimal policy π*(y|x) ∝ π_ref(y|x) exp(r(x, y)/β): w ∝ exp(r̃(x, y_w)/β_s), self-normalised (IRPSS).

faiss is the only k-means in the project: :func:`kmeans` trains one on CPU, or on a GPU when faiss has GPU
support and a device is visible; :func:`assign` puts new points (D_v, D_te) in their nearest cluster.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lit_iwpo.weighting.density_ratio import effective_sample_size, normalize_mean_one
from lit_iwpo.weighting.nearest import nearest_centre


def _faiss():
    import faiss  # imported here: a module that only normalises rewards should not need it

    return faiss


def gpu_available() -> bool:
    """Whether this faiss build can put an index on a GPU (and one is visible)."""
    faiss = _faiss()
    return hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0


def kmeans(x: Tensor, k: int, *, seed: int = 0, niter: int = 25, nredo: int = 3,
           gpu: bool | None = None) -> tuple[Tensor, Tensor]:
    """(centroids [k, d], cluster of each point [n]) of faiss k-means on ``x`` [n, d].

    ``nredo`` restarts keep the best objective; ``seed`` makes the result deterministic on CPU; ``gpu``: None
    uses a GPU index when :func:`gpu_available`. Clusters are renumbered by their smallest point index, so
    the labels do not depend on faiss's internal order.
    """
    faiss = _faiss()
    n, d = x.shape
    if not 1 <= k <= n:
        raise ValueError(f"k-means needs 1 <= clusters <= points, got {k} clusters for {n} points")
    data = x.detach().float().contiguous().cpu().numpy()
    use_gpu = gpu_available() if gpu is None else gpu
    km = faiss.Kmeans(d, k, niter=niter, nredo=nredo, seed=seed, gpu=use_gpu, verbose=False,
                      min_points_per_centroid=1, max_points_per_centroid=max(256, n))
    km.train(data)
    centroids = torch.from_numpy(km.centroids.copy())
    labels = assign(x, centroids)
    # canonical labels: cluster j is the one whose first member comes j-th
    order = list(dict.fromkeys(labels.tolist()))
    order += [c for c in range(k) if c not in order]  # (empty clusters, if any, last)
    remap = torch.empty(k, dtype=torch.long)
    remap[torch.tensor(order)] = torch.arange(k)
    return centroids[torch.tensor(order)], remap[labels]


def assign(x: Tensor, centroids: Tensor) -> Tensor:
    """The nearest centroid (squared L2, faiss flat index) of each point of ``x`` [n, d]."""
    return nearest_centre(x, centroids)


def normalise_within(r: Tensor, clusters: Tensor, eps: float = 1e-6) -> Tensor:
    """r̃ = (r − mean_c) / sd_c with the mean and (population) standard deviation of r over each point's
    cluster c; a cluster whose rewards are all equal (or that has one point) gets r̃ = 0."""
    r = r.double()
    out = torch.zeros_like(r)
    for c in clusters.unique().tolist():
        sel = clusters == c
        part = r[sel]
        sd = part.std(unbiased=False)
        out[sel] = (part - part.mean()) / sd if sd > eps else 0.0
    return out.float()


def resampling_weights(r_tilde: Tensor, beta: float, clip: float | None = None) -> Tensor:
    """IRPSS weights w ∝ exp(r̃ / β), normalised to mean 1, then clipped at ``clip`` (not renormalised, as
    :func:`~lit_iwpo.weighting.importance.estimate_weights` clips)."""
    if beta <= 0:
        raise ValueError(f"the resampling temperature β_s must be > 0, got {beta}")
    logits = r_tilde.double() / beta
    w = normalize_mean_one(torch.exp(logits - logits.max()))
    if clip is not None:
        if clip < 1:
            raise ValueError(f"clip must be >= 1 (weights have mean 1), got {clip}")
        w = w.clamp(max=clip)
    return w.float()


def cluster_summary(w: Tensor, clusters: Tensor, n_clusters: int) -> dict[str, float]:
    """ESS ratio of ``w`` and each cluster's size and share of the total weight."""
    w = w.double()
    out = {"ess_ratio": effective_sample_size(w) / max(1, w.numel())}
    for c in range(n_clusters):
        sel = clusters == c
        out[f"size/{c}"] = float(sel.sum())
        out[f"weight_share/{c}"] = float(w[sel].sum() / w.sum()) if sel.any() else 0.0
    return out


__all__ = ["assign", "cluster_summary", "gpu_available", "kmeans", "normalise_within", "resampling_weights"]
