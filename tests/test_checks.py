"""Every exercise check passes the reference answer, flags 'not attempted', and fails
plausible wrong answers with a message that says what was expected and what came back."""

import math

import pytest
import torch

from course_utils import linalg
from course_utils.checks import CheckFailed, assert_close, exercise
from course_utils.checks import nb00, nb01

from checkcontract import contract_tests


# check: (the check, a reference solution, {description: a plausible wrong answer})
CASES = {
    "nb00.stable_softplus": (
        nb00.stable_softplus,
        lambda x: torch.where(x > 0, x + torch.log1p(torch.exp(-x)), torch.log1p(torch.exp(x))),
        {"naive": lambda x: torch.log(1 + torch.exp(x)),
         "relu": lambda x: x.clamp(min=0),
         "sign": lambda x: -torch.nn.functional.softplus(x)},
    ),
    "nb01.jacobian_by_hand": (
        nb01.jacobian_by_hand,
        lambda x: torch.stack([torch.stack([2 * x[0] * x[1], x[0] ** 2]),
                               torch.stack([5 + 0 * x[0], torch.cos(x[1])])]),
        {"transposed": lambda x: torch.stack([torch.stack([2 * x[0] * x[1], 5 + 0 * x[0]]),
                                              torch.stack([x[0] ** 2, torch.cos(x[1])])]),
         "sin instead of cos": lambda x: torch.stack([torch.stack([2 * x[0] * x[1], x[0] ** 2]),
                                                      torch.stack([5 + 0 * x[0], torch.sin(x[1])])]),
         "missing factor 2": lambda x: torch.stack([torch.stack([x[0] * x[1], x[0] ** 2]),
                                                    torch.stack([5 + 0 * x[0], torch.cos(x[1])])]),
         "wrong shape": lambda x: torch.stack([2 * x[0] * x[1], x[0] ** 2, 5 + 0 * x[0], torch.cos(x[1])])},
    ),
    "nb01.leibniz_det": (
        nb01.leibniz_det,
        linalg.leibniz_det,
        {"permanent": lambda M: _permanent(M),
         "abs": lambda M: torch.det(M).abs(),
         "diagonal product": lambda M: M.diagonal().prod()},
    ),
    "nb01.triangular_log_abs_det": (
        nb01.triangular_log_abs_det,
        linalg.triangular_log_abs_det,
        {"no abs": lambda L: L.diagonal().log().sum(),
         "no log": lambda L: L.diagonal().abs().prod(),
         "whole matrix": lambda L: L.abs().clamp_min(1e-300).log().masked_fill(L == 0, 0).sum(),
         "sum not log": lambda L: L.diagonal().sum()},
    ),
}

(test_reference_passes, test_not_attempted_is_friendly, test_wrong_answers_fail_with_numbers,
 test_each_check_rejects_at_least_two_wrong_answers) = contract_tests(CASES)


def _permanent(M):
    import itertools
    n = M.shape[0]
    return sum(math.prod(M[i, p[i]] for i in range(n)) for p in itertools.permutations(range(n)))


def test_slip_diagnosis_is_named():
    with pytest.raises(CheckFailed, match="permanent"):
        nb01.leibniz_det(_permanent)
    with pytest.raises(CheckFailed, match="swapped"):
        nb01.jacobian_by_hand(CASES["nb01.jacobian_by_hand"][2]["transposed"])
    with pytest.raises(CheckFailed, match="overflow"):
        nb00.stable_softplus(CASES["nb00.stable_softplus"][2]["naive"])


def test_assert_close_messages():
    with pytest.raises(CheckFailed, match=r"shape \(2,\), but has shape \(3,\)"):
        assert_close(torch.zeros(3), torch.zeros(2), "v")
    with pytest.raises(CheckFailed, match="expected 1, got 2"):
        assert_close(2.0, 1.0, "x")
    with pytest.raises(CheckFailed, match="number or a tensor"):
        assert_close("two", 1.0, "x")
    with pytest.raises(CheckFailed, match="NaN"):
        assert_close(float("nan"), 1.0, "x")
    assert_close([1.0, 2.0], torch.tensor([1.0, 2.0]), "list")


def test_exercise_decorator_reports_other_errors_without_a_traceback_wall():
    """A raw error is named when a common slip explains it, else "your code raised X: ...";
    either way a CheckFailed, recorded as 'wrong' (named) or 'error' (not)."""
    from course_utils.checks import OUTCOMES

    @exercise(9, "demo")
    def check(fn):
        fn()

    with pytest.raises(CheckFailed, match="math.log .*negative.*math domain error"):
        check(lambda: math.log(-1.0))
    assert OUTCOMES[-1]["status"] == "wrong"
    with pytest.raises(CheckFailed, match="your code raised KeyError: 'w'"):
        check(lambda: {}["w"])
    assert OUTCOMES[-1]["status"] == "error"


def test_linalg_reference():
    gen = torch.Generator().manual_seed(0)
    for n in range(1, 6):
        M = torch.randn(n, n, generator=gen, dtype=torch.float64)
        assert torch.allclose(linalg.leibniz_det(M), torch.det(M))
    assert linalg.inversions((3, 2, 1, 0)) == 6
    square = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    A = torch.tensor([[2.0, 1.0], [0.5, -1.5]])
    assert torch.isclose(linalg.polygon_area(square @ A.T), torch.det(A))
    with pytest.raises(ValueError, match="square"):
        linalg.leibniz_det(torch.zeros(2, 3))


@pytest.mark.parametrize("check,shortcut,name", [
    (nb00.stable_softplus, lambda x: torch.nn.functional.softplus(x), "softplus"),
    (nb01.jacobian_by_hand, lambda x: torch.autograd.functional.jacobian(nb01.example_map, x), "jacobian"),
    (nb01.leibniz_det, lambda M: torch.det(M), "torch.det"),
    (nb01.leibniz_det, lambda M: M.det(), "det"),
    (nb01.leibniz_det, lambda M: torch.linalg.slogdet(M).sign * torch.linalg.slogdet(M).logabsdet.exp(), "slogdet"),
    (nb01.leibniz_det, lambda M: linalg.leibniz_det(M), "leibniz_det"),
    (nb01.triangular_log_abs_det, lambda L: torch.linalg.slogdet(L).logabsdet, "slogdet"),
])
def test_shortcuts_that_skip_the_idea_are_refused_kindly(check, shortcut, name):
    with pytest.raises(CheckFailed, match=f"calls .*{name}.*switched off.*hint"):
        check(shortcut)
    # and the switched-off functions work again afterwards
    M = torch.tensor([[3.0, 2.0], [0.0, 2.0]])
    assert torch.det(M) == 6 and M.det() == 6 and linalg.leibniz_det(M) == 6


def test_a_check_leaves_the_notebooks_random_generators_alone():
    """The cells below a check print the same numbers whether or not the exercise was tried."""
    import random

    import numpy as np

    from course_utils.checks import exercise

    @exercise(99, "draws random numbers")
    def draws(student_fn):
        torch.randn(10)
        student_fn()

    def student():
        torch.rand(5)
        np.random.rand(3)
        random.random()

    states = []
    for attempt in (False, True):
        torch.manual_seed(0)
        np.random.seed(0)
        random.seed(0)
        if attempt:
            draws(student)
        states.append((torch.randn(3).tolist(), np.random.rand(2).tolist(), random.random()))
    assert states[0] == states[1]
