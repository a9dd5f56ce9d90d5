"""The scoring service: log-probs (and logits, pooled embeddings) of a batch under a named model.

One base model serves every role. The policy is the base with the trained adapter (or the fine-tuned
weights); the reference is the same base with every adapter disabled (or, for full fine-tuning, a frozen
copy); extra named LoRA adapters (e.g. TIS-DPO's contrastive pair) are loaded frozen onto the same base and
switched on by name, so no role costs a model copy. Objectives say what they need in a
:class:`ForwardRequest`; the module turns it into forwards through :class:`Scorer`.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Callable, ContextManager, Iterator, Mapping

import torch
from peft import PeftModel
from torch import Tensor, nn

from lit_iwpo.data.collate import PreferenceBatch
from lit_iwpo.models.logprobs import POOLINGS, LogProbs, response_logps
from lit_iwpo.models.wrapping import unwrap

REFERENCE_LEVELS = ("none", "sequence", "token")
POLICY, REFERENCE = "policy", "reference"
MODES = ("train", "eval")


@dataclass(frozen=True)
class ForwardRequest:
    """What an objective (or its weight source) needs from the forward pass of a training batch.

    Args:
        reference: ``none`` (no reference in training), ``sequence`` (summed log-probs; a precomputed cache
            can serve them) or ``token`` (per-token reference log-probs: a live forward, never the cache).
        logits: The policy's logits at response positions (``LogProbs.logits``, [N, V]).
        embeddings: Pooled last hidden states of the policy forward: ``mean_response`` (mean over response
            tokens) or ``last_prompt`` (the last prompt token); None for none.
        adapters: Extra LoRA adapters ``{name: folder}`` loaded frozen onto the base; each is scored
            (no grad, eval mode) and handed to the objective under its name.
        reference_logits: The reference's logits at response positions too (a live reference forward; e.g.
            TIS-DPO's KL term).
    """

    reference: str = "sequence"
    logits: bool = False
    embeddings: str | None = None
    adapters: Mapping[str, str] = field(default_factory=dict)
    reference_logits: bool = False

    def __post_init__(self) -> None:
        if self.reference not in REFERENCE_LEVELS:
            raise ValueError(f"ForwardRequest.reference must be one of {REFERENCE_LEVELS}, got {self.reference!r}")
        if self.embeddings is not None and self.embeddings not in POOLINGS:
            raise ValueError(f"ForwardRequest.embeddings must be one of {POOLINGS} or None, got {self.embeddings!r}")
        reserved = {POLICY, REFERENCE} & set(self.adapters)
        if reserved:
            raise ValueError(f"adapter names {sorted(reserved)} are reserved for the policy and the reference")
        object.__setattr__(self, "adapters", dict(self.adapters))

    def merge(self, other: "ForwardRequest") -> "ForwardRequest":
        """The union of two requests (an objective's loss and its weight source)."""
        level = max(self.reference, other.reference, key=REFERENCE_LEVELS.index)
        if self.embeddings and other.embeddings and self.embeddings != other.embeddings:
            raise ValueError(f"conflicting embedding poolings requested: {self.embeddings} and {other.embeddings}")
        clash = {k for k in set(self.adapters) & set(other.adapters) if self.adapters[k] != other.adapters[k]}
        if clash:
            raise ValueError(f"adapter name(s) {sorted(clash)} requested with different folders")
        return ForwardRequest(reference=level, logits=self.logits or other.logits,
                              embeddings=self.embeddings or other.embeddings,
                              adapters={**self.adapters, **other.adapters},
                              reference_logits=self.reference_logits or other.reference_logits)


@contextmanager
def _kept_trainable_flags(model: nn.Module) -> Iterator[None]:
    """peft's set_adapter, and the end of its disable_adapter, mark the active adapters trainable: put every
    parameter's requires_grad back as it was (a frozen named adapter must stay out of the optimizer)."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def _forward(model: nn.Module, batch: PreferenceBatch, request: ForwardRequest | None,
             share_prompt: bool = False) -> LogProbs:
    req = request or ForwardRequest()
    return response_logps(model, batch.input_ids, batch.attention_mask, batch.loss_mask,
                          return_logits=req.logits, pool=req.embeddings, share_prompt=share_prompt)


class Scorer:
    """Forward passes of the canonical pair batch under a named model.

    Args:
        policy: The trained model (a peft model with adapter ``default`` for LoRA).
        reference: A frozen copy for full fine-tuning; None means the policy with its adapters disabled.
        precision: Returns the context every forward outside the training step runs in (the trainer's
            autocast), so reference caches and weight transforms see the numbers training sees.
        share_prompt: Run each pair's prompt once (``response_logps``' shared-prompt layout) where the model
            allows it.
    """

    def __init__(self, policy: nn.Module, reference: nn.Module | None = None,
                 precision: Callable[[], ContextManager] | None = None, share_prompt: bool = False) -> None:
        self.policy = policy
        self.share_prompt = share_prompt
        self.reference = reference
        self.precision = precision or nullcontext
        self.ref_cache: dict[str, Tensor] = {}  # split -> [N, 2] (chosen, rejected) precomputed reference log-probs
        self.adapters: dict[str, str] = {}

    # ------------------------------------------------------------------ models
    @contextmanager
    def reference_model(self) -> Iterator[nn.Module]:
        """The reference in eval mode: the frozen copy, or the policy with its adapters disabled."""
        model = self.reference if self.reference is not None else self.policy
        was_training = model.training
        model.eval()  # the reference must not see adapter or base dropout
        try:
            if not isinstance(unwrap(model), PeftModel):  # the frozen copy of full fine-tuning, no adapters on it
                yield model
            else:
                with _kept_trainable_flags(model), model.disable_adapter():
                    yield model
        finally:
            model.train(was_training)

    def _adapter_host(self) -> nn.Module:
        # LoRA: the policy's own peft model; full fine-tuning: the frozen reference copy (the base)
        return self.policy if self.reference is None else self.reference

    def load_adapters(self, adapters: Mapping[str, str]) -> None:
        """Load each ``{name: folder}`` adapter frozen onto the base (once per name)."""
        for name, path in adapters.items():
            if name in self.adapters:
                if self.adapters[name] != path:
                    raise ValueError(f"adapter {name!r} is already loaded from {self.adapters[name]}, not {path}")
                continue
            host = self._adapter_host()
            if isinstance(unwrap(host), PeftModel):
                host.load_adapter(path, adapter_name=name, is_trainable=False)
            else:
                # a plain frozen reference: wrapping it keeps its own numbers (adapters disabled) reachable
                self.reference = PeftModel.from_pretrained(host, path, adapter_name=name, is_trainable=False)
            self.adapters[name] = path

    @contextmanager
    def adapter_model(self, name: str) -> Iterator[nn.Module]:
        """The base with adapter ``name`` active, in eval mode; the trained adapter is restored afterwards."""
        if name not in self.adapters:
            raise KeyError(f"no adapter named {name!r} is loaded (loaded: {sorted(self.adapters) or 'none'})")
        host = self._adapter_host()
        active = host.active_adapter
        was_training = host.training
        host.eval()
        with _kept_trainable_flags(host):
            host.set_adapter(name, inference_mode=True)
            try:
                yield host
            finally:
                host.set_adapter(active)
                host.train(was_training)

    def is_deterministic(self) -> bool:
        """True when the policy's training forward has no active dropout, so its detached log-probs equal
        eval-mode ones (an objective may then reuse them instead of a second forward)."""
        if not self.policy.training:
            return True
        cfg = getattr(self.policy, "config", None)
        if any(getattr(cfg, k, 0) for k in ("attention_dropout", "hidden_dropout", "resid_pdrop", "dropout")):
            return False
        return not any(isinstance(m, nn.Dropout) and m.p > 0 for m in self.policy.modules())

    # ----------------------------------------------------------------- scoring
    def cached_reference(self, batch: PreferenceBatch) -> LogProbs | None:
        if batch.split not in self.ref_cache:
            return None
        cached = self.ref_cache[batch.split][batch.index.cpu()]
        return LogProbs(logps=torch.cat([cached[:, 0], cached[:, 1]]).to(batch.input_ids.device, torch.float32))

    def score(self, batch: PreferenceBatch, model: str = POLICY, mode: str = "eval",
              request: ForwardRequest | None = None, use_cache: bool = True) -> LogProbs:
        """Log-probs of ``batch`` under ``model``: ``policy``, ``reference`` or a loaded adapter's name.

        ``mode`` applies to the policy: ``train`` runs it as it is (the training forward, with grad and any
        dropout), ``eval`` in eval mode without grad. The reference and named adapters always run in eval
        mode without grad. A sequence-level reference request is served from the precomputed cache when
        the batch's split has one (``use_cache``).
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if model == POLICY:
            if mode == "train":
                return _forward(self.policy, batch, request, self.share_prompt)
            was_training = self.policy.training
            self.policy.eval()
            try:
                with torch.no_grad(), self.precision():
                    return _forward(self.policy, batch, request, self.share_prompt)
            finally:
                self.policy.train(was_training)
        if model == REFERENCE:
            plain = request is None or (request.reference != "token" and not request.logits
                                        and request.embeddings is None)
            if use_cache and plain and (cached := self.cached_reference(batch)) is not None:
                return cached
            with torch.no_grad(), self.reference_model() as ref, self.precision():
                return _forward(ref, batch, request, self.share_prompt)
        with torch.no_grad(), self.adapter_model(model) as adapted, self.precision():
            return _forward(adapted, batch, request, self.share_prompt)
