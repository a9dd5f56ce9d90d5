"""Run outputs: summary.json, the Hugging Face adapter/model, and predictions.jsonl."""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info

from lit_iwpo.progress import phase_seconds


def run_dir(trainer: L.Trainer) -> Path:
    """The run directory: the logger's versioned folder (``runs/NAME/version_N``) or default_root_dir.

    ``trainer.log_dir`` is a collective (rank 0 broadcasts its path), so the first call must happen on every
    rank at once: callbacks call this in ``setup``; later calls, also rank-0-only ones, read the cached value.
    """
    cached = getattr(trainer, "_lit_iwpo_run_dir", None)
    if cached is None:
        cached = Path(trainer.log_dir or trainer.default_root_dir)
        trainer._lit_iwpo_run_dir = cached
    return cached


def _scalar(value: Any) -> float | None:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            return None
        value = value.item()
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def update_summary(path: Path, values: dict[str, Any]) -> dict[str, Any]:
    """Merge flat ``values`` into the JSON file at ``path`` (created if absent) and return the result."""
    summary = json.loads(path.read_text()) if path.is_file() else {}
    summary.update(values)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(summary, indent=2, sort_keys=True))
    tmp.replace(path)
    return summary


def remove_empty_run(path: Path | None) -> bool:
    """Delete a failed run's folder if it holds nothing but its saved config (no checkpoint, metric or output)."""
    if path is None or not path.is_dir():
        return False
    if any(p.is_file() and p.name not in ("config.yaml", "hparams.yaml") for p in path.rglob("*")):
        return False
    shutil.rmtree(path, ignore_errors=True)
    return True


