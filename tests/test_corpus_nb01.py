"""Notebook 01's slip corpus: right answers in other styles pass, plausible wrong ones are named."""

import itertools
import math

import numpy as np
import torch

from course_utils import linalg

from checkcontract import Slip, corpus_tests


# Exercise 1: the Jacobian of f(x) = (x1^2 x2, 5 x1 + sin x2)
def _jac(a, b, c, d):
    return torch.stack([torch.stack([a, b]), torch.stack([c, d])])


def _jac_stack(x):
    x1, x2 = x[0], x[1]
    return _jac(2 * x1 * x2, x1**2, torch.full_like(x1, 5.0), torch.cos(x2))


def _jac_python_numbers(x):                      # torch.tensor of Python floats: float32
    x1, x2 = x.tolist()
    return torch.tensor([[2 * x1 * x2, x1**2], [5.0, math.cos(x2)]])


def _jac_filled(x):
    J = torch.zeros(2, 2, dtype=x.dtype)
    J[0, 0] = 2 * x[0] * x[1]
    J[0, 1] = x[0] ** 2
    J[1, 0] = 5
    J[1, 1] = torch.cos(x[1])
    return J


def _jac_in_place(x):
    x[1] = torch.cos(x[1])                        # overwrites the caller's x
    return _jac(2 * x[0] * torch.arccos(x[1]), x[0] ** 2, torch.full_like(x[0], 5.0), x[1])


def _jac_autograd(x):
    return torch.autograd.functional.jacobian(lambda v: torch.stack([v[0] ** 2 * v[1], 5 * v[0] + torch.sin(v[1])]), x)


def _jac_jacrev(x):
    return torch.func.jacrev(lambda v: torch.stack([v[0] ** 2 * v[1], 5 * v[0] + torch.sin(v[1])]))(x)


# Exercise 2: the Leibniz determinant
def _sign(perm):
    return (-1) ** sum(perm[i] > perm[j] for i in range(len(perm)) for j in range(i + 1, len(perm)))


def _det_loop_items(M):
    n = M.shape[0]
    total = 0.0
    for perm in itertools.permutations(range(n)):
        term = 1.0
        for i in range(n):
            term *= M[i, perm[i]].item()
        total += _sign(perm) * term
    return total


def _det_vectorised(M):
    n = M.shape[0]
    perms = torch.tensor(list(itertools.permutations(range(n))))
    signs = torch.tensor([_sign(p.tolist()) for p in perms], dtype=M.dtype)
    return (signs * M[torch.arange(n), perms].prod(dim=1)).sum()


def _det_float32(M):
    n = M.shape[0]
    M = M.float()
    return sum(_sign(p) * math.prod(M[i, p[i]] for i in range(n)) for p in itertools.permutations(range(n)))


def _det_cycles(M):                               # the sign from the cycle count: (-1)^(n - cycles)
    n = M.shape[0]
    total = torch.zeros((), dtype=M.dtype)
    for perm in itertools.permutations(range(n)):
        seen, cycles = set(), 0
        for start in range(n):
            if start not in seen:
                cycles += 1
                k = start
                while k not in seen:
                    seen.add(k)
                    k = perm[k]
        total = total + (-1) ** (n - cycles) * M[torch.arange(n), torch.tensor(perm)].prod()
    return total


def _permanent(M):
    n = M.shape[0]
    return sum(math.prod(M[i, p[i]] for i in range(n)) for p in itertools.permutations(range(n)))


def _alternating(M):
    n = M.shape[0]
    return sum((-1) ** k * math.prod(M[i, p[i]] for i in range(n))
               for k, p in enumerate(itertools.permutations(range(n))))


def _det_off_by_one(M):
    n = M.shape[0]
    return sum(_sign(p) * math.prod(M[i, p[i]] for i in range(n + 1)) for p in itertools.permutations(range(n + 1)))


def _det_scipy(M):
    import scipy.linalg
    return torch.tensor(scipy.linalg.det(M.numpy()))


def _det_eigvals(M):
    return torch.linalg.eigvals(M).prod().real


# Exercise 3: log|det| of a triangular matrix
def _logdet_loop(L):
    return sum(math.log(abs(L[i, i].item())) for i in range(L.shape[0]))


def _logdet_in_place(L):
    d = L.diagonal()
    d.abs_()                                      # a view: changes L itself
    return d.log().sum()


