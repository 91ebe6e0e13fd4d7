"""Checks for notebook 05: planar flows and variational inference."""

import math

import torch
import torch.nn.functional as F

from ..flows.base import standard_normal_log_prob
from ..flows.planar import planar_u_hat
from ..flows.planar_vi import reverse_kl_loss
from . import CheckFailed, assert_close, assert_shape, call_student, exercise, first_named, number, unpack_pair
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



#: the raw error of a per-sample tensor (n,) meeting a per-feature one (D,), named
SHAPES = {r"The size of tensor a \(\d+\) must match the size of tensor b \(\d+\)":
          "a per-sample tensor of shape (n,) met a per-feature one of shape (D,): give h a dimension, "
          "h[:, None] * u, and make w.u one number, w @ u" + HINT}


@exercise(1, "the planar map and its log-determinant")
def planar_forward(student_fn):
    """Check exercise 1: ``student_fn(z, u, w, b)`` returns ``(y, log_det)``, ``y = z + u tanh(w.z + b)``.

    ``log_det`` is compared with ``slogdet`` of the autograd Jacobian for three layers, one with
    ``w.u < -1``, and a float32 layer; autograd, determinants and the library's planar layer are
    switched off while the student's code runs (the exercise is the matrix determinant lemma).

    Example:
        >>> def mine(z, u, w, b):
        ...     h = torch.tanh(z @ w + b)
        ...     return z + h[:, None] * u, torch.log(torch.abs(1 + (w @ u) * (1 - h**2)))
        >>> planar_forward(mine)
        Exercise 1 (the planar map and its log-determinant): correct. Well done!
    """
    cases = [  # (u, w, b, dtype): one with w.u < -1, where 1 + w.u h' changes sign and abs matters
        (torch.tensor([0.5, -0.3]), torch.tensor([1.0, 2.0]), 0.3, torch.float64),
        (torch.tensor([-2.0, 0.5]), torch.tensor([1.5, -0.5]), -0.2, torch.float64),
        (torch.tensor([0.2, 0.1, -0.4]), torch.tensor([-1.0, 0.5, 0.7]), 0.0, torch.float64),
        (torch.tensor([0.7, -0.2]), torch.tensor([0.8, 1.1]), 0.1, torch.float32),
    ]
    failures = []
    for seed, (u, w, b, dtype) in enumerate(cases):
        u, w, b = u.to(dtype), w.to(dtype), torch.tensor(b, dtype=dtype)
        z = torch.randn(8, len(u), generator=_gen(seed), dtype=torch.float64).to(dtype)
        got = unpack_pair(call_student(student_fn, z, u, w, b, forbidden=AUTOGRAD + DETERMINANTS + PLANAR,
                                       reason="the matrix determinant lemma", errors=SHAPES), "planar_forward")
        z, u, w, b = z.double(), u.double(), w.double(), b.double()
        h = torch.tanh(z @ w + b)
        y = z + h[:, None] * u
        what = f"u = {[number(v, 4) for v in u.tolist()]}, w = {[number(v, 4) for v in w.tolist()]}".replace("'", "")
        try:
            assert_close(got[0], y, f"y for {what}", atol=1e-10,
                         slips={"u is multiplied by w.z + b instead of tanh(w.z + b)": z + (z @ w + b)[:, None] * u})
            f = lambda v: v + torch.tanh(v @ w + b) * u
            expected = torch.stack([torch.linalg.slogdet(torch.autograd.functional.jacobian(f, zi)).logabsdet
                                    for zi in z])
            assert_shape(got[1], (z.shape[0],), "log_det (one number per sample)")
            if torch.isnan(torch.as_tensor(got[1])).any():
                raise CheckFailed(f"log_det contains NaN for {what}: here w.u = {number((w @ u).item(), 3)} < -1, so "
                                  "1 + (w.u) h'(w.z + b) is negative at some points. The log-determinant is the log "
                                  "of its absolute value" + HINT + ".")
            wu = w @ u
            assert_close(got[1], expected, f"log_det for {what}", atol=1e-8,
                         slips={"h = tanh is used where its derivative h' = 1 - tanh^2 is needed" + HINT:
                                torch.log(torch.abs(1 + wu * h)),
                                "the 1 + is missing (det(I + a b^T) = 1 + b^T a)" + HINT:
                                torch.log(torch.abs(wu * (1 - h**2))),
                                "h' is taken as (1 - h)^2 instead of 1 - h^2" + HINT:
                                torch.log(torch.abs(1 + wu * (1 - h) ** 2)),
                                "the determinant is returned, not its log": torch.abs(1 + wu * (1 - h**2)),
                                "the absolute value is taken of (w.u) h' alone; it belongs around 1 + (w.u) h'" + HINT:
                                torch.log(1 + torch.abs(wu * (1 - h**2))),
                                "the sign is flipped": -expected})
        except CheckFailed as failure:
            failures.append(failure)
    first_named(failures)


