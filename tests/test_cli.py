"""The lit_iwpo CLI on a tiny model: files written, config handling, subcommands, exact resume."""

import csv
import json
from pathlib import Path

import pytest
import torch
import yaml

from lit_iwpo.data.scenarios import MATERIALS
from lit_iwpo.cli import cli, main


def _config(tmp_path: Path, pref_files, **extra) -> Path:
    cfg = {
        "seed_everything": 0,
        "trainer": {
            "max_steps": 4,
            "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger",
                       "init_args": {"save_dir": str(tmp_path / "runs"), "name": "t"}},
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "log_every_n_steps": 1,
            "num_sanity_val_steps": 0,
        },
        "model": {"name_or_path": "tiny-llama", "lr": 1e-3},
        "data": {"train": str(pref_files["train"]), "val": str(pref_files["val"]), "test": str(pref_files["test"]),
                 "batch_size": 2, "apply_chat_template": True, "max_length": 96, "max_prompt_length": 64},
    }
    for key, value in extra.items():
        node = cfg
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    path = tmp_path / "cfg.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_fit_writes_run_directory(tmp_path, pref_files):
    run = cli(["fit", "--config", str(_config(tmp_path, pref_files))])
    out = Path(run.trainer.log_dir)
    assert out == tmp_path / "runs" / "t" / "version_0"
    assert {"config.yaml", "metrics.csv", "summary.json", "checkpoints", "hf"} <= {p.name for p in out.iterdir()}
    summary = json.loads((out / "summary.json").read_text())
    for key in ("val/loss", "val/rewards/accuracies", "test/rewards/accuracies", "test/rewards/margins",
                "test/logps/chosen"):
        assert key in summary, key
    assert summary["global_step"] == 4
    # the final training loss, the resolved config and wall time per phase
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    last = max((r for r in rows if r.get("train/loss")), key=lambda r: int(r["step"]))
    assert summary["train/loss_final"] == pytest.approx(float(last["train/loss"]), rel=1e-6)
    assert Path(summary["config"]) == (out / "config.yaml").resolve()
    assert 0 < summary["time/train_loop_s"] <= summary["time/total_s"]
    assert summary["time/validate_s"] > 0 and summary["time/test_s"] > 0
    # summary values are the logged epoch values
    assert summary["test/rewards/accuracies"] == pytest.approx(float(run.trainer.callback_metrics["test/rewards/accuracies"]))
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert len([r for r in rows if r.get("train/loss")]) == 4
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["model"]["objective"]["class_path"] == "lit_iwpo.objectives.DPO"
    assert run.datamodule.tokenizer_name == "tiny-llama"  # linked from model.name_or_path

    # the adapter loads with transformers (+ peft) alone and reproduces the trained policy
    from transformers import AutoModelForCausalLM, AutoTokenizer

    hf = AutoModelForCausalLM.from_pretrained(out / "hf")
    tok = AutoTokenizer.from_pretrained(out / "hf")
    ids = torch.tensor([tok("hello world").input_ids])
    run.model.policy.eval()
    assert torch.allclose(hf(ids).logits, run.model.policy(ids).logits, atol=1e-5)


def test_print_config_overrides_and_several_configs(tmp_path, pref_files, capsys):
    base = _config(tmp_path, pref_files)
    extra = tmp_path / "ipo.yaml"
    extra.write_text(yaml.safe_dump({"model": {"objective": {"class_path": "lit_iwpo.objectives.DPO",
                                                             "init_args": {"loss_type": "ipo"}}}}))
    with pytest.raises(SystemExit) as exit_:
        cli(["fit", "--config", str(base), "--config", str(extra), "--model.objective.beta", "0.2",
             "--data.batch_size", "3", "--print_config"])
    assert exit_.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    obj = printed["model"]["objective"]
    assert obj["class_path"] == "lit_iwpo.objectives.DPO"
    assert obj["init_args"]["loss_type"] == "ipo" and obj["init_args"]["beta"] == 0.2
    assert printed["data"]["batch_size"] == 3 and printed["model"]["lora"]["r"] == 8


def test_sft_objective_by_class_path(tmp_path, pref_files):
    run = cli(["fit", "--config", str(_config(tmp_path, pref_files)), "--model.objective", "lit_iwpo.objectives.SFT",
               "--trainer.max_steps", "1", "--test_after_fit", "false"])
    assert type(run.model.objective).__name__ == "SFT" and run.model.objective.average_tokens is True
    assert not (Path(run.trainer.log_dir) / "summary.json").read_text().count("test/")


