"""PreferenceModule: the one LightningModule for preference training.

It owns the policy (and, for full fine-tuning, a frozen reference copy) and the objective's trainable
parts, runs one concatenated forward of chosen and rejected responses per step with what the objective's
``ForwardRequest`` asks for (through the ``Scorer`` of ``lit_iwpo.models.scoring``), hands the result to the
``objective`` strategy, logs metrics and saves Hugging Face artefacts. Objectives see the run only through
``ModuleContext``, this module's implementation of the ``StepContext`` protocol. Everything
method-specific lives in the objective.
"""

from __future__ import annotations

import copy
import math
import random
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence, TypeVar

import lightning as L
import numpy as np
import torch
from jsonargparse import lazy_instance
from peft import get_peft_model
from lightning.pytorch.strategies import FSDPStrategy as LightningFSDPStrategy
from torch import Tensor, nn

from lit_iwpo.callbacks.iw_refresh import ImportanceWeightRefresh
from lit_iwpo.data.collate import PreferenceBatch, PromptBatch
from lit_iwpo.data.tokenize import prompt_text
from lit_iwpo.dist import broadcast_object, compute_once, gather_rows, rank_world
from lit_iwpo.errors import ConfigError
from lit_iwpo.metrics import StageMetrics, preference_values
from lit_iwpo.models import (
    EMBEDDED_ALIAS,
    TINY_MODELS,
    LogProbs,
    LoraSpec,
    apply_lora,
    cache_root,
    load_adapter,
    load_causal_lm,
    load_tokenizer,
)
from lit_iwpo.models.generation import GenerationSpec, generate_texts
from lit_iwpo.models.layers import compile_decoder_layers
from lit_iwpo.models.wrapping import clean_name, has_fsdp1, unwrap
from lit_iwpo.models.refcache import (
    adapter_fingerprint,
    cache_path,
    compute_reference_logps,
    data_fingerprint,
    load_or_compute,
    model_fingerprint,
    tokenizer_fingerprint,
)
from lit_iwpo.models.scoring import ForwardRequest, Scorer
from lit_iwpo.objectives import DPO, Objective, ObjectiveOutput, StepInputs
from lit_iwpo.objectives.weights import Refreshable
from lit_iwpo.parallel import ShardingSpec, is_sharded, parallelize, shard_module, wrap_fsdp
from lit_iwpo.progress import phase, progress
from lit_iwpo.resume import epoch_closed, reopen_closed_epoch

T = TypeVar("T")

LR_SCHEDULES = ("constant", "linear", "cosine")


def _numpy_state_to_torch(state: tuple) -> tuple:
    # checkpoints load with weights_only=True, which refuses numpy arrays: keep the key as a tensor
    name, keys, pos, has_gauss, cached = state
    return name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)


def _numpy_state_from_torch(state: tuple) -> tuple:
    name, keys, pos, has_gauss, cached = state
    return name, keys.numpy().astype(np.uint32), pos, has_gauss, cached


