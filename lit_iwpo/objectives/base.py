"""The objective interface: a strategy object that turns a batch's log-probs into a loss.

An objective declares what it needs from the forward pass (the reference, logits at response
positions, token-level reference log-probs) and returns the per-sample losses it weighted, so that
metrics, weight analysis and DRO can compose around it. Objectives hold no Lightning state; the
module hands them a :class:`StepInputs` and saves their ``state_dict`` in checkpoints.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from torch import Tensor

from lit_iwpo.data.collate import PreferenceBatch
from lit_iwpo.models.logprobs import LogProbs

if TYPE_CHECKING:
    from lit_iwpo.module import PreferenceModule


@dataclass
class StepInputs:
    policy: LogProbs  # with grad in training
    reference: LogProbs | None  # no grad; None when the objective needs none (SFT in training)
    batch: PreferenceBatch
    stage: str  # "train" | "val" | "test"
    module: "PreferenceModule | None" = None  # for objectives that run extra forward passes (IW transforms)


@dataclass
class ObjectiveOutput:
    loss: Tensor  # scalar that is backpropagated
    per_sample_loss: Tensor  # [B] unweighted per-sample loss
    weights: Tensor | None = None  # [B] sample weights applied (detached), None = uniform
    metrics: dict[str, Tensor] = field(default_factory=dict)  # extra values logged under the stage ([B] or scalar)


class Objective(ABC):
    """Base class of the strategies passed to ``PreferenceModule(objective=...)``."""

    needs_reference: bool = True  # reference log-probs in training (always computed for eval metrics)
    needs_logits: bool = False  # policy logits at response positions (WPO, TIS-KL)
    needs_token_reference: bool = False  # token-level reference log-probs (incompatible with a logp cache)
    beta: float = 0.1  # scale of the implicit reward r = β log π/π_ref used in metrics

    def setup(self, module: "PreferenceModule") -> None:
        """Called once the model and data are ready (fit, validate, test); check settings here."""

    @abstractmethod
    def per_sample_loss(self, inputs: StepInputs) -> Tensor:
        """Unreduced loss [B] of the batch, before any sample weights."""

    def __call__(self, inputs: StepInputs) -> ObjectiveOutput:
        losses = self.per_sample_loss(inputs)
        return ObjectiveOutput(loss=losses.mean(), per_sample_loss=losses)

    def sample_weights(self) -> tuple[list[str], Tensor] | None:
        """(training sample ids, their current weights [N]) for objectives that weight samples; None = uniform."""
        return None

    def state_dict(self) -> dict[str, Any]:
        """State to keep in checkpoints (importance weights, samplers); empty for stateless objectives."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        del state
