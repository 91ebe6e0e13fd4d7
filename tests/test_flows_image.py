"""Per-layer tests of the image layers (Glow, emerging convolutions) and the i-ResNet block:
what only each of them has. The shared contract is in test_flows_contract.py."""

import math
import warnings

import pytest
import torch

from flowcheck import autograd_jacobian, move_parameters

from course_utils.flows.emerging import EmergingConv, emerging_mask
from course_utils.flows.glow import (
    AdditiveCouplingImage,
    AffineCouplingImage,
    InvConv1x1,
    Squeeze,
    channel_mask,
    checkerboard_mask,
)
from course_utils.flows.iresnet import InvertibleResBlock, log_det_estimate



@torch.no_grad()
def perturb(layer, std=0.3):
    """Move every parameter, masked entries included, so masks and triangles are really tested."""
    for p in layer.parameters():
        p.add_(std * torch.randn_like(p))


# ---------------------------------------------------------------------------------- Squeeze
def test_squeeze_layout_and_round_trip(float64):
    x = torch.randn(2, 3, 4, 6)
    y, log_det = Squeeze()(x)
    assert y.shape == (2, 12, 2, 3)
    assert torch.equal(log_det, torch.zeros(2))
    for k in range(3):
        for a in range(2):
            for b in range(2):
                assert torch.equal(y[:, 4 * k + 2 * a + b], x[:, k, a::2, b::2])
    x_back, log_det_inv = Squeeze().inverse(y)
    assert torch.equal(x_back, x) and torch.equal(log_det_inv, torch.zeros(2))


def test_squeeze_errors():
    with pytest.raises(ValueError, match="Squeeze needs even height and width, got 7x8"):
        Squeeze()(torch.zeros(1, 1, 7, 8))
    with pytest.raises(ValueError, match=r"expected shape \(batch, channels, height, width\), got \(5, 4\)"):
        Squeeze()(torch.zeros(5, 4))
    with pytest.raises(ValueError, match="divisible by 4, got 3"):
        Squeeze().inverse(torch.zeros(1, 3, 2, 2))


# ----------------------------------------------------------------------- 1x1 convolution
@pytest.mark.parametrize("lu", [True, False])
def test_invconv_starts_orthogonal(float64, lu):
    W = InvConv1x1(5, lu=lu).matrix().detach()
    assert torch.allclose(W @ W.T, torch.eye(5), atol=1e-12)


def test_invconv_log_det_is_hw_log_abs_det_W(float64):
    """LU and plain agree with h*w*log|det W| from slogdet, even with every raw entry moved
    (the LU masks must keep L and U triangular for sum(log_s) to be right)."""
    lu_layer = InvConv1x1(4, lu=True)
    perturb(lu_layer)
    W = lu_layer.matrix().detach()
    plain = InvConv1x1(4, lu=False)
    with torch.no_grad():
        plain.weight.copy_(W)
    x = torch.randn(3, 4, 5, 6)
    expected = 5 * 6 * torch.linalg.slogdet(W).logabsdet
    for layer in (lu_layer, plain):
        with torch.no_grad():
            y, log_det = layer(x)
            x_back, log_det_inv = layer.inverse(y)
        assert torch.allclose(log_det, expected.expand(3), atol=1e-10)
        assert torch.allclose(log_det_inv, -log_det)
        assert torch.allclose(y, torch.einsum("oc,bchw->bohw", W, x), atol=1e-12)
        assert torch.allclose(x_back, x, atol=1e-10)


def test_invconv_float32_inverse_accurate():
    layer = InvConv1x1(8)
    perturb(layer, 0.1)
    x = torch.randn(4, 8, 8, 8)
    with torch.no_grad():
        x_back, _ = layer.inverse(layer(x)[0])
    assert (x_back - x).abs().max() < 1e-4


def test_invconv_wrong_channels():
    with pytest.raises(ValueError, match=r"expected shape \(batch, 3, height, width\), got \(2, 4, 4, 4\)"):
        InvConv1x1(3)(torch.zeros(2, 4, 4, 4))
    with pytest.raises(ValueError, match=r"got \(2, 3\)"):
        InvConv1x1(3).inverse(torch.zeros(2, 3))


