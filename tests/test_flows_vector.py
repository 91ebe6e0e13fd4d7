"""Per-layer tests of the vector flow layers: what only each layer has.

The shared contract (inverse, log-det against slogdet, log_det_inv) is in
``test_flows_contract.py``; here every number is again checked against an independent
computation (autograd Jacobians, closed forms written out in the test, numerical integration).
"""

import math

import pytest
import torch

from course_utils.flows import (ActNorm, AdditiveCoupling, AffineCoupling, BatchNormFlow, DiagonalScaling,
                                FlowSequential, NormalizingFlow, Permutation, PlanarFlow,
                                standard_normal)
from course_utils.nets import mlp
from flowcheck import autograd_jacobian, perturb


pytestmark = pytest.mark.usefixtures("float64")  # every test here runs in float64 (conftest.py)


# ---------------------------------------------------------------- couplings


@pytest.mark.parametrize("cls", [AdditiveCoupling, AffineCoupling])
@pytest.mark.parametrize("dim, flip", [(4, False), (4, True), (5, False), (5, True)])
def test_coupling_starts_at_identity(cls, dim, flip):
    layer = cls(dim, hidden=8, flip=flip)
    x = torch.randn(7, dim)
    y, log_det = layer(x)
    assert torch.equal(y, x)
    assert torch.equal(log_det, torch.zeros(7))


@pytest.mark.parametrize("cls", [AdditiveCoupling, AffineCoupling])
@pytest.mark.parametrize("dim, flip", [(4, False), (4, True), (5, False), (5, True), (2, False)])
def test_coupling_jacobian_is_block_triangular(cls, dim, flip):
    layer = perturb(cls(dim, hidden=16, flip=flip))
    d = dim // 2
    # which features condition (untouched) and which are transformed
    cond, trans = (list(range(d, dim)), list(range(d))) if flip else (list(range(d)), list(range(d, dim)))
    x = torch.randn(5, dim)
    y, log_det = layer(x)
    assert torch.equal(y[:, cond], x[:, cond]), "the conditioning half must pass through unchanged"
    coupling_strength = 0.0
    for xi, ld in zip(x, log_det):
        J = autograd_jacobian(layer, xi)
        # untouched rows are rows of the identity
        assert torch.equal(J[cond][:, cond], torch.eye(len(cond)))
        assert torch.equal(J[cond][:, trans], torch.zeros(len(cond), len(trans)))
        # transformed block: diagonal in the transformed features, dense in the conditioning ones
        block = J[trans][:, trans]
        assert torch.allclose(block, torch.diag(block.diagonal()), atol=1e-12)
        coupling_strength = max(coupling_strength, J[trans][:, cond].abs().max().item())
        assert torch.allclose(ld, block.diagonal().abs().log().sum(), atol=1e-10)
        if cls is AdditiveCoupling:
            assert torch.allclose(block.diagonal(), torch.ones(len(trans)), atol=1e-12)
    assert coupling_strength > 1e-3, "the transformed half should depend on the conditioning half"


def test_affine_log_scale_is_bounded():
    layer = AffineCoupling(2, hidden=8)
    with torch.no_grad():
        layer.conditioner[-1].bias.fill_(1e4)     # huge raw log-scale and shift
    y, log_det = layer(torch.randn(10, 2))
    bound = layer.log_bound.exp().sum()
    assert torch.isfinite(y).all() and torch.isfinite(log_det).all()
    assert (log_det <= bound + 1e-12).all()


def test_coupling_with_own_conditioner():
    net = mlp([2, 5, 2 * 3])
    layer = AffineCoupling(5, conditioner=net)
    x = torch.randn(4, 5)
    y, log_det = layer(x)
    assert torch.allclose(layer.inverse(y)[0], x, atol=1e-12)
    with pytest.raises(ValueError, match=r"conditioner must output shape \(batch, 6\), got \(4, 3\)"):
        AffineCoupling(5, conditioner=mlp([2, 3]))(x)


def test_mlp_zero_last_and_depth():
    net = mlp([3, 7, 7, 7, 4], zero_last=True)
    assert sum(isinstance(m, torch.nn.Linear) for m in net) == 4
    assert torch.equal(net(torch.randn(2, 3)), torch.zeros(2, 4))
    assert net(torch.randn(2, 3)).dtype == torch.float64


