"""PreferenceModule on a tiny random Llama: step-0 loss, what trains, references, caches, log-probs."""

import math

import lightning as L
import pytest
import torch

from lit_iwpo.data import PreferenceDataModule
from lit_iwpo.errors import ConfigError
from lit_iwpo.models import LoraSpec, load_causal_lm, response_logps
from lit_iwpo.models.scoring import ForwardRequest
from lit_iwpo.module import PreferenceModule
from lit_iwpo.objectives import DPO, SFT, StepInputs


def _setup(pref_files, **module_kw):
    dm = PreferenceDataModule(train=str(pref_files["train"]), val=str(pref_files["val"]), test=str(pref_files["test"]),
                              tokenizer="tiny-llama", batch_size=4, apply_chat_template=True)
    dm.setup("fit")
    module = PreferenceModule(name_or_path="tiny-llama", **module_kw)
    module.configure_model()
    return dm, module


def _trainer(tmp_path, **kw):
    defaults = dict(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                    enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
                    default_root_dir=tmp_path)
    return L.Trainer(**{**defaults, **kw})


def test_fresh_adapter_gives_log2(pref_files):
    dm, module = _setup(pref_files)
    batch = next(iter(dm.train_dataloader()))
    pol, ref = module.scorer.score(batch, "policy", mode="train"), module.scorer.score(batch, "reference")
    out = module.objective(StepInputs(policy=pol, reference=ref, batch=batch, stage="train"))
    # LoRA's B starts at zero, so π = π_ref, h = 0 and every per-sample loss is log 2
    assert torch.allclose(out.per_sample_loss, torch.full((4,), math.log(2)), atol=1e-6)
    assert torch.equal(pol.logps, ref.logps)


def test_logps_fast_path_matches_full_logits(pref_files):
    """Our LM-head-at-response-positions path against an independent full log_softmax computation."""
    dm, module = _setup(pref_files)
    batch = next(iter(dm.train_dataloader()))
    model = module.policy
    got = response_logps(model, batch.input_ids, batch.attention_mask, batch.loss_mask, return_logits=True)
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    logp = torch.log_softmax(logits[:, :-1].float(), -1).gather(-1, batch.input_ids[:, 1:, None]).squeeze(-1)
    want = (logp * batch.loss_mask[:, 1:]).sum(-1)
    assert torch.allclose(got.logps, want, atol=1e-4)
    assert got.logits.shape[0] == int(batch.loss_mask[:, 1:].sum())
    assert torch.equal(got.lengths, batch.loss_mask[:, 1:].sum(-1))


def test_only_trainable_parameters_change(tmp_path, pref_files):
    dm, module = _setup(pref_files, lr=1e-2)
    before = {k: v.detach().clone() for k, v in module.named_parameters()}
    trainable = module.trainable_state_keys()
    assert trainable and all("lora_" in k for k in trainable)
    _trainer(tmp_path).fit(module, datamodule=dm)
    for name, p in module.named_parameters():
        changed = not torch.equal(before[name], p.detach())
        assert changed == (name in trainable), name


def test_full_finetune_keeps_frozen_reference(tmp_path, pref_files):
    dm, module = _setup(pref_files, lora=None, lr=1e-3)
    ref_before = {k: v.clone() for k, v in module.reference.state_dict().items()}
    pol_before = {k: v.clone() for k, v in module.policy.state_dict().items()}
    trainer = _trainer(tmp_path, enable_checkpointing=True)
    trainer.fit(module, datamodule=dm)
    assert all(torch.equal(v, module.reference.state_dict()[k]) for k, v in ref_before.items())
    assert any(not torch.equal(v, module.policy.state_dict()[k]) for k, v in pol_before.items())
    ckpt = torch.load(next((tmp_path / "checkpoints").glob("*.ckpt")), weights_only=False)
    assert ckpt["state_dict"] and not any(k.startswith("reference.") for k in ckpt["state_dict"])
    assert set(ckpt["state_dict"]) == module.trainable_state_keys()


def test_lora_checkpoint_holds_only_adapter(tmp_path, pref_files):
    dm, module = _setup(pref_files)
    trainer = _trainer(tmp_path, enable_checkpointing=True, max_steps=1)
    trainer.fit(module, datamodule=dm)
    ckpt = torch.load(next((tmp_path / "checkpoints").glob("*.ckpt")), weights_only=False)
    assert set(ckpt["state_dict"]) == module.trainable_state_keys()
    assert {"objective", "rng"} <= set(ckpt["lit_iwpo"])


