"""ImportanceWeightRefresh: re-estimate and export per-sample importance weights during training."""

from __future__ import annotations

from typing import Optional

import lightning as L
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from lit_iwpo.callbacks.artifacts import run_dir
from lit_iwpo.errors import ConfigError
from lit_iwpo.objectives.weights.base import Refreshable, WeightExport
from lit_iwpo.progress import phase


class ImportanceWeightRefresh(L.Callback):
    """Refreshes the sample weights of an objective and writes them out.

    It drives every weight source of ``model.objective`` through two protocols
    (``lit_iwpo.objectives.weights.base``): a :class:`Refreshable` source (e.g. IW-DPO with ``pool: refresh``)
    is re-estimated over all of D_tr every ``every_n_steps`` training steps and/or every ``every_n_epochs``
    epochs, once it says a refresh is due (after its warm-up), or on the steps of its own interval
    (``refresh_every``) when it has one; a :class:`WeightExport` source (IW-DPO, WPO,
    data-column weights) is snapshotted. Each snapshot writes the source's tables, e.g.
    ``weights/step=NNNNNN.parquet`` (id, step, weight, weight_step, z0[, z1], group, relevant) and, for
    IW-DPO, ``weights/transform_step=NNNNNN.parquet`` (id, step, transform_step: the step whose policy computed
    each row's z) and ``weights/val_step=NNNNNN.parquet`` (D_v's transforms by this step's policy), in the run
    directory; logs ``iw/ess``, ``iw/max``, ``iw/min``, the mean weight of relevant and irrelevant pairs when
    the data says which are which, and a weight histogram when a TensorBoard logger is on.

    Args:
        every_n_steps: Refresh every this many training steps (None: not by steps).
        every_n_epochs: Refresh at the end of every this many epochs (None: not by epochs).
        recompute_train: Force recomputing every training transform with the current policy, whatever the
            weight source's own setting (IW-DPO recomputes all by default: ``objective.transform_max_age``).
        write_weights: Write the parquet snapshots.
    """

    def __init__(self, every_n_steps: Optional[int] = None, every_n_epochs: Optional[int] = 1,
                 recompute_train: bool = False, write_weights: bool = True) -> None:
        if every_n_steps is None and every_n_epochs is None:
            raise ConfigError("ImportanceWeightRefresh needs every_n_steps or every_n_epochs")
        self.every_n_steps = every_n_steps
        self.every_n_epochs = every_n_epochs
        self.recompute_train = recompute_train
        self.write_weights = write_weights
        self._last_step = -1

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        run_dir(trainer)  # a collective the first time: on every rank, before any rank-0-only write

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step <= 0:
            return
        scheduled = bool(self.every_n_steps) and step % self.every_n_steps == 0
        # a source with its own interval (IW-DPO's refresh_every) is re-estimated on its steps, not the callback's
        own = any(isinstance(s, Refreshable) and s.refresh_every is not None and s.refresh_due(step)
                  for s in pl_module.objective.weight_sources())
        if scheduled or own:
            self.refresh(trainer, pl_module, log_as="step")

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self.every_n_epochs and (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self.refresh(trainer, pl_module, log_as="epoch")  # Lightning allows only on_epoch logging here

    def on_train_end(self, trainer, pl_module) -> None:
        # a final snapshot, so the run directory always holds the weights the run ended with
        self.refresh(trainer, pl_module, log_as=None)  # Lightning allows no self.log() in on_train_end

    def refresh(self, trainer: L.Trainer, pl_module: L.LightningModule, log_as: str | None = "step") -> None:
        """Re-estimate (refreshable sources) and snapshot the weights; ``log_as``: step, epoch or None (no logging)."""
        step = trainer.global_step
        sources = [s for s in pl_module.objective.weight_sources() if isinstance(s, WeightExport)]
        if not sources or step == self._last_step:
            return
        self._last_step = step
        ctx = pl_module.context
        for source in sources:
            values: dict[str, float] = {}
            if isinstance(source, Refreshable) and source.refresh_due(step):
                with phase(trainer, "weight_refresh"):
                    values["iw/fallback"] = float(not source.refresh(ctx, recompute=self.recompute_train))
            values.update(ctx.compute_once(source.weight_summary))
            if log_as is not None:
                for name, value in values.items():
                    pl_module.log(name, value, on_step=log_as == "step", on_epoch=log_as == "epoch")
            tables = source.weight_tables(ctx) if self.write_weights else {}
            if trainer.is_global_zero:
                self._histogram(trainer, source.estimated_weights(), step)
                self.write(trainer, tables, step)

    @staticmethod
    def write(trainer: L.Trainer, tables: dict[str, dict[str, list]], step: int) -> None:
        out = run_dir(trainer) / "weights"
        out.mkdir(parents=True, exist_ok=True)
        for prefix, table in tables.items():
            pq.write_table(pa.table(table), out / f"{prefix}={step:06d}.parquet")

    @staticmethod
    def _histogram(trainer: L.Trainer, weights: torch.Tensor, step: int) -> None:
        from lightning.pytorch.loggers import TensorBoardLogger

        if not weights.numel():
            return
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_histogram("iw/weights", weights, step)
