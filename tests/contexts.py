"""A one-process StepContext for unit tests: a data module and a scorer, or neither (pure paths)."""

from __future__ import annotations


class LocalContext:
    """Implements ``lit_iwpo.objectives.StepContext`` without Lightning: what a notebook would write."""

    def __init__(self, step: int = 0, stage: str = "train", datamodule=None, scorer=None) -> None:
        self.step, self.stage = step, stage
        self.rank, self.world_size = 0, 1
        self.datamodule, self.scorer = datamodule, scorer

    @property
    def eval_batch_size(self) -> int:
        return self.datamodule.eval_batch_size if self.datamodule is not None else 4

    def score(self, batch, model="policy", mode="eval", request=None):
        return self.scorer.score(batch, model, mode, request)

    def deterministic(self) -> bool:
        return self.scorer.is_deterministic() if self.scorer is not None else True

    def split(self, name):
        dm = self.datamodule
        return dm.load_split(name) if dm is not None and dm.has_split(name) else None

    def batch(self, split, rows):
        return self.datamodule.pair_batch(split, list(rows))

    def gather(self, tensor):
        return tensor

    def broadcast(self, obj):
        return obj

    def compute_once(self, fn):
        return fn()

    def progress(self, iterable, desc, total=None):
        return iterable
