"""A callback for the distributed tests: each rank saves its weight source's state at the end of fit."""

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
