"""Notebook 04's checks: pass the reference, flag 'not attempted', fail plausible wrong answers."""

import pytest
import torch

from course_utils.checks import CheckFailed
from course_utils.checks import nb04
from course_utils.flows import checkerboard_mask

from checkcontract import contract_tests, slips_named


def _board(h, w, parity=0):
    return ((torch.arange(h)[:, None] + torch.arange(w)[None, :] + parity) % 2 == 0).float()


def _halves(v):
    n = v.shape[1] // 2
    return v[:, :n], v[:, n:]


def additive_inverse(y, t):
    y_a, y_b = _halves(y)
    return torch.cat([y_a, y_b - t(y_a)], dim=1)


def affine_forward(x, s_and_t):
    x_a, x_b = _halves(x)
    log_s, t = s_and_t(x_a)
    return torch.cat([x_a, x_b * log_s.exp() + t], dim=1), log_s.sum(1)


def affine_inverse(y, s_and_t):
    y_a, y_b = _halves(y)
    log_s, t = s_and_t(y_a)
    return torch.cat([y_a, (y_b - t) * torch.exp(-log_s)], dim=1), -log_s.sum(1)


def _forward_with(y_b_fn, log_det_fn):
    def fn(x, s_and_t):
        x_a, x_b = _halves(x)
        log_s, t = s_and_t(x_a)
        return torch.cat([x_a, y_b_fn(x_b, log_s, t)], dim=1), log_det_fn(log_s)
    return fn


def _inverse_with(x_b_fn, log_det_fn):
    def fn(y, s_and_t):
        y_a, y_b = _halves(y)
        log_s, t = s_and_t(y_a)
        return torch.cat([y_a, x_b_fn(y_b, log_s, t)], dim=1), log_det_fn(log_s)
    return fn


good_y = lambda x_b, log_s, t: x_b * log_s.exp() + t
good_x = lambda y_b, log_s, t: (y_b - t) * torch.exp(-log_s)

CASES = {
    "additive_coupling_inverse": (
        nb04.additive_coupling_inverse, additive_inverse,
        {"sign": lambda y, t: torch.cat([_halves(y)[0], _halves(y)[1] + t(_halves(y)[0])], 1),
         "shift of the wrong half": lambda y, t: torch.cat([_halves(y)[0], _halves(y)[1] - t(_halves(y)[1])], 1),
         "only x_b": lambda y, t: _halves(y)[1] - t(_halves(y)[0])},
    ),
    "affine_coupling_forward": (
        nb04.affine_coupling_forward, affine_forward,
        {"shift before scale": _forward_with(lambda x_b, ls, t: (x_b + t) * ls.exp(), lambda ls: ls.sum(1)),
         "sum of scales": _forward_with(good_y, lambda ls: ls.exp().sum(1)),
         "sign of log-det": _forward_with(good_y, lambda ls: -ls.sum(1)),
         "log-det summed over the batch": _forward_with(good_y, lambda ls: ls.sum()),
         "times log_s": _forward_with(lambda x_b, ls, t: x_b * ls + t, lambda ls: ls.sum(1))},
    ),
    "affine_coupling_inverse": (
        nb04.affine_coupling_inverse, affine_inverse,
        {"order": _inverse_with(lambda y_b, ls, t: y_b * torch.exp(-ls) - t, lambda ls: -ls.sum(1)),
         "multiplied": _inverse_with(lambda y_b, ls, t: (y_b - t) * ls.exp(), lambda ls: -ls.sum(1)),
         "sign of log-det": _inverse_with(good_x, lambda ls: ls.sum(1))},
    ),
    "checkerboard": (
        nb04.checkerboard, checkerboard_mask,
        {"complement": lambda h, w: 1 - _board(h, w),
         "transposed": lambda h, w: _board(w, h),
         "stripes": lambda h, w: (torch.arange(h) % 2 == 0).float()[:, None].expand(h, w),
         "booleans of the wrong parity": lambda h, w: _board(h, w, parity=1).bool()},
    ),
}

(test_reference_passes, test_not_attempted_is_friendly, test_wrong_answers_fail_with_numbers,
 test_each_check_rejects_at_least_two_wrong_answers) = contract_tests(CASES)


test_slips_are_named = slips_named(CASES, {
    ("additive_coupling_inverse", "sign"): "added instead of subtracted",
    ("affine_coupling_forward", "sum of scales"): "scales exp",
    ("affine_coupling_forward", "log-det summed over the batch"): "shape",
    ("affine_coupling_inverse", "sign of log-det"): "minus the forward",
    ("checkerboard", "complement"): "complement",
})


def test_check_inputs_are_not_the_identity():
    # the exercises' networks must actually shift and scale, or wrong answers could pass
    x = torch.randn(5, 2, dtype=torch.float64)
    assert nb04.shift_net(2)(x).abs().min() > 1e-3
    log_s, t = nb04.scale_and_shift(1)(x[:, :1])
    assert log_s.abs().min() > 1e-3 and (log_s.abs() <= 2).all()


@pytest.mark.parametrize("name,shortcut,words", [
    ("checkerboard", lambda h, w: checkerboard_mask(h, w), "checkerboard_mask"),
    ("affine_coupling_forward", lambda x, s_and_t: (affine_forward(x, s_and_t)[0], torch.stack([
        torch.linalg.slogdet(torch.autograd.functional.jacobian(lambda v: affine_forward(v[None], s_and_t)[0][0], xi)).logabsdet
        for xi in x])), "jacobian"),
])
def test_shortcuts_are_refused_kindly(name, shortcut, words):
    with pytest.raises(CheckFailed, match=f"calls .*{words}.*switched off"):
        CASES[name][0](shortcut)
