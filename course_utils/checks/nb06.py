"""Checks for notebook 06: batch normalisation as a flow, and ActNorm."""

import torch

from . import CheckFailed, assert_close, assert_shape, call_student, describe, exercise, number, unpack_pair

__all__ = ["batchnorm_forward", "update_running", "actnorm_init"]

HINT = " (see the hint under the exercise)"
#: batch normalisation done for the student (the exercise is to normalise with the batch's statistics)
BATCH_NORMS = [("torch.nn.functional.batch_norm", "torch.nn.functional.batch_norm"),
               ("torch.batch_norm", "torch.batch_norm"),
               ("course_utils.flows.normalization.BatchNormFlow.forward", "BatchNormFlow"),
               # the same normalisation under other names (over the batch once x is transposed)
               ("torch.nn.functional.layer_norm", "torch.nn.functional.layer_norm"),
               ("torch.layer_norm", "torch.layer_norm"),
               ("torch.nn.functional.instance_norm", "torch.nn.functional.instance_norm")]
#: raw errors of per-sample statistics (dim 1 instead of dim 0), named
PER_FEATURE = {r"size of tensor a \(\d+\) must match the size of tensor b":
               "the statistics are taken over the wrong dimension: they are per feature, averaged over the "
               "batch, x.mean(0) and x.var(0, ...) (dim=0), one number per feature" + HINT}


def _batchnorm_reference(x, log_gamma, beta, eps):
    """Batch normalisation with the batch's own statistics: ``(y, log_det)``."""
    mean, var = x.mean(0), x.var(0, correction=0)
    y = (x - mean) / torch.sqrt(var + eps) * log_gamma.exp() + beta
    return y, (log_gamma - 0.5 * torch.log(var + eps)).sum() * x.new_ones(x.shape[0])


