"""Reductions: from per-sample losses and their weights to the scalar that is backpropagated.

A reduction sees the weighted per-sample losses of one (micro-)batch and the run's context, so a reduction
over the global batch (DoRA's log-mean-exp) needs only a new class here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import math

import torch
from torch import Tensor, nn

from lit_iwpo.errors import ConfigError
from lit_iwpo.losses import weighted_mean
from lit_iwpo.losses.dro import (
    dro_coefficients,
    dro_exponents,
    effective_sample_size,
    log_mean_exp,
    running_normaliser,
)
from lit_iwpo.objectives.context import StepContext


class Reduction(ABC):
    """Base class of ``objective.reduction`` strategies."""

    @abstractmethod
    def __call__(self, losses: Tensor, weights: Tensor | None, ctx: StepContext | None) -> Tensor:
        """Scalar loss from per-sample losses [B] and detached weights [B] (None: uniform)."""

    def parts(self, model_config: Any) -> dict[str, nn.Module]:
        """Trainable parts (none for the reductions here)."""
        return {}

    def metrics(self) -> dict[str, Tensor]:
        """Values of the last training call to log (e.g. ``dro/*``)."""
        return {}


class Mean(Reduction):
    """mean_i(w_i ℓ_i): the importance-weighted empirical risk (plain mean with uniform weights)."""

    def __call__(self, losses: Tensor, weights: Tensor | None, ctx: StepContext | None) -> Tensor:
        return weighted_mean(losses, weights)


class DRO(Reduction):
    """DoRA's KL-DRO dual over the **global** batch: L = λ · log mean_i exp(z_i), z_i = h̄_i ℓ_i / λ.

    The log-mean-exp runs over every pair of the optimizer step: all processes (their exponents are
    gathered) and all gradient-accumulation micro-batches (a running normaliser rescales the gradients
    accumulated so far, :mod:`lit_iwpo.losses.dro`), so the gradient is exactly that of the one objective
    over the global batch, whatever the device count and ``trainer.accumulate_grad_batches``; the logged loss
    and the ``dro/*`` figures cover the micro-batches seen so far (the whole step at the last one). The
    rescaling needs the gradients in ``param.grad`` (one device, DDP); strategies that accumulate
    gradients themselves (DeepSpeed) are refused with accumulation. With a per-device batch
    of 1 and no accumulation, as the released code runs, it would collapse to a weighted mean.

    Args:
        lambda_: λ > 0, the temperature (1 in every experiment of the paper). λ → ∞ tends to the weighted mean.
        form: ``inside`` (DoRA: h̄ multiplies the loss inside the exponent), ``outside`` (the ablation form
            L = λ log mean_i h̄_i exp(ℓ_i / λ)) or ``none`` (DRO without h: the sample weights are ignored).
            Reweighting without DRO is the ``Mean`` reduction with the same weights.
    """

    FORMS = ("inside", "outside", "none")

    def __init__(self, lambda_: float = 1.0, form: str = "inside") -> None:
        if lambda_ <= 0:
            raise ConfigError(f"reduction.lambda_ must be > 0, got {lambda_}")
        if form not in self.FORMS:
            raise ConfigError(f"reduction.form must be one of {self.FORMS}, got {form!r}")
        self.lambda_, self.form = lambda_, form
        self._log_s: Tensor | None = None
        self._n = 0
        self._metrics: dict[str, Tensor] = {}
        self._window: list[Tensor] = []  # exponents of the step's micro-batches so far (all processes)
        self.last_q: Tensor | None = None  # soft-max weights of the last local micro-batch (share of the step)

    def __call__(self, losses: Tensor, weights: Tensor | None, ctx: StepContext | None) -> Tensor:
        z, a = dro_exponents(losses, self.lambda_, weights, self.form)
        if ctx is None or getattr(ctx, "stage", "train") != "train":
            return log_mean_exp(z, self.lambda_)  # one batch, one process: the exact objective, differentiable
        index, size = ctx.accumulation
        if index == 0:
            self._log_s, self._n, self._window = None, 0, []
        z_all = ctx.gather(z.detach())
        self._window.append(z_all)
        log_s, rescale = running_normaliser(self._log_s, z_all)
        if self._log_s is not None:
            ctx.scale_grads(float(rescale))
        self._log_s, self._n = log_s, self._n + z_all.shape[0]
        q = dro_coefficients(z, log_s)
        # Lightning divides by the accumulation size and DDP averages over processes: undo both, so the
        # gradient is Σ_i q_i a_i ∇ℓ_i over the global batch
        surrogate = (q * a * losses).sum() * (ctx.world_size * size)
        value = (self.lambda_ * (log_s - math.log(self._n))).to(losses.dtype)
        q_all = dro_coefficients(torch.cat(self._window), log_s)  # every pair of the step so far
        self.last_q = q.detach()
        self._metrics = {"dro/q_max": q_all.max().float(), "dro/ess": effective_sample_size(q_all),
                         "dro/ess_ratio": effective_sample_size(q_all) / q_all.numel(),
                         "dro/q_mean": q_all.mean().float()}
        return surrogate + (value - surrogate).detach()

    def metrics(self) -> dict[str, Tensor]:
        return dict(self._metrics)
