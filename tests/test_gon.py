"""course_utils.gon: the GON latent against independent autograd computations, batch
independence, the second-order term, and the implicit and variational variants."""

import math

import pytest
import torch
from torch import nn

from course_utils import gon


def _decoder(latent_dim=3, out_shape=(1, 2, 3), activation=nn.ELU, seed=0):
    torch.manual_seed(seed)
    return gon.mlp_decoder(latent_dim, (7, 5), out_shape, activation=activation).double()


def _x(batch=4, shape=(1, 2, 3), seed=1):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(batch, *shape, generator=gen, dtype=torch.float64)


def _per_example_grad(decoder, x_i, latent_dim, loss):
    """-d/dz0 loss(x_i, F(z0)) at 0 for ONE example, by torch.func (no batch at all)."""
    def inner(z0):
        return loss(decoder(z0[None]), x_i[None]).sum()
    return -torch.func.grad(inner)(torch.zeros(latent_dim, dtype=x_i.dtype))


# ---------------------------------------------------------------------------------------------
# gon_latent
# ---------------------------------------------------------------------------------------------


def test_latent_is_the_transposed_jacobian_at_the_origin_times_the_residual():
    """Squared error: z = 2 J_F(0)^T (x - F(0)), with J from torch.autograd.functional.jacobian."""
    decoder, x = _decoder(), _x()
    z0 = torch.zeros(1, 3, dtype=torch.float64)
    J = torch.autograd.functional.jacobian(lambda z: decoder(z).reshape(-1), z0).reshape(-1, 3)
    expected = 2.0 * (x - decoder(z0)).reshape(len(x), -1) @ J
    z = gon.gon_latent(decoder, x, 3)
    assert z.shape == (4, 3)
    torch.testing.assert_close(z, expected)


@pytest.mark.parametrize("loss", [gon.squared_error, gon.bernoulli_nll], ids=["sse", "bce"])
def test_latent_matches_per_example_functional_gradient(loss):
    decoder, x = _decoder(), _x()
    z = gon.gon_latent(decoder, x, 3, loss=loss)
    for i in range(len(x)):
        torch.testing.assert_close(z[i], _per_example_grad(decoder, x[i], 3, loss))


def test_bce_latent_has_its_closed_form():
    """d/dlogits BCE = sigmoid(logits) - x, so z = J^T (x - sigmoid(F(0)))."""
    decoder, x = _decoder(), _x()
    z0 = torch.zeros(1, 3, dtype=torch.float64)
    J = torch.autograd.functional.jacobian(lambda z: decoder(z).reshape(-1), z0).reshape(-1, 3)
    expected = (x - torch.sigmoid(decoder(z0))).reshape(len(x), -1) @ J
    torch.testing.assert_close(gon.gon_latent(decoder, x, 3, loss=gon.bernoulli_nll), expected)


def test_latent_does_not_depend_on_the_batch():
    decoder, x = _decoder(), _x(batch=6)
    z_all = gon.gon_latent(decoder, x, 3)
    torch.testing.assert_close(gon.gon_latent(decoder, x[2:3], 3), z_all[2:3])
    torch.testing.assert_close(gon.gon_latent(decoder, x[[5, 0]], 3), z_all[[5, 0]])
    other = torch.cat([x[:2], _x(batch=10, seed=9)])  # same two examples, different companions
    torch.testing.assert_close(gon.gon_latent(decoder, other, 3)[:2], z_all[:2])


def test_latent_keeps_its_graph_only_when_asked_and_works_under_no_grad():
    decoder, x = _decoder(), _x()
    assert gon.gon_latent(decoder, x, 3).grad_fn is not None
    assert gon.gon_latent(decoder, x, 3, create_graph=False).grad_fn is None
    with torch.no_grad():
        z = gon.gon_latent(decoder, x, 3, create_graph=False)
    torch.testing.assert_close(z, gon.gon_latent(decoder, x, 3).detach())
    x_hat, z2 = gon.gon_reconstruct(decoder, x, 3)
    assert x_hat.shape == x.shape and not x_hat.requires_grad
    torch.testing.assert_close(z2, z)


def test_latent_rejects_bad_inputs():
    decoder = _decoder()
    with pytest.raises(ValueError, match="batch"):
        gon.gon_latent(decoder, torch.zeros(6, dtype=torch.float64), 3)
    with pytest.raises(ValueError, match="one value per example"):
        gon.gon_latent(decoder, _x(), 3, loss=lambda a, b: (a - b).pow(2).sum())
    with pytest.raises(ValueError, match="shape"):
        gon.gon_latent(decoder, torch.zeros(4, 1, 3, 3, dtype=torch.float64), 3)


