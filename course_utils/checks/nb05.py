"""Checks for notebook 05: planar flows and variational inference."""

import math

import torch
import torch.nn.functional as F

from ..flows.base import standard_normal_log_prob
from ..flows.planar import planar_u_hat
from . import CheckFailed, assert_close, assert_shape, exercise, unpack_pair

__all__ = ["planar_forward", "u_hat", "reverse_kl", "solve_planar"]


def _gen(seed):
    return torch.Generator().manual_seed(seed)



@exercise(1, "the planar map and its log-determinant")
def planar_forward(student_fn):
    """``student_fn(z, u, w, b)`` returns ``(y, log_det)``, ``y = z + u tanh(w.z + b)``."""
    cases = [  # (u, w, b): one with w.u < -1, where 1 + w.u h' changes sign and abs matters
        (torch.tensor([0.5, -0.3]), torch.tensor([1.0, 2.0]), 0.3),
        (torch.tensor([-2.0, 0.5]), torch.tensor([1.5, -0.5]), -0.2),
        (torch.tensor([0.2, 0.1, -0.4]), torch.tensor([-1.0, 0.5, 0.7]), 0.0),
    ]
    for seed, (u, w, b) in enumerate(cases):
        u, w, b = u.double(), w.double(), torch.tensor(b, dtype=torch.float64)
        z = torch.randn(8, len(u), generator=_gen(seed), dtype=torch.float64)
        got = unpack_pair(student_fn(z.clone(), u.clone(), w.clone(), b.clone()), "planar_forward")
        h = torch.tanh(z @ w + b)
        y = z + h[:, None] * u
        assert_close(got[0], y, f"y for u = {u.tolist()}, w = {w.tolist()}", atol=1e-10,
                     slips={"u is multiplied by w.z + b instead of tanh(w.z + b)": z + (z @ w + b)[:, None] * u})
        f = lambda v: v + torch.tanh(v @ w + b) * u
        expected = torch.stack([torch.linalg.slogdet(torch.autograd.functional.jacobian(f, zi)).logabsdet for zi in z])
        assert_shape(got[1], (z.shape[0],), "log_det (one number per sample)")
        if torch.isnan(torch.as_tensor(got[1])).any():
            raise CheckFailed(f"log_det contains NaN for u = {u.tolist()}, w = {w.tolist()}: here w.u = "
                              f"{(w @ u).item():.2f} < -1, so 1 + (w.u) h'(w.z + b) is negative at some points. "
                              "The log-determinant is the log of its absolute value.")
        wu = w @ u
        assert_close(got[1], expected, f"log_det for u = {u.tolist()}, w = {w.tolist()}", atol=1e-8,
                     slips={"h = tanh is used where its derivative h' = 1 - tanh^2 is needed":
                            torch.log(torch.abs(1 + wu * h)),
                            "the 1 + is missing (det(I + a b^T) = 1 + b^T a)": torch.log(torch.abs(wu * (1 - h**2))),
                            "the sign is flipped": -expected})


