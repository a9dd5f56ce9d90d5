"""lit_iwpo's training step against TRL's DPOTrainer on the same model, data, batch, LoRA and precision.

    python benchmarks/vs_trl.py                 # make benchmark; --rounds 3 --steps 6 --pairs 4 by default

Variants, each run in its own process (so that its peak RSS is its own), alternated round by round so that drift
of the machine hits all alike:

- ``lit_dpo_cached`` / ``trl_dpo_cached``: LoRA DPO with reference log-probs computed once before training
  (lit_iwpo ``model.precompute_ref_logps``; TRL ``precompute_ref_log_probs=True``);
- ``lit_dpo`` / ``trl_dpo``: the reference forward in every step (LoRA: the adapter disabled, in both);
- ``lit_dpo_cached_2row``: ``lit_dpo_cached`` with ``model.share_prompt: false`` (each pair as two rows, prompt
  computed twice, as TRL does): what running each prompt once gains;
- ``lit_dpo_cached_compiled``: ``lit_dpo_cached`` with ``model.compile: true`` (each decoder layer through
  ``torch.compile``; its compilation falls in the warm-up steps);
- ``lit_iw_dpo_r``: IW-DPO-R (KMM, batch pool, cached reference), the weighting's cost over DPO's step: the
  paper's Algorithm 1 scores a fresh validation batch (16 pairs) with the policy at every step;
- ``lit_iw_dpo_r_k8``, ``lit_iw_dpo_r_k16``: the same with ``val_transforms_every: 8`` or 16 (a validation batch
  scored every k steps, its transforms reused for the next k − 1 estimates; ours, beyond the paper);
- ``lit_tis_dpo``: TIS-DPO (token weights from contrastive system prompts, computed before training; cached
  reference), the token weighting's cost over DPO's step;
- ``lit_sft``: LoRA SFT on the same batches, the memory yardstick.

Both trainers: float32, no gradient checkpointing (TRL's defaults turn both on; here they are off), no dropout,
the embedded SmolLM2-135M-Instruct, LoRA r = 8, α = 16 on q_proj and v_proj, batches of ``--pairs`` pairs of the
embedded helpful-harmless scenario (chat template, max 128 tokens). Step time: from the start of a step to the
end of its optimizer update, the first two steps dropped (warm-up), the median over the rest of all rounds.

The compute bound of a step: the FLOPs of the passes the step must run (policy forward and backward, plus the
reference forward unless cached) over the real (unpadded) tokens of its batch, divided by this machine's
float32 matrix-multiply rate measured here on the model's own shapes after every round (the fastest of them:
the tightest bound).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = ("lit_dpo_cached", "trl_dpo_cached", "lit_dpo", "trl_dpo", "lit_dpo_cached_2row", "lit_dpo_cached_compiled",
            "lit_iw_dpo_r", "lit_iw_dpo_r_k8", "lit_iw_dpo_r_k16", "lit_tis_dpo", "lit_sft")
VAL_PAIRS = 16  # IW-DPO-R's validation batch
SCENARIO = "scenario:helpful_harmless:{split}?n_train={n}&n_val=16&n_test=4"
MAX_LENGTH, MAX_PROMPT_LENGTH, LR, BETA = 128, 64, 5e-5, 0.1
WARMUP = 2  # first steps of each run left out of the medians


# ----------------------------------------------------------------------------------------------- one variant
def _rows(n: int) -> list[dict]:
    from lit_iwpo.data.sources import read_source

    return read_source(SCENARIO.format(split="train", n=n)).rows[:n]


def _run_lit(variant: str, steps: int, pairs: int, out: Path) -> dict:
    import lightning as L
    import yaml

    from lit_iwpo.cli import cli

    times: list[float] = []
    tokens: list[tuple[int, int, int]] = []
    shared = variant != "lit_dpo_cached_2row"

    class StepTimer(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self.t0 = time.perf_counter()
            total, resp = int(batch.attention_mask.sum()), int(batch.loss_mask.sum())
            b = len(batch)  # tokens the forward runs: with a shared prompt, the rejected rows' prompts are not run
            rejected_prompts = int(batch.attention_mask[b:].sum() - batch.loss_mask[b:].sum())
            tokens.append((total, resp, total - rejected_prompts if shared else total))

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            times.append(time.perf_counter() - self.t0)

    objective = {"class_path": "lit_iwpo.objectives.DPO", "init_args": {"beta": BETA}}
    if variant == "lit_sft":
        objective = {"class_path": "lit_iwpo.objectives.SFT"}
    elif variant.startswith("lit_iw_dpo_r"):
        objective = {"class_path": "lit_iwpo.objectives.IWDPO",
                     "init_args": {"transform": "reward", "estimator": {"class_path": "lit_iwpo.weighting.KMM"},
                                   "warmup_steps": 1, "pool": "batch", "val_batch_size": VAL_PAIRS, "beta": BETA,
                                   "val_transforms_every": _every(variant)}}
    elif variant == "lit_tis_dpo":
        contrast = {"class_path": "lit_iwpo.objectives.weights.ContrastivePrompts",
                    "init_args": {"positive": "harmless", "negative": "harmful"}}
        objective = {"class_path": "lit_iwpo.objectives.TISDPO",
                     "init_args": {"beta": BETA, "token_weights": {
                         "class_path": "lit_iwpo.objectives.weights.ContrastiveTokenWeights",
                         "init_args": {"contrast": contrast, "cache_dir": str(out / "tis")}}}}
    n = pairs * steps
    cfg = {
        "seed_everything": 0, "test_after_fit": False,
        "trainer": {"max_steps": steps, "accelerator": "cpu", "devices": 1, "logger": False,
                    "enable_checkpointing": False, "enable_progress_bar": False, "enable_model_summary": False,
                    "limit_val_batches": 0, "num_sanity_val_steps": 0, "default_root_dir": str(out)},
        "model": {"name_or_path": "smollm2-135m-instruct", "lr": LR, "objective": objective,
                  "share_prompt": variant != "lit_dpo_cached_2row", "compile": variant == "lit_dpo_cached_compiled",
                  "precompute_ref_logps": variant not in ("lit_dpo", "lit_sft"),
                  "ref_cache_dir": str(out / "ref")},
        "artifacts": {"save_hf": False},
        "data": {"train": SCENARIO.format(split="train", n=n), "val": SCENARIO.format(split="val", n=n),
                 "batch_size": pairs, "shuffle": False, "apply_chat_template": True, "max_length": MAX_LENGTH,
                 "max_prompt_length": MAX_PROMPT_LENGTH},
    }
    (out / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    run = cli(["--config", str(out / "cfg.yaml")], run=False)
    run.trainer.callbacks.append(StepTimer())
    run.trainer.fit(run.model, datamodule=run.datamodule)
    return {"times": times, "tokens": tokens}


def _every(variant: str) -> int:
    """IW-DPO-R's ``val_transforms_every`` of a variant (``..._k8``: 8)."""
    return int(variant.rsplit("_k", 1)[1]) if "_k" in variant else 1