# ---------------------------------------------------------------------------------------------
# The outer loss trains the decoder through the latent
# ---------------------------------------------------------------------------------------------


def _flat_grad(loss, params):
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)])


def test_gradient_reaches_the_decoder_through_the_latent():
    decoder, x = _decoder(), _x()
    params = list(decoder.parameters())
    full = _flat_grad(gon.gon_loss(decoder, x, 3), params)
    z = gon.gon_latent(decoder, x, 3).detach()
    detached = _flat_grad(gon.squared_error(decoder(z), x).mean(), params)
    second_order = full - detached
    assert second_order.norm() > 0.05 * full.norm(), "the term through the latent is missing"


def test_gon_loss_gradient_matches_finite_differences():
    """The whole objective, latent included, differentiated numerically (float64)."""
    decoder, x = _decoder(latent_dim=2, out_shape=(1, 2, 2), seed=3), _x(shape=(1, 2, 2))
    params = list(decoder.parameters())
    grads = torch.autograd.grad(gon.gon_loss(decoder, x, 2), params)
    eps = 1e-6
    for p, g in zip(params, grads):
        for idx in [(0,) * p.ndim, tuple(s - 1 for s in p.shape)]:
            with torch.no_grad():
                old = p[idx].item()
                p[idx] = old + eps
                up = gon.gon_loss(decoder, x, 2).item()
                p[idx] = old - eps
                down = gon.gon_loss(decoder, x, 2).item()
                p[idx] = old
            assert math.isclose(g[idx].item(), (up - down) / (2 * eps), rel_tol=1e-5, abs_tol=1e-8)


def test_relu_decoder_jacobian_at_origin_ignores_the_biases():
    """ReLU has a zero second derivative: J_F(0) does not move with any bias; ELU's does."""
    for activation, moves in [(nn.ReLU, False), (nn.ELU, True)]:
        decoder = _decoder(activation=activation, seed=5)
        biases = [m.bias for m in decoder if isinstance(m, nn.Linear)]
        z0 = torch.zeros(1, 3, dtype=torch.float64)
        J = torch.autograd.functional.jacobian(lambda z: decoder(z).reshape(-1), z0, create_graph=True)
        grads = torch.autograd.grad((J * torch.randn_like(J)).sum(), biases, allow_unused=True)
        total = sum(0.0 if g is None else g.abs().sum().item() for g in grads)
        assert (total > 1e-6) == moves, activation.__name__


def test_gon_training_reduces_the_loss():
    torch.manual_seed(0)
    x = torch.rand(32, 1, 3, 3)
    decoder = gon.mlp_decoder(4, (32,), (1, 3, 3))
    opt = torch.optim.Adam(decoder.parameters(), lr=1e-2)
    first = gon.gon_loss(decoder, x, 4).item()
    for _ in range(100):
        opt.zero_grad()
        gon.gon_loss(decoder, x, 4).backward()
        opt.step()
    assert gon.gon_loss(decoder, x, 4).item() < 0.5 * first


# ---------------------------------------------------------------------------------------------
# Implicit GON
# ---------------------------------------------------------------------------------------------


def test_implicit_decoder_shapes_and_render():
    torch.manual_seed(0)
    net = gon.ImplicitDecoder(latent_dim=5, hidden=16, hidden_layers=1)
    z = torch.randn(3, 5)
    from course_utils.data import get_mgrid
    coords = get_mgrid(4)
    out = net(coords, z)
    assert out.shape == (3, 16, 1)
    image = net.render(z, 4)
    assert image.shape == (3, 1, 4, 4)
    torch.testing.assert_close(image.reshape(3, 16), out[..., 0])  # same grid, same order
    # each example only sees its own latent
    torch.testing.assert_close(net(coords, z[1:2]), out[1:2])
    with pytest.raises(ValueError, match="coords"):
        net(torch.zeros(4, 3), z)
    with pytest.raises(ValueError, match="z must"):
        net(coords, torch.zeros(3, 4))


def test_implicit_gon_loss_trains_every_parameter_and_matches_gon_loss():
    torch.manual_seed(0)
    net = gon.ImplicitDecoder(latent_dim=4, hidden=16, hidden_layers=1)
    from course_utils.data import get_mgrid
    coords = get_mgrid(3)
    values = torch.rand(2, 9, 1) * 2 - 1
    loss = gon.implicit_gon_loss(net, coords, values)
    torch.testing.assert_close(loss, gon.gon_loss(lambda z: net(coords, z), values, 4))
    grads = torch.autograd.grad(loss, list(net.parameters()))
    assert all(g.abs().sum() > 0 for g in grads)


