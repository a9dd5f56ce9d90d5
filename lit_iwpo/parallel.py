"""Sharding the model with FSDP2 (``torch.distributed.fsdp.fully_shard``), apart from model and loss code.

:func:`parallelize` is what ``PreferenceModule.configure_model`` calls when the trainer runs Lightning's
``ModelParallelStrategy`` (which hands the module a device mesh). It is the one place that knows how the
policy is cut into shards:

1. each LoRA adapter's ``lora_A`` / ``lora_B`` modules are sharded apart from the frozen weights they adapt (the
   only trainable parameters: their gradients and optimizer state live in their own small groups);
2. every decoder layer (the classes the model names in ``_no_split_modules``) is one FSDP unit (activation
   checkpointing: ``model.gradient_checkpointing: true``, transformers' own, per decoder layer);
3. the root takes what is left (embeddings, final norm, LM head).

With LoRA, the reference is the same sharded model with the adapter disabled, so policy and reference do not
double memory; with full fine-tuning the frozen reference copy is sharded the same way. This also runs on CPU
(gloo), which Lightning's ``strategy: fsdp`` refuses; the tests check 1 process against 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from lit_iwpo.errors import ConfigError
from lit_iwpo.models.layers import decoder_layer_classes

MIXED_PRECISION = ("bf16", "fp16")


@dataclass
class ShardingSpec:
    """How FSDP2 shards the model (used only under ``trainer.strategy: ModelParallelStrategy``).

    Args:
        mixed_precision: ``bf16`` or ``fp16``: parameters are gathered and computed in that dtype, gradients
            reduced in float32; null: the parameters' own dtype. (Use this, not ``trainer.precision``, with FSDP2.)
        reshard_after_forward: Free each layer's gathered parameters after its forward (ZeRO-3); false keeps
            them until backward (ZeRO-2: faster, more memory).
    """

    mixed_precision: Optional[str] = None
    reshard_after_forward: bool = True


def _dp_mesh(mesh):
    """The data-parallel dimension of Lightning's 2-D (data, tensor) mesh; lit_iwpo does no tensor parallelism."""
    names = mesh.mesh_dim_names or ()
    if "tensor_parallel" in names and mesh["tensor_parallel"].size() > 1:
        raise ConfigError("lit_iwpo shards data-parallel only: set trainer.strategy.init_args.tensor_parallel_size: 1 "
                          "and data_parallel_size to the number of processes")
    return mesh["data_parallel"] if "data_parallel" in names else mesh


def _mp_policy(spec: ShardingSpec):
    from torch.distributed.fsdp import MixedPrecisionPolicy

    if spec.mixed_precision is None:
        return MixedPrecisionPolicy()
    if spec.mixed_precision not in MIXED_PRECISION:
        raise ConfigError(f"model.sharding.mixed_precision must be one of {MIXED_PRECISION} or null, "
                          f"got {spec.mixed_precision!r}")
    dtype = torch.bfloat16 if spec.mixed_precision == "bf16" else torch.float16
    return MixedPrecisionPolicy(param_dtype=dtype, reduce_dtype=torch.float32)


def parallelize(model: nn.Module, mesh, spec: ShardingSpec = ShardingSpec()) -> nn.Module:
    """Shard ``model`` (a transformers causal LM, bare or with peft LoRA adapters) over the data-parallel
    dimension of ``mesh`` with FSDP2, in place; returns it. Units: LoRA modules, decoder layers, root."""
    from torch.distributed.fsdp import fully_shard

    kwargs = dict(mesh=_dp_mesh(mesh), mp_policy=_mp_policy(spec), reshard_after_forward=spec.reshard_after_forward)
    layers = decoder_layer_classes(model)
    for name, module in model.named_modules():  # LoRA adapters: their own units, inside their layer's
        if name.endswith(("lora_A", "lora_B")) and isinstance(module, nn.ModuleDict):
            for adapter in module.values():
                fully_shard(adapter, **kwargs)
    for module in model.modules():
        if isinstance(module, layers):
            fully_shard(module, **kwargs)
    fully_shard(model, **kwargs)
    return model


def shard_module(module: nn.Module, mesh) -> nn.Module:
    """One FSDP2 unit over the data-parallel dimension of ``mesh`` (e.g. an objective's small trainable parts,
    whose gradients must be reduced like the policy's); modules without trainable parameters are left alone."""
    from torch.distributed.fsdp import fully_shard

    if any(p.requires_grad for p in module.parameters()):
        fully_shard(module, mesh=_dp_mesh(mesh))
    return module


def is_sharded(model: nn.Module) -> bool:
    """Whether any parameter of ``model`` is a DTensor (sharded by FSDP2)."""
    from torch.distributed.tensor import DTensor

    return any(isinstance(p, DTensor) for p in model.parameters())
