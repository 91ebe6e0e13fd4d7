"""Rezende and Mohamed's energies, the reverse-KL loss and the batched planar flows (notebook 05).

Every number is checked against an independent computation: the formulas written out again with
NumPy, the KL of known distributions, autograd Jacobians, and the library's own ``PlanarFlow``.
"""

import math

import numpy as np
import pytest
import torch

from course_utils.flows import FlowSequential, PlanarFlow
from course_utils.flows.planar_vi import (ENERGIES, U1, U2, U3, U4, PlanarStack, annealed_batches, energy,
                                         log_partition, reverse_kl_loss)
from flowcheck import autograd_jacobian


def numpy_energies(z):
    """The paper's four energies, written again from its Table 1 (no wall)."""
    z1, z2 = z[:, 0], z[:, 1]
    w1 = np.sin(2 * np.pi * z1 / 4)
    w2 = 3 * np.exp(-0.5 * ((z1 - 1) / 0.6) ** 2)
    w3 = 3 / (1 + np.exp(-(z1 - 1) / 0.3))
    r = np.sqrt(z1**2 + z2**2)
    u1 = 0.5 * ((r - 2) / 0.4) ** 2 - np.log(np.exp(-0.5 * ((z1 - 2) / 0.6) ** 2) + np.exp(-0.5 * ((z1 + 2) / 0.6) ** 2))
    u2 = 0.5 * ((z2 - w1) / 0.4) ** 2
    u3 = -np.log(np.exp(-0.5 * ((z2 - w1) / 0.35) ** 2) + np.exp(-0.5 * ((z2 - w1 + w2) / 0.35) ** 2))
    u4 = -np.log(np.exp(-0.5 * ((z2 - w1) / 0.4) ** 2) + np.exp(-0.5 * ((z2 - w1 + w3) / 0.35) ** 2))
    return [u1, u2, u3, u4]


def test_energies_match_the_paper_inside_the_box():
    z = torch.empty(500, 2, dtype=torch.float64).uniform_(-3.9, 3.9, generator=torch.Generator().manual_seed(0))
    expected = numpy_energies(z.numpy())
    for U, e in zip((U1, U2, U3, U4), expected):
        assert np.allclose(U(z).numpy(), e, atol=1e-10)
        if U is not U1:   # U1 has no wall: its ring confines z already
            assert torch.equal(U(z), U(z, wall=False)), "the wall must not change anything inside |z1| <= 4"


def test_energies_keep_batch_shape_and_are_finite_far_away():
    z = torch.tensor([[[50.0, -60.0], [0.0, 0.0]]])           # shape (1, 2, 2)
    for name, U in ENERGIES.items():
        out = U(z)
        assert out.shape == (1, 2), name
        assert torch.isfinite(out).all(), f"{name} overflows far from its mass: use logaddexp"


def test_wall_confines_z1():
    z = torch.tensor([[4.0, 0.0], [4.4, 0.0], [-4.4, 0.0]], dtype=torch.float64)
    for U in (U2, U3, U4):
        extra = U(z) - U(z, wall=False)
        assert torch.allclose(extra, torch.tensor([0.0, 2.0, 2.0], dtype=torch.float64))   # ((0.4/0.2)^2)/2


def test_energy_lookup():
    assert energy("U3") is U3
    with pytest.raises(ValueError, match="U1, U2, U3, U4"):
        energy("U5")
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        U2(torch.zeros(4, 3))


def test_log_partition_of_known_integrals():
    # A Gaussian: Z = 2 pi sigma^2.
    sigma = 0.7
    assert log_partition(lambda z: 0.5 * (z**2).sum(-1) / sigma**2) == pytest.approx(math.log(2 * math.pi * sigma**2), abs=1e-8)
    # U2 with the wall: integrate over z2 in closed form (a Gaussian of width 0.4 for every z1),
    # then over z1: the box gives 8 and each wall side a half Gaussian of width 0.2.
    expected = math.log(math.sqrt(2 * math.pi) * 0.4 * (8 + 2 * 0.2 * math.sqrt(2 * math.pi) / 2))
    assert log_partition(U2) == pytest.approx(expected, abs=1e-5)


def test_log_partition_of_the_ring_in_polar_coordinates():
    # U1 by an independent quadrature: polar coordinates, trapezoid rule in numpy.
    r = np.linspace(0, 6, 1201)
    t = np.linspace(0, 2 * np.pi, 801)
    R, T = np.meshgrid(r, t, indexing="ij")
    z = np.stack([R * np.cos(T), R * np.sin(T)], axis=-1).reshape(-1, 2)
    integrand = np.exp(-numpy_energies(z)[0]).reshape(R.shape) * R
    Z = np.trapezoid(np.trapezoid(integrand, t, axis=1), r)
    assert log_partition(U1) == pytest.approx(math.log(Z), abs=1e-5)


