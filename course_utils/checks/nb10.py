"""Checks for notebook 10: implicit networks and SIREN."""

from __future__ import annotations

import math
import sys

import torch
from torch import nn

from .. import siren
from . import CheckFailed, assert_close, assert_shape, call_student, exercise, named_error
from .shortcuts import call_without

__all__ = ["init_sine_layer", "laplacian", "psnr"]

HINT = " (see the hint under the exercise)"


# (in_features, out_features, omega_0, is_first): big enough for the statistics to be sharp;
# 100 -> 300 tells fan-in from fan-out, omega_0 = 10 tells a forgotten omega_0 from a right one.
LAYERS = [(2, 4096, 30.0, True), (256, 256, 30.0, False), (100, 300, 10.0, False), (1, 4096, 3000.0, True)]


def _bound(n_in: int, omega_0: float, is_first: bool) -> float:
    return 1.0 / n_in if is_first else math.sqrt(6.0 / n_in) / omega_0


def _bound_slips(n_in: int, n_out: int, omega_0: float, is_first: bool) -> dict[str, float]:
    slips = {
        "omega_0 is left out of the hidden-layer bound (use sqrt(6/n) / omega_0)" + HINT: math.sqrt(6.0 / n_in),
        "the bound uses out_features; SIREN's n is in_features, the number of inputs (fan-in)" + HINT:
            _bound(n_out, omega_0, is_first),
        "the weights are left at PyTorch's default U(-1/sqrt(n), 1/sqrt(n))": 1.0 / math.sqrt(n_in),
    }
    if is_first:
        slips["the hidden-layer rule sqrt(6/n)/omega_0 is used for the first layer (it needs 1/n)" + HINT] = \
            _bound(n_in, omega_0, False)
        slips["the first layer is divided by omega_0 (its bound is 1/n, omega_0 multiplies later)"] = \
            1.0 / (n_in * omega_0)
    else:
        slips["the first-layer rule 1/n is used for a hidden layer" + HINT] = 1.0 / n_in
        slips["sqrt(6/n) is multiplied by omega_0 instead of divided"] = math.sqrt(6.0 / n_in) * omega_0
        slips["sqrt(6/n) is divided by omega_0 twice (omega_0 squared): divide once, the sine layer "
              "multiplies by omega_0 once in its forward pass" + HINT] = math.sqrt(6.0 / n_in) / omega_0 ** 2
        slips["sqrt(1/n) is used where the bound is sqrt(6/n) / omega_0 (the 6 makes the variance of "
              "omega_0 W x about 2)" + HINT] = math.sqrt(1.0 / n_in) / omega_0
    return slips


@exercise(1, "SIREN's initialisation")
def init_sine_layer(student_fn):
    """Check exercise 1: ``student_fn(linear, omega_0, is_first)`` fills ``linear.weight`` with SIREN's init.

    In place, uniform on (-c, c) with c = 1/n for the first layer and sqrt(6/n)/omega_0 for the
    others (n: fan-in); four layers of different shapes and omega_0, judged by the largest weight
    and the spread.

    Example:
        >>> def mine(linear, omega_0, is_first):
        ...     n = linear.in_features
        ...     c = 1 / n if is_first else math.sqrt(6 / n) / omega_0
        ...     with torch.no_grad():
        ...         linear.weight.uniform_(-c, c)
        >>> init_sine_layer(mine)
        Exercise 1 (SIREN's initialisation): correct. Well done!
    """
    gen_seed = 10
    for n_in, n_out, omega_0, is_first in LAYERS:
        torch.manual_seed(gen_seed)
        linear = nn.Linear(n_in, n_out)
        before = linear.weight.detach().clone()
        with torch.no_grad():
            call_student(student_fn, linear, omega_0, is_first)
        w = linear.weight.detach().to(torch.float64)
        which = f"{'the first' if is_first else 'a hidden'} layer nn.Linear({n_in}, {n_out}) with omega_0 = {omega_0:g}"
        assert_shape(w, (n_out, n_in), f"the weight of {which}")
        if torch.equal(linear.weight.detach(), before):
            raise CheckFailed(f"the weights of {which} did not change: fill linear.weight in place, "
                              "e.g. linear.weight.uniform_(-c, c) inside torch.no_grad()")
        c = _bound(n_in, omega_0, is_first)
        largest = w.abs().max().item()
        if not 0.97 * c <= largest <= c * (1 + 1e-6):
            slip = ""
            for description, value in _bound_slips(n_in, n_out, omega_0, is_first).items():
                if abs(largest - value) <= 0.05 * value:
                    slip = f" This is what you get when {description}."
                    break
            if not slip and largest > c and abs(w.std().item() - c) < 0.1 * c:
                slip = " This looks like a normal distribution with standard deviation c; draw from U(-c, c)."
            rule = "1/n" if is_first else "sqrt(6/n) / omega_0"
            raise CheckFailed(f"for {which} the weights should fill U(-c, c) with c = {rule} = {c:.4g}, "
                              f"so the largest |weight| should be just below {c:.4g}; got {largest:.4g}.{slip}")
        std, expected_std = w.std().item(), c / math.sqrt(3.0)
        if abs(std - expected_std) > 0.05 * expected_std or abs(w.mean().item()) > 0.05 * c:
            raise CheckFailed(f"for {which} the weights should be uniform on (-{c:.4g}, {c:.4g}): expected "
                              f"mean 0 and standard deviation c/sqrt(3) = {expected_std:.4g}, got mean "
                              f"{w.mean().item():.4g} and standard deviation {std:.4g}")