# ---------------------------------------------------------------------------- couplings
def test_masks():
    m = checkerboard_mask(4, 5)
    assert m.shape == (4, 5) and m.sum() == 10 and m[0, 0] == 1 and m[0, 1] == 0
    assert torch.equal(checkerboard_mask(4, 5, parity=1), 1 - m)
    assert channel_mask(6).tolist() == [1, 1, 1, 0, 0, 0]
    assert torch.equal(channel_mask(6, parity=1), 1 - channel_mask(6))


@pytest.mark.parametrize("cls", [AffineCouplingImage, AdditiveCouplingImage])
@pytest.mark.parametrize("mask", ["checkerboard", "channel"])
@pytest.mark.parametrize("flip", [False, True])
def test_coupling_identity_at_start_and_masked_entries_unchanged(float64, cls, mask, flip):
    layer = cls(4, mask=mask, hidden=8, flip=flip)
    x = torch.randn(3, 4, 6, 6)
    y, log_det = layer(x)
    assert torch.equal(y, x) and torch.equal(log_det, torch.zeros(3))
    perturb(layer)
    with torch.no_grad():
        y, log_det = layer(x)
    if mask == "checkerboard":
        kept = checkerboard_mask(6, 6, int(flip)).bool().expand(3, 4, 6, 6)
    else:
        kept = channel_mask(4, int(flip)).bool().view(1, 4, 1, 1).expand(3, 4, 6, 6)
    assert torch.equal(y[kept], x[kept])
    assert (y[~kept] - x[~kept]).abs().min() > 0  # every other entry moved
    if cls is AdditiveCouplingImage:
        assert torch.equal(log_det, torch.zeros(3))
    else:
        assert log_det.abs().min() > 0


def test_affine_coupling_log_scale_is_bounded(float64):
    layer = AffineCouplingImage(2, hidden=8)
    with torch.no_grad():
        layer.conditioner[-1].weight.fill_(50.0)  # an absurd conditioner output
    x = torch.randn(2, 2, 4, 4)
    y, log_det = layer(x)
    assert torch.isfinite(y).all() and (log_det.abs() <= 16 * layer.log_bound.exp().max() + 1e-9).all()


def test_coupling_errors():
    with pytest.raises(ValueError, match=r"expected shape \(batch, 2, height, width\), got \(3, 3, 4, 4\)"):
        AffineCouplingImage(2)(torch.zeros(3, 3, 4, 4))
    with pytest.raises(ValueError, match="mask must be"):
        AdditiveCouplingImage(2, mask="stripes")


# -------------------------------------------------------------------------------- i-ResNet
def train_block(block, steps=40, lr=3e-2):
    """Maximum likelihood on skewed data with a large step size: moves the weights a lot."""
    opt = torch.optim.Adam(block.parameters(), lr=lr)
    worst = 0.0
    for _ in range(steps):
        x = torch.randn(64, block.features)
        x = 0.6 * x + 0.4 * x**2
        y, log_det = block(x)
        worst = max(worst, max(torch.linalg.matrix_norm(W.detach(), 2).item() for W in block.effective_weights()))
        loss = (0.5 * y.pow(2).sum(1) - log_det).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return worst


def test_iresnet_spectral_norm_bound(float64):
    block = InvertibleResBlock(3, hidden=16, lipschitz=0.7)
    norms = [torch.linalg.matrix_norm(W.detach(), 2).item() for W in block.effective_weights()]
    assert max(norms) <= 0.7 + 1e-9
    worst_while_training = train_block(block)
    assert worst_while_training <= 0.7 + 1e-9
    block.eval()
    norms = [torch.linalg.matrix_norm(W.detach(), 2).item() for W in block.effective_weights()]
    assert max(norms) <= 0.7 + 1e-9
    assert max(norms) > 0.7 - 1e-6  # training pushed the raw weights above the bound


