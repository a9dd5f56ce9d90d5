"""What an FSDP wrapper hides from the code that scores with a model.

FSDP2 (``fully_shard``) keeps the module's own class and names, and gathers its root's weights in the root's
forward. FSDP1 (``FullyShardedDataParallel``, Lightning's ``FSDPStrategy``) puts a wrapper around the module:
attribute access passes through, but ``isinstance`` checks see the wrapper, parameter names gain a
``_fsdp_wrapped_module.`` prefix, and the root's weights are gathered only in the wrapper's forward, so a
method that calls the inner module's forward itself (``generate``) must gather them first.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import ContextManager

from torch import nn

# the prefixes FSDP1 and its activation-checkpoint wrapper put into parameter and buffer names
_WRAPPER_PREFIXES = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.")


def is_fsdp1(model: nn.Module) -> bool:
    """Whether ``model`` is an FSDP1 wrapper (``FullyShardedDataParallel``)."""
    from torch.distributed.fsdp import FullyShardedDataParallel

    return isinstance(model, FullyShardedDataParallel)


def is_fsdp_root(model: nn.Module) -> bool:
    """Whether ``model`` is the root of an FSDP sharding, FSDP1 or FSDP2: its forward gathers the weights that
    belong to no inner unit (embeddings, final norm, LM head), so scoring must go through it."""
    if is_fsdp1(model):
        return True
    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:  # a torch without FSDP2
        return False
    return isinstance(model, FSDPModule)


def has_fsdp1(model: nn.Module) -> bool:
    """Whether ``model`` or any module inside it is an FSDP1 wrapper."""
    return any(is_fsdp1(m) for m in model.modules())


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside an FSDP1 wrapper (``model`` itself otherwise), for type checks."""
    return model.module if is_fsdp1(model) else model


def clean_name(name: str) -> str:
    """A parameter or buffer name without FSDP1's wrapper prefixes: the name it has in an unwrapped model."""
    for prefix in _WRAPPER_PREFIXES:
        name = name.replace(prefix, "")
    return name


def root_gathered(model: nn.Module) -> ContextManager:
    """A context in which a method of ``model`` may run the inner module's forward directly (``generate``):
    an FSDP1 root's own weights are gathered (every rank must enter it together; inner units gather theirs in
    their own forwards). Nothing to do for FSDP2 or an unsharded model."""
    if not is_fsdp1(model):
        return nullcontext()
    from torch.distributed.fsdp import FullyShardedDataParallel

    return FullyShardedDataParallel.summon_full_params(model, recurse=False, writeback=False)
