"""Reference linear algebra for notebook 01: determinants the slow way and the fast way."""

from __future__ import annotations

import itertools

import torch

__all__ = ["inversions", "leibniz_det", "triangular_log_abs_det", "polygon_area"]


def inversions(perm) -> int:
    """The number of inversions of a permutation: pairs that are out of order.

        tau(j_1 ... j_n) = #{(i, k) : i < k and j_i > j_k}

    Args:
        perm: a permutation of ``0 .. n-1`` as a sequence.

    Example:
        >>> inversions((0, 1, 2)), inversions((1, 0, 2)), inversions((2, 1, 0))
        (0, 1, 3)
    """
    return sum(perm[i] > perm[k] for i in range(len(perm)) for k in range(i + 1, len(perm)))


def leibniz_det(M: torch.Tensor) -> torch.Tensor:
    """The determinant by Leibniz's formula, a sum over all n! permutations (the slide's formula).

        det M = sum_j (-1)^tau(j) a_{1 j_1} a_{2 j_2} ... a_{n j_n}

    n! terms: fine up to n = 8 or so, hopeless beyond.

    Args:
        M: a square ``(n, n)`` matrix.

    Example:
        >>> leibniz_det(torch.tensor([[3., 2.], [0., 2.]]))   # the slide's matrix
        tensor(6.)
        >>> M = torch.randn(4, 4, dtype=torch.float64)
        >>> bool(torch.isclose(leibniz_det(M), torch.linalg.det(M)))
        True
    """
    n = M.shape[0]
    if M.dim() != 2 or M.shape[1] != n:
        raise ValueError(f"leibniz_det needs a square matrix, got shape {tuple(M.shape)}")
    rows = torch.arange(n)
    total = M.new_zeros(())
    for perm in itertools.permutations(range(n)):
        sign = -1.0 if inversions(perm) % 2 else 1.0
        total = total + sign * M[rows, list(perm)].prod()
    return total


def triangular_log_abs_det(L: torch.Tensor) -> torch.Tensor:
    """The log-absolute-determinant of a triangular matrix from its diagonal: O(n) instead of O(n^3).

        log|det L| = sum_i log|L_ii|

    Args:
        L: a lower or upper triangular ``(..., n, n)`` matrix (only its diagonal is read).

    Example:
        >>> triangular_log_abs_det(torch.tensor([[2., 0.], [5., -3.]])).exp()
        tensor(6.)
    """
    return L.diagonal(dim1=-2, dim2=-1).abs().log().sum(-1)


def polygon_area(points: torch.Tensor) -> torch.Tensor:
    """Signed area of a polygon with vertices ``points`` (n, 2) in order (shoelace formula).

        A = 1/2 sum_i (x_i y_{i+1} - x_{i+1} y_i),   indices mod n

    Positive for anticlockwise vertices; a map with det < 0 flips the sign.

    Example:
        >>> square = torch.tensor([[0., 0.], [1., 0.], [1., 1.], [0., 1.]])   # anticlockwise
        >>> polygon_area(square), polygon_area(square.flip(0))
        (tensor(1.), tensor(-1.))
        >>> A = torch.tensor([[2., 1.], [0., 3.]])
        >>> polygon_area(square @ A.T)                          # area times det A = 6
        tensor(6.)
    """
    x, y = points[:, 0], points[:, 1]
    return 0.5 * (x * y.roll(-1) - x.roll(-1) * y).sum()
