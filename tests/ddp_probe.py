"""A callback for the distributed tests: each rank saves its weight source's state at the end of fit."""

import contextlib
import os

import lightning as L
import torch


class StoreDump(L.Callback):
    def on_train_end(self, trainer, pl_module):
        source = pl_module.objective.weights
        store = source.store
        state = {"ids": store.ids, "weights": store.weights, "weight_step": store.weight_step,
                 "transforms": store.transforms}
        if hasattr(source, "val_generator"):
            state["val_generator"] = source.val_generator.get_state()
        torch.save(state, os.path.join(os.environ["DDP_PROBE_DIR"], f"store_rank{trainer.global_rank}.pt"))


class StepDump(L.Callback):
    """Each step's loss averaged over ranks (the global batch's loss), and at the end of fit the trainable
    parameters as whole tensors (gathered from their shards under FSDP1 and FSDP2) and the stored weights, if any."""

    def __init__(self) -> None:
        self.losses = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        loss = outputs["loss"].detach().clone()
        if trainer.world_size > 1:
            torch.distributed.all_reduce(loss)
            loss /= trainer.world_size
        self.losses.append(float(loss))

    def on_train_end(self, trainer, pl_module):
        from torch.distributed.fsdp import FullyShardedDataParallel
        from torch.distributed.tensor import DTensor

        from lit_iwpo.models.wrapping import clean_name, has_fsdp1

        params = {}
        whole = (FullyShardedDataParallel.summon_full_params(pl_module, writeback=False) if has_fsdp1(pl_module)
                 else contextlib.nullcontext())
        with whole:
            for name, p in pl_module.named_parameters():
                if p.requires_grad:
                    full = p.full_tensor() if isinstance(p, DTensor) else p
                    params[clean_name(name)] = full.detach().cpu().clone()
        sample = pl_module.objective.sample_weights()
        state = {"losses": self.losses, "params": params,
                 "weights": None if sample is None else (list(sample[0]), sample[1].detach().cpu().clone())}
        if trainer.is_global_zero:
            torch.save(state, os.path.join(os.environ["DDP_PROBE_DIR"], "steps.pt"))
