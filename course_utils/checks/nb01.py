"""Checks for notebook 01: the Jacobian and the determinant."""

import itertools
import math

import torch

from .. import linalg
from . import CheckFailed, assert_close, call_student, exercise, first_named, number
from . import shortcuts
from .shortcuts import call_without

__all__ = ["example_map", "jacobian_by_hand", "leibniz_det", "triangular_log_abs_det"]

HINT = " (see the hint under the exercise)"

#: functions that compute a determinant (or a factorisation that gives one away); see ``shortcuts``
DETERMINANTS = shortcuts.DETERMINANTS
#: functions that differentiate for you
AUTOGRAD = shortcuts.AUTOGRAD


def example_map(x: torch.Tensor) -> torch.Tensor:
    """The notebook's running example f: R^2 -> R^2, f(x) = (x1^2 x2, 5 x1 + sin x2).

    Example:
        >>> example_map(torch.tensor([1.0, 0.0]))
        tensor([0., 5.])
    """
    return torch.stack([x[0] ** 2 * x[1], 5 * x[0] + torch.sin(x[1])])


POINTS = [(1.0, 2.0), (-0.5, 3.0), (2.0, -1.0), (0.0, 0.0)]


def _jacobian_slips(x, expected):
    x1, x2 = x[0], x[1]

    def J(a, b, c, d):
        return torch.stack([torch.stack([a, b]), torch.stack([c, d])]).to(torch.float64)

    five = torch.full_like(x1, 5.0)
    return {
        "rows and columns are swapped (J[i, j] must be d f_i / d x_j)" + HINT: expected.T,
        "d sin(x2) / d x2 is taken as sin(x2) (it is cos(x2))" + HINT: J(2 * x1 * x2, x1**2, five, torch.sin(x2)),
        "d sin(x2) / d x2 is taken as -sin(x2) (that is the derivative of cos; sin's is cos)":
            J(2 * x1 * x2, x1**2, five, -torch.sin(x2)),
        "the factor 2 of d(x1^2) / d x1 = 2 x1 is missing" + HINT: J(x1 * x2, x1**2, five, torch.cos(x2)),
        "d(5 x1) / d x1 is taken as 5 x1 (it is the constant 5)": J(2 * x1 * x2, x1**2, 5 * x1, torch.cos(x2)),
        "d(x1^2 x2) / d x2 is taken as 2 x1 x2 (x1^2 is a constant factor there, so it is x1^2)":
            J(2 * x1 * x2, 2 * x1 * x2, five, torch.cos(x2)),
        "f itself is returned where its Jacobian is needed" + HINT: example_map(x),
    }


@exercise(1, "the Jacobian by hand")
def jacobian_by_hand(student_fn):
    """Check exercise 1: ``student_fn(x)`` returns the 2x2 Jacobian of ``example_map`` at ``x``.

    Compared with ``torch.autograd.functional.jacobian`` at four points; autograd itself (and
    ``torch.func``) is switched off while the student's code runs (the exercise is to
    differentiate by hand).

    Example:
        >>> jacobian_by_hand(lambda x: torch.stack([torch.stack([2 * x[0] * x[1], x[0] ** 2]),
        ...                                         torch.stack([5 + 0 * x[0], torch.cos(x[1])])]))
        Exercise 1 (the Jacobian by hand): correct. Well done!
    """
    for point in POINTS:
        x = torch.tensor(point, dtype=torch.float64)
        expected = torch.autograd.functional.jacobian(example_map, x)
        got = call_student(student_fn, x, forbidden=AUTOGRAD, reason="differentiating by hand")
        if isinstance(got, torch.Tensor) and got.numel() == 4 and got.shape != (2, 2):
            raise CheckFailed(f"the Jacobian at x = {point} should have shape (2, 2), but has shape "
                              f"{tuple(got.shape)}: build it as a 2x2 matrix of rows, J[i] = the gradient of f_i"
                              + HINT + ".")
        assert_close(got, expected, f"the Jacobian at x = {point}", atol=1e-8, rtol=1e-8,
                     slips=_jacobian_slips(x, expected))


