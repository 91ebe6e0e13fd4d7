"""Notebook 08's slip corpus (``RIGHT``/``WRONG``, see ``corpus_from`` in ``tests/checkcontract.py``)."""

import functools

import torch
import torch.nn.functional as F

from test_checks_nb08 import exact_log_det, fixed_point, library_power, power, roulette


# ------------------------------------------------------------------ exercise 1: power iteration
def power_normalize(W, u, n_steps):
    for _ in range(n_steps):
        v = F.normalize(W.T @ u, dim=0)
        u = F.normalize(W @ v, dim=0)
    return torch.dot(u, W @ v)


def power_norm_of_wv(W, u, n_steps):
    for _ in range(n_steps):
        v = u @ W
        v = v / torch.linalg.vector_norm(v)
        wv = torch.mv(W, v)
        u = wv / wv.norm()
    return wv.norm()                                  # u^T W v = |W v| for u = W v / |W v|


def power_v_not_normalised(W, u, n_steps):
    for _ in range(n_steps):
        v = W.T @ u
        u = W @ v
        u = u / u.norm()
    return u @ W @ v


def power_u_not_normalised(W, u, n_steps):
    for _ in range(n_steps):
        v = W.T @ u
        v = v / v.norm()
        u = W @ v
    return u @ W @ v


def power_returns_vector(W, u, n_steps):
    for _ in range(n_steps):
        v = W.T @ u / (W.T @ u).norm()
        u = W @ v / (W @ v).norm()
    return W @ v


# ------------------------------------------------------------------ exercise 2: fixed point
def fixed_point_while(g, y, n_iter):
    x, k = y.clone(), 0
    while k < n_iter:
        x = torch.sub(y, g(x))
        k += 1
    return x


def fixed_point_aliased(g, y, n_iter):
    x = y                                              # the same tensor: x.copy_ below edits y
    for _ in range(n_iter):
        x.copy_(y - g(x))
    return x


def fixed_point_history(g, y, n_iter):
    xs = [y]
    for _ in range(n_iter):
        xs.append(y - g(xs[-1]))
    return xs


# ------------------------------------------------------------------ exercise 3: the series
def series(g, x, v, n_terms, sign=lambda k: (-1) ** (k + 1), divide=True, close_with_v=True, first=1,
           create_graph=True, retain_graph=True, update_w=True):
    x = x.detach().requires_grad_(True)
    gx = g(x)
    w, total = v, torch.zeros(x.shape[0], dtype=x.dtype)
    for k in range(first, n_terms + 1):
        if k > 0:
            (new,) = torch.autograd.grad(gx, x, w if update_w else v, retain_graph=retain_graph,
                                         create_graph=create_graph)
            w = new
        total = total + sign(k) * (w * (v if close_with_v else w)).sum(1) / (k if divide and k > 0 else 1)
    return total


def series_stack(g, x, v, n_terms):
    x = x.detach().requires_grad_(True)
    gx, w, terms = g(x), v, []
    for k in range(1, n_terms + 1):
        w = torch.autograd.grad(gx, x, grad_outputs=w, create_graph=True)[0]
        terms.append((-1) ** (k + 1) / k * torch.einsum("nd,nd->n", w, v))
    return torch.stack(terms).sum(0)


def series_vjp(g, x, v, n_terms):
    _, vjp = torch.func.vjp(g, x.detach())
    w, total = v, 0
    for k in range(1, n_terms + 1):
        (w,) = vjp(w)
        total = total + (-1) ** (k + 1) * (w * v).sum(1) / k
    return total


# ------------------------------------------------------------------ exercise 4: Russian roulette
def roulette_vectorised(traces, m, n_exact, p):
    k = torch.arange(1, n_exact + m + 1, dtype=traces.dtype)
    survival = (1 - p) ** (k - n_exact).clamp(min=0)
    weights = (-1) ** (k + 1) / (k * survival)
    return (weights[:, None] * traces[: n_exact + m]).sum(0)


def roulette_cumulative(traces, m, n_exact, p):
    total, survival = 0.0, 1.0
    for k in range(1, n_exact + m + 1):
        if k > n_exact:
            survival *= 1 - p
        total = total + (-1) ** (k + 1) * traces[k - 1] / (k * survival)
    return total


def roulette_edits_traces(traces, m, n_exact, p):
    for k in range(1, n_exact + m + 1):
        survival = 1.0 if k <= n_exact else (1 - p) ** (k - n_exact)
        traces[k - 1] *= (-1) ** (k + 1) / (k * survival)          # the caller's traces change
    return traces[: n_exact + m].sum(0)


RIGHT = {
    "power_iteration": {
        "the loop": power,
        "F.normalize and dot": power_normalize,
        "row vectors, |W v|": power_norm_of_wv,
        "the library's layer": library_power,
    },
    "fixed_point_inverse": {
        "the loop": fixed_point,
        "while, torch.sub, a copy": fixed_point_while,
        "functools.reduce": lambda g, y, n: functools.reduce(lambda x, _: y - g(x), range(n), y),
    },
    "log_det_series": {
        "vector-Jacobian products, create_graph": series,
        "a stack of terms": series_stack,
        "torch.func.vjp": series_vjp,
    },
    "roulette_estimate": {
        "the loop": roulette,
        "vectorised weights": roulette_vectorised,
        "running survival product": roulette_cumulative,
    },
}


