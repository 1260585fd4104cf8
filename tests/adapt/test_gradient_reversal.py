"""Gradient reversal: identity forward, the gradient's sign flipped (and scaled) backward; the ramp; the adversary."""
import math

import pytest
import torch

from kgemo.adapt import DomainAdversary, GradientReversal, grad_reverse, grl_coefficient


def test_forward_is_identity_and_backward_flips_the_sign():
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = grad_reverse(x, 0.5)
    assert torch.equal(y, x)
    (y * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert torch.equal(x.grad, torch.tensor([-0.5, -1.0, -1.5]))      # −λ · ∂L/∂y


def test_module_reverses_only_what_is_behind_it():
    w = torch.tensor([2.0], requires_grad=True)
    layer = GradientReversal(1.0)
    h = w * 3.0                    # feature extractor
    d = layer(h) * 4.0             # discriminator (its own weight 4 gets the normal gradient)
    d.sum().backward()
    assert torch.equal(w.grad, torch.tensor([-12.0]))                   # −(4 · 3)
    assert repr(layer) == "GradientReversal(coeff=1)"


def test_ramp():
    assert grl_coefficient(0.0) == 0.0
    assert grl_coefficient(0.5) == pytest.approx(2 / (1 + math.exp(-5)) - 1)
    assert grl_coefficient(1.0) == pytest.approx(0.99990920)
    assert grl_coefficient(0.3, gamma=0) == 1.0


@pytest.mark.parametrize("conditioning", ["none", "cdan", "cdan_e"])
def test_adversary_trains_discriminator_and_reverses_into_features(conditioning):
    torch.manual_seed(0)
    adv = DomainAdversary(4, 8, num_classes=3, conditioning=conditioning, dropout=0.0)
    h = torch.randn(6, 4, requires_grad=True)
    probs = torch.softmax(torch.randn(6, 3), -1)
    domain = torch.tensor([0, 0, 0, 0, 1, 1])
    adv.loss(h, domain, probs, coeff=1.0).backward()
    g_reversed = h.grad.clone()
    # the same loss without reversal: the features' gradient is exactly the negative
    h.grad = None
    adv.zero_grad()
    z = h if conditioning == "none" else (probs.unsqueeze(2) * h.unsqueeze(1)).flatten(1)
    logits = adv.mlp(z).squeeze(-1)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, domain.float(), reduction="none")
    w = torch.ones(6) if conditioning != "cdan_e" else 1 + torch.exp((probs * probs.log()).sum(-1))
    plain = sum(0.5 * (w[domain == d] * bce[domain == d]).sum() / w[domain == d].sum() for d in (0, 1))
    plain.backward()
    assert torch.allclose(g_reversed, -h.grad, atol=1e-6)


def test_each_domain_weighs_one_half():
    adv = DomainAdversary(2, 4, dropout=0.0)
    for p in adv.parameters():
        torch.nn.init.zeros_(p)        # logit 0 everywhere: BCE = log 2 per sample
    h, domain = torch.zeros(5, 2), torch.tensor([0, 0, 0, 0, 1])
    assert adv.loss(h, domain).item() == pytest.approx(math.log(2))
    assert adv.loss(h[:4], domain[:4]).item() == pytest.approx(0.5 * math.log(2))   # one domain only: its half


def test_conditioning_needs_probabilities():
    with pytest.raises(ValueError, match="num_classes"):
        DomainAdversary(4, conditioning="cdan")
    with pytest.raises(ValueError, match="probabilities"):
        DomainAdversary(4, num_classes=2, conditioning="cdan")(torch.zeros(1, 4))