def test_iresnet_power_iteration_bound_after_eval(float64):
    """The papers' power iteration: converged in eval mode, so the bound holds there too."""
    block = InvertibleResBlock(3, hidden=16, lipschitz=0.9, n_power_iterations=2)
    train_block(block)
    block.eval()
    for W in block.effective_weights():
        assert torch.linalg.matrix_norm(W.detach(), 2) <= 0.9 + 1e-6


def test_iresnet_eval_is_deterministic(float64):
    block = InvertibleResBlock(3, hidden=8, n_power_iterations=3)
    train_block(block, steps=3)
    block.eval()
    x = torch.randn(4, 3)
    assert torch.equal(block(x)[0], block(x)[0])


def test_iresnet_refuses_lipschitz_not_below_one():
    for c in (1.0, 1.2):
        with pytest.raises(ValueError, match=f"lipschitz must lie in \\(0, 1\\).*got {c}"):
            InvertibleResBlock(3, lipschitz=c)


def test_iresnet_inverse_converges_and_reports_non_convergence(float64):
    block = InvertibleResBlock(3, hidden=16, lipschitz=0.9).eval()
    perturb(block, 0.5)
    x = torch.randn(5, 3)
    with torch.no_grad():
        y, _ = block(x)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            x_back, _ = block.inverse(y)
    assert (x_back - x).abs().max() < 1e-8 and block.last_inverse_converged
    r = block.last_inverse_residuals
    assert len(r) == block.last_inverse_iterations and r[-1] < 1e-10 and r[-1] < r[0]
    short = InvertibleResBlock(3, hidden=16, lipschitz=0.9, inverse_max_iter=1).eval()
    short.load_state_dict(block.state_dict())
    with pytest.warns(RuntimeWarning, match="did not converge in 1 iterations"):
        short.inverse(y)
    assert not short.last_inverse_converged and short.last_inverse_iterations == 1


def exact_truncated_series(block, x, n_terms):
    """sum_{k<=n} (-1)^(k+1) tr(J^k)/k with J from autograd (independent of the estimators)."""
    out = []
    for xi in x:
        J = torch.autograd.functional.jacobian(lambda v: block.g(v.view(1, -1)).view(-1), xi)
        Jk, total = torch.eye(len(xi)), 0.0
        for k in range(1, n_terms + 1):
            Jk = Jk @ J
            total += (-1) ** (k + 1) * torch.trace(Jk).item() / k
        out.append(total)
    return torch.tensor(out)


@pytest.fixture
def trained_block(float64):
    block = InvertibleResBlock(3, hidden=16, lipschitz=0.9, log_det_method="series")
    train_block(block, steps=30)
    return block.eval()


def test_series_estimator_mean_matches_exact(trained_block):
    x = torch.randn(3, 3)
    exact = log_det_estimate(trained_block, x, "exact").detach()
    truncated = exact_truncated_series(trained_block, x, 12)
    assert (truncated - exact).abs().max() < 2e-3  # truncation bias after 12 terms is small
    draws = torch.stack([log_det_estimate(trained_block, x, "series", n_terms=12, n_samples=500).detach()
                         for _ in range(8)])  # 8 x 500 Hutchinson probes
    mean, se = draws.mean(0), draws.std(0) / math.sqrt(draws.shape[0])
    assert ((mean - truncated).abs() < 4 * se + 1e-3).all(), (mean, truncated, se)
    assert ((mean - exact).abs() < 4 * se + 3e-3).all()
    assert (exact - log_det_estimate(trained_block, x, "series", n_terms=1, n_samples=4000)).abs().max() > 0.02


def test_unbiased_estimator_within_three_standard_errors(trained_block):
    x = torch.randn(3, 3)
    exact = log_det_estimate(trained_block, x, "exact").detach()
    with torch.no_grad():
        draws = torch.stack([log_det_estimate(trained_block, x, "unbiased", n_samples=4) for _ in range(800)])
    mean, se = draws.mean(0), draws.std(0) / math.sqrt(draws.shape[0])
    assert ((mean - exact).abs() < 3 * se).all(), (mean, exact, se)


