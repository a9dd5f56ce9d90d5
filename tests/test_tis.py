"""TIS-DPO: token-weight maps by hand, alignment to batch layouts, the loss against DPO and a hand computation,
the KL term against an independent computation."""

import math

import pytest
import torch

from lit_iwpo.losses import dpo_loss, tis_dpo_loss, token_kl, weighted_kl, weighted_logps
from lit_iwpo.weighting.token_weights import (
    ExpClamp,
    RankBased,
    ThresholdAndScale,
    align,
    map_responses,
    raw_values,
    response_values,
)

T = torch.tensor


# ------------------------------------------------------------------------------------------------ maps
def test_exp_clamp_by_hand():
    """raw (−1, 0, 1, 2), L = −0.5, U = 1.5: clamp → (−.5, 0, 1, 1.5); chosen w = e^x, rejected w = e^−x."""
    raw = T([-1.0, 0.0, 1.0, 2.0])
    plain = ExpClamp(normalize=False)
    assert torch.allclose(plain(raw, "chosen"), T([math.exp(-0.5), 1.0, math.e, math.exp(1.5)]))
    assert torch.allclose(plain(raw, "rejected"), T([math.exp(0.5), 1.0, math.exp(-1.0), math.exp(-1.5)]))
    normed = ExpClamp()(raw, "chosen")
    want = T([math.exp(-0.5), 1.0, math.e, math.exp(1.5)])
    assert torch.allclose(normed, want / want.mean()) and normed.mean().item() == pytest.approx(1.0)
    lo, hi = plain.clamp_hits(raw, "chosen")
    assert lo.tolist() == [True, False, False, False] and hi.tolist() == [False, False, False, True]
    with pytest.raises(ValueError, match="lower < upper"):
        ExpClamp(lower=1.0, upper=1.0)


def test_threshold_and_scale_by_hand():
    """Default [−1.5, 1.5] → [0.7, 1.3]: w = 0.7 + (s + 1.5) · 0.2 with s = μ r clamped."""
    raw = T([-2.0, -1.5, 0.0, 0.75, 3.0])
    m = ThresholdAndScale()
    assert torch.allclose(m(raw, "chosen"), T([0.7, 0.7, 1.0, 1.15, 1.3]))
    assert torch.allclose(m(raw, "rejected"), T([1.3, 1.3, 1.0, 0.85, 0.7]))
    lo, hi = m.clamp_hits(raw, "rejected")  # s = (2, 1.5, 0, −.75, −3)
    assert lo.tolist() == [False, False, False, False, True] and hi.tolist() == [True, True, False, False, False]
    # presets: s = 1 on [−2, 2] → [0.5, 1.5] is 0.5 + 3/4; on [−1.8, 1.8] → [0.6, 1.4] is 0.6 + 2.8/3.6 · 0.8
    assert ThresholdAndScale(preset="aggressive")(T([1.0]), "chosen").item() == pytest.approx(1.25)
    assert ThresholdAndScale(preset="moderate")(T([1.0]), "chosen").item() == pytest.approx(0.6 + 2.8 / 3.6 * 0.8)
    with pytest.raises(ValueError, match="preset"):
        ThresholdAndScale(preset="wild")


def test_rank_based_by_hand():
    """raw (0.3, −1, 0.3, 2): chosen ranks (1, 0, 2, 3) (the tie: earlier lower) → 0.7 + rank · 0.2;
    rejected s = (−.3, 1, −.3, −2): ranks (1, 3, 2, 0). One token → 1."""
    raw = T([0.3, -1.0, 0.3, 2.0])
    m = RankBased()
    assert torch.allclose(m(raw, "chosen"), T([0.9, 0.7, 1.1, 1.3]))
    assert torch.allclose(m(raw, "rejected"), T([0.9, 1.3, 1.1, 0.7]))
    assert m(T([5.0]), "chosen").tolist() == [1.0]
    assert RankBased(preset="aggressive").high == 1.5


def test_zero_last_gives_the_final_token_zero():
    raw = [T([0.0, 0.0, 0.0]), T([1.0])]
    kept = map_responses(raw, "chosen", ThresholdAndScale())
    zeroed = map_responses(raw, "chosen", ThresholdAndScale(), zero_last=True)
    assert [w.tolist() for w in kept] == [[1.0, 1.0, 1.0], [pytest.approx(1.2)]]
    assert [w.tolist() for w in zeroed] == [[1.0, 1.0, 0.0], [0.0]]