def _run_trl(variant: str, steps: int, pairs: int, out: Path) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, TrainerCallback
    from trl import DPOConfig, DPOTrainer

    from lit_iwpo.models import LoraSpec, load_tokenizer
    from lit_iwpo.models.loading import resolve_pretrained

    times: list[float] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            times.append(time.perf_counter() - self.t0)

    rows = _rows(pairs * steps)
    data = Dataset.from_list([{"prompt": [{"role": "user", "content": r["prompt"]}],
                               "chosen": [{"role": "assistant", "content": r["chosen"]}],
                               "rejected": [{"role": "assistant", "content": r["rejected"]}]} for r in rows])
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(resolve_pretrained("smollm2-135m-instruct"), dtype=torch.float32)
    args = DPOConfig(output_dir=str(out), per_device_train_batch_size=pairs, max_steps=steps, learning_rate=LR,
                     beta=BETA, gradient_checkpointing=False, bf16=False, fp16=False, use_cpu=True,
                     max_length=MAX_LENGTH, precompute_ref_log_probs=variant == "trl_dpo_cached",
                     report_to=[], logging_steps=10_000, save_strategy="no", seed=0, data_seed=0,
                     dataloader_num_workers=0, disable_dropout=True, lr_scheduler_type="constant",
                     warmup_steps=0, weight_decay=0.0)
    trainer = DPOTrainer(model=model, args=args, train_dataset=data,
                         processing_class=load_tokenizer("smollm2-135m-instruct"),
                         peft_config=LoraSpec().to_peft(), callbacks=[StepTimer()])
    tokens = []
    for batch in trainer.get_train_dataloader():
        mask = batch.get("attention_mask")
        comp = batch.get("completion_mask")
        tokens.append((int(mask.sum()) if mask is not None else -1, int(comp.sum()) if comp is not None else -1))
        if len(tokens) == steps:
            break
    trainer.train()
    return {"times": times, "tokens": tokens}


