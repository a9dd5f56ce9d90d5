"""DoRA: the DRO reduction over the global batch (by hand, limits, accumulation, two gloo processes) and the
calibration weights."""

import math
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lit_iwpo.losses import weighted_mean
from lit_iwpo.losses.dro import dro_exponents, log_mean_exp
from lit_iwpo.objectives import DRO
from contexts import LocalContext

T = torch.tensor


def test_gradient_is_the_softmax_weighting_by_hand():
    """h = 1, λ = 1, ℓ = (.2, .5, 1): L = log mean e^ℓ = log(5.58843 / 3); ∂L/∂ℓ = e^ℓ / Σ e^ℓ
    = (1.22140, 1.64872, 2.71828) / 5.58840 = (.218560, .295026, .486414)."""
    losses = T([0.2, 0.5, 1.0], requires_grad=True)
    loss = DRO()(losses, torch.ones(3), None)
    assert loss.item() == pytest.approx(math.log((math.exp(0.2) + math.exp(0.5) + math.e) / 3), abs=1e-6)
    loss.backward()
    assert torch.allclose(losses.grad, T([0.218560, 0.295026, 0.486414]), atol=1e-5)


def test_forms_by_hand():
    """h̄ = (2, .5), ℓ = (1, 3), λ = 2: inside λ log mean e^{h ℓ/λ} = 2 log((e^1 + e^.75)/2); outside
    2 log((2 e^.5 + .5 e^1.5)/2); none 2 log((e^.5 + e^1.5)/2)."""
    losses, h = T([1.0, 3.0]), T([2.0, 0.5])
    want = {"inside": 2 * math.log((math.e + math.exp(0.75)) / 2),
            "outside": 2 * math.log((2 * math.exp(0.5) + 0.5 * math.exp(1.5)) / 2),
            "none": 2 * math.log((math.exp(0.5) + math.exp(1.5)) / 2)}
    for form, value in want.items():
        assert DRO(lambda_=2.0, form=form)(losses, h, None).item() == pytest.approx(value, abs=1e-6), form
    with pytest.raises(ValueError, match="lambda_"):
        DRO(lambda_=0.0)
    with pytest.raises(ValueError, match="form"):
        DRO(form="sideways")


def test_large_lambda_tends_to_the_weighted_mean_and_small_lambda_is_stable():
    losses = T([0.3, 2.0, 0.7, 1.1], requires_grad=True)
    h = T([1.5, 0.5, 1.0, 1.0])
    big = DRO(lambda_=1e6)(losses, h, None)
    big.backward()
    grad_big = losses.grad.clone()
    losses.grad = None
    mean = weighted_mean(losses, h)
    mean.backward()
    assert big.item() == pytest.approx(mean.item(), rel=1e-5)
    assert torch.allclose(grad_big, losses.grad, rtol=1e-4)
    tiny = DRO(lambda_=1e-4)(T([30.0, 31.0]), None, None)  # exp(3e5) would overflow without the log-sum-exp
    assert math.isfinite(tiny.item()) and tiny.item() == pytest.approx(31.0 - 1e-4 * math.log(2), abs=1e-4)


def _model_losses(theta, x):
    """A toy differentiable per-sample loss: softplus(x · θ)."""
    return torch.nn.functional.softplus(x @ theta)