def _permutation_slips(M, expected):
    """Values of common wrong versions of the Leibniz formula for the matrix ``M`` (float64)."""
    n = M.shape[0]
    perms = list(itertools.permutations(range(n)))
    terms = [math.prod(M[i, p[i]].item() for i in range(n)) for p in perms]
    permanent = sum(terms)
    alternating = sum((-1) ** k * t for k, t in enumerate(terms))
    return {
        "every term is added with a + sign (that is the permanent): multiply by (-1)^(number of inversions)"
        + HINT: permanent,
        "the sign alternates with the permutation's place in the list, (-1)^k for the k-th permutation; the "
        "sign must be (-1)^(number of inversions) of the permutation itself" + HINT: alternating,
        "the absolute value is taken (a determinant can be negative)": expected.abs(),
        "the sign of every term is flipped" + HINT: -expected,
        "only the diagonal term is kept (the product of the diagonal is the determinant of a triangular "
        "matrix only)" + HINT: M.diagonal().prod(),
    }


@exercise(2, "the Leibniz determinant", reference=linalg.leibniz_det)
def leibniz_det(student_fn):
    """Check exercise 2: ``student_fn(M)`` returns det M by the permutation (Leibniz) formula.

    Compared with ``torch.det`` on the slide's two examples, a permutation matrix and random
    matrices up to 5x5 (float64), and on float32 matrices as the notebook later times it;
    ``torch.det``, ``slogdet``, eigenvalues and factorisations (torch, NumPy, SciPy) are switched
    off while the student's code runs. Returns the student's function when it is right, and
    ``course_utils.linalg.leibniz_det`` when the exercise is not attempted yet.

    Example:
        >>> leibniz_det(linalg.leibniz_det) is linalg.leibniz_det
        Exercise 2 (the Leibniz determinant): correct. Well done!
        True
    """
    gen = torch.Generator().manual_seed(1)
    cases = [torch.eye(3, dtype=torch.float64), torch.tensor([[3.0, 2.0], [0.0, 2.0]], dtype=torch.float64),
             torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64),
             torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)]
    cases += [torch.randn(n, n, generator=gen, dtype=torch.float64) for n in (1, 2, 3, 4, 5)]
    cases += [torch.randn(n, n, generator=gen).float() for n in (3, 4)]
    failures, results = [], []
    for M in cases:
        M64 = M.double()
        expected = torch.det(M64)
        n = M.shape[0]
        got = call_student(student_fn, M, forbidden=DETERMINANTS + ["course_utils.linalg.leibniz_det"],
                           reason="the permutation formula")
        what = (f"det of the {n}x{n} {'float32 ' if M.dtype == torch.float32 else ''}matrix "
                f"{[[float(f'{v:.3g}') for v in row] for row in M64.tolist()]}")
        if isinstance(got, torch.Tensor) and got.dtype == torch.float64 and M.dtype == torch.float32:
            got = got.float()          # a float64 result of float32 input: judged at float32's rounding
        try:
            assert_close(got, expected, what, atol=1e-8, rtol=1e-8, work=math.factorial(n) * n,
                         scale=math.prod(M64.abs().max(dim=1).values.tolist()) or 1.0,
                         slips=_permutation_slips(M64, expected))
        except CheckFailed as failure:
            failures.append(failure)
        results.append((torch.as_tensor(got).detach().double() if isinstance(got, (torch.Tensor, float, int))
                        else None, expected))
    if failures and all(g is not None and g.numel() == 1 for g, _ in results):
        for name, fits in (("the absolute value is taken (a determinant can be negative)", lambda g, e: abs(e)),
                           ("the sign of every term is flipped" + HINT, lambda g, e: -e)):
            if all(torch.allclose(g.reshape(()), fits(g, e), atol=1e-5, rtol=1e-4) for g, e in results):
                negative = next(e for _, e in results if e < 0)
                raise CheckFailed(f"det came back as {'|det|' if 'absolute' in name else '-det'} for every matrix "
                                  f"checked (e.g. {number(-negative)} where det = {number(negative)}). This is what "
                                  f"you get when {name}.")
    first_named(failures)


