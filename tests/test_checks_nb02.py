"""Notebook 02's checks: the reference passes, 'not attempted' is friendly, wrong answers fail."""

import math

import pytest
import torch

from course_utils.checks import CheckFailed
from course_utils.checks import nb02

from checkcontract import contract_tests, not_attempted, slips_named


def log_phi(z):
    return -0.5 * z**2 - 0.5 * math.log(2 * math.pi)


def affine_ref(x, a, b):
    return log_phi((x - b) / a) - math.log(abs(a))


def lognormal_ref(x, mu, sigma):
    return log_phi((torch.log(x) - mu) / sigma) - math.log(sigma) - torch.log(x)


def linear_ref(x, A, b):
    z = torch.linalg.solve(A, (x - b).T).T
    return log_phi(z).sum(1) - torch.linalg.slogdet(A).logabsdet


# check: (the check, a reference solution, {description: a plausible wrong answer})
CASES = {
    "nb02.affine_log_density": (
        nb02.affine_log_density,
        affine_ref,
        {"no Jacobian": lambda x, a, b: log_phi((x - b) / a),
         "plus log|a|": lambda x, a, b: log_phi((x - b) / a) + math.log(abs(a)),
         "log a without abs": lambda x, a, b: log_phi((x - b) / a) - torch.log(torch.tensor(a, dtype=x.dtype)),
         "multiplies by a": lambda x, a, b: log_phi(a * (x - b)) - math.log(abs(a)),
         "density not log": lambda x, a, b: affine_ref(x, a, b).exp()},
    ),
    "nb02.lognormal_log_density": (
        nb02.lognormal_log_density,
        lognormal_ref,
        {"no 1/x": lambda x, mu, s: log_phi((torch.log(x) - mu) / s) - math.log(s),
         "no 1/sigma": lambda x, mu, s: log_phi((torch.log(x) - mu) / s) - torch.log(x),
         "plus log x": lambda x, mu, s: log_phi((torch.log(x) - mu) / s) - math.log(s) + torch.log(x),
         "exp instead of log": lambda x, mu, s: log_phi((torch.exp(x) - mu) / s) - math.log(s) - x},
    ),
    "nb02.linear_map_log_density": (
        nb02.linear_map_log_density,
        linear_ref,
        {"no log-det": lambda x, A, b: log_phi(torch.linalg.solve(A, (x - b).T).T).sum(1),
         "plus log-det": lambda x, A, b: linear_ref(x, A, b) + 2 * torch.linalg.slogdet(A).logabsdet,
         "A instead of A^-1": lambda x, A, b: log_phi((x - b) @ A.T).sum(1) - torch.linalg.slogdet(A).logabsdet,
         "transposed": lambda x, A, b: (log_phi(torch.linalg.solve(A.T, (x - b).T).T).sum(1)
                                        - torch.linalg.slogdet(A).logabsdet),
         "log det without abs": lambda x, A, b: (log_phi(torch.linalg.solve(A, (x - b).T).T).sum(1)
                                                 - torch.det(A).log()),
         "summed over the batch": lambda x, A, b: linear_ref(x, A, b).sum(),
         "summed over the wrong axis": lambda x, A, b: (log_phi(torch.linalg.solve(A, (x - b).T).T).sum(0)
                                                        - torch.linalg.slogdet(A).logabsdet)},
    ),
}

(test_reference_passes, test_not_attempted_is_friendly, test_wrong_answers_fail_with_numbers,
 test_each_check_rejects_at_least_two_wrong_answers) = contract_tests(CASES)


test_slips_are_named = slips_named(CASES, {
    ("nb02.affine_log_density", "no Jacobian"): "Jacobian term is left out",
    ("nb02.affine_log_density", "plus log|a|"): "added instead of subtracted",
    ("nb02.affine_log_density", "log a without abs"): "log of |a|",
    ("nb02.lognormal_log_density", "no 1/x"): "1/x factor",
    ("nb02.lognormal_log_density", "no 1/sigma"): "1/sigma factor",
    ("nb02.linear_map_log_density", "A instead of A^-1"): "A^{-1}",
    ("nb02.linear_map_log_density", "transposed"): "transposed",
    ("nb02.linear_map_log_density", "log det without abs"): "slogdet",
    ("nb02.linear_map_log_density", "summed over the batch"): "one value per point",
})


def test_expected_values_are_independent_of_the_reference():
    """The checks compare with torch.distributions; confirm those agree with the formulas."""
    x = torch.tensor([0.5, 1.5], dtype=torch.float64)
    assert torch.allclose(affine_ref(x, -2.0, 1.0), torch.distributions.Normal(1.0, 2.0).log_prob(x).double())
    assert torch.allclose(lognormal_ref(x, 0.2, 0.7),
                          torch.distributions.LogNormal(0.2, 0.7).log_prob(x).double())


@pytest.mark.parametrize("check,shortcut", [
    (nb02.affine_log_density, lambda x, a, b: torch.distributions.Normal(b, abs(a)).log_prob(x)),
    (nb02.lognormal_log_density, lambda x, mu, sigma: torch.distributions.LogNormal(mu, sigma).log_prob(x)),
    (nb02.linear_map_log_density,
     lambda x, A, b: torch.distributions.MultivariateNormal(b, covariance_matrix=A @ A.T).log_prob(x)),
])
def test_torch_distributions_is_refused_kindly(check, shortcut):
    with pytest.raises(CheckFailed, match="calls torch.distributions.*change of variables.*hint"):
        check(shortcut)
    assert torch.distributions.Normal(0.0, 1.0).log_prob(torch.tensor(0.0)) < 0   # switched on again


def test_the_log_normal_check_hands_back_a_working_reference():
    ref = nb02.lognormal_log_density(not_attempted)
    x = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    assert torch.allclose(ref(x, 0.0, 1.0), torch.distributions.LogNormal(0.0, 1.0).log_prob(x))
