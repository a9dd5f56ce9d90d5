"""DoRA's calibration weights as a weight source: h̄ per training pair from a "target vs other" classifier.

Which responses are target ones comes from a data column (``source``: ``target`` / ``synthetic`` / ...; a
string for both responses of a row, or ``{chosen: ..., rejected: ...}``) or, with ``target_from: val``, from
the deployment sample D_v (target) against D_tr (other). A classifier gives p = P(target | x, y) for every
training response: by default logistic regression on frozen pooled embeddings of the base model
(:class:`EmbeddingProbe`, cross-fitted, embeddings cached under a fingerprint), or any Hugging Face sequence
classifier (:class:`HFClassifier`). Then h = 1/(α + a·(1 − p)/p) (α the target share, a the response's
source share) and h̄ = the pair's mean (:mod:`lit_iwpo.weighting.calibration`). Used with the ``DRO``
reduction this is DoRA; with ``Mean`` it is the paper's "reweighting without DRO" ablation.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Optional, Union

import torch
from torch import Tensor

from lit_iwpo.data.records import DataError
from lit_iwpo.errors import ConfigError
from lit_iwpo.models.loading import cache_root
from lit_iwpo.objectives.context import StepContext, StepInputs
from lit_iwpo.objectives.weights.base import FixedAtFitStart, StoredWeights
from lit_iwpo.objectives.weights.embeddings import response_embeddings
from lit_iwpo.weighting.calibration import (
    calibration_weights,
    classifier_quality,
    pair_weights,
    ratio_weights,
    select_l2,
    source_shares,
)
from lit_iwpo.weighting.density_ratio import normalize_mean_one

SIDES = ("chosen", "rejected")


class Classifier(ABC):
    """Gives P(target | x, y) for responses, given the labelled response pool."""

    @abstractmethod
    def probabilities(self, ctx: StepContext, pool: list[tuple[str, int, str]], labels: Tensor,
                      cache_dir: Path) -> Tensor:
        """p [M] for the pool's responses, each (split, row, side); ``labels`` [M] 1 = target."""

    def key(self) -> str:
        return f"{type(self).__name__}{sorted(vars(self).items())}"


def _grid(l2) -> list[float]:
    """EmbeddingProbe's ``l2``, one value or a list, as a list."""
    return list(l2) if isinstance(l2, (list, tuple)) else [l2]


class EmbeddingProbe(Classifier):
    """Logistic regression on frozen pooled embeddings, cross-fitted: each response's p comes from a model
    fitted on the other folds, so the held-out ECE and AUC cover every response. A pool entry whose side is
    ``pair`` stands for the whole pair: its features are the chosen response's embedding minus the rejected
    one's, ordered by the label (so a pair and its flipped twin point in opposite directions).

    Args:
        pooling: ``mean_response`` (mean last hidden state over response tokens) or ``last_prompt``.
        model: ``reference`` (the frozen base) or ``policy`` (the current policy: a refresh then follows it).
        folds: Cross-fitting folds.
        l2: L2 penalty of the logistic regression (on standardised embeddings); a list: the value whose
            out-of-fold probabilities have the lowest log-loss (``dro/classifier_l2``).
    """

    def __init__(self, pooling: str = "mean_response", model: str = "reference", folds: int = 5,
                 l2: Union[float, list[float]] = 1e-2) -> None:
        if model not in ("reference", "policy"):
            raise ConfigError(f"EmbeddingProbe.model must be 'reference' or 'policy', got {model!r}")
        grid = _grid(l2)
        if not grid or any(not v > 0 for v in grid):
            raise ConfigError(f"EmbeddingProbe.l2 must be a positive number or a non-empty list of them, got {l2!r}")
        self.pooling, self.model, self.folds, self.l2 = pooling, model, folds, l2
        self.chosen_l2: float | None = None

    def key(self) -> str:
        return f"{type(self).__name__}{sorted((k, v) for k, v in vars(self).items() if k != 'chosen_l2')}"

    def embeddings(self, ctx: StepContext, pool: list[tuple[str, int, str]], cache_dir: Path) -> Tensor:
        """[M, d]: each entry's response embedding, or for a ``pair`` entry chosen minus rejected."""
        sides = [(s, r, side) for s, r, side in pool if side != "pair"]
        sides += [(s, r, side) for s, r, kind in pool if kind == "pair" for side in SIDES]
        table = response_embeddings(ctx, sides, self.pooling, self.model, cache_dir, desc="calibration: embeddings")
        at = {key: k for k, key in enumerate(sides)}
        return torch.stack([table[at[(s, r, side)]] if side != "pair"
                            else table[at[(s, r, "chosen")]] - table[at[(s, r, "rejected")]]
                            for s, r, side in pool])

    def probabilities(self, ctx, pool, labels, cache_dir):
        x = self.embeddings(ctx, pool, cache_dir)
        # a pair's two responses share a prompt, and so part of their embeddings: they share a fold
        pairs = {key: k for k, key in enumerate(dict.fromkeys((s, r) for s, r, _ in pool))}
        groups = torch.tensor([pairs[(s, r)] for s, r, _ in pool])
        self.chosen_l2, p, _ = select_l2(x, labels, _grid(self.l2), folds=self.folds, groups=groups)
        return p


