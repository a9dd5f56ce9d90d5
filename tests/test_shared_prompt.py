"""The shared-prompt layout: a pair's prompt run once, in one row [prompt | chosen | rejected], gives the two-row
layout's log-probs, gradients and pooled states (independent computation: each row through the full model)."""

import pytest
import torch

from lit_iwpo.data.collate import collate_pairs
from lit_iwpo.data.tokenize import TokenizedPair
from lit_iwpo.models import LoraSpec, response_logps
from lit_iwpo.models.logprobs import shared_prompt_layout
from lit_iwpo.models.lora import apply_lora
from lit_iwpo.models.tiny import tiny_llama


def _batch(lengths, seed=0, vocab=200):
    """Pairs with prompts of the given lengths and responses (chosen, rejected) of the given lengths."""
    g = torch.Generator().manual_seed(seed)
    items = []
    for i, (p, c, r) in enumerate(lengths):
        ids = lambda n: torch.randint(3, vocab, (n,), generator=g).tolist()
        items.append((i, f"s{i}", TokenizedPair(prompt=ids(p), chosen=ids(c), rejected=ids(r))))
    return collate_pairs(items, pad_id=0, split="train")


LENGTHS = [(5, 3, 7), (2, 6, 1), (9, 4, 4)]


def _model(attn):
    model = apply_lora(tiny_llama(attn_implementation=attn), LoraSpec(r=4, target_modules=["q_proj", "v_proj"]))
    assert model.config._attn_implementation == attn
    for p in model.parameters():  # random adapters, so the policy is not the base
        if p.requires_grad:
            torch.nn.init.normal_(p, std=0.02)
    return model


def _by_hand(model, batch):
    """Each canonical row alone through the whole model (no padding, no batching): log-probs of its response."""
    out = []
    for row in range(batch.input_ids.shape[0]):
        n = int(batch.attention_mask[row].sum())
        ids, resp = batch.input_ids[row, :n], batch.loss_mask[row, :n].bool()
        logits = model(input_ids=ids[None]).logits[0, :-1].float()
        logp = torch.log_softmax(logits, -1).gather(-1, ids[1:, None]).squeeze(-1)
        out.append(logp[resp[1:]].sum())
    return torch.stack(out)


def test_layout_by_hand():
    """One pair: prompt [a b], chosen [c], rejected [d e]: row [a b c d e]; d sits at position 2 like c and
    sees a, b (not c); e sees a, b, d."""
    batch = collate_pairs([(0, "s", TokenizedPair(prompt=[11, 12], chosen=[13], rejected=[14, 15]))], pad_id=0,
                          split="train", pad_to_multiple_of=1)
    lay = shared_prompt_layout(batch.input_ids, batch.attention_mask, batch.loss_mask)
    assert lay.input_ids.tolist() == [[11, 12, 13, 14, 15]]
    assert lay.position_ids.tolist() == [[0, 1, 2, 2, 3]]
    assert lay.allowed[0].int().tolist() == [[1, 0, 0, 0, 0],
                                             [1, 1, 0, 0, 0],
                                             [1, 1, 1, 0, 0],
                                             [1, 1, 0, 1, 0],
                                             [1, 1, 0, 1, 1]]
    # canonical rows [11 12 13 pad] and [11 12 14 15] map to packed positions
    assert lay.source.tolist() == [[0, 1, 2, 0], [0, 1, 3, 4]]


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_shared_prompt_gives_the_two_row_numbers_and_gradients(attn):
    batch = _batch(LENGTHS)
    model = _model(attn)
    want_by_hand = _by_hand(model, batch)
    runs = {}
    for share in (False, True):
        model.zero_grad()
        out = response_logps(model, batch.input_ids, batch.attention_mask, batch.loss_mask, return_logits=True,
                             pool="mean_response", share_prompt=share)
        (out.logps * torch.arange(1.0, 7.0)).sum().backward()  # distinct weights: every row's gradient counts
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        runs[share] = (out, grads)
    two, shared = runs[False][0], runs[True][0]
    torch.testing.assert_close(shared.logps, want_by_hand, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(shared.logps, two.logps, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(shared.token_logps, two.token_logps, rtol=1e-5, atol=1e-5)
    assert torch.equal(shared.mask, two.mask)
    torch.testing.assert_close(shared.logits, two.logits, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(shared.embeddings, two.embeddings, rtol=1e-4, atol=1e-5)
    assert runs[True][1].keys() == runs[False][1].keys() and runs[True][1]
    for name, g in runs[False][1].items():
        torch.testing.assert_close(runs[True][1][name], g, rtol=1e-4, atol=1e-6, msg=name)


def test_batches_that_are_not_pairs_keep_the_two_row_layout():
    batch = _batch(LENGTHS)
    other = batch.input_ids.clone()
    other[4, 1] += 1  # rejected row 1's prompt differs from chosen row 1's: no shared prompt
    assert shared_prompt_layout(other, batch.attention_mask, batch.loss_mask) is None
    assert shared_prompt_layout(batch.input_ids[:5], batch.attention_mask[:5], batch.loss_mask[:5]) is None
    left = torch.roll(batch.attention_mask, 1, dims=1)  # a left-padded row is not the canonical layout
    assert shared_prompt_layout(batch.input_ids, left, batch.loss_mask) is None
    model = _model("sdpa")
    got = response_logps(model, other, batch.attention_mask, batch.loss_mask, share_prompt=True)
    want = response_logps(model, other, batch.attention_mask, batch.loss_mask)
    assert torch.equal(got.logps, want.logps)


def test_the_root_forward_path_of_sharded_models_gives_the_same_numbers(monkeypatch):
    """Under FSDP (1 or 2) the forward goes through the model's own root forward with ``logits_to_keep`` (the packed
    columns some response token needs); checked here on one process by taking that path for a plain model."""
    from lit_iwpo.models import logprobs

    batch = _batch(LENGTHS, seed=1)
    model = _model("sdpa")
    want = response_logps(model, batch.input_ids, batch.attention_mask, batch.loss_mask, return_logits=True,
                          pool="last_prompt")
    monkeypatch.setattr(logprobs, "is_fsdp_root", lambda m: True)
    got = response_logps(model, batch.input_ids, batch.attention_mask, batch.loss_mask, return_logits=True,
                         pool="last_prompt", share_prompt=True)
    torch.testing.assert_close(got.logps, want.logps, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got.logits, want.logits, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got.embeddings, want.embeddings, rtol=1e-4, atol=1e-5)
