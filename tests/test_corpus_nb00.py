"""Notebook 00's slip corpus: right answers in other styles pass, plausible wrong ones are named."""

import math

import torch

from checkcontract import Slip, corpus_tests


def _reference(x):
    return x.clamp(min=0) + torch.log1p(torch.exp(-x.abs()))


def _two_branches(x):
    return torch.where(x > 0, x + torch.log1p(torch.exp(-x)), torch.log1p(torch.exp(x)))


def _loop_with_math(x):
    out = []
    for v in x.tolist():
        out.append(v + math.log1p(math.exp(-v)) if v > 0 else math.log1p(math.exp(v)))
    return torch.tensor(out)                       # float32, as torch.tensor makes it


def _threshold_like_torch(x):
    return torch.where(x > 20, x, torch.log(1 + torch.exp(x.clamp(max=20))))


def _float32_in_place_on_a_copy(x):
    y = x.float().clone()
    y.abs_().neg_().exp_().log1p_()
    return y + x.float().clamp(min=0)


def _in_place(x):
    tail = torch.log1p(torch.exp(-x.abs()))
    return x.clamp_(min=0) + tail


def _math_on_a_tensor(x):
    return math.log(1 + math.exp(x))


def _threshold_too_low(x):
    return torch.where(x > 5, x, torch.log(1 + torch.exp(x)))


CORPUS = {
    "nb00.stable_softplus": dict(
        right={"max(x, 0) + log1p(exp(-|x|))": _reference,
               "two branches with torch.where": _two_branches,
               "a loop with math, float32 result": _loop_with_math,
               "threshold at 20, like torch": _threshold_like_torch,
               "float32, in place on a copy": _float32_in_place_on_a_copy,
               "log instead of log1p": lambda x: torch.maximum(x, torch.zeros_like(x)) + torch.log(1 + torch.exp(-x.abs()))},
        wrong=[Slip("naive log(1 + exp(x))", lambda x: torch.log(1 + torch.exp(x)), "overflows"),
               Slip("naive log1p(exp(x))", lambda x: torch.log1p(torch.exp(x)), "overflows"),
               Slip("log1p(x): exp left out", lambda x: torch.log1p(x), "exp(x) is left out"),
               Slip("ReLU only", lambda x: x.clamp(min=0), "ReLU"),
               Slip("x + log1p(exp(-x)) for every x", lambda x: x + torch.log1p(torch.exp(-x)), "negative x"),
               Slip("|x| instead of max(x, 0)", lambda x: x.abs() + torch.log1p(torch.exp(-x.abs())), "|x| is used"),
               Slip("exponent +|x|", lambda x: x.clamp(min=0) + torch.log1p(torch.exp(x.abs())), "overflows"),
               Slip("edits x in place", _in_place, "in place"),
               Slip("math.log on a tensor", _math_on_a_tensor, "math.log"),
               Slip("threshold too low", _threshold_too_low, "threshold"),
               Slip("sign flipped", lambda x: -_reference(x), "sign is flipped"),
               Slip("log10", lambda x: x.clamp(min=0) + torch.log10(1 + torch.exp(-x.abs())), None)]),
}

(test_right_answers_pass, test_wrong_answers_fail_and_are_named, test_most_slips_are_named,
 test_corpus_is_big_enough) = corpus_tests(CORPUS)
