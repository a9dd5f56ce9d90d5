"""notebooks/importance_weights.ipynb runs end to end on tiny runs (so it cannot rot): an IW-DPO run (tables,
titled figures, a reward-space plot of same-step transforms only), a DPO run (no weights: a clear message and
no traceback), the example run shipped in notebooks/example_run/ (the default), and headless through
`make notebook-run` into a copy inside the run directory."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from nbclient import NotebookClient
from PIL import Image

from lit_iwpo.cli import cli
from test_deployment import SMALL
from test_cli import _config

REPO = Path(__file__).parent.parent
NOTEBOOK = REPO / "notebooks" / "importance_weights.ipynb"
METHOD = "IWDPO transform=reward pool=refresh estimator=RuLSIF"
FIGURES = ("weights_by_relevance.png", "weights_over_training.png", "reward_space.png", "transform_drift.png")


def _stream_outputs(nb) -> list[str]:
    """The printed text of every code cell, in order; fails on any error output."""
    outputs = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, errors
        outputs.append("".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream"))
    return outputs


def _execute(run_dir: Path, cwd: Path, monkeypatch) -> list[str]:
    monkeypatch.setenv("LIT_IWPO_RUN_DIR", str(run_dir))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return _stream_outputs(nb)


@pytest.fixture(scope="module")
def iw_run(tmp_path_factory) -> Path:
    """A tiny IW-DPO-R run (refresh pool): 24 training pairs, refreshes at steps 3 and 6, warm-up 2."""
    from conftest import make_rows, write_jsonl

    tmp_path = tmp_path_factory.mktemp("iw")
    pref_files = {"train": write_jsonl(tmp_path / "data" / "train.jsonl", make_rows(12)),
                  "val": write_jsonl(tmp_path / "data" / "val.jsonl", make_rows(4, offset=100)),
                  "test": write_jsonl(tmp_path / "data" / "test.jsonl", make_rows(6, offset=200))}
    objective = {"class_path": "lit_iwpo.objectives.IWDPO",
                 "init_args": {"transform": "reward", "pool": "refresh", "warmup_steps": 2,
                               "estimator": {"class_path": "lit_iwpo.weighting.RuLSIF"}}}
    cfg = _config(tmp_path, pref_files, **{
        "model.objective": objective, "model.lr": 5e-3, "trainer.max_steps": 6,
        "trainer.enable_checkpointing": False, "artifacts.save_hf": False,
        "trainer.callbacks": [{"class_path": "lit_iwpo.callbacks.ImportanceWeightRefresh",
                               "init_args": {"every_n_steps": 3, "every_n_epochs": None}}],
        "data.train": f"scenario:helpful_harmless:train?{SMALL}",
        "data.val": f"scenario:helpful_harmless:val?{SMALL}",
        "data.test": f"scenario:helpful_harmless:test?{SMALL}",
        "eval.win_rate": False,
    })
    run = cli(["fit", "--config", str(cfg)])
    return Path(run.trainer.log_dir)


def test_importance_weights_notebook(iw_run, tmp_path, monkeypatch):
    run_dir = iw_run
    outputs = _execute(run_dir, tmp_path, monkeypatch)
    assert "refreshes: 2  training pairs: 24  estimated: 24" in outputs[0]  # the refresh pool weighs every pair
    assert f"method: {METHOD}" in outputs[0]
    # the notebook's per-relevance table matches the final weights computed here from the parquet directly
    final = pd.read_parquet(run_dir / "weights" / "step=000006.parquet")
    means = final.groupby(final["relevant"].astype(bool))["weight"].mean()
    for flag in (True, False):
        assert f"{means[flag]:.6f}"[:6] in outputs[1]

    # every figure is titled with the run and the method, visibly (suptitle) and in the PNG's Title
    for fig in FIGURES:
        path = run_dir / "figures" / fig
        assert path.stat().st_size > 1000
        title = Image.open(path).text.get("Title", "")
        assert "t/version_0" in title and METHOD in title, (fig, title)
        assert f"figure written: {path}" in "".join(outputs) and "t/version_0 | " + METHOD in "".join(outputs)

    # reward space: only D_tr transforms computed at the same step as the D_v transforms shown. Here, from the
    # parquet files: the step of each D_tr transform (transform_step=*) and D_v's of each snapshot (val_step=*)
    def read(prefix):
        return pd.concat([pd.read_parquet(p) for p in sorted((run_dir / "weights").glob(f"{prefix}=*.parquet"))])
    snaps = read("step").merge(read("transform_step"), on=["id", "step"], validate="one_to_one")
    val = read("val_step")
    assert len(snaps) == 48 and sorted(val["step"].unique()) == [3, 6]
    # every refresh recomputes all D_tr transforms with its step's policy (transform_max_age: 0, the default), so
    # each snapshot is one policy's view of D_tr and D_v
    for s in (3, 6):
        assert (snaps[snaps["step"] == s]["transform_step"] == s).all()
    same = snaps[snaps["transform_step"].isin(set(val["step"])) & (snaps["weight_step"] >= 0)]
    per_step = same.groupby("transform_step")["id"].nunique()
    step = int(per_step[per_step == per_step.max()].index.max())
    n_val = int((val["step"] == step).sum())
    assert step == 6 and per_step[step] == 24  # both refreshes are full same-step sets: the latest is shown
    assert (f"reward space at step {step}: {per_step[step]} D_tr pairs and {n_val} D_v pairs, all transforms "
            f"computed by the policy at step {step}") in outputs[3]
    assert "reward-space plot written" in outputs[3]

    # drift (section 3b): at each refresh, each group's mean transform against D_v's, computed here from the
    # parquet files with numpy; the AUC by counting the (relevant, irrelevant) pairs the weights order right
    drift = pd.read_csv(run_dir / "figures" / "transform_drift.csv")
    per_step_csv = pd.read_csv(run_dir / "figures" / "transform_drift_steps.csv")
    assert per_step_csv["step"].tolist() == [3, 6] and (per_step_csv["D_tr pairs"] == 24).all()
    assert "drift plot written" in outputs[4]
    for s in (3, 6):
        tr, v = snaps[snaps["step"] == s], val[val["step"] == s]
        z, zv = tr[["z0", "z1"]].to_numpy(), v[["z0", "z1"]].to_numpy()
        assert per_step_csv.loc[per_step_csv["step"] == s, "D_v margin"].item() == pytest.approx(
            (zv[:, 0] - zv[:, 1]).mean(), abs=1e-9)
        groups = tr.groupby(["group", "relevant"])
        assert (drift["step"] == s).sum() == groups.ngroups
        for (group, relevant), part in groups:
            row = drift[(drift["step"] == s) & (drift["group"] == f"{group} / {'relevant' if relevant else 'irrelevant'}")]
            mean = part[["z0", "z1"]].to_numpy().mean(0)
            assert row["pairs"].item() == len(part)
            assert row["margin"].item() == pytest.approx(mean[0] - mean[1], abs=1e-9)
            assert row["distance to D_v (sd)"].item() == pytest.approx(
                np.linalg.norm((mean - zv.mean(0)) / z.std(0)), rel=1e-9)
            assert row["mean weight"].item() == pytest.approx(part["weight"].mean(), rel=1e-9)
        w, relevant = tr["weight"].to_numpy(), tr["relevant"].astype(bool).to_numpy()
        w_rel, w_irr = w[relevant][:, None], w[~relevant][None, :]
        auc = ((w_rel > w_irr).sum() + 0.5 * (w_rel == w_irr).sum()) / (w_rel.size * w_irr.size)
        assert per_step_csv.loc[per_step_csv["step"] == s, "AUC relevant"].item() == pytest.approx(auc, abs=1e-6)  # float32


def test_notebook_on_dpo_run(tmp_path, pref_files, monkeypatch):
    """A run without per-sample weights: the first cell names the method and those with weights; no traceback."""
    cfg = _config(tmp_path, pref_files, **{"trainer.max_steps": 2, "eval.win_rate": False,
                                           "artifacts.save_hf": False, "trainer.enable_checkpointing": False})
    run_dir = Path(cli(["fit", "--config", str(cfg)]).trainer.log_dir)
    outputs = _execute(run_dir, tmp_path, monkeypatch)  # fails on any error output
    assert "method: DPO" in outputs[0]
    assert "this run's method, DPO (lit_iwpo.objectives.DPO" in outputs[0]
    assert "has no per-sample weights" in outputs[0]
    for method in ("IWDPO", "WPO", "ImportanceWeightRefresh"):
        assert method in outputs[0]
    for later in outputs[1:]:
        assert later.strip() == "no weights in this run: skipped"
    assert not (run_dir / "figures").exists()


def test_notebook_opens_the_example_run_by_default(monkeypatch):
    """Without LIT_IWPO_RUN_DIR the notebook (opened from notebooks/) reads the small example run shipped with it."""
    example = REPO / "notebooks" / "example_run"
    files = [p for p in example.rglob("*") if p.is_file() and p.parent.name != "figures"
             and not p.name.startswith("importance_weights.")]
    assert {p.name for p in files} >= {"config.yaml", "metrics.csv", "summary.json", "README.md"}
    assert sum(p.stat().st_size for p in files) < 2_000_000
    assert not (example / "checkpoints").exists() and not (example / "hf").exists()
    monkeypatch.delenv("LIT_IWPO_RUN_DIR", raising=False)
    had_figures = (example / "figures").exists()
    try:
        nb = nbformat.read(NOTEBOOK, as_version=4)
        NotebookClient(nb, timeout=180, kernel_name="python3",
                       resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
        outputs = _stream_outputs(nb)
    finally:
        if not had_figures:  # git ignores them, but leave the checkout as it was
            shutil.rmtree(example / "figures", ignore_errors=True)
    assert f"run: {example}" in outputs[0] and f"method: {METHOD}" in outputs[0]
    assert "reward-space plot written" in outputs[3]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_notebook_run_target_keeps_tables(iw_run, tmp_path):
    """`make notebook-run RUN=...` executes the notebook into RUN/importance_weights.ipynb (+ .html) with its tables."""
    run_dir = tmp_path / "copy" / "version_0"
    shutil.copytree(iw_run, run_dir, ignore=shutil.ignore_patterns("figures"))
    bindir = Path(sys.executable).parent
    make = ["make", "-C", str(REPO), f"BIN={bindir}", "-o", ".venv/.installed"]  # -o: no (re)install from the test
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    missing = subprocess.run(make + ["notebook-run"], capture_output=True, text=True, env=env)
    assert missing.returncode != 0 and "needs RUN=" in missing.stderr
    done = subprocess.run(make + ["notebook-run", f"RUN={run_dir}"], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    copy = run_dir / "importance_weights.ipynb"
    outputs = _stream_outputs(nbformat.read(copy, as_version=4))
    assert f"run: {run_dir}" in outputs[0] and "refreshes: 2  training pairs: 24  estimated: 24" in outputs[0]
    final = pd.read_parquet(run_dir / "weights" / "step=000006.parquet")
    means = final.groupby(final["relevant"].astype(bool))["weight"].mean()
    for flag in (True, False):
        assert f"{means[flag]:.6f}"[:6] in outputs[1]  # the printed table is kept in the copy
    assert "reward-space plot written" in outputs[3]
    assert "copy/version_0 | " + METHOD in "".join(outputs)  # titles name this run
    assert (run_dir / "importance_weights.html").stat().st_size > 10_000
    for fig in FIGURES:
        assert (run_dir / "figures" / fig).stat().st_size > 1000
    # the repository's notebook itself is left unexecuted
    assert not any(c.get("outputs") for c in nbformat.read(NOTEBOOK, as_version=4).cells if c.cell_type == "code")


def test_calibration_section_on_a_dora_run(tmp_path, monkeypatch):
    """Section 4 on a tiny DoRA run on the mixed_source scenario (per-response sources): its p-by-source table,
    the oracle's verdict counts and the AUC of h̄ match what is computed here from the parquet and the oracle
    (the AUC by brute force over all agree/disagree pairs); the figure is titled."""
    from lit_iwpo.data.scenarios import build_scenario, get_judge

    spec = "scenario:mixed_source:{}?n_train=24&n_val=4&n_test=4"
    dora = {"class_path": "lit_iwpo.objectives.DPO",
            "init_args": {"weights": {"class_path": "lit_iwpo.objectives.weights.CalibrationWeights",
                                      "init_args": {"classifier": {
                                          "class_path": "lit_iwpo.objectives.weights.EmbeddingProbe",
                                          "init_args": {"folds": 2}}}},
                          "reduction": {"class_path": "lit_iwpo.objectives.DRO", "init_args": {"lambda_": 1.0}}}}
    cfg = _config(tmp_path, {k: spec.format(k) for k in ("train", "val", "test")}, **{
        "model.objective": dora, "trainer.max_steps": 2, "trainer.enable_checkpointing": False,
        "artifacts.save_hf": False, "eval.win_rate": False, "model.ref_cache_dir": str(tmp_path / "ref"),
        "trainer.callbacks": [{"class_path": "lit_iwpo.callbacks.ImportanceWeightRefresh",
                               "init_args": {"every_n_steps": 2, "every_n_epochs": None}}]})
    run_dir = Path(cli(["fit", "--config", str(cfg)]).trainer.log_dir)
    outputs = _execute(run_dir, tmp_path, monkeypatch)
    text = outputs[5]
    final = pd.read_parquet(sorted((run_dir / "weights").glob("step=*.parquet"))[-1])
    rows = {r["id"]: r for r in build_scenario("mixed_source", n_train=24, n_val=4, n_test=4).train}
    chosen_src = [rows[i]["source"]["chosen"] for i in final["id"]]
    rejected_src = [rows[i]["source"]["rejected"] for i in final["id"]]
    p = pd.DataFrame({"p": list(final["z0"]) + list(final["z1"]), "source": chosen_src + rejected_src})
    for src, mean in p.groupby("source")["p"].mean().items():
        assert f"{src}" in text and f"{mean:.4f}" in text, (src, mean, text)
    judge = get_judge("mixed_source")
    verdict = {i: judge.compare(rows[i], rows[i]["chosen"], rows[i]["rejected"]) for i in final["id"]}
    agree = [w for i, w in zip(final["id"], final["weight"]) if verdict[i] == 1.0]
    disagree = [w for i, w in zip(final["id"], final["weight"]) if verdict[i] == 0.0]
    assert len(agree) + len(disagree) == len(final) and disagree  # the synthetic pairs: the oracle disagrees
    assert (f"agrees with the label on {len(agree)}, prefers the rejected response on {len(disagree)}") in text
    auc = sum((a > d) + 0.5 * (a == d) for a in agree for d in disagree) / (len(agree) * len(disagree))
    assert f"AUC of the pair weight for 'the oracle agrees with the label': {auc:.4f}" in text
    title = Image.open(run_dir / "figures" / "calibration.png").text.get("Title", "")
    assert "CalibrationWeights" in title and "t/version_0" in title


def test_calibration_section_on_a_pair_classifier_run(tmp_path, monkeypatch):
    """Section 4 on the pair classifier as a density ratio (unit: pair, form: ratio; D_v inside the training set):
    p is counted once per pair, by source, with the means of the parquet's z0; the AUC of the pair weights for the
    oracle's verdict matches a brute force over all agree/disagree pairs."""
    from lit_iwpo.data.scenarios import build_scenario, get_judge

    spec = "scenario:helpful_harmless:{}?n_train=24&n_val=8&n_test=4"
    ratio = {"class_path": "lit_iwpo.objectives.DPO",
             "init_args": {"weights": {"class_path": "lit_iwpo.objectives.weights.CalibrationWeights",
                                       "init_args": {"target_from": "val", "unit": "pair", "form": "ratio",
                                                     "classifier": {
                                                         "class_path": "lit_iwpo.objectives.weights.EmbeddingProbe",
                                                         "init_args": {"folds": 2}}}}}}
    cfg = _config(tmp_path, {k: spec.format(k) for k in ("train", "val", "test")}, **{
        "model.objective": ratio, "trainer.max_steps": 2, "trainer.enable_checkpointing": False,
        "data.train_on": "train+val", "artifacts.save_hf": False, "eval.win_rate": False,
        "model.ref_cache_dir": str(tmp_path / "ref"),
        "trainer.callbacks": [{"class_path": "lit_iwpo.callbacks.ImportanceWeightRefresh",
                               "init_args": {"every_n_steps": 2, "every_n_epochs": None}}]})
    run_dir = Path(cli(["fit", "--config", str(cfg)]).trainer.log_dir)
    text = _execute(run_dir, tmp_path, monkeypatch)[5]
    final = pd.read_parquet(sorted((run_dir / "weights").glob("step=*.parquet"))[-1])
    assert (final["z0"] == final["z1"]).all()
    assert "per pair, by the source that wrote it" in text and "pair weight w (density ratio)" in text
    for src, part in final.groupby("source"):
        line = next(ln for ln in text.splitlines() if ln.startswith(src + " "))
        assert line.split()[1] == str(len(part)) and f"{part['z0'].mean():.4f}" in line, (src, line)
    sc = build_scenario("helpful_harmless", n_train=24, n_val=8, n_test=4)
    rows = {r["id"]: r for r in sc.train + sc.val}
    judge = get_judge("helpful_harmless")
    verdict = {i: judge.compare(rows[i], rows[i]["chosen"], rows[i]["rejected"]) for i in final["id"]}
    agree = [w for i, w in zip(final["id"], final["weight"]) if verdict[i] == 1.0]
    disagree = [w for i, w in zip(final["id"], final["weight"]) if verdict[i] == 0.0]
    assert agree and disagree
    auc = sum((a > d) + 0.5 * (a == d) for a in agree for d in disagree) / (len(agree) * len(disagree))
    assert f"AUC of the pair weight for 'the oracle agrees with the label': {auc:.4f}" in text


