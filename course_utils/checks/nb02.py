"""Checks for notebook 02: the change of variables theorem.

The expected values come from ``torch.distributions`` (Normal, LogNormal, MultivariateNormal),
which know these densities in closed form: an independent route to the same numbers.
"""

import math

import torch
from torch.distributions import LogNormal, MultivariateNormal, Normal

from ..flows.base import standard_normal_log_prob
from . import CheckFailed, assert_close, assert_shape, call_student, exercise, first_named

__all__ = ["affine_log_density", "lognormal_log_density", "linear_map_log_density"]

HINT = " (see the hint under the exercise)"
#: the exercises are about the change of variables: a library that knows the answer is switched off
DISTRIBUTIONS = [("torch.distributions.Distribution.__init__", "torch.distributions")]
REASON = "the change of variables formula"


def _lognormal_reference(x: torch.Tensor, mu: float, sigma: float) -> torch.Tensor:
    """log p_X(x) of X = exp(mu + sigma Z), from ``torch.distributions.LogNormal``."""
    return LogNormal(torch.tensor(mu, dtype=x.dtype), sigma).log_prob(x)


#: raw errors of common slips in these exercises, named
ERRORS = {
    r"math domain error": "math.log was given a negative number: a (or det A) can be negative here, so take the "
                          "log of its absolute value, math.log(abs(a))" + HINT,
    r"must be Tensor, not (float|int)": "torch.log (or torch.exp) was given a Python number: a, b, mu and sigma are "
                                         "floats here, so use math.log(abs(a)) for them and torch.log for tensors",
    r"must be real number, not Tensor|only one element tensors": "math.log (or math.exp) was given a tensor: "
                                                               "use torch.log and torch.exp on tensors such as x",
}


def _call(student_fn, *args):
    return call_student(student_fn, *args, forbidden=DISTRIBUTIONS, reason=REASON, errors=ERRORS)


def _no_nan(got, what: str, hint: str) -> None:
    if isinstance(got, torch.Tensor) and got.is_floating_point() and torch.isnan(got).any():
        raise CheckFailed(f"{what} contains NaN: {hint}")


@exercise(1, "the density of an affine map")
def affine_log_density(student_fn):
    """Check exercise 1: ``student_fn(x, a, b)`` returns log p_X(x) for X = a Z + b, Z ~ N(0, 1).

    Compared with ``torch.distributions.Normal(b, |a|)`` for four (a, b), two of them with a < 0;
    ``torch.distributions`` is switched off while the student's code runs.

    Example:
        >>> affine_log_density(lambda x, a, b: -0.5 * ((x - b) / a) ** 2 - 0.5 * math.log(2 * math.pi)
        ...                    - math.log(abs(a)))
        Exercise 1 (the density of an affine map): correct. Well done!
    """
    x = torch.linspace(-3.0, 4.0, 8, dtype=torch.float64)
    failures = []
    for a, b in [(2.0, 1.0), (-0.5, 3.0), (1.0, 0.0), (-3.0, -1.0)]:
        expected = Normal(torch.tensor(b, dtype=torch.float64), abs(a)).log_prob(x)
        got = _call(student_fn, x, a, b)
        what = f"log p_X(x) for X = {a:g} Z + {b:g} at x = {x.numpy().round(2).tolist()}"
        _no_nan(got, what, "a is negative here, so take the log of |a|, not of a" + HINT)
        z = (x - b) / a
        try:
            assert_close(got, expected, what, atol=1e-8, slips={
                "the Jacobian term is left out (add log|d f^{-1}/dx| = -log|a|)" + HINT: standard_normal_log_prob(z, event_dims=0),
                "log|a| is added instead of subtracted (d f^{-1}/dx = 1/a)" + HINT: standard_normal_log_prob(z, event_dims=0) + math.log(abs(a)),
                "z is computed as a (x - b) instead of (x - b) / a":
                    standard_normal_log_prob(a * (x - b), event_dims=0) - math.log(abs(a)),
                "the density is returned instead of its log": expected.exp(),
                "the constant -1/2 log(2 pi) of the Gaussian is missing" + HINT: expected + 0.5 * math.log(2 * math.pi),
                "b is added instead of subtracted (f^{-1}(x) = (x - b) / a)":
                    standard_normal_log_prob((x + b) / a, event_dims=0) - math.log(abs(a)),
                "the log of a^2 is taken where log|a| is needed (log(a^2) = 2 log|a|)":
                    standard_normal_log_prob(z, event_dims=0) - math.log(a * a),
            })
        except CheckFailed as failure:
            failures.append(failure)
    first_named(failures)


