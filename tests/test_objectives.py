"""The objective interface: forward requests, scoring roles, composition, data-column weights, trainable
parts, the sampler hook, life cycle, import direction, and the README's own-objective example."""

import ast
import csv
import json
import math
import re
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn

from conftest import make_rows, write_jsonl
from contexts import LocalContext
from lit_iwpo.cli import cli
from lit_iwpo.data import DataError, PreferenceDataModule
from lit_iwpo.data.sampler import ResumableDataLoader, TrainSampler
from lit_iwpo.losses import dpo_loss
from lit_iwpo.models import LoraSpec, load_causal_lm
from lit_iwpo.models.logprobs import LogProbs, response_logps
from lit_iwpo.models.scoring import ForwardRequest
from lit_iwpo.module import PreferenceModule
from lit_iwpo.objectives import DPO, IWDPO, StepInputs
from lit_iwpo.objectives.weights import ColumnWeights
from lit_iwpo.weighting import RuLSIF
from lit_iwpo.weighting.store import TokenWeightStore
from test_cli import _config

T = torch.tensor
ROOT = Path(__file__).resolve().parents[1]


def _dm(train, **kw):
    dm = PreferenceDataModule(train=str(train), tokenizer="tiny-llama", batch_size=4, apply_chat_template=True,
                              shuffle=False, **kw)
    dm.setup("fit")
    return dm


def _module(**kw):
    module = PreferenceModule(name_or_path="tiny-llama", **kw)
    module.configure_model()
    return module


# ------------------------------------------------------------------ forward requests and scoring
def test_forward_request_merge_and_checks():
    a = ForwardRequest(reference="none", logits=True)
    b = ForwardRequest(reference="token", embeddings="mean_response", adapters={"plus": "/a"})
    m = a.merge(b)
    assert (m.reference, m.logits, m.embeddings, m.adapters) == ("token", True, "mean_response", {"plus": "/a"})
    assert ForwardRequest(reference="none").merge(ForwardRequest()).reference == "sequence"
    with pytest.raises(ValueError, match="different folders"):
        b.merge(ForwardRequest(adapters={"plus": "/b"}))
    with pytest.raises(ValueError, match="conflicting embedding"):
        b.merge(ForwardRequest(embeddings="last_prompt"))
    with pytest.raises(ValueError, match="reserved"):
        ForwardRequest(adapters={"reference": "/a"})
    with pytest.raises(ValueError, match="reference must be one of"):
        ForwardRequest(reference="tokens")


def test_embeddings_and_logits_from_the_one_forward(tmp_path):
    """Pooled embeddings against an independent computation from the decoder's hidden states."""
    dm = _dm(write_jsonl(tmp_path / "t.jsonl", make_rows(4)))
    module = _module()
    batch = next(iter(dm.train_dataloader()))
    for pool in ("mean_response", "last_prompt"):
        got = module.scorer.score(batch, "policy", request=ForwardRequest(logits=True, embeddings=pool))
        with torch.no_grad():
            hidden = module.policy.get_decoder()(input_ids=batch.input_ids,
                                                 attention_mask=batch.attention_mask).last_hidden_state
        want = []
        for row in range(hidden.shape[0]):
            resp = batch.loss_mask[row].nonzero().flatten()
            want.append(hidden[row, resp].mean(0) if pool == "mean_response" else hidden[row, resp[0] - 1])
        assert torch.allclose(got.embeddings, torch.stack(want), atol=1e-5), pool
        assert got.logits.shape == (int(batch.loss_mask[:, 1:].sum()), 259)
    # last_prompt: the same prompt under chosen and rejected gives the same vector
    assert torch.allclose(got.embeddings[:4], got.embeddings[4:], atol=1e-5)


def _adapter(tmp_path):
    """A saved LoRA adapter with non-zero B, so it really changes the model."""
    from peft import get_peft_model

    model = get_peft_model(load_causal_lm("tiny-llama"), LoraSpec(r=4).to_peft())
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5, generator=torch.Generator().manual_seed(len(name)))
    model.save_pretrained(tmp_path / "plus")
    return tmp_path / "plus"


class _NeedsAdapter(DPO):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.loss_request = ForwardRequest(adapters={"plus": path})


