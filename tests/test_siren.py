"""Tests of course_utils.siren: SIREN's initialisation and activation statistics, the derivative
helpers against finite differences and analytic functions, PSNR, and the baselines' layout."""

import math

import pytest
import torch
from torch import nn

from course_utils import siren
from course_utils.data import get_mgrid


def _linears(model):
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


# ----------------------------------------------------------------------------------------------
# Layout and initialisation
# ----------------------------------------------------------------------------------------------


def test_layout_matches_the_official_code():
    net = siren.Siren(2, 256, 3, 1)
    linears = _linears(net)
    assert len(linears) == 5
    assert [(m.in_features, m.out_features) for m in linears] == [(2, 256)] + [(256, 256)] * 3 + [(256, 1)]
    assert isinstance(net.net[-1], nn.Linear) and not isinstance(net.net[-1], siren.SineLayer)
    sine_last = siren.Siren(2, 32, 1, 3, outermost_linear=False)
    assert isinstance(sine_last.net[-1], siren.SineLayer)
    assert sine_last(torch.zeros(4, 2)).abs().max() <= 1.0
    with pytest.raises(ValueError, match="hidden_layers"):
        siren.Siren(2, 8, -1, 1)


def test_sine_layer_computes_sin_of_omega_times_affine_map():
    torch.manual_seed(0)
    layer = siren.SineLayer(3, 5, omega_0=7.0)
    x = torch.randn(4, 3)
    expected = torch.sin(7.0 * (x @ layer.linear.weight.T + layer.linear.bias))
    torch.testing.assert_close(layer(x), expected)
    y, z = layer.forward_with_preactivation(x)
    torch.testing.assert_close(y, expected)
    torch.testing.assert_close(z, 7.0 * layer.linear(x))


@pytest.mark.parametrize("fan_in,fan_out,omega_0,is_first", [
    (2, 4096, 30.0, True), (1, 4096, 3000.0, True), (256, 256, 30.0, False),
    (64, 512, 10.0, False), (512, 64, 30.0, False),
])
def test_initialisation_bounds(fan_in, fan_out, omega_0, is_first):
    torch.manual_seed(1)
    layer = siren.SineLayer(fan_in, fan_out, is_first=is_first, omega_0=omega_0)
    w = layer.linear.weight.detach()
    c = 1.0 / fan_in if is_first else math.sqrt(6.0 / fan_in) / omega_0
    assert siren.siren_init_bound(fan_in, omega_0, is_first) == pytest.approx(c)
    assert w.abs().max() <= c
    assert w.abs().max() >= 0.99 * c                       # the whole interval is used
    assert w.std().item() == pytest.approx(c / math.sqrt(3), rel=0.03)  # uniform, not normal
    assert abs(w.mean().item()) < 0.02 * c


def test_final_linear_layer_uses_the_hidden_bound():
    torch.manual_seed(2)
    net = siren.Siren(2, 400, 1, 300, hidden_omega_0=30.0)
    w = net.net[-1].weight.detach()
    c = math.sqrt(6.0 / 400) / 30.0
    assert w.abs().max() <= c and w.abs().max() >= 0.99 * c


def test_default_init_restores_pytorch_bounds():
    torch.manual_seed(3)
    net = siren.default_init_(siren.Siren(2, 256, 2, 1))
    for m in _linears(net):
        assert m.weight.abs().max() >= 0.95 / math.sqrt(m.in_features)
        assert m.weight.abs().max() <= 1.0 / math.sqrt(m.in_features)


def _ks_normal(z):
    z = z.flatten().double().sort().values
    cdf = 0.5 * (1 + torch.erf(z / math.sqrt(2)))
    emp = torch.arange(1, len(z) + 1, dtype=torch.float64) / len(z)
    return (emp - cdf).abs().max().item()


def _ks_arcsine(a):
    a = a.flatten().double().sort().values
    cdf = 0.5 + torch.asin(a.clamp(-1, 1)) / math.pi
    emp = torch.arange(1, len(a) + 1, dtype=torch.float64) / len(a)
    return (emp - cdf).abs().max().item()


