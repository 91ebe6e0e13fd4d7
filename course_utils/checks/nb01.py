"""Checks for notebook 01: the Jacobian and the determinant."""

import itertools
import math

import torch

from .. import linalg
from . import CheckFailed, assert_close, exercise
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


@exercise(1, "the Jacobian by hand")
def jacobian_by_hand(student_fn):
    """Check exercise 1: ``student_fn(x)`` returns the 2x2 Jacobian of ``example_map`` at ``x``.

    Compared with ``torch.autograd.functional.jacobian`` at four points; autograd itself is
    switched off while the student's code runs (the exercise is to differentiate by hand).

    Example:
        >>> jacobian_by_hand(lambda x: torch.stack([torch.stack([2 * x[0] * x[1], x[0] ** 2]),
        ...                                         torch.stack([5 + 0 * x[0], torch.cos(x[1])])]))
        Exercise 1 (the Jacobian by hand): correct. Well done!
    """
    for point in POINTS:
        x = torch.tensor(point, dtype=torch.float64)
        expected = torch.autograd.functional.jacobian(example_map, x)
        got = call_without(AUTOGRAD, "differentiating by hand", student_fn, x.clone())
        assert_close(got, expected, f"the Jacobian at x = {point}", atol=1e-8,
                     slips={"rows and columns are swapped (J[i, j] must be d f_i / d x_j)" + HINT: expected.T})


@exercise(2, "the Leibniz determinant", reference=linalg.leibniz_det)
def leibniz_det(student_fn):
    """Check exercise 2: ``student_fn(M)`` returns det M by the permutation (Leibniz) formula.

    Compared with ``torch.det`` on the slide's two examples, a permutation matrix and random
    matrices up to 5x5; ``torch.det``, ``slogdet`` and other factorisations are switched off
    while the student's code runs. Returns the student's function when it is right, and
    ``course_utils.linalg.leibniz_det`` when the exercise is not attempted yet.

    Example:
        >>> leibniz_det(linalg.leibniz_det) is linalg.leibniz_det
        Exercise 2 (the Leibniz determinant): correct. Well done!
        True
    """
    gen = torch.Generator().manual_seed(1)
    cases = [torch.eye(3, dtype=torch.float64), torch.tensor([[3.0, 2.0], [0.0, 2.0]], dtype=torch.float64),
             torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)]
    cases += [torch.randn(n, n, generator=gen, dtype=torch.float64) for n in (1, 2, 3, 4, 5)]
    for M in cases:
        expected = torch.det(M)
        got = call_without(DETERMINANTS + ["course_utils.linalg.leibniz_det"],
                           "the permutation formula", student_fn, M.clone())
        permanent = sum(math.prod(M[i, p[i]].item() for i in range(len(p)))
                        for p in itertools.permutations(range(M.shape[0])))
        assert_close(got, expected, f"det of the {M.shape[0]}x{M.shape[0]} matrix {M.numpy().round(3).tolist()}",
                     atol=1e-8, rtol=1e-8,
                     slips={"every term is added with a + sign (that is the permanent): "
                            "multiply by (-1)^(number of inversions)" + HINT: torch.tensor(permanent, dtype=torch.float64),
                            "the absolute value is taken": expected.abs(),
                            "the sign of every term is flipped" + HINT: -expected})


@exercise(3, "log|det| of a triangular matrix in O(n)", reference=linalg.triangular_log_abs_det)
def triangular_log_abs_det(student_fn):
    """Check exercise 3: ``student_fn(L)`` returns log|det L| of a lower-triangular L from its diagonal.

    Compared with ``slogdet`` for sizes 1, 4 and 50 (some diagonal entries negative);
    determinant functions are switched off while the student's code runs. Returns the
    student's function when it is right, and ``course_utils.linalg.triangular_log_abs_det``
    when the exercise is not attempted yet.

    Example:
        >>> mine = lambda L: L.diagonal().abs().log().sum()
        >>> triangular_log_abs_det(mine) is mine
        Exercise 3 (log|det| of a triangular matrix in O(n)): correct. Well done!
        True
    """
    gen = torch.Generator().manual_seed(3)
    for n in (1, 4, 50):
        L = torch.randn(n, n, generator=gen, dtype=torch.float64).tril()
        L.diagonal().copy_(torch.linspace(-2.0, 2.5, n, dtype=torch.float64) + 0.1)
        expected = torch.linalg.slogdet(L).logabsdet
        diag = L.diagonal()
        got = call_without(DETERMINANTS + ["course_utils.linalg.triangular_log_abs_det"],
                           "reading log|det| off the diagonal in O(n)", student_fn, L.clone())
        if isinstance(got, torch.Tensor) and got.numel() == 1 and torch.isnan(got):
            raise CheckFailed(f"log|det| of a {n}x{n} matrix came back as NaN: some diagonal entries are "
                              "negative, so take the log of their absolute values" + HINT)
        assert_close(got, expected, f"log|det| of a {n}x{n} lower-triangular matrix", atol=1e-8,
                     slips={"the product of the diagonal is returned instead of its log" + HINT:
                            diag.prod(),
                            "every entry of the matrix is used, not only the diagonal":
                            L.abs().clamp_min(1e-300).log().masked_fill(L == 0, 0).sum(),
                            "log(x) is used where log|x| is needed" + HINT: diag.log().nan_to_num(0.0).sum()})
