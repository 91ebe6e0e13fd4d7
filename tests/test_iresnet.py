"""i-ResNet additions used by notebook 08: the exact Jacobian, the activations' derivatives,
the Lipschitz bound, Rademacher probes and ``using_log_det``. Checked against autograd and
Monte Carlo, never against the code under test."""

import math

import pytest
import torch

from flowcheck import perturb

from course_utils.flows import NormalizingFlow, standard_normal
from course_utils.flows.iresnet import (ELUWithDerivative, InvertibleResBlock, LipSwish, SpectralNormLinear,
                                        hutchinson_probes, log_det_estimate, using_log_det)


@pytest.mark.parametrize("activation", ["lipswish", "elu"])
def test_jacobian_matches_autograd(float64, activation):
    block = InvertibleResBlock(3, hidden=8, activation=activation)
    perturb(block, 0.5)
    x = torch.randn(6, 3)
    expected = torch.stack([torch.autograd.functional.jacobian(lambda v: block.g(v[None])[0], xi) for xi in x])
    assert torch.allclose(block.jacobian(x), expected, atol=1e-12)
    # and the exact log-det is slogdet(I + J) of that Jacobian
    assert torch.allclose(log_det_estimate(block, x, "exact"),
                          torch.linalg.slogdet(torch.eye(3) + expected).logabsdet, atol=1e-12)


@pytest.mark.parametrize("act", [LipSwish(), LipSwish(beta=4.0), ELUWithDerivative()])
def test_activation_derivatives_match_autograd(float64, act):
    act = act.double()
    h = torch.linspace(-6, 6, 241, requires_grad=True)
    (slope,) = torch.autograd.grad(act(h).sum(), h)
    value, derivative = act.value_and_derivative(h)
    assert torch.allclose(value, act(h)) and torch.allclose(derivative, slope, atol=1e-12)
    assert torch.allclose(act.derivative(h), slope, atol=1e-12)
    assert slope.abs().max() <= 1.0


def test_lipschitz_bound_bounds_every_jacobian(float64):
    block = InvertibleResBlock(2, hidden=16, lipschitz=0.9)
    perturb(block, 1.0)
    bound = block.lipschitz_bound()
    assert bound <= 0.9**3 + 1e-12
    norms = torch.linalg.matrix_norm(block.jacobian(torch.randn(500, 2) * 3), 2)
    assert norms.max() <= bound + 1e-12
    # and the bound is the product of the exact spectral norms
    assert math.isclose(bound, math.prod(torch.linalg.svdvals(W.detach())[0].item() for W in block.effective_weights()))


def test_spectral_norm_linear_forward(float64):
    layer = SpectralNormLinear(3, 4, coeff=0.5)
    x = torch.randn(5, 3)
    assert torch.allclose(layer(x), x @ layer.effective_weight().T + layer.bias)


def test_rademacher_probes():
    torch.manual_seed(0)
    v = hutchinson_probes(torch.zeros(200_000, 3), "rademacher")
    assert set(v.unique().tolist()) == {-1.0, 1.0}
    cov = v.T @ v / len(v)
    assert torch.allclose(cov, torch.eye(3), atol=0.01)
    with pytest.raises(ValueError, match="probe must be one of"):
        hutchinson_probes(torch.zeros(2, 2), "uniform")
    with pytest.raises(ValueError, match="probe must be one of"):
        InvertibleResBlock(2, probe="uniform")


def test_rademacher_series_is_unbiased_and_less_noisy(float64):
    """Mean over probes = the truncated series (from autograd Jacobians); variance below Gaussian's."""
    block = InvertibleResBlock(2, hidden=16, lipschitz=0.9, log_det_method="series", series_terms=6)
    perturb(block, 1.0)
    block.eval()
    x = torch.randn(3, 2)
    J = torch.stack([torch.autograd.functional.jacobian(lambda v: block.g(v[None])[0], xi) for xi in x])
    Jk, truncated = torch.eye(2).expand_as(J), torch.zeros(3)
    for k in range(1, 7):
        Jk = Jk @ J
        truncated = truncated + (-1) ** (k + 1) * Jk.diagonal(dim1=1, dim2=2).sum(1) / k
    spread = {}
    for probe in ("gaussian", "rademacher"):
        block.probe = probe
        # rows are independent draws (each row gets its own probe): one call for all 2000 of them
        draws = log_det_estimate(block, x.repeat(2000, 1), "series", n_samples=1).view(2000, 3)
        se = draws.std(0) / math.sqrt(len(draws))
        assert ((draws.mean(0) - truncated).abs() < 4 * se + 1e-9).all(), (probe, draws.mean(0), truncated)
        spread[probe] = draws.std(0)
    assert (spread["rademacher"] <= spread["gaussian"]).all()


def test_using_log_det_sets_and_restores():
    blocks = [InvertibleResBlock(2, hidden=4, log_det_method=m) for m in ("unbiased", "series")]
    model = NormalizingFlow(blocks, standard_normal(2))
    with using_log_det(model, "exact"):
        assert [b.log_det_method for b in blocks] == ["exact", "exact"]
    assert [b.log_det_method for b in blocks] == ["unbiased", "series"]
    with pytest.raises(RuntimeError):
        with using_log_det(model, "exact"):
            raise RuntimeError("boom")
    assert [b.log_det_method for b in blocks] == ["unbiased", "series"]
    with pytest.raises(ValueError, match="method must be one of"):
        with using_log_det(model, "magic"):
            pass
