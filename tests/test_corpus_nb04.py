"""Notebook 04's slip corpus: right answers in other styles pass, plausible wrong ones are named."""

import numpy as np
import torch

from course_utils.flows import checkerboard_mask

from checkcontract import Slip, corpus_tests


def _split(v):
    n = v.shape[1] // 2
    return n, v[:, :n], v[:, n:]


# Exercise 1: additive coupling inverse
def _add_inv(y, t):
    n, y_a, y_b = _split(y)
    return torch.cat([y_a, y_b - t(y_a)], dim=1)


def _add_inv_clone(y, t):
    n, y_a, _ = _split(y)
    x = y.clone()
    x[:, n:] -= t(y_a)
    return x


def _add_inv_in_place(y, t):
    n, y_a, _ = _split(y)
    y[:, n:] -= t(y_a)
    return y


def _add_inv_empty(y, t):
    n, y_a, y_b = _split(y)
    x = torch.empty_like(y)
    x[:, :n] = y_a
    x[:, n:] = y_b - t(y_a)
    return x


# Exercise 2: affine coupling forward
def _aff(x, s_and_t):
    n, x_a, x_b = _split(x)
    log_s, t = s_and_t(x_a)
    return torch.cat([x_a, x_b * torch.exp(log_s) + t], dim=1), log_s.sum(dim=1)


def _aff_variant(x, s_and_t, y_b=None, log_det=None, order="ab"):
    n, x_a, x_b = _split(x)
    log_s, t = s_and_t(x_a)
    forms = {None: lambda: x_b * log_s.exp() + t, "shift first": lambda: (x_b + t) * log_s.exp(),
             "no exp": lambda: x_b * log_s + t, "divide": lambda: x_b / log_s.exp() + t}
    yb = forms[y_b]()
    y = torch.cat([x_a, yb], dim=1) if order == "ab" else (torch.cat([yb, x_a], dim=1) if order == "ba" else yb)
    lds = {None: lambda: log_s.sum(1), "sum exp": lambda: log_s.exp().sum(1), "minus": lambda: -log_s.sum(1),
           "prod": lambda: log_s.exp().prod(1), "batch": lambda: log_s.sum(), "mean": lambda: log_s.mean(1)}
    return y, lds[log_det]()


def _aff_in_place(x, s_and_t):
    n, x_a, x_b = _split(x)
    log_s, t = s_and_t(x_a)
    x_b *= torch.exp(log_s)
    x_b += t
    return torch.cat([x_a, x_b], dim=1), log_s.sum(dim=1)


def _aff_clone_in_place(x, s_and_t):
    n, x_a, _ = _split(x)
    log_s, t = s_and_t(x_a)
    y = x.clone()
    y[:, n:].mul_(log_s.exp()).add_(t)
    return y, log_s.sum(-1)


def _aff_jacobian(x, s_and_t):
    y, _ = _aff(x, s_and_t)
    J = torch.autograd.functional.jacobian(lambda v: _aff(v, s_and_t)[0].sum(0), x)
    return y, torch.stack([torch.linalg.slogdet(J[:, k]).logabsdet for k in range(x.shape[0])])


# Exercise 3: affine coupling inverse
def _aff_inv(y, s_and_t):
    n, y_a, y_b = _split(y)
    log_s, t = s_and_t(y_a)
    return torch.cat([y_a, (y_b - t) * torch.exp(-log_s)], dim=1), -log_s.sum(dim=1)


def _aff_inv_variant(y, s_and_t, x_b=None, log_det=None, order="ab", cond="a"):
    n, y_a, y_b = _split(y)
    log_s, t = s_and_t(y_a if cond == "a" else y_b)
    forms = {None: lambda: (y_b - t) * torch.exp(-log_s), "unscale first": lambda: y_b * torch.exp(-log_s) - t,
             "multiply": lambda: (y_b - t) * log_s.exp()}
    xb = forms[x_b]()
    x = torch.cat([y_a, xb], dim=1) if order == "ab" else torch.cat([xb, y_a], dim=1)
    lds = {None: lambda: -log_s.sum(1), "plus": lambda: log_s.sum(1), "mean": lambda: -log_s.mean(1),
           "batch": lambda: -log_s.sum()}
    return x, lds[log_det]()


