"""NICE builder, the gap report and the time-budget cosine schedule, against independent computations."""

import math

import pytest
from scipy import stats
import torch

from course_utils.data import toy_density
from course_utils.flows import (AdditiveCoupling, DiagonalScaling, NormalizingFlow, realnvp, standard_normal)
from course_utils.flows import GapReport, gap_report, nice
from flowcheck import autograd_jacobian


def test_nice_layout_and_identity_start():
    model = nice(features=3, n_layers=4, hidden=8)
    layers = list(model.flow)
    assert [type(layer) for layer in layers] == [AdditiveCoupling] * 4 + [DiagonalScaling]
    assert [layer.flip for layer in layers[:4]] == [False, True, False, True]
    x = torch.randn(6, 3)
    assert torch.allclose(model.log_prob(x), standard_normal(3).log_prob(x))


def test_nice_log_det_is_constant_and_equals_the_scaling():
    torch.manual_seed(0)
    model = nice(features=2, n_layers=4, hidden=16).double()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.4 * torch.randn_like(p))
    expected = model.flow[-1].log_s.sum()
    for xi in torch.randn(5, 2, dtype=torch.float64):
        J = autograd_jacobian(model.flow, xi)
        assert torch.linalg.slogdet(J).logabsdet.item() == pytest.approx(expected.item(), abs=1e-10)
    z, log_det = model(torch.randn(5, 2, dtype=torch.float64))
    assert torch.allclose(log_det, expected.expand(5))


def test_nice_rejects_bad_arguments():
    with pytest.raises(ValueError, match="features >= 2"):
        nice(features=1)
    with pytest.raises(ValueError, match="at least one"):
        nice(n_layers=0)


class Gaussian2D:
    """N(0, s^2 I) with exact log_prob, standing in for a toy density."""

    def __init__(self, s):
        self.s = s

    def sample(self, shape):
        return self.s * torch.randn(*shape, 2)

    def log_prob(self, x):
        return -0.5 * (x**2).sum(-1) / self.s**2 - math.log(2 * math.pi * self.s**2)


def test_gap_is_zero_for_the_true_density():
    torch.manual_seed(0)
    model = NormalizingFlow([], standard_normal(2))
    report = gap_report(model, Gaussian2D(1.0), n=5000)
    assert isinstance(report, GapReport) and report.n == 5000
    assert report.gap == pytest.approx(0.0, abs=1e-6) and report.nll == pytest.approx(report.entropy, abs=1e-6)
    assert report.entropy == pytest.approx(math.log(2 * math.pi * math.e), abs=0.05)


def test_gap_is_the_kl_divergence():
    # Model N(0, I) for data N(0, s^2 I): KL(p || q) = s^2 - 1 - 2 log s in 2-D.
    torch.manual_seed(1)
    s = 1.5
    report = gap_report(NormalizingFlow([], standard_normal(2)), Gaussian2D(s), n=200_000)
    assert report.gap == pytest.approx(s**2 - 1 - 2 * math.log(s), abs=4 * report.gap_se)
    assert report.nll - report.entropy == pytest.approx(report.gap, abs=1e-9)
    assert "gap" in str(report) and "nats" in str(report)


def test_gap_report_on_given_samples_against_scipy():
    """On given samples the report is the sample means of the two log-densities, here both in
    closed form: data N(0, 1.5^2 I), model N(0, diag(0.5^2, 2^2))."""
    torch.manual_seed(2)
    layer = DiagonalScaling(2)
    with torch.no_grad():
        layer.log_s.copy_(torch.tensor([math.log(2.0), math.log(0.5)]))
    model = NormalizingFlow([layer], standard_normal(2))
    model.train()
    density = Gaussian2D(1.5)
    x = density.sample((1000,))
    report = gap_report(model, density, x=x)
    assert model.training and report.n == 1000
    xn = x.double().numpy()
    nll = -stats.norm.logpdf(xn, scale=[0.5, 2.0]).sum(1).mean()
    entropy = -stats.norm.logpdf(xn, scale=1.5).sum(1).mean()
    assert report.nll == pytest.approx(nll, abs=1e-4)
    assert report.entropy == pytest.approx(entropy, abs=1e-6)