def test_accumulated_micro_batches_give_the_global_gradient_exactly():
    """6 pairs in 3 micro-batches of 2 (Lightning divides each loss by 3 before backward): the accumulated
    gradient and the last logged value equal the one-shot DRO over all 6."""
    g = torch.Generator().manual_seed(0)
    x, h = torch.randn(6, 3, generator=g), 0.5 + torch.rand(6, generator=g)
    theta = torch.randn(3, generator=g, requires_grad=True)
    full = log_mean_exp(dro_exponents(_model_losses(theta, x), 1.0, h)[0], 1.0)
    (want,) = torch.autograd.grad(full, theta)
    dro = DRO()
    for m in range(3):
        ctx = LocalContext(params=[theta], accumulation=(m, 3))
        rows = slice(2 * m, 2 * m + 2)
        loss = dro(_model_losses(theta, x[rows]), h[rows], ctx)
        (loss / 3).backward()
    assert torch.allclose(theta.grad, want, atol=1e-6)
    assert loss.item() == pytest.approx(full.item(), abs=1e-6)
    # the next optimizer step starts afresh
    theta.grad = None
    loss = dro(_model_losses(theta, x[:2]), h[:2], LocalContext(params=[theta], accumulation=(0, 3)))
    assert loss.item() == pytest.approx(log_mean_exp(dro_exponents(_model_losses(theta, x[:2]), 1.0, h[:2])[0], 1.0).item(), abs=1e-6)


class _RankContext(LocalContext):
    def __init__(self, rank, world, params, accumulation):
        super().__init__(params=params, accumulation=accumulation)
        self.rank, self.world_size = rank, world

    def gather(self, tensor):
        parts = [torch.empty_like(tensor) for _ in range(self.world_size)]
        dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts)


