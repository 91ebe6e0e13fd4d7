"""Checks for notebook 08: invertible residual networks."""

from __future__ import annotations

import contextlib

import torch

from . import CheckFailed, assert_close, assert_shape, call_student, exercise
from .nb01 import DETERMINANTS

__all__ = ["power_iteration", "fixed_point_inverse", "log_det_series", "roulette_estimate"]

HINT = " (see the hint under the exercise)"
#: functions that give a spectral norm away
SPECTRAL = ["torch.linalg.svd", "torch.linalg.svdvals", "torch.linalg.matrix_norm", "torch.svd", "torch.Tensor.svd",
            "torch.linalg.eigh", "torch.linalg.eigvalsh", "numpy.linalg.svd", "numpy.linalg.norm"]
#: functions that build a whole Jacobian (the series exercise is about vector-Jacobian products)
JACOBIANS = ["torch.autograd.functional.jacobian", "torch.func.jacrev", "torch.func.jacfwd",
             ("course_utils.flows.iresnet.InvertibleResBlock.jacobian", "InvertibleResBlock.jacobian"),
             ("course_utils.flows.iresnet.log_det_estimate", "log_det_estimate")]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


#: a loop that never ran leaves its variables unassigned: one step (or term) too few
NEVER_RAN = r"referenced before assignment|cannot access local variable"


@contextlib.contextmanager
def _no_matrix_two_norm():
    """``torch.linalg.norm`` refuses a matrix's 2-norm (the spectral norm itself); vectors' norms still work."""
    original = torch.linalg.norm

    def norm(A, ord=None, dim=None, *args, **kwargs):
        matrix = (dim is None and A.dim() == 2) or (isinstance(dim, (tuple, list)) and len(dim) == 2)
        if matrix and ord in (2, -2, "nuc"):
            raise CheckFailed(
                f"your function calls torch.linalg.norm(W, {ord!r}), which computes the spectral norm by an SVD. "
                "That would give the answer, but this exercise is about power iteration, so the matrix 2-norm is "
                "switched off while your code runs (vector norms work as usual). Your function should get there by "
                "the iteration; the hint under the exercise shows the way")
        return original(A, ord, dim, *args, **kwargs)

    torch.linalg.norm = norm
    try:
        yield
    finally:
        torch.linalg.norm = original


def _call(student_fn, *args, what: str, shapes: str = "", forbidden=(), reason: str = ""):
    """Call the student's function (``call_student``); a shape error says which shapes were expected."""
    errors = {r"same dtype|expected scalar type": "float32 and float64 tensors were mixed: make new tensors in the "
                                                  "input's dtype (dtype=W.dtype)" + HINT,
              r"shape|size|dimension": f"{what} combined tensors whose shapes do not fit. {shapes}".strip(),
              NEVER_RAN: f"{what} uses a variable its loop never assigned: with {args[-1]} step(s) the loop must "
                         "run exactly that many times (range(n_steps), not range(n_steps - 1))" + HINT}
    with _no_matrix_two_norm():
        return call_student(student_fn, *args, forbidden=forbidden, reason=reason, errors=errors)


def _one_number(got, what: str, dtype: torch.dtype) -> torch.Tensor:
    """The student's estimate as a 0-d tensor in ``dtype``, or a named failure."""
    if isinstance(got, torch.Tensor):
        if got.numel() != 1:
            raise CheckFailed(f"{what} should be one number, u^T W v (a scalar tensor), but has shape "
                              f"{tuple(got.shape)}: u @ W @ v with the vectors u and v gives it")
        if got.dtype != dtype:
            raise CheckFailed(f"{what} came back as {got.dtype}, but W is {dtype}: keep the input's dtype (the notebook "
                              "compares every estimate with sigma to 1e-12, which float32 rounding would break)")
        return got.reshape(())
    return got


# ----------------------------------------------------------------------------- Exercise 1
def _power_iteration_reference(W, u, n_steps):
    """``n_steps`` of ``v = W^T u / |W^T u|``, ``u = W v / |W v|`` from the unit vector ``u``;
    returns ``u^T W v``."""
    for _ in range(n_steps):
        v = W.T @ u
        v = v / v.norm()
        u = W @ v
        u = u / u.norm()
    return u @ W @ v


