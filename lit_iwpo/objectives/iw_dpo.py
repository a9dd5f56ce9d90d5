"""IW-DPO: importance-weighted DPO under deployment distribution shift (Lodkaew, Fang, Ishida, Sugiyama)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor

from lit_iwpo.dist import gather_rows, rank_world
from lit_iwpo.models.logprobs import LogProbs
from lit_iwpo.objectives.base import StepInputs
from lit_iwpo.objectives.weighted import WeightedDPO
from lit_iwpo.weighting.density_ratio import KMM, DensityRatioEstimator
from lit_iwpo.weighting.importance import WeightEstimationError, estimate_weights
from lit_iwpo.weighting.transforms import loss_transform, reward_transform, transform_dim

if TYPE_CHECKING:
    from lit_iwpo.module import PreferenceModule

POOLS = ("batch", "recent", "refresh")


class IWDPO(WeightedDPO):
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
    callback, from transforms recorded during training.

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
        beta: float = 0.1,
        loss_type: str = "sigmoid",
        label_smoothing: float = 0.0,
        length_normalize: bool = False,
    ) -> None:
        super().__init__(beta=beta, loss_type=loss_type, label_smoothing=label_smoothing,
                         length_normalize=length_normalize)
        self.transform_dim = transform_dim(transform)
        if pool not in POOLS:
            raise ValueError(f"objective.pool must be one of {POOLS}, got {pool!r}")
        if on_failure not in ("uniform", "raise"):
            raise ValueError(f"objective.on_failure must be 'uniform' or 'raise', got {on_failure!r}")
        if warmup_steps < 0 or val_batch_size < 1 or pool_size < 1:
            raise ValueError("objective.warmup_steps must be >= 0, objective.val_batch_size and pool_size >= 1")
        if max_weight is not None and max_weight <= 0:
            raise ValueError(f"objective.max_weight must be > 0, got {max_weight}")
        self.transform = transform
        self.estimator = estimator if estimator is not None else KMM()
        self.warmup_steps = warmup_steps
        self.pool = pool
        self.pool_size = pool_size
        self.val_batch_size = val_batch_size
        self.max_weight = max_weight
        self.on_failure = on_failure
        self.seed = seed
        self.val_generator = torch.Generator()
        self._seeded = False
        self.n_val = 0
        self.fallbacks = 0
        self._val_reference: Tensor | None = None  # [N_v, 2] reference log-probs of D_v (chosen, rejected)

    # ---------------------------------------------------------------- setup
    def min_val_points(self) -> int:
        return max(2, int(getattr(self.estimator, "min_val", 2)))

    def setup(self, module: "PreferenceModule") -> None:
        if not self._seeded:  # before super().setup(), which restores a checkpointed generator state
            self.val_generator.manual_seed(self.seed if self.seed is not None else torch.initial_seed())
            self._seeded = True
        super().setup(module)
        trainer = module.trainer
        dm = trainer.datamodule
        if trainer.state.fn != "fit" or not dm.has_split("train"):
            return  # validate/test/predict evaluate unweighted losses: no weights to estimate
        if not dm.has_split("val"):
            raise ValueError("IW-DPO estimates weights against deployment data D_v: set data.val")
        self.n_val = len(dm.load_split("val"))
        self._val_reference = None
        need = self.min_val_points()
        have = self.n_val if self.pool == "refresh" else min(self.val_batch_size, self.n_val)
        max_train = getattr(self.estimator, "max_train", None)
        if self.pool == "recent" and max_train is not None and self.pool_size > max_train:
            raise ValueError(f"{type(self.estimator).__name__} handles at most {max_train} training points: "
                             f"lower objective.pool_size ({self.pool_size})")
        if have < need:
            raise ValueError(
                f"{type(self.estimator).__name__} needs at least {need} validation points per estimate, but "
                f"{'D_v has' if have == self.n_val else 'objective.val_batch_size gives'} {have}: "
                f"add deployment pairs to data.val or raise objective.val_batch_size"
            )
        if getattr(dm, "train_on", "train") != "train":
            rank_zero_warn(f"IW-DPO with data.train_on: {dm.train_on}: D_v is also in the training set, which pulls "
                           "the estimated density ratios towards 1; the paper trains on D_tr (train_on: train)")
        if self.pool == "refresh":
            from lit_iwpo.callbacks.iw_refresh import ImportanceWeightRefresh

            if not any(isinstance(cb, ImportanceWeightRefresh) for cb in trainer.callbacks):
                raise ValueError("objective.pool: refresh needs the ImportanceWeightRefresh callback in trainer.callbacks")
            if max_train is not None and len(self.store) > max_train:
                raise ValueError(f"{type(self.estimator).__name__} handles at most {max_train} training points but "
                                 f"D_tr has {len(self.store)}: use RuLSIF or KLIEP, or pool: batch")

    # ----------------------------------------------------------- transforms
    def transforms(self, policy: LogProbs, reference: LogProbs) -> Tensor:
        """Z for a batch: [B, 2] rewards (IW-DPO-R) or [B, 1] losses (IW-DPO-L), detached; built from the same
        (summed or length-averaged) log-probs as the loss, so IW-DPO-L's z is exactly the trained ℓ."""
        args = tuple(t.detach() for t in self.sequence_terms(policy, reference))
        if self.transform == "reward":
            return reward_transform(*args, beta=self.beta)
        return loss_transform(*args, beta=self.beta, loss_type=self.loss_type, label_smoothing=self.label_smoothing)

    def batch_transforms(self, module: "PreferenceModule", batch) -> Tensor:
        batch = module.trainer.strategy.batch_to_device(batch)
        return self.transforms(module.eval_logps(batch), self._reference(module, batch))

    def _reference(self, module: "PreferenceModule", batch) -> LogProbs:
        """Reference log-probs; D_v's are computed once and kept (the reference never changes), which
        saves one of the two forward passes Algorithm 1 spends on its validation batch every step."""
        if batch.split != "val":
            return module.reference_logps(batch)
        if self._val_reference is None:
            self._val_reference = torch.full((self.n_val, 2), float("nan"))
        idx = batch.index.cpu()
        todo = torch.isnan(self._val_reference[idx, 0])
        if todo.any():
            ref = module.reference_logps(batch).logps.detach().cpu()
            b = len(batch)
            self._val_reference[idx, 0], self._val_reference[idx, 1] = ref[:b], ref[b:]
        cached = self._val_reference[idx].to(batch.input_ids.device)
        return LogProbs(logps=torch.cat([cached[:, 0], cached[:, 1]]))

    def val_transforms(self, module: "PreferenceModule", n: int | None = None) -> Tensor:
        """Transforms of a random validation batch of ``n`` pairs (all of D_v when n is None)."""
        dm = module.trainer.datamodule
        if n is None or n >= self.n_val:
            idx = list(range(self.n_val))
        else:
            idx = torch.randperm(self.n_val, generator=self.val_generator)[:n].tolist()
        chunk = dm.eval_batch_size
        return torch.cat([self.batch_transforms(module, dm.pair_batch("val", idx[i:i + chunk]))
                          for i in range(0, len(idx), chunk)])

    # --------------------------------------------------------------- weights
    def _estimate(self, z_train: Tensor, z_val: Tensor) -> Tensor | None:
        """Normalised weights, or None after a logged fallback."""
        if z_train.shape[0] == 1:  # one point normalised to mean 1 is 1, whatever the ratio
            return torch.ones(1)
        try:
            return estimate_weights(self.estimator, z_train, z_val, self.max_weight)
        except WeightEstimationError as err:
            if self.on_failure == "raise":
                raise
            self.fallbacks += 1
            rank_zero_warn(f"IW-DPO: weight estimation failed ({err}); using uniform weights (fallback #{self.fallbacks})")
            return None

    def train_weights(self, inputs: StepInputs, losses: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        module, batch = inputs.module, inputs.batch
        step = module.global_step
        # the paper computes Z_tr in eval mode; without active dropout the training forward gives the same numbers
        policy = inputs.policy if module.forward_is_deterministic() else module.eval_logps(batch)
        z_tr = self.transforms(policy, inputs.reference)
        # across processes every rank gathers the global batch: all stores (and checkpoints) agree, and
        # Algorithm 1 estimates on the same global batch everywhere, each rank keeping its own slice
        z_all, index = gather_rows(module, z_tr, batch.index.to(z_tr.device))
        ids = [self.store.ids[i] for i in index.tolist()]
        self.store.record_transforms(ids, z_all, step)
        ones = torch.ones(len(batch))
        metrics = {"iw/fallback": torch.tensor(0.0)}
        if step < self.warmup_steps:
            return ones, metrics
        if self.pool == "refresh":
            return self.store.lookup(batch.ids), metrics
        z_pool = self._recent_pool(ids, z_all) if self.pool == "recent" else z_all
        w_pool = self._estimate(z_pool, self.val_transforms(module, self.val_batch_size))
        if w_pool is None:
            metrics["iw/fallback"] = torch.tensor(1.0)
            return ones, metrics
        w_all = w_pool[:len(ids)]
        self.store.set_weights(ids, w_all, step)
        rank = rank_world(module)[0]
        return w_all[rank * len(batch):(rank + 1) * len(batch)].cpu(), metrics

    def _recent_pool(self, ids: list[str], z_all: Tensor) -> Tensor:
        """This global batch's transforms first, then the most recently recorded ones of other training
        pairs (never those of step 0, where every transform is the same constant), ``pool_size`` in all."""
        extra = self.pool_size - len(ids)
        if extra <= 0:
            return z_all
        steps = self.store.transform_step.clone()
        steps[self.store.index(ids)] = -1
        latest = torch.argsort(steps, descending=True, stable=True)[:extra]
        latest = latest[steps[latest] > 0]
        return torch.cat([z_all.float().cpu(), self.store.transforms[latest]])

    @torch.no_grad()
    def refresh(self, module: "PreferenceModule", recompute_train: bool = False) -> tuple[bool, Tensor]:
        """Re-estimate weights for all of D_tr (``pool: refresh``); returns (success, D_v's transforms).

        Training transforms are the ones recorded during training (each sample's latest, so up to an epoch
        old) unless ``recompute_train``; samples never seen since the warm-up (whose transforms carry no
        signal) are computed now with the current policy.
        """
        dm = module.trainer.datamodule
        stale = self.store.transform_step < self.warmup_steps
        todo = self.store.ids if recompute_train else [i for i, s in zip(self.store.ids, stale.tolist()) if s]
        if todo:
            pos = self.store.index(todo).tolist()
            chunk = dm.eval_batch_size
            for i in range(0, len(pos), chunk):
                batch = dm.pair_batch("train", pos[i:i + chunk])
                self.store.record_transforms(batch.ids, self.batch_transforms(module, batch), module.global_step)
        z_val = self.val_transforms(module)
        w = self._estimate(self.store.transforms, z_val)
        if w is None:
            return False, z_val
        self.store.set_weights(None, w, module.global_step)
        return True, z_val

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state.update(val_generator=self.val_generator.get_state(), fallbacks=self.fallbacks)
        return state

    def _apply_state(self, state: dict[str, Any]) -> None:
        super()._apply_state(state)
        if "val_generator" in state:
            self.val_generator.set_state(state["val_generator"])
            self._seeded = True
        self.fallbacks = state.get("fallbacks", 0)