# ------------------------------------------------------------------------------------------- alignment
def test_align_places_weights_on_response_tokens_for_any_padding():
    """The same two responses (3 and 2 tokens) after prompts of 2 and 4 tokens, right- and left-padded to 8:
    weights land on the response positions in token order, 0 on prompt and padding; raw values read back."""
    w = [T([1.0, 2.0, 3.0]), T([4.0, 5.0])]
    right = torch.zeros(2, 8, dtype=torch.bool)
    right[0, 2:5] = True  # prompt 0-1, response 2-4, padding 5-7
    right[1, 4:6] = True
    left = torch.zeros(2, 8, dtype=torch.bool)
    left[0, 5:8] = True  # padding 0-2, prompt 3-4, response 5-7
    left[1, 6:8] = True
    for mask in (right, left):
        dense = align(w, mask)
        assert dense[mask].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0] and (dense[~mask] == 0).all()
        assert [r.tolist() for r in response_values(dense, mask)] == [[1.0, 2.0, 3.0], [4.0, 5.0]]
    # a truncated response (one token fewer than the weights) is caught, with the sample named
    short = right.clone()
    short[0, 4] = False
    with pytest.raises(ValueError, match=r"sample 'a', chosen.*3 token weights for 2 response tokens"):
        align(w, short, ids=["a"])


def test_raw_values_follow_each_layout():
    """Positive and negative log-probs scored in different layouts (a longer contrastive prompt shifts the
    response) give r_t per token in order."""
    pos = torch.zeros(1, 6)
    neg = torch.zeros(1, 6)
    mask = torch.zeros(1, 6, dtype=torch.bool)
    mask[0, 3:5] = True
    pos[0, 3:5] = T([-1.0, -2.0])
    neg[0, 3:5] = T([-1.5, -1.0])
    assert raw_values(pos, neg, mask)[0].tolist() == [0.5, -1.0]


