"""Tiny offline models for tests and smoke runs: a byte-level tokenizer and a random Llama.

The byte tokenizer mirrors the embedded SmolLM2's conventions that matter for masking
(ChatML template, pad token == end-of-turn token) with a 259-token vocabulary, so a 2-layer model
steps in milliseconds instead of the ~1 s a 49k vocabulary costs on CPU.
"""

from __future__ import annotations

import torch
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from lit_iwpo.errors import ConfigError

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# name -> LlamaConfig overrides; the vocabulary size comes from the byte tokenizer
TINY_MODELS = {
    "tiny-llama": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2),
    "tiny-llama-4l": dict(hidden_size=96, intermediate_size=192, num_hidden_layers=4, num_attention_heads=4,
                          num_key_value_heads=2),
}


def byte_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer with no merges: every UTF-8 byte is one token (+3 specials)."""
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for ch in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[ch] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(s, special=True) for s in SPECIAL_TOKENS])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",  # as in SmolLM2: masks must never be derived from the pad id
        unk_token="<|endoftext|>",
        model_max_length=4096,
    )
    fast.chat_template = CHATML_TEMPLATE
    return fast


def tiny_llama(name: str = "tiny-llama", seed: int = 0, **overrides) -> LlamaForCausalLM:
    """A randomly initialised Llama sized by ``TINY_MODELS[name]``, deterministic in ``seed``.

    The global RNG is left untouched (the init runs in a forked RNG state), so building a model never
    shifts the random stream of the training run around it.
    """
    if name not in TINY_MODELS:
        raise ConfigError(f"unknown tiny model {name!r}; choose one of {sorted(TINY_MODELS)}")
    tok = byte_tokenizer()
    cfg = LlamaConfig(
        vocab_size=len(tok),
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        **{**TINY_MODELS[name], **overrides},
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(cfg)
    return model
