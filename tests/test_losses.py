"""DPO-family losses against values worked by hand (each docstring shows the arithmetic)."""

import math

import pytest
import torch

from lit_iwpo.losses import dpo_logit_gap, dpo_loss, implicit_reward, sft_loss, weighted_mean

T = torch.tensor


def test_logit_gap():
    """h = (πc − πr) − (rc − rr) = (−1 + 2) − (−1.5 + 1.5) = 1."""
    assert dpo_logit_gap(T([-1.0]), T([-2.0]), T([-1.5]), T([-1.5])).item() == pytest.approx(1.0)


def test_sigmoid_dpo_by_hand():
    """h = 1, β = 0.1: ℓ = −log σ(0.1) = log(1 + e^{−0.1}) = 0.644397; h = −2: log(1 + e^{0.2}) = 0.798139."""
    loss = dpo_loss(T([-1.0, -3.0]), T([-2.0, -1.0]), T([-1.5, -2.0]), T([-1.5, -2.0]), beta=0.1)
    assert loss.shape == (2,)
    assert loss[0].item() == pytest.approx(math.log1p(math.exp(-0.1)), abs=1e-6)
    assert loss[0].item() == pytest.approx(0.644397, abs=1e-6)
    assert loss[1].item() == pytest.approx(0.798139, abs=1e-6)


def test_zero_gap_is_log2():
    """Policy == reference ⇒ h = 0 ⇒ ℓ = −log σ(0) = log 2, whatever β."""
    for beta in (0.01, 0.1, 1.0):
        loss = dpo_loss(T([-5.0]), T([-7.0]), T([-5.0]), T([-7.0]), beta=beta)
        assert loss.item() == pytest.approx(math.log(2), abs=1e-7)


def test_cdpo_label_smoothing_by_hand():
    """ε = 0.2, βh = 0.1: 0.8·log(1+e^{−0.1}) + 0.2·log(1+e^{0.1}) = 0.8·0.644397 + 0.2·0.744397 = 0.664397."""
    loss = dpo_loss(T([-1.0]), T([-2.0]), T([-1.5]), T([-1.5]), beta=0.1, label_smoothing=0.2)
    assert loss.item() == pytest.approx(0.664397, abs=1e-6)


def test_ipo_by_hand():
    """IPO: (h − 1/(2β))² with h = 1, β = 0.1: (1 − 5)² = 16; β = 0.5: (1 − 1)² = 0."""
    args = (T([-1.0]), T([-2.0]), T([-1.5]), T([-1.5]))
    assert dpo_loss(*args, beta=0.1, loss_type="ipo").item() == pytest.approx(16.0)
    assert dpo_loss(*args, beta=0.5, loss_type="ipo").item() == pytest.approx(0.0)


def test_gradient_pushes_chosen_up():
    """∂ℓ/∂πc = −β σ(−βh) < 0 and ∂ℓ/∂πr = +β σ(−βh): at h = 0, ∓β/2."""
    pc, pr = T([-3.0], requires_grad=True), T([-4.0], requires_grad=True)
    dpo_loss(pc, pr, T([-3.0]), T([-4.0]), beta=0.2).sum().backward()
    assert pc.grad.item() == pytest.approx(-0.1)
    assert pr.grad.item() == pytest.approx(0.1)


def test_implicit_reward_and_sft():
    """r = β(π − π_ref) = 0.1·(−2 + 4) = 0.2; SFT: −(−6)/3 = 2 averaged, 6 summed."""
    assert implicit_reward(T([-2.0]), T([-4.0]), 0.1).item() == pytest.approx(0.2)
    assert sft_loss(T([-6.0]), T([3])).item() == pytest.approx(2.0)
    assert sft_loss(T([-6.0])).item() == pytest.approx(6.0)


def test_weighted_mean_detaches_weights():
    """mean(w·ℓ) = (2·1 + 0·3)/2 = 1; weights get no gradient."""
    losses = T([1.0, 3.0], requires_grad=True)
    w = T([2.0, 0.0], requires_grad=True)
    out = weighted_mean(losses, w)
    out.backward()
    assert out.item() == pytest.approx(1.0)
    assert w.grad is None and losses.grad.tolist() == [1.0, 0.0]


@pytest.mark.parametrize("kwargs", [dict(loss_type="kto"), dict(beta=0.0), dict(label_smoothing=0.5),
                                    dict(label_smoothing=0.7), dict(label_smoothing=-0.1),
                                    dict(loss_type="ipo", label_smoothing=0.1)])
def test_bad_settings_raise(kwargs):
    with pytest.raises(ValueError):
        dpo_loss(T([0.0]), T([0.0]), T([0.0]), T([0.0]), **kwargs)
    from lit_iwpo.objectives import DPO

    with pytest.raises(ValueError, match=r"^objective\.(loss_type|beta|label_smoothing)"):  # at construction
        DPO(**kwargs)