@exercise(2, "the u-hat reparametrisation", reference=_u_hat_reference)
def u_hat(student_fn):
    """Check exercise 2: ``student_fn(u, w)`` returns ``u + (m(w.u) - w.u) w / ||w||^2``.

    ``m(a) = -1 + softplus(a)``; four cases, one with ``w.u = 800`` (where ``exp`` overflows), and
    a float32 one (the notebook compares with a float32 layer's ``u_hat``, so the dtype must stay).
    The library's ``planar_u_hat`` is switched off while the student's code runs. Returns the
    student's function when it is right, and one built on ``planar_u_hat`` when not attempted.

    Example:
        >>> def mine(u, w):
        ...     wu = w @ u
        ...     return u + (-1 + F.softplus(wu) - wu) * w / (w @ w)
        >>> u_hat(mine) is mine
        Exercise 2 (the u-hat reparametrisation): correct. Well done!
        True
    """
    cases = [(torch.tensor([1.0, 0.0]), torch.tensor([-3.0, 0.5]), torch.float64),     # w.u = -3: corrected
             (torch.tensor([0.3, 0.4]), torch.tensor([2.0, 1.0]), torch.float64),      # w.u = 1: moved a little
             (torch.tensor([0.5, -1.0, 2.0]), torch.tensor([1.0, 2.0, 0.5]), torch.float64),
             (torch.tensor([1.0, 1.0]), torch.tensor([400.0, 400.0]), torch.float64),  # w.u = 800: exp overflows
             (torch.tensor([2.0, -1.0]), torch.tensor([-1.0, 0.5]), torch.float32)]    # as the notebook's layer
    failures = []
    for u, w, dtype in cases:
        u, w = u.to(dtype), w.to(dtype)
        expected = planar_u_hat(u.double(), w.double())[0]
        got = call_student(student_fn, u, w, forbidden=[("course_utils.flows.planar.planar_u_hat", "planar_u_hat")],
                           reason="the reparametrisation itself")
        u, w = u.double(), w.double()
        wu = w @ u
        what = f"u_hat for u = {[number(v, 4) for v in u.tolist()]}, w = {[number(v, 4) for v in w.tolist()]} " \
               f"(w.u = {number(wu)})"
        what = what.replace("'", "")
        if isinstance(got, torch.Tensor) and not torch.isfinite(got).all():
            raise CheckFailed(f"{what} came back as {[number(v) for v in got.tolist()]}: log(1 + exp(w.u)) overflows "
                              "for large w.u. Use torch.nn.functional.softplus" + HINT + ".".replace("'", ""))
        if isinstance(got, torch.Tensor) and got.is_floating_point() and got.dtype != dtype:
            raise CheckFailed(f"{what} came back as {str(got.dtype).replace('torch.', '')} for "
                              f"{str(dtype).replace('torch.', '')} u and w: keep the input's dtype (a later cell "
                              "compares your u_hat with a float32 layer's): make new tensors with dtype=u.dtype.")
        try:
            assert_close(got, expected, what, atol=1e-8,
                         slips={"w is divided by ||w|| instead of ||w||^2" + HINT: u + (-1 + F.softplus(wu) - wu) * w / w.norm(),
                                "m(a) = softplus(a) is used without the -1" + HINT: u + (F.softplus(wu) - wu) * w / (w @ w),
                                "m(a) = -1 + a is used: m(a) = -1 + softplus(a)" + HINT: u - w / (w @ w),
                                "the correction (m(w.u) - w.u) w / ||w||^2 is subtracted instead of added":
                                u - (-1 + F.softplus(wu) - wu) * w / (w @ w),
                                "u is returned unchanged": u})
            w_dot = w @ torch.as_tensor(got, dtype=torch.float64)
            if not w_dot > -1:
                raise CheckFailed(f"w.u_hat = {number(w_dot.item(), 4)} should be above -1")
        except CheckFailed as failure:
            failures.append(failure)
    first_named(failures)