def _power_slips(W, u, n):
    """What the common mistakes return after ``n`` steps."""
    slips = {}
    if n == 1:
        slips["you return the exact norm ||W||_2: after 1 step from a random u the estimate is still below it "
              "(power iteration approaches from below)"] = torch.linalg.matrix_norm(W, 2)
    uu = u.clone()
    for _ in range(n):                                      # no normalisation at all
        vv = W.T @ uu
        uu = W @ vv
    slips["u and v are never normalised (divide each by its norm, or the estimate grows like sigma^(2n))" + HINT] = \
        uu @ W @ vv
    uu = u.clone()
    for _ in range(n):                                      # v not normalised
        vv = W.T @ uu
        uu = W @ vv / (W @ vv).norm()
    slips["v is not normalised: v = W^T u / |W^T u| needs its division too, or u^T W v is scaled by |W^T u|" + HINT] = \
        uu @ W @ vv
    uu = u.clone()
    for _ in range(n):                                      # u not normalised
        vv = W.T @ uu / (W.T @ uu).norm()
        uu = W @ vv
    slips["u is not normalised after u = W v (divide it by its norm too; the estimate is then |W v|^2, "
          "about sigma^2)" + HINT] = uu @ W @ vv
    uu = u.clone()
    for _ in range(n):                                      # the estimate taken before the step ends
        w = W.T @ uu
        before = w.norm()
        v = w / before
        uu = W @ v / (W @ v).norm()
    slips["you return |W^T u| from the start of the last step; the estimate is u^T W v with the new u and v" + HINT] = before
    slips["you return sigma^2: u^T W W^T u (take u^T W v, with v = W^T u / |W^T u|)" + HINT] = \
        _power_iteration_reference(W, u, n) ** 2
    if n > 1:
        slips["the loop runs one step too few (n_steps - 1 times)"] = _power_iteration_reference(W, u, n - 1)
    slips["the loop runs one step too many (n_steps + 1 times)"] = _power_iteration_reference(W, u, n + 1)
    slips["you return the Frobenius norm ||W||_F, which is not the spectral norm and not power iteration"] = \
        torch.linalg.matrix_norm(W)
    return slips


@exercise(1, "power iteration", reference=_power_iteration_reference)
def power_iteration(student_fn):
    """Check exercise 1: ``student_fn(W, u, n_steps)`` returns ``u^T W v`` after ``n_steps`` steps of
    ``v = W^T u / |W^T u|``, ``u = W v / |W v|``.

    Compared after 1, 2 and 5 steps on three matrices (two of them not square), and after 500
    steps with the spectral norm; SVDs and matrix norms are switched off while the student's code
    runs (the exercise is the iteration).

    Example:
        >>> def mine(W, u, n_steps):
        ...     for _ in range(n_steps):
        ...         v = W.T @ u / (W.T @ u).norm()
        ...         u = W @ v / (W @ v).norm()
        ...     return u @ W @ v
        >>> _ = power_iteration(mine)
        Exercise 1 (power iteration): correct. Well done!
    """
    for seed, (rows, cols) in enumerate(((5, 3), (4, 7), (6, 6))):
        g = _gen(seed)
        W = torch.randn(rows, cols, generator=g, dtype=torch.float64)
        u0 = torch.randn(rows, generator=g, dtype=torch.float64)
        u0 = u0 / u0.norm()
        exact = torch.linalg.matrix_norm(W, 2)
        for n in (1, 2, 5):
            got = _call(student_fn, W, u0, n, what=f"power_iteration(W, u, {n})",
                        shapes=f"W is {rows} x {cols} and u has {rows} entries, so v should be W^T u (W.T @ u), "
                               f"with {cols} entries, and the new u = W v, with {rows}" + HINT + ".",
                        forbidden=SPECTRAL, reason="power iteration")
            got = _one_number(got, f"the estimate after {n} step(s)", W.dtype)
            expected = _power_iteration_reference(W, u0, n)
            assert_close(got, expected, f"the estimate after {n} step(s) for a {rows} x {cols} matrix", atol=1e-9,
                         slips=_power_slips(W, u0, n))
        got = _one_number(_call(student_fn, W, u0, 500, what="power_iteration(W, u, 500)", forbidden=SPECTRAL,
                                reason="power iteration"), "the estimate after 500 steps", W.dtype)
        assert_close(got, exact, f"the estimate after 500 steps for a {rows} x {cols} matrix (the spectral norm)",
                     atol=1e-7)


