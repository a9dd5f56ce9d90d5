"""PreferenceModule: the one LightningModule for preference training.

It owns the policy (and, for full fine-tuning, a frozen reference copy), runs one concatenated forward
of chosen and rejected responses per step, hands the log-probs to the ``objective`` strategy, logs
metrics and saves Hugging Face artefacts. Everything method-specific lives in the objective.
"""

from __future__ import annotations

import copy
import json
import math
import random
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Iterator, Optional

import lightning as L
import numpy as np
import torch
from jsonargparse import lazy_instance
from torch import Tensor

from lit_iwpo.data.collate import PreferenceBatch, PromptBatch
from lit_iwpo.data.tokenize import prompt_text
from lit_iwpo.dist import rank_world
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
    response_logps,
)
from lit_iwpo.models.generation import GenerationSpec, generate_texts
from lit_iwpo.objectives import DPO, Objective, ObjectiveOutput, StepInputs
from lit_iwpo.reference import cache_path, compute_reference_logps, model_fingerprint

LR_SCHEDULES = ("constant", "linear", "cosine")


def _numpy_state_to_torch(state: tuple) -> tuple:
    # checkpoints load with weights_only=True, which refuses numpy arrays: keep the key as a tensor
    name, keys, pos, has_gauss, cached = state
    return name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)


def _numpy_state_from_torch(state: tuple) -> tuple:
    name, keys, pos, has_gauss, cached = state
    return name, keys.numpy().astype(np.uint32), pos, has_gauss, cached


