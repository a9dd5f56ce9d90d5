"""PreferenceDataModule: train / val / test / predict splits of preference pairs."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any, Optional, Union

import lightning as L
import torch
from torch.utils.data import DataLoader

from lit_iwpo.data.collate import PreferenceBatch, PromptBatch, collate_pairs, collate_prompts
from lit_iwpo.data.records import (
    TEXT_FIELDS,
    DataError,
    Source,
    extract_prompts,
    has_implicit_prompt,
    validate_source,
)
from lit_iwpo.data.sampler import ResumableDataLoader, ResumableSampler, TrainSampler
from lit_iwpo.data.sources import read_source, rename_columns
from lit_iwpo.dist import rank_world
from lit_iwpo.data.tokenize import PairTokenizer, TokenizedPair
from lit_iwpo.errors import ConfigError

SourceSpec = Optional[Union[str, list[str]]]
SPLITS = ("train", "val", "test", "predict")
TRAIN_ON = ("train", "val", "train+val")


@dataclass
class SplitData:
    """One split, validated and tokenized; position i is the sample's ``index`` in batches."""

    name: str
    rows: list[dict[str, Any]]
    ids: list[str]
    pairs: list[TokenizedPair]  # empty for a prompt-only predict split
    sources: list[str]
    prompts: list[list[int]] = field(default_factory=list)  # prompt ids for generation
    locations: list[tuple[str, int]] = field(default_factory=list)  # (source name, row number) per row

    def __post_init__(self) -> None:
        if not self.prompts:
            self.prompts = [p.prompt for p in self.pairs]

    def where(self, i: int, fld: str | None = None) -> str:
        """Where row ``i`` came from, as data errors name it: ``FILE, row N[, field 'F']``."""
        name, number = self.locations[i] if self.locations else (f"split '{self.name}'", i + 1)
        where = f"{name}, row {number}"
        return f"{where}, field '{fld}'" if fld else where

    def __len__(self) -> int:
        return len(self.rows)

    def position(self) -> dict[str, int]:
        return {sid: i for i, sid in enumerate(self.ids)}


def _private_generator() -> torch.Generator:
    """A loader's own generator. Creating an iterator of a loader without one draws its worker seed from the
    global RNG, so every evaluation would shift the training run's dropout stream, and a resumed run (where
    Lightning re-creates the validation iterator) would not match one trained straight through."""
    return torch.Generator().manual_seed(0)


def _merge(sources: list[Source], ids_per_source: list[list[str]]
           ) -> tuple[list[dict], list[str], list[tuple[str, int]]]:
    """Union of several sources (e.g. D_tr ∪ D_v); ids stay unique (content ids get a #k suffix)."""
    rows, ids, locations, seen = [], [], [], set()
    for src, ids_ in zip(sources, ids_per_source):
        for i, (row, sid) in enumerate(zip(src.rows, ids_)):
            if sid in seen:
                if "id" in row and row["id"] is not None:
                    raise DataError(f"{src.where(i, 'id')}: id {sid!r} also appears in an earlier source of this split")
                base, k = sid, 1
                while sid in seen:
                    sid, k = f"{base}#{k}", k + 1
            seen.add(sid)
            rows.append(row)
            ids.append(sid)
            locations.append((src.name, src.row_numbers[i]))
    return rows, ids, locations