def test_sft_skips_reference_in_training(pref_files):
    dm, module = _setup(pref_files, objective=SFT())
    batch = next(iter(dm.train_dataloader()))
    calls = []
    orig = module.scorer.score
    module.scorer.score = lambda b, model="policy", *a, **kw: (model == "reference" and calls.append(1)) or orig(
        b, model, *a, **kw)
    out = module._step(batch, "train")
    assert calls == []
    pol = module.scorer.score(batch, "policy", mode="train")
    lengths = pol.lengths[:4].float()
    assert out.loss.item() == pytest.approx((-pol.chosen / lengths).mean().item(), rel=1e-5)
    module._step(batch, "val")
    assert calls == [1]  # evaluation still reports implicit rewards against the reference


def test_precomputed_reference_cache(tmp_path, pref_files):
    cache = tmp_path / "refcache"
    dm, module = _setup(pref_files, precompute_ref_logps=True, ref_cache_dir=str(cache))
    trainer = _trainer(tmp_path, max_steps=1)
    trainer.fit(module, datamodule=dm)
    files = sorted(p.name for p in cache.glob("*.pt"))
    assert len(files) == 2 and files[0].startswith("ref_logps-train-") and files[1].startswith("ref_logps-val-")
    batch = next(iter(dm.pair_dataloader("train")))
    cached = module.scorer.score(batch, "reference", use_cache=True).logps
    live = module.scorer.score(batch, "reference", use_cache=False).logps
    assert torch.allclose(cached, live, atol=1e-4)
    # a second run with the same data, tokenizer and model reuses the files
    mtimes = {p: p.stat().st_mtime_ns for p in cache.glob("*.pt")}
    dm2, module2 = _setup(pref_files, precompute_ref_logps=True, ref_cache_dir=str(cache))
    _trainer(tmp_path, max_steps=1).fit(module2, datamodule=dm2)
    assert {p: p.stat().st_mtime_ns for p in cache.glob("*.pt")} == mtimes
    # a different base model changes the fingerprint
    dm3, module3 = _setup(pref_files, precompute_ref_logps=True, ref_cache_dir=str(cache), seed=1)
    _trainer(tmp_path, max_steps=1).fit(module3, datamodule=dm3)
    assert len(list(cache.glob("*.pt"))) == 4
    # so does the precision the reference runs in: bf16 numbers are not those of fp32
    dm4, module4 = _setup(pref_files, precompute_ref_logps=True, ref_cache_dir=str(cache))
    _trainer(tmp_path, max_steps=1, precision="bf16-mixed").fit(module4, datamodule=dm4)
    assert len(list(cache.glob("*.pt"))) == 6
    bf16_live = module4.scorer.score(batch, "reference", use_cache=False).logps  # in the trainer's autocast
    assert torch.allclose(module4.scorer.score(batch, "reference", use_cache=True).logps, bf16_live.float(), atol=1e-3)
    assert not torch.allclose(bf16_live.float(), live, atol=1e-3)


def test_incompatible_settings_fail_at_construction():
    class TokenLevel(DPO):
        loss_request = ForwardRequest(reference="token")

    with pytest.raises(ValueError, match="precompute_ref_logps: false"):
        PreferenceModule(name_or_path="tiny-llama", objective=TokenLevel(), precompute_ref_logps=True)
    with pytest.raises(ValueError, match="lr_schedule"):
        PreferenceModule(name_or_path="tiny-llama", lr_schedule="step")
    with pytest.raises(ValueError, match="lora.r"):
        PreferenceModule(name_or_path="tiny-llama", lora=LoraSpec(r=0)).configure_model()


def _trained_adapter(tmp_path, pref_files):
    """A short LoRA run saved to tmp_path/hf: (datamodule, module, a training batch, its policy log-probs)."""
    dm, module = _setup(pref_files, lr=1e-2)
    _trainer(tmp_path).fit(module, datamodule=dm)
    module.save_hf(tmp_path / "hf")
    batch = next(iter(dm.pair_dataloader("train")))
    module.policy.eval()
    return dm, module, batch, module.scorer.score(batch, "policy", mode="train").logps.detach()


