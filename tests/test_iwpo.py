"""IWPO (our reconstruction): faiss clusters, per-cluster reward normalisation, Bradley–Terry reward heads, the
importance weights, the weighted resampler (frequencies, shards, resume) and the weight source end to end."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch
from torchmetrics.functional.clustering import adjusted_rand_score

from lit_iwpo.cli import cli
from lit_iwpo.data.sampler import ResumableDataLoader, WeightedResampler
from lit_iwpo.weighting.clusters import assign, kmeans, normalise_within, resampling_weights
from lit_iwpo.weighting.reward_model import SHARED, fit_reward_heads
from test_cli import _config

CHI2_999 = {4: 18.467, 9: 27.877}  # chi-square critical values at p = 0.001 (degrees of freedom: value)


def _blobs(n_per: int, centres: torch.Tensor, spread: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.cat([c + spread * torch.randn(n_per, centres.shape[1], generator=g) for c in centres])
    return x, torch.arange(len(centres)).repeat_interleave(n_per)


# ------------------------------------------------------------------------------------------ clusters
def test_faiss_recovers_planted_clusters_and_assigns_new_points():
    g = torch.Generator().manual_seed(0)
    centres = 4.0 * torch.randn(4, 16, generator=g)
    x, truth = _blobs(75, centres, spread=1.0, seed=1)
    centroids, labels = kmeans(x, 4, seed=0)
    assert float(adjusted_rand_score(labels, truth)) >= 0.95
    assert labels[0] == 0 and centroids.shape == (4, 16)  # canonical numbering: the first point's cluster is 0
    again = kmeans(x, 4, seed=0)
    assert torch.equal(again[1], labels) and torch.equal(again[0], centroids)  # deterministic
    new, new_truth = _blobs(20, centres, spread=1.0, seed=2)
    mapping = {int(t): int(l) for t, l in zip(truth, labels)}  # planted cluster -> found cluster
    assert assign(new, centroids).tolist() == [mapping[int(t)] for t in new_truth]
    with pytest.raises(ValueError, match="1 <= clusters <= points"):
        kmeans(x[:3], 4)


def test_per_cluster_normalisation_by_hand():
    r = torch.tensor([1.0, 2.0, 3.0, 10.0, 20.0, 7.0, 5.0, 5.0])
    c = torch.tensor([0, 0, 0, 1, 1, 2, 3, 3])
    s = math.sqrt(2 / 3)  # population sd of (1, 2, 3)
    want = torch.tensor([-1 / s, 0.0, 1 / s, -1.0, 1.0, 0.0, 0.0, 0.0])  # a singleton or a constant cluster: 0
    assert torch.allclose(normalise_within(r, c), want, atol=1e-6)


def test_resampling_weights_by_hand():
    r = torch.tensor([0.0, 1.0, -1.0, 2.0])
    e = [math.exp(v / 0.5) for v in r.tolist()]
    want = torch.tensor([v / (sum(e) / 4) for v in e])
    assert torch.allclose(resampling_weights(r, 0.5), want, rtol=1e-6)
    clipped = resampling_weights(r, 0.5, clip=2.0)
    assert torch.allclose(clipped, want.clamp(max=2.0), rtol=1e-6)  # clipped after normalising, not renormalised
    with pytest.raises(ValueError, match="> 0"):
        resampling_weights(r, 0.0)


# ------------------------------------------------------------------------------------------ reward heads
def test_reward_heads_learn_a_known_linear_reward_per_cluster():
    """Two clusters whose true rewards point opposite ways: a head per cluster learns each (direction cosine ≥ 0.95,
    held-out pair accuracy ≥ 0.9); one shared head cannot serve both. A cluster below min_pairs falls back."""
    g = torch.Generator().manual_seed(0)
    d, n = 8, 200
    theta = torch.randn(d, generator=g)
    a, b = torch.randn(2 * n, d, generator=g), torch.randn(2 * n, d, generator=g)
    cluster = torch.arange(2).repeat_interleave(n)
    true = torch.where(cluster == 0, a @ theta - b @ theta, -(a @ theta) + b @ theta)  # r(a) - r(b) per cluster
    x_w = torch.where((true > 0)[:, None], a, b)
    x_l = torch.where((true > 0)[:, None], b, a)
    heads = fit_reward_heads(x_w, x_l, cluster, layout="per_cluster", min_pairs=16, holdout=0.25, seed=0)
    for c, sign in ((0, 1.0), (1, -1.0)):
        mu, sd, fitted = heads.heads[c]
        direction = fitted / sd  # the head acts on standardised inputs
        assert float(torch.nn.functional.cosine_similarity(direction, sign * theta.double(), dim=0)) >= 0.95
        assert heads.accuracy[c] >= 0.9
        assert heads.pairs[c] == n
    assert not heads.fallback
    shared = fit_reward_heads(x_w, x_l, cluster, layout="shared", holdout=0.25, seed=0)
    assert set(shared.heads) == {SHARED} and min(shared.accuracy.values()) < 0.75
    small = torch.cat([torch.zeros(2 * n - 10, dtype=torch.long), torch.ones(10, dtype=torch.long)])
    fb = fit_reward_heads(x_w, x_l, small, layout="per_cluster", min_pairs=16)
    assert fb.fallback == [1] and 1 not in fb.heads
    r = fb.reward(x_w[-10:], small[-10:])
    mu, sd, t = fb.heads[SHARED]
    assert torch.allclose(r, (((x_w[-10:].double() - mu) / sd) @ t).float())  # scored by the shared head


# ------------------------------------------------------------------------------------------ resampler
def _bound(n: int, rank: int = 0, world: int = 2, seed: int = 0) -> WeightedResampler:
    return WeightedResampler().bind(n, seed=seed, shuffle=True, rank=rank, world_size=world)


def test_resampler_draws_with_the_right_frequencies():
    """10 rows, weights 0..9 (row 0 never drawn); 10^4 epochs of 10 draws = 10^5 draws; chi-square against the
    weights' proportions below the p = 0.001 critical value (8 degrees of freedom would do; 9 is stricter)."""
    w = torch.arange(10, dtype=torch.float64)
    s = _bound(10, world=1)
    s.set_weights(w)
    counts = torch.zeros(10)
    for epoch in range(10_000):
        counts += torch.bincount(torch.tensor(s.order(epoch)), minlength=10)
    assert counts.sum() == 100_000 and counts[0] == 0
    expected = 100_000 * w / w.sum()
    chi2 = float(((counts[1:] - expected[1:]) ** 2 / expected[1:]).sum())
    assert chi2 < CHI2_999[9]
    # and far from uniform: the same statistic against equal shares is huge
    assert float(((counts - 10_000) ** 2 / 10_000).sum()) > 1_000