@exercise(2, "the log-normal density of exp(Z)", reference=_lognormal_reference)
def lognormal_log_density(student_fn):
    """Check exercise 2: ``student_fn(x, mu, sigma)`` returns log p_X(x) for X = exp(mu + sigma Z).

    Compared with ``torch.distributions.LogNormal`` for three (mu, sigma), with
    ``torch.distributions`` switched off while the student's code runs. Returns the student's
    function when it is right, and a ``LogNormal``-based reference when not attempted yet.

    Example:
        >>> def mine(x, mu, sigma):
        ...     z = (torch.log(x) - mu) / sigma
        ...     return -0.5 * z**2 - 0.5 * math.log(2 * math.pi) - math.log(sigma) - torch.log(x)
        >>> lognormal_log_density(mine) is mine
        Exercise 2 (the log-normal density of exp(Z)): correct. Well done!
        True
    """
    x = torch.tensor([0.05, 0.3, 1.0, 2.0, 5.0, 20.0], dtype=torch.float64)
    failures = []
    for mu, sigma in [(0.0, 1.0), (0.5, 0.25), (-1.0, 2.0)]:
        expected = LogNormal(torch.tensor(mu, dtype=torch.float64), sigma).log_prob(x)
        got = _call(student_fn, x, mu, sigma)
        what = f"log p_X(x) for X = exp({mu:g} + {sigma:g} Z) at x = {x.tolist()}"
        _no_nan(got, what, "every x here is positive, so look for a log of a negative number")
        z = (torch.log(x) - mu) / sigma
        try:
            assert_close(got, expected, what, atol=1e-8, slips={
                "the 1/x factor of d(log x)/dx is left out (subtract log x)" + HINT:
                    standard_normal_log_prob(z, event_dims=0) - math.log(sigma),
                "the 1/sigma factor is left out (subtract log sigma)" + HINT: standard_normal_log_prob(z, event_dims=0) - torch.log(x),
                "both Jacobian factors are left out" + HINT: standard_normal_log_prob(z, event_dims=0),
                "log x is added instead of subtracted": standard_normal_log_prob(z, event_dims=0) - math.log(sigma) + torch.log(x),
                "the density is returned instead of its log": expected.exp(),
                "z is computed from x instead of log x (f^{-1}(x) = (log x - mu) / sigma)" + HINT:
                    standard_normal_log_prob((x - mu) / sigma, event_dims=0) - math.log(sigma) - torch.log(x),
                "mu is subtracted after dividing by sigma, log(x) / sigma - mu":
                    standard_normal_log_prob(torch.log(x) / sigma - mu, event_dims=0) - math.log(sigma) - torch.log(x),
                "log sigma and log x are both added instead of subtracted":
                standard_normal_log_prob(z, event_dims=0) + math.log(sigma) + torch.log(x),
            "log sigma is added instead of subtracted":
                    standard_normal_log_prob(z, event_dims=0) + math.log(sigma) - torch.log(x),
                "the constant -1/2 log(2 pi) of the Gaussian is missing" + HINT: expected + 0.5 * math.log(2 * math.pi),
            })
        except CheckFailed as failure:
            failures.append(failure)
    first_named(failures)


