"""The embedded SmolLM2-135M-Instruct: GGUF conversion, cache reuse, generation, a real DPO step.

Slow (loads and converts a 135M model, ~1-2 min): run with `make test-slow` or `pytest -m slow`.
"""

import math

import pytest
import torch

from lit_iwpo.models import EMBEDDED_ALIAS, convert_gguf, embedded_gguf_path, load_causal_lm, load_tokenizer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    return convert_gguf(embedded_gguf_path(), tmp_path_factory.mktemp("m") / "smollm2")


def test_conversion_matches_gguf_logits(converted):
    from transformers import AutoModelForCausalLM

    gguf = embedded_gguf_path()
    ref = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    plain = AutoModelForCausalLM.from_pretrained(converted, dtype=torch.float32)
    assert sum(p.numel() for p in plain.parameters()) == 134_515_008
    assert plain.config.tie_word_embeddings and "quantization_config" not in plain.config.to_dict()
    x = torch.tensor([[1, 504, 3458, 314, 260, 3575, 30]])
    assert torch.equal(ref(x).logits, plain(x).logits)
    stamps = {f.name: f.stat().st_mtime_ns for f in converted.iterdir()}
    assert convert_gguf(gguf, converted) == converted  # cached: no second conversion
    assert {f.name: f.stat().st_mtime_ns for f in converted.iterdir()} == stamps


def test_alias_answers_and_masks_end_token():
    model, tok = load_causal_lm(EMBEDDED_ALIAS), load_tokenizer(EMBEDDED_ALIAS)
    assert tok.pad_token_id == tok.eos_token_id == 2  # the pitfall the loss masks must survive
    ids = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                  add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = model.generate(**ids, max_new_tokens=12, do_sample=False)
    assert "Paris" in tok.decode(out[0, ids["input_ids"].shape[1]:])


def test_dpo_step_on_embedded_model(tmp_path):
    import lightning as L

    from lit_iwpo.data import PreferenceDataModule
    from lit_iwpo.module import PreferenceModule
    from lit_iwpo.objectives import StepInputs

    dm = PreferenceDataModule(train="scenario:helpful_harmless:train?n_train=8&n_val=4&n_test=4",
                              tokenizer=EMBEDDED_ALIAS, apply_chat_template=True, max_length=128,
                              max_prompt_length=64, batch_size=4)
    dm.setup("fit")
    module = PreferenceModule(lr=1e-3)
    module.configure_model()
    batch = next(iter(dm.train_dataloader()))
    pol, ref = module.scorer.score(batch, "policy", mode="train"), module.scorer.score(batch, "reference")
    out = module.objective(StepInputs(pol, ref, batch, "train"))
    assert torch.allclose(out.per_sample_loss, torch.full((4,), math.log(2)), atol=1e-5)
    before = {k: v.clone() for k, v in module.named_parameters() if v.requires_grad}
    L.Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
              limit_val_batches=0, default_root_dir=tmp_path).fit(module, datamodule=dm)
    after = dict(module.named_parameters())
    assert all(not torch.equal(v, after[k]) for k, v in before.items())
