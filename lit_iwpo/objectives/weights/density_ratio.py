"""Importance weights from density ratios in a transformed space (IW-DPO, Lodkaew, Fang, Ishida, Sugiyama).

The weight source estimates ŵ = ω(Z_tr, Z_v) with a density-ratio estimator, from transforms z = t(x, y_w,
y_l) of training pairs and of the deployment sample D_v computed with the current policy. *Which* training
pairs an estimate covers is a pool strategy: :class:`BatchPool` (the paper's Algorithm 1),
:class:`RecentPool` or :class:`RefreshPool`. Every estimate runs once (rank 0) and is broadcast.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Optional, Protocol

import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor

from lit_iwpo.errors import ConfigError
from lit_iwpo.models.logprobs import LogProbs
from lit_iwpo.models.scoring import ForwardRequest
from lit_iwpo.objectives.context import StepContext, StepInputs
from lit_iwpo.objectives.weights.base import StoredWeights
from lit_iwpo.weighting.density_ratio import KMM, DensityRatioEstimator
from lit_iwpo.weighting.importance import WeightEstimationError, estimate_weights
from lit_iwpo.weighting.transforms import transform_dim



class PairTransform(Protocol):
    """A pairwise loss that can map a batch into IW-DPO's transformed space (``DPO.pair_transform``)."""

    def pair_transform(self, kind: str, policy: LogProbs, reference: LogProbs) -> Tensor: ...


class Pool(ABC):
    """Which training pairs one density-ratio estimate covers."""

    refreshes: bool = False  # weights come from periodic re-estimates over all of D_tr (a refresh callback)

    def check(self, source: "DensityRatioWeights", n_train: int, n_val: int) -> int:
        """Validate the settings against the data; return the validation points one estimate sees."""
        return min(source.val_batch_size, n_val)

    @abstractmethod
    def batch_weights(self, source: "DensityRatioWeights", ctx: StepContext, ids: list[str],
                      z_all: Tensor) -> tuple[Tensor | None, str | None]:
        """Weights of this global batch (its pairs ``ids``, transforms ``z_all``), or (None, why) on failure."""


class BatchPool(Pool):
    """The paper's Algorithm 1: one estimate per training batch against a random validation batch, ŵ
    normalised to mean 1 over the batch."""

    def batch_weights(self, source, ctx, ids, z_all):
        return ctx.compute_once(lambda: source.estimate(z_all, source.step_val_transforms(ctx)))


class RecentPool(Pool):
    """Beyond the paper: estimate on an accumulated batch, this batch plus the latest recorded transforms
    of the pairs trained on just before it (never those recorded during the warm-up), ``size`` pairs in all,
    normalised to mean 1 over that pool (a batch of mostly irrelevant pairs then weighs less in total).

    Args:
        size: Training pairs per estimate (this batch included).
    """

    def __init__(self, size: int = 64) -> None:
        if size < 1:
            raise ConfigError(f"objective.pool_size must be >= 1, got {size}")
        self.size = size

    def check(self, source, n_train, n_val):
        max_train = getattr(source.estimator, "max_train", None)
        if max_train is not None and self.size > max_train:
            raise ConfigError(f"{type(source.estimator).__name__} handles at most {max_train} training points: "
                             f"lower objective.pool_size ({self.size})")
        return super().check(source, n_train, n_val)

    def pool(self, source: "DensityRatioWeights", ids: list[str], z_all: Tensor) -> Tensor:
        extra = self.size - len(ids)
        if extra <= 0:
            return z_all
        store = source.store
        steps = store.transform_step.clone()
        steps[store.index(ids)] = -1
        steps[~source.estimated] = -1  # pairs of D_v trained at a fixed weight (``val_weight``) are not estimated
        latest = torch.argsort(steps, descending=True, stable=True)[:extra]
        # never warm-up transforms: the policy had barely moved, so they say little about the pair
        latest = latest[steps[latest] >= max(source.warmup_steps, 1)]  # step 0: every transform the same constant
        return torch.cat([z_all.float().cpu(), store.transforms[latest]])

    def batch_weights(self, source, ctx, ids, z_all):
        def run():
            w, err = source.estimate(self.pool(source, ids, z_all), source.step_val_transforms(ctx))
            return (None if w is None else w[:len(ids)]), err
        return ctx.compute_once(run)


