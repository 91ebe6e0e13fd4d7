"""Notebook 08's checks: pass the reference, flag 'not attempted', fail plausible wrong answers."""

import torch

from course_utils.checks import nb08
from course_utils.flows import SpectralNormLinear

from checkcontract import contract_tests, slips_named


def power(W, u, n_steps, normalise=True, transpose=True, extra=0, squared=False):
    for _ in range(n_steps + extra):
        v = (W.T if transpose else W) @ u
        v = v / v.norm() if normalise else v
        u = W @ v
        u = u / u.norm() if normalise else u
    return (u @ W @ v) ** (2 if squared else 1)


def library_power(W, u, n_steps):
    """SpectralNormLinear's own power iteration, started from the same u: a second reference."""
    layer = SpectralNormLinear(W.shape[1], W.shape[0]).double()
    with torch.no_grad():
        layer.weight.copy_(W)
        layer.u.copy_(u)
    layer.power_iteration(n_steps)
    return layer.power_estimate().detach()


def fixed_point(g, y, n_iter, start=None, sign=-1, from_x=False, extra=0):
    x = y if start is None else start(y)
    for _ in range(n_iter + extra):
        x = (x if from_x else y) + sign * g(x)
    return x


def series(g, x, v, n_terms, sign=lambda k: (-1) ** (k + 1), divide=True, close_with_v=True, first=1):
    x = x.detach().requires_grad_(True)
    gx = g(x)
    w, total = v, torch.zeros(x.shape[0], dtype=x.dtype)
    for k in range(first, n_terms + 1):
        if k > 0:
            (w,) = torch.autograd.grad(gx, x, w, create_graph=True)
        total = total + sign(k) * (w * (v if close_with_v else w)).sum(1) / (k if divide and k > 0 else 1)
    return total


def series_jvp(g, x, v, n_terms):
    """Jacobian-vector products instead of vector-Jacobian ones: v^T J^k v is the same number."""
    total, w = torch.zeros(x.shape[0], dtype=x.dtype), v
    for k in range(1, n_terms + 1):
        w = torch.func.jvp(g, (x,), (w,))[1]
        total = total + (-1) ** (k + 1) * (w * v).sum(1) / k
    return total


def exact_log_det(g, x, v, n_terms):
    J = torch.stack([torch.autograd.functional.jacobian(lambda p: g(p[None])[0], xi) for xi in x])
    return torch.linalg.slogdet(torch.eye(x.shape[1], dtype=x.dtype) + J).logabsdet


def roulette(traces, m, n_exact, p, weight=lambda k, n_exact, p: (1 - p) ** (k - n_exact), last=None):
    total = torch.zeros_like(traces[0])
    for k in range(1, (n_exact + m if last is None else last(n_exact, m)) + 1):
        w = 1.0 if k <= n_exact else weight(k, n_exact, p)
        total = total + (-1) ** (k + 1) * traces[k - 1] / (k * w)
    return total


CASES = {
    "power_iteration": (
        nb08.power_iteration, power,
        {"no normalisation": lambda W, u, n: power(W, u, n, normalise=False),
         "W instead of W^T": lambda W, u, n: power(W, u, n, transpose=False),
         "sigma squared": lambda W, u, n: power(W, u, n, squared=True),
         "one step too many": lambda W, u, n: power(W, u, n, extra=1),
         "one step too few": lambda W, u, n: power(W, u, max(n - 1, 0)) if n > 1 else power(W, u, 1) * 0.5,
         "exact norm (shortcut)": lambda W, u, n: torch.linalg.matrix_norm(W, 2),
         "Frobenius norm": lambda W, u, n: (W**2).sum().sqrt(),
         "exact norm via torch.linalg.norm": lambda W, u, n: torch.linalg.norm(W, 2)},
    ),
    "fixed_point_inverse": (
        nb08.fixed_point_inverse, fixed_point,
        {"starts at 0": lambda g, y, n: fixed_point(g, y, n, start=torch.zeros_like),
         "adds g": lambda g, y, n: fixed_point(g, y, n, sign=+1),
         "x - g(x)": lambda g, y, n: fixed_point(g, y, n, from_x=True),
         "one step too many": lambda g, y, n: fixed_point(g, y, n, extra=1),
         "a single step": lambda g, y, n: y - g(y)},
    ),
    "log_det_series": (
        nb08.log_det_series, series,
        {"no alternation": lambda g, x, v, n: series(g, x, v, n, sign=lambda k: 1.0),
         "flipped signs": lambda g, x, v, n: series(g, x, v, n, sign=lambda k: (-1) ** k),
         "no 1/k": lambda g, x, v, n: series(g, x, v, n, divide=False),
         "starts at k = 0": lambda g, x, v, n: series(g, x, v, n, first=0),
         "w . w": lambda g, x, v, n: series(g, x, v, n, close_with_v=False),
         "exact log-det": exact_log_det,
         "one term too many": lambda g, x, v, n: series(g, x, v, n + 1),
         "summed over the batch": lambda g, x, v, n: series(g, x, v, n).sum()},
    ),
    "roulette_estimate": (
        nb08.roulette_estimate, roulette,
        {"not reweighted": lambda t, m, n, p: roulette(t, m, n, p, weight=lambda k, ne, p: 1.0),
         "pmf": lambda t, m, n, p: roulette(t, m, n, p, weight=lambda k, ne, p: p * (1 - p) ** (k - ne - 1)),
         "p for 1 - p": lambda t, m, n, p: roulette(t, m, n, p, weight=lambda k, ne, p: p ** (k - ne)),
         "exponent off by one": lambda t, m, n, p: roulette(t, m, n, p, weight=lambda k, ne, p: (1 - p) ** (k - ne + 1)),
         "only m terms": lambda t, m, n, p: roulette(t, m, n, p, last=lambda ne, m: m),
         "one term too few": lambda t, m, n, p: roulette(t, m, n, p, last=lambda ne, m: ne + m - 1)},
    ),
}

(test_reference_passes, test_not_attempted_is_friendly, test_wrong_answers_fail_with_numbers,
 test_each_check_rejects_at_least_two_wrong_answers) = contract_tests(CASES)


def test_independent_solutions_pass():
    """Right answers written differently: the library's power iteration, JVPs instead of VJPs."""
    assert nb08.power_iteration(library_power) is library_power
    assert nb08.log_det_series(series_jvp) is series_jvp


test_slips_are_named = slips_named(CASES, {
    ("power_iteration", "no normalisation"): "never normalised",
    ("power_iteration", "W instead of W^T"): "W^T u",
    ("power_iteration", "sigma squared"): "sigma^2",
    ("power_iteration", "exact norm (shortcut)"): "switched off",
    ("log_det_series", "exact log-det"): "switched off",
    ("power_iteration", "Frobenius norm"): "Frobenius",
    ("power_iteration", "exact norm via torch.linalg.norm"): "switched off",
    ("fixed_point_inverse", "starts at 0"): "x_0 = 0",
    ("fixed_point_inverse", "adds g"): "adds g",
    ("fixed_point_inverse", "x - g(x)"): "instead of from y",
    ("log_det_series", "no alternation"): "alternate",
    ("log_det_series", "no 1/k"): "divided by k",
    ("log_det_series", "starts at k = 0"): "k = 0",
    ("log_det_series", "w . w"): "(w . v)",
    ("roulette_estimate", "not reweighted"): "not reweighted",
    ("roulette_estimate", "pmf"): "P(N = k)",
    ("roulette_estimate", "exponent off by one"): "off by one",
    ("roulette_estimate", "only m terms"): "only m terms",
})
