"""LoRA through peft; the reference policy is the same base with the adapter disabled."""

from __future__ import annotations

from dataclasses import dataclass, field

from peft import LoraConfig, PeftModel, get_peft_model
from transformers import PreTrainedModel

from lit_iwpo.errors import ConfigError


@dataclass
class LoraSpec:
    """LoRA adapter settings (passed to ``peft.LoraConfig``).

    Args:
        r: Rank of the update matrices.
        alpha: Scaling numerator: the update is scaled by alpha / r.
        dropout: Dropout on the adapter input (0 keeps training steps deterministic given the data order).
        target_modules: Names of the linear modules that get adapters (Llama: q_proj k_proj v_proj o_proj
            gate_proj up_proj down_proj).
    """

    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])

    def to_peft(self) -> LoraConfig:
        return LoraConfig(
            r=self.r,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=list(self.target_modules),
            task_type="CAUSAL_LM",
            bias="none",
        )


def apply_lora(model: PreTrainedModel, spec: LoraSpec) -> PeftModel:
    """Wrap ``model`` with a fresh adapter (B = 0, so the policy starts equal to the reference)."""
    if spec.r <= 0:
        raise ConfigError(f"lora.r must be a positive rank, got {spec.r}")
    return get_peft_model(model, spec.to_peft())


def load_adapter(model: PreTrainedModel, adapter_dir: str, trainable: bool = True) -> PeftModel:
    """Attach a saved adapter (a run's ``hf/`` folder) to ``model``."""
    return PeftModel.from_pretrained(model, adapter_dir, is_trainable=trainable)