# ----------------------------------------------------------------------------- Exercise 2
def _fixed_point_reference(g, y, n_iter):
    """``x_0 = y``, ``x_{k+1} = y - g(x_k)``; returns ``x_{n_iter}``."""
    x = y
    for _ in range(n_iter):
        x = y - g(x)
    return x


def _residuals():
    """Two contractions with known Lipschitz constants (0.7 and 0.9), in float64."""
    A = torch.tensor([[0.6, -0.8], [0.8, 0.6]], dtype=torch.float64)    # a rotation: ||A||_2 = 1
    return [(0.7, lambda x: 0.7 * torch.sin(x.flip(1) + 0.3)),
            (0.9, lambda x: 0.9 * torch.tanh(x @ A.T - 0.5))]


def _iterate(student_fn, g, y, n):
    """The student's ``x_n``; a list of iterates is named (the exercise returns the last one)."""
    got = call_student(student_fn, g, y, n)
    if isinstance(got, (list, tuple)):
        raise CheckFailed(f"fixed_point_inverse returned a {type(got).__name__} of {len(got)} values; it should return "
                          "the last iterate x_n alone, a tensor shaped like y")
    return got


@exercise(2, "the inverse by fixed-point iteration", reference=_fixed_point_reference)
def fixed_point_inverse(student_fn):
    """Check exercise 2: ``student_fn(g, y, n_iter)`` returns ``x_n`` of ``x_{k+1} = y - g(x_k)``, ``x_0 = y``.

    Compared after 1 and 3 iterations for two contractions (Lipschitz constants 0.7 and 0.9), and
    after 200 iterations ``x + g(x)`` must equal ``y``.

    Example:
        >>> def mine(g, y, n_iter):
        ...     x = y
        ...     for _ in range(n_iter):
        ...         x = y - g(x)
        ...     return x
        >>> _ = fixed_point_inverse(mine)
        Exercise 2 (the inverse by fixed-point iteration): correct. Well done!
    """
    for seed, (lip, g) in enumerate(_residuals()):
        y = 2 * torch.randn(6, 2, generator=_gen(seed), dtype=torch.float64)
        for n in (1, 3):
            got = _iterate(student_fn, g, y, n)
            expected = _fixed_point_reference(g, y, n)
            x = torch.zeros_like(y)
            for _ in range(n):
                x = y - g(x)
            start_zero = x
            x = y
            for _ in range(n):
                x = y + g(x)
            plus = x
            x = y
            for _ in range(n):
                x = x - g(x)
            from_x = x
            assert_close(got, expected, f"x after {n} iteration(s) for g with Lip(g) = {lip}", atol=1e-10,
                         slips={"the iteration starts from x_0 = 0 instead of x_0 = y" + HINT: start_zero,
                                "the update adds g(x): solving y = x + g(x) for x gives x = y - g(x)" + HINT: plus,
                                "the update subtracts g(x) from the current x instead of from y (x <- y - g(x))"
                                + HINT: from_x,
                                "the loop runs one step too many (n_iter + 1 times)":
                                    _fixed_point_reference(g, y, n + 1),
                                "the loop runs one step too few (n_iter - 1 times)":
                                    _fixed_point_reference(g, y, n - 1),
                                "a single step y - g(y) is taken whatever n_iter is (loop n_iter times, feeding "
                                "each x back into g)" + HINT: _fixed_point_reference(g, y, 1)})
        got = torch.as_tensor(_iterate(student_fn, g, y, 200), dtype=torch.float64)
        assert_shape(got, y.shape, "x (one point per row of y)")
        residual = (got + g(got) - y).abs().max().item()
        if not residual < 1e-9:
            raise CheckFailed(f"after 200 iterations x + g(x) should equal y (Lip(g) = {lip} < 1, so the "
                              f"iteration converges), but the largest |x + g(x) - y| is {residual:.3g}")