@exercise(2, "the u-hat reparametrisation")
def u_hat(student_fn):
    """``student_fn(u, w)`` returns ``u + (m(w.u) - w.u) w / ||w||^2``, ``m(a) = -1 + softplus(a)``."""
    cases = [(torch.tensor([1.0, 0.0]), torch.tensor([-3.0, 0.5])),     # w.u = -3: corrected
             (torch.tensor([0.3, 0.4]), torch.tensor([2.0, 1.0])),      # w.u = 1: moved a little
             (torch.tensor([0.5, -1.0, 2.0]), torch.tensor([1.0, 2.0, 0.5])),
             (torch.tensor([1.0, 1.0]), torch.tensor([400.0, 400.0]))]  # w.u = 800: exp overflows
    for u, w in cases:
        u, w = u.double(), w.double()
        expected = planar_u_hat(u, w)[0]
        got = student_fn(u.clone(), w.clone())
        wu = w @ u
        if isinstance(got, torch.Tensor) and not torch.isfinite(got).all():
            raise CheckFailed(f"u_hat for w.u = {wu.item():g} came back as {got.tolist()}: log(1 + exp(w.u)) "
                              "overflows for large w.u. Use torch.nn.functional.softplus.")
        assert_close(got, expected, f"u_hat for u = {u.tolist()}, w = {w.tolist()} (w.u = {wu.item():g})", atol=1e-8,
                     slips={"w is divided by ||w|| instead of ||w||^2": u + (-1 + F.softplus(wu) - wu) * w / w.norm(),
                            "m(a) = softplus(a) is used without the -1": u + (F.softplus(wu) - wu) * w / (w @ w),
                            "u is returned unchanged": u})
        w_dot = w @ torch.as_tensor(got, dtype=torch.float64)
        if not w_dot > -1:
            raise CheckFailed(f"w.u_hat = {w_dot.item():.4f} should be above -1")


@exercise(3, "the reverse-KL loss")
def reverse_kl(student_fn):
    """``student_fn(flow, U, z0)`` returns ``mean(log q_0(z_0) - log_det + U(z_K))``."""
    from course_utils.flows import FlowSequential, PlanarFlow
    from course_utils.flows.planar_vi import U1, U3

    for seed, U in ((0, U1), (1, U3)):
        torch.manual_seed(seed)
        flow = FlowSequential(*[PlanarFlow(2) for _ in range(4)]).double()
        with torch.no_grad():
            for p in flow.parameters():
                p.add_(0.5 * torch.randn_like(p))
        z0 = torch.randn(64, 2, generator=_gen(seed + 5), dtype=torch.float64)
        with torch.no_grad():
            zK, log_det = flow(z0)
            log_q0 = standard_normal_log_prob(z0)
            expected = (log_q0 - log_det + U(zK)).mean()
            slips = {"the log-det is added instead of subtracted (log q_K = log q_0 - sum log|det|)":
                     (log_q0 + log_det + U(zK)).mean(),
                     "the energy is evaluated at z_0 instead of z_K": (log_q0 - log_det + U(z0)).mean(),
                     "the energy enters with the wrong sign (the target's log-density is -U)":
                     (log_q0 - log_det - U(zK)).mean(),
                     "log q_0(z_0) is left out": (-log_det + U(zK)).mean()}
        got = student_fn(flow, U, z0.clone())
        assert_close(got, expected, f"the loss with energy {U.__name__} and 4 planar layers", atol=1e-8,
                     slips=slips)


@exercise(4, "the planar inverse by bisection")
def solve_planar(student_fn):
    """``student_fn(c, wu_hat, b)`` solves ``a + wu_hat tanh(a + b) = c`` for ``a``, element-wise."""
    for seed, (wu_hat, b) in enumerate(((2.5, 0.3), (-0.9, -1.0), (0.0, 0.5), (8.0, 0.0))):
        c = 3 * torch.randn(50, generator=_gen(seed), dtype=torch.float64)
        wu, bb = torch.tensor(wu_hat, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
        a = student_fn(c.clone(), wu, bb)
        assert_shape(a, c.shape, "a (one root per value of c)")
        a = torch.as_tensor(a, dtype=torch.float64)
        residual = a + wu * torch.tanh(a + bb) - c
        worst = residual.abs().max().item()
        if not worst < 1e-6:
            hint = ""
            if torch.allclose(a, c, atol=1e-9):
                hint = " It came back equal to c: the equation was not solved."
            elif torch.allclose(a, c - wu * torch.tanh(c + bb), atol=1e-9):
                hint = " It is c - wu_hat tanh(c + b): one fixed-point step, not the root; iterate to convergence."
            raise CheckFailed(f"for wu_hat = {wu_hat}, b = {b}: a + wu_hat tanh(a + b) should equal c, but the "
                              f"largest residual is {worst:.3g}.{hint}")
