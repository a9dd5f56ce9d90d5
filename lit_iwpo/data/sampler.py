"""A training sampler and loader that resume mid-epoch at the exact next sample.

Lightning saves the ``state_dict`` of any stateful train dataloader in its checkpoints and restores it
before iterating. The position must count batches the *loop consumed*, not batches the loader
produced (Lightning prefetches one batch ahead, worker processes more), so the loader asks the trainer
for its progress when a checkpoint is written.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable, Iterator

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Sampler


class TrainSampler(Sampler[int], ABC):
    """The training order as a strategy (``data.sampler``): bound to the training split by the data module,
    sharded over ranks, resumable at any sample.

    Subclasses give :meth:`order`, this rank's index order for an epoch; everything else (binding, epochs,
    the one-shot skip of a resumed position) is here. Extra state (e.g. resampling weights) goes through
    :meth:`extra_state` / :meth:`load_extra_state` and travels in checkpoints with the loader position.
    """

    def __init__(self) -> None:
        # bound to nothing until the data module binds it; subclasses take their own options here
        self.bind(0, seed=0, shuffle=True, rank=0, world_size=1)

    def bind(self, n: int, *, seed: int, shuffle: bool, rank: int, world_size: int,
             lengths: list[int] | None = None, batch_size: int = 1) -> "TrainSampler":
        """Attach to a split of ``n`` rows on this rank (called by the data module for every loader); ``lengths``
        (each row's padded width in tokens) and ``batch_size`` for samplers that group by length."""
        self.n, self.seed, self.shuffle = n, seed, shuffle
        self.rank, self.world_size = rank, world_size
        self.lengths, self.batch_size = lengths, batch_size
        self.epoch = 0
        self._skip = 0  # samples of this rank's share to skip on the next iteration (one-shot)
        return self

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self._skip = 0
        self.epoch = epoch

    def resume(self, epoch: int, skip: int) -> None:
        self.epoch, self._skip = epoch, skip

    @abstractmethod
    def order(self, epoch: int) -> list[int]:
        """This rank's full index order for ``epoch`` (no skipping); ``len(self)`` indices."""

    def __iter__(self) -> Iterator[int]:
        skip, self._skip = self._skip, 0
        return iter(self.order(self.epoch)[skip:])

    def __len__(self) -> int:
        # the full share, also while resuming: Lightning counts the restored batches itself
        return -(-self.n // self.world_size)

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        del state


class ResumableSampler(TrainSampler):
    """Epoch-seeded permutation (seed + epoch), sharded over ranks, that can skip a consumed prefix.

    Every rank sees ``ceil(n / world_size)`` indices (the tail wraps around, as DistributedSampler does),
    so all ranks take the same number of steps.
    """

    def order_all(self, epoch: int) -> list[int]:
        """Every rank's indices of ``epoch`` in dealing order (rank r gets positions r, r + world, ...)."""
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed + epoch)
            perm = torch.randperm(self.n, generator=gen).tolist()
        else:
            perm = list(range(self.n))
        per_rank = -(-self.n // self.world_size)
        return (perm * (1 + per_rank * self.world_size // max(self.n, 1)))[: per_rank * self.world_size]

    def order(self, epoch: int) -> list[int]:
        return self.order_all(epoch)[self.rank :: self.world_size]


class LengthGroupedSampler(ResumableSampler):
    """ResumableSampler's epoch permutation, cut into groups of ``group`` global batches, each group sorted by
    length (longest first), so that a batch holds rows of similar length and pads less. The batches of a group
    keep their order; each global batch is dealt to ranks as ResumableSampler deals. Deterministic by (seed,
    epoch) and resumable like it. (As transformers' ``group_by_length``: randomness between groups, little
    padding within.)

    Args:
        group: Global batches per sorted group (larger: less padding, less randomness in batch composition).
    """

    def __init__(self, group: int = 16) -> None:
        if group < 1:
            raise ValueError(f"data.sampler.init_args.group must be >= 1, got {group}")
        self.group = group
        super().__init__()

    def order(self, epoch: int) -> list[int]:
        world = self.world_size
        full = super().order_all(epoch)  # every rank's indices, in dealing order
        if self.lengths is None:
            raise ValueError("LengthGroupedSampler needs the rows' lengths (bound by the data module)")
        size = self.group * self.batch_size * world
        grouped = []
        for i in range(0, len(full), size):
            chunk = sorted(full[i:i + size], key=lambda j: -self.lengths[j])  # stable: ties keep their order
            # global batch b = chunk[b·B·W : (b+1)·B·W]; rank r takes its B rows of each, as dealt below
            for b in range(0, len(chunk), self.batch_size * world):
                batch = chunk[b:b + self.batch_size * world]
                grouped += [batch[k * world + r] for k in range(len(batch) // world) for r in range(world)]
        return grouped[self.rank :: world]


class WeightedResampler(TrainSampler):
    """Each epoch, ``ceil(n / world) * world`` draws with replacement in proportion to per-row weights (IWPO's
    importance resampling), dealt to ranks in turn, so every draw is trained exactly once per epoch overall.

    The draws depend only on (seed, epoch, the epoch's weights): each rank draws the same sequence and keeps
    its share. Weights come from :meth:`set_weights` (an objective's weight source, at fit start and at
    refreshes); an epoch's weights are fixed when it first iterates, so a refresh mid-epoch takes effect at
    the next epoch and a resumed epoch replays its own draws. No weights yet: uniform draws. Both the current
    and the epoch's weights travel in checkpoints with the loader position.
    """

    def __init__(self) -> None:
        self.weights: Tensor | None = None
        self.epoch_weights: tuple[int, Tensor | None] | None = None  # (epoch, weights it draws with)
        super().__init__()

    def set_weights(self, weights: Tensor) -> None:
        w = torch.as_tensor(weights, dtype=torch.float64).flatten()
        if not torch.isfinite(w).all() or (w < 0).any() or not w.sum() > 0:
            raise ValueError("resampling weights must be finite, non-negative and not all zero")
        self.weights = w.clone()

    def _weights_for(self, epoch: int) -> Tensor | None:
        if self.epoch_weights is None or self.epoch_weights[0] != epoch:
            self.epoch_weights = (epoch, None if self.weights is None else self.weights.clone())
        return self.epoch_weights[1]

    def draws(self, epoch: int) -> list[int]:
        """Every rank's draws of ``epoch``, in dealing order (rank r gets positions r, r + world, ...)."""
        total = -(-self.n // self.world_size) * self.world_size
        w = self._weights_for(epoch)
        if w is None:
            w = torch.ones(self.n, dtype=torch.float64)
        elif len(w) != self.n:
            raise ValueError(f"resampling weights cover {len(w)} rows, the training split has {self.n}")
        gen = torch.Generator().manual_seed(self.seed + epoch)
        return torch.multinomial(w, total, replacement=True, generator=gen).tolist()

    def order(self, epoch: int) -> list[int]:
        return self.draws(epoch)[self.rank :: self.world_size]

    def extra_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"weights": self.weights}
        if self.epoch_weights is not None:
            state["epoch_weights"] = {"epoch": self.epoch_weights[0], "weights": self.epoch_weights[1]}
        return state

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.weights = state.get("weights")
        ew = state.get("epoch_weights")
        self.epoch_weights = None if ew is None else (int(ew["epoch"]), ew["weights"])


class ResumableDataLoader(DataLoader):
    """DataLoader whose ``state_dict`` is the (epoch, batches consumed) of the training loop."""

    def __init__(self, *args, progress: Callable[[], int] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.sampler, TrainSampler):
            raise TypeError(f"ResumableDataLoader needs a TrainSampler, got {type(self.sampler).__name__}")
        self._progress = progress or (lambda: 0)

    def state_dict(self) -> dict[str, Any]:
        # samples, not batches: the position stays right if batch_size changes on resume
        return {"epoch": self.sampler.epoch, "samples_consumed": int(self._progress()) * self.batch_size,
                "world_size": self.sampler.world_size, "sampler": self.sampler.extra_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_extra_state(state.get("sampler", {}))
        if state.get("world_size", 1) != self.sampler.world_size:
            from lightning.pytorch.utilities import rank_zero_warn

            rank_zero_warn(f"resuming on {self.sampler.world_size} processes a run saved on {state['world_size']}: "
                           "the data order restarts at the beginning of the saved epoch")
            self.sampler.resume(state["epoch"], 0)
            return
        self.sampler.resume(state["epoch"], state["samples_consumed"])
