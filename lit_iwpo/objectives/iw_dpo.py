"""IW-DPO: importance-weighted DPO under deployment distribution shift (Lodkaew, Fang, Ishida, Sugiyama)."""

from __future__ import annotations

from typing import Optional

from lit_iwpo.errors import ConfigError
from lit_iwpo.objectives.dpo import DPO
from lit_iwpo.objectives.weights.density_ratio import BatchPool, DensityRatioWeights, RecentPool, RefreshPool
from lit_iwpo.weighting.density_ratio import DensityRatioEstimator

POOLS = ("batch", "recent", "refresh")


class IWDPO(DPO):
    """Importance-weighted DPO: minimise the deployment risk E_te[ℓ] = E_tr[w* ℓ], w* = p_te / p_tr.

    Density ratios are estimated in a transformed space z = t(x, y_w, y_l) from the training data and a
    small validation set D_v drawn from the deployment distribution (``data.val``):
    IW-DPO-L uses z = ℓ_DPO (``transform: loss``), IW-DPO-R z = (r(x, y_w), r(x, y_l)) with
    r = β log π/π_ref (``transform: reward``). Algorithm 1 of the paper (after DIW, Fang et al. 2020):
    uniform weights for ``warmup_steps``; then for each training batch draw a validation batch, compute
    Z_tr and Z_v with the current policy (no grad, eval mode), ŵ = ω(Z_tr, Z_v) normalised to mean 1, and
    loss = mean(ŵ_i ℓ_i). Beyond the paper, ``pool: recent`` estimates on an accumulated batch: this batch
    together with the latest recorded transforms of the pairs trained on just before it, ``pool_size`` pairs
    in all, normalised to mean 1 over that pool (a batch of mostly irrelevant pairs then weighs less in
    total); ``pool: refresh`` estimates weights for all of D_tr at once in the ``ImportanceWeightRefresh``
    callback (on its schedule, or every ``refresh_every`` steps), with every training transform recomputed by
    the current policy (``transform_max_age`` allows reusing recent ones recorded during training).

    The same as ``DPO(weights: DensityRatioWeights(...))``, with the pool named by a string.

    Args:
        transform: ``reward`` (IW-DPO-R) or ``loss`` (IW-DPO-L).
        estimator: Density-ratio estimator (``class_path``): KMM, KLIEP or RuLSIF; null means ``KMM()``. (No
            instance as default: jsonargparse would carry its init args, e.g. KMM's ``width``, into another
            estimator chosen on the command line.)
        warmup_steps: Training steps with uniform weights before estimation starts. At initialisation
            every ℓ = log 2 and every r = 0, so the transforms carry no signal; default 10 steps. (Not the
            learning-rate warm-up, which is ``model.warmup_steps``.)
        pool: ``batch`` (the paper: per training batch), ``recent`` (this batch + the pairs trained on just
            before it, ``pool_size`` in all) or ``refresh`` (all of D_tr, periodically).
        pool_size: Training pairs per estimate with ``pool: recent`` (this batch included).
        val_batch_size: Validation pairs drawn per training batch (``batch`` pool); capped at |D_v|.
        max_weight: Clip normalised weights at this value (None: no clipping).
        on_failure: ``uniform``: if estimation fails (e.g. non-finite transforms), log ``iw/fallback`` and
            use uniform weights for that batch; ``raise``: stop with the error.
        seed: Seed of the validation-batch sampler (its state is checkpointed); null takes the run's seed
            (``seed_everything``), so runs with different seeds also draw different validation batches.
        transform_max_age: ``pool: refresh``: reuse training transforms recorded at most this many steps before
            a refresh; 0 (default) recomputes all with the current policy; null reuses any after the warm-up.
        val_weight: Beyond the paper: with ``data.train_on: train+val``, train the D_v pairs at this fixed weight,
            outside every estimate (IW-DPO then also learns from the pairs plain DPO on D_tr ∪ D_v gets); null
            (the paper) estimates every training pair.
        val_transforms_every: Beyond the paper: score a validation batch every k steps and reuse its transforms
            for the next k − 1 estimates (1, the paper: every step). Cuts the D_v forward passes k-fold.
        refresh_every: Beyond the paper, ``pool: refresh`` only: re-estimate when the warm-up ends and every k steps
            after it, instead of on the ``ImportanceWeightRefresh`` callback's schedule (null: the callback's). A k
            beyond the run's last step estimates once, when the warm-up ends, and keeps those weights (static
            weights, as against Algorithm 1's dynamic ones: ``configs/methods/iw_dpo_r_refresh_kliep_once.yaml``).
        val_warmup_steps: Beyond the paper: the first k steps train on D_v batches instead (``DPO``'s option), so
            the transforms of the first estimates already carry the deployment preference; pair with
            ``warmup_steps`` >= k.
        beta: DPO's β (also scales the reward transform).
        loss_type: ``sigmoid`` or ``ipo``.
        label_smoothing: cDPO's ε.
        length_normalize: Length-averaged log-probs in h.
    """

    def __init__(
        self,
        transform: str = "reward",
        estimator: Optional[DensityRatioEstimator] = None,
        warmup_steps: int = 10,
        pool: str = "batch",
        pool_size: int = 64,
        val_batch_size: int = 16,
        max_weight: Optional[float] = None,
        on_failure: str = "uniform",
        seed: Optional[int] = None,
        transform_max_age: Optional[int] = 0,
        val_weight: Optional[float] = None,
        val_transforms_every: int = 1,
        refresh_every: Optional[int] = None,
        val_warmup_steps: int = 0,
        beta: float = 0.1,
        loss_type: str = "sigmoid",
        label_smoothing: float = 0.0,
        length_normalize: bool = False,
    ) -> None:
        if pool not in POOLS:
            raise ConfigError(f"objective.pool must be one of {POOLS}, got {pool!r}")
        strategy = {"batch": BatchPool, "refresh": RefreshPool}.get(pool) or (lambda: RecentPool(pool_size))
        if pool_size < 1:
            raise ConfigError(f"objective.pool_size must be >= 1, got {pool_size}")
        weights = DensityRatioWeights(transform=transform, estimator=estimator, pool=strategy(),
                                      warmup_steps=warmup_steps, val_batch_size=val_batch_size,
                                      max_weight=max_weight, on_failure=on_failure, seed=seed,
                                      transform_max_age=transform_max_age, val_weight=val_weight,
                                      val_transforms_every=val_transforms_every, refresh_every=refresh_every)
        super().__init__(beta=beta, loss_type=loss_type, label_smoothing=label_smoothing,
                         length_normalize=length_normalize, weights=weights, val_warmup_steps=val_warmup_steps)