class PreferenceDataModule(L.LightningDataModule):
    """Preference pairs from local files or Hugging Face datasets (TRL columns ``prompt``/``chosen``/``rejected``).

    Each field is text or a list of chat messages (``{"role": ..., "content": ...}``). Other column names
    are mapped with ``column_map``; a source lacking a needed column altogether fails with one message
    that lists the columns found and suggests a map (``question``/``good``/``bad`` ->
    ``--data.column_map '{prompt: question, chosen: good, rejected: bad}'``).

    Implicit prompt (TRL): a source with no ``prompt`` column (and none mapped, and no column that looks
    like one, e.g. ``question``) whose ``chosen``/``rejected`` hold whole conversations is split as TRL's
    ``maybe_extract_prompt`` does: their longest common prefix is the prompt, the remainders the responses.
    Message lists share whole messages (``[user, assistant A]`` / ``[user, assistant B]`` -> prompt
    ``[user]``); text shares characters, and a space just before the split stays with the responses
    (``"Q: sky? A: blue"`` / ``"Q: sky? A: green"`` -> ``"Q: sky? A:"``, ``" blue"``, ``" green"``).
    A row whose chosen and rejected share no beginning, or where one is the beginning of the other, is
    an error naming the file and row. The converted rows are validated and tokenized like explicit ones.

    Args:
        train: Training source(s): a ``.jsonl``/``.json``/``.parquet`` path, ``hf:NAME[:SPLIT][@CONFIG]``
            (NAME may be a local dataset folder, ``hf:/abs/path/to/folder``) or ``scenario:NAME:SPLIT``;
            a list is their union (e.g. ``[d_tr.jsonl, d_v.jsonl]`` for DPO on D_tr ∪ D_v).
        val: Validation source(s). For importance-weighted methods this is D_v, the small sample of the
            deployment distribution.
        test: Test source(s): D_te, the deployment test set.
        predict: Prompts to generate for in ``predict`` (defaults to ``test``).
        train_on: Which configured sources form the training set: ``train`` (D_tr), ``val`` (D_v alone) or
            ``train+val`` (D_tr ∪ D_v), so a method config can pick its training data without naming files.
        tokenizer: Tokenizer name or path; the CLI links it to ``model.name_or_path``.
        max_length: Maximum prompt + response tokens per sequence.
        max_prompt_length: Prompts longer than this keep their last tokens; must be < max_length.
        apply_chat_template: True: always; False: never; None: only for rows given as message lists.
        system_prompt: A system message prepended to templated prompts (None: the template's default).
        swap_pairs: Swap chosen and rejected in every split: the reverse-DPO and SFT-on-rejected adapters of
            TIS-DPO's contrastive pair train on the same data with this on.
        batch_size: Pairs per training batch (each pair is two sequences).
        eval_batch_size: Pairs per validation/test batch (default: batch_size).
        num_workers: DataLoader worker processes (tokenisation happens once up front, so 0 is usually fine).
        shuffle: Shuffle training pairs each epoch (permutation seeded by ``seed + epoch``).
        seed: Seed of the training order.
        column_map: Rename dataset columns onto prompt/chosen/rejected, e.g. ``{prompt: question}`` (keys
            must be prompt/chosen/rejected; each named column must exist in the source).
        pad_to_multiple_of: Pad batch widths to a multiple of this (stable shapes are faster).
        sampler: The training order (``class_path`` of a ``lit_iwpo.data.sampler.TrainSampler``); null: the
            resumable epoch-seeded shuffle, ``ResumableSampler`` (``LengthGroupedSampler``: batches of similar length,
            less padding). It is bound to the training split with this
            module's ``seed`` and ``shuffle`` and the process's rank; its state travels in checkpoints.
    """

    def __init__(
        self,
        train: SourceSpec = None,
        val: SourceSpec = None,
        test: SourceSpec = None,
        predict: SourceSpec = None,
        train_on: str = "train",
        tokenizer: str = "smollm2-135m-instruct",
        max_length: int = 512,
        max_prompt_length: Optional[int] = 256,
        apply_chat_template: Optional[bool] = None,
        system_prompt: Optional[str] = None,
        swap_pairs: bool = False,
        batch_size: int = 4,
        eval_batch_size: Optional[int] = None,
        num_workers: int = 0,
        shuffle: bool = True,
        seed: int = 0,
        column_map: Optional[dict[str, str]] = None,
        pad_to_multiple_of: int = 8,
        sampler: Optional[TrainSampler] = None,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ConfigError(f"data.batch_size must be >= 1, got {batch_size}")
        if train_on not in TRAIN_ON:
            raise ConfigError(f"data.train_on must be one of {TRAIN_ON}, got {train_on!r}")
        self.sources = {"train": train, "val": val, "test": test, "predict": predict}
        self.train_on = train_on
        self.swap_pairs = swap_pairs
        self.tokenizer_name = tokenizer
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.shuffle = shuffle
        self.seed = seed
        self.column_map = column_map
        self.pad_to_multiple_of = pad_to_multiple_of
        self.sampler = sampler if sampler is not None else ResumableSampler()
        self._pair_tokenizer_args = dict(
            max_length=max_length,
            max_prompt_length=max_prompt_length,
            apply_chat_template=apply_chat_template,
            system_prompt=system_prompt,
        )
        self._tokenizer = None
        self._pair_tokenizer: PairTokenizer | None = None
        self.splits: dict[str, SplitData] = {}

    # ----------------------------------------------------------------- loading
    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from lit_iwpo.models import load_tokenizer

            self._tokenizer = load_tokenizer(self.tokenizer_name)
        return self._tokenizer

    @property
    def pair_tokenizer(self) -> PairTokenizer:
        if self._pair_tokenizer is None:
            self._pair_tokenizer = PairTokenizer(self.tokenizer, **self._pair_tokenizer_args)
        return self._pair_tokenizer

    def has_split(self, split: str) -> bool:
        return self._source_list(split) != []

    def _source_list(self, split: str) -> list[str]:
        if split == "train" and self.train_on != "train":
            parts = self.train_on.split("+")
            if any(not self._configured(p) for p in parts):
                raise DataError(f"data.train_on: {self.train_on} needs data.{' and data.'.join(parts)}")
            return [s for p in parts for s in self._configured(p)]
        spec = self._configured(split)
        return spec if spec or split != "predict" else self._configured("test")

    def _configured(self, split: str) -> list[str]:
        spec = self.sources[split]
        if spec is None:
            return []
        return [spec] if isinstance(spec, str) else list(spec)

    def load_split(self, split: str) -> SplitData:
        """Read, validate and tokenize one split (cached). Raises DataError naming file, row and field."""
        if split in self.splits:
            return self.splits[split]
        specs = self._source_list(split)
        if not specs:
            raise DataError(f"no '{split}' data configured: set data.{split} to a file or hf:NAME")
        sources = []
        for spec in specs:
            src = rename_columns(read_source(spec), self.column_map)
            if has_implicit_prompt(src, self.column_map):  # TRL's implicit prompt: no prompt column
                src = extract_prompts(src, split)
            sources.append(src)
        # predict may read prompt-only files: then only the prompt is checked and tokenized
        prompt_only = split == "predict" and not all(
            "chosen" in row and "rejected" in row for src in sources for row in src.rows if isinstance(row, dict))
        fields = ("prompt",) if prompt_only else TEXT_FIELDS
        ids = [validate_source(src, split, fields=fields, column_map=self.column_map) for src in sources]
        if prompt_only:
            pairs, prompts = [], [p for src in sources for p in self.pair_tokenizer.prompts(src)]
        else:
            pairs, prompts = [p for src in sources for p in self.pair_tokenizer(src, split)], []
        rows, merged_ids, locations = _merge(sources, ids)
        if self.swap_pairs and pairs:
            pairs = [TokenizedPair(p.prompt, p.rejected, p.chosen) for p in pairs]
            rows = [{**row, "chosen": row["rejected"], "rejected": row["chosen"]} for row in rows]
        self.splits[split] = SplitData(split, rows, merged_ids, pairs, [s.name for s in sources], prompts, locations)
        return self.splits[split]

    def setup(self, stage: str) -> None:
        needed = {"fit": ["train", "val"], "validate": ["val"], "test": ["test"], "predict": ["predict"]}[stage]
        if stage == "fit" and not self.has_split("train"):
            raise DataError("fit needs training data: set data.train")
        for split in needed:
            if self.has_split(split):
                self.load_split(split)

    # -------------------------------------------------------------- dataloaders
    def _shard(self, items: list, split: str, shard: bool) -> list:
        """This rank's share of an evaluation split (strided; shares differ by at most one row)."""
        rank, world = rank_world(self) if shard else (0, 1)
        if world > 1 and len(items) < world:
            raise DataError(f"split '{split}' has {len(items)} rows but {world} processes evaluate it: "
                            "every process needs at least one row")
        if world > 1 and len(items) % world and self._sharded_model():
            raise DataError(f"split '{split}' has {len(items)} rows for {world} processes: under FSDP every forward "
                            f"is a collective, so every process must evaluate as many rows; use a multiple of {world} "
                            "rows (or max_prompts), or DDP")
        return items[rank::world]

    def _sharded_model(self) -> bool:
        from lit_iwpo.parallel import is_sharded

        module = getattr(getattr(self, "trainer", None), "lightning_module", None)
        policy = getattr(module, "policy", None)
        return policy is not None and is_sharded(policy)

    def _consumed_batches(self) -> int:
        trainer = getattr(self, "trainer", None)
        return trainer.fit_loop.epoch_loop.batch_progress.current.processed if trainer is not None else 0

    def _items(self, split: str) -> list[tuple[int, str, TokenizedPair]]:
        data = self.load_split(split)
        return [(i, sid, pair) for i, (sid, pair) in enumerate(zip(data.ids, data.pairs))]

    def train_dataloader(self) -> DataLoader:
        items = self._items("train")
        rank, world = rank_world(self)
        return ResumableDataLoader(
            items,
            batch_size=self.batch_size,
            sampler=self.sampler.bind(len(items), seed=self.seed, shuffle=self.shuffle, rank=rank, world_size=world,
                                      lengths=[len(p.prompt) + max(len(p.chosen), len(p.rejected))
                                               for _, _, p in items],
                                      batch_size=self.batch_size),
            collate_fn=partial(collate_pairs, pad_id=self.tokenizer.pad_token_id, split="train",
                               pad_to_multiple_of=self.pad_to_multiple_of),
            num_workers=self.num_workers,
            # a private generator: creating the loader iterator must not draw from the global RNG,
            # or a resumed run's dropout stream would differ from the uninterrupted one
            generator=torch.Generator().manual_seed(self.seed),
            progress=self._consumed_batches,
        )

    def pair_dataloader(self, split: str, batch_size: int | None = None, shard: bool = True) -> DataLoader:
        """Sequential batches of a split's pairs (evaluation, reference log-probs, weight refresh)."""
        return DataLoader(
            self._shard(self._items(split), split, shard),
            batch_size=batch_size or self.eval_batch_size,
            shuffle=False,
            collate_fn=partial(collate_pairs, pad_id=self.tokenizer.pad_token_id, split=split,
                               pad_to_multiple_of=self.pad_to_multiple_of),
            num_workers=self.num_workers,
            generator=_private_generator(),
        )

    def pair_batch(self, split: str, indices: list[int], system_prompt: str | None = None) -> PreferenceBatch:
        """One batch of the given rows of a split (importance-weight transforms of chosen samples).

        ``system_prompt``: the rows' prompts re-rendered with this system message (TIS-DPO's contrastive
        prompts); the response tokens stay exactly those of the split (no new truncation), so per-token
        values line up with the tokens training sees."""
        data = self.load_split(split)
        pairs = [data.pairs[i] for i in indices]
        if system_prompt is not None:
            pt = self.pair_tokenizer
            pairs = [TokenizedPair(pt.contrast_prompt_ids(data.rows[i], system_prompt), p.chosen, p.rejected)
                     for i, p in zip(indices, pairs)]
        items = [(i, data.ids[i], p) for i, p in zip(indices, pairs)]
        return collate_pairs(items, pad_id=self.tokenizer.pad_token_id, split=split,
                             pad_to_multiple_of=self.pad_to_multiple_of)

    def prompt_dataloader(self, split: str, batch_size: int | None = None, shard: bool = True,
                          limit: int | None = None) -> DataLoader:
        """Left-padded prompt batches of a split, for generation (the first ``limit`` rows if given)."""
        data = self.load_split(split)
        items = [(i, sid, p, row) for i, (sid, p, row) in enumerate(zip(data.ids, data.prompts, data.rows))]
        return DataLoader(
            self._shard(items[:limit], split, shard),
            batch_size=batch_size or self.eval_batch_size,
            shuffle=False,
            collate_fn=partial(collate_prompts, pad_id=self.tokenizer.pad_token_id, split=split,
                               pad_to_multiple_of=self.pad_to_multiple_of),
            generator=_private_generator(),
        )

    def val_dataloader(self) -> DataLoader | list:
        return self.pair_dataloader("val") if self.has_split("val") else []

    def test_dataloader(self) -> DataLoader:
        return self.pair_dataloader("test")

    def predict_dataloader(self) -> DataLoader:
        return self.prompt_dataloader("predict")

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        if isinstance(batch, (PreferenceBatch, PromptBatch)):
            for name in ("input_ids", "attention_mask", "index") + (
                ("loss_mask",) if isinstance(batch, PreferenceBatch) else ()
            ):
                setattr(batch, name, getattr(batch, name).to(device))
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)
