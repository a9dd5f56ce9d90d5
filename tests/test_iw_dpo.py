"""IW-DPO and WPO: transforms and weights by hand, Algorithm 1's invariants, resume, bad settings."""

import json
import math
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from lit_iwpo.cli import cli
from lit_iwpo.losses.wpo import wpo_pair_weights, wpo_sequence_log_weights
from lit_iwpo.models.logprobs import LogProbs
from lit_iwpo.objectives import DPO, IWDPO, StepInputs
from lit_iwpo.weighting import KLIEP, KMM, DensityRatioEstimator, RuLSIF
from lit_iwpo.weighting.importance import WeightEstimationError, estimate_weights
from lit_iwpo.weighting.store import WeightStore
from lit_iwpo.weighting.transforms import loss_transform, reward_transform
from contexts import LocalContext
from test_cli import _config

T = torch.tensor


def test_transforms_by_hand():
    """π_w = −1, π_l = −3, ref −2, −2, β = 0.1: r = (0.1, −0.1); h = 2, ℓ = log(1 + e^{−0.2}) = 0.598139."""
    args = (T([-1.0]), T([-3.0]), T([-2.0]), T([-2.0]))
    assert torch.allclose(reward_transform(*args, beta=0.1), T([[0.1, -0.1]]))
    assert loss_transform(*args, beta=0.1).item() == pytest.approx(0.598139, abs=1e-6)
    assert loss_transform(*args, beta=0.1).shape == (1, 1)


def test_wpo_weights_by_hand():
    """Chosen: one token with π = (.75, .25) and target 1: ℓ̃ = log .25 − log(.75² + .25²) = log 0.4.
    Rejected: one token with uniform π over 2: ℓ̃ = log .5 − log .5 = 0. w = min(e^{log .4 + 0}, 1) = 0.4."""
    logits = T([[math.log(3.0), 0.0], [0.0, 0.0]])
    token_logps = T([[math.log(0.25)], [math.log(0.5)]])
    mask = T([[True], [True]])
    a = wpo_sequence_log_weights(token_logps, logits, mask)
    assert torch.allclose(a, T([math.log(0.4), 0.0]), atol=1e-6)
    assert wpo_pair_weights(a).item() == pytest.approx(0.4, abs=1e-6)
    assert wpo_pair_weights(T([0.5, 0.5])).item() == 1.0  # clipped at 1


