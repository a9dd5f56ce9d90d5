"""Sharding the model with FSDP2 (``torch.distributed.fsdp.fully_shard``) or FSDP1 (``FullyShardedDataParallel``,
Lightning's ``FSDPStrategy``), apart from model and loss code.

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

:func:`wrap_fsdp` is the same cut for FSDP1, used under Lightning's ``FSDPStrategy``: ``configure_model`` wraps the
policy (and a full fine-tuning's reference) itself, with the strategy's settings (sharding strategy, mixed
precision, CPU offload, its other FSDP keyword arguments), so Lightning leaves the LightningModule unwrapped.
Units: each LoRA ``lora_A`` / ``lora_B`` layer apart and each decoder layer (peft's ``fsdp_auto_wrap_policy``,
from ``_no_split_modules``); for full fine-tuning the decoder layers alone. :class:`FSDPStrategy` is Lightning's
strategy with the two changes that let it run on CPU (gloo), for tests and for checking a setup before the GPUs.
"""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Optional

import torch
from lightning.pytorch.strategies import FSDPStrategy as _LightningFSDPStrategy
from torch import nn

from lit_iwpo.errors import ConfigError
from lit_iwpo.models.layers import decoder_layer_classes
from lit_iwpo.models.wrapping import has_fsdp1

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
    """Whether ``model`` is sharded: an FSDP1 wrapper, or any parameter a DTensor (FSDP2)."""
    from torch.distributed.tensor import DTensor

    return has_fsdp1(model) or any(isinstance(p, DTensor) for p in model.parameters())


# ----------------------------------------------------------------------------------------------------- FSDP1
def fsdp_wrap_policy(model: nn.Module):
    """FSDP1's auto-wrap policy for ``model``: with LoRA (a peft model), peft's own (each trainable leaf, i.e.
    every ``lora_A`` / ``lora_B`` layer, apart; each decoder layer named in ``_no_split_modules``); without it,
    the decoder layers alone (a unit per trainable leaf would cut a fully trained model into hundreds)."""
    from peft import PeftModel
    from torch.distributed.fsdp.wrap import ModuleWrapPolicy

    if isinstance(model, PeftModel):
        from peft.utils.other import fsdp_auto_wrap_policy

        decoder_layer_classes(model)  # the same clear error as FSDP2's when the model names no layers
        return fsdp_auto_wrap_policy(model)
    return ModuleWrapPolicy(set(decoder_layer_classes(model)))


def fsdp_kwargs(strategy) -> dict:
    """The FSDP1 keyword arguments of a Lightning ``FSDPStrategy`` (what it would wrap the whole LightningModule
    with), for wrapping the policy itself. ``use_orig_params`` is always on: a LoRA model keeps frozen and
    trainable parameters side by side, and the optimizer and checkpoints address the original parameters."""
    kwargs = dict(strategy.kwargs)
    if kwargs.get("use_orig_params") is False:
        raise ConfigError("lit_iwpo's FSDP wrapping needs use_orig_params=True (LoRA keeps frozen and trainable "
                          "parameters in the same layers; the optimizer and checkpoints address the originals)")
    kwargs["use_orig_params"] = True
    if strategy.root_device.type != "cpu":  # every rank starts from rank 0's weights (FSDP1 syncs on GPUs only;
        kwargs.setdefault("sync_module_states", True)  # every rank builds the same model from the same seed anyway)
    mixed = strategy.mixed_precision_config
    if mixed is not None:  # each unit casts its inputs to its compute dtype: peft hands a LoRA layer its input
        mixed = dataclasses.replace(mixed, cast_forward_inputs=True)  # in the dtype of its (original) weight
    return dict(kwargs, cpu_offload=strategy.cpu_offload, mixed_precision=mixed,
                sharding_strategy=strategy.sharding_strategy, device_id=strategy.root_device)


def wrap_fsdp(model: nn.Module, strategy) -> nn.Module:
    """``model`` wrapped in FSDP1 with ``strategy``'s settings (:func:`fsdp_kwargs`), its units from
    :func:`fsdp_wrap_policy` unless the strategy names its own ``auto_wrap_policy``."""
    from torch.distributed.fsdp import FullyShardedDataParallel

    kwargs = fsdp_kwargs(strategy)
    kwargs.setdefault("auto_wrap_policy", fsdp_wrap_policy(model))
    return FullyShardedDataParallel(model, **kwargs)


class FSDPStrategy(_LightningFSDPStrategy):
    """Lightning's ``FSDPStrategy``, made to run on CPU processes (gloo) as well: for tests, and for checking a
    setup before the GPUs. On GPUs it behaves as Lightning's own (``configs/distributed/fsdp_gpu.yaml`` uses that).

    Two things stop Lightning's class on CPU. It refuses itself without CUDA (it would hand FSDP1 the device
    *index*, which a CPU device lacks); lit_iwpo wraps the model in ``PreferenceModule.configure_model``
    (:func:`wrap_fsdp`) and gives FSDP1 the device itself, and Lightning's check is on its exact class, which a
    subclass passes. And it gathers whole checkpoints with ``offload_to_cpu``, which on tensors already on the CPU
    makes FSDP1 free memory that the gathered tensors still use (the process crashes); here, on CPU, whole
    checkpoints are saved and loaded without that offload.
    """

    @contextmanager
    def _without_offload(self) -> Iterator[None]:
        if self.root_device.type != "cpu":
            yield
            return
        import lightning.fabric.strategies.fsdp as fabric_fsdp
        import lightning.pytorch.strategies.fsdp as pytorch_fsdp

        def context(module: nn.Module, world_size: int, rank0_only: bool = True):
            from torch.distributed.fsdp import FullOptimStateDictConfig, FullStateDictConfig, StateDictType
            from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

            del world_size
            return FSDP.state_dict_type(module, StateDictType.FULL_STATE_DICT,
                                        FullStateDictConfig(offload_to_cpu=False, rank0_only=rank0_only),
                                        FullOptimStateDictConfig(offload_to_cpu=False, rank0_only=rank0_only))

        saved = pytorch_fsdp._get_full_state_dict_context, fabric_fsdp._get_full_state_dict_context
        pytorch_fsdp._get_full_state_dict_context = fabric_fsdp._get_full_state_dict_context = context
        try:
            yield
        finally:
            pytorch_fsdp._get_full_state_dict_context, fabric_fsdp._get_full_state_dict_context = saved

    def lightning_module_state_dict(self) -> dict[str, Any]:
        with self._without_offload():
            return super().lightning_module_state_dict()

    def optimizer_state(self, optimizer) -> dict[str, Any]:
        with self._without_offload():
            return super().optimizer_state(optimizer)

    def load_checkpoint(self, checkpoint_path, weights_only: Optional[bool] = None) -> dict[str, Any]:
        with self._without_offload():
            return super().load_checkpoint(checkpoint_path, weights_only=weights_only)
