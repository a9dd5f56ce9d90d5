"""The KL-DRO dual of DoRA (Zhu et al. 2025) as pure functions: L = λ · log mean_i exp(z_i),
z_i = a_i ℓ_i / λ + c_i over the global batch.

``a_i`` multiplies the loss inside the exponent (DoRA: a_i = h̄_i, the pair's calibration weight) and
``c_i`` = log h̄_i puts the weight outside instead (the ablation form L = λ log mean_i h̄_i exp(ℓ_i/λ)).
∂L/∂ℓ_i = q_i a_i with q = softmax(z) over the global batch: the surrogate Σ_i q_i a_i ℓ_i (q detached) has
DoRA's gradient. Spread over gradient-accumulation micro-batches, the normaliser log Σ exp(z) is kept as a
running value: each new micro-batch rescales the gradients accumulated so far by exp(logS_old − logS_new)
(:func:`running_normaliser`), which gives the exact gradient of the whole window without a second forward.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def dro_exponents(losses: Tensor, lambda_: float, weights: Tensor | None = None, form: str = "inside") -> tuple[Tensor, Tensor]:
    """(z, a): exponents z_i = a_i ℓ_i / λ + c_i and the loss multipliers a_i, for ``form`` ``inside``
    (a = h̄), ``outside`` (a = 1, c = log h̄) or ``none`` (a = 1, c = 0: DRO without weights)."""
    if lambda_ <= 0:
        raise ValueError(f"lambda_ must be > 0, got {lambda_}")
    ones = torch.ones_like(losses)
    if weights is None or form == "none":
        return losses / lambda_, ones
    w = weights.detach().to(losses.dtype)  # weights are constants in the gradient
    if form == "inside":
        return w * losses / lambda_, w
    if form == "outside":
        if (w <= 0).any():
            raise ValueError("DRO with the weights outside needs every weight > 0 (their log enters the exponent)")
        return losses / lambda_ + torch.log(w), ones
    raise ValueError(f"form must be 'inside', 'outside' or 'none', got {form!r}")


def log_mean_exp(z: Tensor, lambda_: float) -> Tensor:
    """λ · log mean exp(z), stable for any λ > 0 and any range of z (differentiable). In float64: for large λ
    the exponents are tiny and float32 would cancel to noise (λ → ∞ must give the weighted mean)."""
    return (lambda_ * (torch.logsumexp(z.double(), dim=0) - math.log(z.shape[0]))).to(z.dtype)


def running_normaliser(log_s: Tensor | None, z_new: Tensor) -> tuple[Tensor, Tensor]:
    """(logS_new, rescale): the running log Σ exp(z) after adding the exponents ``z_new`` (all ranks' values of
    this micro-batch), and the factor exp(logS_old − logS_new) by which gradients accumulated so far must be
    multiplied (1 for the first micro-batch, ``log_s`` None)."""
    z_new = z_new.detach().double()
    step = torch.logsumexp(z_new, dim=0)
    if log_s is None:
        return step, torch.ones((), dtype=torch.float64)
    new = torch.logaddexp(log_s, step)
    return new, torch.exp(log_s - new)


def dro_coefficients(z: Tensor, log_s: Tensor) -> Tensor:
    """q_i = exp(z_i − logS): each sample's share of the soft-max weight (detached)."""
    return torch.exp(z.detach().double() - log_s).to(z.dtype)


def effective_sample_size(q: Tensor) -> Tensor:
    """(Σ q)² / Σ q² of soft-max weights."""
    q = q.detach().double()
    return (q.sum() ** 2 / (q * q).sum().clamp_min(1e-300)).float()