def _two_rank_worker(rank, world, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    g = torch.Generator().manual_seed(0)
    x, h = torch.randn(8, 3, generator=g), 0.5 + torch.rand(8, generator=g)
    theta = torch.randn(3, generator=g, requires_grad=True)
    dro = DRO(lambda_=0.7)
    # global batch of 8 = 2 micro-batches × 2 ranks × 2 pairs; rank r holds rows r*2.. of each micro-batch
    for m in range(2):
        rows = [4 * m + 2 * rank, 4 * m + 2 * rank + 1]
        loss = dro(_model_losses(theta, x[rows]), h[rows], _RankContext(rank, world, [theta], (m, 2)))
        (loss / 2).backward()
    dist.all_reduce(theta.grad)
    theta.grad /= world  # DDP averages
    if rank == 0:
        torch.save({"grad": theta.grad, "loss": loss.detach()}, out)
    dist.destroy_process_group()


def test_two_processes_equal_one_on_the_same_global_batch(tmp_path):
    out = tmp_path / "grad.pt"
    port = 29500 + os.getpid() % 1000
    mp.spawn(_two_rank_worker, args=(2, port, str(out)), nprocs=2, join=True)
    got = torch.load(out)
    g = torch.Generator().manual_seed(0)
    x, h = torch.randn(8, 3, generator=g), 0.5 + torch.rand(8, generator=g)
    theta = torch.randn(3, generator=g, requires_grad=True)
    full = log_mean_exp(dro_exponents(_model_losses(theta, x), 0.7, h)[0], 0.7)
    (want,) = torch.autograd.grad(full, theta)
    assert torch.allclose(got["grad"], want, atol=1e-6)
    assert got["loss"].item() == pytest.approx(full.item(), abs=1e-6)


# ------------------------------------------------------------------------------------------ calibration
from lit_iwpo.weighting.calibration import (  # noqa: E402
    calibration_weights,
    classifier_quality,
    cross_fit_probabilities,
    pair_weights,
    ratio_weights,
    select_l2,
    source_shares,
)


def test_calibration_weight_formula_by_hand():
    """α = .25: a synthetic response (share .75) with p = .8 gets 1/(.25 + .75 · .2/.8) = 1/.4375; a target
    response (share .25) with p = .5 gets 1/(.25 + .25) = 2 = p/α."""
    h = calibration_weights(T([0.8, 0.5]), 0.25, T([0.75, 0.25]))
    assert torch.allclose(h, T([1 / 0.4375, 2.0]))
    assert torch.allclose(pair_weights(T([1.0, 2.0]), T([3.0, 0.0])), T([2.0, 1.0]))
    assert source_shares(["target", "synthetic", "synthetic", "synthetic"]) == {"target": 0.25, "synthetic": 0.75}
    with pytest.raises(ValueError, match="target share"):
        calibration_weights(T([0.5]), 0.0, T([1.0]))


def test_classifier_quality_by_hand():
    """p = (.95, .85, .35, .15), y = (1, 0, 0, 1), one point per bin: ECE = (.05 + .85 + .35 + .85)/4 = .525;
    AUC: of the 4 positive-negative pairs .95 beats both negatives, .15 neither: .5."""
    q = classifier_quality(T([0.95, 0.85, 0.35, 0.15]), T([1, 0, 0, 1]))
    assert q["ece"] == pytest.approx(0.525, abs=1e-6) and q["auc"] == pytest.approx(0.5)


def test_classifier_recovers_a_known_source():
    """Target embeddings shifted by 2.5 along one of 8 dimensions: out-of-fold AUC ≥ 0.95 and the
    probabilities are calibrated well enough to rank (ECE < 0.1)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 8, generator=g)
    y = (torch.rand(300, generator=g) < 0.3).long()
    x[y == 1, 0] += 2.5
    p = cross_fit_probabilities(x, y, folds=5)
    q = classifier_quality(p, y)
    assert q["auc"] >= 0.95 and q["ece"] < 0.1
    assert torch.equal(p, cross_fit_probabilities(x, y, folds=5))  # deterministic
    with pytest.raises(ValueError, match="at least 5 responses of each class"):
        cross_fit_probabilities(x[:10], torch.tensor([1] + [0] * 9), folds=5)


# ------------------------------------------------------------------------------------------ end to end
import json  # noqa: E402
from pathlib import Path  # noqa: E402

from conftest import make_rows, write_jsonl  # noqa: E402
from lit_iwpo.cli import cli  # noqa: E402
from test_cli import _config  # noqa: E402

DORA = {"class_path": "lit_iwpo.objectives.DPO",
        "init_args": {"weights": {"class_path": "lit_iwpo.objectives.weights.CalibrationWeights",
                                  "init_args": {"classifier": {"class_path": "lit_iwpo.objectives.weights.EmbeddingProbe",
                                                               "init_args": {"folds": 2}},
                                                "sources": ["target", "synthetic"]}},
                      "reduction": {"class_path": "lit_iwpo.objectives.DRO", "init_args": {"lambda_": 1.0}}}}
SHARP = {**DORA, "init_args": {**DORA["init_args"], "reduction": {"class_path": "lit_iwpo.objectives.DRO", "init_args": {"lambda_": 0.05}}}}


def _sourced(tmp_path, rows=16, broken=None):
    data = make_rows(rows)
    for i, row in enumerate(data):
        row["source"] = "target" if i % 4 == 0 else "synthetic"
        if i % 4 == 0:
            row["chosen"] = f"Certainly. {row['chosen']} Hope that helps!"  # a target-side artefact to find
    if broken is not None:
        data[broken[0]]["source"] = broken[1]
        if broken[1] is None:
            del data[broken[0]]["source"]
    files = {"train": write_jsonl(tmp_path / "data" / "train.jsonl", data),
             "val": write_jsonl(tmp_path / "data" / "val.jsonl", make_rows(4, offset=100)),
             "test": write_jsonl(tmp_path / "data" / "test.jsonl", make_rows(6, offset=200))}
    return files


def test_dora_weights_follow_the_formula_and_metrics_are_logged(tmp_path):
    files = _sourced(tmp_path)
    cfg = _config(tmp_path, files, **{"model.objective": DORA, "trainer.max_steps": 3,
                                      "model.ref_cache_dir": str(tmp_path / "ref")})
    run = cli(["fit", "--config", str(cfg), "--eval.win_rate", "false"])
    src = run.model.objective.weights
    p = src.store.transforms  # (p_chosen, p_rejected) per pair
    sources = [r["source"] for r in run.datamodule.splits["train"].rows]
    alpha = sources.count("target") / len(sources)
    a = torch.tensor([[alpha if s == "target" else 1 - alpha] * 2 for s in sources])
    h = 1 / (alpha + a * (1 - p) / p)
    assert torch.allclose(src.store.weights, h.mean(1), atol=1e-5)
    out = Path(run.trainer.log_dir)
    summary = json.loads((out / "summary.json").read_text())
    assert 0.0 <= summary["dro/classifier_auc"] <= 1.0 and "dro/classifier_ece" in summary
    with open(out / "metrics.csv") as f:
        cols = f.readline().strip().split(",")
    assert {"train/dro/ess", "train/dro/q_max", "train/dro/h_mean"} <= set(cols)
    assert any(c.startswith("train/dro/share/") for c in cols)


@pytest.mark.parametrize("broken, message", [((2, None), r"train.jsonl, row 3, field 'source': missing"),
                                             ((5, "robot"), r"train.jsonl, row 6, field 'source': unknown source 'robot'")])
def test_bad_source_columns_are_rejected(tmp_path, broken, message):
    files = _sourced(tmp_path, broken=broken)
    with pytest.raises(ValueError, match=message):
        cli(["fit", "--config", str(_config(tmp_path, files, **{"model.objective": DORA}))])


import lightning as L  # noqa: E402


class FirstGrads(L.Callback):
    """Keeps the LoRA gradients of the first optimizer step."""

    def __init__(self):
        self.grads = {}

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        if trainer.global_step == 0:
            self.grads = {n: p.grad.detach().clone() for n, p in pl_module.named_parameters()
                          if p.grad is not None and "lora_" in n}


def test_dro_over_accumulated_micro_batches_equals_one_big_batch(tmp_path):
    """DoRA (λ = 0.05: sharp soft-max weights) with a per-step batch of 4 pairs, as one batch or as 2 accumulated
    micro-batches of 2: the same parameters after 3 optimizer steps, up to float noise from the batch layouts
    (~6e-6; plain DPO shows the same). A normaliser per micro-batch instead of per step moves them by ~6e-2."""
    files = _sourced(tmp_path)
    common = {"model.objective": SHARP, "trainer.max_steps": 3, "model.lr": 1e-2, "data.shuffle": False,
              "model.ref_cache_dir": str(tmp_path / "ref")}
    grads = {}
    cb = {"class_path": "test_dora.FirstGrads"}
    one = cli(["fit", "--config", str(_config(tmp_path / "one", files, **{**common, "data.batch_size": 4,
                                                                          "trainer.callbacks": [cb]})),
               "--test_after_fit", "false"])
    grads["one"] = next(c for c in one.trainer.callbacks if type(c).__name__ == "FirstGrads").grads
    two = cli(["fit", "--config", str(_config(tmp_path / "two", files, **{**common, "data.batch_size": 2,
                                                                          "trainer.accumulate_grad_batches": 2,
                                                                          "trainer.callbacks": [cb]})),
               "--test_after_fit", "false"])
    grads["two"] = next(c for c in two.trainer.callbacks if type(c).__name__ == "FirstGrads").grads
    # the first step's gradient itself, before AdamW (which would hide a wrong scale): equal, not just parallel
    assert grads["one"] and all(torch.allclose(grads["one"][k], grads["two"][k], rtol=1e-4, atol=1e-7)
                                for k in grads["one"])
    a = {k: v for k, v in one.model.state_dict().items() if "lora_" in k}
    b = {k: v for k, v in two.model.state_dict().items() if "lora_" in k}
    assert a and all(torch.allclose(a[k], b[k], rtol=0, atol=2e-5) for k in a)
    moved = {k: v for k, v in one.model.state_dict().items() if "lora_B" in k}
    assert any(v.abs().max() > 1e-4 for v in moved.values())  # the runs did train


def test_hf_sequence_classifier_from_a_local_folder(tmp_path):
    """A (tiny, random) Hugging Face sequence classifier saved to a folder gives p = its softmax probability of
    the target class for each (prompt, response), computed here directly."""
    from transformers import LlamaConfig, LlamaForSequenceClassification

    from lit_iwpo.models import byte_tokenizer

    tok = byte_tokenizer()
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, num_labels=2, pad_token_id=tok.pad_token_id)
    torch.manual_seed(3)
    folder = tmp_path / "classifier"
    LlamaForSequenceClassification(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    files = _sourced(tmp_path)
    objective = {**DORA, "init_args": {**DORA["init_args"], "weights": {
        "class_path": "lit_iwpo.objectives.weights.CalibrationWeights",
        "init_args": {"classifier": {"class_path": "lit_iwpo.objectives.weights.HFClassifier",
                                     "init_args": {"name_or_path": str(folder), "target_label": 1}}}}}}
    run = cli(["fit", "--config", str(_config(tmp_path, files, **{"model.objective": objective, "trainer.max_steps": 1})),
               "--test_after_fit", "false", "--eval.win_rate", "false"])
    src = run.model.objective.weights
    model = LlamaForSequenceClassification.from_pretrained(folder).eval()
    rows = run.datamodule.splits["train"].rows
    for i in (0, 3):
        for side, col in (("chosen", 0), ("rejected", 1)):
            enc = tok(rows[i]["prompt"], rows[i][side], return_tensors="pt")
            with torch.no_grad():
                want = torch.softmax(model(**enc).logits[0], -1)[1]
            assert src.store.transforms[i, col].item() == pytest.approx(want.item(), abs=1e-5)


@pytest.mark.parametrize("config", sorted(Path("configs/dora").glob("*.yaml")), ids=lambda p: p.stem)
def test_dora_ablation_configs_compose_with_every_scenario(config):
    """Each configs/dora file composes with each scenario into the reduction and weights it declares."""
    import yaml

    declared = yaml.safe_load(config.read_text())["model"]["objective"]["init_args"]
    for scenario in sorted(Path("configs/scenarios").glob("*.yaml")):
        parsed = cli(["--config", str(scenario), "--config", str(config), "--model.name_or_path", "tiny-llama"],
                     run=False)
        obj = parsed.model.objective
        assert type(obj.reduction).__name__ == declared["reduction"]["class_path"].rsplit(".", 1)[1]
        assert getattr(obj.reduction, "form", None) == declared["reduction"].get("init_args", {}).get("form")
        want = declared.get("weights", {"class_path": "weights.Uniform"})["class_path"].rsplit(".", 1)[1]
        assert type(obj.weights).__name__ == want


def test_per_response_sources_of_the_mixed_source_scenario(tmp_path):
    """The mixed_source scenario names each response's writer ({chosen, rejected}); a is each response's own
    source share and α the target share, over the responses of the training pairs, worked out here from the rows;
    a response source outside `sources` stops with the file, row and field."""
    spec = "scenario:mixed_source:{}?n_train=16&n_val=4&n_test=4"
    files = {k: spec.format(k) for k in ("train", "val", "test")}
    cfg = _config(tmp_path, files, **{"model.objective": DORA, "trainer.max_steps": 1,
                                      "model.ref_cache_dir": str(tmp_path / "ref")})
    run = cli(["fit", "--config", str(cfg), "--test_after_fit", "false", "--eval.win_rate", "false"])
    src = run.model.objective.weights
    rows = run.datamodule.splits["train"].rows
    per = [(r["source"]["chosen"], r["source"]["rejected"]) for r in rows]
    flat = [s for pair in per for s in pair]
    assert {"target", "synthetic"} == set(flat) and ("synthetic", "target") in per and ("target", "target") in per
    alpha = flat.count("target") / len(flat)
    a = torch.tensor([[alpha if s == "target" else 1 - alpha for s in pair] for pair in per])
    p = src.store.transforms
    assert torch.allclose(src.store.weights, (1 / (alpha + a * (1 - p) / p)).mean(1), atol=1e-5)
    assert src.sample_groups([rows[i]["id"] for i in range(len(rows))]) == [
        c if c == r else f"{c}/{r}" for c, r in per]

    data = [dict(r) for r in rows]
    data[3]["source"] = {"chosen": "target", "rejected": "robot"}
    files = {"train": write_jsonl(tmp_path / "bad" / "train.jsonl", data), "val": spec.format("val"),
             "test": spec.format("test")}
    with pytest.raises(ValueError, match=r"train.jsonl, row 4, field 'source': unknown source 'robot'"):
        cli(["fit", "--config", str(_config(tmp_path / "bad", files, **{"model.objective": DORA}))])


# ------------------------------------------------------------- pair classifier, density-ratio form (beyond DoRA)
def test_ratio_weights_by_hand():
    """α = .2: p = .5 gives (.8/.2) · 1 = 4; p = .2 gives 4 · .25 = 1; p = .8 gives 4 · 4 = 16."""
    assert torch.allclose(ratio_weights(T([0.5, 0.2, 0.8]), 0.2), T([4.0, 1.0, 16.0]))
    with pytest.raises(ValueError, match="target share"):
        ratio_weights(T([0.5]), 1.0)


def test_select_l2_takes_the_lowest_out_of_fold_log_loss():
    """Against a brute force: every penalty's cross-fitted p and its log-loss written out with numpy."""
    import numpy as np

    g = torch.Generator().manual_seed(1)
    x = torch.randn(120, 30, generator=g)
    y = (torch.rand(120, generator=g) < 0.25).long()
    x[y == 1, :3] += 0.8
    grid = [1e-3, 1e-1, 10.0]
    best, p, losses = select_l2(x, y, grid, folds=4)
    want = {}
    for l2 in grid:
        q = cross_fit_probabilities(x, y, folds=4, l2=l2).double().clamp(1e-6, 1 - 1e-6).numpy()
        yy = y.numpy()
        want[l2] = float(-(yy * np.log(q) + (1 - yy) * np.log(1 - q)).mean())
        assert losses[l2] == pytest.approx(want[l2], rel=1e-6)
    assert best == min(want, key=want.get)
    assert torch.equal(p, cross_fit_probabilities(x, y, folds=4, l2=best))


PAIR_RATIO = {"class_path": "lit_iwpo.objectives.DPO",
              "init_args": {"weights": {"class_path": "lit_iwpo.objectives.weights.CalibrationWeights",
                                        "init_args": {"target_from": "val", "unit": "pair", "form": "ratio",
                                                      "classifier": {"class_path": "lit_iwpo.objectives.weights.EmbeddingProbe",
                                                                     "init_args": {"folds": 2, "l2": [0.01, 1.0]}}}}}}


def test_pair_classifier_weighs_the_density_ratio_of_label_ordered_pair_embeddings(tmp_path):
    """Half of D_tr are flipped twins of deployment-style pairs (chosen and rejected swapped). The weights come from
    an independent computation: the cached response embeddings [rows, 2, d] of D_tr and D_v, the features chosen
    − rejected, a cross-fitted logistic regression per penalty with the lowest log-loss taken, p/(1 − p)
    normalised to mean 1. The flipped pairs get less weight than the others (a response classifier's pair mean
    could not tell them apart: both hold the same two responses)."""
    train = make_rows(24)
    for i, row in enumerate(train):
        if i % 2:  # the flipped twins (relevant: False in make_rows)
            row["chosen"], row["rejected"] = row["rejected"], row["chosen"]
    files = {"train": write_jsonl(tmp_path / "data" / "train.jsonl", train),
             "val": write_jsonl(tmp_path / "data" / "val.jsonl", make_rows(10, offset=100)),
             "test": write_jsonl(tmp_path / "data" / "test.jsonl", make_rows(6, offset=200))}
    objective = {**PAIR_RATIO}
    objective["init_args"]["weights"]["init_args"]["cache_dir"] = str(tmp_path / "emb")
    cfg = _config(tmp_path, files, **{"model.objective": objective, "trainer.max_steps": 2,
                                      "model.ref_cache_dir": str(tmp_path / "ref")})
    run = cli(["fit", "--config", str(cfg), "--eval.win_rate", "false"])
    src = run.model.objective.weights
    tables = {}
    for path in (tmp_path / "emb").glob("embeddings-*.pt"):
        tables[path.name.split("-")[1]] = torch.load(path, weights_only=True)
    x = torch.cat([tables["train"][:, 0] - tables["train"][:, 1], tables["val"][:, 0] - tables["val"][:, 1]])
    y = torch.tensor([0] * 24 + [1] * 10)
    losses = {l2: float(torch.nn.functional.binary_cross_entropy(
        cross_fit_probabilities(x, y, folds=2, l2=l2).double().clamp(1e-6, 1 - 1e-6), y.double()))
        for l2 in (0.01, 1.0)}
    best = min(losses, key=losses.get)
    p = cross_fit_probabilities(x, y, folds=2, l2=best)[:24].double()
    w = p / (1 - p)
    w = w / w.mean()
    assert torch.allclose(src.store.transforms[:, 0].double(), p, atol=1e-6)
    assert torch.allclose(src.store.weights.double(), w, atol=1e-5)
    assert src.quality["dro/classifier_l2"] == best
    flipped = torch.arange(24) % 2 == 1
    assert src.store.weights[flipped].mean() < src.store.weights[~flipped].mean()


def test_pair_ratio_weighs_the_training_set_s_deployment_pairs_one(tmp_path):
    """With D_v inside the training set (train_on: train+val) its pairs weigh 1 and the others have mean 1; an
    HF classifier cannot classify pairs, and a pair whose responses name different sources is refused by row."""
    files = {"train": write_jsonl(tmp_path / "data" / "train.jsonl", make_rows(16)),
             "val": write_jsonl(tmp_path / "data" / "val.jsonl", make_rows(6, offset=100)),
             "test": write_jsonl(tmp_path / "data" / "test.jsonl", make_rows(4, offset=200))}
    cfg = _config(tmp_path, files, **{"model.objective": PAIR_RATIO, "trainer.max_steps": 1,
                                      "data.train_on": "train+val", "model.ref_cache_dir": str(tmp_path / "ref")})
    src = cli(["fit", "--config", str(cfg), "--eval.win_rate", "false",
               "--model.objective.init_args.weights.init_args.cache_dir", str(tmp_path / "emb")]).model.objective.weights
    target = torch.tensor([s == "target" for s in src.pair_sources])
    assert int(target.sum()) == 6
    assert torch.all(src.store.weights[target] == 1.0)
    assert src.store.weights[~target].mean().item() == pytest.approx(1.0, abs=1e-5)
    from lit_iwpo.errors import ConfigError
    from lit_iwpo.objectives.weights import CalibrationWeights, HFClassifier
    with pytest.raises(ConfigError, match="only EmbeddingProbe"):
        CalibrationWeights(classifier=HFClassifier("x"), unit="pair")
    rows = make_rows(8)
    for row in rows:
        row["source"] = "target"
    rows[3]["source"] = {"chosen": "target", "rejected": "synthetic"}
    bad = {"train": write_jsonl(tmp_path / "bad" / "train.jsonl", rows), "val": files["val"], "test": files["test"]}
    weights = {"class_path": "lit_iwpo.objectives.weights.CalibrationWeights", "init_args": {"unit": "pair"}}
    with pytest.raises(ValueError, match=r"train.jsonl, row 4, field 'source'.*one source per pair"):
        cli(["fit", "--config", str(_config(tmp_path / "b", bad, **{"model.objective": {
            "class_path": "lit_iwpo.objectives.DPO", "init_args": {"weights": weights}}}))])