#: autograd's raw errors in the Laplacian exercise, named
LAPLACIAN_ERRORS = {
    r"grad can be implicitly created only for scalar outputs":
        "torch.autograd.grad was given a non-scalar output without grad_outputs: pass "
        "grad_outputs=torch.ones_like(output) (each point's value depends only on its own x)" + HINT,
    r"backward through the graph a second time|does not require grad and does not have a grad_fn":
        "a graph autograd needs was not kept: pass create_graph=True to every torch.autograd.grad, the first "
        "(so its result can be differentiated again) and the ones per coordinate (so the graph stays for the "
        "next coordinate, and the Laplacian can be trained)" + HINT,
    r"appears to not have been used in the graph":
        "x does not take part in the output you differentiated: differentiate y (or the gradient) with "
        "respect to the x that was passed in, without copying or detaching it" + HINT,
}


def _field(x, a):
    """f = a x1^3 x2 + sin(2 x2) (+ exp(x1) x3 in 3-D) and its Laplacian."""
    x1, x2 = x[:, 0:1], x[:, 1:2]
    f = a * x1**3 * x2 + torch.sin(2 * x2)
    lap = 6 * a * x1 * x2 - 4 * torch.sin(2 * x2)
    if x.shape[1] == 3:
        f = f + torch.exp(x1) * x[:, 2:3]
        lap = lap + torch.exp(x1) * x[:, 2:3]
    return f, lap


@exercise(3, "the Laplacian by autograd", reference=siren.laplacian)
def laplacian(student_fn):
    """Check exercise 3: ``student_fn(y, x)`` returns the Laplacian ``(n, 1)`` of ``y = f(x)``, differentiable.

    Compared with an analytic field in 2-D and 3-D; the result must also be differentiable again
    (usable inside a loss). The library's ``siren.laplacian`` and ``siren.divergence`` are
    switched off while the student's code runs. Returns the student's function when it is
    right, and ``siren.laplacian`` when not attempted yet.

    Example:
        >>> def mine(y, x):
        ...     g = torch.autograd.grad(y, x, torch.ones_like(y), create_graph=True)[0]
        ...     return sum(torch.autograd.grad(g[:, i], x, torch.ones_like(g[:, i]), create_graph=True)[0][:, i:i + 1]
        ...                for i in range(x.shape[1]))
        >>> laplacian(mine) is mine
        Exercise 3 (the Laplacian by autograd): correct. Well done!
        True
    """
    gen = torch.Generator().manual_seed(7)
    for dim in (2, 3):
        x = torch.randn(5, dim, generator=gen, dtype=torch.float64).requires_grad_(True)
        a = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
        y, expected = _field(x, a)
        try:              # not call_student: copies of y and x would cut the graph between them
            got = call_without([("course_utils.siren.laplacian", "siren.laplacian"),
                                ("course_utils.siren.divergence", "siren.divergence")],
                               "taking the second derivatives yourself", student_fn, y, x)
        except (NotImplementedError, CheckFailed):
            raise
        except Exception as err:
            raise named_error(err, LAPLACIAN_ERRORS) from None
        if not isinstance(got, torch.Tensor):
            raise CheckFailed(f"the Laplacian should be a tensor of shape ({len(x)}, 1), got {type(got).__name__}")
        if tuple(got.shape) == (len(x),):
            raise CheckFailed(f"the Laplacian should have shape ({len(x)}, 1), one value per point in a column like y, "
                              f"but has shape ({len(x)},): keep the column, second[:, i:i + 1] (or .unsqueeze(1))" + HINT)
        grad = torch.autograd.grad(y, x, torch.ones_like(y), create_graph=True)[0]
        first_sum = grad.sum(dim=1, keepdim=True).detach()
        only_first = torch.autograd.grad(grad[:, 0].sum(), x, retain_graph=True)[0][:, :1].detach()
        mixed = torch.autograd.grad(grad.sum(), x, retain_graph=True)[0].sum(dim=1, keepdim=True).detach()
        assert_close(got.detach(), expected.detach(), f"the Laplacian of f at {len(x)} points in {dim}-D",
                     atol=1e-8, rtol=1e-8,
                     slips={"the first derivatives are summed instead of the second ones" + HINT: first_sum,
                            "only d^2f/dx_1^2 is kept; add d^2f/dx_i^2 for every coordinate i" + HINT: only_first,
                            "every second derivative d^2f/dx_i dx_j is summed, mixed ones included "
                            "(the Laplacian keeps only i = j)": mixed})
        if not got.requires_grad:
            raise CheckFailed("the values are right, but the Laplacian cannot be differentiated again "
                              "(its requires_grad is False): pass create_graph=True to the second "
                              "torch.autograd.grad as well, so it can be used inside a training loss" + HINT + ".")
        (d_a,) = torch.autograd.grad(got.sum(), a)
        assert_close(d_a, (6 * x[:, 0] * x[:, 1]).sum().detach(),
                     "the derivative of sum(Laplacian) with respect to a parameter of f", atol=1e-8)