def _triangular(n, gen, dtype, low, high):
    """A lower-triangular n x n matrix whose diagonal runs from ``low`` to ``high`` in size,
    with alternating signs."""
    L = torch.randn(n, n, generator=gen, dtype=torch.float64).tril()
    size = torch.logspace(math.log10(low), math.log10(high), n, dtype=torch.float64)
    signs = torch.tensor([(-1) ** i for i in range(n)], dtype=torch.float64)
    L.diagonal().copy_(size * signs)
    return L.to(dtype)


@exercise(3, "log|det| of a triangular matrix in O(n)", reference=linalg.triangular_log_abs_det)
def triangular_log_abs_det(student_fn):
    """Check exercise 3: ``student_fn(L)`` returns log|det L| of a lower-triangular L from its diagonal.

    Compared with ``slogdet`` for sizes 1, 4 and 50 (some diagonal entries negative), and in the
    regime the notebook races it in: sizes where the product of the diagonal overflows or
    underflows (float64 and float32). Determinant functions are switched off while the
    student's code runs. Returns the student's function when it is right, and
    ``course_utils.linalg.triangular_log_abs_det`` when the exercise is not attempted yet.

    Example:
        >>> mine = lambda L: L.diagonal().abs().log().sum()
        >>> triangular_log_abs_det(mine) is mine
        Exercise 3 (log|det| of a triangular matrix in O(n)): correct. Well done!
        True
    """
    gen = torch.Generator().manual_seed(3)
    cases = []
    for n in (1, 4, 50):
        L = torch.randn(n, n, generator=gen, dtype=torch.float64).tril()
        L.diagonal().copy_(torch.linspace(-2.0, 2.5, n, dtype=torch.float64) + 0.1)
        cases.append(L)
    cases += [_triangular(400, gen, torch.float64, 1.0, 1e4),     # the product overflows float64
              _triangular(400, gen, torch.float64, 1e-4, 1.0),    # ... and underflows
              _triangular(300, gen, torch.float32, 10.0, 300.0)]  # float32, as the notebook's race
    failures = []
    for L in cases:
        n = L.shape[0]
        L64 = L.double()
        expected = torch.linalg.slogdet(L64).logabsdet
        diag = L64.diagonal()
        got = call_student(student_fn, L, forbidden=DETERMINANTS + ["course_utils.linalg.triangular_log_abs_det"],
                           reason="reading log|det| off the diagonal in O(n)")
        what = f"log|det| of a {n}x{n} lower-triangular {str(L.dtype).replace('torch.', '')} matrix"
        try:
            value = torch.as_tensor(got).detach() if isinstance(got, (torch.Tensor, float, int)) else None
            if value is not None and value.numel() == 1:
                product = diag.prod()
                if torch.isnan(value):
                    raise CheckFailed(f"{what} came back as NaN: some diagonal entries are negative, so take the log "
                                      "of their absolute values" + HINT + ".")
                if torch.isinf(value):
                    raise CheckFailed(f"{what} came back as {number(value)}, but it is {number(expected)}: the product "
                                      f"of the {n} diagonal entries {'overflows' if value > 0 else 'underflows to 0'} "
                                      "before the log is taken. This is what you get when the product is formed first "
                                      "(log of prod): take the sum of the logs instead" + HINT + ".")
            assert_close(got, expected, what, atol=1e-8, rtol=1e-8, work=n,
                     scale=float(diag.abs().log().abs().max()),
                     slips={"the product of the diagonal is returned instead of its log" + HINT: diag.prod(),
                            "the absolute value of the product of the diagonal is returned instead of its log"
                            + HINT: diag.prod().abs(),
                            "every entry of the matrix is used, not only the diagonal":
                            L64.abs().clamp_min(1e-300).log().masked_fill(L64 == 0, 0).sum(),
                            "the diagonal is summed without the log (log|det| is a sum of logs)" + HINT: diag.sum(),
                            "the mean of the logs is taken instead of their sum": diag.abs().log().mean(),
                            "log10 is used where the natural log is needed": diag.abs().log10().sum(),
                            "the logs of the squares L_ii^2 are summed without halving (log(L_ii^2) = 2 log|L_ii|)":
                            2 * diag.abs().log().sum(),
                            "log2 is used where the natural log is needed": diag.abs().log2().sum(),
                            "the sign is flipped (that is log|det L^-1|)": -expected})
        except CheckFailed as failure:
            failures.append(failure)
    first_named(failures)