# ------------------------------------------------------------------------------------------------ loss
def _tokens(b=2, t=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(2 * b, t, dtype=torch.bool)
    for r in range(2 * b):
        start = int(torch.randint(0, 3, (1,), generator=g))
        mask[r, start:start + 2 + r % 3] = True
    pol = torch.where(mask, -3 * torch.rand(2 * b, t, generator=g), torch.zeros(()))
    ref = torch.where(mask, -3 * torch.rand(2 * b, t, generator=g), torch.zeros(()))
    return pol, ref, mask


def test_unit_weights_give_dpo_exactly():
    pol, ref, mask = _tokens()
    ones = torch.ones_like(pol)
    tis = tis_dpo_loss(weighted_logps(pol, ones, mask), weighted_logps(ref, ones, mask), beta=0.1)
    s_pol, s_ref = pol.sum(-1), ref.sum(-1)
    dpo = dpo_loss(s_pol[:2], s_pol[2:], s_ref[:2], s_ref[2:], beta=0.1)
    assert torch.equal(tis, dpo)


def test_tis_loss_by_hand():
    """One pair, chosen tokens (Δ = .5, −.2) with w = (2, 1), rejected (Δ = .3) with w = (.5):
    M_w = 1 − .2 = .8, M_l = .15; S_w = 2·.1 + 1·.3 = .5, S_l = .5·.4 = .2; α = .5, β = .1:
    ℓ = −log σ(.1 · (.8 − .15 − .5 · (.5 − .2))) = −log σ(.05)."""
    mask = T([[True, True], [True, False]])
    pol = T([[-1.0, -2.0], [-1.0, 0.0]])
    ref = T([[-1.5, -1.8], [-1.3, 0.0]])
    w = T([[2.0, 1.0], [0.5, 9.0]])  # the weight outside the mask must not count
    kl = T([0.1, 0.3, 0.4])  # per response position, mask order
    loss = tis_dpo_loss(weighted_logps(pol, w, mask), weighted_logps(ref, w, mask), beta=0.1, alpha=0.5,
                        kl_weighted=weighted_kl(kl, w, mask))
    assert loss.item() == pytest.approx(-math.log(1 / (1 + math.exp(-0.05))), abs=1e-6)
    no_kl = tis_dpo_loss(weighted_logps(pol, w, mask), weighted_logps(ref, w, mask), beta=0.1)
    assert no_kl.item() == pytest.approx(-math.log(1 / (1 + math.exp(-0.065))), abs=1e-6)
    with pytest.raises(ValueError, match="kl_weighted"):
        tis_dpo_loss(weighted_logps(pol, w, mask), weighted_logps(ref, w, mask), alpha=0.5)


def test_token_kl_against_an_independent_computation():
    g = torch.Generator().manual_seed(1)
    p, q = torch.randn(5, 11, generator=g), torch.randn(5, 11, generator=g)
    want = torch.distributions.kl_divergence(torch.distributions.Categorical(logits=p.double()),
                                             torch.distributions.Categorical(logits=q.double()))
    assert torch.allclose(token_kl(p, q).double(), want, atol=1e-6)
    assert torch.allclose(token_kl(p, p), torch.zeros(5), atol=1e-6)


# ---------------------------------------------------------------------------- contrast, cache keys, objective
from types import SimpleNamespace  # noqa: E402

from lit_iwpo.models.logprobs import LogProbs  # noqa: E402
from lit_iwpo.objectives import DPO, TISDPO, StepInputs  # noqa: E402
from lit_iwpo.objectives.weights.token import (  # noqa: E402
    PROMPT_TEMPLATES,
    ContrastivePrompts,
    ContrastiveTokenWeights,
)


class PromptWorld:
    """A fake run: 2 training pairs whose responses hold tokens 7 ("safe") and 9 ("risky"). Its "model" gives
    token 7 log-prob −1 under the harmless system prompt and −3 otherwise; token 9 the other way round;
    every other token −2. The harmless prompt is longer, so responses sit at different positions."""

    step, rank, world_size, eval_batch_size = 0, 0, 1, 8

    def __init__(self, fingerprints=None):
        self.pairs = [SimpleNamespace(prompt=[1, 2], chosen=[7, 4, 7], rejected=[9, 4]),
                      SimpleNamespace(prompt=[1, 3], chosen=[4, 7], rejected=[9, 9, 5])]
        self.ids = ["a", "b"]
        self.fp = {"data:train": "d", "tokenizer": "t", "reference": "r", **(fingerprints or {})}

    def split(self, name):
        return SimpleNamespace(ids=self.ids, pairs=self.pairs, rows=[{}, {}]) if name == "train" else None

    def batch(self, split, rows, system_prompt=None):
        extra = 3 if system_prompt == PROMPT_TEMPLATES["harmless"] else 0
        seqs = [(self.pairs[r].prompt, self.pairs[r].chosen) for r in rows] + \
               [(self.pairs[r].prompt, self.pairs[r].rejected) for r in rows]
        width = 12
        ids = torch.zeros(len(seqs), width, dtype=torch.long)
        mask = torch.zeros(len(seqs), width, dtype=torch.long)
        for i, (p, y) in enumerate(seqs):
            start = len(p) + extra
            ids[i, start:start + len(y)] = torch.tensor(y)
            mask[i, start:start + len(y)] = 1
        return SimpleNamespace(input_ids=ids, loss_mask=mask, harmless=extra > 0, ids=[self.ids[r] for r in rows])

    def score(self, batch, model="policy", mode="eval", request=None):
        targets, m = batch.input_ids[:, 1:], batch.loss_mask[:, 1:].bool()
        good = getattr(batch, "harmless", False)
        lp = torch.full(targets.shape, -2.0)
        lp[targets == 7] = -1.0 if good else -3.0
        lp[targets == 9] = -3.0 if good else -1.0
        lp = lp * m
        return LogProbs(logps=lp.sum(-1), token_logps=lp, mask=m)

    def fingerprint(self, what):
        return self.fp[what]

    def compute_once(self, fn):
        return fn()

    def progress(self, it, desc, total=None):
        return it


def _weights(tmp_path, **kw):
    tw = ContrastiveTokenWeights(ContrastivePrompts(), cache_dir=str(tmp_path), **kw)
    world = PromptWorld()
    tw.setup(SimpleNamespace(split=world.split, stage="fit"))
    return tw, world


def test_contrastive_prompts_weight_the_tokens_the_harmless_prompt_prefers(tmp_path):
    """r = log π(·|harmless) − log π(·|harmful): +2 on token 7, −2 on token 9, 0 elsewhere. Chosen responses
    give their safe tokens the top weight, rejected responses their risky ones (μ = −1 turns −2 into +2)."""
    tw, world = _weights(tmp_path, weight_map=ThresholdAndScale())
    tw.compute(world)
    chosen_a, rejected_b = tw.stores["chosen"].lookup(["a"])[0], tw.stores["rejected"].lookup(["b"])[0]
    assert tw.raw["chosen"].lookup(["a"])[0].tolist() == [2.0, 0.0, 2.0]
    assert torch.allclose(chosen_a, T([1.3, 1.0, 1.3]))
    assert torch.allclose(rejected_b, T([1.3, 1.3, 1.0]))
    # Σ w log π_ref per response, from the same pass (reference: no system prompt → 7: −3, 9: −1, else −2)
    assert tw.ref_weighted[0, 0].item() == pytest.approx(1.3 * -3 + 1.0 * -2 + 1.3 * -3)
    m = tw.batch_metrics(["a", "b"])
    assert m["tis/chosen/at_upper"].item() == pytest.approx(3 / 5) and m["tis/chosen/zero"].item() == 0.0


def test_cache_keys_follow_data_models_and_map(tmp_path):
    """The raw key changes with data, tokenizer, models and the contrast; the weights key also with the map."""
    base = ContrastiveTokenWeights(ContrastivePrompts(), weight_map=ExpClamp())
    raw0, w0 = base.keys(PromptWorld())
    for change in ({"data:train": "d2"}, {"tokenizer": "t2"}, {"reference": "r2"}):
        raw, w = base.keys(PromptWorld(change))
        assert raw != raw0 and w != w0, change
    other_prompt = ContrastiveTokenWeights(ContrastivePrompts(positive="normal"), weight_map=ExpClamp())
    assert other_prompt.keys(PromptWorld())[0] != raw0
    for changed in (ExpClamp(upper=2.0), ExpClamp(normalize=False), ThresholdAndScale()):
        raw, w = ContrastiveTokenWeights(ContrastivePrompts(), weight_map=changed).keys(PromptWorld())
        assert raw == raw0 and w != w0, changed
    raw, w = ContrastiveTokenWeights(ContrastivePrompts(), weight_map=ExpClamp(), zero_last=True).keys(PromptWorld())
    assert raw == raw0 and w != w0


def test_cached_weights_are_reused_and_new_map_settings_recompute_only_the_map(tmp_path):
    tw, world = _weights(tmp_path, weight_map=ThresholdAndScale())
    tw.compute(world)
    calls = []
    world.score = lambda *a, **k: calls.append(1)  # any forward now would fail
    again, _ = _weights(tmp_path, weight_map=ThresholdAndScale())
    again.compute(world)
    assert not calls and torch.equal(again.stores["chosen"].values, tw.stores["chosen"].values)
    ranked, _ = _weights(tmp_path, weight_map=RankBased())
    ranked.compute(world)  # a new map reads the cached raw values: still no forward
    assert not calls and torch.allclose(ranked.stores["chosen"].lookup(["a"])[0], T([1.0, 0.7, 1.3]))


def test_objective_loss_and_kl_term_by_an_independent_computation(tmp_path):
    """TISDPO's training loss on a batch equals −log σ(β(M_w − M_l − α(S_w − S_l))) computed here from the
    stored weights, the policy's token log-probs, and KL from torch.distributions on the logits."""
    tw, world = _weights(tmp_path, weight_map=ThresholdAndScale())
    tw.compute(world)
    obj = TISDPO(token_weights=tw, alpha=0.5, beta=0.1)
    assert obj.request.reference == "token" and obj.request.logits and obj.request.reference_logits
    assert not TISDPO(token_weights=tw).request.logits  # α = 0: no full-vocabulary quantity
    batch = world.batch("train", [0, 1])
    mask = batch.loss_mask[:, 1:].bool()
    g = torch.Generator().manual_seed(0)
    tok = torch.where(mask, -3 * torch.rand(mask.shape, generator=g), torch.zeros(()))
    n = int(mask.sum())
    pl, rl = torch.randn(n, 6, generator=g), torch.randn(n, 6, generator=g)
    policy = LogProbs(logps=tok.sum(-1), token_logps=tok, mask=mask, logits=pl)
    reference = LogProbs(logps=torch.zeros(4), logits=rl)
    out = obj(StepInputs(policy, reference, SimpleNamespace(ids=["a", "b"], index=torch.arange(2)), "train",
                         ctx=world))
    kl = torch.distributions.kl_divergence(torch.distributions.Categorical(logits=pl),
                                           torch.distributions.Categorical(logits=rl))
    w_rows = tw.stores["chosen"].lookup(["a", "b"]) + tw.stores["rejected"].lookup(["a", "b"])
    M, S = [], []
    k = 0
    for r in range(4):
        pos = mask[r].nonzero().flatten()
        M.append(sum(w_rows[r][j] * tok[r, p] for j, p in enumerate(pos)) - tw.ref_weighted[r % 2, r // 2])
        S.append(sum(w_rows[r][j] * kl[k + j] for j in range(len(pos))))
        k += len(pos)
    want = [-torch.nn.functional.logsigmoid(0.1 * ((M[i] - M[i + 2]) - 0.5 * (S[i] - S[i + 2]))) for i in range(2)]
    assert torch.allclose(out.per_sample_loss, torch.stack(want).float(), atol=1e-5)
    assert out.metrics["tis/chosen/mean"].item() == pytest.approx(torch.cat(tw.stores["chosen"].values.split(1)).mean().item())
    # validation: plain DPO on sequence sums
    val = obj(StepInputs(policy, LogProbs(logps=torch.zeros(4)), SimpleNamespace(ids=["a", "b"], index=torch.arange(2)),
                         "val", ctx=world))
    assert torch.equal(val.per_sample_loss, DPO().per_sample_loss(StepInputs(policy, LogProbs(logps=torch.zeros(4)),
                                                                              None, "val")))


# ------------------------------------------------------------------------------------------ end to end
import csv  # noqa: E402
from pathlib import Path  # noqa: E402

import pyarrow.parquet as pq  # noqa: E402

from lit_iwpo.cli import cli  # noqa: E402
from test_cli import _config  # noqa: E402


def _tis(tmp_path, weight_map=None):
    init = {"contrast": {"class_path": "lit_iwpo.objectives.weights.ContrastivePrompts"},
            "cache_dir": str(tmp_path / "token_cache")}
    if weight_map is not None:
        init["weight_map"] = weight_map
    return {"class_path": "lit_iwpo.objectives.TISDPO",
            "init_args": {"token_weights": {"class_path": "lit_iwpo.objectives.weights.ContrastiveTokenWeights",
                                            "init_args": init}}}


def _train_losses(run):
    with open(Path(run.trainer.log_dir) / "metrics.csv") as f:
        return [float(r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")]


CKPT2 = {"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
         "init_args": {"every_n_train_steps": 2, "save_top_k": -1, "filename": "{step}"}}
REFRESH = {"class_path": "lit_iwpo.callbacks.ImportanceWeightRefresh", "init_args": {"every_n_steps": 3}}


def test_tis_dpo_prompt_contrast_end_to_end_and_bit_exact_resume(tmp_path, pref_files):
    """On the tiny model: raw values equal an independent forward of the base under each system prompt
    (responses truncated by max_length included); tis/* metrics are logged and the token table written;
    a run resumed mid-epoch (step 2 of 6) ends with the same token weights and parameters."""
    extra = {"model.objective": _tis(tmp_path), "model.precompute_ref_logps": True,
             "model.ref_cache_dir": str(tmp_path / "ref"), "trainer.max_steps": 5,
             "trainer.callbacks": [CKPT2, REFRESH], "data.max_length": 40, "data.max_prompt_length": 30}
    full = cli(["fit", "--config", str(_config(tmp_path / "a", pref_files, **extra)), "--eval.win_rate", "false"])
    tw = full.model.objective.token_weights
    dm, model, tok = full.datamodule, full.model.policy, full.datamodule.tokenizer
    train = dm.splits["train"]
    truncated = [p for p in train.pairs if p.chosen[-1] != tok.eos_token_id and p.chosen[-1] != tok.pad_token_id]
    assert truncated, "the test wants truncated responses"
    model.eval()
    for i in (0, 5):
        row, pair = train.rows[i], train.pairs[i]
        vals = []
        for name in ("harmless", "harmful"):
            msgs = [{"role": "system", "content": PROMPT_TEMPLATES[name]}, {"role": "user", "content": row["prompt"]}]
            prompt = tok(tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True),
                         add_special_tokens=False)["input_ids"]
            ids = torch.tensor([prompt + pair.chosen])
            with torch.no_grad(), model.disable_adapter():
                logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)
            vals.append(logp[torch.arange(len(prompt) - 1, ids.shape[1] - 1), ids[0, len(prompt):]])
        got = tw.raw["chosen"].lookup([train.ids[i]])[0]
        assert got.shape == (len(pair.chosen),) and torch.allclose(got, vals[0] - vals[1], atol=1e-4)
    out = Path(full.trainer.log_dir)
    with open(out / "metrics.csv") as f:
        cols = next(csv.reader(f))
    assert {"train/tis/chosen/mean", "train/tis/rejected/at_upper", "train/tis/chosen/zero"} <= set(cols)
    table = pq.read_table(next((out / "weights").glob("tokens=*.parquet"))).to_pandas()
    assert len(table) == sum(len(p.chosen) + len(p.rejected) for p in train.pairs)
    resumed = cli(["fit", "--config", str(_config(tmp_path / "b", pref_files, **extra)), "--eval.win_rate", "false",
                   "--ckpt_path", str(out / "checkpoints" / "step=2.ckpt")])
    rtw = resumed.model.objective.token_weights
    assert torch.equal(rtw.stores["chosen"].values, tw.stores["chosen"].values)
    assert torch.equal(rtw.ref_weighted, tw.ref_weighted)
    a = {k: v for k, v in full.model.state_dict().items() if "lora_" in k}
    b = {k: v for k, v in resumed.model.state_dict().items() if "lora_" in k}
    assert a and all(torch.equal(a[k], b[k]) for k in a)
    assert _train_losses(resumed)[-1] == _train_losses(full)[-1]


def test_tis_dpo_with_unit_weights_trains_as_dpo(tmp_path, pref_files):
    """Every token weight 1 (a map onto [1, 1]): the same loss trajectory as DPO, step by step."""
    ones = {"class_path": "lit_iwpo.weighting.token_weights.ThresholdAndScale", "init_args": {"low": 1.0, "high": 1.0}}
    common = {"model.precompute_ref_logps": True, "model.ref_cache_dir": str(tmp_path / "ref"), "trainer.max_steps": 4}
    tis = cli(["fit", "--config", str(_config(tmp_path / "t", pref_files, **{"model.objective": _tis(tmp_path, ones),
                                                                              **common})),
               "--test_after_fit", "false"])
    dpo = cli(["fit", "--config", str(_config(tmp_path / "d", pref_files, **common)), "--test_after_fit", "false"])
    lt, ld = _train_losses(tis), _train_losses(dpo)
    assert len(lt) == 4 and lt == pytest.approx(ld, abs=1e-6)


def test_tis_weights_trains_contrastive_adapters_then_fit_reuses_everything(tmp_path, pref_files):
    """`lit_iwpo tis-weights` trains forward DPO and reverse DPO (swapped pairs) adapters into the folders the
    data's fingerprint names, computes the weights (raw values = log π_fwd − log π_rev, checked against peft
    models loaded here from the saved folders) and caches them; the fit then trains without a new forward of
    the contrast, and refuses to start when an adapter is missing."""
    from peft import PeftModel

    from lit_iwpo.models import load_causal_lm
    from lit_iwpo.tis_weights import tis_weights_main

    objective = {"class_path": "lit_iwpo.objectives.TISDPO", "init_args": {"token_weights": {
        "class_path": "lit_iwpo.objectives.weights.ContrastiveTokenWeights",
        "init_args": {"contrast": {"class_path": "lit_iwpo.objectives.weights.ContrastiveAdapters",
                                   "init_args": {"kind": "dpo", "root": str(tmp_path / "adapters")}},
                      "weight_map": {"class_path": "lit_iwpo.weighting.token_weights.RankBased"},
                      "cache_dir": str(tmp_path / "token_cache")}}}}
    cfg = _config(tmp_path, pref_files, **{"model.objective": objective, "trainer.max_steps": 2})
    with pytest.raises(ValueError, match="tis-weights"):
        cli(["fit", "--config", str(cfg)])
    assert tis_weights_main(["--config", str(cfg)]) == 0
    folders = sorted((tmp_path / "adapters").glob("*-dpo/*"))
    assert [f.name for f in folders] == ["negative", "positive"]
    table = sorted((tmp_path / "runs").rglob("tokens=000000.parquet"))
    assert len(table) == 1 and len(pq.read_table(table[0])) > 0  # the zero-step fit wrote the token table
    cached = sorted(p.name.split("-")[0] for p in (tmp_path / "token_cache").iterdir())
    assert cached == ["raw", "weights"]
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "token_cache").iterdir()}
    run = cli(["fit", "--config", str(cfg), "--eval.win_rate", "false"])
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "token_cache").iterdir()} == stamps
    tw = run.model.objective.token_weights
    train = run.datamodule.splits["train"]
    pair = train.pairs[3]
    ids = torch.tensor([pair.prompt + pair.rejected])
    values = []
    for folder in ("positive", "negative"):
        model = PeftModel.from_pretrained(load_causal_lm("tiny-llama"), str(folders[0].parent / folder)).eval()
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)
        n = len(pair.prompt)
        values.append(logp[torch.arange(n - 1, ids.shape[1] - 1), ids[0, n:]])
    got = tw.raw["rejected"].lookup([train.ids[3]])[0]
    assert torch.allclose(got, values[0] - values[1], atol=1e-4)
    assert not torch.allclose(got, torch.zeros_like(got), atol=1e-3)  # the two adapters do differ
    # rank-based map on the rejected side: ranks of −raw
    want = RankBased()(got, "rejected")
    assert torch.allclose(tw.stores["rejected"].lookup([train.ids[3]])[0], want)


