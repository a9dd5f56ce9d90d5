"""Weight sources: where a preference objective's sample weights come from, and the protocols callbacks use.

A weight source gives the weights [B] of each training batch (constants in the gradient). Sources that
keep a per-sample store implement :class:`WeightExport` (statistics and tables for the run directory);
sources whose weights can be re-estimated over the whole training set implement :class:`Refreshable`.
The refresh callback works through these two protocols only.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from lit_iwpo.data.records import as_relevance
from lit_iwpo.models.scoring import ForwardRequest
from lit_iwpo.objectives.context import StepContext, StepInputs
from lit_iwpo.weighting.importance import weight_stats
from lit_iwpo.weighting.store import WeightStore


@runtime_checkable
class WeightExport(Protocol):
    """A source with per-sample weights the run can report and write out."""

    def weight_summary(self) -> dict[str, float]:
        """``iw/*`` statistics of the weights estimated so far (empty when none are)."""

    def estimated_weights(self) -> Tensor:
        """The weights estimated so far [M] (for histograms)."""

    def weight_tables(self, ctx: StepContext) -> dict[str, dict[str, list]]:
        """Tables to write, ``{file prefix: {column: values}}``, e.g. ``{"step": ..., "val_step": ...}``."""


@runtime_checkable
class Refreshable(Protocol):
    """A source whose weights can be re-estimated over the whole training set."""

    refresh_required: bool  # True: its weights come only from refreshes, so a refresh callback must drive it
    refresh_every: int | None  # its own interval in steps, which replaces the callback's; None: the callback's

    def refresh_due(self, step: int) -> bool:
        """Whether a refresh at this step would estimate anything (e.g. not during a warm-up, or between the
        steps of the source's own ``refresh_every``)."""

    def refresh(self, ctx: StepContext, recompute: bool = False) -> bool:
        """Re-estimate; False after a logged fallback. ``recompute``: recompute every input with the current
        policy instead of reusing recorded ones."""


class WeightSource(ABC):
    """Base class of ``objective.weights`` strategies."""

    request: ForwardRequest = ForwardRequest(reference="none")  # extra needs beyond the loss's

    def bind(self, objective: Any) -> None:
        """Called once by the objective that owns this source (sources that need its loss keep it)."""

    def setup(self, ctx: StepContext) -> None:
        """Called in every ``LightningModule.setup``, before a checkpoint is restored."""

    def prepare(self, ctx: StepContext) -> None:
        """Called at fit start, once the model exists and a checkpoint is restored (e.g. fixed weights from a
        classifier); a no-op for sources that estimate as training goes."""

    def sample_groups(self, ids: list[str]) -> list[str] | None:
        """A group name per pair (e.g. its data source) for figures that split by group; None: no groups."""
        return None

    def eval_groups(self, ids: list[str]) -> list[str | None] | None:
        """A group name per evaluation (D_v, D_te) pair that this source assigned (e.g. IWPO's clusters), for
        per-group test figures; None: this source has no such groups."""
        return None

    @abstractmethod
    def train_weights(self, inputs: StepInputs, losses: Tensor) -> tuple[Tensor | None, dict[str, Tensor]]:
        """Weights [B] of this training batch (None: uniform) and extra metrics."""

    def sample_weights(self) -> tuple[list[str], Tensor] | None:
        return None

    def parts(self, model_config: Any) -> dict[str, nn.Module]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        del state


class FixedAtFitStart(ABC):
    """Weights computed once at fit start (unless a restored checkpoint brought them) and recomputed at the
    refresh callback's refreshes when ``refresh_on``: TIS-DPO's token weights, DoRA's calibration weights.
    Subclasses give ``compute(ctx)`` and ``pending`` (there is data to weigh and nothing computed yet)."""

    refresh_on: bool = False
    refresh_required: bool = False
    refresh_every: int | None = None

    @property
    @abstractmethod
    def pending(self) -> bool:
        """There is data to weigh and nothing computed yet."""

    @abstractmethod
    def compute(self, ctx: StepContext) -> Any:
        """Compute (or load from a cache) every weight."""

    def prepare(self, ctx: StepContext) -> None:
        if self.pending:
            self.compute(ctx)

    def refresh_due(self, step: int) -> bool:
        return self.refresh_on

    def refresh(self, ctx: StepContext, recompute: bool = False) -> bool:
        self.compute(ctx)
        return True


class Uniform(WeightSource):
    """Every pair weighs 1 (plain DPO / SFT)."""

    def train_weights(self, inputs: StepInputs, losses: Tensor) -> tuple[Tensor | None, dict[str, Tensor]]:
        return None, {}


def gather(ctx: StepContext | None, t: Tensor) -> Tensor:
    return t if ctx is None else ctx.gather(t)


class StoredWeights(WeightSource):
    """A source that keeps one weight per training pair in a :class:`WeightStore` keyed by sample id.

    The store is saved in checkpoints and read by the deployment evaluation (``iw/auc_relevant``) and the
    weight export. Every process records the global batch, so all stores (and checkpoints) agree.
    """

    transform_dim: int = 1  # columns of per-sample transforms kept beside the weights

    def __init__(self) -> None:
        self.store: WeightStore | None = None
        self.relevant: Tensor | None = None  # [N_tr] 1/0/NaN ground truth, for logging only
        self.groups: list[str] = []
        # every estimate training used: {"step", "index" (store rows it covers), "weights", "uses" (steps weighted)}
        self.estimates: list[dict[str, Any]] = []

    def setup(self, ctx: StepContext) -> None:
        train = ctx.split("train")
        if train is None:
            return  # validate/test/predict without training data: weights are not used
        if self.store is None or self.store.ids != train.ids:
            self.store = WeightStore(train.ids, self.transform_dim)
        self.relevant = torch.tensor([math.nan if (r := as_relevance(row.get("relevant"))) is None else float(r)
                                      for row in train.rows])
        self.groups = [str(r.get("group", "")) for r in train.rows]

    def log_estimate(self, step: int, index: Tensor, weights: Tensor, uses: int = 1) -> None:
        """Keep one estimate (weights of the store rows ``index``) for the per-estimate quality figures."""
        self.estimates.append({"step": int(step), "index": index.detach().cpu().long(),
                               "weights": weights.detach().cpu().float(), "uses": int(uses)})

    def used_estimates(self) -> list[tuple[list[str], Tensor]]:
        """(ids, weights) of every estimate that weighted at least one training step, oldest first."""
        if self.store is None:
            return []
        return [([self.store.ids[i] for i in e["index"].tolist()], e["weights"].clone())
                for e in self.estimates if e["uses"] > 0]

    def batch_metrics(self, w: Tensor, inputs: StepInputs) -> dict[str, Tensor]:
        rel = None if self.relevant is None else self.relevant[inputs.batch.index.cpu()]
        return weight_stats(w, rel)

    def record(self, inputs: StepInputs, w: Tensor, log: bool = False) -> None:
        """Store this global batch's weights (gathered from every process); ``log``: they are an estimate of
        their own (e.g. WPO's per-batch weights), kept for the per-estimate figures."""
        if self.store is None:
            return
        ctx = inputs.ctx
        w_all, index = gather(ctx, w), gather(ctx, inputs.batch.index.to(w.device))
        ids = [self.store.ids[i] for i in index.tolist()]
        step = ctx.step if ctx is not None else 0
        self.store.set_weights(ids, w_all, step)
        if log:
            self.log_estimate(step, self.store.index(ids), w_all)

    # --------------------------------------------------------------- export
    def sample_weights(self) -> tuple[list[str], Tensor] | None:
        """Ids and weights of the training pairs whose weight was actually estimated (a pair never drawn
        after a warm-up still holds its initial 1, which says nothing about the estimator)."""
        if self.store is None:
            return None
        done = self.store.weight_step >= 0
        if not done.any():
            return None
        return [sid for sid, d in zip(self.store.ids, done.tolist()) if d], self.store.weights[done].clone()

    def estimated_weights(self) -> Tensor:
        return torch.empty(0) if self.store is None else self.store.weights[self.store.weight_step >= 0]

    def weight_summary(self) -> dict[str, float]:
        if self.store is None:
            return {}
        done = self.store.weight_step >= 0
        if not done.any():
            return {}
        stats = weight_stats(self.store.weights[done], self.relevant[done])
        stats["iw/ess"] = stats["iw/ess_ratio"] * int(done.sum())
        return {k: float(v) for k, v in stats.items()}

    def weight_tables(self, ctx: StepContext) -> dict[str, dict[str, list]]:
        if self.store is None:
            return {}
        columns = self.store.table()
        table = {"id": columns.pop("id"), "step": [ctx.step] * len(self.store), **columns}
        table["group"] = list(self.groups)
        table["relevant"] = [None if math.isnan(r) else bool(r) for r in self.relevant.tolist()]
        return {"step": table}

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        if self.store is None:
            return {}
        return {"store": self.store.state_dict(), "estimates": [dict(e) for e in self.estimates]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "store" in state and self.store is not None:
            self.store.load_state_dict(state["store"])
        self.estimates = [dict(e) for e in state.get("estimates", [])]