@pytest.mark.parametrize("lora", [LoraSpec(), None], ids=["lora", "full"])
def test_named_adapter_scores_like_its_own_model(tmp_path, lora):
    """A named adapter on the one base scores exactly like base + adapter loaded on their own, and switching
    to it leaves the policy, its trainable flags and the reference as they were."""
    from peft import PeftModel

    path = _adapter(tmp_path)
    dm = _dm(write_jsonl(tmp_path / "t.jsonl", make_rows(4)))
    module = _module(objective=_NeedsAdapter(str(path)), lora=lora)
    batch = next(iter(dm.train_dataloader()))
    flags = {n: p.requires_grad for n, p in module.named_parameters()}
    before = module.scorer.score(batch, "policy", mode="train").logps.detach()
    ref_before = module.scorer.score(batch, "reference").logps
    got = module.scorer.score(batch, "plus").logps
    alone = PeftModel.from_pretrained(load_causal_lm("tiny-llama"), str(path)).eval()

    with torch.no_grad():
        want = response_logps(alone, batch.input_ids, batch.attention_mask, batch.loss_mask).logps
    assert torch.allclose(got, want, atol=1e-5) and not torch.allclose(got, ref_before, atol=1e-2)
    assert {n: p.requires_grad for n, p in module.named_parameters()} == flags
    assert torch.equal(module.scorer.score(batch, "policy", mode="train").logps.detach(), before)
    assert torch.equal(module.scorer.score(batch, "reference").logps, ref_before)
    assert module.policy.training
    # the training step hands the adapter's log-probs to the objective; the export holds only the trained adapter
    seen = {}
    orig = module.objective.per_sample_loss
    module.objective.per_sample_loss = lambda inputs: seen.update(inputs.adapters) or orig(inputs)
    module._step(batch, "train")
    assert torch.allclose(seen["plus"].logps, want, atol=1e-5)
    if lora is not None:
        module.save_hf(tmp_path / "hf")
        assert not (tmp_path / "hf" / "plus").exists()
        assert json.loads((tmp_path / "hf" / "adapter_config.json").read_text())["r"] == 8


# ------------------------------------------------------------------ composition and column weights
def _rows_with_weights(values):
    rows = make_rows(len(values))
    for row, v in zip(rows, values):
        if v is not ...:
            row["w"] = v
    return rows


def test_column_weights_by_hand(tmp_path):
    """w = (2, 0, 1, 1) has mean 1: the loss is mean_i(w_i ℓ_i), and pair 1 gets no gradient at all."""
    dm = _dm(write_jsonl(tmp_path / "t.jsonl", _rows_with_weights([2, 0, 1.0, True])))
    obj = DPO(weight_column="w")
    obj.setup(LocalContext(stage="fit", datamodule=dm))
    batch = dm.pair_batch("train", [0, 1, 2, 3])
    pol = LogProbs(logps=T([-4.0, -5.0, -6.0, -7.0, -6.0, -5.0, -9.0, -8.0], requires_grad=True))
    ref = LogProbs(logps=T([-5.0, -5.0, -6.0, -6.0, -5.0, -5.0, -8.0, -8.0]))
    out = obj(StepInputs(pol, ref, batch, "train", ctx=LocalContext(step=3)))
    # h = (π_w − π_l) − (ref_w − ref_l) = (2, 0, 1, −1); ℓ = log(1 + e^{−0.1 h})
    h = T([2.0, 0.0, 1.0, -1.0])
    losses = torch.log1p(torch.exp(-0.1 * h))
    assert torch.allclose(out.per_sample_loss, losses)
    assert torch.equal(out.weights, T([2.0, 0.0, 1.0, 1.0]))
    assert out.loss.item() == pytest.approx(((T([2.0, 0.0, 1.0, 1.0]) * losses).sum() / 4).item(), rel=1e-6)
    out.loss.backward()
    assert pol.logps.grad[1] == 0.0 and pol.logps.grad[5] == 0.0  # pair 1's chosen and rejected rows
    assert (pol.logps.grad[[0, 2, 3, 4, 6, 7]] != 0).all()
    # normalisation: (4, 2, 2, 0) → mean 2 → (2, 1, 1, 0); normalize: false keeps them
    dm2 = _dm(write_jsonl(tmp_path / "t2.jsonl", _rows_with_weights([4, 2, 2, 0])))
    for normalize, want in ((True, [2.0, 1.0, 1.0, 0.0]), (False, [4.0, 2.0, 2.0, 0.0])):
        src = ColumnWeights("w", normalize=normalize)
        src.setup(LocalContext(stage="fit", datamodule=dm2))
        assert src.store.weights.tolist() == want and src.sample_weights()[1].tolist() == want
    anti = ColumnWeights("relevant", complement=True)  # make_rows: even rows relevant
    anti.setup(LocalContext(stage="fit", datamodule=dm2))
    assert anti.store.weights.tolist() == [0.0, 2.0, 0.0, 2.0]


