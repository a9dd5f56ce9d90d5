"""Deployment evaluation wiring: scenario sources, win rate at the end of fit, rejudging, the results table."""

import json
import os
from pathlib import Path

import pytest

from lit_iwpo.cli import cli, main
from lit_iwpo.data import DataError, PreferenceDataModule
from lit_iwpo.data.scenarios import MATERIALS, build_scenario, get_judge
from lit_iwpo.eval.table import aggregate, markdown, rejudge_run, table_main
from test_cli import _config

SMALL = "n_train=24&n_val=8&n_test=6"


def test_scenario_sources_and_train_on():
    dm = PreferenceDataModule(train=f"scenario:culture:train?{SMALL}", val=f"scenario:culture:val?{SMALL}",
                              tokenizer="tiny-llama", train_on="train+val")
    dm.setup("fit")
    want = build_scenario("culture", n_train=24, n_val=8, n_test=6)
    assert dm.splits["train"].ids == [r["id"] for r in want.train + want.val]
    assert dm.splits["train"].rows[0]["relevant"] == want.train[0]["relevant"]
    only_v = PreferenceDataModule(train=f"scenario:culture:train?{SMALL}", val=f"scenario:culture:val?{SMALL}",
                                  tokenizer="tiny-llama", train_on="val")
    only_v.setup("fit")
    assert only_v.splits["train"].ids == [r["id"] for r in want.val]
    with pytest.raises(DataError, match="train_on: train\\+val needs data.train and data.val"):
        PreferenceDataModule(train="x.jsonl", tokenizer="tiny-llama", train_on="train+val").load_split("train")
    with pytest.raises(DataError, match="unknown scenario option 'sed'"):
        PreferenceDataModule(train="scenario:culture:train?sed=1", tokenizer="tiny-llama").setup("fit")


def _scenario_config(tmp_path, pref_files, **extra):
    return _config(tmp_path, pref_files, **{
        "data.train": f"scenario:helpful_harmless:train?{SMALL}",
        "data.val": f"scenario:helpful_harmless:val?{SMALL}",
        "data.test": f"scenario:helpful_harmless:test?{SMALL}",
        "model.generation": {"max_new_tokens": 6},
        **extra,
    })


def test_fit_ends_with_win_rate_against_reference(tmp_path, pref_files):
    run = cli(["fit", "--config", str(_scenario_config(tmp_path, pref_files))])
    out = Path(run.trainer.log_dir)
    summary = json.loads((out / "summary.json").read_text())
    gens = [json.loads(line) for line in (out / "generations_test.jsonl").read_text().splitlines()]
    assert len(gens) == 6 and {"id", "prompt", "policy", "baseline", "outcome"} <= set(gens[0])
    # the logged win rate is the judge's verdicts on the saved texts, recomputed independently here
    rows = {r["id"]: r for r in build_scenario("helpful_harmless", n_train=24, n_val=8, n_test=6).test}
    judge = get_judge("helpful_harmless")
    outcomes = [0.5 if g["policy"].strip() == g["baseline"].strip() else judge.compare(rows[g["id"]], g["policy"], g["baseline"])
                for g in gens]
    assert [g["outcome"] for g in gens] == outcomes
    assert summary["test/win_rate"] == pytest.approx(sum(outcomes) / 6)
    assert summary["test/n_judged"] == 6
    # win rate per prompt category, from the saved verdicts and the rows' categories
    for cat in {r["category"] for r in rows.values()}:
        mine = [g["outcome"] for g in gens if rows[g["id"]]["category"] == cat]
        assert summary[f"test/win_rate/{cat}"] == pytest.approx(sum(mine) / len(mine))
    # every test pair's margin is saved; accuracy per group is the share of positive margins in that group
    pairs = [json.loads(line) for line in (out / "test_pairs.jsonl").read_text().splitlines()]
    assert [p["id"] for p in pairs] == [r["id"] for r in rows.values()]
    assert all(p["correct"] == int(p["margin"] > 0) and p["group"] == rows[p["id"]]["group"] for p in pairs)
    assert summary["test/rewards/accuracies"] == pytest.approx(sum(p["correct"] for p in pairs) / 6)
    groups = {p["group"] for p in pairs}
    for group in groups:
        mine = [p["correct"] for p in pairs if p["group"] == group]
        assert summary[f"test/rewards/accuracies/{group}"] == pytest.approx(sum(mine) / len(mine))
    # contested pairs (the other population ranks the contrast the other way), recomputed from the material
    material = MATERIALS["helpful_harmless"]
    flags = {sid: material.disputed(material.by_key[r["topic"]], (r["chosen_form"], r["rejected_form"]))
             for sid, r in rows.items()}
    assert [p["contested"] for p in pairs] == [flags[p["id"]] for p in pairs]
    for side, flag in (("contested", True), ("uncontested", False)):
        mine = [p["correct"] for p in pairs if flags[p["id"]] == flag]
        if mine:
            assert summary[f"test/rewards/accuracies/{side}"] == pytest.approx(sum(mine) / len(mine))
        else:
            assert f"test/rewards/accuracies/{side}" not in summary
    # the saved margins average to the logged test/rewards/margins
    assert summary["test/rewards/margins"] == pytest.approx(sum(p["margin"] for p in pairs) / 6, rel=1e-5)
    # the baseline really is the reference: its texts equal the untrained base model's generations
    base = cli(["predict", "--config", str(_scenario_config(tmp_path / "base", pref_files)), "--model.lr", "0.0"])
    preds = [json.loads(x) for x in (Path(base.trainer.log_dir) / "predictions.jsonl").read_text().splitlines()]
    assert [p["response"] for p in preds] == [g["baseline"] for g in gens]


