"""IWPO's pair weights (a reconstruction: only the paper's abstract is public; see docs and methods.md §5).

At fit start (and at the ``ImportanceWeightRefresh`` callback's refreshes with ``refresh: true``):

1. **Embeddings** of every training response, pooled from the frozen base (or the current policy), cached
   (:func:`~lit_iwpo.objectives.weights.embeddings.response_embeddings`).
2. **Clusters**: faiss k-means into ``clusters`` clusters on the chosen responses' embeddings (a pair's cluster is
   its chosen response's). New data is assigned to the nearest centroid: D_v's pairs (``iwpo/val_share/<c>``)
   and D_te's (``iwpo/test_share/<c>``; the deployment evaluation then also logs the test accuracy per cluster,
   ``test/rewards/accuracies/cluster_<c>``).
3. **Multi-cluster reward model (MCRM)**: a Bradley–Terry reward head per cluster on the embeddings (or one
   shared head: ``layout: shared``); a cluster with fewer than ``min_pairs`` pairs falls back to the shared head
   with a warning. Rewards of both responses of every pair are z-normalised within the pair's cluster. The
   heads are fitted here, before training (a stage inside fit start, not trainable module parameters).
4. **IRPSS**: w ∝ exp(r̃(x, y_w) / β_s), self-normalised to mean 1, optionally clipped. ``use: resample`` (the
   paper's route) hands w to the data module's :class:`~lit_iwpo.data.sampler.WeightedResampler`
   (``data.sampler``), which draws each epoch's training pairs with replacement in proportion to w, and the
   loss weighs every drawn pair 1; ``use: loss`` keeps the usual order and weighs each pair's loss by w.

Metrics ``iwpo/*``: the ESS ratio of w, each cluster's size and (resampling) its draws this epoch, the share of
pairs never drawn this epoch, the reward heads' held-out pair accuracy (per cluster and overall).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any, Optional

import torch
from torch import Tensor

from lit_iwpo.errors import ConfigError
from lit_iwpo.models.loading import cache_root
from lit_iwpo.objectives.context import StepContext, StepInputs
from lit_iwpo.objectives.weights.base import FixedAtFitStart, StoredWeights
from lit_iwpo.objectives.weights.embeddings import response_embeddings
from lit_iwpo.weighting.clusters import assign, cluster_summary, kmeans, normalise_within, resampling_weights
from lit_iwpo.weighting.reward_model import LAYOUTS, fit_reward_heads

USES = ("resample", "loss")


class ClusterRewardWeights(FixedAtFitStart, StoredWeights):
    """IWPO: importance weights of pairs from a multi-cluster reward model, used to resample or to weigh.

    Args:
        clusters: C, the number of faiss k-means clusters (1: no clustering, the ablation).
        layout: ``per_cluster`` (a reward head per cluster) or ``shared`` (one head, rewards normalised per
            cluster).
        min_pairs: Clusters with fewer training pairs use the shared head (with a warning).
        beta: β_s, the temperature of w ∝ exp(r̃ / β_s).
        clip: Largest weight after normalising to mean 1 (null: none).
        use: ``resample`` (draws ∝ w through ``data.sampler: WeightedResampler``) or ``loss`` (loss weights).
        pooling: Embedding pooling, ``mean_response`` or ``last_prompt``.
        model: ``reference`` (the frozen base) or ``policy`` (with ``refresh: true``, re-embedded at refreshes).
        holdout: Share of each cluster's pairs held out to measure its head's accuracy (then refitted on all).
        l2: L2 penalty of the heads.
        seed: Seed of k-means and of the held-out split.
        cache_dir: Where embeddings are cached (default ``$LIT_IWPO_CACHE/embeddings``).
        refresh: Recompute at the refresh callback's refreshes.
    """

    transform_dim = 2  # per pair: (r̃ of the chosen response, its cluster)

    def __init__(self, clusters: int = 4, layout: str = "per_cluster", min_pairs: int = 16, beta: float = 1.0,
                 clip: Optional[float] = None, use: str = "resample", pooling: str = "mean_response",
                 model: str = "reference", holdout: float = 0.2, l2: float = 1e-2, seed: int = 0,
                 cache_dir: Optional[str] = None, refresh: bool = False) -> None:
        super().__init__()
        if clusters < 1:
            raise ConfigError(f"objective.weights.clusters must be >= 1, got {clusters}")
        if layout not in LAYOUTS:
            raise ConfigError(f"objective.weights.layout must be one of {LAYOUTS}, got {layout!r}")
        if use not in USES:
            raise ConfigError(f"objective.weights.use must be one of {USES}, got {use!r}")
        if not beta > 0:
            raise ConfigError(f"objective.weights.beta (β_s) must be > 0, got {beta}")
        if clip is not None and clip < 1:
            raise ConfigError(f"objective.weights.clip must be >= 1 (weights have mean 1), got {clip}")
        if model not in ("reference", "policy"):
            raise ConfigError(f"objective.weights.model must be 'reference' or 'policy', got {model!r}")
        self.n_clusters, self.layout, self.min_pairs, self.beta, self.clip = clusters, layout, min_pairs, beta, clip
        self.use, self.pooling, self.model, self.holdout, self.l2 = use, pooling, model, holdout, l2
        self.seed, self.cache_dir, self.refresh_on = seed, cache_dir, refresh
        self.cluster: Tensor | None = None  # [N_tr] each pair's cluster
        self.assigned: dict[str, int] = {}  # D_v and D_te pairs (not in training) -> their nearest centroid
        self.projection: Tensor | None = None  # [N_tr, 2] the chosen embeddings' first two principal components
        self.quality: dict[str, float] = {}
        self.ready = False
        self._sampler: Any = None
        self._draw_stats: tuple[int, dict[str, float]] | None = None

    # ------------------------------------------------------------------ setup
    def setup(self, ctx: StepContext) -> None:
        super().setup(ctx)
        if ctx.split("train") is None or ctx.stage != "fit":
            return
        sampler = ctx.train_sampler()
        if self.use == "resample":
            if sampler is None or not hasattr(sampler, "set_weights"):
                raise ConfigError("IWPO with use: resample needs data.sampler: lit_iwpo.data.sampler.WeightedResampler "
                                  f"(got {type(sampler).__name__}); or objective.weights.use: loss")
            self._sampler = sampler
        elif sampler is not None and hasattr(sampler, "set_weights"):
            raise ConfigError("IWPO with use: loss weighs the losses: data.sampler: WeightedResampler would resample "
                              "with uniform weights; drop it, or use: resample")

    @property
    def pending(self) -> bool:
        return self.store is not None and not self.ready

    # ---------------------------------------------------------------- compute
    @torch.no_grad()
    def compute(self, ctx: StepContext) -> None:
        n = len(self.store)
        train_ids = set(self.store.ids)
        new = {}  # split -> its rows that are not training pairs (D_v may be part of the training set)
        for split in ("val", "test"):
            data = ctx.split(split)
            if data is not None:
                new[split] = [i for i, sid in enumerate(data.ids) if sid not in train_ids]

        def run():
            pool = [("train", i, side) for i in range(n) for side in ("chosen", "rejected")]
            pool += [(split, i, "chosen") for split, rows in new.items() for i in rows]
            root = Path(self.cache_dir) if self.cache_dir else cache_root() / "embeddings"
            x = response_embeddings(ctx, pool, self.pooling, self.model, root, desc="iwpo: embeddings")
            x_w, x_l = x[0:2 * n:2], x[1:2 * n:2]
            k = min(self.n_clusters, n)
            centroids, cluster = kmeans(x_w, k, seed=self.seed)
            heads = fit_reward_heads(x_w, x_l, cluster, layout=self.layout, min_pairs=self.min_pairs, l2=self.l2,
                                     holdout=self.holdout, seed=self.seed)
            r = heads.reward(torch.cat([x_w, x_l]), torch.cat([cluster, cluster]))
            r_tilde = normalise_within(r, torch.cat([cluster, cluster]))[:n]
            w = resampling_weights(r_tilde, self.beta, self.clip)
            x_new = x[2 * n:]
            new_cluster = assign(x_new, centroids) if len(x_new) else torch.empty(0, dtype=torch.long)
            centred = x_w.double() - x_w.double().mean(0)
            _, _, v = torch.linalg.svd(centred, full_matrices=False)  # the chosen embeddings' first two PCs
            proj = (centred @ v[:2].T).float()
            return w, r_tilde, cluster, new_cluster, heads.accuracy, heads.pairs, heads.fallback, proj

        w, r_tilde, cluster, new_cluster, accuracy, pairs, fallback, proj = ctx.compute_once(run)
        if fallback:
            warnings.warn(f"IWPO: clusters {fallback} have fewer than {self.min_pairs} training pairs "
                          f"({[pairs[c] for c in fallback]}): they use the shared reward head", stacklevel=2)
        self.cluster, self.projection = cluster, proj
        self.store.set_weights(None, w, ctx.step)
        self.store.record_transforms(list(self.store.ids), torch.stack([r_tilde, cluster.float()], 1), ctx.step)
        self.log_estimate(ctx.step, torch.arange(n), w.clone())
        k = int(cluster.max()) + 1
        quality = {f"iwpo/{key}": v for key, v in cluster_summary(w, cluster, k).items()}
        for c, acc in accuracy.items():
            quality[f"iwpo/rm_accuracy/{c}"] = acc
        if accuracy:  # overall held-out accuracy: clusters weighted by their held-out pairs ~ by their size
            quality["iwpo/rm_accuracy"] = sum(acc * pairs[c] for c, acc in accuracy.items()) / sum(
                pairs[c] for c in accuracy)
        quality["iwpo/clusters"] = float(k)
        quality["iwpo/fallback_clusters"] = float(len(fallback))
        self.assigned, start = {}, 0
        for split, rows in new.items():
            assigned = new_cluster[start:start + len(rows)]
            start += len(rows)
            ids = ctx.split(split).ids
            self.assigned.update({ids[i]: int(c) for i, c in zip(rows, assigned.tolist())})
            for c in range(k):
                if len(rows):
                    quality[f"iwpo/{split}_share/{c}"] = float((assigned == c).float().mean())
        self.quality = quality
        if self._sampler is not None:
            self._sampler.set_weights(w)
        self._draw_stats = None
        self.ready = True

    # ------------------------------------------------------------------- step
    def draw_stats(self) -> dict[str, float]:
        """Draws per cluster in the sampler's current epoch, and the share of pairs it never draws (resample)."""
        sampler = self._sampler
        if sampler is None or self.cluster is None:
            return {}
        if self._draw_stats is None or self._draw_stats[0] != sampler.epoch:
            draws = torch.tensor(sampler.draws(sampler.epoch))
            counts = torch.bincount(draws, minlength=len(self.cluster))
            stats = {"iwpo/never_drawn": float((counts == 0).float().mean())}
            for c in range(int(self.cluster.max()) + 1):
                stats[f"iwpo/draws/{c}"] = float(counts[self.cluster == c].sum())
            self._draw_stats = (sampler.epoch, stats)
        return self._draw_stats[1]

    def train_weights(self, inputs: StepInputs, losses: Tensor) -> tuple[Tensor | None, dict[str, Tensor]]:
        if not self.ready:
            raise RuntimeError("IWPO weights are not computed yet (they are prepared at fit start)")
        metrics = {k: torch.tensor(v) for k, v in self.draw_stats().items()}
        metrics["iwpo/ess_ratio"] = torch.tensor(self.quality.get("iwpo/ess_ratio", math.nan))
        if self.use == "resample":
            return None, metrics
        w = self.store.lookup(inputs.batch.ids)
        return w, metrics

    def sample_groups(self, ids: list[str]) -> list[str] | None:
        if self.cluster is None:
            return None
        return [f"cluster {int(self.cluster[i])}" for i in self.store.index(ids).tolist()]

    def eval_groups(self, ids: list[str]) -> list[str | None]:
        """Each evaluation pair's cluster (``cluster_<c>``; None for a pair not assigned at fit start)."""
        return [f"cluster_{self.assigned[sid]}" if sid in self.assigned else None for sid in ids]

    def weight_summary(self) -> dict[str, float]:
        out = super().weight_summary()
        if self.ready:
            out.update(self.quality)
            out.update(self.draw_stats())
        return out

    def weight_tables(self, ctx: StepContext) -> dict[str, dict[str, list]]:
        tables = super().weight_tables(ctx)
        if "step" in tables and self.cluster is not None:
            tables["step"]["cluster"] = self.cluster.tolist()
            if self.projection is not None:
                tables["step"]["pc1"] = self.projection[:, 0].tolist()
                tables["step"]["pc2"] = self.projection[:, 1].tolist()
            if self._sampler is not None:
                counts = torch.bincount(torch.tensor(self._sampler.draws(self._sampler.epoch)),
                                        minlength=len(self.cluster))
                tables["step"]["draws"] = counts.tolist()
        return tables

    # ------------------------------------------------------------------ state
    def settings(self) -> str:
        """What the stored weights depend on besides the data and model (checked when a checkpoint loads)."""
        return (f"{self.n_clusters}|{self.layout}|{self.min_pairs}|{self.beta}|{self.clip}|{self.pooling}|"
                f"{self.model}|{self.holdout}|{self.l2}|{self.seed}")

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        if self.ready:
            state.update(quality=dict(self.quality), cluster=self.cluster.clone(), ready=True,
                         projection=self.projection, settings=self.settings(), assigned=dict(self.assigned))
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("ready") and state.get("settings") != self.settings():
            state = {k: v for k, v in state.items()
                     if k not in ("store", "ready", "quality", "cluster", "projection", "assigned")}
        super().load_state_dict(state)
        if state.get("ready"):
            self.quality, self.cluster, self.ready = dict(state["quality"]), state["cluster"], True
            self.projection = state.get("projection")
            self.assigned = dict(state.get("assigned", {}))
            self._draw_stats = None