class HFClassifier(Classifier):
    """Any Hugging Face sequence classifier (a local folder or a hub id) scoring (prompt, response) text pairs.

    Args:
        name_or_path: The classifier.
        target_label: The index of its "target" class.
        batch_size: Pairs per forward.
        max_length: Truncation of the tokenized pair.
    """

    def __init__(self, name_or_path: str, target_label: int = 1, batch_size: int = 16, max_length: int = 512) -> None:
        self.name_or_path, self.target_label = name_or_path, target_label
        self.batch_size, self.max_length = batch_size, max_length

    def probabilities(self, ctx, pool, labels, cache_dir):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from lit_iwpo.data.tokenize import prompt_text, response_text

        tok = AutoTokenizer.from_pretrained(self.name_or_path)
        model = AutoModelForSequenceClassification.from_pretrained(self.name_or_path).eval()
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        model.config.pad_token_id = tok.pad_token_id
        texts = []
        for split, r, side in pool:
            row = ctx.split(split).rows[r]
            texts.append((prompt_text(row), response_text(row[side])))
        probs = []
        with torch.no_grad():
            for i in range(0, len(texts), self.batch_size):
                part = texts[i:i + self.batch_size]
                enc = tok([a for a, _ in part], [b for _, b in part], truncation=True, max_length=self.max_length,
                          padding=True, return_tensors="pt")
                logits = model(**enc).logits.float()
                if logits.shape[-1] == 1:  # one logit: P(target) = sigmoid
                    probs.append(torch.sigmoid(logits[:, 0]))
                else:
                    probs.append(torch.softmax(logits, -1)[:, self.target_label])
        return torch.cat(probs)