def _inputs(b=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    pol = LogProbs(logps=(-10 * torch.rand(2 * b, generator=g)).requires_grad_())
    ref = LogProbs(logps=-10 * torch.rand(2 * b, generator=g))
    return pol, ref


def _Module(step):
    """Just enough of a run for the objective's training path."""
    return LocalContext(step=step)


class _Batch:
    def __init__(self, b):
        self.ids = [f"s{i}" for i in range(b)]
        self.index = torch.arange(b)

    def __len__(self):
        return len(self.ids)


class Ones(DensityRatioEstimator):
    def _fit_predict(self, ztr, zv):
        return torch.ones(ztr.shape[0], dtype=torch.float32)


def _iw(**kw):
    obj = IWDPO(**kw)
    obj.weights.store = WeightStore([f"s{i}" for i in range(4)], obj.weights.transform_dim)
    obj.weights.n_val = 8
    return obj


def test_warmup_gives_plain_dpo_exactly():
    pol, ref = _inputs()
    dpo = DPO()(StepInputs(pol, ref, _Batch(4), "train"))
    obj = _iw(warmup_steps=5)
    iw = obj(StepInputs(pol, ref, _Batch(4), "train", ctx=_Module(step=4)))
    assert torch.equal(iw.loss, dpo.loss) and torch.equal(iw.weights, torch.ones(4))
    # the transforms are recorded even during warm-up (the refresh pool reuses them): (r_w, r_l) = β(π − π_ref)
    want = 0.1 * torch.stack([pol.logps[:4] - ref.logps[:4], pol.logps[4:] - ref.logps[4:]], -1)
    assert torch.allclose(obj.weights.store.transforms, want.detach()) and obj.weights.store.transform_step.tolist() == [4] * 4
    assert obj.sample_weights() is None  # nothing estimated yet: no weight quality to report


def test_uniform_weights_equal_dpo_after_warmup(monkeypatch):
    pol, ref = _inputs()
    obj = _iw(warmup_steps=0, estimator=Ones())
    monkeypatch.setattr(obj.weights, "val_transforms", lambda ctx, n=None: torch.zeros(8, 2))
    out = obj(StepInputs(pol, ref, _Batch(4), "train", ctx=_Module(step=10)))
    dpo = DPO()(StepInputs(pol, ref, _Batch(4), "train"))
    assert torch.allclose(out.loss, dpo.loss, rtol=0, atol=1e-7)
    out.loss.backward()
    assert pol.logps.grad is not None  # the weighted loss still trains the policy
    assert torch.equal(obj.weights.store.weight_step, T([10, 10, 10, 10]))


def test_estimated_weights_scale_losses(monkeypatch):
    """loss = mean(ŵ ℓ) with the estimator's weights normalised to mean 1 (here ŵ ∝ (1, 1, 3, 3) → (.5, .5, 1.5, 1.5))."""

    class Fixed(DensityRatioEstimator):
        def _fit_predict(self, ztr, zv):
            return T([1.0, 1.0, 3.0, 3.0])

    pol, ref = _inputs()
    obj = _iw(warmup_steps=0, estimator=Fixed())
    monkeypatch.setattr(obj.weights, "val_transforms", lambda ctx, n=None: torch.zeros(8, 2))
    out = obj(StepInputs(pol, ref, _Batch(4), "train", ctx=_Module(step=3)))
    losses = DPO().per_sample_loss(StepInputs(pol, ref, _Batch(4), "train"))
    assert torch.allclose(out.weights, T([0.5, 0.5, 1.5, 1.5]))
    assert out.loss.item() == pytest.approx((T([0.5, 0.5, 1.5, 1.5]) * losses).mean().item(), rel=1e-6)
    assert out.metrics["iw/max"].item() == pytest.approx(1.5)
    ids, w = obj.sample_weights()
    assert ids == ["s0", "s1", "s2", "s3"] and torch.allclose(w, T([0.5, 0.5, 1.5, 1.5]))
    clipped = _iw(warmup_steps=0, estimator=Fixed(), max_weight=1.2)
    monkeypatch.setattr(clipped.weights, "val_transforms", lambda ctx, n=None: torch.zeros(8, 2))
    assert torch.allclose(clipped(StepInputs(pol, ref, _Batch(4), "train", ctx=_Module(3))).weights,
                          T([0.5, 0.5, 1.2, 1.2]))


def _recent_pool_step(monkeypatch, estimator, warmup_steps, steps):
    """IW-DPO with pool: recent, pool_size 6, over 8 stored pairs s0-s7: s4-s7 recorded with transforms
    (0, 1), (2, 3), (4, 5), (6, 7) at ``steps``; one training step at step 5 on the batch s0-s3. Returns the
    objective, the batch's log-probs, the recorded transforms, the pool the estimator saw and the output."""
    pol, ref = _inputs()
    obj = IWDPO(warmup_steps=warmup_steps, pool="recent", pool_size=6, estimator=estimator)
    obj.weights.store = WeightStore([f"s{i}" for i in range(8)], obj.weights.transform_dim)
    obj.weights.n_val = 8
    earlier = torch.arange(8.0).reshape(4, 2)
    for sid, z, step in zip(["s4", "s5", "s6", "s7"], earlier, steps):
        obj.weights.store.record_transforms([sid], z[None], step)
    monkeypatch.setattr(obj.weights, "val_transforms", lambda ctx, n=None: torch.zeros(8, 2))
    seen = {}
    estimate = obj.weights.estimate
    monkeypatch.setattr(obj.weights, "estimate", lambda zt, zv: (seen.setdefault("z", zt.clone()), estimate(zt, zv))[1])
    out = obj(StepInputs(pol, ref, _Batch(4), "train", ctx=_Module(step=5)))
    return obj, pol, ref, earlier, seen, out


def test_recent_pool_estimates_on_the_accumulated_batch(monkeypatch):
    """pool: recent, pool_size 6, batch s0-s3: the pool is the batch + the two latest recorded other pairs
    (s6 at step 3, s5 at step 2; s4 is older, s7 was recorded at step 0). ŵ ∝ (1, 1, 3, 3, 1, 1) is
    normalised over the pool (sum 10 → × 0.6), so the batch gets (.6, .6, 1.8, 1.8)."""

    class Fixed(DensityRatioEstimator):
        def _fit_predict(self, ztr, zv):
            return T([1.0, 1.0, 3.0, 3.0, 1.0, 1.0])

    obj, pol, ref, earlier, seen, out = _recent_pool_step(monkeypatch, Fixed(), warmup_steps=0, steps=[1, 2, 3, 0])
    z_batch = 0.1 * torch.stack([pol.logps[:4] - ref.logps[:4], pol.logps[4:] - ref.logps[4:]], -1).detach()
    assert torch.allclose(seen["z"], torch.cat([z_batch, earlier[[2, 1]]]))
    assert torch.allclose(out.weights, T([0.6, 0.6, 1.8, 1.8]))
    assert torch.allclose(obj.weights.store.weights, T([0.6, 0.6, 1.8, 1.8, 1, 1, 1, 1]))  # only the batch is stored
    with pytest.raises(ValueError, match="pool_size"):
        IWDPO(pool="recent", pool_size=0)


@pytest.mark.parametrize("estimator", [KMM(), KLIEP(), RuLSIF()], ids=["KMM", "KLIEP", "RuLSIF"])
def test_relevant_pairs_get_higher_weight_in_reward_space(estimator):
    """Half the training pairs are relevant: their (r_w, r_l) sit where D_v's do (chosen rewarded);
    irrelevant pairs have the preference reversed. The weights must favour the relevant half."""
    g = torch.Generator().manual_seed(0)
    n = 64
    relevant = torch.arange(n) % 2 == 0
    centre = torch.where(relevant[:, None], T([[0.5, -0.5]]), T([[-0.5, 0.5]]))
    z_tr = centre + 0.25 * torch.randn(n, 2, generator=g)
    z_v = T([[0.5, -0.5]]) + 0.25 * torch.randn(24, 2, generator=g)
    w = estimate_weights(estimator, z_tr, z_v)
    assert w.mean().item() == pytest.approx(1.0, abs=1e-5)
    assert w[relevant].mean() > 1.5 * w[~relevant].mean()
    from lit_iwpo.eval import auc

    assert auc(w, relevant) > 0.8  # KMM zeroes some points of both groups (ties at 0): 0.87 here


def test_nan_transforms_fall_back_to_uniform(monkeypatch):
    pol, ref = _inputs()
    obj = _iw(warmup_steps=0, estimator=KMM())
    monkeypatch.setattr(obj.weights, "val_transforms", lambda ctx, n=None: torch.full((8, 2), float("nan")))
    with pytest.warns(UserWarning, match="using uniform weights"):
        out = obj(StepInputs(pol, ref, _Batch(4), "train", ctx=_Module(step=3)))
    assert torch.isfinite(out.loss) and torch.equal(out.weights, torch.ones(4))
    assert out.metrics["iw/fallback"].item() == 1.0 and obj.weights.fallbacks == 1
    strict = _iw(warmup_steps=0, estimator=KMM(), on_failure="raise")
    monkeypatch.setattr(strict.weights, "val_transforms", lambda ctx, n=None: torch.full((8, 2), float("nan")))
    with pytest.raises(WeightEstimationError, match="non-finite"):
        strict(StepInputs(pol, ref, _Batch(4), "train", ctx=_Module(step=3)))


def test_bad_settings_rejected_at_construction():
    with pytest.raises(ValueError, match="transform"):
        IWDPO(transform="embedding")
    with pytest.raises(ValueError, match="pool"):
        IWDPO(pool="epoch")
    with pytest.raises(ValueError, match="on_failure"):
        IWDPO(on_failure="ignore")


# ------------------------------------------------------------------ end to end on the tiny model
IW = {"class_path": "lit_iwpo.objectives.IWDPO",
      "init_args": {"transform": "reward", "warmup_steps": 2, "val_batch_size": 4,
                    "estimator": {"class_path": "lit_iwpo.weighting.RuLSIF"}}}


def _iw_config(tmp_path, pref_files, objective=IW, callbacks=(), **extra):
    return _config(tmp_path, pref_files, **{"model.objective": objective, "trainer.callbacks": list(callbacks),
                                            "model.lr": 5e-3, **extra})


def test_empty_dv_fails_clearly(tmp_path, pref_files):
    with pytest.raises(ValueError, match="set data.val"):
        cli(["fit", "--config", str(_iw_config(tmp_path, pref_files)), "--data.val", "null"])


def test_test_from_checkpoint_needs_no_dv(tmp_path, pref_files):
    """Only training estimates weights: `lit_iwpo test` of an IW-DPO checkpoint runs without data.val and
    reproduces the test metrics of the end of fit (unweighted losses, same weights)."""
    cfg = _iw_config(tmp_path, pref_files)
    run = cli(["fit", "--config", str(cfg), "--eval.win_rate", "false"])
    fitted = json.loads((Path(run.trainer.log_dir) / "summary.json").read_text())
    ckpt = next((Path(run.trainer.log_dir) / "checkpoints").glob("*.ckpt"))
    tested = cli(["test", "--config", str(cfg), "--data.val", "null", "--ckpt_path", str(ckpt),
                  "--eval.win_rate", "false"])
    for key in ("test/loss", "test/rewards/accuracies", "test/rewards/margins"):
        assert float(tested.trainer.callback_metrics[key]) == pytest.approx(fitted[key], abs=1e-6), key


def test_too_small_dv_and_missing_refresh_fail_clearly(tmp_path, pref_files):
    kliep = {"class_path": "lit_iwpo.objectives.IWDPO",
             "init_args": {"estimator": {"class_path": "lit_iwpo.weighting.KLIEP"}}}
    with pytest.raises(ValueError, match=r"KLIEP needs at least 5 validation points per estimate, but D_v has 4"):
        cli(["fit", "--config", str(_iw_config(tmp_path, pref_files, objective=kliep))])
    refresh = {"class_path": "lit_iwpo.objectives.IWDPO", "init_args": {"pool": "refresh"}}
    with pytest.raises(ValueError, match="needs the ImportanceWeightRefresh callback"):
        cli(["fit", "--config", str(_iw_config(tmp_path, pref_files, objective=refresh))])


REFRESH_CB = {"class_path": "lit_iwpo.callbacks.ImportanceWeightRefresh", "init_args": {"every_n_steps": 3}}
CKPT_CB = {"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
           "init_args": {"every_n_train_steps": 4, "save_top_k": -1, "filename": "{step}"}}


@pytest.mark.parametrize("pool", ["batch", "recent", "refresh"])
def test_weights_written_logged_and_resumed(tmp_path, pref_files, pool):
    objective = {"class_path": "lit_iwpo.objectives.IWDPO",
                 "init_args": {**IW["init_args"], "pool": pool}}
    cfg = dict(objective=objective, callbacks=[REFRESH_CB, CKPT_CB], **{"trainer.max_steps": 9})
    full = cli(["fit", "--config", str(_iw_config(tmp_path / "a", pref_files, **cfg))])
    out = Path(full.trainer.log_dir)
    obj = full.model.objective
    # per-sample weights at each refresh (steps 3, 6, 9 and the epoch ends at 6)
    files = sorted(p.name for p in (out / "weights").glob("step=*.parquet"))
    assert files == ["step=000003.parquet", "step=000006.parquet", "step=000009.parquet"]
    table = pq.read_table(out / "weights" / "step=000009.parquet").to_pandas()
    assert list(table.columns) == ["id", "step", "weight", "weight_step", "z0", "z1", "group", "relevant"]
    assert len(table) == 12 and table["id"].tolist() == obj.weights.store.ids
    assert torch.allclose(torch.tensor(table["weight"].values, dtype=torch.float32), obj.weights.store.weights)
    if pool == "refresh":
        assert obj.weights.store.weight_step.unique().tolist() == [9]
        assert obj.weights.store.weights.mean().item() == pytest.approx(1.0, abs=1e-5)
    else:
        assert (obj.weights.store.weight_step >= 2).sum() > 0  # estimated per batch after warm-up
    assert not torch.equal(obj.weights.store.weights, torch.ones(12))
    summary = json.loads((out / "summary.json").read_text())
    assert {"iw/ess", "iw/ess_ratio", "iw/auc_relevant"} <= set(summary)
    assert 0.0 <= summary["iw/auc_relevant"] <= 1.0
    # resume from the step-4 checkpoint: same weights, same parameters
    ckpt = out / "checkpoints" / "step=4.ckpt"
    state = torch.load(ckpt, weights_only=False)["lit_iwpo"]["objective"]
    assert state["store"]["ids"] == obj.weights.store.ids
    resumed = cli(["fit", "--config", str(_iw_config(tmp_path / "b", pref_files, **cfg)), "--ckpt_path", str(ckpt)])
    robj = resumed.model.objective
    assert torch.equal(robj.weights.store.weights, obj.weights.store.weights)
    assert torch.equal(robj.weights.val_generator.get_state(), obj.weights.val_generator.get_state())
    a = {k: v for k, v in full.model.state_dict().items() if "lora_" in k}
    b = {k: v for k, v in resumed.model.state_dict().items() if "lora_" in k}
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_dv_at_fixed_weight_with_reused_val_transforms_resumes_exactly(tmp_path, pref_files):
    """val_weight 1 on D_tr ∪ D_v and a validation batch scored every 3 steps: no estimate covers a D_v pair,
    and a run resumed from step 4 (inside a reuse window: the batch scored at step 2 weights step 4) ends with
    the same weights, sampler state, reused batch and parameters as the uninterrupted run."""
    objective = {"class_path": "lit_iwpo.objectives.IWDPO",
                 "init_args": {**IW["init_args"], "val_weight": 1.0, "val_transforms_every": 3}}
    cfg = dict(objective=objective, callbacks=[CKPT_CB], **{"trainer.max_steps": 9, "data.train_on": "train+val"})
    full = cli(["fit", "--config", str(_iw_config(tmp_path / "a", pref_files, **cfg)), "--eval.win_rate", "false"])
    src = full.model.objective.weights
    val_ids = set(full.datamodule.splits["val"].ids)
    fixed = [sid in val_ids for sid in src.store.ids]
    assert src.fixed.tolist() == fixed and sum(fixed) == len(val_ids)
    assert all(not fixed[i] for e in src.estimates for i in e["index"].tolist()) and src.estimates
    assert all(s < 0 for s, f in zip(src.store.weight_step.tolist(), fixed) if f)
    assert src._val_cache[0] == 8  # scored at steps 2, 5, 8
    ckpt = Path(full.trainer.log_dir) / "checkpoints" / "step=4.ckpt"
    resumed = cli(["fit", "--config", str(_iw_config(tmp_path / "b", pref_files, **cfg)), "--ckpt_path", str(ckpt),
                   "--eval.win_rate", "false"])
    rsrc = resumed.model.objective.weights
    assert torch.equal(rsrc.store.weights, src.store.weights)
    assert torch.equal(rsrc.val_generator.get_state(), src.val_generator.get_state())
    assert rsrc._val_cache[0] == 8 and torch.equal(rsrc._val_cache[1], src._val_cache[1])
    a = {k: v for k, v in full.model.state_dict().items() if "lora_" in k}
    b = {k: v for k, v in resumed.model.state_dict().items() if "lora_" in k}
    assert a and all(torch.equal(a[k], b[k]) for k in a)


def test_wpo_trains_and_reports_weights(tmp_path, pref_files):
    run = cli(["fit", "--config", str(_iw_config(tmp_path, pref_files, objective={"class_path": "lit_iwpo.objectives.WPO"}))])
    w = run.model.objective.weights.store.weights
    seen = run.model.objective.weights.store.weight_step >= 0
    assert seen.sum() == 8 and (w[seen] <= 1.0).all() and (w[seen] > 0).all()
    summary = json.loads((Path(run.trainer.log_dir) / "summary.json").read_text())
    assert "iw/auc_relevant" in summary


def test_tensorboard_histogram_of_weights(tmp_path):
    from lightning.pytorch.loggers import TensorBoardLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from lit_iwpo.callbacks import ImportanceWeightRefresh

    logger = TensorBoardLogger(tmp_path, name="tb")

    class _Trainer:
        loggers = [logger]

    ImportanceWeightRefresh._histogram(_Trainer(), torch.tensor([0.5, 1.0, 1.5, 1.0]), step=7)
    logger.experiment.flush()
    acc = EventAccumulator(logger.log_dir, size_guidance={"histograms": 0})
    acc.Reload()
    (event,) = acc.Histograms("iw/weights")
    assert event.step == 7 and event.histogram_value.num == 4
    assert event.histogram_value.sum == pytest.approx(4.0) and event.histogram_value.max == pytest.approx(1.5)


def test_refresh_at_epoch_end_only(tmp_path, pref_files):
    """ImportanceWeightRefresh() with its defaults (every epoch) logs at the epoch end without Lightning
    refusing step-level logging there; 12 pairs / batch 2 = 6 steps per epoch, 8 steps in all."""
    objective = {"class_path": "lit_iwpo.objectives.IWDPO",
                 "init_args": {**IW["init_args"], "pool": "refresh"}}
    cb = {"class_path": "lit_iwpo.callbacks.ImportanceWeightRefresh"}
    run = cli(["fit", "--config", str(_iw_config(tmp_path, pref_files, objective=objective, callbacks=[cb],
                                                 **{"trainer.max_steps": 8}))])
    out = Path(run.trainer.log_dir)
    assert sorted(p.name for p in (out / "weights").glob("step=*.parquet")) == ["step=000006.parquet",
                                                                                 "step=000008.parquet"]
    assert run.model.objective.weights.store.weight_step.unique().tolist() == [8]  # re-estimated at the end too
    import csv

    logged = [r for r in csv.DictReader((out / "metrics.csv").open()) if r.get("iw/ess") and not r.get("test/loss")]
    # logged at both epoch ends: the full first epoch and the second, cut short by max_steps
    assert [r["epoch"] for r in logged] == ["0", "1"] and float(logged[0]["iw/fallback"]) == 0.0


def test_single_row_batch_gets_unit_weight():
    obj = _iw(estimator=RuLSIF())
    w, reason = obj.weights.estimate(torch.randn(1, 2), torch.randn(8, 2))
    assert torch.equal(w, torch.ones(1)) and reason is None


class _Rows:
    """A batch of stored rows ``index`` (ids s<i>)."""

    def __init__(self, index):
        self.index = torch.tensor(index)
        self.ids = [f"s{i}" for i in index]

    def __len__(self):
        return len(self.ids)


def _with_dv(obj, n=6, dv=(4, 5), val_weight=1.0):
    """Store s0..s<n-1>, of which ``dv`` are D_v pairs inside the training set."""
    obj.weights.store = WeightStore([f"s{i}" for i in range(n)], obj.weights.transform_dim)
    obj.weights.n_val = 8
    obj.weights.fixed = torch.tensor([i in dv for i in range(n)])
    return obj


@pytest.mark.parametrize("val_weight", [1.0, 2.0])
def test_val_weight_trains_dv_pairs_outside_the_estimate(monkeypatch, val_weight):
    """Batch (s0, s4, s1, s5), s4 and s5 from D_v: the estimator sees only s0 and s1, ŵ ∝ (1, 3) → (.5, 1.5);
    the D_v pairs weigh ``val_weight``, in the warm-up too, and are never stored as estimated."""

    class Fixed(DensityRatioEstimator):
        def _fit_predict(self, ztr, zv):
            seen.append(ztr.clone())
            return T([1.0, 3.0])

    seen = []
    pol, ref = _inputs()
    obj = _with_dv(IWDPO(warmup_steps=2, estimator=Fixed(), val_weight=val_weight))
    monkeypatch.setattr(obj.weights, "val_transforms", lambda ctx, n=None: torch.zeros(8, 2))
    pooled, estimate = [], obj.weights.estimate
    monkeypatch.setattr(obj.weights, "estimate", lambda zt, zv: (pooled.append(zt.clone()), estimate(zt, zv))[1])
    batch = _Rows([0, 4, 1, 5])
    warm = obj(StepInputs(pol, ref, batch, "train", ctx=_Module(step=1)))
    assert torch.equal(warm.weights, T([1.0, val_weight, 1.0, val_weight])) and not seen
    out = obj(StepInputs(pol, ref, batch, "train", ctx=_Module(step=2)))
    z = 0.1 * torch.stack([pol.logps[:4] - ref.logps[:4], pol.logps[4:] - ref.logps[4:]], -1).detach()
    assert len(seen) == 1 and torch.allclose(pooled[0], z[[0, 2]])
    assert torch.allclose(out.weights, T([0.5, val_weight, 1.5, val_weight]))
    losses = DPO().per_sample_loss(StepInputs(pol, ref, batch, "train"))
    assert out.loss.item() == pytest.approx((out.weights * losses).mean().item(), rel=1e-6)
    assert obj.weights.store.weight_step.tolist() == [2, 2, -1, -1, -1, -1]
    ids, w = obj.sample_weights()
    assert ids == ["s0", "s1"] and torch.allclose(w, T([0.5, 1.5]))
    # a batch of D_v pairs only: nothing to estimate
    pol2, ref2 = _inputs(b=2)
    only_dv = obj(StepInputs(pol2, ref2, _Rows([4, 5]), "train",
                             ctx=_Module(step=3)))
    assert torch.equal(only_dv.weights, T([val_weight, val_weight])) and len(seen) == 1
    with pytest.raises(ValueError, match="val_weight"):
        IWDPO(val_weight=-1.0)


def test_val_weight_refresh_and_recent_pools_leave_dv_out(monkeypatch):
    """refresh: only D_tr rows (s0-s3) are recomputed and estimated, D_v rows keep no estimate; recent: the
    accumulated pool never takes a D_v pair's recorded transform."""
    obj = _with_dv(IWDPO(warmup_steps=0, pool="refresh", estimator=Ones(), val_weight=1.0))
    src = obj.weights
    rows_seen, ztr_seen = [], []
    monkeypatch.setattr(src, "_rows_transforms", lambda ctx, split, rows: (rows_seen.append(list(rows)),
                                                                         torch.ones(len(rows), 2))[1])
    est = src.estimate
    monkeypatch.setattr(src, "estimate", lambda zt, zv: (ztr_seen.append(zt.clone()), est(zt, zv))[1])
    assert src.refresh(_Module(step=5))
    assert rows_seen[0] == [0, 1, 2, 3] and ztr_seen[0].shape == (4, 2)  # D_v rows left out
    assert src.store.weight_step.tolist() == [5, 5, 5, 5, -1, -1]
    assert src.estimates[-1]["index"].tolist() == [0, 1, 2, 3]

    recent = _with_dv(IWDPO(warmup_steps=0, pool="recent", pool_size=4, estimator=Ones(), val_weight=1.0))
    for i, step in zip([2, 3, 4, 5], [1, 2, 3, 4]):  # D_v rows s4, s5 recorded latest
        recent.weights.store.record_transforms([f"s{i}"], T([[float(i), 0.0]]), step)
    pooled = []
    monkeypatch.setattr(recent.weights, "val_transforms", lambda ctx, n=None: torch.zeros(8, 2))
    est2 = recent.weights.estimate
    monkeypatch.setattr(recent.weights, "estimate", lambda zt, zv: (pooled.append(zt.clone()), est2(zt, zv))[1])
    pol, ref = _inputs(b=2)
    recent(StepInputs(pol, ref, _Rows([0, 1]), "train", ctx=_Module(step=6)))
    assert pooled[0][2:, 0].tolist() == [3.0, 2.0]  # s3 then s2, never s4/s5


def test_val_transforms_every_k_steps(monkeypatch):
    """val_transforms_every 3: a validation batch is scored at steps 4, 7, 10 and reused in between; the
    reused batch survives a state_dict round trip (exact resume)."""
    calls, seen = [], []

    def watch(obj):
        monkeypatch.setattr(obj.weights, "val_transforms",
                            lambda ctx, n=None: (calls.append(ctx.step), torch.full((8, 2), float(ctx.step)))[1])
        estimate = obj.weights.estimate
        monkeypatch.setattr(obj.weights, "estimate", lambda zt, zv: (seen.append(zv[0, 0].item()), estimate(zt, zv))[1])

    obj = _iw(warmup_steps=4, estimator=Ones(), val_transforms_every=3)
    watch(obj)
    pol, ref = _inputs()
    for step in range(0, 9):
        obj(StepInputs(pol, ref, _Batch(4), "train", ctx=_Module(step=step)))
    assert calls == [4, 7] and seen == [4, 4, 4, 7, 7]
    fresh = _iw(warmup_steps=4, estimator=Ones(), val_transforms_every=3)
    fresh.load_state_dict(obj.state_dict())
    watch(fresh)
    fresh(StepInputs(pol, ref, _Batch(4), "train", ctx=_Module(step=9)))
    fresh(StepInputs(pol, ref, _Batch(4), "train", ctx=_Module(step=10)))
    assert calls == [4, 7, 10] and seen[-2:] == [7, 10]
    with pytest.raises(ValueError, match="val_transforms_every"):
        IWDPO(val_transforms_every=0)


def test_recent_pool_leaves_out_warmup_transforms(monkeypatch):
    """warmup_steps 3, pool_size 6, batch s0-s3: of the recorded s4-s7 (steps 1, 2, 3, 4) only those recorded
    after the warm-up (steps 3 and 4: s6, s7) join the pool, latest first."""

    class Ones(DensityRatioEstimator):
        def _fit_predict(self, ztr, zv):
            return torch.ones(len(ztr))

    _, _, _, earlier, seen, _ = _recent_pool_step(monkeypatch, Ones(), warmup_steps=3, steps=[1, 2, 3, 4])
    assert torch.equal(seen["z"][4:], earlier[[3, 2]])


def test_refresh_recomputes_transforms_unless_recent_enough():
    """Recorded at steps (-1, 1, 5, 8, 10), warm-up 2, refresh at step 10: max age 0 (default) recomputes all;
    3 keeps steps >= 7 (rows 3, 4); null keeps everything after the warm-up (rows 2, 3, 4); `recompute` forces all."""
    def rows(max_age, recompute=False):
        source = IWDPO(warmup_steps=2, pool="refresh", transform_max_age=max_age).weights
        source.store = WeightStore([f"s{i}" for i in range(5)], source.transform_dim)
        for i, step in enumerate([-1, 1, 5, 8, 10]):
            if step >= 0:
                source.store.record_transforms([f"s{i}"], torch.zeros(1, 2), step)
        return source.refresh_rows(10, recompute)

    assert rows(0) == [0, 1, 2, 3, 4]
    assert rows(3) == [0, 1, 2]
    assert rows(None) == [0, 1]
    assert rows(None, recompute=True) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="transform_max_age"):
        IWDPO(transform_max_age=-1)