def _data(seed, n=32, d=3, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    scale = torch.tensor([2.0, 0.5, 1.0, 3.0])[:d].double()
    shift = torch.tensor([1.0, -2.0, 0.0, 5.0])[:d].double()
    return (shift + scale * torch.randn(n, d, generator=gen, dtype=torch.float64)).to(dtype)


def _batchnorm_slips(x, log_gamma, beta, eps):
    """``(slips for y, slips for log_det)``: what the common mistakes return."""
    n = x.shape[0]
    mean, var = x.mean(0), x.var(0, correction=0)
    gamma = log_gamma.exp()
    unbiased = x.var(0, correction=1)
    y_slips = {
        "the epsilon is left out of sqrt(var + eps): the difference is small, but eps is part of the layer"
        " (it keeps a constant feature finite)" + HINT: (x - mean) / torch.sqrt(var) * gamma + beta,
        "the unbiased variance (divide by n - 1) is used; batch norm uses the batch's own variance, "
        "divided by n" + HINT: (x - mean) / torch.sqrt(unbiased + eps) * gamma + beta,
        "the learned scale exp(log_gamma) is missing": (x - mean) / torch.sqrt(var + eps) + beta,
        "log_gamma multiplies instead of exp(log_gamma)": (x - mean) / torch.sqrt(var + eps) * log_gamma + beta,
        "one mean over all entries is used; the mean is per feature, x.mean(0)" + HINT:
            (x - x.mean()) / torch.sqrt(var + eps) * gamma + beta,
        "eps is added to the standard deviation, sqrt(var) + eps, instead of inside the square root" + HINT:
            (x - mean) / (torch.sqrt(var) + eps) * gamma + beta,
    }
    per_sample = (x - x.mean(1, keepdim=True)) / torch.sqrt(x.var(1, correction=0, keepdim=True) + eps)
    y_slips["the statistics are taken per sample (dim=1); batch norm averages over the batch, dim=0" + HINT] = \
        per_sample * gamma + beta
    ld = lambda value: value.sum().expand(n)
    ld_slips = {
        "the epsilon is left out of log(var + eps)" + HINT: ld(log_gamma - 0.5 * torch.log(var)),
        "the sum of log_gamma is missing (the slide's row has no learned scale)" + HINT: ld(-0.5 * torch.log(var + eps)),
        "log(var) is used where -0.5 log(var + eps) is needed (1/sqrt(var) is the scale)" + HINT:
            ld(log_gamma - torch.log(var + eps)),
        "the sign of the variance term is flipped": ld(log_gamma + 0.5 * torch.log(var + eps)),
        "gamma = exp(log_gamma) is added where log gamma belongs: log_gamma is already the log" + HINT:
            ld(gamma - 0.5 * torch.log(var + eps)),
        "the unbiased variance (divide by n - 1) is used in the log-det" + HINT:
            ld(log_gamma - 0.5 * torch.log(unbiased + eps)),
    }
    return y_slips, ld_slips


def _check_log_det_shape(log_det, n, d):
    """A log-det of the wrong shape, named: summed over the batch, or not summed over the features."""
    if isinstance(log_det, torch.Tensor) and tuple(log_det.shape) != (n,):
        if log_det.dim() == 0:
            raise CheckFailed(f"log_det should have shape ({n},), one number per sample (all equal), but it is a "
                              "single number: the sum runs over the features only, and the result is repeated for "
                              "every sample, e.g. value * x.new_ones(x.shape[0])" + HINT)
        if tuple(log_det.shape) == (d,):
            raise CheckFailed(f"log_det should have shape ({n},), one number per sample, but has shape ({d},): one "
                              "term per feature, not yet summed over the features" + HINT)
    assert_shape(log_det, (n,), "log_det (one number per sample, all equal)")


@exercise(1, "batch normalisation as a flow, in training mode", reference=_batchnorm_reference)
def batchnorm_forward(student_fn):
    """Check exercise 1: ``student_fn(x, log_gamma, beta, eps)`` returns ``(y, log_det)`` with batch statistics.

    Batches of 32, 5 and 200 samples of 3 features in float64 (a float32 answer is judged with
    float32's rounding), then the notebook's own use: float32 batches of 2 with
    ``log_gamma = beta = 0``. PyTorch's and the library's batch norm are switched off while the
    student's code runs, and ``x`` must not change. Returns the student's function when it is
    right, and a reference when not attempted yet.

    Example:
        >>> batchnorm_forward(_batchnorm_reference) is _batchnorm_reference
        Exercise 1 (batch normalisation as a flow, in training mode): correct. Well done!
        True
    """
    eps = 1e-5
    log_gamma = torch.tensor([0.3, -0.5, 0.0], dtype=torch.float64)
    beta = torch.tensor([0.5, 0.0, -1.0], dtype=torch.float64)
    for seed, n in ((0, 32), (1, 5), (2, 200)):
        x = _data(seed, n)
        got = unpack_pair(call_student(student_fn, x, log_gamma, beta, eps, forbidden=BATCH_NORMS,
                                       reason="normalising with the batch's statistics yourself", errors=PER_FEATURE),
                          "batchnorm_forward")
        y, log_det = _batchnorm_reference(x, log_gamma, beta, eps)
        y_slips, ld_slips = _batchnorm_slips(x, log_gamma, beta, eps)
        assert_close(got[0], y, f"y for a batch of {n}", atol=1e-10, rtol=1e-9, slips=y_slips)
        _check_log_det_shape(got[1], n, 3)
        assert_close(got[1], log_det, f"log_det for a batch of {n}", atol=1e-10, rtol=1e-9, slips=ld_slips)
    # the notebook's regime: float32 batches of two, no learned scale or shift
    zeros = torch.zeros(2)
    x = _data(3, 2, 2, dtype=torch.float32)
    got = unpack_pair(call_student(student_fn, x, zeros, zeros, eps, forbidden=BATCH_NORMS,
                                   reason="normalising with the batch's statistics yourself", errors=PER_FEATURE),
                      "batchnorm_forward")
    y, log_det = _batchnorm_reference(x.double(), zeros.double(), zeros.double(), eps)
    assert_close(got[0], y, "y for a float32 batch of 2 (as section 4 uses it: every feature normalises to "
                 "-1 and +1)", atol=1e-8, rtol=1e-7)
    _check_log_det_shape(got[1], 2, 2)
    assert_close(got[1], log_det, "log_det for a float32 batch of 2", atol=1e-8, rtol=1e-7)


@exercise(2, "running averages")
def update_running(student_fn):
    """Check exercise 2: ``student_fn(running_mean, running_var, x, momentum)`` returns the updated pair.

    Exponential moving averages with the unbiased batch variance, for momenta 0.1, 0.5 and 0.01.
    Updating the running buffers in place (as a layer does) is fine; the batch ``x`` must not change.

    Example:
        >>> update_running(lambda m, v, x, k: ((1 - k) * m + k * x.mean(0), (1 - k) * v + k * x.var(0)))
        Exercise 2 (running averages): correct. Well done!
    """
    for seed, momentum in ((3, 0.1), (4, 0.5), (5, 0.01)):
        x = _data(seed, 16)
        n = x.shape[0]
        rm = torch.tensor([0.0, 1.0, -1.0], dtype=torch.float64)
        rv = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
        # only x is guarded against in-place edits: a layer updates its running buffers in place
        got = unpack_pair(call_student(lambda x: student_fn(rm.clone(), rv.clone(), x, momentum), x, errors=PER_FEATURE),
                          "update_running", "(running_mean, running_var)")
        mean, var = x.mean(0), x.var(0, correction=1)
        exp_m, exp_v = (1 - momentum) * rm + momentum * mean, (1 - momentum) * rv + momentum * var
        if _matches(got[0], exp_v) and _matches(got[1], exp_m):
            raise CheckFailed("the two values are right, but in the wrong order: return (running_mean, running_var)")
        what = f"(momentum {momentum})"
        assert_close(got[0], exp_m, f"the running mean {what}", atol=1e-10, rtol=1e-9,
                     slips={"the weights are swapped: the new batch gets 1 - momentum" + HINT:
                            momentum * rm + (1 - momentum) * mean,
                            "the running mean is replaced by the batch mean (no averaging)": mean})
        assert_close(got[1], exp_v, f"the running variance {what}", atol=1e-10, rtol=1e-9,
                     slips={"the biased batch variance (divided by n) is averaged in; the running "
                            "estimate uses the unbiased one (divided by n - 1)" + HINT:
                            (1 - momentum) * rv + momentum * x.var(0, correction=0),
                            "the weights are swapped: the new batch gets 1 - momentum":
                            momentum * rv + (1 - momentum) * var,
                            "the running variance is replaced by the batch variance (no averaging)": var,
                            "the running variance is not updated (it comes back unchanged)": rv,
                            "the correction n/(n - 1) is applied twice: x.var(0) is already the unbiased variance":
                            (1 - momentum) * rv + momentum * var * n / (n - 1),
                            "the standard deviation is averaged in instead of the variance" + HINT:
                            (1 - momentum) * rv + momentum * x.std(0)})


def _matches(got, expected) -> bool:
    try:
        got = torch.as_tensor(got).detach().double()
    except (TypeError, ValueError, RuntimeError):
        return False
    return got.shape == expected.shape and bool(torch.allclose(got, expected, atol=1e-6, rtol=1e-5))


@exercise(3, "ActNorm's data-dependent initialisation")
def actnorm_init(student_fn):
    """Check exercise 3: ``student_fn(x)`` returns ``(log_scale, bias)`` that standardise ``x`` per feature.

    ``x exp(log_scale) + bias`` must have mean 0 and (population) standard deviation 1 per
    feature; a feature with std below 1e-6 gets std 1. Two batches, each with a constant feature;
    ``x`` must not change.

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
        got = unpack_pair(call_student(student_fn, x, errors=PER_FEATURE, reason="the initialisation itself",
                                       forbidden=[("course_utils.flows.normalization.ActNorm._initialise", "ActNorm")]),
                          "actnorm_init", "(log_scale, bias)")
        mean, std = x.mean(0), x.std(0, correction=0)
        safe = torch.where(std > 1e-6, std, torch.ones_like(std))
        log_scale, bias = -torch.log(safe), -mean / safe
        for value, name in ((got[0], "log_scale"), (got[1], "bias")):
            t = torch.as_tensor(value).detach().double() if isinstance(value, torch.Tensor) else None
            if t is not None and t.shape == log_scale.shape and not torch.isfinite(t).all():
                raise CheckFailed(f"{name} came back as {describe(t)}: feature 2 is constant, so its std is 0. Use "
                                  "std 1 for such features (only centre them), before taking the log or dividing"
                                  + HINT + ".")
        unbiased = x.std(0, correction=1)
        unbiased = torch.where(unbiased > 1e-6, unbiased, torch.ones_like(unbiased))
        assert_close(got[0], log_scale, f"log_scale for a batch of {n}", atol=1e-10, rtol=1e-9,
                     slips={"the sign is flipped: the scale must divide by the std, exp(log_scale) = 1/std" + HINT:
                            -log_scale,
                            "the unbiased std (n - 1) is used; ActNorm uses the batch's own std (correction=0)":
                            -torch.log(unbiased),
                            "the scale 1/std is returned, not its log: log_scale = -log(std)": 1 / safe,
                            f"a tiny std is clamped to 1e-6 (log_scale {number(-torch.log(torch.tensor(1e-6)).item())} "
                            "for the constant feature); replace it by 1 instead, so the feature is only centred" + HINT:
                            -torch.log(std.clamp(min=1e-6))})
        assert_close(got[1], bias, f"bias for a batch of {n}", atol=1e-10, rtol=1e-9,
                     slips={"the bias is -mean; it must be -mean / std, since the scale acts first" + HINT: -mean,
                            "the sign of the bias is flipped: it must be -mean / std": mean / safe,
                            "the unbiased std (n - 1) is used; ActNorm uses the batch's own std (correction=0)":
                            -mean / unbiased})
        scale = torch.as_tensor(got[0]).detach()
        y = x.to(scale.dtype) * scale.exp() + torch.as_tensor(got[1]).detach()
        assert_close(y.mean(0), torch.zeros(3), "the mean of the initialised outputs", atol=1e-9)