@exercise(3, "the log-density of a 2-D linear map")
def linear_map_log_density(student_fn):
    """Check exercise 3: ``student_fn(x, A, b)`` returns log p_X(x), shape (n,), for X = A Z + b.

    Compared with ``torch.distributions.MultivariateNormal(b, A A^T)`` for two matrices, one with
    a negative determinant; ``torch.distributions`` is switched off while the student's code runs.

    Example:
        >>> def mine(x, A, b):
        ...     z = torch.linalg.solve(A, (x - b).T).T
        ...     return (-0.5 * z**2 - 0.5 * math.log(2 * math.pi)).sum(1) - torch.linalg.slogdet(A).logabsdet
        >>> linear_map_log_density(mine)
        Exercise 3 (the log-density of a 2-D linear map): correct. Well done!
    """
    gen = torch.Generator().manual_seed(2)
    x = 2 * torch.randn(6, 2, generator=gen, dtype=torch.float64)
    cases = [
        (torch.tensor([[2.0, 0.5], [-1.0, 1.0]], dtype=torch.float64), torch.tensor([1.0, -2.0], dtype=torch.float64)),
        (torch.tensor([[0.0, 1.5], [1.0, 0.3]], dtype=torch.float64), torch.tensor([0.0, 0.5], dtype=torch.float64)),
    ]
    failures = []
    for A, b in cases:
        expected = MultivariateNormal(b, covariance_matrix=A @ A.T).log_prob(x)
        got = _call(student_fn, x, A, b)
        what = f"log p_X(x) for X = A Z + b with A = {A.tolist()}, b = {b.tolist()} (det A = {torch.det(A).item():g})"
        if isinstance(got, torch.Tensor) and got.dim() == 0:
            raise CheckFailed(f"{what} should have one value per point, shape ({x.shape[0]},), but is a single "
                              "number: sum the Gaussian's log-density over the 2 coordinates (dim=1), not over the points")
        if isinstance(got, torch.Tensor) and tuple(got.shape) == (x.shape[1],):
            raise CheckFailed(f"{what} should have one value per point, shape ({x.shape[0]},), but has shape "
                              f"{tuple(got.shape)}. This is what you get when the Gaussian's log-density is summed over "
                              "the points (dim=0) instead of over the 2 coordinates (dim=1)" + HINT + ".")
        if isinstance(got, torch.Tensor) and tuple(got.shape) == tuple(x.shape):
            raise CheckFailed(f"{what} should have one value per point, shape ({x.shape[0]},), but has shape "
                              f"{tuple(got.shape)}. This is what you get when the Gaussian's log-density is not summed "
                              "over the 2 coordinates (sum over dim=1)" + HINT + ".")
        _no_nan(got, what, "det A can be negative: use torch.linalg.slogdet(A).logabsdet (or log|det A|)" + HINT)
        assert_shape(got, (x.shape[0],), what)
        logdet = torch.linalg.slogdet(A).logabsdet
        z = torch.linalg.solve(A, (x - b).T).T

        def log_pz(v):
            return standard_normal_log_prob(v)

        try:
            _linear_close(got, expected, what, x, A, b, z, logdet, log_pz)
        except CheckFailed as failure:
            failures.append(failure)
    first_named(failures)


def _linear_close(got, expected, what, x, A, b, z, logdet, log_pz):
    assert_close(got, expected, what, atol=1e-8, slips={
        "the constant -1/2 log(2 pi) is counted once instead of once per coordinate (D = 2 times)" + HINT:
            log_pz(z) + 0.5 * math.log(2 * math.pi) - logdet,
        "b is not subtracted (z = A^{-1} x instead of A^{-1} (x - b))": log_pz(torch.linalg.solve(A, x.T).T) - logdet,
        "the log-determinant is left out (subtract log|det A|)" + HINT: log_pz(z),
        "log|det A| is added instead of subtracted (det of the inverse is 1/det A)" + HINT: log_pz(z) + logdet,
        "z is computed as A (x - b) instead of A^{-1} (x - b)": log_pz((x - b) @ A.T) - logdet,
        "z is computed with A transposed (z = A^{-T}(x - b)): mind x's layout (n, 2), one point per row" + HINT:
            log_pz(torch.linalg.solve(A.T, (x - b).T).T) - logdet,
    })