def test_refresh_every_counts_from_the_end_of_the_warm_up():
    """warm-up 2, every 3: estimates at steps 2, 5, 8, ...; without it every step from the warm-up on is due
    (the callback's schedule decides); only a refresh pool takes an interval, of at least one step."""
    due = [s for s in range(12) if IWDPO(warmup_steps=2, pool="refresh", refresh_every=3).weights.refresh_due(s)]
    assert due == [2, 5, 8, 11]
    assert [s for s in range(5) if IWDPO(warmup_steps=2, pool="refresh").weights.refresh_due(s)] == [2, 3, 4]
    # an interval beyond the run: one estimate, when the warm-up ends (static weights)
    assert [s for s in range(60) if IWDPO(warmup_steps=10, pool="refresh", refresh_every=1000).weights.refresh_due(s)] == [10]
    for bad in (dict(pool="batch", refresh_every=3), dict(pool="refresh", refresh_every=0)):
        with pytest.raises(ValueError, match="refresh_every"):
            IWDPO(**bad)


def test_refresh_every_on_the_objective_equals_the_callbacks_schedule(tmp_path, pref_files):
    """refresh_every 3 (warm-up 3) under a callback that snapshots every 4 steps estimates at steps 3, 6 and 9,
    exactly as a callback every 3 steps does: the same estimates, weights and parameters; snapshots are written
    at both schedules' steps."""
    def run(name, every_n_steps, refresh_every):
        objective = {"class_path": "lit_iwpo.objectives.IWDPO",
                     "init_args": {**IW["init_args"], "pool": "refresh", "warmup_steps": 3, "refresh_every": refresh_every}}
        cb = {"class_path": "lit_iwpo.callbacks.ImportanceWeightRefresh", "init_args": {"every_n_steps": every_n_steps}}
        return cli(["fit", "--config", str(_iw_config(tmp_path / name, pref_files, objective=objective, callbacks=[cb],
                                                      **{"trainer.max_steps": 9})), "--eval.win_rate", "false"])

    by_callback, by_objective = run("callback", 3, None), run("objective", 4, 3)
    a, b = by_callback.model.objective.weights, by_objective.model.objective.weights
    assert [(e["step"], e["uses"]) for e in b.estimates] == [(3, 3), (6, 3), (9, 0)]
    assert [(e["step"], e["uses"]) for e in a.estimates] == [(3, 3), (6, 3), (9, 0)]
    assert all(torch.equal(x["weights"], y["weights"]) for x, y in zip(a.estimates, b.estimates))
    assert torch.equal(a.store.weights, b.store.weights)
    pa_, pb = ({k: v for k, v in r.model.state_dict().items() if "lora_" in k} for r in (by_callback, by_objective))
    assert all(torch.equal(pa_[k], pb[k]) for k in pa_)
    written = sorted(p.name for p in (Path(by_objective.trainer.log_dir) / "weights").glob("step=*.parquet"))
    assert written == [f"step={s:06d}.parquet" for s in (3, 4, 6, 8, 9)]

    # an interval beyond the run (iw_dpo_r_refresh_kliep_once.yaml): the step-3 estimate, the same as above (same
    # policy up to then), weighs every later step and is still the store's weights at the end
    once = run("once", 4, 100).model.objective.weights
    assert [(e["step"], e["uses"]) for e in once.estimates] == [(3, 6)]
    assert torch.equal(once.estimates[0]["weights"], a.estimates[0]["weights"])
    assert torch.equal(once.store.weights, a.estimates[0]["weights"]) and (once.store.weight_step == 3).all()