CORPUS = {
    "nb01.jacobian_by_hand": dict(
        right={"torch.stack": _jac_stack,
               "torch.tensor of Python numbers (float32)": _jac_python_numbers,
               "a zero matrix filled in": _jac_filled,
               "float32": lambda x: _jac_stack(x.float())},
        wrong=[Slip("transposed", lambda x: _jac_stack(x).T, "swapped"),
               Slip("sin instead of cos", lambda x: _jac(2 * x[0] * x[1], x[0] ** 2, torch.full_like(x[0], 5.0), torch.sin(x[1])),
                    "taken as sin(x2)"),
               Slip("-sin instead of cos", lambda x: _jac(2 * x[0] * x[1], x[0] ** 2, torch.full_like(x[0], 5.0), -torch.sin(x[1])),
                    "-sin(x2)"),
               Slip("missing factor 2", lambda x: _jac(x[0] * x[1], x[0] ** 2, torch.full_like(x[0], 5.0), torch.cos(x[1])),
                    "factor 2"),
               Slip("5 x1 instead of 5", lambda x: _jac(2 * x[0] * x[1], x[0] ** 2, 5 * x[0], torch.cos(x[1])), "5 x1"),
               Slip("d/dx2 of x1^2 x2 as 2 x1 x2", lambda x: _jac(2 * x[0] * x[1], 2 * x[0] * x[1], torch.full_like(x[0], 5.0),
                                                                  torch.cos(x[1])), "x1^2 is a constant"),
               Slip("f instead of its Jacobian", lambda x: torch.stack([x[0] ** 2 * x[1], 5 * x[0] + torch.sin(x[1])]),
                    "f itself"),
               Slip("flattened to 4 numbers", lambda x: _jac_stack(x).reshape(4), "shape (2, 2)"),
               Slip("edits x in place", _jac_in_place, "in place"),
               Slip("autograd", _jac_autograd, "switched off"),
               Slip("torch.func.jacrev", _jac_jacrev, "torch.func.jacrev")]),
    "nb01.leibniz_det": dict(
        right={"loop over Python floats (.item())": _det_loop_items,
               "vectorised over all permutations": _det_vectorised,
               "in float32": _det_float32,
               "sign from the cycle count": _det_cycles,
               "the library's": linalg.leibniz_det},
        wrong=[Slip("permanent (no sign)", _permanent, "permanent"),
               Slip("sign alternating in list order", _alternating, "place in the list"),
               Slip("absolute value", lambda M: _det_loop_items(M.abs()) if M.shape[0] == 1 else abs(_det_loop_items(M)),
                    "absolute value"),
               Slip("sign flipped", lambda M: -_det_loop_items(M), "sign of every term is flipped"),
               Slip("diagonal product only", lambda M: M.diagonal().prod(), "only the diagonal term"),
               Slip("n + 1 in the ranges", _det_off_by_one, "indexes"),
               Slip("torch.det", lambda M: torch.det(M), "switched off"),
               Slip("torch.linalg.det", lambda M: torch.linalg.det(M), "torch.linalg.det"),
               Slip("numpy.linalg.det", lambda M: torch.tensor(np.linalg.det(M.numpy())), "numpy.linalg.det"),
               Slip("scipy.linalg.det", _det_scipy, "scipy.linalg.det"),
               Slip("product of eigenvalues", _det_eigvals, "torch.linalg.eigvals")]),
    "nb01.triangular_log_abs_det": dict(
        right={"abs, log, sum": lambda L: L.diagonal().abs().log().sum(),
               "a loop with math.log": _logdet_loop,
               "half the log of the squares": lambda L: 0.5 * torch.log(torch.diagonal(L) ** 2).sum(),
               "float64 on float32 input": lambda L: L.double().diagonal().abs().log().sum(),
               "in place on a copy": lambda L: L.diagonal().clone().abs_().log_().sum()},
        wrong=[Slip("log of the product (overflows)", lambda L: L.diagonal().prod().abs().log(), "log of prod"),
               Slip("no abs", lambda L: L.diagonal().log().sum(), "absolute values"),
               Slip("no log", lambda L: L.diagonal().abs().prod(), "instead of its log"),
               Slip("whole matrix", lambda L: L.abs().clamp_min(1e-300).log().masked_fill(L == 0, 0).sum(), "every entry"),
               Slip("sum of the diagonal", lambda L: L.diagonal().sum(), "without the log"),
               Slip("mean of the logs", lambda L: L.diagonal().abs().log().mean(), "mean"),
               Slip("log10", lambda L: L.diagonal().abs().log10().sum(), "log10"),
               Slip("sign flipped", lambda L: -L.diagonal().abs().log().sum(), "sign is flipped"),
               Slip("log of the squares, not halved", lambda L: torch.log(torch.diag(L) ** 2).sum(), "without halving"),
               Slip("edits L in place", _logdet_in_place, "in place"),
               Slip("slogdet", lambda L: torch.linalg.slogdet(L).logabsdet, "switched off")]),
}

(test_right_answers_pass, test_wrong_answers_fail_and_are_named, test_most_slips_are_named,
 test_corpus_is_big_enough) = corpus_tests(CORPUS)