def _psnr_shortcuts() -> list:
    """The library's PSNR, and scikit-image's where the student's session has loaded it."""
    names = [("course_utils.siren.psnr", "siren.psnr")]
    if "skimage.metrics" in sys.modules:
        names.append(("skimage.metrics.peak_signal_noise_ratio", "skimage.metrics.peak_signal_noise_ratio"))
    return names


def _reference_psnr(pred, target):
    return 10 * math.log10(4.0 / torch.mean((pred - target) ** 2).item())


@exercise(2, "PSNR", reference=siren.psnr)
def psnr(student_fn):
    """Check exercise 2: ``student_fn(prediction, target)`` returns the PSNR in dB for data in [-1, 1].

    The data range is 2; three noise levels on a 64x64 image. The library's ``siren.psnr`` is
    switched off while the student's code runs. Returns the student's function when it is
    right, and ``siren.psnr`` when not attempted yet.

    Example:
        >>> mine = lambda prediction, target: 10 * torch.log10(4.0 / torch.mean((prediction - target) ** 2))
        >>> psnr(mine) is mine
        Exercise 2 (PSNR): correct. Well done!
        True
    """
    gen = torch.Generator().manual_seed(3)
    target = torch.rand(64, 64, generator=gen, dtype=torch.float64) * 2 - 1
    for noise in (0.3, 0.05, 0.001):
        pred = (target + noise * torch.randn(64, 64, generator=gen, dtype=torch.float64)).clamp(-1, 1)
        mse = torch.mean((pred - target) ** 2).item()
        got = call_student(student_fn, pred, target, forbidden=_psnr_shortcuts(), reason="the formula itself")
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.reshape(())
        elif isinstance(got, torch.Tensor):
            raise CheckFailed(f"the PSNR should be one number for the whole image, but has shape {tuple(got.shape)}: "
                              "average the squared errors over every pixel first (the mean squared error), then "
                              "take 10 log10(4 / MSE)" + HINT)
        expected = _reference_psnr(pred, target)
        assert_close(got, expected, f"the PSNR (dB) with mean squared error {mse:.3g}", atol=1e-6, rtol=1e-6,
                     slips={"the peak is taken as 1, as for [0, 1] data; values in [-1, 1] span 2, so use "
                            "10 log10(2^2 / MSE)" + HINT: 10 * math.log10(1.0 / mse),
                            "the peak 2 is not squared" + HINT: 10 * math.log10(2.0 / mse),
                            "the root mean squared error is used inside 10 log10 (either square the "
                            "range and use the MSE, or use 20 log10(2 / RMSE))": 10 * math.log10(4.0 / math.sqrt(mse)),
                            "the natural logarithm is used instead of log10": 10 * math.log(4.0 / mse),
                            "the sign is flipped (MSE over peak squared)": -expected,
                            "the squared errors are summed, not averaged (the MSE is their mean)" + HINT:
                                10 * math.log10(4.0 / (mse * pred.numel())),
                            "the absolute errors are averaged instead of the squared ones (that is not the MSE)":
                                10 * math.log10(4.0 / torch.mean((pred - target).abs()).item()),
                            "20 log10 is applied to the MSE: 20 log10 goes with the RMSE, 10 log10 with the MSE":
                                20 * math.log10(2.0 / mse)})