def test_init_adapter_is_merged_into_the_reference(tmp_path, pref_files):
    """Starting from a trained adapter (e.g. SFT): the merged model is π_ref, and a fresh adapter makes π = π_ref."""
    dm, module, batch, trained = _trained_adapter(tmp_path, pref_files)
    assert not torch.allclose(trained, module.scorer.score(batch, "reference").logps, atol=1e-3)  # it did train
    _, started = _setup(pref_files, init_adapter=str(tmp_path / "hf"), lr=1e-2)
    ref, pol = started.scorer.score(batch, "reference").logps, started.scorer.score(batch, "policy", mode="train").logps
    assert torch.allclose(ref, trained, atol=1e-4) and torch.equal(pol, ref)
    # the exported folder is the merged base + the new adapter: it reproduces the second run's policy
    _trainer(tmp_path).fit(started, datamodule=dm)
    started.save_hf(tmp_path / "hf2")
    from transformers import AutoModelForCausalLM

    # the folder alone (its base is saved in it): transformers loads base + adapter from wherever it lies
    exported = AutoModelForCausalLM.from_pretrained(tmp_path / "hf2").eval()
    started.policy.eval()
    ids = batch.input_ids[:2]
    assert not torch.allclose(started.policy(ids).logits, module.policy(ids).logits, atol=1e-3)  # it trained on
    assert torch.allclose(exported(ids).logits, started.policy(ids).logits, atol=1e-5)


def test_local_folder_loads_same_model(tmp_path):
    model = load_causal_lm("tiny-llama")
    model.save_pretrained(tmp_path / "m")
    again = load_causal_lm(str(tmp_path / "m"))
    x = torch.tensor([[5, 6, 7, 8]])
    assert torch.equal(model(x).logits, again(x).logits)
    with pytest.raises(ConfigError, match=r"model.name_or_path: .*\(no config.json\)"):
        load_causal_lm(str(tmp_path))
    with pytest.raises(ConfigError, match="model.name_or_path: GGUF file not found"):
        load_causal_lm(str(tmp_path / "x.gguf"))


def test_reference_cache_key_covers_config_buffers_and_code_version(tmp_path, pref_files, monkeypatch):
    """Weights alone do not fix the reference's numbers: the model config, non-persistent buffers (Llama's
    rotary frequencies live outside state_dict) and the scoring code's version are in the key too."""
    from lit_iwpo.models import refcache

    model = load_causal_lm("tiny-llama")
    key = refcache.model_fingerprint(model)
    assert key == refcache.model_fingerprint(load_causal_lm("tiny-llama"))  # deterministic
    name = next(n for n, _ in model.named_buffers() if n.endswith("inv_freq"))
    assert name not in model.state_dict()
    with torch.no_grad():
        model.get_buffer(name).mul_(2.0)
    assert refcache.model_fingerprint(model) != key
    other = load_causal_lm("tiny-llama")
    other.config.rms_norm_eps = 1e-3  # same tensors, different numbers out
    assert refcache.model_fingerprint(other) != key
    dm, _ = _setup(pref_files)
    split = dm.load_split("train")
    path = refcache.cache_path(tmp_path, split, dm.tokenizer, key)
    monkeypatch.setattr(refcache, "SCORING_VERSION", "next")
    assert refcache.cache_path(tmp_path, split, dm.tokenizer, key) != path


def test_init_policy_starts_the_adapter_from_a_saved_one(tmp_path, pref_files):
    """init_policy: the policy starts as the saved adapter (its log-probs at step 0 are the trained run's),
    the reference stays the base, and the adapter keeps training."""
    dm, module, batch, trained = _trained_adapter(tmp_path, pref_files)
    base = module.scorer.score(batch, "reference").logps
    _, warm = _setup(pref_files, init_policy=str(tmp_path / "hf"), lr=1e-2)
    warm.policy.eval()
    assert torch.allclose(warm.scorer.score(batch, "policy", mode="train").logps, trained, atol=1e-5)
    assert torch.allclose(warm.scorer.score(batch, "reference").logps, base, atol=1e-6)
    assert any(p.requires_grad for n, p in warm.policy.named_parameters() if "lora_" in n)
    with pytest.raises(ValueError, match="init_policy"):
        PreferenceModule(name_or_path="tiny-llama", lora=None, init_policy=str(tmp_path / "hf")).configure_model()
