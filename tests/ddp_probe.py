"""A callback for the distributed test: each rank saves its importance-weight store at the end of fit."""

import os

import lightning as L
import torch


class StoreDump(L.Callback):
    def on_train_end(self, trainer, pl_module):
        store = pl_module.objective.weights.store
        torch.save({"ids": store.ids, "weights": store.weights, "transforms": store.transforms},
                   os.path.join(os.environ["DDP_PROBE_DIR"], f"store_rank{trainer.global_rank}.pt"))
