"""Checks for notebook 05: planar flows and variational inference."""

import math

import torch
import torch.nn.functional as F

from ..flows.base import standard_normal_log_prob
from ..flows.planar import planar_u_hat
from ..flows.planar_vi import reverse_kl_loss
from . import CheckFailed, assert_close, assert_shape, exercise, unpack_pair
from .nb01 import AUTOGRAD, DETERMINANTS
from .shortcuts import call_without

__all__ = ["planar_forward", "u_hat", "reverse_kl", "solve_planar"]

HINT = " (see the hint under the exercise)"
PLANAR = [("course_utils.flows.planar.PlanarFlow.forward", "PlanarFlow"),
          ("course_utils.flows.planar.planar_log_det", "planar_log_det")]


def _u_hat_reference(u: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``u_hat`` from the library's ``planar_u_hat``."""
    return planar_u_hat(u, w)[0]


def _bisection_reference(c: torch.Tensor, wu_hat: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Solve ``a + wu_hat tanh(a + b) = c`` element-wise by 60 halvings of ``c -+ |wu_hat|``."""
    lo, hi = c - wu_hat.abs(), c + wu_hat.abs()
    for _ in range(60):
        mid = (lo + hi) / 2
        too_low = mid + wu_hat * torch.tanh(mid + b) < c
        lo, hi = torch.where(too_low, mid, lo), torch.where(too_low, hi, mid)
    return (lo + hi) / 2


def _gen(seed):
    return torch.Generator().manual_seed(seed)



@exercise(1, "the planar map and its log-determinant")
def planar_forward(student_fn):
    """Check exercise 1: ``student_fn(z, u, w, b)`` returns ``(y, log_det)``, ``y = z + u tanh(w.z + b)``.

    ``log_det`` is compared with ``slogdet`` of the autograd Jacobian for three layers, one with
    ``w.u < -1``; autograd, determinants and the library's planar layer are switched off while
    the student's code runs (the exercise is the matrix determinant lemma).

    Example:
        >>> def mine(z, u, w, b):
        ...     h = torch.tanh(z @ w + b)
        ...     return z + h[:, None] * u, torch.log(torch.abs(1 + (w @ u) * (1 - h**2)))
        >>> planar_forward(mine)
        Exercise 1 (the planar map and its log-determinant): correct. Well done!
    """
    cases = [  # (u, w, b): one with w.u < -1, where 1 + w.u h' changes sign and abs matters
        (torch.tensor([0.5, -0.3]), torch.tensor([1.0, 2.0]), 0.3),
        (torch.tensor([-2.0, 0.5]), torch.tensor([1.5, -0.5]), -0.2),
        (torch.tensor([0.2, 0.1, -0.4]), torch.tensor([-1.0, 0.5, 0.7]), 0.0),
    ]
    for seed, (u, w, b) in enumerate(cases):
        u, w, b = u.double(), w.double(), torch.tensor(b, dtype=torch.float64)
        z = torch.randn(8, len(u), generator=_gen(seed), dtype=torch.float64)
        got = unpack_pair(call_without(AUTOGRAD + DETERMINANTS + PLANAR, "the matrix determinant lemma", student_fn,
                                       z.clone(), u.clone(), w.clone(), b.clone()), "planar_forward")
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
                              "The log-determinant is the log of its absolute value" + HINT + ".")
        wu = w @ u
        assert_close(got[1], expected, f"log_det for u = {u.tolist()}, w = {w.tolist()}", atol=1e-8,
                     slips={"h = tanh is used where its derivative h' = 1 - tanh^2 is needed" + HINT:
                            torch.log(torch.abs(1 + wu * h)),
                            "the 1 + is missing (det(I + a b^T) = 1 + b^T a)" + HINT: torch.log(torch.abs(wu * (1 - h**2))),
                            "the sign is flipped": -expected})


@exercise(2, "the u-hat reparametrisation", reference=_u_hat_reference)
def u_hat(student_fn):
    """Check exercise 2: ``student_fn(u, w)`` returns ``u + (m(w.u) - w.u) w / ||w||^2``.

    ``m(a) = -1 + softplus(a)``; four cases, one with ``w.u = 800`` (where ``exp`` overflows). The
    library's ``planar_u_hat`` is switched off while the student's code runs. Returns the
    student's function when it is right, and one built on ``planar_u_hat`` when not attempted.

    Example:
        >>> def mine(u, w):
        ...     wu = w @ u
        ...     return u + (-1 + F.softplus(wu) - wu) * w / (w @ w)
        >>> u_hat(mine) is mine
        Exercise 2 (the u-hat reparametrisation): correct. Well done!
        True
    """
    cases = [(torch.tensor([1.0, 0.0]), torch.tensor([-3.0, 0.5])),     # w.u = -3: corrected
             (torch.tensor([0.3, 0.4]), torch.tensor([2.0, 1.0])),      # w.u = 1: moved a little
             (torch.tensor([0.5, -1.0, 2.0]), torch.tensor([1.0, 2.0, 0.5])),
             (torch.tensor([1.0, 1.0]), torch.tensor([400.0, 400.0]))]  # w.u = 800: exp overflows
    for u, w in cases:
        u, w = u.double(), w.double()
        expected = planar_u_hat(u, w)[0]
        got = call_without([("course_utils.flows.planar.planar_u_hat", "planar_u_hat")],
                           "the reparametrisation itself", student_fn, u.clone(), w.clone())
        wu = w @ u
        if isinstance(got, torch.Tensor) and not torch.isfinite(got).all():
            raise CheckFailed(f"u_hat for w.u = {wu.item():g} came back as {got.tolist()}: log(1 + exp(w.u)) "
                              "overflows for large w.u. Use torch.nn.functional.softplus" + HINT + ".")
        assert_close(got, expected, f"u_hat for u = {u.tolist()}, w = {w.tolist()} (w.u = {wu.item():g})", atol=1e-8,
                     slips={"w is divided by ||w|| instead of ||w||^2" + HINT: u + (-1 + F.softplus(wu) - wu) * w / w.norm(),
                            "m(a) = softplus(a) is used without the -1" + HINT: u + (F.softplus(wu) - wu) * w / (w @ w),
                            "u is returned unchanged": u})
        w_dot = w @ torch.as_tensor(got, dtype=torch.float64)
        if not w_dot > -1:
            raise CheckFailed(f"w.u_hat = {w_dot.item():.4f} should be above -1")


@exercise(3, "the reverse-KL loss", reference=reverse_kl_loss)
def reverse_kl(student_fn):
    """Check exercise 3: ``student_fn(flow, U, z0)`` returns ``mean(log q_0(z_0) - log_det + U(z_K))``.

    Two energies, four random planar layers, 64 samples, float64; the library's
    ``reverse_kl_loss`` and ``torch.distributions`` are switched off while the student's code
    runs. Returns the student's function when it is right, and ``reverse_kl_loss`` when not
    attempted yet.

    Example:
        >>> def mine(flow, U, z0):
        ...     z, log_det = flow(z0)
        ...     return (-0.5 * (z0**2).sum(1) - math.log(2 * math.pi) - log_det + U(z)).mean()
        >>> reverse_kl(mine) is mine
        Exercise 3 (the reverse-KL loss): correct. Well done!
        True
    """
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
            slips = {"the log-det is added instead of subtracted (log q_K = log q_0 - sum log|det|)" + HINT:
                     (log_q0 + log_det + U(zK)).mean(),
                     "the energy is evaluated at z_0 instead of z_K" + HINT: (log_q0 - log_det + U(z0)).mean(),
                     "the energy enters with the wrong sign (the target's log-density is -U)":
                     (log_q0 - log_det - U(zK)).mean(),
                     "log q_0(z_0) is left out": (-log_det + U(zK)).mean()}
        got = call_without([("course_utils.flows.planar_vi.reverse_kl_loss", "reverse_kl_loss"),
                            ("torch.distributions.Distribution.__init__", "torch.distributions")],
                           "writing the free energy yourself", student_fn, flow, U, z0.clone())
        assert_close(got, expected, f"the loss with energy {U.__name__} and 4 planar layers", atol=1e-8,
                     slips=slips)


@exercise(4, "the planar inverse by bisection", reference=_bisection_reference)
def solve_planar(student_fn):
    """Check exercise 4: ``student_fn(c, wu_hat, b)`` solves ``a + wu_hat tanh(a + b) = c`` for ``a``.

    Element-wise, to a residual below 1e-6, for four (wu_hat, b), including wu_hat = 8 where plain
    Newton steps cycle. Returns the student's function when it is right, and a bisection when
    not attempted yet.

    Example:
        >>> solve_planar(_bisection_reference) is _bisection_reference
        Exercise 4 (the planar inverse by bisection): correct. Well done!
        True
    """
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
                hint = (" It is c - wu_hat tanh(c + b): one fixed-point step, not the root; iterate to "
                        "convergence" + HINT + ".")
            raise CheckFailed(f"for wu_hat = {wu_hat}, b = {b}: a + wu_hat tanh(a + b) should equal c, but the "
                              f"largest residual is {worst:.3g}.{hint or ' See the hint under the exercise.'}")
