"""Checks for notebook 06: batch normalisation as a flow, and ActNorm."""

import torch

from . import CheckFailed, assert_close, assert_shape, exercise, unpack_pair
from .shortcuts import call_without

__all__ = ["batchnorm_forward", "update_running", "actnorm_init"]

HINT = " (see the hint under the exercise)"


def _batchnorm_reference(x, log_gamma, beta, eps):
    """Batch normalisation with the batch's own statistics: ``(y, log_det)``."""
    mean, var = x.mean(0), x.var(0, correction=0)
    y = (x - mean) / torch.sqrt(var + eps) * log_gamma.exp() + beta
    return y, (log_gamma - 0.5 * torch.log(var + eps)).sum() * x.new_ones(x.shape[0])


def _data(seed, n=32, d=3):
    gen = torch.Generator().manual_seed(seed)
    scale = torch.tensor([2.0, 0.5, 1.0, 3.0])[:d].double()
    shift = torch.tensor([1.0, -2.0, 0.0, 5.0])[:d].double()
    return shift + scale * torch.randn(n, d, generator=gen, dtype=torch.float64)



@exercise(1, "batch normalisation as a flow, in training mode", reference=_batchnorm_reference)
def batchnorm_forward(student_fn):
    """Check exercise 1: ``student_fn(x, log_gamma, beta, eps)`` returns ``(y, log_det)`` with batch statistics.

    Batches of 32, 5 and 200 samples of 3 features; PyTorch's and the library's batch norm are
    switched off while the student's code runs. Returns the student's function when it is
    right, and a reference when not attempted yet.

    Example:
        >>> batchnorm_forward(_batchnorm_reference) is _batchnorm_reference
        Exercise 1 (batch normalisation as a flow, in training mode): correct. Well done!
        True
    """
    eps = 1e-5
    for seed, n in ((0, 32), (1, 5), (2, 200)):
        x = _data(seed, n)
        log_gamma = torch.tensor([0.3, -0.5, 0.0], dtype=torch.float64)
        beta = torch.tensor([0.5, 0.0, -1.0], dtype=torch.float64)
        got = unpack_pair(call_without([("torch.nn.functional.batch_norm", "torch.nn.functional.batch_norm"),
                                        ("course_utils.flows.normalization.BatchNormFlow.forward", "BatchNormFlow")],
                                       "normalising with the batch's statistics yourself", student_fn,
                                       x.clone(), log_gamma.clone(), beta.clone(), eps), "batchnorm_forward")
        mean, var = x.mean(0), x.var(0, correction=0)
        y = (x - mean) / torch.sqrt(var + eps) * log_gamma.exp() + beta
        log_det = (log_gamma - 0.5 * torch.log(var + eps)).sum().expand(n)
        unbiased = x.var(0, correction=1)
        assert_close(got[0], y, f"y for a batch of {n}", atol=1e-8,
                     slips={"the unbiased variance (divide by n - 1) is used; batch norm uses the "
                            "batch's own variance, divided by n" + HINT:
                            (x - mean) / torch.sqrt(unbiased + eps) * log_gamma.exp() + beta,
                            "the learned scale exp(log_gamma) is missing": (x - mean) / torch.sqrt(var + eps) + beta})
        assert_shape(got[1], (n,), "log_det (one number per sample, all equal)")
        assert_close(got[1], log_det, f"log_det for a batch of {n}", atol=1e-8,
                     slips={"the sum of log_gamma is missing (the slide's row has no learned scale)" + HINT:
                            (-0.5 * torch.log(var + eps)).sum().expand(n),
                            "log(var) is used where -0.5 log(var + eps) is needed (1/sqrt(var) is the scale)" + HINT:
                            (log_gamma - torch.log(var + eps)).sum().expand(n),
                            "the sign of the variance term is flipped":
                            (log_gamma + 0.5 * torch.log(var + eps)).sum().expand(n)})