def test_refresh_transforms_equal_an_independent_eval_forward(tmp_path, pref_files):
    """With LoRA dropout on (train and eval forwards differ), the transforms of the final refresh are the
    rewards β(log π − log π_ref) of every training pair by the final policy in eval mode, computed here
    directly from the peft model's logits (adapter disabled for π_ref)."""
    objective = {"class_path": "lit_iwpo.objectives.IWDPO",
                 "init_args": {**IW["init_args"], "pool": "refresh"}}
    run = cli(["fit", "--config", str(_iw_config(tmp_path, pref_files, objective=objective, callbacks=[REFRESH_CB],
                                                  **{"trainer.max_steps": 6, "model.lora": {
                                                      "r": 4, "alpha": 8, "dropout": 0.3,
                                                      "target_modules": ["q_proj", "v_proj"]}})),
               "--test_after_fit", "false"])
    source = run.model.objective.weights
    assert source.store.transform_step.tolist() == [6] * 12
    dm, policy = run.datamodule, run.model.policy
    batch = dm.pair_batch("train", list(range(12)))
    policy.eval()

    def seq_logps(model):
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits[:, :-1].float()
        token = torch.log_softmax(logits, -1).gather(-1, batch.input_ids[:, 1:, None])[..., 0]
        return (token * batch.loss_mask[:, 1:]).sum(-1)

    with torch.no_grad():
        pol = seq_logps(policy)
        with policy.disable_adapter():
            ref = seq_logps(policy)
    beta = run.model.objective.beta
    want = beta * torch.stack([pol[:12] - ref[:12], pol[12:] - ref[12:]], -1)
    got = source.store.transforms[source.store.index(dm.splits["train"].ids)]
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()
    # and not the training-mode forward (dropout): the comparison can tell the two apart
    policy.train()
    with torch.no_grad():
        noisy = beta * (seq_logps(policy)[:12] - ref[:12])
    assert not torch.allclose(noisy, want[:, 0], atol=1e-5)


