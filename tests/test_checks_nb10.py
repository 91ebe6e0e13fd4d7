"""Notebook 10's checks: each passes the reference answer, reports 'not attempted', and rejects
plausible wrong answers with a message that says what was expected and what came back."""

import math

import pytest
import torch

from course_utils import siren
from course_utils.checks import CheckFailed
from course_utils.checks import nb10

from checkcontract import contract_tests, slips_named


def _init(bound):
    """An initialiser that fills U(-b, b) with b = bound(n_in, n_out, omega_0, is_first)."""
    def init(linear, omega_0, is_first):
        with torch.no_grad():
            b = bound(linear.in_features, linear.out_features, omega_0, is_first)
            linear.weight.uniform_(-b, b)
    return init


def _reference_init(linear, omega_0, is_first):
    with torch.no_grad():
        c = siren.siren_init_bound(linear.in_features, omega_0, is_first)
        linear.weight.uniform_(-c, c)


def _normal_init(linear, omega_0, is_first):
    with torch.no_grad():
        c = siren.siren_init_bound(linear.in_features, omega_0, is_first)
        linear.weight.normal_(0.0, c)


def _returns_new_tensor(linear, omega_0, is_first):
    c = siren.siren_init_bound(linear.in_features, omega_0, is_first)
    return torch.empty_like(linear.weight).uniform_(-c, c)


def _laplacian_no_create_graph(y, x):
    g = torch.autograd.grad(y, x, torch.ones_like(y))[0]
    return sum(torch.autograd.grad(g[:, i], x, torch.ones_like(g[:, i]), retain_graph=True)[0][:, i:i + 1]
               for i in range(x.shape[1]))


def _laplacian_detached_second(y, x):
    g = torch.autograd.grad(y, x, torch.ones_like(y), create_graph=True)[0]
    return sum(torch.autograd.grad(g[:, i], x, torch.ones_like(g[:, i]), retain_graph=True)[0][:, i:i + 1]
               for i in range(x.shape[1]))


def _gradient_sum(y, x):
    return torch.autograd.grad(y, x, torch.ones_like(y), create_graph=True)[0].sum(1, keepdim=True)


def _first_axis_only(y, x):
    g = torch.autograd.grad(y, x, torch.ones_like(y), create_graph=True)[0]
    return torch.autograd.grad(g[:, 0], x, torch.ones_like(g[:, 0]), create_graph=True)[0][:, :1]


def _all_second_derivatives(y, x):
    g = torch.autograd.grad(y, x, torch.ones_like(y), create_graph=True)[0]
    return torch.autograd.grad(g.sum(), x, create_graph=True)[0].sum(1, keepdim=True)


def _reference_laplacian(y, x):
    g = torch.autograd.grad(y, x, torch.ones_like(y), create_graph=True)[0]
    return sum(torch.autograd.grad(g[:, i], x, torch.ones_like(g[:, i]), create_graph=True)[0][:, i:i + 1]
               for i in range(x.shape[1]))


def _reference_psnr(pred, target):
    return 10 * torch.log10(4 / torch.mean((pred - target) ** 2))


CASES = {
    "nb10.init_sine_layer": (
        nb10.init_sine_layer,
        _reference_init,
        {"omega_0 forgotten": _init(lambda i, o, w, f: 1 / i if f else math.sqrt(6 / i)),
         "fan-out": _init(lambda i, o, w, f: 1 / o if f else math.sqrt(6 / o) / w),
         "hidden rule everywhere": _init(lambda i, o, w, f: math.sqrt(6 / i) / w),
         "first rule everywhere": _init(lambda i, o, w, f: 1 / i),
         "normal": _normal_init,
         "not in place": _returns_new_tensor},
    ),
    "nb10.laplacian": (
        nb10.laplacian,
        _reference_laplacian,
        {"no create_graph": _laplacian_no_create_graph,
         "not differentiable": _laplacian_detached_second,
         "sum of first derivatives": _gradient_sum,
         "first axis only": _first_axis_only,
         "mixed derivatives too": _all_second_derivatives,
         "wrong shape": lambda y, x: _reference_laplacian(y, x)[:, 0]},
    ),
    "nb10.psnr": (
        nb10.psnr,
        _reference_psnr,
        {"range 1": lambda p, t: 10 * torch.log10(1 / torch.mean((p - t) ** 2)),
         "rmse": lambda p, t: 10 * torch.log10(4 / torch.mean((p - t) ** 2).sqrt()),
         "natural log": lambda p, t: 10 * torch.log(4 / torch.mean((p - t) ** 2)),
         "flipped": lambda p, t: 10 * torch.log10(torch.mean((p - t) ** 2) / 4)},
    ),
}

(test_reference_passes, test_not_attempted_is_friendly, test_wrong_answers_fail_with_numbers,
 test_each_check_rejects_at_least_two_wrong_answers) = contract_tests(CASES, extra_words=("create_graph", "did not change"))


def test_library_psnr_passes():
    nb10.psnr(siren.psnr)
    assert nb10.psnr.last_result is True


test_slips_are_named = slips_named(CASES, {
    ("nb10.init_sine_layer", "omega_0 forgotten"): "omega_0 is left out",
    ("nb10.init_sine_layer", "fan-out"): "out_features",
    ("nb10.init_sine_layer", "normal"): "normal distribution",
    ("nb10.init_sine_layer", "hidden rule everywhere"): "hidden-layer rule",
    ("nb10.laplacian", "no create_graph"): "create_graph=True",
    ("nb10.laplacian", "not differentiable"): "cannot be differentiated again",
    ("nb10.laplacian", "sum of first derivatives"): "first derivatives are summed",
    ("nb10.laplacian", "mixed derivatives too"): "mixed ones included",
    ("nb10.psnr", "range 1"): "peak is taken as 1",
    ("nb10.psnr", "natural log"): "natural logarithm",
})




@pytest.mark.parametrize("name,shortcut,words", [
    ("nb10.laplacian", lambda y, x: siren.laplacian(y, x), "siren.laplacian"),
    ("nb10.laplacian", lambda y, x: siren.divergence(siren.gradient(y, x), x), "siren.divergence"),
    ("nb10.psnr", lambda p, t: siren.psnr(p, t), "siren.psnr"),
])
def test_library_shortcuts_are_refused_kindly(name, shortcut, words):
    with pytest.raises(CheckFailed, match=f"calls {words}.*switched off"):
        CASES[name][0](shortcut)
