"""course_utils.flows.models: the RealNVP builder, the NLL loss and the test NLL.

Numbers are checked against independent computations: the autograd Jacobian of the whole model
with ``slogdet``, a closed-form Gaussian, and numerical integration of the model's density.
"""

import math

import numpy as np
import pytest
from scipy import stats
import torch

from course_utils.flows import (ActNorm, AffineCoupling, DiagonalScaling, NormalizingFlow, Permutation,
                                held_out_nll, nll_loss, realnvp, standard_normal)
from course_utils.train import fit
from flowcheck import perturb


@pytest.mark.parametrize("mixing", ["flip", "reverse", "random"])
@pytest.mark.parametrize("actnorm", [False, True])
def test_structure(mixing, actnorm):
    model = realnvp(features=4, n_layers=3, hidden=8, actnorm=actnorm, mixing=mixing)
    assert isinstance(model, NormalizingFlow)
    layers = list(model.flow.layers)
    couplings = [l for l in layers if isinstance(l, AffineCoupling)]
    assert len(couplings) == 3
    assert sum(isinstance(l, ActNorm) for l in layers) == (3 if actnorm else 0)
    assert sum(isinstance(l, Permutation) for l in layers) == (0 if mixing == "flip" else 2)
    if mixing == "flip":
        assert [c.flip for c in couplings] == [False, True, False]
    assert all(c.conditioner[0].out_features == 8 for c in couplings)


def test_every_feature_is_transformed():
    """With alternating halves, each output depends on each input (a dense Jacobian), so no
    feature is left untouched: every coordinate gets transformed by some coupling."""
    for mixing in ("flip", "reverse"):
        model = perturb(realnvp(features=2, n_layers=2, hidden=8, mixing=mixing)).double()
        J = torch.autograd.functional.jacobian(lambda v: model(v[None])[0][0], torch.tensor([0.3, -0.7],
                                               dtype=torch.float64))
        assert (J.abs() > 1e-6).all(), (mixing, J)


def test_starts_as_the_base_density():
    model = realnvp(features=3, n_layers=4, hidden=8)
    x = torch.randn(6, 3)
    expected = torch.distributions.MultivariateNormal(torch.zeros(3), torch.eye(3)).log_prob(x)
    assert torch.allclose(model.log_prob(x), expected, atol=1e-6)


@pytest.mark.parametrize("mixing,actnorm", [("flip", False), ("random", True)])
def test_log_prob_matches_autograd_and_inverse(mixing, actnorm, float64):
    model = realnvp(features=3, n_layers=4, hidden=8, mixing=mixing, actnorm=actnorm)
    model(torch.randn(64, 3))                       # ActNorm's data-dependent initialisation
    perturb(model).eval()
    x = torch.randn(5, 3)
    z, log_det = model(x)
    for xi, ld in zip(x, log_det):
        J = torch.autograd.functional.jacobian(lambda v: model(v[None])[0][0], xi)
        assert torch.isclose(torch.linalg.slogdet(J).logabsdet, ld, atol=1e-9)
    log_pz = -0.5 * (z**2).sum(1) - 1.5 * math.log(2 * math.pi)
    assert torch.allclose(model.log_prob(x), log_pz + log_det)
    x_back, ld_inv = model.inverse(z)
    assert torch.allclose(x_back, x, atol=1e-9) and torch.allclose(ld_inv, -log_det)


def test_density_integrates_to_one(float64):
    model = perturb(realnvp(features=2, n_layers=4, hidden=8), std=0.2).eval()
    g = torch.linspace(-8, 8, 801)
    grid = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    with torch.no_grad():
        mass = model.log_prob(grid).exp().sum() * (g[1] - g[0]) ** 2
    assert abs(mass.item() - 1) < 1e-3


def _scaled_gaussian_model(log_s):
    """N(0, diag(exp(-2 log_s))) as a flow: one DiagonalScaling y = x exp(log_s), N(0, I) base."""
    layer = DiagonalScaling(len(log_s))
    with torch.no_grad():
        layer.log_s.copy_(torch.as_tensor(log_s))
    return NormalizingFlow([layer], standard_normal(len(log_s)))


def test_nll_loss_and_held_out_nll_against_scipy():
    log_s = [math.log(2.0), -0.5]
    model = _scaled_gaussian_model(log_s)
    x = torch.randn(100, 2, dtype=torch.float32) * 3
    scales = np.exp(-np.array(log_s))            # the model's standard deviations
    expected = -stats.norm.logpdf(x.double().numpy(), scale=scales).sum(1).mean()
    assert nll_loss(model, x).item() == pytest.approx(expected, abs=1e-4)
    model.train()
    assert held_out_nll(model, x, chunk=7) == pytest.approx(expected, abs=1e-4)
    assert model.training, "held_out_nll must restore the training mode"
    with pytest.raises(ValueError, match="at least one sample"):
        held_out_nll(model, torch.zeros(0, 2))


def test_fit_learns_a_gaussian():
    """A short fit on N(mu, diag(s^2)) gets close to its entropy (the floor), in nats."""
    torch.manual_seed(0)
    mu, s = torch.tensor([1.0, -2.0]), torch.tensor([0.5, 2.0])
    entropy = (0.5 * math.log(2 * math.pi * math.e) * 2 + torch.log(s).sum()).item()
    model = realnvp(features=2, n_layers=2, hidden=16, actnorm=True)
    fit(model, nll_loss, lambda: mu + s * torch.randn(256, 2), 300, lr=1e-2, progress=False, device="cpu")
    gap = held_out_nll(model, mu + s * torch.randn(20_000, 2)) - entropy
    assert -0.03 < gap < 0.03, gap


@pytest.mark.parametrize("kwargs,match", [({"features": 1}, "features >= 2"), ({"n_layers": 0}, "at least one"),
                                          ({"mixing": "shuffle"}, "mixing must be")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        realnvp(**kwargs)