def test_diagonal_scaling_and_permutation():
    layer = DiagonalScaling(3)
    with torch.no_grad():
        layer.log_s.copy_(torch.tensor([0.5, -1.0, 2.0]))
    x = torch.randn(4, 3)
    y, log_det = layer(x)
    assert torch.allclose(y, x * torch.tensor([0.5, -1.0, 2.0]).exp())
    assert torch.allclose(log_det, torch.full((4,), 1.5))
    perm = Permutation(6, kind="random", seed=5)
    assert sorted(perm.perm.tolist()) == list(range(6))
    assert torch.equal(perm.perm, Permutation(6, kind="random", seed=5).perm)  # reproducible
    assert torch.equal(Permutation(4)(torch.arange(4.0)[None])[0], torch.tensor([[3.0, 2.0, 1.0, 0.0]]))
    with pytest.raises(ValueError, match="reverse"):
        Permutation(3, kind="sorted")


# ---------------------------------------------------------------- planar


def m_of(a):
    """m(a) = -1 + log(1 + e^a), written independently of the layer."""
    return -1 + math.log1p(math.exp(a))


def check_planar(layer, x, inv_atol=1e-10):
    y, log_det = layer(x)
    assert torch.isfinite(log_det).all()
    x_back, log_det_inv = layer.inverse(y)
    assert (x_back - x).abs().max() < inv_atol
    assert torch.allclose(log_det_inv, -log_det, atol=1e-10)
    for xi, ld in zip(x[:4], log_det[:4]):
        ref = torch.linalg.slogdet(autograd_jacobian(layer, xi)).logabsdet
        assert torch.allclose(ld, ref, atol=1e-9)


def test_planar_constraint_by_hand():
    layer = PlanarFlow(2)
    with torch.no_grad():
        layer.w.copy_(torch.tensor([1.0, 0.0]))
        layer.u.copy_(torch.tensor([-3.0, 0.5]))
        layer.b.fill_(0.2)
    # raw w.u = -3 < -1 would not be invertible; u_hat moves along w only
    w_dot_u_hat = (layer.w @ layer.u_hat).item()
    assert w_dot_u_hat >= -1
    assert w_dot_u_hat == pytest.approx(m_of(-3.0), abs=1e-12)
    assert layer.u_hat[1].item() == pytest.approx(0.5, abs=1e-12)
    # points around the steepest spot w.x + b = 0, where 1 + w.u_hat h' is smallest
    x = torch.stack([torch.linspace(-3, 3, 41) - 0.2, torch.randn(41)], dim=1)
    check_planar(layer, x)


def test_planar_u_hat_formula():
    layer = PlanarFlow(3)
    u, w = layer.u.detach(), layer.w.detach()
    a = (w @ u).item()
    expected = u + (m_of(a) - a) * w / (w @ w)
    assert torch.allclose(layer.u_hat, expected, atol=1e-12)


def test_planar_random_raw_parameters():
    gen = torch.Generator().manual_seed(1)
    negative = 0
    for trial in range(150):
        dim = 1 + trial % 6
        layer = PlanarFlow(dim)
        with torch.no_grad():
            layer.u.copy_(3 * torch.randn(dim, generator=gen))
            layer.w.copy_(2 * torch.randn(dim, generator=gen))
            layer.b.copy_(2 * torch.randn((), generator=gen))
        negative += (layer.w @ layer.u).item() < -1
        assert (layer.w @ layer.u_hat).item() >= -1 - 1e-12   # m(w.u) > -1, up to rounding
        check_planar(layer, 3 * torch.randn(16, dim, generator=gen), inv_atol=1e-9)
    assert negative > 20, "the draws should include many raw w.u < -1"


def test_planar_extreme_negative_w_dot_u():
    layer = PlanarFlow(2)
    with torch.no_grad():
        layer.w.copy_(torch.tensor([1.0, 1.0]))
        layer.u.copy_(torch.tensor([-20.0, -20.0]))   # w.u = -40: w.u_hat = -1 + 4e-18
    x = torch.randn(50, 2)
    y, log_det = layer(x)
    assert torch.isfinite(log_det).all()
    assert (layer.inverse(y)[0] - x).abs().max() < 1e-6


