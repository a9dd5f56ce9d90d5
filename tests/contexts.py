"""A one-process StepContext for unit tests: a data module and a scorer, or neither (pure paths)."""

from __future__ import annotations


class LocalContext:
    """Implements ``lit_iwpo.objectives.StepContext`` without Lightning: what a notebook would write."""

    def __init__(self, step: int = 0, stage: str = "train", datamodule=None, scorer=None, params=(),
                 accumulation=(0, 1)) -> None:
        self.step, self.stage = step, stage
        self.rank, self.world_size = 0, 1
        self.datamodule, self.scorer = datamodule, scorer
        self.params, self.accumulation = list(params), accumulation

    def scale_grads(self, factor):
        for p in self.params:
            if p.grad is not None:
                p.grad.mul_(factor)

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

    def batch(self, split, rows, system_prompt=None):
        return self.datamodule.pair_batch(split, list(rows), system_prompt=system_prompt)

    def fingerprint(self, what):
        from lit_iwpo.models.refcache import adapter_fingerprint, data_fingerprint, model_fingerprint, tokenizer_fingerprint

        if what.startswith("data:"):
            return data_fingerprint(self.datamodule.load_split(what[5:]))
        if what == "tokenizer":
            return tokenizer_fingerprint(self.datamodule.tokenizer)
        if what == "policy":
            return model_fingerprint(self.scorer.policy, skip="")
        with self.scorer.reference_model() as ref:
            base = model_fingerprint(ref)
        return base if what == "reference" else adapter_fingerprint(self.scorer._adapter_host(), what, base)

    def gather(self, tensor):
        return tensor

    def broadcast(self, obj):
        return obj

    def compute_once(self, fn):
        return fn()

    def progress(self, iterable, desc, total=None):
        return iterable