def test_swap_pairs_swaps_every_split(pref_files):
    from lit_iwpo.data import PreferenceDataModule

    plain = PreferenceDataModule(train=str(pref_files["train"]), tokenizer="tiny-llama", apply_chat_template=True)
    swapped = PreferenceDataModule(train=str(pref_files["train"]), tokenizer="tiny-llama", apply_chat_template=True,
                                   swap_pairs=True)
    a, b = plain.load_split("train"), swapped.load_split("train")
    assert [p.chosen for p in a.pairs] == [p.rejected for p in b.pairs]
    assert [p.rejected for p in a.pairs] == [p.chosen for p in b.pairs]
    assert [r["chosen"] for r in a.rows] == [r["rejected"] for r in b.rows]


TIS_CONFIGS = sorted(Path("configs/tis").glob("*.yaml"))


@pytest.mark.parametrize("config", TIS_CONFIGS, ids=lambda p: p.stem)
def test_tis_configs_compose_with_every_scenario(config):
    """Each configs/tis file composes with each scenario config into the objective and data it declares."""
    import yaml

    from lit_iwpo.objectives.weights.token import ContrastiveAdapters

    declared = yaml.safe_load(config.read_text())
    obj_path = declared["model"]["objective"]["class_path"]
    for scenario in sorted(Path("configs/scenarios").glob("*.yaml")):
        parsed = cli(["--config", str(scenario), "--config", str(config), "--model.name_or_path", "tiny-llama"],
                     run=False)
        obj = parsed.model.objective
        assert f"{type(obj).__module__.rsplit('.', 1)[0]}.{type(obj).__name__}".endswith(obj_path.rsplit(".", 1)[1])
        assert parsed.datamodule.train_on == declared["data"]["train_on"]
        assert parsed.datamodule.swap_pairs == declared["data"].get("swap_pairs", False)
        if isinstance(obj, TISDPO):
            tw = declared["model"]["objective"]["init_args"]["token_weights"]["init_args"]
            assert type(obj.token_weights.weight_map).__name__ == tw["weight_map"]["class_path"].rsplit(".", 1)[1]
            assert obj.token_weights.zero_last == tw["zero_last"]
            if isinstance(obj.token_weights.contrast, ContrastiveAdapters):
                assert obj.token_weights.contrast.kind == tw["contrast"]["init_args"]["kind"]