def test_rejudge_and_table(tmp_path):
    runs = tmp_path / "out" / "runs"
    rows = build_scenario("helpful_harmless", n_train=24, n_val=8, n_test=6).test
    good = {r["id"]: r["chosen"] for r in rows}
    bad = {r["id"]: r["rejected"] for r in rows}
    for method, seeds in {"m_good": {0: 1.0, 1: 1.0}, "m_mixed": {0: 1.0, 1: 0.0}}.items():
        for seed, flip in seeds.items():
            d = runs / method / f"seed{seed}"
            d.mkdir(parents=True)
            (d / "config.yaml").write_text(f"data:\n  test: scenario:helpful_harmless:test?{SMALL}\n")
            gens = [{"id": r["id"], "prompt": r["prompt"], "policy": good[r["id"]] if flip else bad[r["id"]],
                     "baseline": bad[r["id"]] if flip else good[r["id"]], "outcome": 0.5} for r in rows]
            (d / "generations_test.jsonl").write_text("".join(json.dumps(g) + "\n" for g in gens))
            (d / "summary.json").write_text(json.dumps({"test/win_rate": 0.5, "test/rewards/accuracies": 0.5 + seed / 4}))
            if method == "m_good":  # wall time from the files' stamps: config at t0, final metrics 3 or 5 min later
                (d / "metrics.csv").write_text("step\n")
                os.utime(d / "config.yaml", (1_000_000, 1_000_000))
                os.utime(d / "metrics.csv", (1_000_000 + 180 + 120 * seed,) * 2)
    (runs / "m_good" / "seed2").mkdir()  # an interrupted run: a summary without test metrics is not collected
    (runs / "m_good" / "seed2" / "summary.json").write_text(json.dumps({"val/loss": 0.3}))
    # per-pair results saved before rows carried `contested` (only id, margin, correct): rejudging brings the
    # rows' current group / contested flags in and recomputes the accuracies from the saved margins
    margins = [1.0, -2.0, 0.5, -0.1, 3.0, 2.0]
    (runs / "m_good" / "seed0" / "test_pairs.jsonl").write_text("".join(
        json.dumps({"id": r["id"], "margin": m, "correct": int(m > 0)}) + "\n" for r, m in zip(rows, margins)))
    # the oracle prefers every chosen response: the rejudged win rate is 1 (policy = chosen) or 0
    got = rejudge_run(runs / "m_good" / "seed0")
    assert got["test/win_rate"] == 1.0
    assert all(got[f"test/win_rate/{r['category']}"] == 1.0 for r in rows)
    for side, flag in (("contested", True), ("uncontested", False)):
        mine = [int(m > 0) for r, m in zip(rows, margins) if r["contested"] == flag]
        assert got.get(f"test/rewards/accuracies/{side}") == (sum(mine) / len(mine) if mine else None)
    for group in {r["group"] for r in rows}:
        mine = [int(m > 0) for r, m in zip(rows, margins) if r["group"] == group]
        assert got[f"test/rewards/accuracies/{group}"] == pytest.approx(sum(mine) / len(mine))
    saved = [json.loads(x) for x in (runs / "m_good" / "seed0" / "test_pairs.jsonl").read_text().splitlines()]
    assert [(p["contested"], p["group"], p["margin"]) for p in saved] == [
        (r["contested"], r["group"], m) for r, m in zip(rows, margins)]
    assert rejudge_run(runs / "m_mixed" / "seed1")["test/win_rate"] == 0.0
    methods = [tmp_path / "m_good.yaml", tmp_path / "m_mixed.yaml"]
    code = table_main(["--base", "unused.yaml", "--methods", *map(str, methods), "--seeds", "0", "1", "2",
                       "--out", str(tmp_path / "out"), "--collect", "--rejudge",
                       "--metrics", "test/win_rate", "test/rewards/accuracies"])
    assert code == 0
    table = (tmp_path / "out" / "table.md").read_text()
    # m_mixed: win rates 1 and 0 → mean 0.5, sample sd 0.7071 → "50.00 ± 70.71" in %
    assert "| m_good | 100.00 ± 0.00 | 62.50 ± 17.68 | 4.00 ± 1.41 |" in table  # time/minutes: 3 and 5
    assert "| m_mixed | 50.00 ± 70.71 | 62.50 ± 17.68 | – |" in table
    csv_text = (tmp_path / "out" / "table.csv").read_text()
    assert "m_mixed,test/win_rate,0.5,0.7071067811865476,2,1.0000 0.0000" in csv_text
    assert (tmp_path / "out" / "table.png").stat().st_size > 1000