# ----------------------------------------------------------------------------- Exercise 3
def _log_det_series_reference(g, x, v, n_terms):
    """``sum_{k=1}^{n} (-1)^(k+1) v^T J^k v / k`` per row, by vector-Jacobian products."""
    x = x.detach().requires_grad_(True)
    gx = g(x)
    w, total = v, torch.zeros(x.shape[0], dtype=x.dtype)
    for k in range(1, n_terms + 1):
        (w,) = torch.autograd.grad(gx, x, w, retain_graph=True)
        total = total + (-1) ** (k + 1) * (w * v).sum(1) / k
    return total


def _jacobians(g, x):
    return torch.stack([torch.autograd.functional.jacobian(lambda p: g(p[None])[0], xi) for xi in x])


def _series_from_jacobians(J, v, n, sign=lambda k: (-1) ** (k + 1), divide=True, start=1, square=False,
                           restart=False):
    """The quadratic forms from explicit Jacobians (independent of autograd's VJPs), with variants
    (``restart``: every term starts again from v, so it is v^T J v each time)."""
    out = torch.zeros(J.shape[0], dtype=J.dtype)
    w = v.clone()
    if start == 0:                                   # a k = 0 term with the same sign rule: -v^T v
        out = out + sign(0) * (v * v).sum(1)
    for k in range(1, n + 1):
        w = torch.einsum("bi,bij->bj", v if restart else w, J)          # w^T J
        form = (w * w).sum(1) if square else (w * v).sum(1)
        out = out + sign(k) * form / (k if divide else 1)
    return out