def test_zero_weight_pair_changes_no_parameter_gradient(tmp_path):
    """Through the model: with pair 0 at weight 0, the LoRA gradients equal those of the same batch's loss
    without pair 0's term, exactly."""
    dm = _dm(write_jsonl(tmp_path / "t.jsonl", _rows_with_weights([0, 1, 2, 1])))
    module = _module(objective=DPO(weight_column="w"), lora=LoraSpec(r=4))
    module.objective.setup(LocalContext(stage="fit", datamodule=dm))
    with torch.no_grad():  # move B off zero so every pair has a gradient
        for name, p in module.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1, generator=torch.Generator().manual_seed(0))
    batch = dm.pair_batch("train", [0, 1, 2, 3])
    out = module._step(batch, "train")
    module.zero_grad()
    out.loss.backward()
    got = {n: p.grad.clone() for n, p in module.named_parameters() if p.requires_grad}
    module.zero_grad()
    pol = module.scorer.score(batch, "policy", mode="train")
    ref = module.scorer.score(batch, "reference")
    w = module.objective.weights.store.lookup(batch.ids)
    losses = dpo_loss(pol.chosen, pol.rejected, ref.chosen, ref.rejected, beta=0.1)
    ((w[1:] * losses[1:]).sum() / 4).backward()
    assert w[0] == 0.0 and all(torch.equal(got[n], p.grad) for n, p in module.named_parameters() if p.requires_grad)


@pytest.mark.parametrize("value, message", [
    ("heavy", "must be a number, got str 'heavy'"),
    (-1, "must be >= 0, got -1.0"),
    (float("nan"), "must be finite, got nan"),
    (..., "missing"),
])
def test_bad_weight_column_names_file_row_field(tmp_path, value, message):
    path = write_jsonl(tmp_path / "t.jsonl", _rows_with_weights([1, 2, value, 1]))
    dm = _dm(path)
    with pytest.raises(DataError, match=re.escape(f"{path}, row 3, field 'w': {message}")):
        DPO(weight_column="w").setup(LocalContext(stage="fit", datamodule=dm))