def test_aggregate_skips_missing_metrics():
    rows = aggregate({"a": {0: {"x": 1.0}, 1: {"x": 3.0, "y": 2.0}}}, ["x", "y"])
    assert [(r["metric"], r["mean"], r["n"]) for r in rows] == [("x", 2.0, 2), ("y", 2.0, 1)]
    assert "| a | 2.00 ± 1.41 | 2.00 ± 0.00 |" in markdown(rows, ["a"], ["x", "y"])


def test_scenario_command_writes_files(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["scenario", "write", "science", "--out", str(tmp_path / "sci"), "--n-train", "10", "--n-val", "4",
              "--n-test", "4"])
    assert exit_.value.code == 0
    lines = (tmp_path / "sci" / "train.jsonl").read_text().splitlines()
    assert len(lines) == 10 and json.loads(lines[0])["id"] == "science-train-0"
    # the written files train like any JSONL source
    dm = PreferenceDataModule(train=str(tmp_path / "sci" / "train.jsonl"), tokenizer="tiny-llama")
    dm.setup("fit")
    assert len(dm.splits["train"]) == 10


def test_baseline_can_be_another_runs_adapter(tmp_path, pref_files):
    """Run A trains hard; run B does not train (lr 0, so its policy is the reference) and takes A's hf/ as
    baseline. Then B's (policy, baseline) texts must be A's (baseline, policy) texts: the saved adapter
    reproduces A's policy. Sampling, seeded per prompt, because the tiny model's greedy answer is empty."""
    gen = {"model.generation": {"max_new_tokens": 6, "do_sample": True}}
    a = cli(["fit", "--config", str(_scenario_config(tmp_path / "a", pref_files, **gen, **{"model.lr": 5e-2}))])
    a_dir = Path(a.trainer.log_dir)
    b = cli(["fit", "--config", str(_scenario_config(tmp_path / "b", pref_files, **gen, **{"model.lr": 0.0})),
             "--eval.baseline", str(a_dir / "hf")])
    gens_a = [json.loads(x) for x in (a_dir / "generations_test.jsonl").read_text().splitlines()]
    gens_b = [json.loads(x) for x in (Path(b.trainer.log_dir) / "generations_test.jsonl").read_text().splitlines()]
    assert [g["policy"] for g in gens_a] != [g["baseline"] for g in gens_a]  # A really moved away from the base
    assert [g["baseline"] for g in gens_b] == [g["policy"] for g in gens_a]
    assert [g["policy"] for g in gens_b] == [g["baseline"] for g in gens_a]


def test_baseline_answers_are_generated_once(tmp_path, pref_files, monkeypatch):
    """Two runs that share the reference, prompts and decoding settings generate the base model's answers
    once; other decoding settings (another key) generate them again. The reused answers are the same texts."""
    from lit_iwpo.callbacks.deployment import DeploymentEval

    monkeypatch.setenv("LIT_IWPO_CACHE", str(tmp_path / "cache"))
    calls = []
    original = DeploymentEval._baseline_generate
    monkeypatch.setattr(DeploymentEval, "_baseline_generate",
                        lambda self, m, b: (calls.append(len(b.ids)), original(self, m, b))[1])

    def run(name, *extra):
        cfg = _scenario_config(tmp_path / name, pref_files)
        out = Path(cli(["fit", "--config", str(cfg), "--trainer.max_steps", "2", *extra]).trainer.log_dir)
        return [json.loads(line)["baseline"] for line in (out / "generations_test.jsonl").read_text().splitlines()]

    first = run("a")
    assert sum(calls) == 6
    second = run("b", "--seed_everything", "1", "--model.lr", "1e-2")  # another policy, the same reference
    assert sum(calls) == 6 and second == first
    assert len(list((tmp_path / "cache" / "generations").glob("baseline-*.json"))) == 1
    run("c", "--model.generation.max_new_tokens", "3")
    assert sum(calls) == 12