@exercise(2, "running averages")
def update_running(student_fn):
    """Check exercise 2: ``student_fn(running_mean, running_var, x, momentum)`` returns the updated pair.

    Exponential moving averages with the unbiased batch variance, for momenta 0.1, 0.5 and 0.01.

    Example:
        >>> update_running(lambda m, v, x, k: ((1 - k) * m + k * x.mean(0), (1 - k) * v + k * x.var(0)))
        Exercise 2 (running averages): correct. Well done!
    """
    for seed, momentum in ((3, 0.1), (4, 0.5), (5, 0.01)):
        x = _data(seed, 16)
        rm = torch.tensor([0.0, 1.0, -1.0], dtype=torch.float64)
        rv = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
        got = unpack_pair(student_fn(rm.clone(), rv.clone(), x.clone(), momentum), "update_running",
                       "(running_mean, running_var)")
        mean, var = x.mean(0), x.var(0, correction=1)
        exp_m, exp_v = (1 - momentum) * rm + momentum * mean, (1 - momentum) * rv + momentum * var
        assert_close(got[0], exp_m, f"the running mean (momentum {momentum})", atol=1e-10,
                     slips={"the weights are swapped: the new batch gets 1 - momentum" + HINT:
                            momentum * rm + (1 - momentum) * mean,
                            "the running mean is replaced by the batch mean": mean})
        assert_close(got[1], exp_v, f"the running variance (momentum {momentum})", atol=1e-10,
                     slips={"the biased batch variance (divided by n) is averaged in; the running "
                            "estimate uses the unbiased one (divided by n - 1)" + HINT:
                            (1 - momentum) * rv + momentum * x.var(0, correction=0),
                            "the weights are swapped: the new batch gets 1 - momentum":
                            momentum * rv + (1 - momentum) * var})


@exercise(3, "ActNorm's data-dependent initialisation")
def actnorm_init(student_fn):
    """Check exercise 3: ``student_fn(x)`` returns ``(log_scale, bias)`` that standardise ``x`` per feature.

    ``x exp(log_scale) + bias`` must have mean 0 and (population) standard deviation 1 per
    feature; a feature with std below 1e-6 gets std 1. Two batches, each with a constant feature.

    Example:
        >>> def mine(x):
        ...     std = x.std(0, correction=0)
        ...     std = torch.where(std > 1e-6, std, torch.ones_like(std))
        ...     return -torch.log(std), -x.mean(0) / std
        >>> actnorm_init(mine)
        Exercise 3 (ActNorm's data-dependent initialisation): correct. Well done!
    """
    for seed, n in ((6, 64), (7, 3)):
        x = _data(seed, n)
        x[:, 2] = 4.0                                   # a constant feature: zero variance
        got = unpack_pair(student_fn(x.clone()), "actnorm_init", "(log_scale, bias)")
        mean, std = x.mean(0), x.std(0, correction=0)
        std = torch.where(std > 1e-6, std, torch.ones_like(std))
        log_scale, bias = -torch.log(std), -mean / std
        got_s = torch.as_tensor(got[0], dtype=torch.float64)
        if got_s.shape == log_scale.shape and not torch.isfinite(got_s).all():
            raise CheckFailed(f"log_scale came back as {got_s.tolist()}: feature 2 is constant, so its std is 0. "
                              "Use std 1 for such features (only centre them)" + HINT + ".")
        assert_close(got[0], log_scale, f"log_scale for a batch of {n}", atol=1e-8,
                     slips={"the sign is flipped: the scale must divide by the std, exp(log_scale) = 1/std" + HINT:
                            -log_scale,
                            "the unbiased std (n - 1) is used; ActNorm uses the batch's own std":
                            -torch.log(torch.where(x.std(0) > 1e-6, x.std(0), torch.ones(3, dtype=torch.float64)))})
        assert_close(got[1], bias, f"bias for a batch of {n}", atol=1e-8,
                     slips={"the bias is -mean; it must be -mean / std, since the scale acts first" + HINT:
                            -mean})
        y = x * torch.as_tensor(got[0]).exp() + torch.as_tensor(got[1])
        assert_close(y.mean(0), torch.zeros(3, dtype=torch.float64), "the mean of the initialised outputs", atol=1e-8)
