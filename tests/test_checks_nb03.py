"""Notebook 03's checks: the reference passes, 'not attempted' is friendly, wrong answers fail."""

import math
import re

import pytest
import torch

from course_utils.checks import CheckFailed
from course_utils.checks import nb03
from course_utils.flows import FlowSequential, NormalizingFlow, standard_normal

from checkcontract import contract_tests, slips_named


def chain_ref(layers, x):
    log_det = torch.zeros(x.shape[0], dtype=x.dtype)
    for layer in layers:
        x, ld = layer(x)
        log_det = log_det + ld
    return x, log_det


def tri_ref(x):
    return math.log(2) + x[:, 0] / 2 + torch.log1p(x[:, 2] ** 2)


def log_prob_ref(layers, x):
    z, log_det = chain_ref(layers, x)
    return (-0.5 * z**2).sum(1) - 0.5 * z.shape[1] * math.log(2 * math.pi) + log_det


def _chain_each_at_x(layers, x):
    z, _ = chain_ref(layers, x)
    return z, sum(layer(x)[1] for layer in layers)


def _chain_last_only(layers, x):
    for layer in layers:
        x, ld = layer(x)
    return x, ld


def _chain_minus(layers, x):
    z, ld = chain_ref(layers, x)
    return z, -ld


def _chain_reversed(layers, x):
    return chain_ref(list(reversed(layers)), x)


# check: (the check, a reference solution, {description: a plausible wrong answer})
CASES = {
    "nb03.chain_forward": (
        nb03.chain_forward,
        chain_ref,
        {"each layer at the original x": _chain_each_at_x,
         "last log-det only": _chain_last_only,
         "subtracted": _chain_minus,
         "layers in reverse order": _chain_reversed,
         "only z returned": lambda layers, x: chain_ref(layers, x)[0]},
    ),
    "nb03.triangular_map_log_det": (
        nb03.triangular_map_log_det,
        tri_ref,
        {"no abs (log of -2)": lambda x: torch.log(torch.tensor(-2.0, dtype=x.dtype)) + x[:, 0] / 2 + torch.log1p(x[:, 2] ** 2),
         "missing log 2": lambda x: x[:, 0] / 2 + torch.log1p(x[:, 2] ** 2),
         "x3^2 instead of 1 + x3^2": lambda x: math.log(2) + x[:, 0] / 2 + torch.log(x[:, 2] ** 2),
         "sum of the diagonal": lambda x: -2 + torch.exp(x[:, 0] / 2) + 1 + x[:, 2] ** 2,
         "summed over the batch": lambda x: tri_ref(x).sum(),
         "full slogdet of the wrong map": lambda x: math.log(2) + x[:, 0] + torch.log1p(x[:, 2] ** 2)},
    ),
    "nb03.flow_log_prob": (
        nb03.flow_log_prob,
        log_prob_ref,
        {"minus log-det": lambda layers, x: log_prob_ref(layers, x) - 2 * chain_ref(layers, x)[1],
         "no log-det": lambda layers, x: log_prob_ref(layers, x) - chain_ref(layers, x)[1],
         "no constant": lambda layers, x: log_prob_ref(layers, x) + 0.5 * x.shape[1] * math.log(2 * math.pi),
         "summed over the batch": lambda layers, x: log_prob_ref(layers, x).sum(),
         "mean over features": lambda layers, x: ((-0.5 * chain_ref(layers, x)[0] ** 2).mean(1)
                                                  - 0.5 * math.log(2 * math.pi) + chain_ref(layers, x)[1])},
    ),
}

(test_reference_passes, test_not_attempted_is_friendly, test_wrong_answers_fail_with_numbers,
 test_each_check_rejects_at_least_two_wrong_answers) = contract_tests(CASES)


test_slips_are_named = slips_named(CASES, {
    ("nb03.chain_forward", "each layer at the original x"): "pass the output of one layer on",
    ("nb03.chain_forward", "last log-det only"): "only the last layer",
    ("nb03.chain_forward", "subtracted"): "subtracted instead of added",
    ("nb03.triangular_map_log_det", "no abs (log of -2)"): "take log|.|",
    ("nb03.triangular_map_log_det", "missing log 2"): "log 2",
    ("nb03.triangular_map_log_det", "summed over the batch"): "one value per point",
    ("nb03.flow_log_prob", "minus log-det"): "subtracted instead of added",
    ("nb03.flow_log_prob", "no constant"): "(D/2) log(2 pi)",
})


def test_example_chain_is_a_valid_flow_and_not_trivial():
    """The chain's parameters are moved away from the identity, and the library agrees with the
    brute-force values the checks use."""
    layers = nb03.example_chain(3, seed=0)
    x = torch.randn(4, 3, dtype=torch.float64)
    z, log_det = nb03._brute_force(layers, x)
    assert log_det.abs().min() > 1e-3 and not torch.allclose(z, x)
    flow = FlowSequential(*layers)
    z_lib, ld_lib = flow(x)
    assert torch.allclose(z_lib, z) and torch.allclose(ld_lib, log_det)
    x_back, ld_inv = flow.inverse(z_lib)
    assert torch.allclose(x_back, x) and torch.allclose(ld_inv, -log_det)
    model = NormalizingFlow(FlowSequential(*layers), standard_normal(3, dtype=torch.float64))
    assert torch.allclose(model.log_prob(x), log_prob_ref(layers, x))


def test_triangular_map_jacobian_is_lower_triangular():
    x = torch.randn(3, dtype=torch.float64)
    J = torch.autograd.functional.jacobian(lambda v: nb03.triangular_map(v[None])[0], x)
    assert torch.equal(J.triu(1), torch.zeros(3, 3, dtype=torch.float64))
    assert torch.allclose(torch.linalg.slogdet(J).logabsdet, tri_ref(x[None])[0])


def _with_flow_sequential(layers, x):
    return FlowSequential(*layers)(x)


@pytest.mark.parametrize("name,shortcut,words", [
    ("nb03.chain_forward", _with_flow_sequential, "FlowSequential.forward"),
    ("nb03.flow_log_prob", lambda layers, x: NormalizingFlow(FlowSequential(*layers), standard_normal(x.shape[1])).log_prob(x),
     "torch.distributions"),
    ("nb03.flow_log_prob", lambda layers, x: torch.distributions.MultivariateNormal(
        torch.zeros(x.shape[1], dtype=x.dtype), torch.eye(x.shape[1], dtype=x.dtype)).log_prob(chain_ref(layers, x)[0])
     + chain_ref(layers, x)[1], "torch.distributions"),
    ("nb03.triangular_map_log_det", lambda x: torch.stack([torch.linalg.slogdet(torch.autograd.functional.jacobian(
        lambda v: nb03.triangular_map(v[None])[0], xi)).logabsdet for xi in x]), "jacobian"),
])
def test_shortcuts_are_refused_kindly(name, shortcut, words):
    check = CASES[name][0]
    with pytest.raises(CheckFailed, match=f"calls .*{re.escape(words)}.*switched off"):
        check(shortcut)


def test_flow_log_prob_may_use_flow_sequential_for_the_chain():
    def with_chain(layers, x):
        z, log_det = FlowSequential(*layers)(x)
        return (-0.5 * z**2).sum(1) - 0.5 * z.shape[1] * math.log(2 * math.pi) + log_det
    assert nb03.flow_log_prob(with_chain) is with_chain
