"""Sample weights read from a column of the training data."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from lit_iwpo.data.records import MAX_REPORTED_ERRORS, DataError
from lit_iwpo.errors import ConfigError
from lit_iwpo.objectives.context import StepContext, StepInputs
from lit_iwpo.objectives.weights.base import StoredWeights



def _value_problem(row: dict[str, Any], column: str) -> tuple[float | None, str | None]:
    """(the value as a float, None) or (None, what is wrong with it)."""
    if column not in row or row[column] is None:
        return None, "missing (every training row needs a weight)"
    value = row[column]
    if isinstance(value, (str, bytes)) or not hasattr(value, "__float__"):  # numbers, numpy scalars, bools
        return None, f"must be a number, got {type(value).__name__} {value!r:.40}"
    value = float(value)  # bools (e.g. the scenarios' `relevant`) count as 1 and 0
    if not math.isfinite(value):
        return None, f"must be finite, got {value}"
    if value < 0:
        return None, f"must be >= 0, got {value}"
    return value, None


class ColumnWeights(StoredWeights):
    """Weights from a column of the training rows, looked up per sample id (e.g. a diagnostic weight such
    as the scenarios' ground-truth ``relevant``, or weights computed elsewhere).

    Values must be finite and ≥ 0, and not all zero; bools count as 1/0. A pair of weight 0 contributes
    nothing to the gradient. The weights are fixed for the run and checkpointed with the other state.

    Args:
        column: The column holding the weights.
        normalize: Scale the weights to mean 1 over the training split, so the loss keeps DPO's scale and the
            learning rate its meaning (False: use the values as they are).
        complement: Use 1 − value (values must lie in [0, 1]); with ``column: relevant`` this is the
            anti-oracle, which trains on exactly the pairs the oracle drops.
    """

    def __init__(self, column: str, normalize: bool = True, complement: bool = False) -> None:
        super().__init__()
        if not column:
            raise ConfigError("ColumnWeights needs the name of a column")
        self.column = column
        self.normalize = normalize
        self.complement = complement

    def setup(self, ctx: StepContext) -> None:
        super().setup(ctx)
        train = ctx.split("train")
        if train is None:
            return
        values, problems = [], []
        for i, row in enumerate(train.rows):
            value, problem = _value_problem(row, self.column)
            if problem is None and self.complement:
                if value > 1:
                    problem = f"must lie in [0, 1] for complement: true, got {value}"
                else:
                    value = 1.0 - value
            if problem is not None:
                problems.append(f"{train.where(i, self.column)}: {problem}")
                if len(problems) >= MAX_REPORTED_ERRORS:
                    problems.append("... (further rows not checked)")
                    break
            values.append(value)
        if problems:
            raise DataError(f"{len(problems)} problem(s) with the weight column '{self.column}' of split 'train':\n  "
                            + "\n  ".join(problems))
        w = torch.tensor(values, dtype=torch.float64)
        if w.sum() <= 0:
            raise DataError(f"the weight column '{self.column}' of split 'train' ({', '.join(train.sources)}) gives "
                            f"every pair weight 0{' (complement: true of a column that is 1 everywhere)' if self.complement else ''}: "
                            "nothing would train")
        if self.normalize:
            w = w / w.mean()
        self.store.set_weights(None, w.float(), step=0)

    def train_weights(self, inputs: StepInputs, losses: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        w = self.store.lookup(inputs.batch.ids)
        return w, self.batch_metrics(w, inputs)