def test_planar_inverse_gradient_matches_implicit_function():
    layer = perturb(PlanarFlow(3), std=0.5)
    y = torch.randn(4, 3, requires_grad=True)
    x, _ = layer.inverse(y)
    (g,) = torch.autograd.grad(x.sum(), y)
    # d x / d y is the inverse of the forward Jacobian at x
    for xi, gi in zip(x.detach(), g):
        J = autograd_jacobian(layer, xi)
        assert torch.allclose(gi, torch.linalg.inv(J).sum(0), atol=1e-8)


# ---------------------------------------------------------------- batch norm


def test_batchnorm_train_vs_eval():
    layer = perturb(BatchNormFlow(3))
    x = 2 + 3 * torch.randn(64, 3)
    y, log_det = layer(x)
    normalised = (y - layer.beta) / layer.log_gamma.exp()
    assert torch.allclose(normalised.mean(0), torch.zeros(3), atol=1e-10)
    assert torch.allclose(normalised.var(0, correction=0), x.var(0, correction=0) / (x.var(0, correction=0) + 1e-5))
    expected = (layer.log_gamma - 0.5 * torch.log(x.var(0, correction=0) + 1e-5)).sum()
    assert torch.allclose(log_det, expected.expand(64))
    with pytest.raises(RuntimeError, match=r"depends on the whole batch.*\.eval\(\)"):
        layer.inverse(y)
    layer.eval()
    y, log_det = layer(x)
    x_back, log_det_inv = layer.inverse(y)
    assert (x_back - x).abs().max() < 1e-12
    assert torch.allclose(log_det_inv, -log_det)
    # eval mode is an affine map with the running averages, sample by sample
    assert torch.allclose(layer(x[:1])[0], y[:1])


def test_batchnorm_running_stats_approach_data():
    layer = BatchNormFlow(2, momentum=0.1)
    assert torch.equal(layer.running_var, torch.ones(2))
    mean, std = torch.tensor([3.0, -1.0]), torch.tensor([0.5, 4.0])
    for _ in range(200):
        layer(mean + std * torch.randn(256, 2))
    assert torch.allclose(layer.running_mean, mean, atol=0.1 * std.max())
    assert torch.allclose(layer.running_var, std**2, rtol=0.1)


def test_batchnorm_images_log_det_times_pixels():
    layer = perturb(BatchNormFlow(2)).eval()
    x = torch.randn(3, 2, 4, 5)
    _, log_det = layer(x)
    per_channel = layer.log_gamma - 0.5 * torch.log(layer.running_var + layer.eps)
    assert torch.allclose(log_det, 20 * per_channel.sum().expand(3))
    with pytest.raises(ValueError, match="more than one value"):
        BatchNormFlow(2)(torch.randn(1, 2))


# ---------------------------------------------------------------- ActNorm


@pytest.mark.parametrize("shape, dims", [((100, 4), (0,)), ((10, 3, 4, 5), (0, 2, 3))])
def test_actnorm_initialisation(shape, dims):
    layer = ActNorm(shape[1])
    assert not layer.initialised
    x = 5 + 3 * torch.randn(shape) * torch.arange(1, shape[1] + 1).view(1, -1, *[1] * (len(shape) - 2))
    y, log_det = layer(x)
    assert layer.initialised
    assert torch.allclose(y.mean(dims), torch.zeros(shape[1]), atol=1e-10)
    assert torch.allclose(y.std(dims, correction=0), torch.ones(shape[1]), atol=1e-10)
    pixels = 1 if len(shape) == 2 else shape[2] * shape[3]
    assert torch.allclose(log_det, -pixels * x.std(dims, correction=0).log().sum().expand(shape[0]))
    # after initialisation the map no longer follows the batch
    y2, _ = layer(x + 1)
    assert torch.allclose(y2, y + layer.log_scale.exp().view(1, -1, *[1] * (len(shape) - 2)))


def test_actnorm_state_dict_round_trip():
    layer = ActNorm(3)
    layer(2 + torch.randn(50, 3, 2, 2))
    fresh = ActNorm(3)
    fresh.load_state_dict(layer.state_dict())
    assert fresh.initialised
    x_new = -7 + 10 * torch.randn(20, 3, 2, 2)        # would give very different statistics
    assert torch.equal(fresh(x_new)[0], layer(x_new)[0])


