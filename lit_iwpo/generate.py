"""``lit_iwpo generate``: replies of a trained model to prompts, or a chat with it.

    lit_iwpo generate --adapter runs/NAME/version_N/hf "What is DPO?" "Name a colour."
    lit_iwpo generate --adapter runs/NAME/version_N/hf                  # a chat (stdin is a terminal)
    cat prompts.txt | lit_iwpo generate --adapter runs/NAME/version_N/hf  # one prompt per line

``--adapter`` takes any export (a run's ``hf/``, ``lit_iwpo export`` output, merged or full models; see
:func:`lit_iwpo.models.trained.load_trained`). Prompts are rendered as in training with
``data.apply_chat_template: true`` (the tokenizer's chat template, with ``--system_prompt`` as the system
turn) unless ``--no_chat_template``. Decoding is :func:`lit_iwpo.models.generation.generate_texts` with a
:class:`~lit_iwpo.models.generation.GenerationSpec` whose defaults are the run's ``model.generation``
settings (recorded in the export's ``lit_iwpo.json``).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from contextlib import nullcontext
from dataclasses import fields
from pathlib import Path
from typing import Iterable, TextIO

from lit_iwpo.errors import ConfigError

DESCRIPTION = """\
Print a trained model's reply to each prompt. With no prompt: a chat when stdin is a terminal (the
conversation is kept across turns; /reset clears it; an empty line or Ctrl-D quits), otherwise one prompt per
line of stdin. With more than one prompt, each reply follows a '>>> prompt' line. Decoding defaults to the
run's model.generation settings (greedy unless the run sampled); options override them."""