# ---------------------------------------------------------------------------------------------
# Variational GON
# ---------------------------------------------------------------------------------------------


def test_kl_matches_torch_distributions():
    gen = torch.Generator().manual_seed(0)
    mu, log_var = torch.randn(4, 3, generator=gen), torch.randn(4, 3, generator=gen)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * log_var))
    p = torch.distributions.Normal(torch.zeros(3), torch.ones(3))
    expected = torch.distributions.kl_divergence(q, p).sum(-1)
    torch.testing.assert_close(gon.kl_standard_normal(mu, log_var), expected)


def test_variational_gon_posterior_loss_and_samples():
    torch.manual_seed(0)
    model = gon.VariationalGON(gon.mlp_decoder(3, (8,), (1, 2, 2)), 3)
    x = torch.rand(5, 1, 2, 2).round()
    mu, log_var = model.posterior(x)
    assert mu.shape == log_var.shape == (5, 3)
    torch.testing.assert_close(log_var, torch.zeros(5, 3))  # starts at unit variance
    z = gon.gon_latent(model.decoder, x, 3, loss=gon.bernoulli_nll)
    torch.testing.assert_close(mu, model.to_mu(z))
    torch.manual_seed(1)
    loss = gon.variational_gon_loss(model, x)
    torch.manual_seed(1)
    eps = torch.randn(5, 3)
    expected = (gon.bernoulli_nll(model.decoder(mu + eps), x) + gon.kl_standard_normal(mu, log_var)).mean()
    torch.testing.assert_close(loss, expected)
    grads = torch.autograd.grad(loss, list(model.parameters()), allow_unused=True)
    assert all(g is not None for g in grads)
    samples = model.sample(7, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (7, 1, 2, 2)


# ---------------------------------------------------------------------------------------------
# Autoencoder baseline, parameters, sampling, interpolation
# ---------------------------------------------------------------------------------------------


def test_autoencoder_has_the_same_decoder_and_about_twice_the_parameters():
    decoder = gon.mlp_decoder(32, (256, 256), (1, 16, 16))
    encoder = gon.mlp_encoder((1, 16, 16), (256, 256), 32)
    ae = gon.Autoencoder(encoder, decoder)
    n_dec = 32 * 256 + 256 + 256 * 256 + 256 + 256 * 256 + 256
    assert gon.count_parameters(decoder) == n_dec
    assert gon.count_parameters(ae) == n_dec + 256 * 256 + 256 + 256 * 256 + 256 + 256 * 32 + 32
    x = torch.rand(3, 1, 16, 16)
    assert ae(x).shape == x.shape
    assert gon.autoencoder_loss(ae, x).shape == ()


def test_fit_gaussian_matches_sample_moments():
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(400, 3, generator=gen, dtype=torch.float64) @ torch.tensor(
        [[1.0, 0.5, 0.0], [0.0, 2.0, 0.3], [0.0, 0.0, 0.2]], dtype=torch.float64) + 4.0
    g = gon.fit_gaussian(z, jitter=0.0)
    torch.testing.assert_close(g.mean, z.mean(0))
    torch.testing.assert_close(g.covariance_matrix, torch.cov(z.T))
    with pytest.raises(ValueError, match="n >= 2"):
        gon.fit_gaussian(torch.zeros(1, 3))


def test_slerp_properties():
    gen = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(6, generator=gen, dtype=torch.float64), torch.randn(6, generator=gen, dtype=torch.float64)
    t = torch.linspace(0, 1, 5, dtype=torch.float64)
    path = gon.slerp(z0, z1, t)
    assert path.shape == (5, 6)
    torch.testing.assert_close(path[0], z0)
    torch.testing.assert_close(path[-1], z1)
    # equal-length endpoints: every point has that length, and the angles are evenly spaced
    u0, u1 = z0 / z0.norm(), z1 / z1.norm()
    unit_path = gon.slerp(u0, u1, t)
    torch.testing.assert_close(unit_path.norm(dim=1), torch.ones(5, dtype=torch.float64))
    angles = torch.arccos((unit_path[:-1] * unit_path[1:]).sum(1).clamp(-1, 1))
    torch.testing.assert_close(angles, torch.full((4,), angles[0].item(), dtype=torch.float64))
    # scalar t gives a vector; parallel endpoints fall back to a straight line
    assert gon.slerp(z0, z1, 0.3).shape == (6,)
    torch.testing.assert_close(gon.slerp(z0, 2 * z0, 0.5), 1.5 * z0)
    with pytest.raises(ValueError, match="same shape"):
        gon.slerp(z0, z1[:3], 0.5)