def test_actnorm_zero_variance_channel_is_finite():
    layer = ActNorm(3)
    x = torch.randn(30, 3)
    x[:, 1] = 4.0
    y, log_det = layer(x)
    assert torch.isfinite(y).all() and torch.isfinite(log_det).all()
    assert torch.allclose(y[:, 1], torch.zeros(30))
    assert torch.allclose(layer.inverse(y)[0], x)


def test_actnorm_eval_before_init_is_identity():
    layer = ActNorm(2).eval()
    x = torch.randn(5, 2)
    assert torch.equal(layer(x)[0], x) and not layer.initialised


# ---------------------------------------------------------------- NormalizingFlow


def small_flow():
    torch.manual_seed(3)
    layers = [
        AffineCoupling(2, hidden=8), PlanarFlow(2), Permutation(2),
        AdditiveCoupling(2, hidden=8), AffineCoupling(2, hidden=8, flip=True), BatchNormFlow(2), DiagonalScaling(2),
    ]
    model = NormalizingFlow(layers, standard_normal(2))
    perturb(model, std=0.2, seed=4)
    with torch.no_grad():
        model.flow[5].running_mean.copy_(torch.tensor([0.3, -0.2]))
        model.flow[5].running_var.copy_(torch.tensor([1.5, 0.7]))
    return model.eval()


def test_log_prob_integrates_to_one():
    model = small_flow()
    g = torch.linspace(-8, 8, 400)
    xx, yy = torch.meshgrid(g, g, indexing="ij")
    grid = torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)
    with torch.no_grad():
        p = model.log_prob(grid).exp()
    cell = (g[1] - g[0]) ** 2
    total = (p.sum() * cell).item()
    assert total == pytest.approx(1.0, abs=1e-2)


def test_sample_shapes_and_round_trip():
    model = small_flow()
    x = model.sample((11,))
    assert x.shape == (11, 2) and x.dtype == torch.float64
    z, log_det = model(x)
    assert torch.allclose(model.inverse(z)[0], x, atol=1e-9)
    assert model.log_prob(x).shape == (11,)


def test_double_and_to_cpu():
    torch.set_default_dtype(torch.float32)
    model = NormalizingFlow([AffineCoupling(2), PlanarFlow(2), ActNorm(2), BatchNormFlow(2)], standard_normal(2))
    model.eval()
    assert model.log_prob(torch.randn(3, 2)).dtype == torch.float32
    model = model.double()
    lp = model.log_prob(torch.randn(3, 2, dtype=torch.float64))
    assert lp.dtype == torch.float64
    assert model.sample((4,)).dtype == torch.float64
    model = model.to("cpu")
    assert model.sample((4,)).device.type == "cpu"


# ---------------------------------------------------------------- dtype and bad input

MAKERS = {
    "AdditiveCoupling": lambda: AdditiveCoupling(3),
    "AffineCoupling": lambda: AffineCoupling(3, flip=True),
    "DiagonalScaling": lambda: DiagonalScaling(3),
    "Permutation": lambda: Permutation(3, kind="random"),
    "PlanarFlow": lambda: PlanarFlow(3),
    "BatchNormFlow": lambda: BatchNormFlow(3),
    "ActNorm": lambda: ActNorm(3),
    "FlowSequential": lambda: FlowSequential(AffineCoupling(3), ActNorm(3)),
}


@pytest.mark.parametrize("name", MAKERS)
def test_default_dtype_float64(name):
    layer = MAKERS[name]()
    assert all(p.dtype == torch.float64 for p in layer.parameters())
    y, log_det = layer(torch.randn(5, 3))
    assert y.dtype == log_det.dtype == torch.float64
    x, log_det_inv = layer.eval().inverse(y)
    assert x.dtype == log_det_inv.dtype == torch.float64


@pytest.mark.parametrize("name", MAKERS)
@pytest.mark.parametrize("bad", [(5, 4), (5,), (5, 3, 1)])
def test_bad_input_names_expected_and_given_shapes(name, bad):
    layer = MAKERS[name]()
    given = str(tuple(bad))
    with pytest.raises(ValueError, match=r"expected shape \(batch, 3\)") as err:
        layer(torch.randn(bad))
    assert given in str(err.value)
    if name == "FlowSequential":
        return
    layer.eval()
    with pytest.raises(ValueError, match=r"expected shape \(batch, 3\)"):
        layer.inverse(torch.randn(bad))
