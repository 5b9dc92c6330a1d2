"""GRL and discriminators: the adversarial building blocks of Sim2SG, tested on their own."""

import math

import pytest
import torch

from sim2sg_core.adapt.discriminators import (
    SOURCE_LABEL,
    TARGET_LABEL,
    ConvDiscriminator,
    VectorDiscriminator,
    domain_accuracy,
    domain_bce,
)
from sim2sg_core.adapt.grl import GradientReversal, grad_reverse, grl_lambda


@pytest.mark.parametrize("lambd", [0.0, 0.3, 1.0, 2.5])
def test_grl_identity_forward_and_reversed_scaled_backward(lambd):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4, 5, requires_grad=True)
    w = torch.randn(2, 3, 4, 5)
    y = grad_reverse(x, lambd)
    assert torch.equal(y, x)  # forward: unchanged
    (y * w).sum().backward()
    assert torch.allclose(x.grad, -lambd * w)  # backward: d/dx = -lambda * w
    # without the GRL the gradient would be +w: the sign really flips
    x2 = x.detach().clone().requires_grad_(True)
    (x2 * w).sum().backward()
    assert torch.allclose(x2.grad, w)


def test_grl_module_uses_its_current_lambda():
    grl = GradientReversal(0.5)
    x = torch.ones(3, requires_grad=True)
    grl(x).sum().backward()
    assert torch.allclose(x.grad, torch.full((3,), -0.5))
    grl.lambd = 2.0
    x.grad = None
    grl(x).sum().backward()
    assert torch.allclose(x.grad, torch.full((3,), -2.0))


def test_grl_schedule_formula():
    assert grl_lambda(0.0) == 0.0
    for p in (0.1, 0.25, 0.5, 0.9):
        assert grl_lambda(p) == pytest.approx(2 / (1 + math.exp(-10 * p)) - 1)
    values = [grl_lambda(p / 20) for p in range(21)]
    assert all(b > a for a, b in zip(values, values[1:]))  # strictly increasing
    assert 0.999 < grl_lambda(1.0) < 1.0
    assert grl_lambda(2.0) == grl_lambda(1.0)  # progress is clamped


def _feature_batches(n, generator):
    """Two clearly different 'domains' of feature maps: same mean/variance, different texture."""
    src = torch.randn(n, 8, 6, 10, generator=generator)  # white noise
    tgt = torch.randn(n, 8, 1, 1, generator=generator).expand(n, 8, 6, 10)  # flat per-channel
    return src, tgt.contiguous()


def test_conv_discriminator_learns_to_separate_domains():
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    disc = ConvDiscriminator(in_channels=8, hidden_channels=16, num_layers=2)
    opt = torch.optim.Adam(disc.parameters(), lr=3e-3)
    src_val, tgt_val = _feature_batches(32, g)
    with torch.no_grad():
        before = domain_bce(disc(src_val)[1], SOURCE_LABEL) + domain_bce(disc(tgt_val)[1], TARGET_LABEL)
    for _ in range(120):
        src, tgt = _feature_batches(16, g)
        loss = disc.loss(src, SOURCE_LABEL) + disc.loss(tgt, TARGET_LABEL)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        pix_s, img_s = disc(src_val)
        pix_t, img_t = disc(tgt_val)
        after = domain_bce(img_s, SOURCE_LABEL) + domain_bce(img_t, TARGET_LABEL)
    assert pix_s.shape == (32, 1, 6, 10) and img_s.shape == (32,)
    assert after < 0.5 * before
    assert domain_accuracy(img_s, SOURCE_LABEL) > 0.95 and domain_accuracy(img_t, TARGET_LABEL) > 0.95
    assert domain_accuracy(pix_s, SOURCE_LABEL) > 0.9 and domain_accuracy(pix_t, TARGET_LABEL) > 0.9


def test_vector_discriminator_learns_to_separate_prediction_distributions():
    """Predicate distributions: peaked (confident) on source vs. flat (uncertain) on target."""
    g = torch.Generator().manual_seed(1)
    torch.manual_seed(1)
    disc = VectorDiscriminator(in_features=4, hidden_features=16)
    opt = torch.optim.Adam(disc.parameters(), lr=3e-3)

    def batch(n):
        peaked = torch.softmax(5 * torch.randn(n, 4, generator=g), dim=1)
        flat = torch.softmax(0.3 * torch.randn(n, 4, generator=g), dim=1)
        return peaked, flat

    for _ in range(200):
        s, t = batch(64)
        loss = disc.loss(s, SOURCE_LABEL) + disc.loss(t, TARGET_LABEL)
        opt.zero_grad()
        loss.backward()
        opt.step()
    s, t = batch(256)
    with torch.no_grad():
        assert domain_accuracy(disc(s), SOURCE_LABEL) > 0.9
        assert domain_accuracy(disc(t), TARGET_LABEL) > 0.9
    assert disc.loss(torch.zeros(0, 4), SOURCE_LABEL) is None