def _trainable_residual():
    """``(g, params)``: g(x) = 0.8 tanh(x A^T + b) with A a rotation (Lip(g) <= 0.8), A and b trainable."""
    A = torch.tensor([[0.6, -0.8], [0.8, 0.6]], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([0.3, -0.2], dtype=torch.float64, requires_grad=True)
    return (lambda x: 0.8 * torch.tanh(x @ A.T + b)), [A, b]


def _series_slips(J, v, n, exact):
    slips = {"the terms do not alternate in sign (the k-th term has the sign (-1)^(k+1))" + HINT:
                 _series_from_jacobians(J, v, n, sign=lambda k: 1.0),
             "the signs are flipped: the first term, v^T J v, enters with +" + HINT:
                 _series_from_jacobians(J, v, n, sign=lambda k: (-1) ** k),
             "the terms are not divided by k" + HINT: _series_from_jacobians(J, v, n, divide=False),
             "the sum starts at k = 0 (v^T v is not a term: tr(log(I + J)) starts with tr(J))" + HINT:
                 _series_from_jacobians(J, v, n, start=0),
             "each term is (w . w) instead of (w . v): the probe v must close the quadratic form v^T J^k v"
             + HINT: _series_from_jacobians(J, v, n, square=True),
             "w is not updated: each backward pass starts again from v, so every term is v^T J v; feed each "
             "result w back in as the next grad_outputs" + HINT: _series_from_jacobians(J, v, n, restart=True),
             "the exact log-det was returned: the exercise is the truncated series" + HINT: exact,
             "the sum has one term too few (k runs from 1 to n_terms - 1)": _series_from_jacobians(J, v, n - 1),
             "the sum has one term too many (k runs from 1 to n_terms + 1)": _series_from_jacobians(J, v, n + 1)}
    return slips


@exercise(3, "the truncated series with Hutchinson's probe", reference=_log_det_series_reference)
def log_det_series(student_fn):
    """Check exercise 3: ``student_fn(g, x, v, n_terms)`` returns ``sum_k (-1)^(k+1) v^T J_g(x)^k v / k`` per sample.

    Compared with the quadratic forms of explicit Jacobians for 1, 2 and 6 terms and two
    residual functions; then, for a residual with trainable weights, the estimate must keep its
    graph (``create_graph=True``) and its gradient with respect to those weights must match the
    explicit Jacobians' (a log-det that cannot train g is no use in a flow's loss). Functions
    that build whole Jacobians or determinants are switched off while the student's code runs
    (the exercise is vector-Jacobian products).

    Example:
        >>> def mine(g, x, v, n_terms):
        ...     x = x.detach().requires_grad_(True)
        ...     gx, w, total = g(x), v, 0
        ...     for k in range(1, n_terms + 1):
        ...         (w,) = torch.autograd.grad(gx, x, w, create_graph=True)
        ...         total = total + (-1) ** (k + 1) * (w * v).sum(1) / k
        ...     return total
        >>> _ = log_det_series(mine)
        Exercise 3 (the truncated series with Hutchinson's probe): correct. Well done!
    """
    trainable, params = _trainable_residual()
    cases = [(lip, g, None) for lip, g in _residuals()] + [(0.8, trainable, params)]
    for seed, (lip, g, weights) in enumerate(cases):
        gen = _gen(10 + seed)
        x = torch.randn(5, 2, generator=gen, dtype=torch.float64)
        v = torch.randn(5, 2, generator=gen, dtype=torch.float64)
        J = _jacobians(g, x)
        exact = torch.linalg.slogdet(torch.eye(2, dtype=torch.float64) + J).logabsdet
        for n in ((1, 2, 6) if weights is None else (3,)):
            got = call_student(student_fn, g, x, v, n, forbidden=JACOBIANS + DETERMINANTS,
                               reason="vector-Jacobian products (one backward pass per term)")
            assert_shape(got, (x.shape[0],), f"the estimate with {n_terms_label(n)} (one number per sample)")
            got_value = torch.as_tensor(got).detach()
            expected = _series_from_jacobians(J.detach(), v, n)
            assert_close(got_value, expected.detach(), f"the series with {n_terms_label(n)} for g with Lip(g) = {lip}",
                         atol=1e-9, rtol=1e-8, slips=_series_slips(J.detach(), v, n, exact.detach()))
            if weights is not None:
                _check_trainable(got, g, x, v, n, weights)


def _check_trainable(got, g, x, v, n, weights):
    """The estimate's gradient with respect to g's weights, against the explicit Jacobians' (with their graph)."""
    if not isinstance(got, torch.Tensor) or got.grad_fn is None:
        raise CheckFailed("the values are right, but the estimate has no graph back to g's weights (its grad_fn is "
                          "None), so a flow could not train g with it: pass create_graph=True to "
                          "torch.autograd.grad (it keeps the graph of each backward pass, and retains it too)" + HINT)
    J = torch.stack([torch.autograd.functional.jacobian(lambda p: g(p[None])[0], xi, create_graph=True) for xi in x])
    expected = torch.autograd.grad(_series_from_jacobians(J, v, n).sum(), weights)
    grads = torch.autograd.grad(got.sum(), weights, allow_unused=True)
    flat = lambda gs: torch.cat([(torch.zeros_like(w) if g_ is None else g_).reshape(-1) for g_, w in zip(gs, weights)])
    assert_close(flat(grads), flat(expected).detach(), "the gradient of the summed estimate with respect to g's "
                 "weights (the values were right)", atol=1e-8, rtol=1e-7,
                 slips={"the estimate is detached from g somewhere (.detach(), .item() or torch.no_grad()): keep "
                        "create_graph=True and the whole computation in autograd" + HINT:
                        torch.zeros_like(flat(expected))})


def n_terms_label(n: int) -> str:
    return "1 term" if n == 1 else f"{n} terms"


# ----------------------------------------------------------------------------- Exercise 4
def _roulette_reference(traces, m, n_exact, p):
    """``sum_{k=1}^{n_exact + m} (-1)^(k+1) traces[k-1] / (k P(N >= k))``,
    ``P(N >= k) = 1`` for ``k <= n_exact`` and ``(1 - p)^(k - n_exact)`` after."""
    total = torch.zeros_like(traces[0])
    for k in range(1, n_exact + m + 1):
        survival = 1.0 if k <= n_exact else (1 - p) ** (k - n_exact)
        total = total + (-1) ** (k + 1) * traces[k - 1] / (k * survival)
    return total


def _roulette_variant(traces, m, n_exact, p, survival, last=None):
    last = n_exact + m if last is None else last
    total = torch.zeros_like(traces[0])
    for k in range(1, last + 1):
        total = total + (-1) ** (k + 1) * traces[k - 1] / (k * survival(k))
    return total


@exercise(4, "the Russian-roulette estimator", reference=_roulette_reference)
def roulette_estimate(student_fn):
    """Check exercise 4: ``student_fn(traces, m, n_exact, p)`` returns the series to ``n_exact + m``
    terms, term ``k`` divided by ``P(N >= k)``.

    Compared for four settings of ``(m, n_exact, p)`` on fixed random traces.

    Example:
        >>> def mine(traces, m, n_exact, p):
        ...     total = 0
        ...     for k in range(1, n_exact + m + 1):
        ...         total = total + (-1) ** (k + 1) * traces[k - 1] / (k * (1 - p) ** max(0, k - n_exact))
        ...     return total
        >>> _ = roulette_estimate(mine)
        Exercise 4 (the Russian-roulette estimator): correct. Well done!
    """
    traces = torch.randn(12, 4, generator=_gen(20), dtype=torch.float64) * 0.7 ** torch.arange(1, 13)[:, None]
    for m, n_exact, p in ((0, 2, 0.5), (3, 2, 0.5), (4, 1, 0.3), (6, 3, 0.6)):
        got = call_student(student_fn, traces, m, n_exact, p)
        assert_shape(got, (traces.shape[1],), f"the estimate for m = {m} (one number per sample)")
        q = 1 - p
        pmf = lambda k: 1.0 if k <= n_exact else p * q ** (k - n_exact - 1)
        slips = {"the terms after n_exact are not reweighted: that is the truncated series, biased" + HINT:
                     _roulette_variant(traces, m, n_exact, p, lambda k: 1.0),
                 "term k is divided by P(N = k) instead of P(N >= k) (the chance that term k is computed at all)" + HINT:
                     _roulette_variant(traces, m, n_exact, p, pmf),
                 "the survival probability uses p where it should use 1 - p: P(N >= k) = (1 - p)^(k - n_exact)":
                     _roulette_variant(traces, m, n_exact, p, lambda k: 1.0 if k <= n_exact else p ** (k - n_exact)),
                 "the exponent is off by one: P(N >= k) = (1 - p)^(k - n_exact), so term n_exact + 1 has weight 1/(1 - p)":
                     _roulette_variant(traces, m, n_exact, p,
                                       lambda k: 1.0 if k <= n_exact else q ** (k - n_exact + 1)),
                 "term k is multiplied by P(N >= k) instead of divided by it (dividing makes the rarely computed "
                 "terms count more, which removes the bias)" + HINT:
                     _roulette_variant(traces, m, n_exact, p, lambda k: 1.0 if k <= n_exact else q ** (n_exact - k)),
                 "the terms do not alternate in sign (term k has the sign (-1)^(k+1))" + HINT:
                     _roulette_variant(traces, m, n_exact, p, lambda k: (-1) ** (k + 1) * (1.0 if k <= n_exact
                                                                                          else q ** (k - n_exact))),
                 "term k reads traces[k]: the list starts at k = 1, so term k's trace is traces[k - 1]" + HINT:
                     _roulette_variant(traces[1:], m, n_exact, p, lambda k: 1.0 if k <= n_exact else q ** (k - n_exact)),
                 "only m terms are summed: the estimator always computes the first n_exact terms, then m more":
                     _roulette_variant(traces, m, n_exact, p, lambda k: 1.0 if k <= n_exact else q ** (k - n_exact),
                                       last=m)}
        slips["the sum has one term too few (it should run to k = n_exact + m)"] = _roulette_variant(
            traces, m, n_exact, p, lambda k: 1.0 if k <= n_exact else q ** (k - n_exact), last=n_exact + m - 1)
        assert_close(got, _roulette_reference(traces, m, n_exact, p),
                     f"the estimate for m = {m}, n_exact = {n_exact}, p = {p}", atol=1e-10, slips=slips)