class CalibrationWeights(FixedAtFitStart, StoredWeights):
    """Pair weights h̄ from calibration values (DoRA), fixed at fit start (optionally refreshed).

    Beyond DoRA, two options turn the same classifier into importance weights of whole pairs:
    ``unit: pair`` classifies pairs instead of responses, on the label-ordered difference of their two response
    embeddings (a response classifier cannot tell a pair from its flipped twin: both hold the same responses), and
    ``form: ratio`` uses the density ratio w = ((1 − α)/α) · p/(1 − p) of the classifier's p instead of h: the
    target pairs inside the training set (D_v with ``data.train_on: train+val``) weigh 1 and the other pairs get
    w normalised to mean 1 over them (``configs/methods/iw_dpo_embedding_ratio.yaml``).

    Args:
        classifier: ``EmbeddingProbe`` (default: logistic regression on the base model's pooled embeddings)
            or ``HFClassifier``.
        source_column: The data column that names each response's source (``target_from: column``).
        target: The source value that marks the target distribution.
        sources: The allowed source values (an unknown one stops with file, row and field); null: any.
        target_from: ``column`` (the data column) or ``val`` (D_v's responses are the target sample, D_tr's
            the other).
        cache_dir: Where embeddings are cached (default ``$LIT_IWPO_CACHE/calibration``).
        refresh: Recompute at the ``ImportanceWeightRefresh`` callback's refreshes (with
            ``EmbeddingProbe(model: policy)``, on the current policy's embeddings).
        unit: ``response`` (DoRA: p per response, the pair's weight the mean of its two) or ``pair`` (p per pair
            from ``EmbeddingProbe``'s label-ordered pair features; a pair's source is its responses' shared one).
        form: ``calibration`` (DoRA's h = 1/(α + a(1 − p)/p)) or ``ratio`` (the density ratio, see above).
    """

    transform_dim = 2  # kept per pair: (p_chosen, p_rejected); with unit: pair, (p, p)

    def __init__(self, classifier: Optional[Classifier] = None, source_column: str = "source",
                 target: str = "target", sources: Optional[list[str]] = None, target_from: str = "column",
                 cache_dir: Optional[str] = None, refresh: bool = False, unit: str = "response",
                 form: str = "calibration") -> None:
        super().__init__()
        if unit not in ("response", "pair"):
            raise ConfigError(f"objective.weights.unit must be 'response' or 'pair', got {unit!r}")
        if form not in ("calibration", "ratio"):
            raise ConfigError(f"objective.weights.form must be 'calibration' or 'ratio', got {form!r}")
        if unit == "pair" and classifier is not None and not isinstance(classifier, EmbeddingProbe):
            raise ConfigError(f"objective.weights.unit: pair classifies pair features, which only EmbeddingProbe "
                              f"builds (got {type(classifier).__name__})")
        self.unit, self.form = unit, form
        if target_from not in ("column", "val"):
            raise ConfigError(f"objective.weights.target_from must be 'column' or 'val', got {target_from!r}")
        if sources is not None and target not in sources:
            raise ConfigError(f"the target source {target!r} is not among the allowed sources {sources}")
        self.classifier = classifier if classifier is not None else EmbeddingProbe()
        self.source_column, self.target, self.allowed = source_column, target, sources
        self.target_from, self.cache_dir, self.refresh_on = target_from, cache_dir, refresh
        self.pair_sources: list[str] = []  # per training pair, for the dro/share/* figures
        self.pool: list[tuple[str, int, str]] = []
        self.labels: Tensor | None = None
        self.response_sources: list[str] = []
        self.quality: dict[str, float] = {}
        self.ready = False

    # ------------------------------------------------------------------ setup
    def _row_sources(self, split) -> list[tuple[str, str]]:
        out = []
        for i, row in enumerate(split.rows):
            value = row.get(self.source_column)
            if value is None:
                raise DataError(f"{split.where(i, self.source_column)}: missing: DoRA needs each response's source "
                                f"(e.g. {self.target!r}), or objective.weights.target_from: val")
            pair = (value.get("chosen"), value.get("rejected")) if isinstance(value, dict) else (value, value)
            for s in pair:
                if not isinstance(s, str) or not s:
                    raise DataError(f"{split.where(i, self.source_column)}: {value!r} is not a source name "
                                    "(a string, or {chosen: ..., rejected: ...})")
                if self.allowed is not None and s not in self.allowed:
                    raise DataError(f"{split.where(i, self.source_column)}: unknown source {s!r} "
                                    f"(allowed: {', '.join(self.allowed)})")
            out.append(pair)
        return out

    def setup(self, ctx: StepContext) -> None:
        super().setup(ctx)
        train = ctx.split("train")
        if train is None or ctx.stage != "fit":
            return
        self.pool, sources = [], []
        units = SIDES if self.unit == "response" else ("pair",)
        if self.target_from == "column":
            pairs = self._row_sources(train)
            for i, (c, r) in enumerate(pairs):
                if self.unit == "pair" and c != r:
                    raise DataError(f"{train.where(i, self.source_column)}: chosen {c!r}, rejected {r!r}: "
                                    "objective.weights.unit: pair needs one source per pair")
                self.pool += [("train", i, u) for u in units]
                sources += [c, r] if self.unit == "response" else [c]
            self.pair_sources = [c if c == r else f"{c}/{r}" for c, r in pairs]
        else:
            val = ctx.split("val")
            if val is None:
                raise ConfigError("objective.weights.target_from: val needs deployment data: set data.val")
            val_ids, train_ids = set(val.ids), set(train.ids)
            for i, sid in enumerate(train.ids):
                src = self.target if sid in val_ids else "train"
                self.pool += [("train", i, u) for u in units]
                sources += [src] * len(units)
            for i, sid in enumerate(val.ids):
                if sid not in train_ids:
                    self.pool += [("val", i, u) for u in units]
                    sources += [self.target] * len(units)
            self.pair_sources = [self.target if sid in val_ids else "train" for sid in train.ids]
        self.response_sources = sources
        self.labels = torch.tensor([s == self.target for s in sources], dtype=torch.long)
        if not self.labels.any() or self.labels.all():
            raise DataError(f"DoRA's classifier needs both target ({self.target!r}) and other {self.unit}s; the "
                            f"training data has {'only' if self.labels.all() else 'no'} target ones")
        self.ready = False

    def _root(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else cache_root() / "calibration"

    # ---------------------------------------------------------------- compute
    @torch.no_grad()
    def compute(self, ctx: StepContext) -> None:
        """p for every response of the pool, h per response, h̄ per training pair into the store (rank 0
        computes, every rank stores)."""
        def run():
            p = self.classifier.probabilities(ctx, self.pool, self.labels, self._root()).float()
            quality = classifier_quality(p, self.labels)
            chosen_l2 = getattr(self.classifier, "chosen_l2", None)  # set on this rank only: broadcast with p
            if chosen_l2 is not None:
                quality["l2"] = float(chosen_l2)
            return p, quality

        p, quality = ctx.compute_once(run)
        shares = source_shares(self.response_sources)
        if self.form == "calibration":
            a = torch.tensor([shares[s] for s in self.response_sources])
            h = calibration_weights(p, shares[self.target], a)
        else:
            h = ratio_weights(p, shares[self.target])
        n = len(self.store)
        train_rows = [k for k, (split, _, _) in enumerate(self.pool) if split == "train"]
        h_train, p_train = h[train_rows].view(n, -1), p[train_rows].view(n, -1).expand(n, 2)
        w = pair_weights(h_train[:, 0], h_train[:, -1])
        if self.form == "ratio":  # target pairs weigh 1; the others the ratio, normalised to mean 1 over them
            target = torch.tensor([s == self.target for s in self.pair_sources])
            w[target] = 1.0
            if not target.all():
                w[~target] = normalize_mean_one(w[~target])
        self.store.set_weights(None, w, ctx.step)
        self.store.record_transforms(list(self.store.ids), p_train, ctx.step)
        self.log_estimate(ctx.step, torch.arange(n), self.store.weights.clone())
        self.quality = {f"dro/classifier_{k}": v for k, v in quality.items()}  # ece, auc (and the L2 picked)
        self.ready = True

    @property
    def pending(self) -> bool:
        return self.labels is not None and not self.ready

    # ------------------------------------------------------------------- step
    def train_weights(self, inputs: StepInputs, losses: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        if not self.ready:
            raise RuntimeError("calibration weights are not computed yet (they are prepared at fit start)")
        w = self.store.lookup(inputs.batch.ids)
        return w, {"dro/h_mean": w.mean(), "dro/h_min": w.min(), "dro/h_max": w.max()}

    def sample_groups(self, ids: list[str]) -> list[str]:
        """The source of each pair (``chosen/rejected`` when they differ)."""
        idx = self.store.index(ids).tolist()
        return [self.pair_sources[i] for i in idx]

    def weight_summary(self) -> dict[str, float]:
        out = super().weight_summary()
        if self.ready:
            w = self.store.weights
            out.update(self.quality)
            out.update({"dro/h_mean": float(w.mean()), "dro/h_min": float(w.min()), "dro/h_max": float(w.max())})
            for s in sorted(set(self.pair_sources)):
                sel = torch.tensor([g == s for g in self.pair_sources])
                out[f"dro/h_mean/{s}"] = float(w[sel].mean())
        return out

    def weight_tables(self, ctx: StepContext) -> dict[str, dict[str, list]]:
        tables = super().weight_tables(ctx)
        if "step" in tables:
            tables["step"]["source"] = list(self.pair_sources)
        return tables

    def settings(self) -> str:
        """What the stored weights depend on besides the data and model (checked when a checkpoint loads)."""
        return (f"{self.classifier.key()}|{self.source_column}|{self.target}|{self.target_from}|{self.unit}|"
                f"{self.form}")

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        if self.ready:
            state.update(quality=dict(self.quality), ready=True, settings=self.settings())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("ready") and state.get("settings") != self.settings():
            # weights of another classifier or source setting: recompute them at fit start instead
            state = {k: v for k, v in state.items() if k not in ("store", "ready", "quality")}
        super().load_state_dict(state)
        if state.get("ready"):
            self.quality, self.ready = dict(state["quality"]), True
