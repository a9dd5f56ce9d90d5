"""Two processes (DDP, gloo, CPU): every rank holds the same importance weights.

`test_two_ranks_hold_identical_weights` runs in the default suite (a short run, no evaluation); the full
runs with refresh, evaluation and the win rate are slow (`make test-slow`).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

SMALL = "n_train=24&n_val=8&n_test=6"


def _run(tmp_path, cfg):
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "DDP_PROBE_DIR": str(tmp_path),
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "lit_iwpo.cli", "fit", "--config", str(tmp_path / "cfg.yaml")],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [torch.load(tmp_path / f"store_rank{r}.pt") for r in (0, 1)]


def test_two_ranks_hold_identical_weights(tmp_path):
    """IW-DPO (Algorithm 1, RuLSIF) on 2 gloo processes: identical weights on both ranks, estimated on rank 0
    alone (rank 1 never drew a validation batch, so its sampler is still at its seed) and broadcast."""
    cfg = {
        "seed_everything": 0, "test_after_fit": False,
        "trainer": {"max_steps": 4, "accelerator": "cpu", "strategy": "ddp", "devices": 2,
                    "enable_progress_bar": False, "enable_model_summary": False, "enable_checkpointing": False,
                    "limit_val_batches": 0, "num_sanity_val_steps": 0, "logger": False,
                    "default_root_dir": str(tmp_path), "callbacks": [{"class_path": "ddp_probe.StoreDump"}]},
        "model": {"name_or_path": "tiny-llama", "lr": 5e-3,
                  "objective": {"class_path": "lit_iwpo.objectives.IWDPO",
                                "init_args": {"warmup_steps": 1, "val_batch_size": 6, "seed": 7,
                                              "estimator": {"class_path": "lit_iwpo.weighting.RuLSIF"}}}},
        "artifacts": {"save_hf": False},
        "data": {"train": f"scenario:helpful_harmless:train?{SMALL}", "val": f"scenario:helpful_harmless:val?{SMALL}",
                 "batch_size": 2, "apply_chat_template": True, "max_length": 96, "max_prompt_length": 64},
    }
    s0, s1 = _run(tmp_path, cfg)
    assert s0["ids"] == s1["ids"] and torch.equal(s0["weights"], s1["weights"])
    torch.testing.assert_close(s0["transforms"], s1["transforms"], rtol=0, atol=0, equal_nan=True)
    estimated = s0["weight_step"] >= 1
    assert int(estimated.sum()) == 12  # steps 1-3 × a global batch of 4 pairs
    assert not torch.equal(s0["weights"][estimated], torch.ones(12))
    seeded = torch.Generator().manual_seed(7).get_state()
    assert torch.equal(s1["val_generator"], seeded) and not torch.equal(s0["val_generator"], seeded)


@pytest.mark.slow
@pytest.mark.parametrize("objective", ["IWDPO", "WPO"])
def test_ddp_two_processes_share_weights(tmp_path, objective):
    init = {"warmup_steps": 2, "val_batch_size": 8, "estimator": {"class_path": "lit_iwpo.weighting.RuLSIF"}}
    cfg = {
        "seed_everything": 0,
        "trainer": {"max_steps": 6, "accelerator": "cpu", "strategy": "ddp", "devices": 2,
                    "enable_progress_bar": False,
                    "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger",
                               "init_args": {"save_dir": str(tmp_path / "runs"), "name": "d"}},
                    "callbacks": [{"class_path": "lit_iwpo.callbacks.ImportanceWeightRefresh",
                                   "init_args": {"every_n_steps": 3, "every_n_epochs": None}},
                                  {"class_path": "ddp_probe.StoreDump"}]},
        "model": {"name_or_path": "tiny-llama", "lr": 5e-3, "generation": {"max_new_tokens": 4},
                  "objective": {"class_path": f"lit_iwpo.objectives.{objective}",
                                "init_args": init if objective == "IWDPO" else {}}},
        "data": {"train": f"scenario:helpful_harmless:train?{SMALL}", "val": f"scenario:helpful_harmless:val?{SMALL}",
                 "test": f"scenario:helpful_harmless:test?{SMALL}", "batch_size": 2, "apply_chat_template": True,
                 "max_length": 96, "max_prompt_length": 64, "eval_batch_size": 4},
    }
    s0, s1 = _run(tmp_path, cfg)
    assert s0["ids"] == s1["ids"] and torch.equal(s0["weights"], s1["weights"])
    assert (s0["weights"] != 1.0).sum() >= 8  # 4 estimated steps × 2 ranks × 2 pairs (IW) / 6 × 4 (WPO)
    summary = json.loads((tmp_path / "runs" / "d" / "version_0" / "summary.json").read_text())
    assert {"test/win_rate", "iw/auc_relevant", "test/rewards/accuracies"} <= set(summary)
