"""The narrow view of a run that objectives, weight sources and estimators get: :class:`StepContext`,
and what one step hands them: :class:`StepInputs`.

They never see the LightningModule or the trainer. ``PreferenceModule.context`` implements this protocol
on a live run; a test or a notebook can implement it in a few lines (see ``tests/test_objectives.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Protocol, Sequence, TypeVar, runtime_checkable

from torch import Tensor

from lit_iwpo.data.collate import PreferenceBatch
from lit_iwpo.models.logprobs import LogProbs
from lit_iwpo.models.scoring import ForwardRequest

if TYPE_CHECKING:
    from lit_iwpo.data.datamodule import SplitData

T = TypeVar("T")


@runtime_checkable
class StepContext(Protocol):
    """What a run offers an objective: where it is, scoring, data by row, and the other processes.

    - ``step``: optimizer steps taken so far; ``stage``: ``fit``/``validate``/``test``/``predict`` in
      ``setup``, ``train``/``val``/``test`` inside a step.
    - ``score(batch, model, mode, request)``: log-probs (optionally logits at response positions and
      pooled embeddings, per ``request``) of a pair batch under ``policy``, ``reference`` or a named LoRA
      adapter; ``mode`` ``eval`` (no grad, eval mode) or ``train`` (the policy as it trains).
    - ``deterministic()``: the training forward has no active dropout (so its detached values equal eval ones).
    - ``split(name)``: a split's rows, ids and sources (None when not configured); ``batch(split, rows)``:
      one collated batch of the given row positions, on the run's device (``system_prompt``: prompts
      re-rendered with that system message, responses unchanged); ``eval_batch_size``.
    - ``fingerprint(what)``: a cache-key part of ``reference``, a loaded adapter, ``tokenizer`` or ``data:SPLIT``.
    - ``gather(t)``: rows of ``t`` from every process, in rank order; ``broadcast(obj)``: rank 0's object;
      ``compute_once(fn)``: ``fn()`` on rank 0 only, its result on every rank (``lit_iwpo.dist.compute_once``).
    - ``accumulation``: (micro-batch index, micro-batches per optimizer step); ``scale_grads(f)``: rescale the
      gradients accumulated so far (a reduction over the whole step, e.g. DoRA's DRO).
    """

    @property
    def step(self) -> int: ...

    @property
    def stage(self) -> str: ...

    @property
    def rank(self) -> int: ...

    @property
    def world_size(self) -> int: ...

    @property
    def eval_batch_size(self) -> int: ...

    def score(self, batch: PreferenceBatch, model: str = "policy", mode: str = "eval",
              request: ForwardRequest | None = None) -> LogProbs: ...

    def deterministic(self) -> bool: ...

    def split(self, name: str) -> "SplitData | None": ...

    def batch(self, split: str, rows: Sequence[int], system_prompt: str | None = None) -> PreferenceBatch: ...

    def fingerprint(self, what: str) -> str: ...

    def gather(self, tensor: Tensor) -> Tensor: ...

    def broadcast(self, obj: Any) -> Any: ...

    def compute_once(self, fn: Callable[[], T]) -> T: ...

    @property
    def accumulation(self) -> tuple[int, int]:
        """(index of this micro-batch within its optimizer step, micro-batches per step)."""
        ...

    def scale_grads(self, factor: float) -> None:
        """Multiply the gradients accumulated so far in this optimizer step by ``factor``."""
        ...

    def progress(self, iterable: Iterable[T], desc: str, total: int | None = None) -> Iterable[T]:
        """``iterable`` with a progress bar where the run shows progress (long passes over a split)."""
        ...

    def train_sampler(self) -> Any:
        """The data module's training sampler (``data.sampler``, a ``TrainSampler``), e.g. for a weight source
        that resamples; None outside a fit."""
        ...


@dataclass
class StepInputs:
    """One batch as the objective sees it."""

    policy: LogProbs  # with grad in training; logits / embeddings when the request asked for them
    reference: LogProbs | None  # no grad; None when the request says reference: none (SFT in training)
    batch: PreferenceBatch
    stage: str  # "train" | "val" | "test"
    ctx: StepContext | None = None  # the run (scoring, data, ranks); None in unit tests of pure paths
    adapters: dict[str, LogProbs] = field(default_factory=dict)  # requested named adapters (no grad)
