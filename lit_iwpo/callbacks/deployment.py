"""Deployment evaluation at the end of ``test``: win rate against a baseline, and weight quality."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Optional

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from lit_iwpo.callbacks.artifacts import run_dir
from lit_iwpo.data.records import as_relevance
from lit_iwpo.data.tokenize import prompt_text
from lit_iwpo.eval.judges import Judge, OracleJudge, judge_both_orders
from lit_iwpo.eval.metrics import estimates_quality, group_means, pair_accuracies, weight_quality, win_rate
from lit_iwpo.models.generation import generate_texts
from lit_iwpo.models.loading import cache_root
from lit_iwpo.models.refcache import model_fingerprint, tokenizer_fingerprint
from lit_iwpo.progress import phase, progress


def _gather(obj: list) -> list:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        parts: list = [None] * torch.distributed.get_world_size()
        torch.distributed.all_gather_object(parts, obj)
        return [x for p in parts for x in p]
    return obj


def _read_cache(path: Path | None) -> dict[str, str] | None:
    if path is None or not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # a damaged cache file: generate again (and overwrite it)


def _write_cache(path: Path, answers: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(answers, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)  # atomic: a concurrent reader sees the old file or the whole new one


def load_baseline(path: str):
    """Another run's export (``hf/``, ``lit_iwpo export``): a LoRA adapter, a merged or a full model."""
    from lit_iwpo.models import load_trained

    return load_trained(path, what="eval.baseline")[0]


