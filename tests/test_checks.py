"""Every exercise check passes the reference answer, flags 'not attempted', and fails
plausible wrong answers with a message that says what was expected and what came back."""

import math
import re

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


# The shared machinery of the checks (issue 20): tolerance policy, side effects, raw errors, messages.

def test_tolerance_follows_the_dtype_of_the_answer():
    from course_utils.checks import tolerance
    assert tolerance(torch.float64, 1e-8, 1e-8) == (1e-8, 1e-8)
    atol32, rtol32 = tolerance(torch.float32, 1e-8, 1e-8, work=100, scale=10)
    assert rtol32 > 100 * torch.finfo(torch.float32).eps and atol32 > 10 * rtol32 * 0.99
    # a float32 answer right up to float32 rounding passes; the same numbers sent back as float64 are
    # told to compute in float64
    third = torch.tensor([1 / 3, 2 / 3], dtype=torch.float32)
    assert_close(third, [1 / 3, 2 / 3], "thirds", atol=1e-12, rtol=1e-12)
    with pytest.raises(CheckFailed, match="looks like float32 rounding: compute in float64"):
        assert_close(third.double(), [1 / 3, 2 / 3], "thirds", atol=1e-12, rtol=1e-12)


def test_messages_are_short_and_without_float_noise():
    from course_utils.checks import describe, number
    assert number(-0.30000001192092896) == "-0.3"
    assert describe(torch.tensor([0.1, 0.2], dtype=torch.float32)) == "[0.1, 0.2]"
    with pytest.raises(CheckFailed) as info:
        assert_close(torch.zeros(50, 4), torch.ones(50, 4), "the big tensor")
    message = str(info.value)
    assert "200 of 200 entries differ" in message and "at [0, 0]" in message and len(message) < 200


def test_call_student_names_in_place_edits_and_keeps_the_checks_data():
    from course_utils.checks import call_student

    def log_in_place(x):
        return x.log_()

    x = torch.tensor([1.0, 2.0])
    with pytest.raises(CheckFailed, match="changes its input x in place"):
        call_student(log_in_place, x)
    assert torch.equal(x, torch.tensor([1.0, 2.0]))               # the check's own tensor is untouched
    assert torch.equal(call_student(lambda x: x.clone().log_(), x), x.log())


@pytest.mark.parametrize("raise_it,words", [
    (lambda: math.log(-1.0), "math domain error"),
    (lambda: torch.zeros(5, 3) + torch.zeros(5), "shapes do not fit together"),
    (lambda: torch.zeros(2, 3) @ torch.zeros(2, 3), "matrix product"),
    (lambda: 1 - torch.ones(2, dtype=torch.bool), "bool tensor"),
    (lambda: math.exp(torch.ones(3)), "several numbers"),
])
def test_raw_errors_of_common_slips_are_named(raise_it, words):
    from course_utils.checks import named_error
    with pytest.raises(Exception) as info:
        raise_it()
    named = named_error(info.value)
    assert words in str(named) and "your code raised" not in str(named)


def test_backward_through_a_freed_graph_is_named():
    from course_utils.checks import named_error
    x = torch.ones(2, requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError) as info:
        y.backward()
    assert "retain_graph=True" in str(named_error(info.value))


@pytest.mark.parametrize("check,shortcut,name", [
    (nb01.leibniz_det, lambda M: torch.linalg.det(M), "torch.linalg.det"),
    (nb01.leibniz_det, lambda M: torch.tensor(__import__("scipy.linalg").linalg.det(M.numpy())), "scipy.linalg.det"),
    (nb01.leibniz_det, lambda M: torch.linalg.eigvals(M).prod().real, "torch.linalg.eigvals"),
    (nb01.leibniz_det, lambda M: torch.linalg.lu_factor(M)[0].diagonal().prod(), "torch.linalg.lu_factor"),
    (nb01.triangular_log_abs_det, lambda L: torch.logdet(L.abs()), "torch.logdet"),
    (nb01.jacobian_by_hand, lambda x: torch.stack([torch.func.jvp(nb01.example_map, (x,), (e,))[1]
                                                    for e in torch.eye(2, dtype=x.dtype)], dim=1), "torch.func.jvp"),
    (nb01.jacobian_by_hand, lambda x: torch.func.jacfwd(nb01.example_map)(x), "torch.func.jacfwd"),
    (nb00.stable_softplus, lambda x: torch.logaddexp(x, torch.zeros_like(x)), "torch.logaddexp"),
])
def test_library_equivalents_of_a_refused_shortcut_are_refused_too(check, shortcut, name):
    with pytest.raises(CheckFailed, match=f"calls {re.escape(name)}.*switched off"):
        check(shortcut)
    M = torch.tensor([[3.0, 2.0], [0.0, 2.0]])
    assert torch.linalg.det(M) == 6 and torch.linalg.eigvals(M).prod().real == 6


def test_the_reverse_kl_may_use_torch_distributions_for_the_base_density():
    from course_utils.checks import nb05

    def mine(flow, U, z0):
        z, log_det = flow(z0)
        log_q0 = torch.distributions.Normal(0.0, 1.0).log_prob(z0).sum(dim=1)
        return (log_q0 - log_det + U(z)).mean()

    assert nb05.reverse_kl(mine) is mine


VERBS = (" is ", " are ", " was ", " were ", " has ", " have ", " taken", " used", " added", " left out",
         " returned", " computed", " missing", " kept", " applied", " summed", " averaged", " multiplied",
         " divided", " flipped", " swapped", " evaluated", " joined", " set", " done", " included", " replaced",
         " stacked", " counted", " removed", " subtracted", " enters")


def _slip_descriptions(module):
    """The string keys of every ``slips={...}`` dict in a checks module's source (their literal parts)."""
    import ast
    import inspect
    tree = ast.parse(inspect.getsource(module))
    for node in ast.walk(tree):
        dicts = []
        if isinstance(node, ast.keyword) and node.arg == "slips" and isinstance(node.value, ast.Dict):
            dicts.append(node.value)
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "slips" for t in node.targets) \
                and isinstance(node.value, ast.Dict):
            dicts.append(node.value)
        for d in dicts:
            for key in d.keys:
                text = "".join(c.value for c in ast.walk(key) if isinstance(c, ast.Constant) and isinstance(c.value, str))
                if text:
                    yield text


@pytest.mark.parametrize("name", ["nb00", "nb01", "nb02", "nb03", "nb04", "nb05"])
def test_slip_descriptions_read_as_a_clause_after_this_is_what_you_get_when(name):
    """'This is what you get when the complement (0 where i + j is even).' is not a sentence."""
    import importlib
    module = importlib.import_module(f"course_utils.checks.{name}")
    for text in _slip_descriptions(module):
        head = text
        while re.search(r"\([^()]*\)", head):
            head = re.sub(r"\([^()]*\)", "", head)
        head = head.split(":")[0]
        assert any(verb in f" {head} " for verb in VERBS), f"not a clause after 'when': {text!r}"
