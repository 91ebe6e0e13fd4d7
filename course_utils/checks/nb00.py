"""Checks for notebook 00 (start here): the warm-up exercise."""

import torch

from . import CheckFailed, assert_close, exercise

__all__ = ["stable_softplus"]


@exercise(0, "a numerically stable softplus")
def stable_softplus(student_fn):
    """softplus(x) = log(1 + exp(x)), accurate for large positive and negative x."""
    x = torch.tensor([-100.0, -20.0, -1.0, 0.0, 0.5, 3.0, 20.0, 100.0, 1000.0], dtype=torch.float64)
    expected = torch.nn.functional.softplus(x)
    got = student_fn(x.clone())
    if not isinstance(got, torch.Tensor):
        raise CheckFailed(f"softplus should return a tensor, got {type(got).__name__}")
    naive = torch.log(1 + torch.exp(x))
    if torch.isinf(got.to(torch.float64)).any():
        raise CheckFailed(f"softplus(1000) came back as {got[-1].item()}: exp(1000) overflows. "
                          "For large x, log(1 + exp(x)) = x + log(1 + exp(-x)); use that form.")
    assert_close(got, expected, "softplus of [-100, -20, -1, 0, 0.5, 3, 20, 100, 1000]",
                 atol=1e-8, rtol=1e-8,
                 slips={"log(1 + exp(x)) is computed directly (it overflows)": naive,
                        "the ReLU max(x, 0) is returned": x.clamp(min=0),
                        "exp(x) is left out: log(1 + x)": torch.log1p(x.clamp(min=-0.999))})