def test_activation_statistics_predicted_by_the_paper():
    """Wide, deep, random SIREN on uniform inputs: deep pre-activations stay close to N(0, 1) and
    every sine layer's output is close to arcsine-distributed (KS distances), layer after layer."""
    torch.manual_seed(0)
    net = siren.Siren(2, 1024, 6, 1)
    x = torch.rand(512, 2) * 2 - 1
    with torch.no_grad():
        _, records = net.forward_with_activations(x)
    assert len(records) == 7
    first_z, first_y = records[0]
    assert first_z.std() > 5          # omega_0 = 30 spreads the first layer over many periods
    assert _ks_arcsine(first_y) < 0.01
    for depth, (z, y) in enumerate(records[1:], start=2):
        assert 0.85 < z.std().item() < 1.25, f"layer {depth}: pre-activation std {z.std():.3f}"
        assert abs(z.mean().item()) < 0.1
        assert _ks_normal(z) < 0.06, f"layer {depth}: far from N(0, 1)"
        assert _ks_arcsine(y) < 0.06, f"layer {depth}: far from arcsine"
        assert abs(y.var().item() - 0.5) < 0.07    # the arcsine law on [-1, 1] has variance 1/2


def test_default_initialisation_breaks_the_statistics():
    torch.manual_seed(0)
    net = siren.default_init_(siren.Siren(2, 1024, 3, 1))
    with torch.no_grad():
        _, records = net.forward_with_activations(torch.rand(512, 2) * 2 - 1)
    for z, _ in records[1:]:
        assert z.std() > 5 and _ks_normal(z) > 0.3


# ----------------------------------------------------------------------------------------------
# Derivatives
# ----------------------------------------------------------------------------------------------


def _analytic(x):
    """f = x1^3 x2 + sin(2 x2) + exp(x1) x3, with its gradient and Laplacian."""
    x1, x2, x3 = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    f = x1**3 * x2 + torch.sin(2 * x2) + torch.exp(x1) * x3
    grad = torch.cat([3 * x1**2 * x2 + torch.exp(x1) * x3, x1**3 + 2 * torch.cos(2 * x2), torch.exp(x1)], dim=1)
    lap = 6 * x1 * x2 - 4 * torch.sin(2 * x2) + torch.exp(x1) * x3
    return f, grad, lap


def test_gradient_and_laplacian_of_an_analytic_function():
    x = torch.randn(50, 3, dtype=torch.float64, requires_grad=True)
    f, grad, lap = _analytic(x)
    torch.testing.assert_close(siren.gradient(f, x), grad)
    torch.testing.assert_close(siren.laplacian(f, x), lap)
    assert siren.laplacian(f, x).shape == (50, 1)


def test_divergence_of_a_vector_field():
    x = torch.randn(20, 2, dtype=torch.float64, requires_grad=True)
    v = torch.stack([x[:, 0] ** 2 * x[:, 1], torch.sin(x[:, 1])], dim=1)
    torch.testing.assert_close(siren.divergence(v, x), (2 * x[:, 0] * x[:, 1] + torch.cos(x[:, 1]))[:, None])
    with pytest.raises(ValueError, match="same last dimension"):
        siren.divergence(v[:, :1], x)