class ModuleContext:
    """The :class:`~lit_iwpo.objectives.context.StepContext` of a live run: what objectives may use of it."""

    def __init__(self, module: "PreferenceModule") -> None:
        self._module = module
        self.stage = "fit"

    @property
    def step(self) -> int:
        return self._module.global_step

    @property
    def rank(self) -> int:
        return rank_world(self._module)[0]

    @property
    def world_size(self) -> int:
        return rank_world(self._module)[1]

    @property
    def _datamodule(self):
        trainer = self._module._trainer
        return trainer.datamodule if trainer is not None else None

    @property
    def eval_batch_size(self) -> int:
        return self._datamodule.eval_batch_size

    def _to_device(self, batch: PreferenceBatch) -> PreferenceBatch:
        trainer = self._module._trainer
        return trainer.strategy.batch_to_device(batch) if trainer is not None else batch

    def score(self, batch: PreferenceBatch, model: str = "policy", mode: str = "eval",
              request: ForwardRequest | None = None) -> LogProbs:
        return self._module.scorer.score(self._to_device(batch), model, mode, request)

    def deterministic(self) -> bool:
        return self._module.scorer.is_deterministic()

    def split(self, name: str):
        dm = self._datamodule
        return dm.load_split(name) if dm is not None and dm.has_split(name) else None

    def batch(self, split: str, rows: Sequence[int], system_prompt: str | None = None) -> PreferenceBatch:
        return self._to_device(self._datamodule.pair_batch(split, list(rows), system_prompt=system_prompt))

    def fingerprint(self, what: str) -> str:
        """Cache key part of ``what``: ``reference`` (the frozen base), ``policy`` (as it is now, adapter
        included), a loaded adapter's name, ``tokenizer``, or ``data:SPLIT`` (sample ids and token ids); models
        include the trainer's precision and how the forward runs (``share_prompt``, ``compile``)."""
        module = self._module
        if what.startswith("data:"):
            return data_fingerprint(self._datamodule.load_split(what[5:]))
        if what == "tokenizer":
            return tokenizer_fingerprint(self._datamodule.tokenizer)
        precision = str(module._trainer.precision) if module._trainer is not None else ""
        if module.scorer.share_prompt:  # the same numbers up to rounding, but not the same bits
            precision += "|shared-prompt"
        if module.hparams.compile:  # likewise
            precision += "|compiled"
        if what == "policy":
            return f"policy|{model_fingerprint(module.scorer.policy, skip='')}|{precision}"
        with module.scorer.reference_model() as ref:
            base = model_fingerprint(ref)
        if what == "reference":
            return f"{base}|{precision}"
        if what not in module.scorer.adapters:
            raise KeyError(f"no model named {what!r} to fingerprint (adapters: {sorted(module.scorer.adapters)})")
        return f"{adapter_fingerprint(module.scorer._adapter_host(), what, base)}|{precision}"

    def gather(self, tensor: Tensor) -> Tensor:
        return gather_rows(self._module, tensor)[0]

    def broadcast(self, obj: Any) -> Any:
        return broadcast_object(obj, self.rank, self.world_size)

    def compute_once(self, fn: Callable[[], T]) -> T:
        return compute_once(fn, self.rank, self.world_size, everywhere=self._module.sharded)

    def progress(self, iterable: Iterable[T], desc: str, total: int | None = None) -> Iterable[T]:
        return progress(iterable, desc=desc, total=total, trainer=self._module._trainer)

    def train_sampler(self):
        dm = self._datamodule
        return getattr(dm, "sampler", None) if dm is not None else None

    @property
    def accumulation(self) -> tuple[int, int]:
        trainer = self._module._trainer
        size = int(trainer.accumulate_grad_batches) if trainer is not None else 1
        return self._module._batch_idx % size, size

    def scale_grads(self, factor: float) -> None:
        trainer = self._module._trainer
        if trainer is not None and "DeepSpeed" in type(trainer.strategy).__name__:
            raise ConfigError("rescaling accumulated gradients (the DRO reduction over accumulation micro-batches) "
                              "needs them in param.grad; DeepSpeed keeps its own: set accumulate_grad_batches: 1")
        for p in self._module.parameters():
            if p.grad is not None:
                p.grad.mul_(factor)