def test_estimates_quality_by_hand():
    """w = (2, 1, 1, 0) on relevant (T, F, T, F): pairs (2>1) (2>0) (1=1: ½) (1>0) → AUC 3.5/4; ESS = 16/6 of 4.
    A second estimate, (1, 1) on two relevant pairs, has no AUC and ESS ratio 1."""
    from lit_iwpo.eval.metrics import estimates_quality

    got = estimates_quality([(T([2.0, 1.0, 1.0, 0.0]), [True, False, True, False]), (T([1.0, 1.0]), [True, True])])
    assert got["iw/auc_relevant_used"] == pytest.approx(0.875)
    assert got["iw/ess_ratio_used"] == pytest.approx((16 / 6 / 4 + 1.0) / 2)
    assert got["iw/n_estimates_used"] == 2 and got["iw/n_estimates_auc"] == 1


def _pairwise_auc(w, rel):
    pos = [x for x, r in zip(w, rel) if r]
    neg = [x for x, r in zip(w, rel) if not r]
    return sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))


@pytest.mark.parametrize("pool", ["batch", "refresh"])
def test_weight_figures_describe_the_estimates_training_used(tmp_path, pref_files, pool):
    """batch: one estimate per step after the warm-up (steps 2..8 of 9), each judged on its own 2 pairs;
    refresh (every 3 steps): the refreshes at steps 3 and 6 weighted 3 steps each, the last one (step 9) none.
    The refresh at the last step is also the analysis estimate (all of D_tr, final policy), for free."""
    objective = {"class_path": "lit_iwpo.objectives.IWDPO", "init_args": {**IW["init_args"], "pool": pool}}
    run = cli(["fit", "--config", str(_iw_config(tmp_path, pref_files, objective=objective, callbacks=[REFRESH_CB],
                                                  **{"trainer.max_steps": 9})), "--eval.win_rate", "false"])
    source = run.model.objective.weights
    summary = json.loads((Path(run.trainer.log_dir) / "summary.json").read_text())
    rel = {sid: row["relevant"] for sid, row in zip(run.datamodule.splits["train"].ids, run.datamodule.splits["train"].rows)}
    used = source.used_estimates()
    if pool == "batch":
        assert [e["step"] for e in source.estimates] == list(range(2, 9)) and all(len(i) == 2 for i, _ in used)
        assert "iw/analysis/auc_relevant" not in summary  # not free for the batch pool: off by default
    else:
        assert [(e["step"], e["uses"]) for e in source.estimates] == [(3, 3), (6, 3), (9, 0)]
        assert len(used) == 2 and all(len(i) == 12 for i, _ in used)
        final = source.estimates[-1]["weights"].tolist()
        assert summary["iw/analysis/auc_relevant"] == pytest.approx(_pairwise_auc(final, [rel[i] for i in source.store.ids]))
    aucs = [_pairwise_auc(w.tolist(), [rel[i] for i in ids]) for ids, w in used if len({rel[i] for i in ids}) == 2]
    assert summary["iw/n_estimates_used"] == len(used) and summary["iw/n_estimates_auc"] == len(aucs)
    if aucs:
        assert summary["iw/auc_relevant_used"] == pytest.approx(sum(aucs) / len(aucs))


