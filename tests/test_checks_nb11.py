"""Notebook 11's checks: each passes the reference answer, reports 'not attempted', and fails
plausible wrong answers with a message that says what was expected and what came back."""

import math

import pytest
import torch

from course_utils import gon
from course_utils.checks import CheckFailed, nb11

from checkcontract import contract_tests, slips_named


def _latent_with(reduce_batch="sum", sign=-1.0, pixel_mean=False, create_graph=True):
    def latent(decoder, x, latent_dim):
        z0 = torch.zeros(x.shape[0], latent_dim, dtype=x.dtype, requires_grad=True)
        per_example = (decoder(z0) - x).pow(2).flatten(1)
        per_example = per_example.mean(1) if pixel_mean else per_example.sum(1)
        inner = per_example.sum() if reduce_batch == "sum" else per_example.mean()
        (grad,) = torch.autograd.grad(inner, z0, create_graph=create_graph)
        return sign * grad
    return latent


def _objective_with(detach=False, pixel_mean=False, batch_sum=False):
    def objective(decoder, x, latent_dim):
        z = gon.gon_latent(decoder, x, latent_dim)
        if detach:
            z = z.detach()
        err = (decoder(z) - x).pow(2).flatten(1)
        per_example = err.mean(1) if pixel_mean else err.sum(1)
        return per_example.sum() if batch_sum else per_example.mean()
    return objective


def _slerp_ref(z0, z1, t):
    omega = torch.arccos(torch.dot(z0, z1) / (z0.norm() * z1.norm()))
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


def _slerp_swapped(z0, z1, t):
    return _slerp_ref(z0, z1, 1 - t)


def _lerp(z0, z1, t):
    return (1 - t) * z0 + t * z1


def _slerp_unit(z0, z1, t):
    v = _slerp_ref(z0, z1, t)
    return v / v.norm()


def _slerp_degrees(z0, z1, t):
    omega = math.degrees(math.acos(float(torch.dot(z0, z1) / (z0.norm() * z1.norm()))))
    return (math.sin((1 - t) * omega) * z0 + math.sin(t * omega) * z1) / math.sin(omega)


CASES = {
    "nb11.gon_latent": (
        nb11.gon_latent,
        _latent_with(),
        {"batch mean": _latent_with(reduce_batch="mean"),
         "plus sign": _latent_with(sign=1.0),
         "pixel mean": _latent_with(pixel_mean=True),
         "no graph": _latent_with(create_graph=False)},
    ),
    "nb11.gon_objective": (
        nb11.gon_objective,
        _objective_with(),
        {"detached latent": _objective_with(detach=True),
         "pixel mean": _objective_with(pixel_mean=True),
         "batch sum": _objective_with(batch_sum=True),
         "no graph": lambda decoder, x, d: gon.gon_loss(decoder, x, d).detach()},
    ),
    "nb11.slerp": (
        nb11.slerp,
        _slerp_ref,
        {"lerp": _lerp, "swapped": _slerp_swapped, "unit length": _slerp_unit, "degrees": _slerp_degrees},
    ),
}

(test_reference_passes, test_not_attempted_is_friendly, test_wrong_answers_fail_with_numbers,
 test_each_check_rejects_at_least_two_wrong_answers) = contract_tests(CASES, extra_words=("graph",))


test_slips_are_named = slips_named(CASES, {
    ("nb11.gon_latent", "batch mean"): "averaged over the batch",
    ("nb11.gon_latent", "plus sign"): "sign is flipped",
    ("nb11.gon_latent", "no graph"): "create_graph=True",
    ("nb11.gon_objective", "detached latent"): "second-order term",
    ("nb11.gon_objective", "pixel mean"): "averaged over the pixels",
    ("nb11.slerp", "lerp"): "straight line",
    ("nb11.slerp", "swapped"): "swapped",
})


@pytest.mark.parametrize("name,shortcut,words", [
    ("nb11.gon_latent", lambda decoder, x, d: gon.gon_latent(decoder, x, d), "gon.gon_latent"),
    ("nb11.gon_objective", lambda decoder, x, d: gon.gon_loss(decoder, x, d), "gon.gon_loss"),
    ("nb11.slerp", lambda z0, z1, t: gon.slerp(z0, z1, t), "gon.slerp"),
])
def test_library_shortcuts_are_refused_kindly(name, shortcut, words):
    with pytest.raises(CheckFailed, match=f"calls {words}.*switched off"):
        CASES[name][0](shortcut)


def test_the_library_functions_pass_when_handed_over_directly():
    # not a shortcut through the student's code: the library's own answers are right
    assert nb11.gon_latent(gon.gon_latent) is gon.gon_latent
    assert nb11.gon_objective(gon.gon_loss) is gon.gon_loss
    assert nb11.slerp(gon.slerp) is gon.slerp