def test_validate_test_predict_from_checkpoint(tmp_path, pref_files):
    cfg = _config(tmp_path, pref_files, **{"model.generation": {"max_new_tokens": 5}})
    run = cli(["fit", "--config", str(cfg), "--test_after_fit", "false"])
    ckpt = next((Path(run.trainer.log_dir) / "checkpoints").glob("*.ckpt"))
    trained = {k: v.clone() for k, v in run.model.state_dict().items() if "lora_" in k}

    tested = cli(["test", "--config", str(cfg), "--ckpt_path", str(ckpt)])
    assert all(torch.equal(v, tested.model.state_dict()[k]) for k, v in trained.items())
    summary = json.loads((Path(tested.trainer.log_dir) / "summary.json").read_text())
    assert summary["test/rewards/accuracies"] == pytest.approx(float(tested.trainer.callback_metrics["test/rewards/accuracies"]))
    validated = cli(["validate", "--config", str(cfg), "--ckpt_path", str(ckpt)])
    assert "val/rewards/margins" in validated.trainer.callback_metrics

    predicted = cli(["predict", "--config", str(cfg), "--ckpt_path", str(ckpt)])
    lines = (Path(predicted.trainer.log_dir) / "predictions.jsonl").read_text().splitlines()
    recs = [json.loads(line) for line in lines]
    assert len(recs) == 6 and recs[0]["prompt"] == "Q200: what colour is the pink ball?"
    assert {"id", "prompt", "response"} <= set(recs[0])


def test_bad_data_fails_before_training(tmp_path, pref_files):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "p", "chosen": "same", "rejected": "same"}) + "\n")
    from lit_iwpo.data import DataError

    with pytest.raises(DataError, match=rf"{bad}, row 1, field 'rejected'"):
        cli(["fit", "--config", str(_config(tmp_path, pref_files)), "--data.train", str(bad)])


def _lora_state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items() if "lora_" in k}


def test_resume_mid_epoch_equals_uninterrupted(tmp_path, pref_files):
    """12 pairs, batch 2 ⇒ 6 steps/epoch; stop at step 3 (mid-epoch 0), resume, run to step 9 (epoch 1).
    LoRA dropout is on, so RNG state must be restored too; the data order must continue exactly."""
    common = {
        "trainer.max_steps": 9,
        "model.lora": {"r": 4, "alpha": 8, "dropout": 0.2, "target_modules": ["q_proj", "v_proj"]},
        "trainer.callbacks": [{"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                               "init_args": {"every_n_train_steps": 3, "save_top_k": -1,
                                             "filename": "{step}"}}],
    }
    full = cli(["fit", "--config", str(_config(tmp_path / "a", pref_files, **common)), "--test_after_fit", "false"])
    ckpt = Path(full.trainer.log_dir) / "checkpoints" / "step=3.ckpt"
    assert ckpt.is_file()
    resumed = cli(["fit", "--config", str(_config(tmp_path / "b", pref_files, **common)), "--test_after_fit", "false",
                   "--ckpt_path", str(ckpt)])
    a, b = _lora_state(full.model), _lora_state(resumed.model)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # and the per-step losses after the resume point are the same numbers
    def losses(run):
        rows = csv.DictReader((Path(run.trainer.log_dir) / "metrics.csv").open())
        return {int(r["step"]): float(r["train/loss"]) for r in rows if r.get("train/loss")}
    la, lb = losses(full), losses(resumed)
    assert sorted(lb) == list(range(3, 9)) and all(la[s] == lb[s] for s in lb)
    # an uninterrupted run with a different seed would differ: the comparison has teeth
    other = cli(["fit", "--config", str(_config(tmp_path / "c", pref_files, **common)), "--test_after_fit", "false",
                 "--seed_everything", "1"])
    assert any(not torch.equal(a[k], v) for k, v in _lora_state(other.model).items())


def _losses(run):
    rows = csv.DictReader((Path(run.trainer.log_dir) / "metrics.csv").open())
    return {int(r["step"]): float(r["train/loss"]) for r in rows if r.get("train/loss")}


