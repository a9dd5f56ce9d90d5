"""A transformers model's decoder layers: which classes they are, and compiling them.

Both FSDP2 (:mod:`lit_iwpo.parallel`, one shard unit per layer) and ``model.compile`` (one compiled graph per
layer) cut the model at its decoder layers, the classes the model names in ``_no_split_modules``.
"""

from __future__ import annotations

import torch
from torch import nn

from lit_iwpo.errors import ConfigError


def decoder_layer_classes(model: nn.Module, purpose: str = "FSDP") -> tuple[type, ...]:
    """The module classes a transformers model marks as not to be split (``_no_split_modules``): its decoder
    layers. Raises (naming ``purpose``) when the model names none that it contains."""
    names: set[str] = set()
    for m in model.modules():
        names.update(getattr(m, "_no_split_modules", None) or [])
    classes = {type(m) for m in model.modules() if type(m).__name__ in names}
    if not classes:
        raise ConfigError(f"{purpose} needs the model's decoder layer classes (_no_split_modules), found none in "
                          f"{type(model).__name__} (names: {sorted(names)})")
    return tuple(sorted(classes, key=lambda c: c.__name__))


def compile_decoder_layers(model: nn.Module) -> int:
    """``torch.compile`` every decoder layer of ``model`` in place (``nn.Module.compile``, dynamic shapes: batches
    differ in length), adapters included; returns how many. The layers share one code object, so one graph is
    traced and reused by every layer; the first forward and backward pay the compilation (tens of seconds to
    minutes on CPU). Everything outside the layers (embeddings, the LM head at response positions, the loss)
    stays eager. The fused elementwise work (norms, rotary embeddings, activations, LoRA's extra matmuls'
    surroundings) is what it saves."""
    layers = decoder_layer_classes(model, purpose="model.compile")
    count = 0
    for module in model.modules():
        if isinstance(module, layers):
            module.compile(dynamic=True)
            count += 1
    return count


def eager():
    """A context in which compiled modules run eagerly (generation: its decoding steps change shapes and take a
    key-value cache, which the compiled training graph was not traced for)."""
    return torch.compiler.set_stance("force_eager")