EPILOG = """\
examples:
  lit_iwpo generate --adapter runs/quickstart/version_0/hf "How do I pick a lock?"
  lit_iwpo generate --adapter runs/quickstart/version_0/hf --base "How do I pick a lock?"   # the base model
  lit_iwpo generate --adapter runs/quickstart/version_0/hf --do_sample --temperature 0.7 --seed 1
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lit_iwpo generate", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("prompts", nargs="*", metavar="PROMPT", help="prompts (none: chat or read stdin)")
    p.add_argument("--adapter", type=Path, required=True, metavar="DIR",
                   help="a run's hf/ folder, or a folder written by lit_iwpo export (adapter, merged or full model)")
    p.add_argument("--base", action="store_true",
                   help="generate with the base model instead (adapter disabled), for comparison")
    g = p.add_argument_group("decoding (defaults: the run's model.generation, else lit_iwpo's defaults)")
    g.add_argument("--max_new_tokens", type=int, help="tokens generated per reply at most (default 64)")
    g.add_argument("--do_sample", action=argparse.BooleanOptionalAction,
                   help="sample instead of greedy decoding (--no-do_sample forces greedy)")
    g.add_argument("--temperature", type=float, help="sampling temperature (with --do_sample; default 1.0)")
    g.add_argument("--top_p", type=float, help="nucleus sampling mass (with --do_sample; default 1.0)")
    g.add_argument("--seed", type=int, help="seed of the sampling RNG (default 0); prompt i uses seed + i")
    t = p.add_argument_group("prompt format")
    t.add_argument("--system_prompt", metavar="TEXT", help="a system turn before each conversation (chat template)")
    t.add_argument("--no_chat_template", action="store_true",
                   help="feed prompts as plain text (default: the tokenizer's chat template when it has one)")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"],
                   help="weights dtype (default: the export's)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    return p


def _spec(args: argparse.Namespace, recorded: dict):
    from lit_iwpo.models.generation import GenerationSpec

    names = {f.name for f in fields(GenerationSpec)}
    values = {k: v for k, v in (recorded or {}).items() if k in names}
    values.update({k: getattr(args, k) for k in names if getattr(args, k, None) is not None})
    spec = GenerationSpec(**values)
    if spec.max_new_tokens < 1:
        raise ConfigError(f"--max_new_tokens must be at least 1, got {spec.max_new_tokens}")
    if spec.do_sample and not (spec.temperature > 0 and 0 < spec.top_p <= 1):
        raise ConfigError(f"--temperature must be > 0 and --top_p in (0, 1] when sampling, got {spec.temperature} "
                          f"and {spec.top_p}")
    return spec


class Generator:
    """A loaded export and the settings to answer with; ``reply(messages)`` answers a conversation."""

    def __init__(self, args: argparse.Namespace) -> None:
        import torch

        from lit_iwpo.models.trained import load_base_of, load_trained, read_info

        self.model, self.tokenizer = load_trained(args.adapter, dtype=args.dtype, what="--adapter")
        info = read_info(args.adapter)
        self.spec = _spec(args, info.get("generation", {}))
        self.use_template = not args.no_chat_template and bool(getattr(self.tokenizer, "chat_template", None))
        if args.system_prompt is not None and not self.use_template:
            raise ConfigError("--system_prompt needs the chat template: drop --no_chat_template"
                              if args.no_chat_template else "--system_prompt: this tokenizer has no chat template")
        self.system_prompt = args.system_prompt
        self.disable = nullcontext
        if args.base:
            from peft import PeftModel

            if isinstance(self.model, PeftModel):
                self.disable = self.model.disable_adapter
            else:  # a full or merged model: its base is a model of its own
                self.model = load_base_of(args.adapter, dtype=args.dtype, what="--adapter")
        device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            self.device = torch.device(device)
            self.model.to(self.device)
        except (RuntimeError, AssertionError) as err:
            raise ConfigError(f"--device {device}: {str(err).splitlines()[0]}") from None

    def render(self, messages: list[dict[str, str]]) -> str:
        """The prompt text of a conversation (ending in a user turn), as training renders prompts."""
        if not self.use_template:
            return "\n".join(m["content"] for m in messages)
        if self.system_prompt is not None:
            messages = [{"role": "system", "content": self.system_prompt}, *messages]
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def reply(self, messages: list[dict[str, str]], index: int = 0) -> str:
        """Generate the reply to a conversation; ``index`` offsets the sampling seed (prompt or turn number)."""
        import torch

        from lit_iwpo.models.generation import generate_texts

        ids = self.tokenizer(self.render(messages), add_special_tokens=False)["input_ids"]
        input_ids = torch.tensor([ids], device=self.device)
        with self.disable():
            return generate_texts(self.model, self.tokenizer, input_ids, torch.ones_like(input_ids), self.spec,
                                  seed_offset=index)[0]


def _chat(gen: Generator, out: TextIO) -> None:
    """The interactive loop; ``input()`` reads sys.stdin (with line editing on a terminal)."""
    print("lit_iwpo chat: /reset clears the conversation; an empty line or Ctrl-D quits.", file=sys.stderr)
    messages: list[dict[str, str]] = []
    turn = 0
    while True:
        try:
            text = input("you> ").strip()
        except EOFError:
            print(file=out)
            return
        if not text:
            return
        if text == "/reset":
            messages, turn = [], 0  # a fresh conversation answers as the first one did
            print("(conversation cleared)", file=out, flush=True)
            continue
        messages.append({"role": "user", "content": text})
        answer = gen.reply(messages, index=turn)
        messages.append({"role": "assistant", "content": answer})
        turn += 1
        print(f"bot> {answer}", file=out, flush=True)


def _answer_all(gen: Generator, prompts: Iterable[str], out: TextIO, headers: bool) -> None:
    for i, prompt in enumerate(prompts):
        answer = gen.reply([{"role": "user", "content": prompt}], index=i)
        if headers:
            print(f">>> {prompt}\n{answer}\n", file=out, flush=True)
        else:
            print(answer, file=out, flush=True)


def generate_main(argv: list[str] | None = None) -> int:
    """Console entry of ``lit_iwpo generate`` (see the module docstring)."""
    args = _parser().parse_args(argv)
    # transformers' deprecation notices are not the user's to act on; replies go to stdout, notices to stderr
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
    gen = Generator(args)
    stdin, out = sys.stdin, sys.stdout
    if args.prompts:
        _answer_all(gen, args.prompts, out, headers=len(args.prompts) > 1)
    elif stdin.isatty():
        _chat(gen, out)
    else:
        prompts = [line.rstrip("\n") for line in stdin if line.strip()]
        _answer_all(gen, prompts, out, headers=len(prompts) > 1)
    return 0


if __name__ == "__main__":
    sys.exit(generate_main())