def test_resume_from_end_of_run_checkpoints_equals_uninterrupted(tmp_path, pref_files):
    """A run stopped by max_steps mid-epoch writes its end-of-run checkpoints after Lightning closed the epoch;
    resumed with a larger max_steps it must continue that epoch, not start a new shuffle. 12 pairs, batch 2 ⇒
    6 steps/epoch; the straight run goes to step 9 (into epoch 1). Cases: save_last after 2 steps; an interval
    (3) that does not divide max_steps (4); Lightning's default checkpoint; an epoch that ended exactly."""
    lora = {"r": 4, "alpha": 8, "dropout": 0.2, "target_modules": ["q_proj", "v_proj"]}

    def run(name, max_steps, callbacks, ckpt=None):
        extra = {"trainer.max_steps": max_steps, "model.lora": lora}
        if callbacks is not None:
            extra["trainer.callbacks"] = callbacks
        args = ["fit", "--config", str(_config(tmp_path / name, pref_files, **extra)), "--test_after_fit", "false"]
        return cli(args + (["--ckpt_path", str(ckpt)] if ckpt else []))

    def checkpoint(**kw):
        return [{"class_path": "lightning.pytorch.callbacks.ModelCheckpoint", "init_args": kw}]

    full = run("full", 9, None)
    a, la = _lora_state(full.model), _losses(full)
    cases = {  # name: (steps of the first run, its callbacks, which checkpoint to resume from)
        "save_last": (2, checkpoint(save_last=True, every_n_train_steps=100), "last.ckpt"),
        "interval_3_of_4": (4, checkpoint(save_last=True, every_n_train_steps=3), "last.ckpt"),
        "default": (4, None, "epoch=0-step=4.ckpt"),
        "epoch_end": (6, checkpoint(save_last=True), "last.ckpt"),
    }
    for name, (steps, callbacks, file) in cases.items():
        first = run(name, steps, callbacks)
        ckpt = Path(first.trainer.log_dir) / "checkpoints" / file
        resumed = run(name + "_resumed", 9, callbacks, ckpt)
        b, lb = _lora_state(resumed.model), _losses(resumed)
        assert sorted(lb) == list(range(steps, 9)), name
        assert all(la[s] == lb[s] for s in lb), (name, {s: (la[s], lb[s]) for s in lb})
        assert all(torch.equal(a[k], b[k]) for k in a), name
        assert resumed.trainer.global_step == 9 and resumed.trainer.current_epoch == full.trainer.current_epoch


SCENARIO_CONFIGS = sorted(Path("configs/scenarios").glob("*.yaml"))
METHOD_CONFIGS = sorted(Path("configs/methods").glob("*.yaml"))


@pytest.mark.parametrize("method", METHOD_CONFIGS, ids=lambda p: p.stem)
def test_every_method_config_trains_on_every_scenario(tmp_path, method):
    """Each shipped method config composes with each scenario config (as README and `lit_iwpo table`
    use them) and trains on the split it declares, past IW-DPO's warm-up, on the tiny model."""
    assert len(SCENARIO_CONFIGS) == 5 and len(METHOD_CONFIGS) >= 13
    declared = yaml.safe_load(method.read_text())
    train_on = declared.get("data", {}).get("train_on", "train")
    objective = declared["model"]["objective"]["class_path"]
    weights = declared["model"]["objective"].get("init_args", {}).get("weights") or {}
    anti_oracle = (weights.get("init_args") or {}).get("complement") is True
    for scenario in SCENARIO_CONFIGS:
        out = tmp_path / scenario.stem
        args = ["fit", "--config", str(scenario), "--config", str(method),
                "--model.name_or_path", "tiny-llama", "--trainer.max_steps", "12",
                "--trainer.enable_progress_bar", "false", "--trainer.num_sanity_val_steps", "0",
                "--trainer.logger.init_args.save_dir", str(out), "--eval.win_rate", "false",
                "--data.eval_batch_size", "64"]
        name = yaml.safe_load(scenario.read_text())["data"]["train"].split(":")[1]
        if anti_oracle and MATERIALS[name].default_shift == "a":
            # no shift, so no irrelevant pair: 1 - relevant is 0 everywhere, and the run says so instead of training
            with pytest.raises(ValueError, match="gives every pair weight 0 .*nothing would train"):
                cli(args)
            continue
        run = cli(args)
        train_ids, val_ids = set(run.datamodule.splits["train"].ids), set(run.datamodule.splits["val"].ids)
        assert len(train_ids) == {"train": 400, "val": 32, "train+val": 432}[train_on]  # the scenario's sizes
        assert (val_ids <= train_ids) == (train_on != "train")
        assert type(run.model.objective).__name__ == objective.rsplit(".", 1)[1]
        assert run.trainer.global_step == 12
        summary = json.loads((Path(run.trainer.log_dir) / "summary.json").read_text())
        assert 0.0 <= summary["test/rewards/accuracies"] <= 1.0


