"""Exports on the tiny model: portable hf/ folders, merged models, ``lit_iwpo export`` and ``lit_iwpo generate``."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from conftest import make_rows, write_jsonl
from lit_iwpo.cli import cli, main
from lit_iwpo.errors import ConfigError
from lit_iwpo.export import export_main
from lit_iwpo.generate import generate_main
from lit_iwpo.models import load_trained
from lit_iwpo.models.generation import GenerationSpec, generate_texts
from lit_iwpo.models.trained import has_peft_layers
from test_cli import _config

PROMPT = "Q3: what colour is the yellow ball?"


def _fit(root: Path, **extra):
    files = {"train": write_jsonl(root / "data" / "train.jsonl", make_rows(12)),
             "val": write_jsonl(root / "data" / "val.jsonl", make_rows(4, offset=100)),
             "test": write_jsonl(root / "data" / "test.jsonl", make_rows(6, offset=200))}
    # a high learning rate so the policy moves far from the base in 4 steps
    cfg = _config(root, files, **{"model.lr": 5e-2, **extra})
    return cli(["fit", "--config", str(cfg), "--test_after_fit", "false", "--eval.win_rate", "false"])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One LoRA run whose hf/ was copied elsewhere and then deleted from the run."""
    root = tmp_path_factory.mktemp("export")
    run = _fit(root)
    run_dir = Path(run.trainer.log_dir)
    copy = root / "elsewhere" / "my-adapter"
    shutil.copytree(run_dir / "hf", copy)
    shutil.rmtree(run_dir / "hf")
    ckpt = next((run_dir / "checkpoints").glob("*.ckpt"))
    run.model.policy.eval()
    return {"run": run, "module": run.model, "run_dir": run_dir, "copy": copy, "ckpt": ckpt, "root": root}


def _ids(tokenizer) -> torch.Tensor:
    return torch.tensor([tokenizer(PROMPT, add_special_tokens=False).input_ids])


@torch.no_grad()
def _policy_and_base_logits(module, ids):
    policy = module.policy(ids).logits
    with module.scorer.reference_model() as ref:
        base = ref(ids).logits
    return policy, base


def _no_run_paths(folder: Path, *forbidden: Path) -> None:
    for f in folder.iterdir():
        if f.suffix in (".json", ".md", ".jinja"):
            text = f.read_text()
            assert not any(str(p) in text for p in forbidden), f.name


@torch.no_grad()
def test_adapter_export_loads_from_a_copy_anywhere(trained, tmp_path, monkeypatch):
    module, copy = trained["module"], trained["copy"]
    monkeypatch.chdir(tmp_path)  # neither the run folder nor the copy
    assert json.loads((copy / "adapter_config.json").read_text())["base_model_name_or_path"] == "."
    assert json.loads((copy / "lit_iwpo.json").read_text())["kind"] == "adapter"
    _no_run_paths(copy, trained["run_dir"], trained["root"])
    ids = _ids(module.tokenizer)
    want, base = _policy_and_base_logits(module, ids)
    assert (want - base).abs().max() > 1e-2  # the run trained
    plain = AutoModelForCausalLM.from_pretrained(copy)  # transformers + peft, the base beside the adapter
    assert torch.allclose(plain(ids).logits, want, rtol=0, atol=1e-6)
    model, tok = load_trained(copy)
    assert tok(PROMPT, add_special_tokens=False).input_ids == ids[0].tolist()
    assert torch.allclose(model(ids).logits, want, rtol=0, atol=1e-6)
    with model.disable_adapter():
        assert torch.allclose(model(ids).logits, base, rtol=0, atol=1e-6)