def test_equal_rewards_in_one_cluster_give_uniform_draws():
    """C = 1 with equal rewards: r̃ = 0, w = 1, and the draws are uniform (chi-square, 5 rows, 10^5 draws)."""
    r = torch.full((5,), 3.0)
    w = resampling_weights(normalise_within(r, torch.zeros(5, dtype=torch.long)), beta=1.0)
    assert torch.equal(w, torch.ones(5))
    s = _bound(5, world=1)
    s.set_weights(w)
    counts = torch.zeros(5)
    for epoch in range(20_000):
        counts += torch.bincount(torch.tensor(s.order(epoch)), minlength=5)
    chi2 = float(((counts - 20_000) ** 2 / 20_000).sum())
    assert counts.sum() == 100_000 and chi2 < CHI2_999[4]


def test_resampler_shards_without_loss_or_repeat_and_resumes_mid_epoch():
    w = torch.tensor([0.5, 1.0, 2.0, 0.1, 3.0, 1.0, 1.0])
    ranks = [_bound(7, rank=r, world=2, seed=5) for r in (0, 1)]
    for s in ranks:
        s.set_weights(w)
        s.set_epoch(3)
    whole = ranks[0].draws(3)
    assert len(whole) == 8 and whole == ranks[1].draws(3)  # every rank draws the same sequence
    orders = [list(iter(s)) for s in ranks]
    assert [len(o) for o in orders] == [4, 4]
    dealt = [orders[i % 2][i // 2] for i in range(8)]
    assert dealt == whole  # each draw on exactly one rank, none lost or repeated
    # another epoch draws differently
    assert ranks[0].draws(4) != whole
    # resume mid-epoch: consume 2 of rank 0's share, checkpoint through the loader, restore into a fresh sampler
    s = _bound(7, rank=0, world=2, seed=5)
    s.set_weights(w)
    s.set_epoch(3)
    loader = ResumableDataLoader(list(range(7)), batch_size=1, sampler=s, progress=lambda: 2)
    first = list(iter(s))
    s.set_weights(torch.ones(7))  # a refresh mid-epoch: it must not change this epoch's draws
    assert list(iter(s)) == first
    state = loader.state_dict()
    fresh = _bound(7, rank=0, world=2, seed=5)
    ResumableDataLoader(list(range(7)), batch_size=1, sampler=fresh).load_state_dict(state)
    assert list(iter(fresh)) == first[2:]
    assert torch.equal(fresh.weights, torch.ones(7, dtype=torch.float64))  # the next epoch uses the new weights
    uniform, weighted = _bound(7, rank=0, world=2, seed=5), _bound(7, rank=0, world=2, seed=5)
    uniform.set_weights(torch.ones(7))
    weighted.set_weights(w)
    assert fresh.draws(4) == uniform.draws(4) != weighted.draws(4)


# ------------------------------------------------------------------------------------------ end to end
IWPO = {"class_path": "lit_iwpo.objectives.DPO",
        "init_args": {"weights": {"class_path": "lit_iwpo.objectives.weights.ClusterRewardWeights",
                                  "init_args": {"clusters": 2, "min_pairs": 4, "beta": 0.5, "use": "resample"}}}}
SPEC = "scenario:helpful_harmless:{}?n_train=24&n_val=4&n_test=4"
CKPT = {"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
        "init_args": {"every_n_train_steps": 2, "save_top_k": -1, "filename": "{step}"}}


def _files():
    return {k: SPEC.format(k) for k in ("train", "val", "test")}


def test_iwpo_end_to_end_weights_draws_metrics_and_bit_exact_resume(tmp_path):
    """On the tiny model: the stored weights are exp(r̃/β_s) at mean 1 of the stored r̃ and reach the sampler; the
    draw counts per cluster and the never-drawn share match the sampler's epoch-0 draws counted here; iwpo/*
    metrics are logged; a run resumed mid-epoch (step 2 of 5) ends with the same weights and parameters."""
    extra = {"model.objective": IWPO, "data.sampler": {"class_path": "lit_iwpo.data.sampler.WeightedResampler"},
             "trainer.max_steps": 5, "data.batch_size": 2, "trainer.callbacks": [CKPT],
             "model.ref_cache_dir": str(tmp_path / "ref")}
    full = cli(["fit", "--config", str(_config(tmp_path / "a", _files(), **extra)), "--test_after_fit", "false",
                "--eval.win_rate", "false"])
    src = full.model.objective.weights
    r_tilde, cluster = src.store.transforms[:, 0], src.store.transforms[:, 1].long()
    assert torch.equal(cluster, src.cluster) and set(cluster.tolist()) == {0, 1}
    assert torch.allclose(src.store.weights, resampling_weights(r_tilde, 0.5), rtol=1e-5)
    sampler = full.datamodule.sampler
    assert torch.allclose(sampler.weights.float(), src.store.weights)
    summary = src.weight_summary()
    assert summary["iwpo/size/0"] + summary["iwpo/size/1"] == 24
    draws = torch.tensor(sampler.draws(0))
    assert summary["iwpo/draws/0"] == float(sum(int(cluster[i] == 0) for i in draws.tolist()))
    assert summary["iwpo/never_drawn"] == pytest.approx(1 - len(set(draws.tolist())) / 24)
    assert 0.0 <= summary["iwpo/rm_accuracy"] <= 1.0
    with open(Path(full.trainer.log_dir) / "metrics.csv") as f:
        cols = next(csv.reader(f))
    assert {"train/iwpo/ess_ratio", "train/iwpo/never_drawn", "train/iwpo/draws/0"} <= set(cols)
    resumed = cli(["fit", "--config", str(_config(tmp_path / "b", _files(), **extra)), "--test_after_fit", "false",
                   "--eval.win_rate", "false",
                   "--ckpt_path", str(Path(full.trainer.log_dir) / "checkpoints" / "step=2.ckpt")])
    assert torch.equal(resumed.model.objective.weights.store.weights, src.store.weights)
    a = {k: v for k, v in full.model.state_dict().items() if "lora_" in k}
    b = {k: v for k, v in resumed.model.state_dict().items() if "lora_" in k}
    assert a and all(torch.equal(a[k], b[k]) for k in a)


def test_iwpo_sampler_and_use_must_agree(tmp_path):
    with pytest.raises(ValueError, match="needs data.sampler: lit_iwpo.data.sampler.WeightedResampler"):
        cli(["fit", "--config", str(_config(tmp_path, _files(), **{"model.objective": IWPO, "trainer.max_steps": 1}))])
    loss = {**IWPO, "init_args": {"weights": {**IWPO["init_args"]["weights"],
                                              "init_args": {**IWPO["init_args"]["weights"]["init_args"], "use": "loss"}}}}
    with pytest.raises(ValueError, match="use: loss weighs the losses"):
        cli(["fit", "--config", str(_config(tmp_path, _files(), **{
            "model.objective": loss, "trainer.max_steps": 1,
            "data.sampler": {"class_path": "lit_iwpo.data.sampler.WeightedResampler"}}))])


def test_iwpo_assigns_test_pairs_to_the_nearest_cluster_and_reports_accuracy_per_cluster(tmp_path):
    """D_te pairs go to the cluster whose centre (the mean of its training pairs' chosen embeddings, read back from
    the per-split embedding cache) is nearest; test_pairs.jsonl names that cluster, and the logged per-cluster test
    accuracy is the share of its pairs ranked right."""
    emb = tmp_path / "emb"
    weights = {**IWPO["init_args"]["weights"], "init_args": {**IWPO["init_args"]["weights"]["init_args"],
                                                             "use": "loss", "cache_dir": str(emb)}}
    run = cli(["fit", "--config", str(_config(tmp_path, _files(), **{
        "model.objective": {**IWPO, "init_args": {"weights": weights}}, "trainer.max_steps": 2})),
        "--eval.win_rate", "false"])
    files = sorted(p.name.split("-")[1] for p in emb.glob("embeddings-*.pt"))
    assert files == ["test", "train", "val"]  # one cache file per split, whatever the pool
    train, test = (torch.load(next(emb.glob(f"embeddings-{s}-*.pt"))) for s in ("train", "test"))
    src = run.model.objective.weights
    assert train.shape[:2] == (24, 2) and test.shape[:2] == (4, 2)
    centres = torch.stack([train[src.cluster == c, 0].mean(0) for c in range(2)])
    nearest = torch.cdist(test[:, 0].double(), centres.double()).argmin(1).tolist()
    records = [json.loads(line) for line in (Path(run.trainer.log_dir) / "test_pairs.jsonl").read_text().splitlines()]
    assert [r["weight_group"] for r in records] == [f"cluster_{c}" for c in nearest]
    logged = run.trainer.callback_metrics
    for c in set(nearest):
        mine = [r["correct"] for r in records if r["weight_group"] == f"cluster_{c}"]
        assert float(logged[f"test/rewards/accuracies/cluster_{c}"]) == pytest.approx(sum(mine) / len(mine))
    assert src.weight_summary()[f"iwpo/test_share/{nearest[0]}"] == pytest.approx(nearest.count(nearest[0]) / 4)