def one(variant: str, steps: int, pairs: int) -> dict:
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        run = _run_trl if variant.startswith("trl") else _run_lit
        result = run(variant, steps, pairs, Path(tmp))
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["threads"] = torch.get_num_threads()  # after the run: what each trainer left torch using
    return result


def step_time(variant: str, times: list[float]) -> float:
    """A run's step time: the median after the warm-up steps; for IW-DPO-R scoring its validation batch every k
    steps, the mean over one whole cycle of k steps (the scoring step and the k − 1 that reuse it)."""
    k = _every(variant)
    return statistics.median(times[WARMUP:]) if k == 1 else statistics.mean(times[WARMUP:WARMUP + k])


# ------------------------------------------------------------------------------------------- compute bound
def model_flops(tokens: int, resp_tokens: int, seq_sq: float, cfg) -> tuple[float, float]:
    """(forward FLOPs, backward FLOPs with a frozen base) over ``tokens`` real tokens, ``resp_tokens`` of them
    response tokens (the LM head runs only there), ``seq_sq`` = Σ_rows T_row² (attention)."""
    d, i, layers = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers
    kv = d * cfg.num_key_value_heads // cfg.num_attention_heads
    linear = layers * (2 * d * d + 2 * d * kv + 3 * d * i)  # q, o; k, v; gate, up, down
    attn = layers * 2 * 2 * d * seq_sq  # QKᵀ and AV, causal half counted whole (an upper bound)
    head = 2 * d * cfg.vocab_size * resp_tokens
    fwd = 2 * linear * tokens + attn + head
    # backward with a frozen base: input gradients through every matmul (= its forward), attention twice
    bwd = 2 * linear * tokens + 2 * attn + head
    return fwd, bwd


def matmul_rate(cfg, tokens: int = 512, repeat: int = 200) -> float:
    """float32 FLOP/s of this machine on the model's own matmul shapes (a [tokens, d] activation times each
    layer's projections), the median of ``repeat`` timings."""
    import torch

    d, i = cfg.hidden_size, cfg.intermediate_size
    x, w1, w2 = torch.randn(tokens, d), torch.randn(d, i), torch.randn(i, d)
    rates = []
    for _ in range(repeat + 2):
        t0 = time.perf_counter()
        (x @ w1) @ w2
        rates.append(2 * 2 * tokens * d * i / (time.perf_counter() - t0))
    return statistics.median(rates[2:])