@torch.no_grad()
def test_init_adapter_export_holds_the_merged_base(trained, tmp_path, monkeypatch):
    """With init_adapter the base (tiny model + first adapter, merged) exists nowhere once both are gone."""
    first = tmp_path / "first-adapter"
    shutil.copytree(trained["copy"], first)
    second = _fit(tmp_path / "second", **{"model.init_adapter": str(first), "trainer.max_steps": 2})
    run_dir = Path(second.trainer.log_dir)
    copy = tmp_path / "elsewhere" / "second"
    shutil.copytree(run_dir / "hf", copy)
    shutil.rmtree(run_dir / "hf")
    shutil.rmtree(first)
    _no_run_paths(copy, run_dir)
    monkeypatch.chdir(tmp_path / "elsewhere")
    module = second.model
    module.policy.eval()
    ids = _ids(module.tokenizer)
    want, merged_base = _policy_and_base_logits(module, ids)
    tiny_base = _policy_and_base_logits(trained["module"], ids)[1]
    assert (want - merged_base).abs().max() > 1e-2 and (merged_base - tiny_base).abs().max() > 1e-2
    plain = AutoModelForCausalLM.from_pretrained(copy)
    assert torch.allclose(plain(ids).logits, want, rtol=0, atol=1e-6)
    model, _ = load_trained(copy)
    assert torch.allclose(model(ids).logits, want, rtol=0, atol=1e-6)


@torch.no_grad()
def test_merged_export_from_checkpoint_and_from_adapter(trained, tmp_path, capsys):
    module, run_dir = trained["module"], trained["run_dir"]
    assert export_main(["--ckpt_path", str(trained["ckpt"]), "--merged"]) == 0
    out = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert out == run_dir / "export-merged"
    assert not (out / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(out)
    assert not has_peft_layers(merged) and not getattr(merged, "_hf_peft_config_loaded", False)
    ids = _ids(module.tokenizer)
    want, base = _policy_and_base_logits(module, ids)
    got = merged(ids).logits
    assert torch.allclose(got, want, rtol=0, atol=1e-5) and (got - base).abs().max() > 1e-2

    # the same merge from the exported adapter folder (through the console entry point)
    with pytest.raises(SystemExit) as exit_:
        main(["export", "--adapter", str(trained["copy"]), "--merged", "--out", str(tmp_path / "m2")])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == str(tmp_path / "m2")
    a, b = merged.state_dict(), AutoModelForCausalLM.from_pretrained(tmp_path / "m2").state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    # without --merged the checkpoint gives the run's portable adapter folder again
    assert export_main(["--ckpt_path", str(trained["ckpt"])]) == 0
    again = run_dir / "export"
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(again)
    model, _ = load_trained(again)
    assert torch.allclose(model(ids).logits, want, rtol=0, atol=1e-6)
    # a second export replaces the first
    assert export_main(["--ckpt_path", str(trained["ckpt"]), "--out", str(again)]) == 0


def _expected(module, prompt: str | list[dict], spec: GenerationSpec, template: bool, index: int = 0,
              base: bool = False) -> str:
    tok = module.tokenizer
    if template:
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        prompt = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = torch.tensor([tok(prompt, add_special_tokens=False).input_ids])
    if base:
        with module.scorer.reference_model() as ref:
            return generate_texts(ref, tok, ids, torch.ones_like(ids), spec, seed_offset=index)[0]
    return generate_texts(module.policy, tok, ids, torch.ones_like(ids), spec, seed_offset=index)[0]


def test_generate_prints_the_policy_replies(trained, capsys, monkeypatch):
    module, copy = trained["module"], str(trained["copy"])
    # greedy, plain text (the tiny model's greedy reply under the chat template is empty): the policy's and
    # the base's replies, each as generate_texts gives them
    greedy = GenerationSpec(max_new_tokens=8)
    args = ["--adapter", copy, "--no_chat_template", "--max_new_tokens", "8", PROMPT]
    assert generate_main(args) == 0
    policy = capsys.readouterr().out
    assert generate_main(args + ["--base"]) == 0
    base = capsys.readouterr().out
    assert policy == _expected(module, PROMPT, greedy, template=False) + "\n"
    assert base == _expected(module, PROMPT, greedy, template=False, base=True) + "\n"
    assert policy.strip() and policy != base

    # sampled, chat template
    sampled = GenerationSpec(max_new_tokens=12, do_sample=True, seed=5)
    args = ["--adapter", copy, "--do_sample", "--seed", "5", "--max_new_tokens", "12", PROMPT]
    generate_main(args)
    policy = capsys.readouterr().out
    assert policy == _expected(module, PROMPT, sampled, template=True) + "\n"

    # piped stdin: one prompt per line, prompt i sampled with seed + i
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{PROMPT}\nQ4: name a colour.\n"))
    generate_main(args[:-1])
    out = capsys.readouterr().out
    second = _expected(module, "Q4: name a colour.", sampled, template=True, index=1)
    assert out == f">>> {PROMPT}\n{policy}\n>>> Q4: name a colour.\n{second}\n\n"

    # a chat: the conversation is kept, /reset starts afresh, an empty line quits
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Terminal(f"{PROMPT}\nand then?\n/reset\n{PROMPT}\n\nnever read\n"))
    generate_main(args[:-1])
    replies = [line[len("bot> "):] for line in capsys.readouterr().out.split("you> ") if line.startswith("bot> ")]
    first = policy.rstrip("\n")
    turn2 = _expected(module, [{"role": "user", "content": PROMPT}, {"role": "assistant", "content": first},
                               {"role": "user", "content": "and then?"}], sampled, template=True, index=1)
    assert [r.rstrip("\n") for r in replies] == [first, turn2, first]


