"""The nearest of a set of centres for each point (faiss flat L2 index): IWPO's cluster assignment of new data,
quantised KMM's cells. faiss is imported on first use."""

from __future__ import annotations

import torch
from torch import Tensor


def nearest_centre(x: Tensor, centroids: Tensor) -> Tensor:
    """The nearest centroid (squared L2, faiss flat index, float32) of each point of ``x`` [n, d]."""
    import faiss

    index = faiss.IndexFlatL2(centroids.shape[1])
    index.add(centroids.detach().float().contiguous().cpu().numpy())
    _, nearest = index.search(x.detach().float().contiguous().cpu().numpy(), 1)
    return torch.from_numpy(nearest[:, 0].copy()).long()