def test_all_zero_weight_column_and_bad_settings(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", _rows_with_weights([0, 0, 0, 0]))
    with pytest.raises(DataError, match=r"weight column 'w' of split 'train' \(.*t\.jsonl\) gives every pair weight 0"):
        DPO(weight_column="w").setup(LocalContext(stage="fit", datamodule=_dm(path)))
    with pytest.raises(ValueError, match="not both"):
        DPO(weight_column="w", weights=ColumnWeights("w"))
    with pytest.raises(ValueError, match="pairwise"):
        from lit_iwpo.objectives import SFT
        from lit_iwpo.objectives.weights import DensityRatioWeights

        SFT(weights=DensityRatioWeights())


def test_oracle_weights_config_trains_and_checkpoints(tmp_path, pref_files):
    """The diagnostic config's weights are the `relevant` column (half the rows: 2 and 0), they survive a
    checkpoint, and the resumed run ends with the same adapter."""
    method = yaml_load(ROOT / "configs/methods/dpo_oracle_weights.yaml")
    ckpt_cb = {"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
               "init_args": {"every_n_train_steps": 2, "save_top_k": -1, "filename": "{step}"}}
    extra = {"model.objective": method["model"]["objective"], "trainer.callbacks": [ckpt_cb],
             "model.lr": 5e-3, "trainer.max_steps": 5}
    full = cli(["fit", "--config", str(_config(tmp_path / "a", pref_files, **extra)), "--test_after_fit", "false"])
    store = full.model.objective.weights.store
    assert store.weights.tolist() == [2.0 if i % 2 == 0 else 0.0 for i in range(12)]
    ckpt = Path(full.trainer.log_dir) / "checkpoints" / "step=2.ckpt"
    assert torch.load(ckpt, weights_only=False)["lit_iwpo"]["objective"]["store"]["ids"] == store.ids
    resumed = cli(["fit", "--config", str(_config(tmp_path / "b", pref_files, **extra)), "--test_after_fit", "false",
                   "--ckpt_path", str(ckpt)])
    a = {k: v for k, v in full.model.state_dict().items() if "lora_" in k}
    b = {k: v for k, v in resumed.model.state_dict().items() if "lora_" in k}
    assert all(torch.equal(a[k], b[k]) for k in a)


def yaml_load(path):
    import yaml

    return yaml.safe_load(Path(path).read_text())


# ------------------------------------------------------------------ trainable parts
class _Temperature(nn.Module):
    def __init__(self):
        super().__init__()
        self.log_t = nn.Parameter(torch.zeros(()))
        self.register_buffer("updates", torch.zeros(()))


class TemperedDPO(DPO):
    """DPO whose per-sample loss is scaled by a learned exp(log_t): a part the optimizer must train."""

    def parts(self, model_config):
        self.temp = _Temperature()
        return {"temperature": self.temp}

    def per_sample_loss(self, inputs):
        return super().per_sample_loss(inputs) * torch.exp(self.temp.log_t)


def test_trainable_parts_are_optimised_checkpointed_and_exported(tmp_path, pref_files):
    dm = PreferenceDataModule(train=str(pref_files["train"]), tokenizer="tiny-llama", batch_size=4,
                              apply_chat_template=True)
    module = _module(objective=TemperedDPO(), lr=1e-2)
    assert "objective_parts.temperature.log_t" in module.trainable_state_keys()
    assert "objective_parts.temperature.updates" in module.trainable_state_keys()  # buffers travel too
    trainer = L.Trainer(max_steps=2, logger=False, enable_progress_bar=False, enable_model_summary=False,
                        default_root_dir=tmp_path, limit_val_batches=0)
    trainer.fit(module, datamodule=dm)
    trained = module.objective.temp.log_t.detach().clone()
    assert trained != 0.0  # the optimizer moved it (loss ∝ exp(log_t), so the gradient is the loss)
    ckpt = torch.load(next((tmp_path / "checkpoints").glob("*.ckpt")), weights_only=False)
    assert torch.equal(ckpt["state_dict"]["objective_parts.temperature.log_t"], trained)
    module.save_hf(tmp_path / "hf")
    from safetensors.torch import load_file

    assert torch.equal(load_file(tmp_path / "hf" / "objective_parts.safetensors")["temperature.log_t"], trained)
    again = _module(objective=TemperedDPO())
    again.load_state_dict(ckpt["state_dict"], strict=False)
    assert torch.equal(again.objective.temp.log_t, trained)


# ------------------------------------------------------------------ sampler hook
class Reversed(TrainSampler):
    """Rows last to first; counts its epochs as extra state (to check that it travels in checkpoints)."""

    def order(self, epoch):
        self.epochs_seen = epoch
        return list(range(self.n))[::-1][self.rank::self.world_size]

    def extra_state(self):
        return {"epochs_seen": getattr(self, "epochs_seen", -1)}

    def load_extra_state(self, state):
        self.restored = state


def test_sampler_hook_by_class_path(tmp_path, pref_files):
    """data.sampler takes a TrainSampler by class path: one WPO step of batch 2 trains the last two rows."""
    run = cli(["fit", "--config", str(_config(tmp_path, pref_files)), "--data.sampler", "test_objectives.Reversed",
               "--model.objective", "lit_iwpo.objectives.WPO", "--trainer.max_steps", "1", "--test_after_fit", "false"])
    assert isinstance(run.datamodule.sampler, Reversed)
    assert run.model.objective.weights.store.weight_step.tolist() == [-1] * 10 + [0, 0]
    loader = run.datamodule.train_dataloader()
    assert isinstance(loader, ResumableDataLoader)
    state = loader.state_dict()
    assert state["sampler"] == {"epochs_seen": 0}
    loader.load_state_dict({**state, "sampler": {"epochs_seen": 3}})
    assert loader.sampler.restored == {"epochs_seen": 3}


# ------------------------------------------------------------------ life cycle
def test_validate_then_fit_on_the_same_module(tmp_path, pref_files):
    """IW-DPO used to crash in fit after a validate (its setup had run once, for validate, with no D_v)."""
    dm = PreferenceDataModule(train=str(pref_files["train"]), val=str(pref_files["val"]), tokenizer="tiny-llama",
                              batch_size=2, apply_chat_template=True)
    module = PreferenceModule(name_or_path="tiny-llama", lr=5e-3,
                              objective=IWDPO(warmup_steps=1, val_batch_size=4, estimator=RuLSIF()))
    trainer = L.Trainer(max_steps=3, logger=False, enable_progress_bar=False, enable_model_summary=False,
                        enable_checkpointing=False, default_root_dir=tmp_path, num_sanity_val_steps=0)
    trainer.validate(module, datamodule=dm, verbose=False)
    assert "val/loss" in trainer.callback_metrics
    trainer.fit(module, datamodule=dm)
    weights = module.objective.weights
    assert weights.n_val == 4 and (weights.store.weight_step >= 1).sum() == 4  # steps 1, 2 × 2 pairs


# ------------------------------------------------------------------ stores
def test_token_weight_store_ragged_round_trip():
    store = TokenWeightStore(["a", "b", "c"])
    store.set(["b", "a"], [T([0.5, 1.5, 1.0]), T([2.0])], step=4)
    assert store.offsets.tolist() == [0, 1, 4, 4] and store.values.tolist() == [2.0, 0.5, 1.5, 1.0]
    store.set(["a"], [T([1.0, 0.0])], step=5)  # a new length moves the others' offsets
    assert [w.tolist() for w in store.lookup(["c", "b", "a"])] == [[], [0.5, 1.5, 1.0], [1.0, 0.0]]
    table = store.table()
    assert table["n_tokens"] == [2, 3, 0] and table["weight_step"] == [5, 4, -1]
    other = TokenWeightStore(["a", "b", "c"])
    other.load_state_dict(store.state_dict())
    assert [w.tolist() for w in other.lookup(["a", "b"])] == [[1.0, 0.0], [0.5, 1.5, 1.0]]
    with pytest.raises(ValueError, match="different training split"):
        TokenWeightStore(["a", "b"]).load_state_dict(store.state_dict())
    with pytest.raises(KeyError, match="'z'"):
        store.set(["z"], [T([1.0])], step=0)
    from lit_iwpo.weighting.store import SampleStore, WeightStore

    assert isinstance(store, SampleStore) and isinstance(WeightStore(["a"], 1), SampleStore)


# ------------------------------------------------------------------ dependencies
def test_objectives_weighting_losses_never_import_module_or_callbacks():
    """Not even under TYPE_CHECKING: every import statement of those packages, at any depth."""
    banned = ("lit_iwpo.module", "lit_iwpo.callbacks")
    offenders = []
    for pkg in ("objectives", "weighting", "losses"):
        for path in (ROOT / "lit_iwpo" / pkg).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                offenders += [f"{path.name}: {n}" for n in names if n.startswith(banned)]
    assert offenders == []


# ------------------------------------------------------------------ README example
def _readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("<!-- example: my_objectives.py")
    return re.search(r"```python\n(.*?)```", text[start:], re.S).group(1)


def test_readme_objective_example(tmp_path, pref_files, monkeypatch):
    """The README's HingeDPO, as a user would run it: its file on the path, chosen by class path, with a
    data-column weight source. At step 0 the policy equals the reference, h = 0 and every ℓ = 1, so the first
    logged loss is the mean weight of the first batch."""
    code = _readme_example()
    assert len(code.splitlines()) <= 45
    (tmp_path / "my_objectives.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("my_objectives", None)
    import my_objectives

    obj = my_objectives.HingeDPO(beta=0.5)
    pol = LogProbs(logps=T([-1.0, -3.0, -3.0, -2.0]))  # chosen (−1, −3), rejected (−3, −2)
    ref = LogProbs(logps=T([-2.0, -2.0, -2.0, -2.0]))
    # h = (2, −1): ℓ = max(0, 1 − 0.5 h) = (0, 1.5)
    assert obj(StepInputs(pol, ref, None, "val")).per_sample_loss.tolist() == [0.0, 1.5]

    run = cli(["fit", "--config", str(_config(tmp_path, pref_files)), "--model.objective", "my_objectives.HingeDPO",
               "--model.objective.weights", "lit_iwpo.objectives.weights.ColumnWeights",
               "--model.objective.weights.column", "relevant", "--trainer.max_steps", "2",
               "--test_after_fit", "false"])
    rows = [r for r in csv.DictReader((Path(run.trainer.log_dir) / "metrics.csv").open()) if r.get("train/loss")]
    first = run.datamodule.sampler.order(0)[:2]  # the first batch's rows; even rows are relevant (weight 2)
    assert float(rows[0]["train/loss"]) == pytest.approx(sum(2.0 if i % 2 == 0 else 0.0 for i in first) / 2)
    assert math.isfinite(float(rows[1]["train/loss"]))
