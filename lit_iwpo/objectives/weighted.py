"""Sample-weighted DPO: the shared part of WPO and IW-DPO (loss = mean_i w_i ℓ_i, weights detached)."""

from __future__ import annotations

from abc import abstractmethod
import math
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from lit_iwpo.data.records import as_relevance
from lit_iwpo.losses import weighted_mean
from lit_iwpo.objectives.base import ObjectiveOutput, StepInputs
from lit_iwpo.objectives.dpo import DPO
from lit_iwpo.weighting.importance import weight_stats
from lit_iwpo.weighting.store import WeightStore

if TYPE_CHECKING:
    from lit_iwpo.module import PreferenceModule


class WeightedDPO(DPO):
    """DPO whose per-sample losses are weighted by w_i, a constant in the gradient.

    Subclasses implement :meth:`train_weights`. Weights live in a :class:`WeightStore` over the training
    split (keyed by sample id), which is saved in checkpoints and read by the deployment evaluation
    (``iw/auc_relevant``) and the weight export. Validation and test losses stay unweighted, so they
    compare across methods.
    """

    transform_dim: int = 1

    def __init__(self, beta: float = 0.1, loss_type: str = "sigmoid", label_smoothing: float = 0.0,
                 length_normalize: bool = False) -> None:
        super().__init__(beta=beta, loss_type=loss_type, label_smoothing=label_smoothing,
                         length_normalize=length_normalize)
        self.store: WeightStore | None = None
        self.relevant: Tensor | None = None  # [N_tr] 1/0/NaN ground truth, for logging only
        self._pending_state: dict[str, Any] | None = None

    def setup(self, module: "PreferenceModule") -> None:
        dm = module.trainer.datamodule
        if not dm.has_split("train"):
            return  # validate/test/predict: weights are not used
        train = dm.load_split("train")
        if self.store is None or self.store.ids != train.ids:
            self.store = WeightStore(train.ids, self.transform_dim)
        self.relevant = torch.tensor([math.nan if (r := as_relevance(row.get("relevant"))) is None else float(r)
                                      for row in train.rows])
        if self._pending_state is not None:
            self._apply_state(self._pending_state)
            self._pending_state = None

    @abstractmethod
    def train_weights(self, inputs: StepInputs, losses: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Weights [B] for this training batch, plus extra metrics."""

    def __call__(self, inputs: StepInputs) -> ObjectiveOutput:
        losses = self.per_sample_loss(inputs)
        if inputs.stage != "train":
            return ObjectiveOutput(loss=losses.mean(), per_sample_loss=losses)
        w, metrics = self.train_weights(inputs, losses)
        w = w.to(losses.device)
        rel = None if self.relevant is None else self.relevant[inputs.batch.index.cpu()]
        metrics = {**metrics, **weight_stats(w, rel)}
        return ObjectiveOutput(loss=weighted_mean(losses, w), per_sample_loss=losses, weights=w.detach(),
                               metrics=metrics)

    # ---------------------------------------------------------------- state
    def sample_weights(self) -> tuple[list[str], Tensor] | None:
        """Ids and weights of the training pairs whose weight was actually estimated (a pair never drawn
        after the warm-up still holds its initial 1, which says nothing about the estimator)."""
        if self.store is None:
            return None
        done = self.store.weight_step >= 0
        if not done.any():
            return None
        return [sid for sid, d in zip(self.store.ids, done.tolist()) if d], self.store.weights[done].clone()

    def state_dict(self) -> dict[str, Any]:
        return {} if self.store is None else {"store": self.store.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # checkpoints are restored before fit starts, i.e. before setup() has built the store
        if not state:
            return
        if self.store is None:
            self._pending_state = state
        else:
            self._apply_state(state)

    def _apply_state(self, state: dict[str, Any]) -> None:
        if "store" in state and self.store is not None:
            self.store.load_state_dict(state["store"])