def test_estimators_give_gradients_in_training(float64):
    for method in ("series", "unbiased"):
        block = InvertibleResBlock(3, hidden=8, log_det_method=method)
        perturb(block, 0.3)
        y, log_det = block(torch.randn(5, 3))
        log_det.sum().backward()
        grads = [p.grad for p in block.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)
        assert any(g.abs().sum() > 0 for g in grads)


def test_iresnet_bad_input():
    with pytest.raises(ValueError, match=r"expected shape \(batch, 3\), got \(2, 4\)"):
        InvertibleResBlock(3)(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="log_det_method must be one of"):
        InvertibleResBlock(3, log_det_method="magic")


# ------------------------------------------------------------------ emerging convolutions
def raster_jacobian(layer, x):
    """Jacobian of one image (c, h, w), rows and columns in raster order (row, column, channel)."""
    c, h, w = x.shape
    J = autograd_jacobian(layer, x)  # in PyTorch's (channel, row, column) order
    perm = torch.arange(c * h * w).view(c, h, w).permute(1, 2, 0).reshape(-1)
    return J[perm][:, perm]


def test_emerging_masks_are_mirror_images():
    m1, m2 = emerging_mask(3, 3), emerging_mask(3, 3, flip=True)
    assert torch.equal(m2, m1.flip(0, 1, 2, 3))
    assert torch.equal(m1[:, :, 1, 1], torch.tril(torch.ones(3, 3)))
    assert m1[:, :, 2].sum() == 0 and m1[:, :, 1, 2].sum() == 0


def test_emerging_each_convolution_is_triangular_in_raster_order(float64):
    layer = EmergingConv(2, kernel_size=3)
    perturb(layer, 0.3)  # masked-out raw entries move too: the masks must zero them
    x = torch.randn(2, 4, 5)
    p = 1
    # Keep one convolution, make the other the identity: then the Jacobian is that convolution's.
    first_only, second_only = EmergingConv(2), EmergingConv(2)
    for single, keep in ((first_only, "1"), (second_only, "2")):
        single.load_state_dict(layer.state_dict())
        other = "2" if keep == "1" else "1"
        with torch.no_grad():
            getattr(single, "weight" + other).zero_()
            getattr(single, "weight" + other)[:, :, p, p] = torch.eye(2)
            getattr(single, "bias" + other).zero_()
    J1, J2 = raster_jacobian(first_only, x), raster_jacobian(second_only, x)
    assert torch.equal(J1, torch.tril(J1)) and (torch.tril(J1, -1) != 0).any()
    assert torch.equal(J2, torch.triu(J2)) and (torch.triu(J2, 1) != 0).any()
    centre1 = torch.diagonal(layer.weight1[:, :, p, p]).detach()
    assert torch.allclose(torch.diagonal(J1), centre1.repeat(4 * 5))
    # Composed, an output pixel reads its neighbours on every side, like an ordinary 3x3
    # convolution (each masked one alone sees only one half), and nothing beyond 2 pixels.
    x = torch.randn(2, 6, 6)
    J = autograd_jacobian(layer, x).view(2, 6, 6, 2, 6, 6)
    reach = J[:, 3, 3].abs().sum((0, 1)) != 0  # which input pixels output pixel (3, 3) reads
    assert reach[2:5, 2:5].all()
    assert not reach[0].any() and not reach[:, 0].any()


def test_emerging_inverse_is_exact(float64):
    layer = EmergingConv(3, kernel_size=3)
    perturb(layer, 0.1)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        y, log_det = layer(x)
        x_back, log_det_inv = layer.inverse(y)
    assert (x_back - x).abs().max() < 1e-10
    assert torch.equal(log_det_inv, -log_det)


def test_emerging_errors():
    with pytest.raises(ValueError, match=r"expected shape \(batch, 2, height, width\), got \(2, 3, 4, 4\)"):
        EmergingConv(2)(torch.zeros(2, 3, 4, 4))
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        EmergingConv(2, kernel_size=4)