class DeploymentEval(L.Callback):
    """Scores the trained policy on the deployment test set D_te after ``test`` (also at the end of ``fit``).

    - Win rate: the policy and a baseline generate for every D_te prompt; a judge compares each pair (both
      orders for position-biased judges); ``test/win_rate`` counts ties as half. Generations are written to
      ``generations_test.jsonl`` in the run directory.
    - Per pair and per group: every D_te pair's implicit-reward margin and whether it ranks the pair right go to
      ``test_pairs.jsonl`` (id, group, category, margin, correct; ``weight_group`` where the weight source
      assigns test pairs to groups, e.g. IWPO's clusters), and the accuracy of each ``group`` (and
      ``weight_group``) of test rows is logged as ``test/rewards/accuracies/<group>`` (no generation needed: the fast, low-variance
      companion of the win rate); the win rate per prompt ``category`` (e.g. risky, benign) as
      ``test/win_rate/<category>``.
    - Weight quality, always over D_tr pairs only (so methods that also train on D_v, e.g. WPO on D_tr ∪ D_v,
      compare with IW-DPO over the same pairs): ``iw/auc_relevant`` / ``iw/ess`` of the final stored weights;
      ``iw/auc_relevant_used`` / ``iw/ess_ratio_used``, each estimate training used judged on its own and
      averaged (see ``eval.metrics.estimates_quality``); ``iw/analysis/*``, an analysis estimate (not used in
      training) over all of D_tr with the final policy (``weight_analysis``).
      ``iw/auc_relevant`` is the AUC of the weights for relevant vs irrelevant pairs (training rows with a
      ``relevant`` column), over the pairs whose weight was estimated (``StoredWeights.sample_weights``).

    Args:
        judge: The pairwise judge. None: the scenario's oracle when the test rows come from an embedded
            scenario (they carry a ``scenario`` field), otherwise no win rate.
        baseline: ``reference`` (the base model, adapter disabled) or another run's ``hf/`` folder.
        win_rate: Generate and judge (the costly part: two generations per prompt).
        max_prompts: Judge only the first N test prompts (None: all).
        cache_baseline: With ``baseline: reference``, keep the base model's answers on disk
            (``$LIT_IWPO_CACHE/generations/``) under a key of everything they depend on (the reference's weights,
            the tokenizer, the prompts' token ids, the decoding settings, the batching and the number of
            processes), so runs that share them (seeds, methods of a table) generate them once.
        weight_analysis: The analysis estimate ``iw/analysis/*`` (density-ratio weights): one estimate over all of
            D_tr against all of D_v with the final policy. None: only when it is free (a refresh at the last step
            already made it); true: also otherwise (a forward pass over D_tr); false: never.
    """

    def __init__(self, judge: Optional[Judge] = None, baseline: str = "reference", win_rate: bool = True,
                 max_prompts: Optional[int] = None, weight_analysis: Optional[bool] = None,
                 cache_baseline: bool = True) -> None:
        self.weight_analysis = weight_analysis
        self.cache_baseline = cache_baseline
        self.judge = judge
        self.baseline = baseline
        self.win_rate = win_rate
        self.max_prompts = max_prompts
        self._baseline_model = None
        self._pairs: list[tuple[int, float]] = []  # (test row position, margin) of this rank's test batches

    def _resolve_judge(self, rows: list[dict[str, Any]]) -> Judge | None:
        if self.judge is not None:
            return self.judge
        if rows and all(r.get("scenario") for r in rows):
            return OracleJudge()
        return None

    def _baseline_generate(self, pl_module, batch) -> list[str]:
        if self.baseline == "reference":
            return pl_module.generate(batch, use_adapter=False)
        if self._baseline_model is None:
            self._baseline_model = load_baseline(self.baseline).to(pl_module.device)
        return generate_texts(self._baseline_model, pl_module.tokenizer, batch.input_ids, batch.attention_mask,
                              pl_module.generation, seed_offset=int(batch.index[0]))

    def _baseline_cache(self, trainer, pl_module, data, n_local: int) -> Path | None:
        """Where the reference's answers for this evaluation are kept (None: not cached)."""
        if not self.cache_baseline or self.baseline != "reference":
            return None
        h = hashlib.blake2b(digest_size=16)
        with pl_module.scorer.reference_model() as ref:
            h.update(model_fingerprint(ref).encode())
        h.update(tokenizer_fingerprint(pl_module.tokenizer).encode())
        n = len(data) if self.max_prompts is None else min(self.max_prompts, len(data))
        for sid, prompt in zip(data.ids[:n], data.prompts[:n]):
            h.update(sid.encode())
            h.update(torch.tensor(prompt, dtype=torch.int32).numpy().tobytes())
        h.update(repr((dataclasses.asdict(pl_module.generation), trainer.datamodule.eval_batch_size,
                       trainer.datamodule.pad_to_multiple_of, trainer.world_size, str(trainer.precision),
                       n_local)).encode())
        return cache_root() / "generations" / f"baseline-{h.hexdigest()[:24]}.json"

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        run_dir(trainer)  # a collective the first time: on every rank, before any rank-0-only write

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._pairs = []

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if isinstance(outputs, dict) and "margins" in outputs:
            self._pairs += list(zip(outputs["index"].tolist(), outputs["margins"].tolist()))

    def _per_pair(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, float]:
        """Per-group accuracies from every rank's pairs, and test_pairs.jsonl (rank 0)."""
        pairs = sorted(dict(_gather(self._pairs)).items())  # one entry per row, in split order
        if not pairs:
            return {}
        data = trainer.datamodule.load_split("test")
        records = [{"id": data.ids[i], "group": data.rows[i].get("group"), "category": data.rows[i].get("category"),
                    "contested": data.rows[i].get("contested"), "margin": m, "correct": int(m > 0)} for i, m in pairs]
        for source in pl_module.objective.weight_sources():  # e.g. IWPO's cluster of each test pair
            groups = source.eval_groups([r["id"] for r in records]) if hasattr(source, "eval_groups") else None
            if groups is not None:
                for r, g in zip(records, groups):
                    r["weight_group"] = g
        if trainer.is_global_zero:
            path = run_dir(trainer) / "test_pairs.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        return pair_accuracies(records)

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        values: dict[str, float] = self._per_pair(trainer, pl_module)
        if self.win_rate:
            values.update(self._win_rate(trainer, pl_module))
        values.update(self._weight_quality(trainer, pl_module))
        for name, value in values.items():
            pl_module.log(name, value, on_epoch=True, sync_dist=False, rank_zero_only=False)

    def _win_rate(self, trainer, pl_module) -> dict[str, float]:
        dm = trainer.datamodule
        data = dm.load_split("test")
        positions = data.position()
        judge = self._resolve_judge(data.rows)
        if judge is None:
            rank_zero_info("lit_iwpo: no judge for these test rows (set eval.judge): skipping the win rate")
            return {}
        records = []
        # the first max_prompts rows, then sharded: the same prompts on any number of processes
        loader = dm.prompt_dataloader("test", limit=self.max_prompts)
        cache = self._baseline_cache(trainer, pl_module, data, len(loader.dataset))
        cached = _read_cache(cache)
        with phase(trainer, "win_rate"):
            for batch in progress(loader, desc="win rate: generate + judge", trainer=trainer):
                batch = trainer.strategy.batch_to_device(batch)
                ours = pl_module.generate(batch)
                if cached is not None and all(sid in cached for sid in batch.ids):
                    theirs = [cached[sid] for sid in batch.ids]
                else:
                    theirs = self._baseline_generate(pl_module, batch)
                outcomes = judge_both_orders(judge, batch.rows, ours, theirs)
                records += [{"id": sid, "prompt": prompt_text(row), "policy": a, "baseline": b, "outcome": o}
                            for sid, row, a, b, o in zip(batch.ids, batch.rows, ours, theirs, outcomes)]
        records = sorted(_gather(records), key=lambda r: positions[r["id"]])
        stats = win_rate([r["outcome"] for r in records])
        categories = [data.rows[positions[r["id"]]].get("category") for r in records]
        stats.update({f"win_rate/{c}": v for c, v in group_means([r["outcome"] for r in records], categories).items()})
        if trainer.is_global_zero and cache is not None and cached is None:
            _write_cache(cache, {r["id"]: r["baseline"] for r in records})
        if trainer.is_global_zero:
            path = run_dir(trainer) / "generations_test.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        return {f"test/{k}": v for k, v in stats.items()}

    def _weight_quality(self, trainer, pl_module) -> dict[str, float]:
        weights = pl_module.objective.sample_weights()
        sources = pl_module.objective.weight_sources()

        def own() -> dict[str, float]:  # a source's own figures: DoRA's classifier (dro/*), token weights (tis/*)
            return {k: v for s in sources if hasattr(s, "weight_summary")
                    for k, v in s.weight_summary().items() if k.startswith(("dro/", "tis/"))}

        if weights is None:
            return pl_module.context.compute_once(own)
        dm = trainer.datamodule
        relevance: dict[str, bool | None] = {}
        if dm.has_split("train"):
            split = dm.load_split("train")
            relevance = {sid: as_relevance(row.get("relevant")) for sid, row in zip(split.ids, split.rows)}
        if not any(isinstance(r, bool) for r in relevance.values()):
            rank_zero_warn("lit_iwpo: training rows have no 'relevant' column: iw/auc_relevant not computed")
        deployment = set(dm.load_split("val").ids) if dm.has_split("val") else set()

        def on_dtr(ids: list[str], w: torch.Tensor) -> tuple[list[str], torch.Tensor, list]:
            keep = [k for k, sid in enumerate(ids) if sid not in deployment]
            kept = [ids[k] for k in keep]
            return kept, w[keep], [relevance.get(sid) for sid in kept]

        used = [on_dtr(ids, w) for s in sources if hasattr(s, "used_estimates") for ids, w in s.used_estimates()]
        analysis = None
        for s in sources:
            if hasattr(s, "analysis_weights") and self.weight_analysis is not False:
                analysis = analysis or s.analysis_weights(pl_module.context, compute=bool(self.weight_analysis))

        def figures() -> dict[str, float]:
            ids, w, rel = on_dtr(*weights)
            out = weight_quality(w, rel) if ids else {}
            out.update(own())
            out.update(estimates_quality([(w_, rel_) for ids_, w_, rel_ in used if ids_]))
            if analysis is not None:
                a_ids, a_w, a_rel = on_dtr(*analysis)
                out.update({k.replace("iw/", "iw/analysis/"): v for k, v in weight_quality(a_w, a_rel).items()})
            return out

        # computed once and broadcast, like every weight figure: all ranks log the same values
        return pl_module.context.compute_once(figures)
