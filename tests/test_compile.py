"""``model.compile``: compiled decoder layers give the eager log-probs and gradients (independent computation: the
same model uncompiled), across batch shapes without recompiling; generation stays eager; the wiring."""

import shutil

import pytest
import torch

from lit_iwpo.errors import ConfigError
from lit_iwpo.models import LoraSpec, response_logps
from lit_iwpo.models.generation import GenerationSpec, generate_texts
from lit_iwpo.models.layers import compile_decoder_layers
from lit_iwpo.models.lora import apply_lora
from lit_iwpo.models.tiny import byte_tokenizer, tiny_llama
from lit_iwpo.module import PreferenceModule
from test_shared_prompt import _batch


def _model():
    model = apply_lora(tiny_llama(), LoraSpec(r=4, target_modules=["q_proj", "v_proj"]))
    for p in model.parameters():  # random adapters, so the policy is not the base
        if p.requires_grad:
            torch.nn.init.normal_(p, std=0.02, generator=torch.Generator().manual_seed(p.numel()))
    return model


def _logps_and_grads(model, batch):
    out = response_logps(model, batch.input_ids, batch.attention_mask, batch.loss_mask, share_prompt=True)
    loss = -torch.nn.functional.logsigmoid(out.chosen - out.rejected).mean()
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()
    return out.logps.detach(), grads


@pytest.mark.skipif(not (shutil.which("g++") or shutil.which("c++")), reason="inductor on CPU needs a C++ compiler")
def test_compiled_layers_give_the_eager_numbers_across_shapes_and_generation_stays_eager():
    import torch._dynamo

    eager_model, compiled = _model(), _model()
    assert compile_decoder_layers(compiled) == 2
    torch._dynamo.reset()
    batches = [_batch([(5, 3, 7), (2, 6, 1), (9, 4, 4)], seed=0), _batch([(11, 2, 5), (3, 9, 8)], seed=1)]
    traced = []
    for batch in batches:  # two batch shapes: graphs with symbolic shapes serve both
        want, want_grads = _logps_and_grads(eager_model, batch)
        got, got_grads = _logps_and_grads(compiled, batch)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        for name in want_grads:
            torch.testing.assert_close(got_grads[name], want_grads[name], rtol=1e-4, atol=1e-6)
        traced.append(torch._dynamo.utils.counters["stats"]["unique_graphs"])
    # two graphs for all layers: the first layer's input (frozen embeddings) needs no gradient, the others' do
    assert traced == [2, 2], f"graphs traced after each batch: {traced} (a new shape must not recompile)"
    frames = traced[-1]
    tok = byte_tokenizer()
    enc = tok(["<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"], return_tensors="pt")
    spec = GenerationSpec(max_new_tokens=6, do_sample=True)
    texts = [generate_texts(m, tok, enc.input_ids, enc.attention_mask, spec) for m in (eager_model, compiled)]
    assert texts[0] == texts[1]
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == frames  # nothing traced for generation


def test_module_compiles_each_decoder_layer_and_refuses_sharding():
    module = PreferenceModule(name_or_path="tiny-llama", compile=True)
    module.configure_model()
    layers = module.policy.get_base_model().model.layers
    assert len(layers) == 2 and all(layer._compiled_call_impl is not None for layer in layers)
    plain = PreferenceModule(name_or_path="tiny-llama")
    plain.configure_model()
    assert all(layer._compiled_call_impl is None for layer in plain.policy.get_base_model().model.layers)
    sharded = PreferenceModule(name_or_path="tiny-llama", compile=True)
    sharded._device_mesh = object()  # as ModelParallelStrategy sets it
    with pytest.raises(ConfigError, match="model.compile"):
        sharded.configure_model()
