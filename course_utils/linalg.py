"""Reference linear algebra for notebook 01: determinants the slow way and the fast way."""

from __future__ import annotations

import itertools

import torch

__all__ = ["inversions", "leibniz_det", "triangular_log_abs_det", "polygon_area"]


def inversions(perm) -> int:
    """tau(j_1 ... j_n): the number of pairs i < k with j_i > j_k.

    >>> inversions((0, 1, 2)), inversions((1, 0, 2)), inversions((2, 1, 0))
    (0, 1, 3)
    """
    return sum(perm[i] > perm[k] for i in range(len(perm)) for k in range(i + 1, len(perm)))


def leibniz_det(M: torch.Tensor) -> torch.Tensor:
    """det M = sum over permutations j of (-1)^tau(j) a_{1 j_1} ... a_{n j_n} (the slide's formula).

    n! terms: fine up to n = 8 or so, hopeless beyond. Example (the slide's):

    >>> leibniz_det(torch.tensor([[3., 2.], [0., 2.]]))
    tensor(6.)
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
    """log|det L| = sum_i log|L_ii| for a triangular L: O(n) instead of O(n^3).

    >>> triangular_log_abs_det(torch.tensor([[2., 0.], [5., -3.]])).exp()
    tensor(6.)
    """
    return L.diagonal(dim1=-2, dim2=-1).abs().log().sum(-1)


def polygon_area(points: torch.Tensor) -> torch.Tensor:
    """Signed area of a polygon with vertices ``points`` (n, 2) in order (shoelace formula).

    Positive for anticlockwise vertices; a map with det < 0 flips the sign.
    """
    x, y = points[:, 0], points[:, 1]
    return 0.5 * (x * y.roll(-1) - x.roll(-1) * y).sum()