class RunArtifacts(L.Callback):
    """Writes the outputs every run leaves in its run directory.

    - ``summary.json``: the final val/test metrics (and weight statistics) as flat keys named as logged,
      e.g. ``test/rewards/accuracies``; updated after every validation and test run. After fit it also holds
      ``train/loss_final`` (the last step's training loss), ``config`` (the resolved config the run saved),
      and wall-clock seconds per phase, ``time/<phase>_s``: ``total`` (from setup to the last output),
      ``train_loop`` (the fit loop, including its validations and weight refreshes), ``validate``, ``test``,
      and, where they ran, ``reference_logps``, ``weight_refresh``, ``win_rate`` (generation and judging).
    - ``hf/``: the trained adapter (LoRA) or model in Hugging Face format, loadable with peft/transformers.
    - ``predictions.jsonl``: generations of ``lit_iwpo predict``.

    Args:
        save_hf: Save the trained adapter/model under ``hf/`` at the end of fit.
        summary_name: File name of the summary.
        predictions_name: File name of the predictions written by predict.
    """

    def __init__(self, save_hf: bool = True, summary_name: str = "summary.json",
                 predictions_name: str = "predictions.jsonl") -> None:
        self.save_hf = save_hf
        self.summary_name = summary_name
        self.predictions_name = predictions_name
        self._predictions: list[dict[str, Any]] = []
        self._starts: dict[str, float] = {}
        self.last_val_step: int | None = None  # global step of the last completed validation

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        run_dir(trainer)  # on every rank: see run_dir
        if not hasattr(trainer, "lit_iwpo_started"):
            trainer.lit_iwpo_started = time.perf_counter()
        self._starts: dict[str, float] = {}

    def _start(self, name: str) -> None:
        self._starts[name] = time.perf_counter()

    def _stop(self, trainer: L.Trainer, name: str) -> None:
        start = self._starts.pop(name, None)
        if start is not None:
            times = phase_seconds(trainer)
            times[name] = times.get(name, 0.0) + time.perf_counter() - start

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start("train_loop")

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._start("validate")

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start("test")

    def timings(self, trainer: L.Trainer) -> dict[str, float]:
        """``time/<phase>_s`` of the phases so far, and ``time/total_s`` since setup."""
        values = {f"time/{name}_s": round(sec, 3) for name, sec in phase_seconds(trainer).items()}
        started = getattr(trainer, "lit_iwpo_started", None)
        if started is not None:
            values["time/total_s"] = round(time.perf_counter() - started, 3)
        return values

    def finish(self, trainer: L.Trainer) -> None:
        """Write the timings of everything that ran and print where the outputs are (the CLI calls this last)."""
        if trainer.is_global_zero:
            update_summary(self.summary_path(trainer), self.timings(trainer))
        self.announce(trainer)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        # a run that failed before writing anything leaves nothing behind; otherwise the error says where it is
        if not trainer.is_global_zero:
            return
        path = getattr(trainer, "_lit_iwpo_run_dir", None)
        if path is None and trainer.logger is not None and trainer.logger.log_dir:
            path = Path(trainer.logger.log_dir)  # failed before setup; not the collective trainer.log_dir
        if path is None:
            return
        if remove_empty_run(path):
            if path.parent.is_dir() and not any(path.parent.iterdir()):
                path.parent.rmdir()  # the logger's name folder, if this run was its only one
        else:
            try:
                exception.run_dir = path  # type: ignore[attr-defined]  (the CLI prints it with the error)
            except AttributeError:
                pass

    def summary_path(self, trainer: L.Trainer) -> Path:
        return run_dir(trainer) / self.summary_name

    def _write_metrics(self, trainer: L.Trainer) -> None:
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        # step-level train values are in metrics.csv; the summary keeps epoch-level results
        values = {k: _scalar(v) for k, v in trainer.callback_metrics.items() if not k.startswith("train/")}
        values = {k: v for k, v in values.items() if v is not None}
        values["global_step"] = trainer.global_step
        update_summary(self.summary_path(trainer), values)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.last_val_step = trainer.global_step
            self._stop(trainer, "validate")
        self._write_metrics(trainer)

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._stop(trainer, "test")
        self._write_metrics(trainer)
        if trainer.is_global_zero and trainer.state.fn == "test":
            update_summary(self.summary_path(trainer), self.timings(trainer))

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._stop(trainer, "train_loop")
        # ModelCheckpoint(save_last) writes last.ckpt at the end of training only if no "last" was saved before,
        # so an interval that does not divide max_steps leaves a last.ckpt behind the run's final step. Mark
        # such a stale "last" unsaved: ModelCheckpoint.on_train_end (checkpoint callbacks run after this one)
        # then writes the final state, which resumes exactly (see lit_iwpo.resume).
        for cb in trainer.checkpoint_callbacks:
            if cb.save_last and getattr(cb, "_last_global_step_saved", trainer.global_step) != trainer.global_step:
                cb._last_checkpoint_saved = ""

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # a sharded (FSDP2) policy is gathered whole first: a collective, on every rank
        whole = pl_module.full_state_dict() if self.save_hf else None
        if not trainer.is_global_zero:
            return
        out = run_dir(trainer)
        if self.save_hf:
            pl_module.save_hf(out / "hf", state_dict=whole)
        values: dict[str, Any] = {"global_step": trainer.global_step}
        loss = _scalar(trainer.callback_metrics.get("train/loss"))
        if loss is not None:
            values["train/loss_final"] = loss
        config = out / "config.yaml"
        if config.is_file():
            values["config"] = str(config.resolve())
        update_summary(self.summary_path(trainer), {**values, **self.timings(trainer)})

    @staticmethod
    def announce(trainer: L.Trainer) -> None:
        """Print where the run's outputs are (the CLI calls this once everything is written)."""
        if trainer.is_global_zero:
            out = run_dir(trainer)
            listing = ", ".join(sorted(p.name + ("/" if p.is_dir() else "") for p in out.iterdir()))
            rank_zero_info(f"lit_iwpo: outputs in {out}/  ({listing})")

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._predictions = []

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._predictions.extend(outputs or [])

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        gathered = [self._predictions]
        if trainer.world_size > 1 and torch.distributed.is_initialized():
            gathered = [None] * trainer.world_size
            torch.distributed.all_gather_object(gathered, self._predictions)
        if not trainer.is_global_zero:
            return
        path = run_dir(trainer) / self.predictions_name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as fh:
            for part in gathered:
                for rec in part:
                    fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
        rank_zero_info(f"lit_iwpo: wrote {sum(map(len, gathered))} generations to {path}")
