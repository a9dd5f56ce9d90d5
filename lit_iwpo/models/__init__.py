"""Model loading (hub id, folder, GGUF, embedded alias, tiny), LoRA, the log-prob helper, and trained exports."""

from lit_iwpo.models.loading import (
    EMBEDDED_ALIAS,
    cache_root,
    convert_gguf,
    embedded_gguf_path,
    load_causal_lm,
    load_tokenizer,
    resolve_pretrained,
)
from lit_iwpo.models.logprobs import LogProbs, response_logps
from lit_iwpo.models.lora import LoraSpec, apply_lora, load_adapter
from lit_iwpo.models.tiny import TINY_MODELS, byte_tokenizer, tiny_llama
from lit_iwpo.models.trained import load_trained

__all__ = [
    "EMBEDDED_ALIAS",
    "TINY_MODELS",
    "LogProbs",
    "LoraSpec",
    "apply_lora",
    "byte_tokenizer",
    "cache_root",
    "convert_gguf",
    "embedded_gguf_path",
    "load_adapter",
    "load_causal_lm",
    "load_tokenizer",
    "load_trained",
    "resolve_pretrained",
    "response_logps",
    "tiny_llama",
]