def test_without_the_wall_there_is_no_normaliser():
    # The mass in a box grows with the box: exp(-U2) is not integrable over the plane.
    small = log_partition(lambda z: U2(z, wall=False), bound=6.0)
    large = log_partition(lambda z: U2(z, wall=False), bound=12.0, n=1200)
    assert large - small == pytest.approx(math.log(2.0), abs=1e-3)


def test_reverse_kl_is_minus_log_z_when_q_equals_p():
    # Identity flow, target N(0, I): log q(z) + U(z) = -log(2 pi) for every sample.
    loss = reverse_kl_loss(FlowSequential(), lambda z: 0.5 * (z**2).sum(-1), torch.randn(100, 2, dtype=torch.float64))
    assert loss.item() == pytest.approx(-math.log(2 * math.pi), abs=1e-12)


def test_reverse_kl_of_a_scaled_gaussian():
    # q = N(0, s^2 I) through a linear flow z -> s z; target N(0, I): KL = s^2 - 1 - 2 log s (in 2-D).
    s = 1.7

    class Scale(torch.nn.Module):
        def forward(self, z):
            return s * z, torch.full(z.shape[:-1], 2 * math.log(s), dtype=z.dtype)

    torch.manual_seed(0)
    loss = reverse_kl_loss(Scale(), lambda z: 0.5 * (z**2).sum(-1), torch.randn(400_000, 2, dtype=torch.float64))
    kl = loss.item() + math.log(2 * math.pi)
    assert kl == pytest.approx(s**2 - 1 - 2 * math.log(s), abs=0.01)


def test_reverse_kl_uses_the_change_of_variables_with_a_minus_sign():
    torch.manual_seed(1)
    flow = FlowSequential(*[PlanarFlow(2) for _ in range(3)]).double()
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.5 * torch.randn_like(p))
    z0 = torch.randn(6, 2, dtype=torch.float64)
    with torch.no_grad():
        zK, _ = flow(z0)
    log_det = torch.stack([torch.linalg.slogdet(autograd_jacobian(flow, z)).logabsdet for z in z0])
    log_q = -0.5 * (z0**2).sum(-1) - math.log(2 * math.pi) - log_det
    expected = (log_q + U3(zK)).mean()
    assert reverse_kl_loss(flow, U3, z0).item() == pytest.approx(expected.item(), abs=1e-10)
    assert reverse_kl_loss(flow, U3, z0, beta=0.5).item() == pytest.approx((log_q + 0.5 * U3(zK)).mean().item(), abs=1e-10)


def test_planar_stack_is_exactly_the_library_planar_flow():
    torch.manual_seed(2)
    stack = PlanarStack(models=4, K=5).double()
    with torch.no_grad():
        stack.u.mul_(20)                         # large u: the u_hat correction matters
    z0 = torch.randn(4, 7, 2, dtype=torch.float64)
    z, log_det = stack(z0)
    for m, flow in enumerate(stack.flows()):
        assert all(isinstance(layer, PlanarFlow) for layer in flow)
        zm, ldm = flow(z0[m])
        assert torch.allclose(z[m], zm, atol=1e-12) and torch.allclose(log_det[m], ldm, atol=1e-12)
        assert torch.allclose(flow.inverse(zm)[0], z0[m], atol=1e-8)


def test_planar_stack_trains_each_model_on_its_own_energy():
    torch.manual_seed(3)
    stack = PlanarStack(models=2, K=3).double()
    z0 = torch.randn(2, 50, 2, dtype=torch.float64)
    reverse_kl_loss(stack, [U1, U2], z0).backward()
    grads = [g.clone() for g in (stack.u.grad, stack.w.grad, stack.b.grad)]
    for m, (flow, U) in enumerate(zip(stack.flows(), [U1, U2])):
        reverse_kl_loss(flow, U, z0[m]).backward()
        for k, layer in enumerate(flow):
            assert torch.allclose(layer.u.grad, grads[0][k, m], atol=1e-10)
            assert torch.allclose(layer.w.grad, grads[1][k, m], atol=1e-10)
            assert torch.allclose(layer.b.grad, grads[2][k, m], atol=1e-10)


def test_planar_stack_checks_shapes():
    with pytest.raises(ValueError, match=r"\(3, N, 2\)"):
        PlanarStack(3, 2)(torch.zeros(2, 5, 2))
    with pytest.raises(ValueError, match="models, K and features >= 1"):
        PlanarStack(0, 2)
    with pytest.raises(ValueError, match="list of 3 energies"):
        reverse_kl_loss(PlanarStack(3, 2), U1, torch.zeros(3, 5, 2))


def test_annealed_batches():
    batches = annealed_batches(models=3, n=5, steps=100, warmup=0.2, beta0=0.1)
    betas = []
    for _ in range(30):
        z0, beta = batches()
        assert z0.shape == (3, 5, 2)
        betas.append(beta)
    assert betas[0] == pytest.approx(0.1) and betas[10] == pytest.approx(0.55) and betas[20:] == [1.0] * 10
    assert all(b2 >= b1 for b1, b2 in zip(betas, betas[1:]))
    assert annealed_batches(models=0, n=4, steps=10)()[0].shape == (4, 2)
