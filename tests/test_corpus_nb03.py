"""Notebook 03's slip corpus: right answers in other styles pass, plausible wrong ones are named."""

import math

import torch

from course_utils.flows import FlowSequential

from checkcontract import Slip, corpus_tests

LOG_2PI = math.log(2 * math.pi)


# Exercise 1: the chain
def _chain(layers, x):
    log_det = x.new_zeros(x.shape[0])
    for layer in layers:
        x, ld = layer(x)
        log_det = log_det + ld
    return x, log_det


def _chain_list(layers, x):
    lds = []
    for layer in layers:
        x, ld = layer(x)
        lds.append(ld)
    return x, torch.stack(lds).sum(dim=0)


def _chain_python_zero(layers, x):
    h, total = x, 0
    for layer in layers:
        h, ld = layer(h)
        total += ld
    return h, total


def _chain_index(layers, x):
    log_det = torch.zeros(len(x), dtype=x.dtype)
    for i in range(len(layers)):
        x, ld = layers[i](x)
        log_det += ld
    return x, log_det


def _chain_variant(layers, x, mode):
    h, lds = x, []
    for layer in (reversed(layers) if mode == "reversed" else layers):
        if mode == "inverse":
            h, ld = layer.inverse(h)
        else:
            h, ld = layer(x if mode == "at x" else h)
        lds.append(ld)
    if mode == "at x":
        h = _chain(layers, x)[0]
    stacked = torch.stack(lds)
    if mode == "inverse":
        return _inverse(layers, x)
    return h, {"last": lds[-1], "minus": -stacked.sum(0), "stacked": stacked, "batch": stacked.sum(),
               "product": stacked.prod(0)}.get(mode, stacked.sum(0))


def _inverse(layers, x):
    log_det = x.new_zeros(x.shape[0])
    for layer in reversed(layers):
        x, ld = layer.inverse(x)
        log_det = log_det + ld
    return x, log_det


def _chain_in_place(layers, x):
    log_det = x.new_zeros(x.shape[0])
    for layer in layers:
        y, ld = layer(x)
        x.copy_(y)                                # overwrites the caller's batch
        log_det += ld
    return x, log_det


# Exercise 2: log p(x)
def _log_prob(layers, x):
    z, log_det = _chain(layers, x)
    return -0.5 * (z**2).sum(1) - 0.5 * z.shape[1] * LOG_2PI + log_det


def _log_prob_parts(layers, x, sign=+1, const=None, reduce="sum", at=None):
    z, log_det = _chain(layers, x)
    v = x if at == "x" else z
    D = z.shape[1]
    const = 0.5 * D * LOG_2PI if const is None else const
    sq = {"sum": (v**2).sum(1), "mean": (v**2).mean(1), "first": v[:, 0] ** 2, "none": v**2}[reduce]
    return -0.5 * sq - const + sign * log_det


def _log_prob_rows(layers, x):
    out = []
    for row in x:
        z, ld = _chain(layers, row[None])
        out.append(-0.5 * z.pow(2).sum() - z.shape[1] / 2 * LOG_2PI + ld[0])
    return torch.stack(out)


# Exercise 3: the triangular map's log-det
def _tri(x):
    return math.log(2) + x[:, 0] / 2 + torch.log1p(x[:, 2] ** 2)


def _tri_rows(x):
    return torch.tensor([math.log(2) + r[0] / 2 + math.log(1 + r[2] ** 2) for r in x.tolist()], dtype=x.dtype)


