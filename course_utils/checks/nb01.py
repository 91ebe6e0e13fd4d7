"""Checks for notebook 01: the Jacobian and the determinant."""

import itertools
import math

import torch

from . import CheckFailed, assert_close, exercise

__all__ = ["example_map", "jacobian_by_hand", "leibniz_det", "triangular_log_abs_det"]


def example_map(x: torch.Tensor) -> torch.Tensor:
    """The notebook's running example f: R^2 -> R^2, f(x) = (x1^2 x2, 5 x1 + sin x2)."""
    return torch.stack([x[0] ** 2 * x[1], 5 * x[0] + torch.sin(x[1])])


POINTS = [(1.0, 2.0), (-0.5, 3.0), (2.0, -1.0), (0.0, 0.0)]


@exercise(1, "the Jacobian by hand")
def jacobian_by_hand(student_fn):
    """``student_fn(x)`` returns the 2x2 Jacobian of ``example_map`` at ``x``."""
    for point in POINTS:
        x = torch.tensor(point, dtype=torch.float64)
        expected = torch.autograd.functional.jacobian(example_map, x)
        got = student_fn(x.clone())
        assert_close(got, expected, f"the Jacobian at x = {point}", atol=1e-8,
                     slips={"rows and columns are swapped (J[i, j] must be d f_i / d x_j)": expected.T})


@exercise(2, "the Leibniz determinant")
def leibniz_det(student_fn):
    """``student_fn(M)`` returns det M by the permutation formula."""
    gen = torch.Generator().manual_seed(1)
    cases = [torch.eye(3, dtype=torch.float64), torch.tensor([[3.0, 2.0], [0.0, 2.0]], dtype=torch.float64),
             torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)]
    cases += [torch.randn(n, n, generator=gen, dtype=torch.float64) for n in (1, 2, 3, 4, 5)]
    for M in cases:
        expected = torch.det(M)
        got = student_fn(M.clone())
        permanent = sum(math.prod(M[i, p[i]].item() for i in range(len(p)))
                        for p in itertools.permutations(range(M.shape[0])))
        assert_close(got, expected, f"det of the {M.shape[0]}x{M.shape[0]} matrix {M.numpy().round(3).tolist()}",
                     atol=1e-8, rtol=1e-8,
                     slips={"every term is added with a + sign (that is the permanent): "
                            "multiply by (-1)^(number of inversions)": torch.tensor(permanent, dtype=torch.float64),
                            "the absolute value is taken": expected.abs(),
                            "the sign of every term is flipped": -expected})


@exercise(3, "log|det| of a triangular matrix in O(n)")
def triangular_log_abs_det(student_fn):
    """``student_fn(L)`` returns log|det L| of a lower-triangular L from its diagonal."""
    gen = torch.Generator().manual_seed(3)
    for n in (1, 4, 50):
        L = torch.randn(n, n, generator=gen, dtype=torch.float64).tril()
        L.diagonal().copy_(torch.linspace(-2.0, 2.5, n, dtype=torch.float64) + 0.1)
        expected = torch.linalg.slogdet(L).logabsdet
        diag = L.diagonal()
        got = student_fn(L.clone())
        if isinstance(got, torch.Tensor) and got.numel() == 1 and torch.isnan(got):
            raise CheckFailed(f"log|det| of a {n}x{n} matrix came back as NaN: some diagonal entries are "
                              "negative, so take the log of their absolute values")
        assert_close(got, expected, f"log|det| of a {n}x{n} lower-triangular matrix", atol=1e-8,
                     slips={"the product of the diagonal is returned instead of its log":
                            diag.prod(),
                            "every entry of the matrix is used, not only the diagonal":
                            L.abs().clamp_min(1e-300).log().masked_fill(L == 0, 0).sum(),
                            "log(x) is used where log|x| is needed": diag.log().nan_to_num(0.0).sum()})