# ----------------------------------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--pairs", type=int, default=4)
    # k = 16 is left out by default: it raises every variant's steps to 18
    ap.add_argument("--variants", nargs="*", default=[v for v in VARIANTS if v != "lit_iw_dpo_r_k16"],
                    choices=VARIANTS)
    ap.add_argument("--one", choices=VARIANTS, help=argparse.SUPPRESS)  # internal: run one variant, print JSON
    args = ap.parse_args()
    # a whole validation cycle of every IW-DPO-R variant after the warm-up: it scores at step 1 (its estimates start
    # after 1 warm-up step), then at 1 + k, ...; the cycle measured is steps WARMUP .. WARMUP + k - 1
    args.steps = max([args.steps] + [WARMUP + _every(v) for v in args.variants if v.startswith("lit_iw_dpo_r")])
    if args.one:
        print("RESULT " + json.dumps(one(args.one, args.steps, args.pairs)))
        return

    from transformers import AutoConfig

    from lit_iwpo.models.loading import resolve_pretrained

    cfg = AutoConfig.from_pretrained(resolve_pretrained("smollm2-135m-instruct"))
    results: dict[str, list[dict]] = {v: [] for v in args.variants}
    rates: list[float] = []  # the matmul rate after each round: the machine drifts between rounds
    for r in range(args.rounds):
        for v in args.variants:
            proc = subprocess.run([sys.executable, __file__, "--one", v, "--steps", str(args.steps),
                                   "--pairs", str(args.pairs)], capture_output=True, text=True)
            line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
            if proc.returncode or not line:
                sys.exit(f"{v} failed:\n{proc.stderr[-3000:]}")
            results[v].append(json.loads(line[0][7:]))
            print(f"round {r + 1}/{args.rounds} {v}: {step_time(v, results[v][-1]['times']):.3f} s/step",
                  flush=True)
        rates.append(matmul_rate(cfg))
    rate = max(rates)  # the fastest rate measured: the tightest bound, so step/bound errs against us
    med = {v: statistics.median([step_time(v, run["times"]) for run in runs] if _every(v) > 1 else
                                [t for run in runs for t in run["times"][WARMUP:]]) for v, runs in results.items()}
    rss = {v: max(run["peak_rss_mib"] for run in runs) for v, runs in results.items()}
    print(f"\nLoRA training step on SmolLM2-135M-Instruct, {args.pairs} pairs/step, float32, CPU "
          f"({os.cpu_count()} cores), {args.rounds} rounds × {args.steps} steps (first {WARMUP} of each dropped; "
          f"IW-DPO-R every k: the mean over one cycle of k steps); torch threads per variant: "
          f"{ {v: runs[0]['threads'] for v, runs in results.items()} }")
    print(f"float32 matmul rate on the model's shapes: {rate / 1e9:.1f} GFLOP/s, the fastest of the rounds' "
          f"({', '.join(f'{x / 1e9:.1f}' for x in rates)})\n")
    print(f"{'variant':<24}{'step (s)':>10}{'pairs/s':>10}{'tokens/step':>13}{'bound (s)':>11}{'step/bound':>12}"
          f"{'peak RSS (MiB)':>16}")
    for v in args.variants:
        tok = results[v][0]["tokens"]
        mean_tokens = statistics.mean(t[0] for t in tok)
        line = f"{v:<24}{med[v]:>10.3f}{args.pairs / med[v]:>10.2f}{mean_tokens:>13.0f}"
        if v.startswith("lit") and v != "lit_sft":
            # the bound from lit_iwpo's own batches: the real tokens its forward runs (with a shared prompt, one row
            # [prompt | chosen | rejected] per pair; otherwise two rows per pair)
            fwd = bwd = 0.0
            for _, resp, run in tok:
                rows = args.pairs if v != "lit_dpo_cached_2row" else 2 * args.pairs
                f, b = model_flops(run, resp, (run / rows) ** 2 * rows, cfg)
                fwd, bwd = fwd + f, bwd + b
            fwd, bwd = fwd / len(tok), bwd / len(tok)
            flops = fwd + bwd + (fwd if v == "lit_dpo" else 0)
            if v.startswith("lit_iw_dpo_r"):  # + the policy forward of the validation batch (approximated by
                flops += fwd * VAL_PAIRS / args.pairs / _every(v)  # training pairs' length), amortised over k
            line += f"{flops / rate:>11.3f}{med[v] / (flops / rate):>12.2f}"
        else:
            line += f"{'':>11}{'':>12}"
        print(line + f"{rss[v]:>16.0f}")
    print()

    def ratio(a: str, b: str, what: str) -> None:
        if a in med and b in med:
            print(f"{what:<58}{med[b] / med[a]:>6.2f}x")

    ratio("lit_dpo_cached", "trl_dpo_cached", "throughput, lit_iwpo / TRL, both caching the reference")
    ratio("lit_dpo", "trl_dpo", "throughput, lit_iwpo / TRL, neither caching")
    ratio("lit_dpo_cached_2row", "trl_dpo_cached", "throughput, lit_iwpo two-row layout / TRL, both caching")
    ratio("lit_dpo_cached", "lit_dpo_cached_2row", "throughput, shared prompt / two-row layout (lit_iwpo)")
    ratio("lit_dpo_cached_compiled", "trl_dpo_cached", "throughput, lit_iwpo compiled / TRL, both caching")
    ratio("lit_dpo_cached_compiled", "lit_dpo_cached", "throughput, compiled / eager layers (lit_iwpo)")
    for v, name in (("lit_iw_dpo_r", "IW-DPO-R"), ("lit_iw_dpo_r_k8", "IW-DPO-R, val batch every 8"),
                    ("lit_iw_dpo_r_k16", "IW-DPO-R, val batch every 16"),
                    ("lit_tis_dpo", "TIS-DPO")):
        if v in med and "lit_dpo_cached" in med:
            print(f"{name + ' step / DPO step (both cached reference)':<58}{med[v] / med['lit_dpo_cached']:>6.2f}x")
    if "lit_sft" in rss and "lit_dpo_cached" in rss:
        print(f"{'peak RSS, LoRA DPO (cached) / LoRA SFT':<58}{rss['lit_dpo_cached'] / rss['lit_sft']:>6.2f}x")
    if "lit_sft" in rss and "lit_dpo" in rss:
        print(f"{'peak RSS, LoRA DPO (reference forward) / LoRA SFT':<58}{rss['lit_dpo'] / rss['lit_sft']:>6.2f}x")


if __name__ == "__main__":
    main()