def test_batch_pool_analysis_estimate_on_request(tmp_path, pref_files):
    """eval.weight_analysis true: an estimate over all of D_tr with the final policy, against all of D_v."""
    run = cli(["fit", "--config", str(_iw_config(tmp_path, pref_files, **{"trainer.max_steps": 4})),
               "--eval.win_rate", "false", "--eval.weight_analysis", "true"])
    summary = json.loads((Path(run.trainer.log_dir) / "summary.json").read_text())
    assert summary["iw/analysis/n_weighted"] == 12 and 0.0 <= summary["iw/analysis/auc_relevant"] <= 1.0


def test_wpo_and_iw_dpo_figures_cover_the_same_pairs(tmp_path, pref_files):
    """WPO trained on D_tr ∪ D_v stores weights for D_v pairs too; the figures leave them out (D_tr only)."""
    wpo = {"class_path": "lit_iwpo.objectives.WPO"}
    run = cli(["fit", "--config", str(_iw_config(tmp_path, pref_files, objective=wpo, **{"trainer.max_steps": 8})),
               "--data.train_on", "train+val", "--eval.win_rate", "false"])
    source = run.model.objective.weights
    val_ids = set(run.datamodule.splits["val"].ids)
    stored = [sid for sid, s in zip(source.store.ids, source.store.weight_step.tolist()) if s >= 0]
    assert any(sid in val_ids for sid in stored)  # the run did weight D_v pairs
    summary = json.loads((Path(run.trainer.log_dir) / "summary.json").read_text())
    assert summary["iw/n_weighted"] == len([sid for sid in stored if sid not in val_ids])


