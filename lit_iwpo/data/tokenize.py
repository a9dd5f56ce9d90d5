"""Render records to text (chat template or plain) and tokenize with TRL-style truncation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from transformers import PreTrainedTokenizerBase

from lit_iwpo.data.records import DataError, RowError, Source


@dataclass
class TokenizedPair:
    prompt: list[int]
    chosen: list[int]  # response tokens only (end-of-turn / eos included)
    rejected: list[int]


def _as_messages(value: Any, role: str) -> list[dict[str, str]]:
    return value if isinstance(value, list) else [{"role": role, "content": value}]


def prompt_text(row: dict[str, Any]) -> str:
    """The user-facing prompt as plain text (last user turn of a conversation), for judges and logs."""
    prompt = row["prompt"]
    if isinstance(prompt, str):
        return prompt
    users = [m["content"] for m in prompt if m.get("role") == "user"]
    return users[-1] if users else prompt[-1]["content"]


def response_text(value: Any) -> str:
    return value if isinstance(value, str) else "\n".join(m["content"] for m in value)


class PairTokenizer:
    """Turns validated records into token ids within ``max_length`` / ``max_prompt_length``.

    Truncation (as TRL): the prompt keeps its *end* (the question sits at the end of a long
    conversation) up to ``max_prompt_length`` tokens; each response keeps its *start* up to
    ``max_length − len(prompt)`` tokens. A prompt that leaves no room for a single response token is an
    error, reported with the row.

    Chat template: applied when ``apply_chat_template`` is True, never when False, and when None only to
    conversational rows (message lists). Plain-text responses get the eos token appended.
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        max_length: int = 512,
        max_prompt_length: int | None = 256,
        apply_chat_template: bool | None = None,
        system_prompt: str | None = None,
    ) -> None:
        if max_length < 2:
            raise ValueError(f"max_length must be >= 2, got {max_length}")
        if max_prompt_length is not None and not 0 < max_prompt_length < max_length:
            raise ValueError(
                f"max_prompt_length ({max_prompt_length}) must be in [1, max_length) = [1, {max_length}) "
                "so that every response keeps at least one token"
            )
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.max_prompt_length = max_prompt_length
        self.apply_chat_template = apply_chat_template
        self.system_prompt = system_prompt

    def uses_template(self, row: dict[str, Any]) -> bool:
        if self.apply_chat_template is None:
            return any(isinstance(row.get(f), list) for f in ("prompt", "chosen", "rejected"))
        return self.apply_chat_template

    def prompt_messages(self, row: dict[str, Any]) -> list[dict[str, str]]:
        msgs = _as_messages(row["prompt"], "user")
        if self.system_prompt is not None and msgs[0]["role"] != "system":
            msgs = [{"role": "system", "content": self.system_prompt}, *msgs]
        return msgs

    def render_prompt(self, row: dict[str, Any]) -> str:
        if not self.uses_template(row):
            return row["prompt"] if isinstance(row["prompt"], str) else response_text(row["prompt"])
        return self._template(self.prompt_messages(row), add_generation_prompt=True)

    def render(self, row: dict[str, Any]) -> tuple[str, str, str]:
        """(prompt, chosen, rejected) as text; responses are the template's continuation of the prompt."""
        prompt = self.render_prompt(row)
        if not self.uses_template(row):
            return prompt, response_text(row["chosen"]), response_text(row["rejected"])
        msgs = self.prompt_messages(row)
        out = []
        for fld in ("chosen", "rejected"):
            full = self._template(msgs + _as_messages(row[fld], "assistant"), add_generation_prompt=False)
            if not full.startswith(prompt):
                raise RowError(fld, "the chat template's rendering of prompt + response does not begin with its "
                                    "rendering of the prompt alone; set data.apply_chat_template: false or use a "
                                    "tokenizer whose template does")
            # the template ends a turn with "<|im_end|>\n"; the newline after end-of-turn is never generated
            out.append(full[len(prompt):].rstrip("\n"))
        return prompt, out[0], out[1]

    def contrast_prompt_ids(self, row: dict[str, Any], system_prompt: str) -> list[int]:
        """The prompt of ``row`` with ``system_prompt`` in place of its system message (prepended to plain-text
        prompts), untruncated: TIS-DPO's contrastive prompts score the training responses' tokens after it."""
        if self.uses_template(row):
            msgs = [m for m in _as_messages(row["prompt"], "user") if m.get("role") != "system"]
            text = self._template([{"role": "system", "content": system_prompt}, *msgs], add_generation_prompt=True)
        else:
            prompt = row["prompt"] if isinstance(row["prompt"], str) else response_text(row["prompt"])
            text = f"{system_prompt}\n\n{prompt}"
        return self._ids([text])[0]

    def _template(self, messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
        if not getattr(self.tokenizer, "chat_template", None):
            raise DataError("the tokenizer has no chat template; set data.apply_chat_template: false")
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)

    def _ids(self, texts: list[str]) -> list[list[int]]:
        return self.tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []

    def prompts(self, src: Source) -> list[list[int]]:
        """Prompt token ids only (generation), truncated to their last ``max_prompt_length`` tokens."""
        try:
            texts = [self.render_prompt(row) for row in src.rows]
        except DataError as err:
            raise DataError(f"{src.name}: {err}") from None
        out = []
        for i, ids in enumerate(self._ids(texts)):
            if self.max_prompt_length is not None:
                ids = ids[-self.max_prompt_length:]
            if len(ids) >= self.max_length:
                raise DataError(f"{src.where(i, 'prompt')}: the prompt is {len(ids)} tokens, leaving no room for a "
                                f"response within max_length={self.max_length}; set data.max_prompt_length")
            out.append(ids)
        return out

    def __call__(self, src: Source, split: str) -> list[TokenizedPair]:
        rendered = []
        for i, row in enumerate(src.rows):
            try:
                rendered.append(self.render(row))
            except RowError as err:
                raise DataError(f"{src.where(i, err.field)}: {err.problem}") from None
            except DataError as err:
                raise DataError(f"{src.where(i)}: {err}") from None
        prompts = self._ids([r[0] for r in rendered])
        chosen = self._ids([r[1] for r in rendered])
        rejected = self._ids([r[2] for r in rendered])
        eos = self.tokenizer.eos_token_id
        pairs = []
        for i, row in enumerate(src.rows):
            p, c, r = prompts[i], chosen[i], rejected[i]
            if not self.uses_template(row) and eos is not None:
                c, r = c + [eos], r + [eos]
            if self.max_prompt_length is not None and len(p) > self.max_prompt_length:
                p = p[-self.max_prompt_length:]
            room = self.max_length - len(p)
            if room < 1:
                raise DataError(
                    f"{src.where(i, 'prompt')}: the prompt is {len(p)} tokens, leaving no room for a response "
                    f"within max_length={self.max_length}; set data.max_prompt_length below max_length"
                )
            for fld, ids in (("chosen", c), ("rejected", r)):
                if not ids:
                    raise DataError(f"{src.where(i, fld)}: tokenizes to zero tokens")
            pairs.append(TokenizedPair(p, c[:room], r[:room]))
        return pairs
