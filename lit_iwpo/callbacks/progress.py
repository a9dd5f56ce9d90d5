"""The training progress bar: steps of the whole run when ``max_steps`` is set (with an ETA that means
something), epochs otherwise."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar


class StepProgressBar(TQDMProgressBar):
    """Lightning's bar, except that a step-limited run shows ``Epoch E: step S/max_steps`` on one bar that
    runs from the first step to the last (a resumed run starts at its restored step), instead of a per-epoch
    bar whose total is the epoch length. The validation, test and predict bars are Lightning's."""

    def _by_step(self, trainer: L.Trainer) -> bool:
        return trainer.max_steps is not None and trainer.max_steps > 0

    def on_train_start(self, trainer: L.Trainer, *args: Any) -> None:
        super().on_train_start(trainer, *args)
        if self._by_step(trainer):
            # after a checkpoint is restored (a run resumed mid-epoch gets no on_train_epoch_start for that epoch)
            bar = self.train_progress_bar
            bar.reset(total=trainer.max_steps)
            bar.n = bar.initial = trainer.global_step
            bar.set_description(f"Epoch {trainer.current_epoch}")
            bar.refresh()

    def on_train_epoch_start(self, trainer: L.Trainer, *args: Any) -> None:
        if not self._by_step(trainer):
            return super().on_train_epoch_start(trainer, *args)
        self.train_progress_bar.set_description(f"Epoch {trainer.current_epoch}")

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if not self._by_step(trainer):
            return super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        n = trainer.global_step
        if self._should_update(n, self.train_progress_bar.total):
            self.train_progress_bar.n = n
            self.train_progress_bar.refresh()
            self.train_progress_bar.set_postfix(self.get_metrics(trainer, pl_module))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._by_step(trainer):
            return super().on_train_epoch_end(trainer, pl_module)
        if not self.train_progress_bar.disable:
            self.train_progress_bar.set_postfix(self.get_metrics(trainer, pl_module))