def test_val_warmup_trains_on_dv_batches_first(tmp_path, pref_files, monkeypatch):
    """val_warmup_steps 3 on IW-DPO (warm-up 4): steps 0-2 train on D_v rows (0,1), (2,3), (0,1) (4 pairs,
    batch 2, cycling), so the policy after step 3 equals a DPO run on exactly those batches; no transform is
    recorded for them and the weights start after the warm-up as usual. The loader's training batches are
    never scored (no wasted forward), so the logged train values describe the batches trained on."""
    from lit_iwpo.models.scoring import Scorer

    scored, score = [], Scorer.score

    def recording(self, batch, model="policy", mode="eval", *args, **kwargs):
        if mode == "train":
            scored.append((batch.split, [int(i) for i in batch.index]))
        return score(self, batch, model, mode, *args, **kwargs)

    monkeypatch.setattr(Scorer, "score", recording)
    objective = {"class_path": "lit_iwpo.objectives.IWDPO",
                 "init_args": {**IW["init_args"], "warmup_steps": 4, "val_warmup_steps": 3}}
    run = cli(["fit", "--config", str(_iw_config(tmp_path / "iw", pref_files, objective=objective,
                                                 **{"trainer.max_steps": 3, "trainer.limit_val_batches": 0})),
               "--test_after_fit", "false"])
    assert scored == [("val", [0, 1]), ("val", [2, 3]), ("val", [0, 1])]  # the training forwards: D_v's only
    monkeypatch.undo()  # the plain DPO run below scores as usual
    src = run.model.objective.weights
    assert (src.store.transform_step < 0).all()  # no training batch was trained on
    # the same three D_v batches as the training data of a plain DPO run
    from conftest import write_jsonl
    import json as _json

    val_rows = [_json.loads(x) for x in Path(pref_files["val"]).read_text().splitlines()]
    files = dict(pref_files, train=write_jsonl(tmp_path / "seq" / "train.jsonl", val_rows[0:4] + val_rows[0:2]))
    dpo = cli(["fit", "--config", str(_iw_config(tmp_path / "dpo", files, objective={"class_path": "lit_iwpo.objectives.DPO"},
                                                 **{"trainer.max_steps": 3, "data.shuffle": False})),
               "--test_after_fit", "false"])
    a = {k: v for k, v in run.model.state_dict().items() if "lora_" in k}
    b = {k: v for k, v in dpo.model.state_dict().items() if "lora_" in k}
    assert a and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
