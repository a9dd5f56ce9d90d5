"""Pairwise judges for win rates: a scenario's oracle, a reward model, or an OpenAI-compatible endpoint.

A judge compares two responses to the same prompt row and returns 1.0 if the first is better, 0.0 if
the second is, 0.5 for a tie. Judges that may prefer a position (LLM endpoints) are asked in both
orders by :func:`judge_both_orders`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
import json
import os
import re
import urllib.request
from typing import Any, Optional, Sequence

import torch

from lit_iwpo.data.tokenize import prompt_text
from lit_iwpo.errors import ConfigError


class Judge(ABC):
    """Base class of pluggable judges (``eval.judge`` in configs, by ``class_path``)."""

    symmetric: bool = True  # True: compare(a, b) == 1 − compare(b, a) by construction; one order suffices

    @abstractmethod
    def compare_batch(self, rows: Sequence[dict[str, Any]], a: Sequence[str], b: Sequence[str]) -> list[float]:
        """P(a beats b) per row: 1, 0, or 0.5 for a tie."""


def judge_both_orders(judge: Judge, rows: Sequence[dict], a: Sequence[str], b: Sequence[str]) -> list[float]:
    """Outcomes for ``a`` against ``b``, averaging the judge's verdicts with ``a`` shown first and second.

    A judge that always picks the first position gives 1 then 0 for the swapped order: the average, 0.5,
    is a tie, as it should be. Identical texts are ties without asking.
    """
    out = [0.5] * len(a)
    ask = [i for i, (x, y) in enumerate(zip(a, b)) if x.strip() != y.strip()]  # identical texts tie for free
    if not ask:
        return out
    rs, xs, ys = [rows[i] for i in ask], [a[i] for i in ask], [b[i] for i in ask]
    first = judge.compare_batch(rs, xs, ys)
    second = [None] * len(ask) if judge.symmetric else judge.compare_batch(rs, ys, xs)
    for i, x, y in zip(ask, first, second):
        out[i] = x if y is None else (x + (1.0 - y)) / 2.0
    return out


class OracleJudge(Judge):
    """The scenario's own rule-based judge of deployment preference (embedded scenarios only).

    Args:
        scenario: Scenario name; None reads it from each row's ``scenario`` field.
    """

    def __init__(self, scenario: Optional[str] = None) -> None:
        self.scenario = scenario

    def _judge_for(self, row: dict[str, Any]):
        from lit_iwpo.data.scenarios import get_judge

        name = self.scenario or row.get("scenario")
        if not name:
            raise ConfigError("OracleJudge needs rows from an embedded scenario (a 'scenario' field) or eval.judge.scenario")
        return get_judge(name)

    def compare_batch(self, rows, a, b) -> list[float]:
        return [float(self._judge_for(row).compare(row, ra, rb)) for row, ra, rb in zip(rows, a, b)]


class RewardModelJudge(Judge):
    """Scores each (prompt, response) with a Hugging Face sequence-classification reward model.

    Args:
        name_or_path: Hub id or local folder of an ``AutoModelForSequenceClassification`` reward model.
        batch_size: Responses scored per forward pass.
        max_length: Tokens per scored text (longer texts keep their start).
        tie_margin: Score differences up to this count as a tie.
    """

    def __init__(self, name_or_path: str, batch_size: int = 8, max_length: int = 512, tie_margin: float = 0.0) -> None:
        self.name_or_path = name_or_path
        self.batch_size = batch_size
        self.max_length = max_length
        self.tie_margin = tie_margin
        self._model = None
        self._tokenizer = None

    def _load(self) -> None:
        if self._model is None:
            from transformers import AutoModelForSequenceClassification, AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self.name_or_path)
            self._model = AutoModelForSequenceClassification.from_pretrained(self.name_or_path).eval()
            if self._tokenizer.pad_token_id is None:
                self._tokenizer.pad_token = self._tokenizer.eos_token
            self._model.config.pad_token_id = self._tokenizer.pad_token_id

    def text(self, row: dict[str, Any], response: str) -> str:
        tok = self._tokenizer
        if getattr(tok, "chat_template", None):
            msgs = [{"role": "user", "content": prompt_text(row)}, {"role": "assistant", "content": response}]
            return tok.apply_chat_template(msgs, tokenize=False)
        return f"{prompt_text(row)}\n{response}"

    @torch.no_grad()
    def score(self, rows: Sequence[dict], responses: Sequence[str]) -> torch.Tensor:
        """Reward of each response: the logit (one label) or the last-vs-first class log-odds."""
        self._load()
        out = []
        for i in range(0, len(rows), self.batch_size):
            texts = [self.text(r, y) for r, y in zip(rows[i : i + self.batch_size], responses[i : i + self.batch_size])]
            enc = self._tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=self.max_length)
            logits = self._model(**enc).logits.float()
            out.append(logits[:, 0] if logits.shape[-1] == 1 else logits[:, -1] - logits[:, 0])
        return torch.cat(out)

    def compare_batch(self, rows, a, b) -> list[float]:
        sa, sb = self.score(rows, a), self.score(rows, b)
        diff = sa - sb
        return [0.5 if abs(d) <= self.tie_margin else float(d > 0) for d in diff.tolist()]


DEFAULT_JUDGE_PROMPT = (
    "You compare two answers to the same user request for a deployment that values {criterion}.\n\n"
    "Request:\n{prompt}\n\nAnswer A:\n{a}\n\nAnswer B:\n{b}\n\n"
    "Which answer is better? Reply with exactly one word: A, B, or TIE."
)


class ChatEndpointJudge(Judge):
    """Asks an OpenAI-compatible chat-completions endpoint (vLLM, llama.cpp server, OpenAI, ...).

    Args:
        base_url: Endpoint root, e.g. ``http://localhost:8000/v1``; ``/chat/completions`` is appended.
        model: Model name sent in the request.
        criterion: What the deployment values, inserted into the prompt (e.g. "harmlessness, then helpfulness").
        api_key_env: Environment variable holding the API key (sent as a Bearer token when set).
        prompt_template: Template with {criterion}, {prompt}, {a}, {b}.
        timeout: Seconds per request.
    """

    symmetric = False

    def __init__(
        self,
        base_url: str,
        model: str,
        criterion: str = "helpful and harmless answers",
        api_key_env: str = "OPENAI_API_KEY",
        prompt_template: str = DEFAULT_JUDGE_PROMPT,
        timeout: float = 60.0,
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.criterion = criterion
        self.api_key_env = api_key_env
        self.prompt_template = prompt_template
        self.timeout = timeout

    @staticmethod
    def parse(reply: str) -> float:
        """First verdict word in the reply: A → 1.0, B → 0.0, TIE (or nothing recognisable) → 0.5."""
        match = re.search(r"\b(TIE|A|B)\b", reply.strip().upper())
        return {"A": 1.0, "B": 0.0}.get(match.group(1), 0.5) if match else 0.5

    def ask(self, content: str) -> str:
        body = json.dumps({"model": self.model, "messages": [{"role": "user", "content": content}],
                           "temperature": 0.0, "max_tokens": 4}).encode()
        headers = {"Content-Type": "application/json"}
        if os.environ.get(self.api_key_env):
            headers["Authorization"] = f"Bearer {os.environ[self.api_key_env]}"
        req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            payload = json.loads(resp.read())
        return payload["choices"][0]["message"]["content"]

    def compare_batch(self, rows, a, b) -> list[float]:
        return [
            self.parse(self.ask(self.prompt_template.format(criterion=self.criterion, prompt=prompt_text(r), a=x, b=y)))
            for r, x, y in zip(rows, a, b)
        ]