@exercise(3, "the reverse-KL loss", reference=reverse_kl_loss)
def reverse_kl(student_fn):
    """Check exercise 3: ``student_fn(flow, U, z0)`` returns ``mean(log q_0(z_0) - log_det + U(z_K))``.

    Two energies, four random planar layers, 64 samples, float64, and a float32 flow as the
    notebook's trained ones; the library's ``reverse_kl_loss`` is switched off while the
    student's code runs (``torch.distributions`` is allowed for the base density: the exercise
    is the free energy). Returns the student's function when it is right, and
    ``reverse_kl_loss`` when not attempted yet.

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

    failures = []
    for seed, U, dtype in ((0, U1, torch.float64), (1, U3, torch.float64), (2, U1, torch.float32)):
        torch.manual_seed(seed)
        flow = FlowSequential(*[PlanarFlow(2) for _ in range(4)]).to(dtype)
        with torch.no_grad():
            for p in flow.parameters():
                p.add_(0.5 * torch.randn_like(p))
        z0 = torch.randn(64, 2, generator=_gen(seed + 5), dtype=torch.float64).to(dtype)
        with torch.no_grad():
            zK, log_det = flow(z0)
            log_q0 = standard_normal_log_prob(z0)
            energy, energy0 = U(zK), U(z0)
            log_q0, log_det, energy, energy0 = (v.double() for v in (log_q0, log_det, energy, energy0))
            log_qK = standard_normal_log_prob(zK).double()
            per_sample = log_q0 - log_det + energy
            expected = per_sample.mean()
            log_2pi = math.log(2 * math.pi)
            slips = {"the log-det is added instead of subtracted (log q_K = log q_0 - sum log|det|)" + HINT:
                     (log_q0 + log_det + energy).mean(),
                     "the energy is evaluated at z_0 instead of z_K" + HINT: (log_q0 - log_det + energy0).mean(),
                     "the energy enters with the wrong sign (the target's log-density is -U)":
                     (log_q0 - log_det - energy).mean(),
                     "log q_0(z_0) is left out": (-log_det + energy).mean(),
                     "log q_0 is evaluated at z_K instead of z_0" + HINT: (log_qK - log_det + energy).mean(),
                     "the constant -log(2 pi) of the 2-D Gaussian is missing" + HINT: expected + log_2pi,
                     "the constant is -1/2 log(2 pi), once, instead of once per coordinate (2 times: -log(2 pi))":
                     expected + 0.5 * log_2pi,
                     "the samples' values are summed instead of averaged (.mean())": per_sample.sum(),
                     "the log-det is summed over the samples while the other terms are averaged":
                     (log_q0 + energy).mean() - log_det.sum()}
        got = call_student(student_fn, flow, U, z0,
                           forbidden=[("course_utils.flows.planar_vi.reverse_kl_loss", "reverse_kl_loss")],
                           reason="writing the free energy yourself")
        what = f"the loss with energy {U.__name__} and 4 planar layers ({str(dtype).replace('torch.', '')})"
        if isinstance(got, torch.Tensor) and tuple(got.shape) == (z0.shape[0],):
            raise CheckFailed(f"{what} should be one number, the average over the samples, but has shape "
                              f"{tuple(got.shape)}. This is what you get when the per-sample values are returned; "
                              "average them with .mean()" + HINT + ".")
        try:
            assert_close(got, expected, what, atol=1e-8, work=64, slips=slips)
        except CheckFailed as failure:
            failures.append(failure)
    first_named(failures)


def _roots(c, wu, b):
    """The root of ``a + wu tanh(a + b) = c`` by 200 halvings (a reference for the slips' values)."""
    lo, hi = c - wu.abs() - 1, c + wu.abs() + 1
    for _ in range(200):
        mid = (lo + hi) / 2
        too_low = mid + wu * torch.tanh(mid + b) < c
        lo, hi = torch.where(too_low, mid, lo), torch.where(too_low, hi, mid)
    return (lo + hi) / 2


@exercise(4, "the planar inverse by bisection", reference=_bisection_reference)
def solve_planar(student_fn):
    """Check exercise 4: ``student_fn(c, wu_hat, b)`` solves ``a + wu_hat tanh(a + b) = c`` for ``a``.

    Element-wise, for four (wu_hat, b) in float64, including wu_hat = 8 where plain Newton steps
    cycle, to a residual below 1e-6 (the notebook inverts a float64 flow to that accuracy); a
    float32 answer is told to compute in float64. Returns the student's function when it is right,
    and a bisection when not attempted yet.

    Example:
        >>> solve_planar(_bisection_reference) is _bisection_reference
        Exercise 4 (the planar inverse by bisection): correct. Well done!
        True
    """
    # float64 only: the notebook solves in float64, and a loop run to an absolute tolerance (right in
    # float64) might never stop in float32
    cases = [(2.5, 0.3, torch.float64), (-0.9, -1.0, torch.float64), (0.0, 0.5, torch.float64),
             (8.0, 0.0, torch.float64)]
    for seed, (wu_hat, b, dtype) in enumerate(cases):
        c = (3 * torch.randn(50, generator=_gen(seed), dtype=torch.float64)).to(dtype)
        wu, bb = torch.tensor(wu_hat, dtype=dtype), torch.tensor(b, dtype=dtype)
        a = call_student(student_fn, c, wu, bb)
        assert_shape(a, c.shape, "a (one root per value of c)")
        came_back = a.dtype if isinstance(a, torch.Tensor) else torch.float64
        a = torch.as_tensor(a).detach().double()
        c, wu, bb = c.double(), wu.double(), bb.double()
        residual = a + wu * torch.tanh(a + bb) - c
        worst = residual.abs().max().item()
        # float64 needs 1e-6; float32 answers to float32 inputs are judged by float32's rounding
        limit = 1e-6 if dtype == torch.float64 else 16 * torch.finfo(torch.float32).eps * (1 + abs(wu_hat)) * 10
        if worst < limit and not (dtype == torch.float64 and came_back != torch.float64):
            continue
        root = _roots(c, wu, bb)
        where = f"for wu_hat = {wu_hat}, b = {b}{' (float32)' if dtype == torch.float32 else ''}"
        start = f"{where}: a + wu_hat tanh(a + b) should equal c, but the largest residual is {number(worst, 3)}."
        if dtype == torch.float64 and (came_back != torch.float64 or worst < 1e-4) and \
                torch.allclose(a, root, atol=1e-5, rtol=1e-5):
            raise CheckFailed(f"{start} This looks like float32 rounding: compute in float64, the dtype of c "
                              f"(your a came back as {str(came_back).replace('torch.', '')}; a bracket or constant "
                              "made with a plain torch.tensor(...) is float32)" + HINT + ".")
        if torch.allclose(a, c, atol=1e-9):
            raise CheckFailed(f"{start} It came back equal to c: the equation was not solved.")
        if torch.allclose(a, c - wu * torch.tanh(c + bb), atol=1e-9):
            raise CheckFailed(f"{start} This is what you get when one fixed-point step is taken, c - wu_hat tanh(c + b), "
                              "not the root: iterate to convergence" + HINT + ".")
        if torch.allclose(a, _roots(c, wu, torch.zeros_like(bb)), atol=1e-5):
            raise CheckFailed(f"{start} This is what you get when b is left out of tanh(a + b).")
        if torch.allclose(a, _roots(c, -wu, bb), atol=1e-5):
            raise CheckFailed(f"{start} This is what you get when the sign of wu_hat tanh(a + b) is flipped.")
        ends = torch.minimum((a - (c - wu.abs())).abs(), (a - (c + wu.abs())).abs())
        if wu_hat != 0 and ends.max() < 1e-3 * max(abs(wu_hat), 1):
            raise CheckFailed(f"{start} This is what you get when the bracket is updated the wrong way round: where "
                              "g(mid) is still below c the root is above mid, so lo moves up to mid" + HINT + ".")
        if (a - root).abs().max() < 2 * abs(wu_hat) * 2 ** -8 + 1e-12:
            raise CheckFailed(f"{start} The roots are close but not there yet: this is what you get when too few "
                              "halvings are done (each halves the bracket of width 2 |wu_hat|; 60 reach float64's "
                              "precision)" + HINT + ".")
        if wu_hat == 8.0:
            raise CheckFailed(f"{start} For wu_hat = 8 the curve is steep near its middle and flat beside it, so plain "
                              "Newton steps overshoot and cycle; keep the bracket and halve it (bisection cannot "
                              "fail)" + HINT + ".")
        raise CheckFailed(f"{start} See the hint under the exercise.")
