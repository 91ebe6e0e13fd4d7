"""Notebook 05's checks: pass the reference, flag 'not attempted', fail plausible wrong answers."""

import math

import pytest
import torch
import torch.nn.functional as F

from course_utils.checks import CheckFailed
from course_utils.checks import nb05
from course_utils.flows import PlanarFlow, planar_u_hat, reverse_kl_loss

from checkcontract import contract_tests, slips_named


def planar(z, u, w, b, log_det=lambda h, wu: torch.log(torch.abs(1 + wu * (1 - h**2))), act=torch.tanh):
    h = torch.tanh(z @ w + b)
    return z + act(z @ w + b)[:, None] * u, log_det(h, w @ u)


def u_hat(u, w):
    wu = w @ u
    return u + (-1 + F.softplus(wu) - wu) * w / (w @ w)


def reverse_kl(flow, U, z0, sign=-1, energy_at_start=False, energy_sign=1, with_q0=True):
    z, log_det = flow(z0)
    log_q0 = -0.5 * (z0**2).sum(1) - math.log(2 * math.pi)
    return (with_q0 * log_q0 + sign * log_det + energy_sign * U(z0 if energy_at_start else z)).mean()


def bisection(c, wu_hat, b, steps=60):
    lo, hi = c - wu_hat.abs(), c + wu_hat.abs()
    for _ in range(steps):
        mid = (lo + hi) / 2
        low = mid + wu_hat * torch.tanh(mid + b) < c
        lo, hi = torch.where(low, mid, lo), torch.where(low, hi, mid)
    return (lo + hi) / 2


def library_solve(c, wu_hat, b):
    """The library's safeguarded Newton, through a PlanarFlow with w = (1, 0): a second reference."""
    layer = PlanarFlow(2).double()
    with torch.no_grad():
        layer.w.copy_(torch.tensor([1.0, 0.0])), layer.b.copy_(b)
        # raw u with softplus(w.u) = 1 + wu_hat, i.e. w.u = log(exp(1 + wu_hat) - 1)
        layer.u.copy_(torch.tensor([math.log(math.expm1(1 + wu_hat.item())), 0.0]))
    return layer._solve(c, F.softplus(layer.w @ layer.u).detach())


CASES = {
    "planar_forward": (
        nb05.planar_forward, planar,
        {"no abs": lambda z, u, w, b: planar(z, u, w, b, log_det=lambda h, wu: torch.log(1 + wu * (1 - h**2))),
         "h for h'": lambda z, u, w, b: planar(z, u, w, b, log_det=lambda h, wu: torch.log(torch.abs(1 + wu * h))),
         "no 1 +": lambda z, u, w, b: planar(z, u, w, b, log_det=lambda h, wu: torch.log(torch.abs(wu * (1 - h**2)))),
         "linear h": lambda z, u, w, b: planar(z, u, w, b, act=lambda s: s),
         "scalar log-det": lambda z, u, w, b: (planar(z, u, w, b)[0], planar(z, u, w, b)[1].sum())},
    ),
    "u_hat": (
        nb05.u_hat, u_hat,
        {"naive softplus": lambda u, w: u + (-1 + torch.log(1 + torch.exp(w @ u)) - w @ u) * w / (w @ w),
         "norm not squared": lambda u, w: u + (-1 + F.softplus(w @ u) - w @ u) * w / w.norm(),
         "no -1": lambda u, w: u + (F.softplus(w @ u) - w @ u) * w / (w @ w),
         "unchanged": lambda u, w: u},
    ),
    "reverse_kl": (
        nb05.reverse_kl, reverse_kl,
        {"plus log-det": lambda f, U, z0: reverse_kl(f, U, z0, sign=1),
         "energy at z0": lambda f, U, z0: reverse_kl(f, U, z0, energy_at_start=True),
         "energy sign": lambda f, U, z0: reverse_kl(f, U, z0, energy_sign=-1),
         "no log q0": lambda f, U, z0: reverse_kl(f, U, z0, with_q0=False)},
    ),
    "solve_planar": (
        nb05.solve_planar, bisection,
        {"unsolved": lambda c, wu, b: c.clone(),
         "one fixed-point step": lambda c, wu, b: c - wu * torch.tanh(c + b),
         "too few halvings": lambda c, wu, b: bisection(c, wu, b, steps=8),
         "wrong shape": lambda c, wu, b: bisection(c, wu, b).mean()},
    ),
}

(test_reference_passes, test_not_attempted_is_friendly, test_wrong_answers_fail_with_numbers,
 test_each_check_rejects_at_least_two_wrong_answers) = contract_tests(CASES)


def test_library_solver_passes_the_bisection_check():
    assert nb05.solve_planar(library_solve) is library_solve and nb05.solve_planar.last_result is True


test_slips_are_named = slips_named(CASES, {
    ("planar_forward", "no abs"): "absolute value",
    ("planar_forward", "h for h'"): "derivative",
    ("u_hat", "naive softplus"): "overflows",
    ("u_hat", "norm not squared"): "||w||^2",
    ("reverse_kl", "plus log-det"): "added instead of subtracted",
    ("solve_planar", "one fixed-point step"): "fixed-point step",
})


@pytest.mark.parametrize("name,shortcut,words", [
    ("planar_forward", lambda z, u, w, b: (z + torch.tanh(z @ w + b)[:, None] * u, torch.stack([
        torch.linalg.slogdet(torch.autograd.functional.jacobian(lambda v: v + torch.tanh(v @ w + b) * u, zi)).logabsdet
        for zi in z])), "jacobian"),
    ("u_hat", lambda u, w: planar_u_hat(u, w)[0], "planar_u_hat"),
    ("reverse_kl", lambda flow, U, z0: reverse_kl_loss(flow, U, z0), "reverse_kl_loss"),
])
def test_shortcuts_are_refused_kindly(name, shortcut, words):
    with pytest.raises(CheckFailed, match=f"calls .*{words}.*switched off"):
        CASES[name][0](shortcut)