def test_token_weights_notebook_runs_headless(tmp_path, pref_files, monkeypatch):
    """notebooks/token_weights.ipynb on a tiny TIS-DPO run, compared with a second construction (another map on
    the same pairs): the coloured page holds one span per token of the first pairs, the ranking and the
    comparison (Spearman of the two weightings, computed here too) are written; a DPO run gets a message."""
    import nbformat
    import pandas as pd
    from nbclient import NotebookClient

    runs = {}
    for name, weight_map in (("exp", None), ("rank", {"class_path": "lit_iwpo.weighting.token_weights.RankBased"})):
        cfg = _config(tmp_path / name, pref_files, **{"model.objective": _tis(tmp_path, weight_map),
                                                       "trainer.max_steps": 2, "trainer.callbacks": [REFRESH]})
        runs[name] = Path(cli(["fit", "--config", str(cfg), "--test_after_fit", "false"]).trainer.log_dir)
    dpo = Path(cli(["fit", "--config", str(_config(tmp_path / "dpo", pref_files)), "--test_after_fit", "false"])
               .trainer.log_dir)

    def execute(run, compare=()):
        monkeypatch.setenv("LIT_IWPO_RUN_DIR", str(run))
        monkeypatch.setenv("LIT_IWPO_COMPARE_RUNS", ":".join(map(str, compare)))
        nb = nbformat.read(Path("notebooks/token_weights.ipynb"), as_version=4)
        NotebookClient(nb, timeout=180, kernel_name="python3").execute()
        out = []
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not [o for o in cell.outputs if o.get("output_type") == "error"]
                out.append("".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream"))
        return out

    out = execute(runs["exp"], [runs["rank"]])
    tokens = pd.read_parquet(next((runs["exp"] / "weights").glob("tokens=*.parquet")))
    first = list(dict.fromkeys(tokens["id"]))[:3]
    page = (runs["exp"] / "figures" / "token_weights.html").read_text()
    assert page.count("<span title=") == int(tokens["id"].isin(first).sum())
    assert (runs["exp"] / "figures" / "weight_by_position.png").is_file()
    assert "chosen: highest weight" in out[3] and (runs["exp"] / "figures" / "token_ranking.csv").is_file()
    other = pd.read_parquet(next((runs["rank"] / "weights").glob("tokens=*.parquet")))
    both = tokens.merge(other, on=["id", "side", "position", "token"], suffixes=("", "_o"))
    want = both["weight"].corr(both["weight_o"], method="spearman")
    got = pd.read_csv(runs["exp"] / "figures" / "constructions.csv")
    assert got["spearman weight"].iloc[0] == pytest.approx(want) and got["spearman raw"].iloc[0] == pytest.approx(1.0)
    assert "holds no token weights" in execute(dpo)[0]


def test_policy_prompt_contrast_refreshes_with_the_callback(tmp_path, pref_files):
    """ContrastivePrompts(model: policy) with refresh: the callback recomputes the weights at steps 2 and 4 with
    the policy of that step, so the written token tables differ, and the last one is what training holds."""
    objective = _tis(tmp_path)
    objective["init_args"]["token_weights"]["init_args"]["contrast"]["init_args"] = {"model": "policy"}
    objective["init_args"]["token_weights"]["init_args"]["refresh"] = True
    every2 = {"class_path": "lit_iwpo.callbacks.ImportanceWeightRefresh", "init_args": {"every_n_steps": 2}}
    cfg = _config(tmp_path, pref_files, **{"model.objective": objective, "trainer.max_steps": 4,
                                           "trainer.callbacks": [every2], "model.lr": 1e-2})
    run = cli(["fit", "--config", str(cfg), "--test_after_fit", "false"])
    tw = run.model.objective.token_weights
    assert tw.computed_step == 4
    tables = {p.name: pq.read_table(p).to_pandas() for p in sorted((Path(run.trainer.log_dir) / "weights").glob("tokens=*"))}
    assert list(tables) == ["tokens=000002.parquet", "tokens=000004.parquet"]
    first, last = tables["tokens=000002.parquet"], tables["tokens=000004.parquet"]
    assert not first["raw"].equals(last["raw"])
    chosen = last[last["side"] == "chosen"]
    assert torch.allclose(torch.tensor(chosen["weight"].to_numpy(), dtype=torch.float32), tw.stores["chosen"].values)


def test_adapter_fingerprint_is_the_same_in_every_process(tmp_path):
    """peft keeps target_modules as a set, whose order follows string hashing: the fingerprint must not depend on
    it (two processes with different PYTHONHASHSEED give the same key), or caches are never found again."""
    import subprocess
    import sys

    code = ("from peft import LoraConfig, get_peft_model\n"
            "from lit_iwpo.models import tiny_llama\n"
            "from lit_iwpo.models.refcache import adapter_fingerprint\n"
            "import torch; torch.manual_seed(0)\n"
            "m = get_peft_model(tiny_llama(), LoraConfig(r=2, target_modules=['q_proj', 'k_proj', 'v_proj', 'o_proj']))\n"
            "print(adapter_fingerprint(m, 'default', 'base'))\n")
    keys = set()
    for seed in ("1", "2", "3"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                             env={**__import__("os").environ, "PYTHONHASHSEED": seed})
        assert out.returncode == 0, out.stderr[-2000:]
        keys.add(out.stdout.strip().splitlines()[-1])
    assert len(keys) == 1