def test_iwpo_section_on_an_iwpo_run(tmp_path, monkeypatch):
    """Section 5 on a tiny IWPO run (resampling, 2 clusters): its per-cluster pairs and draws, and the never-drawn
    count, match the weight parquet counted here; each cluster's highest-weighted pair is printed first."""
    spec = "scenario:helpful_harmless:{}?n_train=24&n_val=4&n_test=4"
    iwpo = {"class_path": "lit_iwpo.objectives.DPO",
            "init_args": {"weights": {"class_path": "lit_iwpo.objectives.weights.ClusterRewardWeights",
                                      "init_args": {"clusters": 2, "min_pairs": 4}}}}
    cfg = _config(tmp_path, {k: spec.format(k) for k in ("train", "val", "test")}, **{
        "model.objective": iwpo, "data.sampler": {"class_path": "lit_iwpo.data.sampler.WeightedResampler"},
        "trainer.max_steps": 2, "trainer.enable_checkpointing": False, "artifacts.save_hf": False,
        "eval.win_rate": False, "model.ref_cache_dir": str(tmp_path / "ref"),
        "trainer.callbacks": [{"class_path": "lit_iwpo.callbacks.ImportanceWeightRefresh",
                               "init_args": {"every_n_steps": 2, "every_n_epochs": None}}]})
    run_dir = Path(cli(["fit", "--config", str(cfg)]).trainer.log_dir)
    text = _execute(run_dir, tmp_path, monkeypatch)[6]
    final = pd.read_parquet(sorted((run_dir / "weights").glob("step=*.parquet"))[-1])
    assert int(final["draws"].sum()) == 24
    assert f"draws this epoch: 24; pairs never drawn: {int((final['draws'] == 0).sum())} of 24" in text
    for c, part in final.groupby("cluster"):
        line = next(l for l in text.splitlines() if l.startswith(f"{c} ") or l.startswith(f"{c}  "))
        assert line.split()[:2] == [str(c), str(len(part))] and f"{int(part['draws'].sum())}" in line.split()
        top = part.sort_values("weight", ascending=False).iloc[0]
        assert f"cluster {c} highest: w={top['weight']:.3f}" in text
    title = Image.open(run_dir / "figures" / "iwpo_clusters.png").text.get("Title", "")
    assert "ClusterRewardWeights" in title
