"""The objective interface: a strategy object that turns a batch's log-probs into a loss.

A preference objective is a composition: a per-sample loss (a pure function from ``lit_iwpo.losses``),
times sample weights from a *weight source* (:mod:`lit_iwpo.objectives.weights`), through a *reduction*
(:mod:`lit_iwpo.objectives.reductions`). It declares what it needs from the forward pass as a
:class:`~lit_iwpo.models.scoring.ForwardRequest` and sees the run only through a
:class:`~lit_iwpo.objectives.context.StepContext`. Objectives hold no Lightning state; the module saves
their ``state_dict`` in checkpoints and registers their trainable ``parts``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Optional

import torch
from torch import Tensor, nn

from lit_iwpo.data.collate import PreferenceBatch
from lit_iwpo.models.scoring import ForwardRequest
from lit_iwpo.objectives.context import StepContext, StepInputs
from lit_iwpo.objectives.reductions import Mean, Reduction
from lit_iwpo.objectives.weights.base import Uniform, WeightSource

__all__ = ["Objective", "ObjectiveOutput", "PreferenceObjective", "StepInputs"]


@dataclass
class ObjectiveOutput:
    loss: Tensor  # scalar that is backpropagated
    per_sample_loss: Tensor  # [B] unweighted per-sample loss
    weights: Tensor | None = None  # [B] sample weights applied (detached), None = uniform
    metrics: dict[str, Tensor] = field(default_factory=dict)  # extra values logged under the stage ([B] or scalar)


class Objective(ABC):
    """Base class of the strategies passed to ``PreferenceModule(objective=...)``."""

    beta: float = 0.1  # scale of the implicit reward r = β log π/π_ref used in metrics

    @property
    def request(self) -> ForwardRequest:
        """What the training forward must provide (evaluation stages always get the sequence reference)."""
        return ForwardRequest()

    def setup(self, ctx: StepContext) -> None:
        """Called in ``LightningModule.setup`` of every fit/validate/test/predict (before a checkpoint is
        restored, so restored state lands on what this builds); ``ctx.stage`` says which. Check settings here."""

    def on_fit_start(self, ctx: StepContext) -> None:
        """Called once the model exists and a restored checkpoint is loaded, before the first step of a fit
        (e.g. token weights scored by contrastive adapters)."""

    def adapters(self) -> dict[str, str]:
        """Named LoRA adapters ``{name: folder}`` to load frozen onto the base, scored on demand through
        ``ctx.score(batch, name)`` (unlike ``request.adapters``, which every training step scores)."""
        return {}

    def train_batch(self, batch: PreferenceBatch, ctx: StepContext) -> PreferenceBatch:
        """The batch this training step scores and trains on, given the loader's (the default: that one). Called
        before any forward pass, so the step's one forward, its loss and its logged values all see the same
        batch (e.g. ``DPO.val_warmup_steps`` swaps in a batch of D_v)."""
        del ctx
        return batch

    @abstractmethod
    def __call__(self, inputs: StepInputs) -> ObjectiveOutput:
        """The loss of one batch."""

    def weight_sources(self) -> list[Any]:
        """The weight sources inside (callbacks refresh and export those implementing the protocols in
        :mod:`lit_iwpo.objectives.weights.base`)."""
        return []

    def sample_weights(self) -> tuple[list[str], Tensor] | None:
        """(training sample ids, their current weights [N]) for objectives that weight samples; None = uniform."""
        return None

    def parts(self, model_config: Any) -> dict[str, nn.Module]:
        """Trainable parts (e.g. reward heads), built once the model's config is known. The module registers
        them, so the optimizer, checkpoints and the Hugging Face export see them."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """State to keep in checkpoints (importance weights, samplers); empty for stateless objectives."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        del state


class PreferenceObjective(Objective):
    """loss (per sample) × weights (a weight source) → reduction.

    Subclasses give the per-sample loss and what it needs (``loss_request``); the weight source and the
    reduction are strategy objects. Validation and test losses are never weighted, so they compare across
    methods; the reduction applies in every stage.

    Args:
        weights: Where sample weights come from (``class_path``): ``Uniform`` (default), ``WPOWeights``,
            ``ColumnWeights`` (a data column), ``DensityRatioWeights`` (IW-DPO).
        reduction: From weighted per-sample losses to the loss: ``Mean`` (default).
    """

    loss_request: ForwardRequest = ForwardRequest()

    def __init__(self, weights: Optional[WeightSource] = None, reduction: Optional[Reduction] = None) -> None:
        self.weights = weights if weights is not None else Uniform()
        self.reduction = reduction if reduction is not None else Mean()
        self.weights.bind(self)

    @property
    def request(self) -> ForwardRequest:
        return self.loss_request.merge(self.weights.request)

    @abstractmethod
    def per_sample_loss(self, inputs: StepInputs) -> Tensor:
        """Unreduced loss [B] of the batch, before any sample weights."""

    def setup(self, ctx: StepContext) -> None:
        self.weights.setup(ctx)

    def on_fit_start(self, ctx: StepContext) -> None:
        self.weights.prepare(ctx)

    def __call__(self, inputs: StepInputs) -> ObjectiveOutput:
        losses = self.per_sample_loss(inputs)
        # training batches only: a D_v batch trained on during a warm-up (DPO.val_warmup_steps) has no weights
        weighted = inputs.stage == "train" and getattr(inputs.batch, "split", "train") == "train"
        w, metrics = self.weights.train_weights(inputs, losses) if weighted else (None, {})
        if w is not None:
            w = w.detach().to(losses.device)
        loss = self.reduction(losses, w, inputs.ctx)
        if inputs.stage == "train":
            metrics = {**metrics, **self.reduction.metrics()}
        if weighted:
            q, groups = getattr(self.reduction, "last_q", None), self.weights.sample_groups(list(inputs.batch.ids))
            if q is not None and groups is not None and float(q.sum()) > 0:
                # each group's share of the effective (soft-max) weight in this micro-batch
                for g in sorted(set(groups)):
                    sel = torch.tensor([x == g for x in groups], device=q.device)
                    metrics[f"dro/share/{g}"] = (q[sel].sum() / q.sum()).float()
        return ObjectiveOutput(loss=loss, per_sample_loss=losses, weights=w, metrics=metrics)

    def weight_sources(self) -> list[Any]:
        return [self.weights]

    def sample_weights(self) -> tuple[list[str], Tensor] | None:
        return self.weights.sample_weights()

    def parts(self, model_config: Any) -> dict[str, nn.Module]:
        return {**{f"weights_{k}": v for k, v in self.weights.parts(model_config).items()},
                **{f"reduction_{k}": v for k, v in self.reduction.parts(model_config).items()}}

    def state_dict(self) -> dict[str, Any]:
        # the weight source's state at the top level: checkpoints of earlier versions load unchanged
        return self.weights.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            self.weights.load_state_dict(state)
