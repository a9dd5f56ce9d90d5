"""Per-sample weight state of a training split, keyed by stable sample id: one weight per sample
(:class:`WeightStore`) or ragged per-token weights (:class:`TokenWeightStore`). Both follow
:class:`SampleStore`, the protocol checkpoints and exports rely on."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable

import torch
from torch import Tensor


@runtime_checkable
class SampleStore(Protocol):
    """Values keyed by sample id that go into checkpoints and the run directory."""

    ids: list[str]

    def __len__(self) -> int: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore; raise ValueError when the state belongs to other sample ids."""

    def table(self) -> dict[str, list]:
        """Columns for a parquet export, one row per sample, starting with ``id``."""


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file of this process, then an atomic rename: readers (and other runs
    sharing a cache) never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _positions(ids: Sequence[str]) -> dict[str, int]:
    position = {sid: i for i, sid in enumerate(ids)}
    if len(position) != len(ids):
        raise ValueError("a weight store needs unique sample ids")
    return position


def _check_ids(state: dict[str, Any], ids: list[str]) -> None:
    if list(state["ids"]) != ids:
        raise ValueError("the checkpoint's weights belong to a different training split (ids differ)")


class WeightStore:
    """Weights, last transforms and the steps they were computed at, for every training sample.

    Weights start at 1 (uniform). Transforms are NaN until a sample's transform is recorded. The whole
    state goes into checkpoints; loading checks that the sample ids match the current split.
    """

    def __init__(self, ids: Sequence[str], dim: int) -> None:
        self.ids = list(ids)
        self.position = _positions(self.ids)
        n = len(self.ids)
        self.weights = torch.ones(n, dtype=torch.float32)
        self.weight_step = torch.full((n,), -1, dtype=torch.long)
        self.transforms = torch.full((n, dim), float("nan"), dtype=torch.float32)
        self.transform_step = torch.full((n,), -1, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.ids)

    def index(self, ids: Sequence[str]) -> Tensor:
        try:
            return torch.tensor([self.position[i] for i in ids], dtype=torch.long)
        except KeyError as err:
            raise KeyError(f"sample id {err.args[0]!r} is not in the training split the weights belong to") from None

    def lookup(self, ids: Sequence[str]) -> Tensor:
        return self.weights[self.index(ids)]

    def record_transforms(self, ids: Sequence[str], z: Tensor, step: int) -> None:
        idx = self.index(ids)
        self.transforms[idx] = z.detach().float().cpu().reshape(len(idx), -1)
        self.transform_step[idx] = step

    def set_weights(self, ids: Sequence[str] | None, w: Tensor, step: int) -> None:
        idx = slice(None) if ids is None else self.index(ids)
        self.weights[idx] = w.detach().float().cpu()
        self.weight_step[idx] = step

    def missing_transforms(self) -> list[str]:
        return [sid for sid, s in zip(self.ids, self.transform_step.tolist()) if s < 0]

    def table(self) -> dict[str, list]:
        out: dict[str, list] = {"id": list(self.ids), "weight": self.weights.tolist(),
                                "weight_step": self.weight_step.tolist()}
        for d in range(self.transforms.shape[1]):
            out[f"z{d}"] = self.transforms[:, d].tolist()
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"ids": list(self.ids), "weights": self.weights.clone(), "weight_step": self.weight_step.clone(),
                "transforms": self.transforms.clone(), "transform_step": self.transform_step.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        _check_ids(state, self.ids)
        for key in ("weights", "weight_step", "transforms", "transform_step"):
            setattr(self, key, state[key].clone())


class TokenWeightStore:
    """Ragged per-token weights for every training sample, flat with offsets (CSR layout).

    Sample i's weights are ``values[offsets[i]:offsets[i + 1]]``; a sample whose weights were never set
    has none (length 0). ``set`` replaces samples' weights, whatever their new lengths.
    """

    def __init__(self, ids: Sequence[str]) -> None:
        self.ids = list(ids)
        self.position = _positions(self.ids)
        self.values = torch.empty(0, dtype=torch.float32)
        self.offsets = torch.zeros(len(self.ids) + 1, dtype=torch.long)
        self.step = torch.full((len(self.ids),), -1, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.ids)

    def _rows(self) -> list[Tensor]:
        return [self.values[a:b] for a, b in zip(self.offsets[:-1].tolist(), self.offsets[1:].tolist())]

    def set(self, ids: Sequence[str], weights: Sequence[Tensor], step: int) -> None:
        if len(ids) != len(weights):
            raise ValueError(f"{len(ids)} ids but {len(weights)} weight vectors")
        rows = self._rows()
        for sid, w in zip(ids, weights):
            i = self.position.get(sid)
            if i is None:
                raise KeyError(f"sample id {sid!r} is not in the training split the weights belong to")
            rows[i] = w.detach().float().cpu().reshape(-1)
            self.step[i] = step
        lengths = torch.tensor([len(r) for r in rows], dtype=torch.long)
        self.offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])
        self.values = torch.cat(rows) if rows else torch.empty(0)

    def lookup(self, ids: Sequence[str]) -> list[Tensor]:
        out = []
        for sid in ids:
            i = self.position[sid]
            out.append(self.values[int(self.offsets[i]):int(self.offsets[i + 1])].clone())
        return out

    def table(self) -> dict[str, list]:
        return {"id": list(self.ids), "n_tokens": (self.offsets[1:] - self.offsets[:-1]).tolist(),
                "weight_step": self.step.tolist(), "weights": [r.tolist() for r in self._rows()]}

    def state_dict(self) -> dict[str, Any]:
        return {"ids": list(self.ids), "values": self.values.clone(), "offsets": self.offsets.clone(),
                "step": self.step.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        _check_ids(state, self.ids)
        self.values, self.offsets, self.step = state["values"].clone(), state["offsets"].clone(), state["step"].clone()