def test_derivatives_of_a_siren_against_finite_differences():
    torch.manual_seed(0)
    net = siren.Siren(2, 64, 2, 1).double()
    x0 = (torch.rand(16, 2, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    grad = siren.gradient(net(x0), x0).detach()
    lap = siren.laplacian(net(x0), x0).detach()
    h = 1e-4
    fd_grad, fd_lap = torch.zeros_like(grad), torch.zeros_like(lap)
    with torch.no_grad():
        x = x0.detach()
        centre = net(x)
        for i in range(2):
            e = torch.zeros(2, dtype=torch.float64)
            e[i] = h
            plus, minus = net(x + e), net(x - e)
            fd_grad[:, i] = ((plus - minus) / (2 * h))[:, 0]
            fd_lap += (plus - 2 * centre + minus) / h**2
    torch.testing.assert_close(grad, fd_grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(lap, fd_lap, rtol=1e-3, atol=1e-2 * lap.abs().max().item())


def test_laplacian_is_differentiable_inside_a_loss():
    torch.manual_seed(0)
    net = siren.Siren(2, 16, 1, 1).double()
    x = torch.rand(8, 2, dtype=torch.float64, requires_grad=True)
    loss = siren.laplacian(net(x), x).pow(2).mean()
    loss.backward()
    # every weight matters (the last bias is a constant, whose Laplacian is 0)
    for m in _linears(net):
        assert m.weight.grad is not None and torch.isfinite(m.weight.grad).all() and m.weight.grad.abs().sum() > 0
    assert siren.laplacian(net(x), x, create_graph=False).requires_grad is False


def test_gradient_needs_inputs_that_require_grad():
    x = torch.rand(3, 2)
    with pytest.raises(ValueError, match="requires_grad"):
        siren.gradient(x.sum(-1, keepdim=True), x)


def test_image_gradient_matches_the_network_coordinate_convention():
    size = 33
    coords = get_mgrid(size, 2).double()
    a, b = 0.7, -1.3
    image = (a * coords[:, 0] ** 2 + b * coords[:, 1]).reshape(size, size)
    g = siren.image_gradient(image)
    exact = torch.stack([2 * a * coords[:, 0], torch.full_like(coords[:, 0], b)], dim=1)
    interior = (coords.abs() < 0.99).all(dim=1)
    torch.testing.assert_close(g[interior], exact[interior])        # central differences: exact
    assert (g - exact).abs().max() <= 2 * a * (2 / (size - 1)) + 1e-12   # one-sided at the border


def test_image_laplacian_of_a_quadratic():
    size = 41
    coords = get_mgrid(size, 2).double()
    image = (0.5 * coords[:, 0] ** 2 - 1.5 * coords[:, 1] ** 2 + coords[:, 0] * coords[:, 1]).reshape(size, size)
    lap = siren.image_laplacian(image)
    assert lap.shape == (size * size, 1)
    # two cells from the border, central differences only (the float32 grid costs ~1e-5)
    deep_inside = (coords.abs() < 0.9).all(dim=1)
    torch.testing.assert_close(lap[deep_inside], torch.full_like(lap[deep_inside], 1.0 - 3.0), atol=1e-4, rtol=0)


# ----------------------------------------------------------------------------------------------
# PSNR and baselines
# ----------------------------------------------------------------------------------------------


def test_psnr():
    target = torch.linspace(-1, 1, 100)
    noisy = target + 0.1 * torch.tensor([1.0, -1.0]).repeat(50)   # MSE exactly 0.01
    assert siren.psnr(noisy, target) == pytest.approx(10 * math.log10(4 / 0.01))
    assert siren.psnr(noisy, target, data_range=1.0) == pytest.approx(20.0)
    assert siren.psnr(target, target) == math.inf
    with pytest.raises(ValueError, match="same shape"):
        siren.psnr(target, target[:10])


def test_positional_encoding_and_relu_baseline():
    enc = siren.PositionalEncoding(2, 4)
    x = torch.rand(6, 2) * 2 - 1
    out = enc(x)
    assert out.shape == (6, enc.out_features) == (6, 18)
    torch.testing.assert_close(out[:, :2], x)
    torch.testing.assert_close(out[:, 2:], enc(x + 2.0)[:, 2:], atol=1e-5, rtol=0)  # period 2
    # features: x, then sin(2^k pi x_d) at 2 + d K + k, then the cosines
    torch.testing.assert_close(out[:, 2 + 4 + 3], torch.sin(math.pi * 8 * x[:, 1]), atol=1e-5, rtol=0)
    torch.testing.assert_close(out[:, 2 + 8 + 1], torch.cos(math.pi * 2 * x[:, 0]), atol=1e-5, rtol=0)
    mlp = siren.relu_mlp(2, 32, 3, 1, num_frequencies=4)
    assert isinstance(mlp[0], siren.PositionalEncoding) and mlp[1].in_features == 18
    assert len(_linears(mlp)) == 5 and mlp(x).shape == (6, 1)