def _aff_inv_in_place(y, s_and_t):
    n, y_a, y_b = _split(y)
    log_s, t = s_and_t(y_a)
    y_b -= t
    y_b *= torch.exp(-log_s)
    return torch.cat([y_a, y_b], dim=1), -log_s.sum(dim=1)


def _aff_inv_divide(y, s_and_t):
    n, y_a, y_b = _split(y)
    log_s, t = s_and_t(y_a)
    return torch.hstack([y_a, (y_b - t) / log_s.exp()]), -(log_s.sum(dim=-1))


# Exercise 4: the checkerboard
def _board(h, w):
    i = torch.arange(h).view(-1, 1)
    j = torch.arange(w).view(1, -1)
    return ((i + j) % 2 == 0).float()


def _board_loops(h, w):
    m = torch.zeros(h, w)
    for i in range(h):
        for j in range(w):
            if (i + j) % 2 == 0:
                m[i, j] = 1.0
    return m


def _board_slices(h, w):
    m = torch.ones(h, w)
    m[1::2, ::2] = 0
    m[::2, 1::2] = 0
    return m


def _board_even_even_only(h, w):
    m = torch.zeros(h, w)
    m[::2, ::2] = 1
    return m


CORPUS = {
    "nb04.additive_coupling_inverse": dict(
        right={"torch.cat": _add_inv, "in place on a clone": _add_inv_clone, "an empty tensor filled": _add_inv_empty,
               "torch.hstack": lambda y, t: torch.hstack([_split(y)[1], _split(y)[2] - t(_split(y)[1])])},
        wrong=[Slip("t added", lambda y, t: torch.cat([_split(y)[1], _split(y)[2] + t(_split(y)[1])], 1), "added instead of subtracted"),
               Slip("t of y_b", lambda y, t: torch.cat([_split(y)[1], _split(y)[2] - t(_split(y)[2])], 1), "instead of y_a"),
               Slip("only x_b", lambda y, t: _split(y)[2] - t(_split(y)[1]), "only the transformed half"),
               Slip("halves swapped", lambda y, t: torch.cat([_split(y)[2] - t(_split(y)[1]), _split(y)[1]], 1), "wrong order"),
               Slip("cat along dim 0", lambda y, t: torch.cat([_split(y)[1], _split(y)[2] - t(_split(y)[1])], 0), "dim=0"),
               Slip("y unchanged", lambda y, t: y, "y is returned unchanged"),
               Slip("edits y in place", _add_inv_in_place, "in place")]),
    "nb04.affine_coupling_forward": dict(
        right={"the notebook's": _aff, "in place on a clone": _aff_clone_in_place,
               "addcmul": lambda x, s_and_t: (lambda n, xa, xb: (lambda ls, t: (torch.cat((xa, torch.addcmul(t, xb, ls.exp())), 1),
                                                                              ls.sum(-1)))(*s_and_t(xa)))(*_split(x)),
               "log of exp of log_s": lambda x, s_and_t: (_aff(x, s_and_t)[0], torch.log(torch.exp(s_and_t(_split(x)[1])[0])).sum(1))},
        wrong=[Slip("shift before scale", lambda x, st: _aff_variant(x, st, y_b="shift first"), "shift is added before scaling"),
               Slip("log_s not exp", lambda x, st: _aff_variant(x, st, y_b="no exp"), "instead of exp(log_s)"),
               Slip("divided by the scale", lambda x, st: _aff_variant(x, st, y_b="divide"), "divided by exp(log_s)"),
               Slip("halves swapped", lambda x, st: _aff_variant(x, st, order="ba"), "wrong order"),
               Slip("only y_b", lambda x, st: _aff_variant(x, st, order="b"), "only the transformed half"),
               Slip("scales summed", lambda x, st: _aff_variant(x, st, log_det="sum exp"), "scales exp(log_s) are summed"),
               Slip("log-det sign", lambda x, st: _aff_variant(x, st, log_det="minus"), "sign is flipped"),
               Slip("product of scales", lambda x, st: _aff_variant(x, st, log_det="prod"), "product of the scales"),
               Slip("log-det over the batch", lambda x, st: _aff_variant(x, st, log_det="batch"), "one number per sample"),
               Slip("log-det averaged", lambda x, st: _aff_variant(x, st, log_det="mean"), "averaged"),
               Slip("edits x in place", _aff_in_place, "in place"),
               Slip("autograd Jacobian", _aff_jacobian, "switched off")]),
    "nb04.affine_coupling_inverse": dict(
        right={"the notebook's": _aff_inv, "divide and hstack": _aff_inv_divide,
               "on a clone in place": lambda y, st: (lambda x, ld: (x, ld))(*_aff_inv(y.clone(), st)),
               "exp(-log_s) as a reciprocal": lambda y, st: (lambda n, ya, yb: (lambda ls, t: (torch.cat([ya, (yb - t) * ls.exp().reciprocal()], 1),
                                                                                         -ls.sum(1)))(*st(ya)))(*_split(y))},
        wrong=[Slip("unscale before unshift", lambda y, st: _aff_inv_variant(y, st, x_b="unscale first"), "removed after unscaling"),
               Slip("multiplied by the scale", lambda y, st: _aff_inv_variant(y, st, x_b="multiply"), "instead of divided"),
               Slip("conditioner on y_b", lambda y, st: _aff_inv_variant(y, st, cond="b"), "from y_b instead of y_a"),
               Slip("halves swapped", lambda y, st: _aff_inv_variant(y, st, order="ba"), "wrong order"),
               Slip("log-det sign", lambda y, st: _aff_inv_variant(y, st, log_det="plus"), "minus the forward one"),
               Slip("log-det averaged", lambda y, st: _aff_inv_variant(y, st, log_det="mean"), "averaged"),
               Slip("log-det over the batch", lambda y, st: _aff_inv_variant(y, st, log_det="batch"), "one number per sample"),
               Slip("y unchanged", lambda y, st: (y, -st(_split(y)[1])[0].sum(1)), "y is returned unchanged"),
               Slip("edits y in place", _aff_inv_in_place, "in place")]),
    "nb04.checkerboard": dict(
        right={"arange outer sum, float": _board, "loops": _board_loops, "slices": _board_slices,
               "integer 1 - (i + j) % 2": lambda h, w: 1 - (torch.arange(h)[:, None] + torch.arange(w)) % 2,
               "float64": lambda h, w: _board(h, w).double()},
        wrong=[Slip("bool mask", lambda h, w: (torch.arange(h)[:, None] + torch.arange(w)) % 2 == 0, "bool"),
               Slip("the complement", lambda h, w: 1 - _board(h, w), "complement"),
               Slip("transposed", lambda h, w: _board(w, h), "swapped"),
               Slip("row stripes", lambda h, w: (torch.arange(h)[:, None] % 2 == 0).float().expand(h, w), "striped by rows"),
               Slip("column stripes", lambda h, w: (torch.arange(w)[None, :] % 2 == 0).float().expand(h, w), "striped by columns"),
               Slip("i * j", lambda h, w: ((torch.arange(h)[:, None] * torch.arange(w)) % 2 == 0).float(), "i * j"),
               Slip("even-even squares only", _board_even_even_only, "both even"),
               Slip("a NumPy array", lambda h, w: (np.indices((h, w)).sum(0) % 2 == 0).astype(float), "torch tensor"),
               Slip("an extra dimension", lambda h, w: _board(h, w)[None], "extra dimension"),
               Slip("the library's", lambda h, w: checkerboard_mask(h, w), "switched off")]),
}

(test_right_answers_pass, test_wrong_answers_fail_and_are_named, test_most_slips_are_named,
 test_corpus_is_big_enough) = corpus_tests(CORPUS)
