"""Checks for notebook 00 (start here): the warm-up exercise."""

import torch

from . import CheckFailed, assert_close, exercise
from .shortcuts import call_without

__all__ = ["stable_softplus"]

HINT = " (see the hint under the exercise)"


@exercise(0, "a numerically stable softplus", reference=torch.nn.functional.softplus)
def stable_softplus(student_fn):
    """Check exercise 0: ``student_fn(x)`` returns softplus(x) = log(1 + exp(x)), accurate for large |x|.

    Compared with ``torch.nn.functional.softplus`` (switched off while the student's code runs)
    at x from -100 to 1000 in float64. Returns the student's function when it is right, and
    ``torch.nn.functional.softplus`` when the exercise is not attempted yet.

    Example:
        >>> mine = lambda x: x.clamp(min=0) + torch.log1p(torch.exp(-x.abs()))
        >>> stable_softplus(mine) is mine
        Exercise 0 (a numerically stable softplus): correct. Well done!
        True
    """
    x = torch.tensor([-100.0, -20.0, -1.0, 0.0, 0.5, 3.0, 20.0, 100.0, 1000.0], dtype=torch.float64)
    expected = torch.nn.functional.softplus(x)
    got = call_without(["torch.nn.functional.softplus"], "writing a stable formula yourself",
                       student_fn, x.clone())
    if not isinstance(got, torch.Tensor):
        raise CheckFailed(f"softplus should return a tensor, got {type(got).__name__}")
    naive = torch.log(1 + torch.exp(x))
    if torch.isinf(got.to(torch.float64)).any():
        raise CheckFailed(f"softplus(1000) came back as {got[-1].item()}: exp(1000) overflows. "
                          "For large x, log(1 + exp(x)) = x + log(1 + exp(-x)); use that form" + HINT + ".")
    assert_close(got, expected, "softplus of [-100, -20, -1, 0, 0.5, 3, 20, 100, 1000]",
                 atol=1e-8, rtol=1e-8,
                 slips={"log(1 + exp(x)) is computed directly (it overflows)" + HINT: naive,
                        "the ReLU max(x, 0) is returned (the log(1 + exp(-|x|)) part is missing)" + HINT:
                        x.clamp(min=0),
                        "exp(x) is left out: log(1 + x)": torch.log1p(x.clamp(min=-0.999))})
