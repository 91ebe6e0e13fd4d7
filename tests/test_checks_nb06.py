"""Notebook 06's checks: pass the reference, flag 'not attempted', fail plausible wrong answers.

The references here are the library layers themselves (BatchNormFlow, ActNorm), so the checks are
also tied to the code the notebook uses afterwards."""

import pytest
import torch

from course_utils.checks import CheckFailed
from course_utils.checks import nb06
from course_utils.flows import ActNorm, BatchNormFlow

from checkcontract import contract_tests, slips_named


def library_batchnorm(x, log_gamma, beta, eps):
    layer = BatchNormFlow(x.shape[1], eps=eps).double()
    with torch.no_grad():
        layer.log_gamma.copy_(log_gamma), layer.beta.copy_(beta)
    y, log_det = layer(x)
    return y.detach(), log_det.detach()


def batchnorm_with(var_fn=lambda x: x.var(0, correction=0), scale=True, log_det_fn=None):
    def fn(x, log_gamma, beta, eps):
        mean, var = x.mean(0), var_fn(x)
        y = (x - mean) / torch.sqrt(var + eps) * (log_gamma.exp() if scale else 1) + beta
        ld = (log_gamma - 0.5 * torch.log(var + eps)).sum() if log_det_fn is None else log_det_fn(log_gamma, var, eps)
        return y, ld * torch.ones(x.shape[0], dtype=x.dtype)
    return fn


def library_running(running_mean, running_var, x, momentum):
    layer = BatchNormFlow(x.shape[1], momentum=momentum).double()
    layer.running_mean.copy_(running_mean), layer.running_var.copy_(running_var)
    layer(x)
    return layer.running_mean.clone(), layer.running_var.clone()


def running_with(correction=1, swap=False):
    def fn(rm, rv, x, m):
        a, b = (m, 1 - m) if swap else (1 - m, m)
        return a * rm + b * x.mean(0), a * rv + b * x.var(0, correction=correction)
    return fn


def library_actnorm(x):
    layer = ActNorm(x.shape[1]).double()
    layer(x)
    return layer.log_scale.detach().clone(), layer.bias.detach().clone()


def actnorm_with(guard=True, sign=-1, bias_over_std=True, correction=0):
    def fn(x):
        mean, std = x.mean(0), x.std(0, correction=correction)
        if guard:
            std = torch.where(std > 1e-6, std, torch.ones_like(std))
        return sign * torch.log(std), -mean / std if bias_over_std else -mean
    return fn


CASES = {
    "batchnorm_forward": (
        nb06.batchnorm_forward, batchnorm_with(),
        {"unbiased variance": batchnorm_with(var_fn=lambda x: x.var(0, correction=1)),
         "no learned scale": batchnorm_with(scale=False),
         "no log gamma in log-det": batchnorm_with(log_det_fn=lambda lg, var, eps: (-0.5 * torch.log(var + eps)).sum()),
         "log var without the half": batchnorm_with(log_det_fn=lambda lg, var, eps: (lg - torch.log(var + eps)).sum()),
         "log-det summed over the batch": lambda *a: (batchnorm_with()(*a)[0], batchnorm_with()(*a)[1].sum())},
    ),
    "update_running": (
        nb06.update_running, library_running,
        {"biased variance": running_with(correction=0),
         "weights swapped": running_with(swap=True),
         "no averaging": lambda rm, rv, x, m: (x.mean(0), x.var(0))},
    ),
    "actnorm_init": (
        nb06.actnorm_init, actnorm_with(),
        {"no zero-variance guard": actnorm_with(guard=False),
         "sign of log_scale": actnorm_with(sign=1),
         "bias not divided by std": actnorm_with(bias_over_std=False),
         "unbiased std": actnorm_with(correction=1)},
    ),
}

(test_reference_passes, test_not_attempted_is_friendly, test_wrong_answers_fail_with_numbers,
 test_each_check_rejects_at_least_two_wrong_answers) = contract_tests(CASES, extra_words=("std 1",))


test_slips_are_named = slips_named(CASES, {
    ("batchnorm_forward", "unbiased variance"): "unbiased variance",
    ("batchnorm_forward", "no log gamma in log-det"): "sum of log_gamma is missing",
    ("update_running", "weights swapped"): "swapped",
    ("update_running", "biased variance"): "biased batch variance",
    ("actnorm_init", "no zero-variance guard"): "constant",
    ("actnorm_init", "bias not divided by std"): "-mean / std",
})


def test_batch_norm_shortcuts_are_refused_kindly():
    def with_torch(x, log_gamma, beta, eps):
        y = torch.nn.functional.batch_norm(x, None, None, log_gamma.exp(), beta, training=True, eps=eps)
        return y, (log_gamma - 0.5 * torch.log(x.var(0, correction=0) + eps)).sum().expand(x.shape[0])
    with pytest.raises(CheckFailed, match="calls torch.nn.functional.batch_norm.*switched off"):
        nb06.batchnorm_forward(with_torch)


def test_the_library_layer_gives_what_the_check_expects():
    """BatchNormFlow in training mode agrees with the exercise's formula (the check refuses it
    as a shortcut, so it is compared here directly)."""
    x = torch.randn(16, 3, dtype=torch.float64) * torch.tensor([2.0, 0.5, 1.0], dtype=torch.float64)
    log_gamma = torch.tensor([0.3, -0.5, 0.0], dtype=torch.float64)
    beta = torch.tensor([0.5, 0.0, -1.0], dtype=torch.float64)
    y_lib, ld_lib = library_batchnorm(x, log_gamma, beta, 1e-5)
    y_ref, ld_ref = batchnorm_with()(x, log_gamma, beta, 1e-5)
    assert torch.allclose(y_lib, y_ref) and torch.allclose(ld_lib, ld_ref)


def test_the_library_actnorm_initialises_as_the_check_expects():
    """ActNorm's own initialisation agrees with the exercise's formula (the check refuses it as a
    shortcut, so it is compared here directly)."""
    x = torch.randn(40, 3, dtype=torch.float64) * torch.tensor([2.0, 0.5, 1.0], dtype=torch.float64) + 1.0
    x[:, 2] = 4.0
    for got, expected in zip(library_actnorm(x), actnorm_with()(x)):
        assert torch.allclose(got, expected)