CORPUS = {
    "nb03.chain_forward": dict(
        right={"the notebook's": _chain,
               "stacked, then summed": _chain_list,
               "a Python 0 to start, +=": _chain_python_zero,
               "by index, float zeros, +=": _chain_index},
        wrong=[Slip("each layer at the original x", lambda l, x: _chain_variant(l, x, "at x"), "pass the output of one layer on"),
               Slip("last log-det only", lambda l, x: _chain_variant(l, x, "last"), "only the last layer"),
               Slip("log-dets subtracted", lambda l, x: _chain_variant(l, x, "minus"), "subtracted instead of added"),
               Slip("layers in reverse order", lambda l, x: _chain_variant(l, x, "reversed"), "reverse order"),
               Slip("the inverses", lambda l, x: _chain_variant(l, x, "inverse"), "inverses are used"),
               Slip("log-dets stacked, not summed", lambda l, x: _chain_variant(l, x, "stacked"), "stacked, not added"),
               Slip("summed over the batch", lambda l, x: _chain_variant(l, x, "batch"), "over the samples too"),
               Slip("log-dets multiplied", lambda l, x: _chain_variant(l, x, "product"), "multiplied"),
               Slip("only z returned", lambda l, x: _chain(l, x)[0], "should return a pair"),
               Slip("x unchanged", lambda l, x: (x, _chain(l, x)[1]), "x is returned unchanged"),
               Slip("edits x in place", _chain_in_place, "in place"),
               Slip("FlowSequential", lambda l, x: FlowSequential(*l)(x), "switched off")]),
    "nb03.flow_log_prob": dict(
        right={"the notebook's": _log_prob,
               "with the norm": lambda l, x: -0.5 * torch.linalg.vector_norm(_chain(l, x)[0], dim=1) ** 2
               - x.shape[1] / 2 * LOG_2PI + _chain(l, x)[1],
               "row by row": _log_prob_rows,
               "FlowSequential for the chain": lambda l, x: (lambda z, ld: -0.5 * (z * z).sum(-1) - 0.5 * z.shape[-1] * LOG_2PI
                                                             + ld)(*FlowSequential(*l)(x))},
        wrong=[Slip("log-det subtracted", lambda l, x: _log_prob_parts(l, x, sign=-1), "subtracted instead of added"),
               Slip("no log-det", lambda l, x: _log_prob_parts(l, x, sign=0), "log-det is left out"),
               Slip("no constant", lambda l, x: _log_prob_parts(l, x, const=0.0), "(D/2) log(2 pi)"),
               Slip("-1/2 log 2 pi once, not D times", lambda l, x: _log_prob_parts(l, x, const=0.5 * LOG_2PI), "once instead of once per feature"),
               Slip("D = x.shape[0]", lambda l, x: _log_prob_parts(l, x, const=0.5 * x.shape[0] * LOG_2PI), "number of samples"),
               Slip("unsummed base density", lambda l, x: _log_prob_parts(l, x, reduce="none"), "not summed over the D features"),
               Slip("mean over features", lambda l, x: _log_prob_parts(l, x, reduce="mean", const=0.5 * LOG_2PI), "averaged"),
               Slip("first feature only", lambda l, x: _log_prob_parts(l, x, reduce="first", const=0.5 * LOG_2PI), "only the first"),
               Slip("summed over the batch", lambda l, x: _log_prob(l, x).sum(), "one value per point"),
               Slip("the 1/2 missing", lambda l, x: _log_prob(l, x) - 0.5 * (_chain(l, x)[0] ** 2).sum(1), "the 1/2"),
               Slip("base density at x", lambda l, x: _log_prob_parts(l, x, at="x"), "evaluated at x"),
               Slip("torch.distributions", lambda l, x: torch.distributions.MultivariateNormal(
                   torch.zeros(x.shape[1], dtype=x.dtype), torch.eye(x.shape[1], dtype=x.dtype)).log_prob(_chain(l, x)[0])
                   + _chain(l, x)[1], "switched off")]),
    "nb03.triangular_map_log_det": dict(
        right={"the notebook's": _tri,
               "torch.log of a tensor 2": lambda x: torch.log(torch.tensor(2.0)) + x[:, 0] / 2 + torch.log(1 + x[:, 2] ** 2),
               "row by row with math": _tri_rows,
               "log of the product of the |diagonal|": lambda x: torch.log(2 * torch.exp(x[:, 0] / 2) * (1 + x[:, 2] ** 2)),
               "float32": lambda x: _tri(x.float())},
        wrong=[Slip("math.log(-2)", lambda x: math.log(-2) + x[:, 0] / 2 + torch.log1p(x[:, 2] ** 2), "log|.|"),
               Slip("torch.log of -2: NaN", lambda x: torch.log(torch.tensor(-2.0, dtype=x.dtype)) + x[:, 0] / 2
                    + torch.log1p(x[:, 2] ** 2), "log|.|"),
               Slip("log 2 missing", lambda x: x[:, 0] / 2 + torch.log1p(x[:, 2] ** 2), "log 2"),
               Slip("x3^2 instead of 1 + x3^2", lambda x: math.log(2) + x[:, 0] / 2 + torch.log(x[:, 2] ** 2), "taken as x3^2"),
               Slip("1 + 3 x3^2", lambda x: math.log(2) + x[:, 0] / 2 + torch.log(1 + 3 * x[:, 2] ** 2), "1 + 3 x3^2"),
               Slip("the sum of the diagonal", lambda x: -2 + torch.exp(x[:, 0] / 2) + 1 + x[:, 2] ** 2, "sum of logs"),
               Slip("exp(x1/2) not logged", lambda x: math.log(2) + torch.exp(x[:, 0] / 2) + torch.log1p(x[:, 2] ** 2),
                    "replaced by exp(x1 / 2)"),
               Slip("an off-diagonal entry", lambda x: _tri(x) + torch.log(x[:, 1].abs()), "off the diagonal"),
               Slip("summed over the batch", lambda x: _tri(x).sum(), "one value per point"),
               Slip("sign flipped", lambda x: -_tri(x), "sign is flipped"),
               Slip("autograd", lambda x: torch.stack([torch.linalg.slogdet(torch.autograd.functional.jacobian(
                   lambda v: torch.stack([-2 * v[0] + 1, v[1] * torch.exp(v[0] / 2) + torch.sin(v[0]),
                                          v[2] + v[2] ** 3 / 3 + v[0] * v[1]]), xi)).logabsdet for xi in x]),
                    "switched off")]),
}

(test_right_answers_pass, test_wrong_answers_fail_and_are_named, test_most_slips_are_named,
 test_corpus_is_big_enough) = corpus_tests(CORPUS)