class RefreshPool(Pool):
    """Beyond the paper: weights for all of D_tr, re-estimated at once by the ``ImportanceWeightRefresh``
    callback (every N steps or epochs); training batches look their weights up."""

    refreshes = True

    def check(self, source, n_train, n_val):
        max_train = getattr(source.estimator, "max_train", None)
        if max_train is not None and n_train > max_train:
            raise ConfigError(f"{type(source.estimator).__name__} handles at most {max_train} training points but "
                             f"D_tr has {n_train}: use RuLSIF or KLIEP, or pool: batch")
        return n_val

    def batch_weights(self, source, ctx, ids, z_all):
        return source.store.lookup(ids), None


class DensityRatioWeights(StoredWeights):
    """Importance weights w* = p_te / p_tr estimated from D_v (``data.val``) in a transformed space.

    ``transform: loss`` is IW-DPO-L (z = ℓ_DPO), ``reward`` IW-DPO-R (z = (r(x, y_w), r(x, y_l)),
    r = β log π/π_ref). Uniform weights for ``warmup_steps`` (at initialisation every ℓ = log 2 and every
    r = 0, so the transforms carry no signal); then the pool strategy says which pairs each estimate covers.
    Transforms use the current policy in eval mode without grad, and the same (summed or length-averaged)
    log-probs as the loss, so IW-DPO-L's z is exactly the trained ℓ.

    Args:
        transform: ``reward`` (IW-DPO-R) or ``loss`` (IW-DPO-L).
        estimator: Density-ratio estimator (KMM, KLIEP, RuLSIF); None means ``KMM()``.
        pool: ``BatchPool`` (the paper), ``RecentPool`` or ``RefreshPool``; None means ``BatchPool()``.
        warmup_steps: Training steps with uniform weights before estimation starts.
        val_batch_size: Validation pairs drawn per estimate (batch and recent pools); capped at |D_v|.
        max_weight: Clip normalised weights at this value (None: no clipping).
        on_failure: ``uniform``: a failed estimate logs ``iw/fallback`` and uses uniform weights for that
            batch; ``raise``: stop with the error.
        seed: Seed of the validation-batch sampler (checkpointed); None takes the run's seed.
        transform_max_age: At a refresh (``RefreshPool``), reuse a training transform recorded during training
            only if it is at most this many steps old; older ones, and those of the warm-up, are recomputed with
            the current policy. 0 (default) recomputes every training transform, so training and D_v transforms
            come from the same policy; None reuses any recorded after the warm-up (no forward pass over D_tr,
            but transforms up to an epoch old beside D_v's of now: implicit rewards drift as training goes on).
        val_weight: Beyond the paper. None (the paper): every training pair is estimated. A number: the pairs of
            D_v inside the training set (``data.train_on: train+val``, which this requires) are trained at this
            fixed weight and left out of every estimate, so IW-DPO also learns from the deployment pairs plain
            DPO on D_tr ∪ D_v gets; the estimated weights (and their mean-1 normalisation) cover D_tr's pairs.
        val_transforms_every: Beyond the paper (batch and recent pools). 1 (the paper): every estimate scores a
            fresh validation batch with the current policy. k > 1: a validation batch is scored every k steps and
            its transforms reused for the estimates of the next k − 1 steps, which saves most of the forward
            passes Algorithm 1 spends on D_v (the validation transforms are then up to k − 1 steps old).
        refresh_every: ``RefreshPool`` only. None: the ``ImportanceWeightRefresh`` callback's schedule says when
            to re-estimate. k: re-estimate when the warm-up ends and every k steps after it (steps w, w + k, ...),
            whatever the callback's ``every_n_steps``; the callback still writes its snapshots on its own schedule.
            A k beyond the run's last step: one estimate, at step w, kept for the rest of the run.
    """

    request = ForwardRequest(reference="sequence")

    def __init__(self, transform: str = "reward", estimator: Optional[DensityRatioEstimator] = None,
                 pool: Optional[Pool] = None, warmup_steps: int = 10, val_batch_size: int = 16,
                 max_weight: Optional[float] = None, on_failure: str = "uniform", seed: Optional[int] = None,
                 transform_max_age: Optional[int] = 0, val_weight: Optional[float] = None,
                 val_transforms_every: int = 1, refresh_every: Optional[int] = None) -> None:
        super().__init__()
        if val_weight is not None and val_weight < 0:
            raise ConfigError(f"objective.val_weight must be >= 0 or null, got {val_weight}")
        if val_transforms_every < 1:
            raise ConfigError(f"objective.val_transforms_every must be >= 1, got {val_transforms_every}")
        self.val_weight = val_weight
        self.val_transforms_every = val_transforms_every
        self._val_cache: tuple[int, Tensor] | None = None  # (step, transforms) of the latest scored validation batch
        self.fixed: Tensor | None = None  # [N_tr] bool: D_v pairs trained at ``val_weight``, never estimated
        if transform_max_age is not None and transform_max_age < 0:
            raise ConfigError(f"objective.transform_max_age must be >= 0 or null, got {transform_max_age}")
        self.transform_max_age = transform_max_age
        self.transform_dim = transform_dim(transform)
        if on_failure not in ("uniform", "raise"):
            raise ConfigError(f"objective.on_failure must be 'uniform' or 'raise', got {on_failure!r}")
        if warmup_steps < 0 or val_batch_size < 1:
            raise ConfigError("objective.warmup_steps must be >= 0 and objective.val_batch_size >= 1")
        if max_weight is not None and max_weight <= 0:
            raise ConfigError(f"objective.max_weight must be > 0, got {max_weight}")
        self.transform = transform
        self.estimator = estimator if estimator is not None else KMM()
        self.pool = pool if pool is not None else BatchPool()
        if refresh_every is not None and (refresh_every < 1 or not self.pool.refreshes):
            raise ConfigError(f"objective.refresh_every sets the interval of a refresh pool (objective.pool: refresh): "
                              f"a number of steps >= 1 there, null otherwise; got {refresh_every} with "
                              f"{type(self.pool).__name__}")
        self.refresh_every = refresh_every
        self.warmup_steps = warmup_steps
        self.val_batch_size = val_batch_size
        self.max_weight = max_weight
        self.on_failure = on_failure
        self.seed = seed
        self.val_generator = torch.Generator()
        self._seeded = False
        self.n_val = 0
        self.fallbacks = 0
        self.objective: PairTransform | None = None
        self._val_reference: Tensor | None = None  # [N_v, 2] reference log-probs of D_v (chosen, rejected)
        self._last_val: tuple[int, Tensor] | None = None  # (step, D_v transforms) of the latest refresh

    # ---------------------------------------------------------------- setup
    @property
    def refresh_required(self) -> bool:
        return self.pool.refreshes

    def bind(self, objective: Any) -> None:
        if not hasattr(objective, "pair_transform"):
            raise ConfigError(f"density-ratio weights need a pairwise (DPO-family) loss, not {type(objective).__name__}")
        self.objective = objective

    def min_val_points(self) -> int:
        return max(2, int(getattr(self.estimator, "min_val", 2)))

    def setup(self, ctx: StepContext) -> None:
        if not self._seeded:  # a restored checkpoint replaces this state afterwards
            self.val_generator.manual_seed(self.seed if self.seed is not None else torch.initial_seed())
            self._seeded = True
        super().setup(ctx)
        train, val = ctx.split("train"), ctx.split("val")
        self._val_reference = None
        if ctx.stage != "fit" or train is None:
            return  # validate/test/predict evaluate unweighted losses: no weights to estimate
        if val is None:
            raise ConfigError("IW-DPO estimates weights against deployment data D_v: set data.val")
        self.n_val = len(val)
        need, have = self.min_val_points(), self.pool.check(self, len(train), self.n_val)
        if have < need:
            raise ConfigError(
                f"{type(self.estimator).__name__} needs at least {need} validation points per estimate, but "
                f"{'D_v has' if have == self.n_val else 'objective.val_batch_size gives'} {have}: "
                f"add deployment pairs to data.val or raise objective.val_batch_size"
            )
        inside = set(val.ids) & set(train.ids)
        self.fixed = torch.tensor([sid in inside for sid in train.ids], dtype=torch.bool)
        if self.val_weight is not None:
            if not inside:
                raise ConfigError("objective.val_weight trains the pairs of D_v at a fixed weight, but the training "
                                  "set holds none of them: set data.train_on: train+val")
            if len(inside) == len(train.ids):
                raise ConfigError("objective.val_weight: every training pair is in D_v, none is left to weight")
        elif inside:
            rank_zero_warn("IW-DPO with D_v inside the training set (e.g. data.train_on: train+val) pulls the "
                          "estimated density ratios towards 1; the paper trains on D_tr (train_on: train). "
                          "objective.val_weight trains them at a fixed weight instead")
        if self.val_weight is None:
            self.fixed[:] = False

    # ----------------------------------------------------------- transforms
    def transforms(self, policy: LogProbs, reference: LogProbs) -> Tensor:
        """Z for a batch: [B, 2] rewards (IW-DPO-R) or [B, 1] losses (IW-DPO-L), detached."""
        return self.objective.pair_transform(self.transform, policy, reference)

    def batch_transforms(self, ctx: StepContext, batch) -> Tensor:
        return self.transforms(ctx.score(batch, "policy", mode="eval"), self._reference(ctx, batch))

    def _reference(self, ctx: StepContext, batch) -> LogProbs:
        """Reference log-probs; D_v's are computed once and kept (the reference never changes), which
        saves one of the two forward passes Algorithm 1 spends on its validation batch every step."""
        if batch.split != "val":
            return ctx.score(batch, "reference")
        if self._val_reference is None:
            self._val_reference = torch.full((self.n_val, 2), float("nan"))
        idx = batch.index.cpu()
        todo = torch.isnan(self._val_reference[idx, 0])
        if todo.any():
            ref = ctx.score(batch, "reference").logps.detach().cpu()
            b = len(batch)
            self._val_reference[idx, 0], self._val_reference[idx, 1] = ref[:b], ref[b:]
        cached = self._val_reference[idx].to(batch.input_ids.device)
        return LogProbs(logps=torch.cat([cached[:, 0], cached[:, 1]]))

    def _rows_transforms(self, ctx: StepContext, split: str, rows: list[int]) -> Tensor:
        chunk = ctx.eval_batch_size
        starts = range(0, len(rows), chunk)
        if len(starts) > 1:
            starts = ctx.progress(starts, desc=f"importance weights: {split} transforms", total=len(starts))
        return torch.cat([self.batch_transforms(ctx, ctx.batch(split, rows[i:i + chunk])) for i in starts])

    @property
    def estimated(self) -> Tensor:
        """[N_tr] bool: the training pairs estimates cover (all but D_v's with ``val_weight``)."""
        if self.fixed is None or len(self.fixed) != len(self.store):
            return torch.ones(len(self.store), dtype=torch.bool)
        return ~self.fixed

    def step_val_transforms(self, ctx: StepContext) -> Tensor:
        """The validation transforms of this step's estimate: a fresh random batch of ``val_batch_size`` pairs,
        or with ``val_transforms_every`` k > 1 the batch scored at most k − 1 steps ago."""
        cache = self._val_cache
        if cache is not None and 0 <= ctx.step - cache[0] < self.val_transforms_every:
            return cache[1]
        z = self.val_transforms(ctx, self.val_batch_size)
        if self.val_transforms_every > 1:
            self._val_cache = (ctx.step, z.detach().float().cpu())
        return z

    def val_transforms(self, ctx: StepContext, n: int | None = None) -> Tensor:
        """Transforms of a random validation batch of ``n`` pairs (all of D_v when n is None)."""
        if n is None or n >= self.n_val:
            rows = list(range(self.n_val))
        else:
            rows = torch.randperm(self.n_val, generator=self.val_generator)[:n].tolist()
        return self._rows_transforms(ctx, "val", rows)

    # --------------------------------------------------------------- weights
    def estimate(self, z_train: Tensor, z_val: Tensor) -> tuple[Tensor | None, str | None]:
        """Normalised weights, or (None, the reason) when estimation failed and ``on_failure: uniform``."""
        if z_train.shape[0] == 1:  # one point normalised to mean 1 is 1, whatever the ratio
            return torch.ones(1), None
        try:
            return estimate_weights(self.estimator, z_train, z_val, self.max_weight), None
        except WeightEstimationError as err:
            if self.on_failure == "raise":
                raise
            return None, str(err)

    def _fallback(self, reason: str) -> None:
        self.fallbacks += 1
        rank_zero_warn(f"IW-DPO: weight estimation failed ({reason}); using uniform weights "
                      f"(fallback #{self.fallbacks})")

    def train_weights(self, inputs: StepInputs, losses: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        ctx, batch = inputs.ctx, inputs.batch
        step = ctx.step
        # the paper computes Z_tr in eval mode; without active dropout the training forward gives the same numbers
        policy = inputs.policy if ctx.deterministic() else ctx.score(batch, "policy", mode="eval")
        z_tr = self.transforms(policy, inputs.reference)
        # every rank gathers the global batch: all stores (and checkpoints) agree, and the estimate covers the
        # same global batch everywhere, each rank keeping its own slice
        z_all, index = ctx.gather(z_tr), ctx.gather(batch.index.to(z_tr.device))
        ids = [self.store.ids[i] for i in index.tolist()]
        self.store.record_transforms(ids, z_all, step)
        metrics = {"iw/fallback": torch.tensor(0.0)}
        w_all = torch.ones(len(ids))
        est = self.estimated[self.store.index(ids)]  # pairs this step estimates (all but D_v's with val_weight)
        if step >= self.warmup_steps and est.any():
            est_ids = [sid for sid, e in zip(ids, est.tolist()) if e]
            w_est, reason = self.pool.batch_weights(self, ctx, est_ids, z_all[est.to(z_all.device)])
            if w_est is None:
                self._fallback(reason)
                metrics["iw/fallback"] = torch.tensor(1.0)
            else:
                w_est = w_est.detach().float().cpu()
                if not self.pool.refreshes:
                    self.store.set_weights(est_ids, w_est, step)
                    self.log_estimate(step, self.store.index(est_ids), w_est)
                elif self.estimates and self.estimates[-1]["step"] == self.store.weight_step.max().item():
                    self.estimates[-1]["uses"] += 1  # this step is weighted by the latest refresh's estimate
                w_all[est] = w_est
        if self.val_weight is not None:
            w_all[~est] = self.val_weight
        w = w_all[ctx.rank * len(batch):(ctx.rank + 1) * len(batch)]
        return w, {**metrics, **self.batch_metrics(w, inputs)}

    # ---------------------------------------------------------------- refresh
    def refresh_due(self, step: int) -> bool:
        if not self.pool.refreshes or step < self.warmup_steps:
            return False
        return self.refresh_every is None or (step - self.warmup_steps) % self.refresh_every == 0

    @torch.no_grad()
    def refresh(self, ctx: StepContext, recompute: bool = False) -> bool:
        """Re-estimate the weights of all of D_tr at once, against all of D_v's transforms by the current policy.

        Training transforms are recomputed with the current policy, except those recorded during training at
        most ``transform_max_age`` steps ago (0, the default: none is reused; ``recompute`` forces recomputing
        all); transforms of the warm-up are always recomputed. Runs on rank 0; every rank stores the result.
        """
        rows = self.refresh_rows(ctx.step, recompute)
        est = self.estimated

        def run():
            z_rows = self._rows_transforms(ctx, "train", rows) if rows else torch.empty(0, self.transform_dim)
            z_train = self.store.transforms.clone()
            z_train[rows] = z_rows.float().cpu()
            z_val = self.val_transforms(ctx)
            w, reason = self.estimate(z_train[est], z_val)
            return z_rows, z_val, w, reason

        z_rows, z_val, w, reason = ctx.compute_once(run)
        if rows:
            self.store.record_transforms([self.store.ids[i] for i in rows], z_rows, ctx.step)
        self._last_val = (ctx.step, z_val)
        if w is None:
            self._fallback(reason)
            return False
        index = torch.nonzero(est).flatten()
        self.store.set_weights([self.store.ids[i] for i in index.tolist()], w, ctx.step)
        self.log_estimate(ctx.step, index, w, uses=0)  # counted as steps use it
        return True

    @torch.no_grad()
    def analysis_weights(self, ctx: StepContext, compute: bool = False) -> tuple[list[str], Tensor] | None:
        """An analysis estimate, not used in training: weights of all of D_tr against all of D_v, every transform
        by the current policy. Free when a refresh at this step just made it (``transform_max_age: 0``);
        otherwise computed only if ``compute`` (a forward pass over D_tr). None when it cannot be had."""
        if self.store is None or not self.n_val:
            return None
        index = torch.nonzero(self.estimated).flatten()
        ids = [self.store.ids[i] for i in index.tolist()]
        last = self.estimates[-1] if self.estimates else None
        if (last is not None and last["step"] == ctx.step and torch.equal(last["index"], index)
                and bool((self.store.transform_step[index] == ctx.step).all())):
            return ids, last["weights"].clone()
        max_train = getattr(self.estimator, "max_train", None)
        if not compute or (max_train is not None and len(index) > max_train):
            return None

        def run():
            z_train = self._rows_transforms(ctx, "train", index.tolist())
            return self.estimate(z_train.float().cpu(), self.val_transforms(ctx))

        w, _ = ctx.compute_once(run)
        return None if w is None else (ids, w)

    def refresh_rows(self, step: int, recompute: bool = False) -> list[int]:
        """Training rows whose transform a refresh at ``step`` recomputes (see :meth:`refresh`)."""
        recorded = self.store.transform_step
        stale = recorded < self.warmup_steps
        if recompute or self.transform_max_age == 0:
            stale = torch.ones_like(stale)
        elif self.transform_max_age is not None:
            stale |= recorded < step - self.transform_max_age
        return torch.nonzero(stale & self.estimated).flatten().tolist()

    def weight_tables(self, ctx: StepContext) -> dict[str, dict[str, list]]:
        tables = super().weight_tables(ctx)
        if "step" in tables:
            # the step whose policy computed each row's transform z0[, z1] of the "step" table (-1: never): a row
            # is recorded when trained on or recomputed in a refresh, so one snapshot mixes several steps' policies
            tables["transform_step"] = {"id": list(self.store.ids), "step": [ctx.step] * len(self.store),
                                        "transform_step": self.store.transform_step.tolist()}
        if self.n_val:
            # D_v in the same transformed space, computed by the policy of this snapshot's step (every snapshot
            # writes its own), for plotting training against validation points of the same step
            if self._last_val is not None and self._last_val[0] == ctx.step:
                z_val = self._last_val[1]
            else:
                z_val = ctx.compute_once(lambda: self.val_transforms(ctx))
            val = ctx.split("val")
            tables["val_step"] = {"id": list(val.ids), "step": [ctx.step] * len(val.ids),
                                  **{f"z{d}": z_val[:, d].tolist() for d in range(z_val.shape[1])}}
        return tables

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state.update(val_generator=self.val_generator.get_state(), fallbacks=self.fallbacks)
        if self._val_cache is not None:
            state["val_cache"] = (self._val_cache[0], self._val_cache[1].clone())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if "val_generator" in state:
            self.val_generator.set_state(state["val_generator"])
            self._seeded = True
        self.fallbacks = state.get("fallbacks", 0)
        cache = state.get("val_cache")
        self._val_cache = None if cache is None else (int(cache[0]), cache[1].clone())
