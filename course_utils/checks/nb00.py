"""Checks for notebook 00 (start here): the warm-up exercise."""

import torch

from . import CheckFailed, assert_close, call_student, describe, exercise, number
from .shortcuts import SOFTPLUS

__all__ = ["stable_softplus"]

HINT = " (see the hint under the exercise)"
#: the points checked: far out on both sides (where exp overflows), and in between
POINTS = [-1000.0, -100.0, -20.0, -1.0, 0.0, 0.5, 3.0, 10.0, 20.0, 100.0, 1000.0]


@exercise(0, "a numerically stable softplus", reference=torch.nn.functional.softplus)
def stable_softplus(student_fn):
    """Check exercise 0: ``student_fn(x)`` returns softplus(x) = log(1 + exp(x)), accurate for large |x|.

    Compared with ``torch.nn.functional.softplus`` (switched off while the student's code runs,
    with ``torch.logaddexp``) at x from -1000 to 1000, in float64 and in float32 (the notebook
    calls it on float32 tensors). Returns the student's function when it is right, and
    ``torch.nn.functional.softplus`` when the exercise is not attempted yet.

    Example:
        >>> mine = lambda x: x.clamp(min=0) + torch.log1p(torch.exp(-x.abs()))
        >>> stable_softplus(mine) is mine
        Exercise 0 (a numerically stable softplus): correct. Well done!
        True
    """
    for dtype in (torch.float64, torch.float32):
        x = torch.tensor(POINTS, dtype=dtype)
        x64 = x.double()
        expected = x64.clamp(min=0) + torch.log1p(torch.exp(-x64.abs()))    # = F.softplus without its cut-off
        got = call_student(student_fn, x, forbidden=SOFTPLUS, reason="writing a stable formula yourself")
        if not isinstance(got, torch.Tensor):
            raise CheckFailed(f"softplus should return a tensor, got {type(got).__name__}")
        what = f"softplus of {describe(x)} ({str(dtype).replace('torch.', '')})"
        if got.shape == x.shape:
            _diagnose(x, got.detach().double(), expected, what)
        assert_close(got, expected, what, atol=1e-8, rtol=1e-8)


def _diagnose(x, got, expected, what):
    """Name the slips that break softplus where exp overflows, or that drop its small tail."""
    bad = ~torch.isfinite(got)
    tol = 1e-8 + 1e-6 * expected.abs()
    if torch.allclose(got[x > -1], torch.log1p(x.double()[x > -1]), atol=1e-6):
        raise CheckFailed(f"{what}: expected {describe(expected)}, got {describe(got)}. This is what you get when "
                          "exp(x) is left out: log(1 + x) instead of log(1 + exp(x))" + HINT + ".")
    big, small = x.double() > 80, x.double() < -80
    if (bad & big).any() and not (bad & small).any():
        i = int((bad & big).nonzero()[0])
        raise CheckFailed(f"{what}: softplus({number(x[i])}) came back as {number(got[i])}: exp({number(x[i])}) "
                          "overflows. For large x, log(1 + exp(x)) = x + log(1 + exp(-x)); use that form, "
                          "so the exponent is never positive" + HINT + ".")
    if (bad & small).any():
        i = int((bad & small).nonzero()[0])
        raise CheckFailed(f"{what}: softplus({number(x[i])}) came back as {number(got[i])}: exp({number(-x[i])}) "
                          "overflows. x + log(1 + exp(-x)) is the stable form for positive x only; for negative "
                          "x keep log(1 + exp(x)), or write both at once as max(x, 0) + log(1 + exp(-|x|))" + HINT + ".")
    if bad.any():
        raise CheckFailed(f"{what} contains NaN or infinity: {describe(got)}; expected {describe(expected)}. "
                          "softplus is finite everywhere: look for a log of a number <= 0" + HINT + ".")
    off = (got - expected).abs() > tol
    if off.any() and torch.allclose(got, x.double().abs() + torch.log1p(torch.exp(-x.double().abs())), rtol=1e-6):
        raise CheckFailed(f"{what}: expected {describe(expected)}, got {describe(got)}. This is what you get when "
                          "|x| is used where max(x, 0) is needed (softplus is near 0 for negative x)" + HINT + ".")
    if off.any() and torch.allclose(got, x.double().clamp(min=0), atol=1e-12):
        raise CheckFailed(f"{what}: expected {describe(expected)}, got {describe(got)}. This is what you get when "
                          "the ReLU max(x, 0) is returned (the log(1 + exp(-|x|)) part is missing)" + HINT + ".")
    cut = off & (got == x.double()) & (x > 0)
    if cut.any():
        i = int(cut.nonzero()[0])
        raise CheckFailed(f"{what}: softplus({number(x[i])}) came back as {number(got[i])}, but it is "
                          f"{number(expected[i], 10)}: returning x itself above a threshold drops log(1 + exp(-x)) = "
                          f"{number(expected[i] - x[i].double(), 3)}, too much at x = {number(x[i])}. Raise the "
                          "threshold (x + log(1 + exp(-x)) needs none)" + HINT + ".")
    if off.any() and torch.allclose(got, -expected, atol=1e-6, rtol=1e-6):
        raise CheckFailed(f"{what}: expected {describe(expected)}, got {describe(got)}. This is what you get when "
                          "the sign is flipped.")
