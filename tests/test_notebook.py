"""notebooks/importance_weights.ipynb runs end to end on a tiny IW-DPO run (so it cannot rot)."""

import os
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

from lit_iwpo.cli import cli
from test_deployment import SMALL
from test_cli import _config

NOTEBOOK = Path(__file__).parent.parent / "notebooks" / "importance_weights.ipynb"


def test_importance_weights_notebook(tmp_path, pref_files, monkeypatch):
    objective = {"class_path": "lit_iwpo.objectives.IWDPO",
                 "init_args": {"transform": "reward", "pool": "refresh", "warmup_steps": 2,
                               "estimator": {"class_path": "lit_iwpo.weighting.RuLSIF"}}}
    cfg = _config(tmp_path, pref_files, **{
        "model.objective": objective, "model.lr": 5e-3, "trainer.max_steps": 6,
        "trainer.callbacks": [{"class_path": "lit_iwpo.callbacks.ImportanceWeightRefresh",
                               "init_args": {"every_n_steps": 3, "every_n_epochs": None}}],
        "data.train": f"scenario:helpful_harmless:train?{SMALL}",
        "data.val": f"scenario:helpful_harmless:val?{SMALL}",
        "data.test": f"scenario:helpful_harmless:test?{SMALL}",
        "eval.win_rate": False,
    })
    run = cli(["fit", "--config", str(cfg)])
    run_dir = Path(run.trainer.log_dir)
    monkeypatch.setenv("LIT_IWPO_RUN_DIR", str(run_dir))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = ["".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
               for cell in nb.cells if cell.cell_type == "code"]
    assert "refreshes: 2  training pairs: 24  estimated: 24" in outputs[0]  # the refresh pool weighs every pair
    # the notebook's per-relevance table matches the final weights computed here from the parquet directly
    final = pd.read_parquet(run_dir / "weights" / "step=000006.parquet")
    means = final.groupby(final["relevant"].astype(bool))["weight"].mean()
    for flag in (True, False):
        assert f"{means[flag]:.6f}"[:6] in outputs[1]
    assert "reward-space plot written" in outputs[3]
    for fig in ("weights_by_relevance.png", "weights_over_training.png", "reward_space.png"):
        assert (run_dir / "figures" / fig).stat().st_size > 1000
