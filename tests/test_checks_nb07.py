"""Notebook 07's checks: pass the reference, flag 'not attempted', fail plausible wrong answers."""

import math

import pytest
import torch
import torch.nn.functional as F

from course_utils.checks import CheckFailed
from course_utils.checks import nb07
from course_utils.data import bits_per_dim, load_digits_int
from course_utils.flows import Squeeze

from checkcontract import contract_tests, slips_named


# ------------------------------------------------------------------ reference solutions
def bpd_ref(nll, D, K):
    return (nll + D * math.log(K)) / (D * math.log(2))


def categorical_ref(x_train, x_test, levels):
    train, test = x_train.flatten(1), x_test.flatten(1)
    counts = F.one_hot(train, levels).sum(0).double()
    p = (counts + 1) / (len(train) + levels)
    return -torch.log2(p.gather(1, test.T)).mean().item()


def categorical_with(probabilities, score_on_train=False, log=torch.log2):
    def fn(x_train, x_test, levels):
        train, test = x_train.flatten(1), x_test.flatten(1)
        counts = F.one_hot(train, levels).sum(0).double()
        p = probabilities(counts, len(train), levels)
        return -log(p.gather(1, (train if score_on_train else test).T)).mean().item()
    return fn


def unsqueeze_ref(y):
    b, c4, h, w = y.shape
    return y.reshape(b, c4 // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3).reshape(b, c4 // 4, 2 * h, 2 * w)


def unsqueeze_with(perm):
    def fn(y):
        b, c4, h, w = y.shape
        return y.reshape(b, c4 // 4, 2, 2, h, w).permute(*perm).reshape(b, c4 // 4, 2 * h, 2 * w)
    return fn


def conv_ref(x, W):
    h, w = x.shape[2:]
    return torch.einsum("oc,bchw->bohw", W, x), h * w * torch.linalg.slogdet(W).logabsdet.expand(x.shape[0])


def conv_with(mix=lambda x, W: torch.einsum("oc,bchw->bohw", W, x), log_det=None):
    def fn(x, W):
        h, w = x.shape[2:]
        ld = h * w * torch.linalg.slogdet(W).logabsdet.expand(x.shape[0]) if log_det is None else log_det(x, W)
        return mix(x, W), ld
    return fn


CASES = {
    "bits_per_dim": (
        nb07.bits_per_dim, bpd_ref,
        {"no D log K": lambda nll, D, K: nll / (D * math.log(2)),
         "minus D log K": lambda nll, D, K: (nll - D * math.log(K)) / (D * math.log(2)),
         "K - 1 levels": lambda nll, D, K: (nll + D * math.log(K - 1)) / (D * math.log(2)),
         "nats": lambda nll, D, K: (nll + D * math.log(K)) / D,
         "log K once": lambda nll, D, K: (nll + math.log(K)) / (D * math.log(2)),
         "per image": lambda nll, D, K: (nll + D * math.log(K)) / math.log(2),
         "log2 of the NLL": lambda nll, D, K: math.log2(abs(float(nll)) + 1) + math.log2(K)},
    ),
    "categorical_bits_per_dim": (
        nb07.categorical_bits_per_dim, categorical_ref,
        {"no smoothing": categorical_with(lambda counts, n, K: counts / n),
         "natural log": categorical_with(lambda counts, n, K: (counts + 1) / (n + K), log=torch.log),
         "divided by n + 1": categorical_with(lambda counts, n, K: (counts + 1) / (n + 1)),
         "pooled over pixels": categorical_with(
             lambda counts, n, K: ((counts.sum(0) + 1) / (counts.sum() + K)).expand_as(counts)),
         "scored on the training images": categorical_with(lambda counts, n, K: (counts + 1) / (n + K),
                                                           score_on_train=True),
         "a tensor per pixel": lambda x_train, x_test, K: torch.full((x_test.flatten(1).shape[1],), 1.0)},
    ),
    "unsqueeze": (
        nb07.unsqueeze, unsqueeze_ref,
        {"plain reshape": lambda y: y.reshape(y.shape[0], y.shape[1] // 4, 2 * y.shape[2], 2 * y.shape[3]),
         "offsets swapped": unsqueeze_with((0, 1, 4, 3, 5, 2)),
         "squeeze's permutation again": unsqueeze_with((0, 1, 3, 5, 2, 4)),
         "offset-major channels": lambda y: y.reshape(y.shape[0], 2, 2, y.shape[1] // 4, *y.shape[2:])
             .permute(0, 3, 4, 1, 5, 2).reshape(y.shape[0], y.shape[1] // 4, 2 * y.shape[2], 2 * y.shape[3])},
    ),
    "conv1x1": (
        nb07.conv1x1, conv_ref,
        {"W transposed": conv_with(mix=lambda x, W: torch.einsum("co,bchw->bohw", W, x)),
         "no h * w": conv_with(log_det=lambda x, W: torch.linalg.slogdet(W).logabsdet.expand(x.shape[0])),
         "logdet without abs": conv_with(log_det=lambda x, W: x.shape[2] * x.shape[3] * torch.logdet(W).expand(x.shape[0])),
         "det, not log": conv_with(log_det=lambda x, W: x.shape[2] * x.shape[3] * torch.det(W).expand(x.shape[0])),
         "one number": conv_with(log_det=lambda x, W: x.shape[2] * x.shape[3] * torch.linalg.slogdet(W).logabsdet),
         "h + w": conv_with(log_det=lambda x, W: (x.shape[2] + x.shape[3]) * torch.linalg.slogdet(W).logabsdet
                            .expand(x.shape[0]))},
    ),
}

(test_reference_passes, test_not_attempted_is_friendly, test_wrong_answers_fail_with_numbers,
 test_each_check_rejects_at_least_two_wrong_answers) = contract_tests(CASES)


test_slips_are_named = slips_named(CASES, {
    ("bits_per_dim", "no D log K"): "D log K term is left out",
    ("bits_per_dim", "minus D log K"): "subtracted instead of added",
    ("bits_per_dim", "K - 1 levels"): "K - 1",
    ("bits_per_dim", "nats"): "nats per dimension",
    ("bits_per_dim", "per image"): "not divided by D",
    ("categorical_bits_per_dim", "no smoothing"): "Add one",
    ("categorical_bits_per_dim", "natural log"): "natural log",
    ("categorical_bits_per_dim", "divided by n + 1"): "n + 1",
    ("categorical_bits_per_dim", "pooled over pixels"): "shared by all pixels",
    ("categorical_bits_per_dim", "scored on the training images"): "training images",
    ("categorical_bits_per_dim", "a tensor per pixel"): "one number",
    ("unsqueeze", "plain reshape"): "plain reshape",
    ("unsqueeze", "offsets swapped"): "transposed",
    ("unsqueeze", "squeeze's permutation again"): "inverse permutation",
    ("unsqueeze", "offset-major channels"): "offset-major",
    ("conv1x1", "W transposed"): "W^T",
    ("conv1x1", "no h * w"): "factor h * w",
    ("conv1x1", "logdet without abs"): "log|det W|",
    ("conv1x1", "det, not log"): "det W is used",
    ("conv1x1", "one number"): "one number per image",
    ("conv1x1", "h + w"): "h + w",
})


def test_shortcuts_are_refused_kindly():
    with pytest.raises(CheckFailed, match="pixel_shuffle"):
        nb07.unsqueeze(lambda y: F.pixel_shuffle(y, 2))
    with pytest.raises(CheckFailed, match="Squeeze.inverse"):
        nb07.unsqueeze(lambda y: Squeeze().inverse(y)[0])
    with pytest.raises(CheckFailed, match="bits_per_dim"):
        nb07.bits_per_dim(lambda nll, D, K: bits_per_dim(nll, D, K))
    # and nothing stays switched off after a check
    y = torch.randn(1, 4, 2, 2)
    assert torch.equal(F.pixel_shuffle(y, 2), Squeeze().inverse(y)[0])


def test_reference_baseline_on_the_digits_is_about_2_4_bits():
    """The notebook's baseline: per-pixel categorical with add-one smoothing, about 2.42 bits/dim
    on the 300 test digits when fitted on the 1497 training digits."""
    train, test = load_digits_int("train").images, load_digits_int("test").images
    got = nb07.categorical_reference(train, test)
    assert got == pytest.approx(categorical_ref(train, test, 17), abs=1e-12)
    assert 2.3 < got < 2.5


def test_check_data_has_levels_unseen_in_training():
    # otherwise the "no smoothing" slip would pass unnoticed
    for seed, n, m, shape, K in ((0, 40, 15, (1, 3, 3), 5), (1, 200, 50, (1, 4, 4), 17)):
        x_train, x_test = nb07._train_test(seed, n, m, shape, K)
        seen = F.one_hot(x_train.flatten(1), K).sum(0) > 0
        assert not seen.gather(1, x_test.flatten(1).T).all()


def test_conv1x1_cases_have_both_signs_of_det():
    signs = {bool(torch.det(W) < 0) for W, _ in nb07._conv1x1_cases()}
    assert signs == {True, False}
