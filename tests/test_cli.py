"""The lit_iwpo CLI on a tiny model: files written, config handling, subcommands, exact resume."""

import csv
import json
from pathlib import Path

import pytest
import torch
import yaml

from lit_iwpo.cli import cli


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
    # summary values are the logged epoch values
    assert summary["test/rewards/accuracies"] == pytest.approx(float(run.trainer.callback_metrics["test/rewards/accuracies"]))
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert len([r for r in rows if r.get("train/loss")]) == 4
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["model"]["objective"]["class_path"] == "lit_iwpo.objectives.DPO"
    assert run.datamodule.tokenizer_name == "tiny-llama"  # linked from model.name_or_path

    # the adapter loads with peft + transformers alone and reproduces the trained policy
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoTokenizer

    hf = AutoPeftModelForCausalLM.from_pretrained(out / "hf")
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


SCENARIO_CONFIGS = sorted(Path("configs/scenarios").glob("*.yaml"))
METHOD_CONFIGS = sorted(Path("configs/methods").glob("*.yaml"))


@pytest.mark.parametrize("method", METHOD_CONFIGS, ids=lambda p: p.stem)
def test_every_method_config_trains_on_every_scenario(tmp_path, method):
    """Each shipped method config composes with each scenario config (as README and `lit_iwpo table`
    use them) and trains on the split it declares, past IW-DPO's warm-up, on the tiny model."""
    assert len(SCENARIO_CONFIGS) == 3 and len(METHOD_CONFIGS) >= 13
    declared = yaml.safe_load(method.read_text())
    train_on = declared.get("data", {}).get("train_on", "train")
    objective = declared["model"]["objective"]["class_path"]
    for scenario in SCENARIO_CONFIGS:
        out = tmp_path / scenario.stem
        run = cli(["fit", "--config", str(scenario), "--config", str(method),
                   "--model.name_or_path", "tiny-llama", "--trainer.max_steps", "12",
                   "--trainer.enable_progress_bar", "false", "--trainer.num_sanity_val_steps", "0",
                   "--trainer.logger.init_args.save_dir", str(out), "--eval.win_rate", "false",
                   "--data.eval_batch_size", "64"])
        train_ids, val_ids = set(run.datamodule.splits["train"].ids), set(run.datamodule.splits["val"].ids)
        assert len(train_ids) == {"train": 400, "val": 32, "train+val": 432}[train_on]  # the scenario's sizes
        assert (val_ids <= train_ids) == (train_on != "train")
        assert type(run.model.objective).__name__ == objective.rsplit(".", 1)[1]
        assert run.trainer.global_step == 12
        summary = json.loads((Path(run.trainer.log_dir) / "summary.json").read_text())
        assert 0.0 <= summary["test/rewards/accuracies"] <= 1.0