class PreferenceModule(L.LightningModule):
    """Preference optimisation of a causal LM with a pluggable objective.

    Args:
        name_or_path: Model: a hub id, a local folder, a ``.gguf`` file, ``smollm2-135m-instruct`` (the
            embedded default) or ``tiny-llama`` (random, for tests).
        objective: The method, as a strategy object (``class_path``/``init_args``): DPO, SFT, ...
        lora: LoRA adapter settings; null trains all weights against a frozen copy of the base.
        init_adapter: A saved adapter folder (e.g. an SFT run's ``hf/``) merged into the base before training:
            the merged model is the reference and a fresh LoRA adapter (or full fine-tuning) trains on top.
        init_policy: A saved LoRA adapter folder (e.g. a run's ``hf/``) that the trained adapter starts from, while
            the reference stays the base (adapter disabled): a warm start, e.g. from DPO on D_v, so that IW-DPO's
            implicit rewards already carry the deployment preference at step 0. ``lora`` settings come from
            the folder; not with full fine-tuning.
        dtype: Weights dtype: float32, bfloat16 or float16 (bf16 is slower than fp32 on most CPUs).
        lr: Peak learning rate of AdamW.
        weight_decay: AdamW weight decay.
        warmup_steps: Linear warm-up steps of the learning rate.
        lr_schedule: After warm-up: constant, linear (to 0) or cosine (to 0) over the run's optimizer steps.
        precompute_ref_logps: Compute reference log-probs once per split before training, cache them on
            disk (keyed by a fingerprint of data, tokenizer and model) and skip the reference forward.
        ref_cache_dir: Where those caches go (default: ``$LIT_IWPO_CACHE/ref_logps``).
        gradient_checkpointing: Recompute activations in backward (less memory, ~30 % more time); per decoder
            layer, so also the activation checkpointing of FSDP runs.
        share_prompt: Run each pair's prompt once, in one row ``[prompt | chosen | rejected]`` whose rejected
            half attends to the prompt but not to the chosen response (a custom attention mask): the two-row
            numbers up to rounding, with the prompt's tokens computed once. Used where the model allows it (a
            plain LM head or FSDP sharding, SDPA or eager attention); elsewhere the two-row layout.
        compile: ``torch.compile`` each decoder layer (one graph, dynamic shapes), adapters included, for the
            training and scoring forwards; generation stays eager. The first step pays the compilation. Not with
            FSDP sharding (refused).
        sharding: How FSDP2 shards the model when ``trainer.strategy`` is Lightning's ``ModelParallelStrategy``
            (see :mod:`lit_iwpo.parallel`); ignored otherwise.
        generation: Decoding settings for predict and win-rate evaluation.
        seed: Initialisation seed of tiny random models (pretrained weights ignore it).
    """

    def __init__(
        self,
        name_or_path: str = EMBEDDED_ALIAS,
        objective: Objective = lazy_instance(DPO),
        lora: Optional[LoraSpec] = LoraSpec(),
        init_adapter: Optional[str] = None,
        init_policy: Optional[str] = None,
        dtype: str = "float32",
        lr: float = 5e-5,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        lr_schedule: str = "constant",
        precompute_ref_logps: bool = False,
        ref_cache_dir: Optional[str] = None,
        gradient_checkpointing: bool = False,
        share_prompt: bool = True,
        compile: bool = False,
        sharding: ShardingSpec = ShardingSpec(),
        generation: GenerationSpec = GenerationSpec(),
        seed: int = 0,
    ) -> None:
        super().__init__()
        if lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"model.lr_schedule must be one of {LR_SCHEDULES}, got {lr_schedule!r}")
        # jsonargparse's lazy default instance runs its __init__ at the first method call: run it now, so that
        # attributes and properties (request, beta) are those of a constructed objective
        objective.weight_sources()
        if precompute_ref_logps and objective.request.reference == "token":
            raise ConfigError(
                f"model.precompute_ref_logps caches sequence log-probs only, but {type(objective).__name__} needs "
                "token-level reference log-probs: set model.precompute_ref_logps: false"
            )
        self.save_hyperparameters(ignore=["objective"])
        self.objective = objective
        self.name_or_path = name_or_path
        self.lora = lora
        self.sharding = sharding
        self.generation = generation
        self.policy: torch.nn.Module | None = None
        self.reference: torch.nn.Module | None = None  # only for full fine-tuning
        self.objective_parts = nn.ModuleDict()  # the objective's trainable parts (e.g. reward heads)
        self.scorer: Scorer | None = None
        self.tokenizer = None
        self.metrics = StageMetrics()
        self.context = ModuleContext(self)
        self._batch_idx = 0
        # LoRA checkpoints hold only trainable weights; the frozen base is rebuilt from name_or_path
        self.strict_loading = False

    # ------------------------------------------------------------------ model
    def _build_base(self) -> torch.nn.Module:
        """The frozen base the adapter trains on (= the reference), a pure function of the config."""
        base = load_causal_lm(self.name_or_path, dtype=self.hparams.dtype, seed=self.hparams.seed)
        if self.hparams.init_adapter:
            # e.g. an SFT adapter: merged into the base, which thereby becomes the reference, and a fresh
            # adapter trains on top (so π = π_ref at step 0, as DPO and IW-DPO's warm-up assume)
            base = load_adapter(base, self.hparams.init_adapter, trainable=False).merge_and_unload()
        return base

    def configure_model(self) -> None:
        if self.policy is not None:
            return
        base = self._build_base()
        self.tokenizer = load_tokenizer(self.name_or_path)
        if self.hparams.gradient_checkpointing:
            base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            base.config.use_cache = False
        if self.lora is None:
            if self.hparams.init_policy:
                raise ConfigError("model.init_policy starts a LoRA adapter from a saved one: set model.lora")
            reference = copy.deepcopy(base).eval().requires_grad_(False)
            policy = base
        elif self.hparams.init_policy:
            reference, policy = None, load_adapter(base, self.hparams.init_policy, trainable=True)
        else:
            reference, policy = None, apply_lora(base, self.lora)
        self.scorer = Scorer(policy, reference, precision=self.precision_context,
                             share_prompt=self.hparams.share_prompt)
        # extra named adapters ride on the same base, frozen (full fine-tuning: on the reference copy)
        self.scorer.load_adapters({**self.objective.request.adapters, **self.objective.adapters()})
        self.policy, self.reference = self.scorer.policy, self.scorer.reference
        # from_pretrained and peft's load_adapter leave eval mode; Lightning keeps module modes as it finds them
        self.policy.train()
        for name, part in self.objective.parts(getattr(self.policy, "config", None)).items():
            self.objective_parts[name] = part
        mesh = getattr(self, "_device_mesh", None)  # set by ModelParallelStrategy: FSDP2
        strategy = self._trainer.strategy if self._trainer is not None else None
        fsdp1 = isinstance(strategy, LightningFSDPStrategy)  # Lightning's FSDPStrategy: FSDP1, wrapped here
        models = [m for m in (self.policy, self.reference) if m is not None]
        if self.hparams.compile:
            if mesh is not None or fsdp1:
                raise ConfigError("model.compile is not supported with FSDP sharding (ModelParallelStrategy or "
                                  "FSDPStrategy) yet: set model.compile: false")
            for model in models:
                compile_decoder_layers(model)
        if mesh is not None:
            for model in models:
                parallelize(model, mesh, self.sharding)
            for part in self.objective_parts.values():
                shard_module(part, mesh)
        elif fsdp1:
            if any(p.requires_grad for p in self.objective_parts.parameters()):
                raise ConfigError(f"{type(self.objective).__name__} trains parts of its own, which lit_iwpo shards "
                                  "with FSDP2 only: use configs/distributed/fsdp2.yaml (ModelParallelStrategy)")
            self.objective_parts.to(strategy.root_device)
            self.policy = self.scorer.policy = wrap_fsdp(self.policy, strategy)
            if self.reference is not None:
                self.reference = self.scorer.reference = wrap_fsdp(self.reference, strategy)

    @property
    def sharded(self) -> bool:
        """Whether the policy's parameters are sharded across processes (FSDP1 or FSDP2): then every forward is a
        collective, which every rank must run."""
        return self.policy is not None and is_sharded(self.policy)

    def precision_context(self):
        """The trainer's autocast context: forwards outside the step hooks (reference cache, weight refresh)
        must run in the same precision as the training forward, or their numbers drift apart."""
        trainer = self._trainer
        return trainer.precision_plugin.forward_context() if trainer is not None else nullcontext()

    # ------------------------------------------------------------- lifecycle
    def setup(self, stage: str) -> None:
        trainer = self._trainer
        if rank_world(self)[1] > 1 and trainer._accelerator_connector.use_distributed_sampler:
            raise ConfigError(
                "lit_iwpo's data loaders shard themselves across processes: set trainer.use_distributed_sampler: false"
            )
        # every stage, before a checkpoint is restored: restored state lands on what setup builds, and a
        # validate before a fit leaves nothing half-prepared for the fit
        self.context.stage = stage
        self.objective.setup(self.context)
        if stage == "fit" and not any(isinstance(cb, ImportanceWeightRefresh) for cb in trainer.callbacks):
            for source in self.objective.weight_sources():
                if isinstance(source, Refreshable) and source.refresh_required:
                    raise ConfigError(f"{type(source).__name__} with a refresh pool (objective.pool: refresh) needs "
                                     "the ImportanceWeightRefresh callback in trainer.callbacks")

    def on_fit_start(self) -> None:
        self._prepare_reference_cache(["train", "val"])
        with phase(self.trainer, "objective_prepare"):
            self.objective.on_fit_start(self.context)

    def on_validation_start(self) -> None:
        self._prepare_reference_cache(["val"])

    def on_test_start(self) -> None:
        self._prepare_reference_cache(["test"])

    def _prepare_reference_cache(self, splits: list[str]) -> None:
        if not self.hparams.precompute_ref_logps:
            return
        dm, scorer = self.trainer.datamodule, self.scorer
        cache_dir = Path(self.hparams.ref_cache_dir or cache_root() / "ref_logps")
        with scorer.reference_model() as ref:
            model_fp = model_fingerprint(ref)
        for split in splits:
            if split in scorer.ref_cache or not dm.has_split(split):
                continue
            data = dm.load_split(split)
            path = cache_path(cache_dir, data, dm.tokenizer, model_fp, str(self.trainer.precision))

            def compute(split: str = split, n: int = len(data)) -> Tensor:
                loader = dm.pair_dataloader(split, shard=False)
                batches = (self.trainer.strategy.batch_to_device(b)
                           for b in progress(loader, desc=f"reference log-probs ({split})", trainer=self.trainer))
                return compute_reference_logps(batches, n, lambda b: scorer.score(b, "reference", use_cache=False).logps)

            with phase(self.trainer, "reference_logps"):
                scorer.ref_cache[split] = load_or_compute(path, data, compute, is_main=self.trainer.is_global_zero,
                                                          barrier=self.trainer.strategy.barrier,
                                                          everywhere=self.sharded)

    # ------------------------------------------------------------------ steps
    def _step(self, batch: PreferenceBatch, stage: str) -> ObjectiveOutput:
        return self._scored_step(batch, stage)[0]

    def _scored_step(self, batch: PreferenceBatch, stage: str) -> tuple[ObjectiveOutput, dict[str, Tensor]]:
        """One step of ``stage``: the objective's output and the per-pair values it logged."""
        obj, scorer = self.objective, self.scorer
        request = obj.request
        self.context.stage = stage
        if stage == "train":
            batch = obj.train_batch(batch, self.context)
        # evaluation always reports implicit rewards, so it needs at least the sequence reference
        level = request.reference if stage == "train" or request.reference != "none" else "sequence"
        reference = None if level == "none" else scorer.score(
            batch, "reference", request=ForwardRequest(reference=level, logits=request.reference_logits and stage == "train"))
        # the one training forward: log-probs, plus logits at response positions and pooled embeddings on request
        policy = scorer.score(batch, "policy", mode="train", request=request)
        adapters = {name: scorer.score(batch, name) for name in request.adapters} if stage == "train" else {}
        out = obj(StepInputs(policy=policy, reference=reference, batch=batch, stage=stage, ctx=self.context,
                             adapters=adapters))
        bad = not bool(torch.isfinite(out.loss))
        if stage == "train" and rank_world(self)[1] > 1:
            # stop every rank together, not one while the others wait in the gradient all-reduce (training
            # only: evaluation shards may differ by a batch, and a collective there would not be matched)
            bad = self.trainer.strategy.reduce_boolean_decision(bad, all=False)
        if bad:
            raise FloatingPointError(f"non-finite {stage} loss at step {self.global_step} "
                                     f"(this rank: {out.loss.item()}, ids {batch.ids})")
        values = {"loss": out.loss.detach(), **preference_values(policy, reference, obj.beta), **out.metrics}
        self._log_values(stage, values, len(batch))
        return out, values

    def _log_values(self, stage: str, values: dict[str, Tensor], batch_size: int) -> None:
        for name, value in values.items():
            value = value.detach().float()
            if stage == "train":
                # step values: the batch mean, rank 0's view (epoch aggregates come from val/test)
                self.log(f"train/{name}", value.mean(), on_step=True, on_epoch=False, batch_size=batch_size,
                         prog_bar=name in ("loss", "rewards/accuracies"))
            else:
                metric, attr = self.metrics.get(stage, name, self.device)
                metric.update(value.reshape(-1), torch.ones_like(value.reshape(-1)) if value.dim() else batch_size)
                self.log(f"{stage}/{name}", metric, on_step=False, on_epoch=True, batch_size=batch_size,
                         add_dataloader_idx=False, metric_attribute=f"metrics.{attr}",
                         prog_bar=stage == "val" and name == "rewards/accuracies")

    def training_step(self, batch: PreferenceBatch, batch_idx: int) -> Tensor:
        self._batch_idx = batch_idx  # the micro-batch's place in its optimizer step (ctx.accumulation)
        return self._step(batch, "train").loss

    def validation_step(self, batch: PreferenceBatch, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: PreferenceBatch, batch_idx: int) -> dict[str, Tensor]:
        """Per-pair implicit-reward margins, for per-pair and per-group results (``DeploymentEval``)."""
        values = self._scored_step(batch, "test")[1]
        return {"index": batch.index.detach().cpu(), "margins": values["rewards/margins"].detach().float().cpu()}

    # ------------------------------------------------------------- generation
    def generate(self, batch: PromptBatch, use_adapter: bool = True) -> list[str]:
        """Decode continuations of left-padded prompts; ``use_adapter=False`` generates with the reference."""
        ctx = nullcontext(self.policy) if use_adapter else self.scorer.reference_model()
        with ctx as model:
            return generate_texts(model, self.tokenizer, batch.input_ids, batch.attention_mask, self.generation,
                                  seed_offset=int(batch.index[0]), synced=self.sharded)

    def predict_step(self, batch: PromptBatch, batch_idx: int) -> list[dict[str, Any]]:
        responses = self.generate(batch)
        return [
            {"id": sid, "prompt": prompt_text(row), "response": resp}
            for sid, row, resp in zip(batch.ids, batch.rows, responses)
        ]

    # ------------------------------------------------------------- optimiser
    def configure_optimizers(self) -> dict[str, Any]:
        params = [p for p in self.parameters() if p.requires_grad]
        if not params:
            raise ConfigError("no trainable parameters: check model.lora.target_modules")
        opt = torch.optim.AdamW(params, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warm, kind = self.hparams.warmup_steps, self.hparams.lr_schedule

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / (warm + 1)
            if kind == "constant":
                return 1.0
            progress = min(1.0, (step - warm) / max(1, total - warm))
            return 1.0 - progress if kind == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # ------------------------------------------------------------ checkpoints
    def trainable_state_keys(self) -> set[str]:
        """What checkpoints hold: trainable parameters and every tensor of the objective's parts (the frozen
        base is rebuilt from the config)."""
        keys = {clean_name(name) for name, p in self.named_parameters() if p.requires_grad}
        return keys | {f"objective_parts.{k}" for k in self.objective_parts.state_dict()}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if epoch_closed(checkpoint):
            reopen_closed_epoch(checkpoint)  # end-of-run checkpoints resume exactly (lit_iwpo.resume)
        if not self._distributed_checkpoint():  # a sharded checkpoint holds the whole model, as resuming expects
            keep = self.trainable_state_keys()
            checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in keep}
        rng = {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": _numpy_state_to_torch(np.random.get_state()),
            "python": random.getstate(),
        }
        # every rank's stream differs (dropout on different batches): keep one per rank
        rngs = [rng]
        if rank_world(self)[1] > 1 and torch.distributed.is_initialized():
            rngs = [None] * self.trainer.world_size
            torch.distributed.all_gather_object(rngs, rng)
        checkpoint["lit_iwpo"] = {"objective": self.objective.state_dict(), "rng": rngs}

    def _distributed_checkpoint(self) -> bool:
        """Whether checkpoints are saved in shards (FSDP2, or FSDP1 with ``state_dict_type: sharded``): those
        hold the whole sharded model, which loading them expects; whole checkpoints keep the trainable tensors."""
        strategy = self._trainer.strategy if self._trainer is not None else None
        if isinstance(strategy, LightningFSDPStrategy):
            return strategy._state_dict_type == "sharded"
        return self.sharded

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # (a sharded checkpoint's tensors are loaded by the strategy; its metadata arrives here without them)
        missing = self.trainable_state_keys() - set(checkpoint.get("state_dict", self.trainable_state_keys()))
        if self.policy is not None and missing:
            raise KeyError(f"checkpoint lacks {len(missing)} trainable tensors, e.g. {sorted(missing)[:3]}")
        state = checkpoint.get("lit_iwpo", {})
        self.objective.load_state_dict(state.get("objective", {}))
        rngs = state.get("rng")
        if rngs and self._trainer is not None and self.trainer.state.fn == "fit":
            rank = self.trainer.global_rank
            rng = rngs[rank if rank < len(rngs) else 0]  # a run resumed on more ranks reuses rank 0's stream
            torch.set_rng_state(rng["torch"])
            if rng["cuda"] and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(rng["cuda"])
            np.random.set_state(_numpy_state_from_torch(rng["numpy"]))
            random.setstate(rng["python"])

    # ------------------------------------------------------------- artefacts
    def full_state_dict(self) -> dict[str, Tensor] | None:
        """The policy's whole state dict, gathered from its shards, on rank 0 (on GPUs empty on the others);
        every rank must call this together. None when the policy is not sharded (its own state dict is whole)."""
        if not self.sharded:
            return None
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        # offloading gathers on rank 0 alone; on CPU there is nothing to offload (and FSDP1 crashes trying)
        offload = next(self.policy.parameters()).device.type != "cpu"
        return get_model_state_dict(self.policy, options=StateDictOptions(full_state_dict=True, cpu_offload=offload))

    def _export_model(self, state_dict: dict[str, Tensor] | None) -> tuple[nn.Module, dict[str, Tensor] | None]:
        """What :meth:`save_hf` saves, and the state dict to save it with: the policy and ``state_dict``, or under
        FSDP1 an unwrapped twin (the base rebuilt, the trained adapter's config) holding the gathered tensors.
        FSDP1's wrappers rename the modules that peft and transformers look the tensors up by (rank 0 holds the
        twin for the duration of the export)."""
        if state_dict is None or not has_fsdp1(self.policy):
            return self.policy, state_dict
        twin = self._build_base()
        if self.lora is not None:  # (model.init_policy too: it needs model.lora)
            twin = get_peft_model(twin, unwrap(self.policy).peft_config["default"])
        missing, _ = twin.load_state_dict(state_dict, strict=False)  # the frozen named adapters stay behind
        if missing:
            raise RuntimeError(f"the gathered state dict lacks {len(missing)} of the export's tensors, "
                               f"e.g. {missing[:3]}")
        return twin, None

    def save_hf(self, out_dir: str | Path, state_dict: dict[str, Tensor] | None = None) -> Path:
        """Save the trained adapter (LoRA) or model (full fine-tuning) + tokenizer as a portable export.

        The folder loads from wherever it is copied to (see :mod:`lit_iwpo.models.trained`, and
        :func:`~lit_iwpo.models.trained.load_trained` for lit_iwpo's loader). A LoRA export holds the trained
        ("default") adapter only, not the frozen named adapters an objective may load. Where its base exists
        nowhere else (tiny random models, or a base with ``init_adapter`` merged into it) the base is saved in
        the same folder, so ``transformers.AutoModelForCausalLM.from_pretrained(folder)`` (peft installed)
        reproduces the trained policy; otherwise ``base_model_name_or_path`` names the base portably (hub id,
        lit_iwpo alias, absolute path of a user's model folder). ``lit_iwpo.json`` records the kind, the base and
        the run's model settings; the objective's trainable parts, if any, go to ``objective_parts.safetensors``.
        A previous export in ``out_dir`` is replaced; any other non-empty folder is refused. ``state_dict``: the
        policy's whole state dict when its own is sharded (:meth:`full_state_dict`).
        """
        from lit_iwpo.models.trained import ExportInfo, export_dir, finish_export, portable_base, save_objective_parts

        out_dir = Path(out_dir)
        lora = self.lora is not None
        beside = lora and (self.name_or_path in TINY_MODELS or bool(self.hparams.init_adapter))
        info = ExportInfo(
            kind="adapter" if lora else "full",
            base=("." if beside else portable_base(self.name_or_path)) if lora else None,
            name_or_path=self.name_or_path, init_adapter=self.hparams.init_adapter, seed=self.hparams.seed,
            dtype=self.hparams.dtype, objective=type(self.objective).__name__,
            generation=self.generation,
        )
        with export_dir(out_dir) as tmp:
            if beside:
                # the base is a pure function of the config: rebuild it rather than unwrapping the adapter
                self._build_base().save_pretrained(tmp)
            model, state_dict = self._export_model(state_dict)
            whole = {} if state_dict is None else {"state_dict": state_dict}
            if lora:  # not the frozen named adapters
                model.save_pretrained(tmp, selected_adapters=["default"], **whole)
            else:
                model.save_pretrained(tmp, **whole)
            self.tokenizer.save_pretrained(tmp)
            save_objective_parts(tmp, dict(self.objective_parts.state_dict()))
            finish_export(tmp, info)
        return out_dir

