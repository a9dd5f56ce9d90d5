"""Small helpers for running on one or several processes (DDP): rank, world size, gathering rows, and
computing a value once and handing it to every rank."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import torch
from torch import Tensor

T = TypeVar("T")


def rank_world(obj: Any) -> tuple[int, int]:
    """(global rank, world size) of a LightningModule, LightningDataModule or Trainer; (0, 1) when detached."""
    import lightning as L

    if isinstance(obj, L.Trainer):
        trainer = obj
    elif hasattr(obj, "_trainer"):  # LightningModule (its .trainer property raises while detached)
        trainer = obj._trainer
    else:  # LightningDataModule, or a stand-in without a trainer
        trainer = getattr(obj, "trainer", None)
    return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)


def _distributed(world: int) -> bool:
    return world > 1 and torch.distributed.is_available() and torch.distributed.is_initialized()


def gather_rows(module: Any, *tensors: Tensor) -> tuple[Tensor, ...]:
    """Concatenate each tensor's rows over all ranks, in rank order (unchanged on one process).

    Every rank must call this with tensors of the same shape (our samplers give every rank equal batches).
    """
    if rank_world(module)[1] <= 1:
        return tensors
    return tuple(module.all_gather(t).reshape(-1, *t.shape[1:]) for t in tensors)


def broadcast_object(obj: Any, rank: int, world: int, src: int = 0) -> Any:
    """``obj`` of rank ``src`` on every rank (pickled; tensors travel on the CPU)."""
    if not _distributed(world):
        return obj
    box = [obj if rank == src else None]
    torch.distributed.broadcast_object_list(box, src=src)
    return box[0]


class _Failed:
    """An exception raised on the computing rank, shipped to the others so every rank raises it together."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


def _to_cpu(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.detach().cpu()
    if isinstance(value, (tuple, list)):
        return type(value)(_to_cpu(v) for v in value)
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    return value


def compute_once(fn: Callable[[], T], rank: int, world: int, everywhere: bool = False) -> T:
    """``fn()`` computed on rank 0 only and broadcast, so every rank holds the very same value.

    Every estimate of weights (and every statistic of them) goes through here: estimators with iterative
    solvers need not be bit-reproducible across processes, and a forward pass on D_v need not run on every
    rank. An exception on rank 0 is raised on every rank, so none is left waiting in a collective. ``fn``
    must not itself run collectives (the other ranks are not there to match them), unless ``everywhere``:
    then every rank runs ``fn`` (e.g. forwards of a sharded model, each a collective) and rank 0's value is
    still the one every rank keeps.
    """
    if not _distributed(world):
        return fn()
    value: Any = None
    if everywhere:
        try:
            value = _to_cpu(fn())
        except Exception as err:  # noqa: BLE001
            value = _Failed(err)
        if rank != 0:
            value = None
    elif rank == 0:
        try:
            value = _to_cpu(fn())
        except Exception as err:  # noqa: BLE001 - re-raised below on every rank
            value = _Failed(err)
    value = broadcast_object(value, rank, world)
    if isinstance(value, _Failed):
        raise value.error
    return value