def _main_error(args, capsys) -> str:
    """Run the console entry point; return its stderr, which must end in exactly one error line."""
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    return lines[0]


def test_user_errors_are_one_line(tmp_path, pref_files, capsys, monkeypatch):
    monkeypatch.delenv("LIT_IWPO_DEBUG", raising=False)
    cfg = str(_config(tmp_path, pref_files))
    fit = ["fit", "--config", cfg]
    assert _main_error(fit + ["--model.objective.beta", "-1"], capsys) == (
        "lit_iwpo: error: objective.beta must be > 0, got -1.0")
    missing = tmp_path / "nope.jsonl"
    assert _main_error(fit + ["--data.train", str(missing)], capsys).startswith(
        f"lit_iwpo: error: {missing}: file not found")
    line = _main_error(fit + ["--model.objective", "lit_iwpo.objectives.Nope"], capsys)
    assert line.startswith("lit_iwpo fit: error: ") and "model.objective" in line
    for name in ("DPO", "SFT", "WPO", "IWDPO"):
        assert f"lit_iwpo.objectives.{name}" in line
    assert _main_error(fit + ["--model.lr", "abc"], capsys).startswith('lit_iwpo fit: error: Parser key "model.lr"')
    line = _main_error(fit + ["--model.objective", "lit_iwpo.objectives.IWDPO", "--data.val", "null"], capsys)
    assert line == "lit_iwpo: error: IW-DPO estimates weights against deployment data D_v: set data.val"
    # that run failed after its folder was made: nothing is left behind
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.yaml"))
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"prompt": "caf\xe9", "chosen": "a", "rejected": "b"}\n')
    line = _main_error(fit + ["--data.train", str(latin)], capsys)
    assert line.startswith(f"lit_iwpo: error: {latin}, row 1: not UTF-8")
    # LIT_IWPO_DEBUG=1 shows the exception itself
    monkeypatch.setenv("LIT_IWPO_DEBUG", "1")
    with pytest.raises(ValueError, match="objective.beta must be > 0"):
        main(fit + ["--model.objective.beta", "-1"])


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for command in ("fit", "validate", "test", "predict", "export", "generate", "scenario", "table"):
        assert f"\n  {command} " in out, command


def test_default_root_dir_is_where_the_run_goes(tmp_path, pref_files):
    cfg = yaml.safe_load(_config(tmp_path, pref_files).read_text())
    del cfg["trainer"]["logger"]  # the default logger
    path = tmp_path / "plain.yaml"
    path.write_text(yaml.safe_dump(cfg))
    run = cli(["fit", "--config", str(path), "--trainer.max_steps", "1", "--test_after_fit", "false",
               "--trainer.default_root_dir", str(tmp_path / "elsewhere")])
    assert Path(run.trainer.log_dir) == tmp_path / "elsewhere" / "lit_iwpo" / "version_0"
    assert (tmp_path / "elsewhere" / "lit_iwpo" / "version_0" / "summary.json").is_file()


def test_progress_bar_counts_steps_of_the_run_also_after_resume(tmp_path, pref_files):
    common = {"trainer.enable_progress_bar": True,
              "trainer.callbacks": [{"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                                     "init_args": {"save_last": True}}]}
    first = cli(["fit", "--config", str(_config(tmp_path / "a", pref_files, **common)), "--test_after_fit", "false",
                 "--trainer.max_steps", "4"])
    bar = first.trainer.progress_bar_callback
    assert type(bar).__name__ == "StepProgressBar"
    assert (bar.train_progress_bar.n, bar.train_progress_bar.total) == (4, 4)
    ckpt = Path(first.trainer.log_dir) / "checkpoints" / "last.ckpt"
    resumed = cli(["fit", "--config", str(_config(tmp_path / "b", pref_files, **common)), "--test_after_fit", "false",
                   "--trainer.max_steps", "8", "--ckpt_path", str(ckpt)])
    bar = resumed.trainer.progress_bar_callback.train_progress_bar
    assert (bar.initial, bar.n, bar.total) == (4, 8, 8)