def test_errors_are_one_line_config_errors(trained, tmp_path, capsys):
    missing = tmp_path / "nope"
    with pytest.raises(ConfigError, match=r"^--adapter: .*nope does not exist; give a run's hf/ folder"):
        generate_main(["--adapter", str(missing), "hi"])
    not_export = tmp_path / "notes"
    not_export.mkdir()
    (not_export / "x.txt").write_text("x")
    with pytest.raises(ConfigError, match=r"^--adapter: .*notes is not a model export \(no adapter_config.json"):
        generate_main(["--adapter", str(not_export), "hi"])
    with pytest.raises(ConfigError, match=r"^--adapter: .*notes is not a model export"):
        export_main(["--adapter", str(not_export), "--merged"])
    with pytest.raises(ConfigError, match=r"^--ckpt_path: .*last.ckpt not found"):
        export_main(["--ckpt_path", str(tmp_path / "last.ckpt")])
    with pytest.raises(ConfigError, match=r"^--adapter: .* already is an export .* add --merged"):
        export_main(["--adapter", str(trained["copy"])])
    lone = tmp_path / "lone.ckpt"
    shutil.copy(trained["ckpt"], lone)
    with pytest.raises(ConfigError, match=r"^--config: the checkpoint's run has no config.yaml"):
        export_main(["--ckpt_path", str(lone)])
    with pytest.raises(ConfigError, match=r"^--out: .*notes exists and is not a lit_iwpo export"):
        export_main(["--adapter", str(trained["copy"]), "--merged", "--out", str(not_export)])
    assert (not_export / "x.txt").is_file()
    # through the console entry point: one line on stderr, exit status 2
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(["generate", "--adapter", str(missing), "hi"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("lit_iwpo: error: --adapter: ") and err.count("\n") == 1


@torch.no_grad()
def test_full_fine_tuning_exports_the_full_model(tmp_path, monkeypatch, capsys):
    run = _fit(tmp_path / "full", **{"model.lora": None, "model.lr": 1e-2, "trainer.max_steps": 2})
    run_dir = Path(run.trainer.log_dir)
    ckpt = next((run_dir / "checkpoints").glob("*.ckpt"))
    module = run.model
    module.policy.eval()
    ids = _ids(module.tokenizer)
    want, base = _policy_and_base_logits(module, ids)
    assert (want - base).abs().max() > 1e-2
    monkeypatch.chdir(tmp_path)
    for args, out in ([[], run_dir / "export"], [["--merged"], run_dir / "export-merged"]):
        assert export_main(["--ckpt_path", str(ckpt), *args]) == 0
        assert json.loads((out / "lit_iwpo.json").read_text())["kind"] == "full"
        assert not (out / "adapter_config.json").exists()
        assert torch.allclose(AutoModelForCausalLM.from_pretrained(out)(ids).logits, want, rtol=0, atol=1e-6)
    # --base rebuilds the model it was trained from (the tiny model of the run's seed)
    capsys.readouterr()
    generate_main(["--adapter", str(run_dir / "hf"), "--base", "--no_chat_template", "--max_new_tokens", "6", PROMPT])
    spec = GenerationSpec(max_new_tokens=6)
    assert capsys.readouterr().out == _expected(module, PROMPT, spec, template=False, base=True) + "\n"