class PreferenceModule(L.LightningModule):
    """Preference optimisation of a causal LM with a pluggable objective.

    Args:
        name_or_path: Model: a hub id, a local folder, a ``.gguf`` file, ``smollm2-135m-instruct`` (the
            embedded default) or ``tiny-llama`` (random, for tests).
        objective: The method, as a strategy object (``class_path``/``init_args``): DPO, SFT, ...
        lora: LoRA adapter settings; null trains all weights against a frozen copy of the base.
        init_adapter: A saved adapter folder (e.g. an SFT run's ``hf/``) merged into the base before training:
            the merged model is the reference and a fresh LoRA adapter (or full fine-tuning) trains on top.
        dtype: Weights dtype: float32, bfloat16 or float16 (bf16 is slower than fp32 on most CPUs).
        lr: Peak learning rate of AdamW.
        weight_decay: AdamW weight decay.
        warmup_steps: Linear warm-up steps of the learning rate.
        lr_schedule: After warm-up: constant, linear (to 0) or cosine (to 0) over the run's optimizer steps.
        precompute_ref_logps: Compute reference log-probs once per split before training, cache them on
            disk (keyed by a fingerprint of data, tokenizer and model) and skip the reference forward.
        ref_cache_dir: Where those caches go (default: ``$LIT_IWPO_CACHE/ref_logps``).
        gradient_checkpointing: Recompute activations in backward (less memory, ~30 % more time).
        generation: Decoding settings for predict and win-rate evaluation.
        seed: Initialisation seed of tiny random models (pretrained weights ignore it).
    """

    def __init__(
        self,
        name_or_path: str = EMBEDDED_ALIAS,
        objective: Objective = lazy_instance(DPO),
        lora: Optional[LoraSpec] = LoraSpec(),
        init_adapter: Optional[str] = None,
        dtype: str = "float32",
        lr: float = 5e-5,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        lr_schedule: str = "constant",
        precompute_ref_logps: bool = False,
        ref_cache_dir: Optional[str] = None,
        gradient_checkpointing: bool = False,
        generation: GenerationSpec = GenerationSpec(),
        seed: int = 0,
    ) -> None:
        super().__init__()
        if lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"model.lr_schedule must be one of {LR_SCHEDULES}, got {lr_schedule!r}")
        if precompute_ref_logps and objective.needs_token_reference:
            raise ValueError(
                f"model.precompute_ref_logps caches sequence log-probs only, but {type(objective).__name__} needs "
                "token-level reference log-probs: set model.precompute_ref_logps: false"
            )
        self.save_hyperparameters(ignore=["objective"])
        self.objective = objective
        self.name_or_path = name_or_path
        self.lora = lora
        self.generation = generation
        self.policy: torch.nn.Module | None = None
        self.reference: torch.nn.Module | None = None  # only for full fine-tuning
        self.tokenizer = None
        self.metrics = StageMetrics()
        self._ref_cache: dict[str, Tensor] = {}
        self._objective_ready = False
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
            self.reference = copy.deepcopy(base).eval().requires_grad_(False)
            self.policy = base
        else:
            self.policy = apply_lora(base, self.lora)
        # from_pretrained returns eval mode; Lightning keeps module modes as it finds them
        self.policy.train()

    @contextmanager
    def reference_model(self) -> Iterator[torch.nn.Module]:
        """The reference policy in eval mode: the frozen copy, or the policy with its adapter disabled."""
        if self.reference is not None:
            yield self.reference
            return
        was_training = self.policy.training
        self.policy.eval()  # the reference must not see adapter or base dropout
        try:
            with self.policy.disable_adapter():
                yield self.policy
        finally:
            self.policy.train(was_training)

    def precision_context(self):
        """The trainer's autocast context: forwards outside the step hooks (reference cache, weight refresh)
        must run in the same precision as the training forward, or their numbers drift apart."""
        trainer = self._trainer
        return trainer.precision_plugin.forward_context() if trainer is not None else nullcontext()

    def policy_logps(self, batch: PreferenceBatch, return_logits: bool = False) -> LogProbs:
        return response_logps(
            self.policy, batch.input_ids, batch.attention_mask, batch.loss_mask, return_logits=return_logits
        )

    @torch.no_grad()
    def reference_logps(self, batch: PreferenceBatch, use_cache: bool = True) -> LogProbs:
        if use_cache and batch.split in self._ref_cache:
            cached = self._ref_cache[batch.split][batch.index.cpu()]
            logps = torch.cat([cached[:, 0], cached[:, 1]]).to(self.device, torch.float32)
            return LogProbs(logps=logps)
        with self.reference_model() as ref, self.precision_context():
            return response_logps(ref, batch.input_ids, batch.attention_mask, batch.loss_mask)

    def forward_is_deterministic(self) -> bool:
        """True when the training forward has no active dropout, so its detached log-probs equal eval-mode ones."""
        if not self.policy.training:
            return True
        cfg = getattr(self.policy, "config", None)
        if any(getattr(cfg, k, 0) for k in ("attention_dropout", "hidden_dropout", "resid_pdrop", "dropout")):
            return False
        return not any(isinstance(m, torch.nn.Dropout) and m.p > 0 for m in self.policy.modules())

    @torch.no_grad()
    def eval_logps(self, batch: PreferenceBatch) -> LogProbs:
        """Current-policy log-probs in eval mode without grad (importance-weight transforms)."""
        was_training = self.policy.training
        self.policy.eval()
        try:
            with self.precision_context():
                return self.policy_logps(batch)
        finally:
            self.policy.train(was_training)

    # ------------------------------------------------------------- lifecycle
    def setup(self, stage: str) -> None:
        trainer = self._trainer
        if rank_world(self)[1] > 1 and trainer._accelerator_connector.use_distributed_sampler:
            raise ValueError(
                "lit_iwpo's data loaders shard themselves across processes: set trainer.use_distributed_sampler: false"
            )

    def _setup_objective(self) -> None:
        if not self._objective_ready:
            self.objective.setup(self)
            self._objective_ready = True

    def on_fit_start(self) -> None:
        self._setup_objective()
        self._prepare_reference_cache(["train", "val"])

    def on_validation_start(self) -> None:
        self._setup_objective()
        self._prepare_reference_cache(["val"])

    def on_test_start(self) -> None:
        self._setup_objective()
        self._prepare_reference_cache(["test"])

    def _prepare_reference_cache(self, splits: list[str]) -> None:
        if not self.hparams.precompute_ref_logps:
            return
        dm = self.trainer.datamodule
        cache_dir = Path(self.hparams.ref_cache_dir or cache_root() / "ref_logps")
        with self.reference_model() as ref:
            model_fp = model_fingerprint(ref)
        for split in splits:
            if split in self._ref_cache or not dm.has_split(split):
                continue
            data = dm.load_split(split)
            path = cache_path(cache_dir, data, dm.tokenizer, model_fp, str(self.trainer.precision))
            if self.trainer.is_global_zero and not path.is_file():
                loader = dm.pair_dataloader(split, shard=False)
                batches = (self.trainer.strategy.batch_to_device(b) for b in loader)
                values = compute_reference_logps(
                    batches, len(data), lambda b: self.reference_logps(b, use_cache=False).logps
                )
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                torch.save({"ids": data.ids, "logps": values}, tmp)
                tmp.rename(path)
            self.trainer.strategy.barrier()
            saved = torch.load(path, weights_only=True)
            if saved["ids"] != data.ids:
                raise RuntimeError(f"reference cache {path} does not match split '{split}' (ids differ)")
            self._ref_cache[split] = saved["logps"]

    # ------------------------------------------------------------------ steps
    def _step(self, batch: PreferenceBatch, stage: str) -> ObjectiveOutput:
        obj = self.objective
        reference = self.reference_logps(batch) if (obj.needs_reference or stage != "train") else None
        policy = self.policy_logps(batch, return_logits=obj.needs_logits and stage == "train")
        out = obj(StepInputs(policy=policy, reference=reference, batch=batch, stage=stage, module=self))
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
        return out

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
        return self._step(batch, "train").loss

    def validation_step(self, batch: PreferenceBatch, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: PreferenceBatch, batch_idx: int) -> None:
        self._step(batch, "test")

    # ------------------------------------------------------------- generation
    def generate(self, batch: PromptBatch, use_adapter: bool = True) -> list[str]:
        """Decode continuations of left-padded prompts; ``use_adapter=False`` generates with the reference."""
        ctx = nullcontext(self.policy) if use_adapter else self.reference_model()
        with ctx as model:
            return generate_texts(model, self.tokenizer, batch.input_ids, batch.attention_mask, self.generation,
                                  seed_offset=int(batch.index[0]))

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
            raise ValueError("no trainable parameters: check model.lora.target_modules")
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
        return {name for name, p in self.named_parameters() if p.requires_grad}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
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

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        missing = self.trainable_state_keys() - set(checkpoint["state_dict"])
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
    def save_hf(self, out_dir: str | Path) -> Path:
        """Save the trained adapter (LoRA) or model (full fine-tuning) + tokenizer in Hugging Face format.

        A LoRA adapter records where its base lives. Where that base exists nowhere on disk (tiny random
        models, or a base with ``init_adapter`` merged into it) it is saved under ``base/`` next to the
        adapter, so the folder loads with peft alone and reproduces the trained policy.
        """
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        self.policy.save_pretrained(out_dir)
        self.tokenizer.save_pretrained(out_dir)
        if self.lora is not None and (self.name_or_path in TINY_MODELS or self.hparams.init_adapter):
            # the base is a pure function of the config: rebuild it rather than unwrapping the adapter
            base_dir = out_dir / "base"
            self._build_base().save_pretrained(base_dir)
            self.tokenizer.save_pretrained(base_dir)
            cfg_path = out_dir / "adapter_config.json"
            cfg = json.loads(cfg_path.read_text())
            cfg["base_model_name_or_path"] = str(base_dir.resolve())
            cfg_path.write_text(json.dumps(cfg, indent=2))
        return out_dir

