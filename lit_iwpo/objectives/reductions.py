"""Reductions: from per-sample losses and their weights to the scalar that is backpropagated.

A reduction sees the weighted per-sample losses of one (micro-)batch and the run's context, so a reduction
over the global batch (DoRA's log-mean-exp) needs only a new class here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from torch import Tensor, nn

from lit_iwpo.losses import weighted_mean
from lit_iwpo.objectives.context import StepContext


class Reduction(ABC):
    """Base class of ``objective.reduction`` strategies."""

    @abstractmethod
    def __call__(self, losses: Tensor, weights: Tensor | None, ctx: StepContext | None) -> Tensor:
        """Scalar loss from per-sample losses [B] and detached weights [B] (None: uniform)."""

    def parts(self, model_config: Any) -> dict[str, nn.Module]:
        """Trainable parts (none for the reductions here)."""
        return {}


class Mean(Reduction):
    """mean_i(w_i ℓ_i): the importance-weighted empirical risk (plain mean with uniform weights)."""

    def __call__(self, losses: Tensor, weights: Tensor | None, ctx: StepContext | None) -> Tensor:
        return weighted_mean(losses, weights)