WRONG = {
    "power_iteration": {
        "no normalisation": (lambda W, u, n: power(W, u, n, normalise=False), "never normalised"),
        "v not normalised": (power_v_not_normalised, "v is not normalised"),
        "u not normalised": (power_u_not_normalised, "u is not normalised"),
        "W instead of W^T": (lambda W, u, n: power(W, u, n, transpose=False), "W^T u"),
        "sigma squared": (lambda W, u, n: power(W, u, n, squared=True), "sigma^2"),
        "one step too many": (lambda W, u, n: power(W, u, n, extra=1), "one step too many"),
        "one step too few": (lambda W, u, n: power(W, u, n - 1), "never assigned"),
        "exact norm (shortcut)": (lambda W, u, n: torch.linalg.matrix_norm(W, 2), "switched off"),
        "torch.linalg.norm(W, 2) (shortcut)": (lambda W, u, n: torch.linalg.norm(W, 2), "switched off"),
        "Frobenius norm": (lambda W, u, n: (W ** 2).sum().sqrt(), "Frobenius"),
        "returns W v, a vector": (power_returns_vector, "one number"),
    },
    "fixed_point_inverse": {
        "starts at 0": (lambda g, y, n: fixed_point(g, y, n, start=torch.zeros_like), "x_0 = 0"),
        "adds g": (lambda g, y, n: fixed_point(g, y, n, sign=+1), "adds g"),
        "x - g(x)": (lambda g, y, n: fixed_point(g, y, n, from_x=True), "instead of from y"),
        "one step too many": (lambda g, y, n: fixed_point(g, y, n, extra=1), "one step too many"),
        "one step too few": (lambda g, y, n: fixed_point(g, y, n, extra=-1), "one step too few"),
        "a single step": (lambda g, y, n: y - g(y), "a single step"),
        "edits y through an alias": (fixed_point_aliased, "in place"),
        "returns every iterate": (fixed_point_history, "the last iterate"),
    },
    "log_det_series": {
        "no alternation": (lambda g, x, v, n: series(g, x, v, n, sign=lambda k: 1.0), "alternate"),
        "flipped signs": (lambda g, x, v, n: series(g, x, v, n, sign=lambda k: (-1) ** k), "signs are flipped"),
        "no 1/k": (lambda g, x, v, n: series(g, x, v, n, divide=False), "divided by k"),
        "starts at k = 0": (lambda g, x, v, n: series(g, x, v, n, first=0), "k = 0"),
        "w . w": (lambda g, x, v, n: series(g, x, v, n, close_with_v=False), "(w . v)"),
        "exact log-det": (exact_log_det, "switched off"),
        "one term too many": (lambda g, x, v, n: series(g, x, v, n + 1), "one term too many"),
        "one term too few": (lambda g, x, v, n: series(g, x, v, n - 1), "one term too few"),
        "w not updated": (lambda g, x, v, n: series(g, x, v, n, update_w=False), "w is not updated"),
        "no create_graph": (lambda g, x, v, n: series(g, x, v, n, create_graph=False), "create_graph"),
        "no retain_graph": (lambda g, x, v, n: series(g, x, v, n, create_graph=False, retain_graph=False),
                            "retain_graph"),
        "summed over the batch": (lambda g, x, v, n: series(g, x, v, n).sum(), "one number per sample"),
    },
    "roulette_estimate": {
        "not reweighted": (lambda t, m, n, p: roulette(t, m, n, p, weight=lambda k, ne, p: 1.0), "not reweighted"),
        "pmf": (lambda t, m, n, p: roulette(t, m, n, p, weight=lambda k, ne, p: p * (1 - p) ** (k - ne - 1)),
                "P(N = k)"),
        "p for 1 - p": (lambda t, m, n, p: roulette(t, m, n, p, weight=lambda k, ne, p: p ** (k - ne)), "1 - p"),
        "exponent off by one": (lambda t, m, n, p: roulette(t, m, n, p, weight=lambda k, ne, p: (1 - p) ** (k - ne + 1)),
                                "off by one"),
        "only m terms": (lambda t, m, n, p: roulette(t, m, n, p, last=lambda ne, m: m), "only m terms"),
        "one term too few": (lambda t, m, n, p: roulette(t, m, n, p, last=lambda ne, m: ne + m - 1), "one term too few"),
        "multiplied by the survival": (lambda t, m, n, p: roulette(t, m, n, p, weight=lambda k, ne, p:
                                                                   1 / (1 - p) ** (k - ne)), "multiplied"),
        "edits traces in place": (roulette_edits_traces, "in place"),
        "traces[k] for term k": (lambda t, m, n, p: roulette(t[1:], m, n, p), "traces[k - 1]"),
    },
}
