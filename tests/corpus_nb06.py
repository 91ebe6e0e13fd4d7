"""Notebook 06's slip corpus: answers written as students write them, right and wrong.

``RIGHT[check]`` maps a style to a right answer; ``WRONG[check]`` maps a slip to
``(answer, words)``, where ``words`` (plain text) must appear in the check's message for the slip
to count as named (``corpus_from`` in ``tests/checkcontract.py``; the tests are in
``tests/test_corpus_nb06.py``).
"""

import torch


# ------------------------------------------------------------------ exercise 1: batch norm forward
def bn(x, log_gamma, beta, eps, var=None, mean=None, scale=True, log_det=None, eps_in=True):
    mean = x.mean(0) if mean is None else mean(x)
    var = x.var(0, correction=0) if var is None else var(x)
    e = eps if eps_in else 0.0
    y = (x - mean) / torch.sqrt(var + e) * (log_gamma.exp() if scale else 1) + beta
    ld = (log_gamma - 0.5 * torch.log(var + e)).sum() if log_det is None else log_det(log_gamma, var, e)
    return y, ld * x.new_ones(x.shape[0]) if ld.dim() == 0 else ld


def bn_loop(x, log_gamma, beta, eps):
    n, d = x.shape
    y = torch.empty_like(x)
    log_det = 0.0
    for c in range(d):
        col = x[:, c]
        mu = col.sum() / n
        var = ((col - mu) ** 2).sum() / n
        y[:, c] = (col - mu) / (var + eps) ** 0.5 * torch.exp(log_gamma[c]) + beta[c]
        log_det = log_det + log_gamma[c] - 0.5 * torch.log(var + eps)
    return y, torch.full((n,), float(log_det), dtype=x.dtype)


def bn_float32(x, log_gamma, beta, eps):
    x, log_gamma, beta = x.float(), log_gamma.float(), beta.float()
    var, mean = torch.var_mean(x, 0, correction=0)
    y = (x - mean) * torch.rsqrt(var + eps) * log_gamma.exp() + beta
    return y, torch.log(log_gamma.exp() / torch.sqrt(var + eps)).sum().expand(x.shape[0])


def bn_in_place_copy(x, log_gamma, beta, eps):
    y = x.clone()
    y -= y.mean(0)
    var = (y ** 2).mean(0)
    y /= torch.sqrt(var + eps)
    y *= log_gamma.exp()
    y += beta
    return y, (log_gamma - 0.5 * torch.log(var + eps)).sum().repeat(x.shape[0])


def bn_edits_input(x, log_gamma, beta, eps):
    var = x.var(0, correction=0)
    x -= x.mean(0)                                  # the caller's x changes
    x /= torch.sqrt(var + eps)
    return x * log_gamma.exp() + beta, (log_gamma - 0.5 * torch.log(var + eps)).sum() * x.new_ones(x.shape[0])


def bn_layer_norm(x, log_gamma, beta, eps):
    y = torch.nn.functional.layer_norm(x.T, (x.shape[0],), eps=eps).T * log_gamma.exp() + beta
    var = x.var(0, correction=0)
    return y, (log_gamma - 0.5 * torch.log(var + eps)).sum() * x.new_ones(x.shape[0])


# ------------------------------------------------------------------ exercise 2: running averages
def running(rm, rv, x, m, correction=1, swap=False):
    a, b = (m, 1 - m) if swap else (1 - m, m)
    return a * rm + b * x.mean(0), a * rv + b * x.var(0, correction=correction)


def running_loop(rm, rv, x, m):
    n = x.shape[0]
    new_m, new_v = rm.clone(), rv.clone()
    for c in range(x.shape[1]):
        mu = sum(x[i, c] for i in range(n)) / n
        var = sum((x[i, c] - mu) ** 2 for i in range(n)) / (n - 1)
        new_m[c] = (1 - m) * rm[c] + m * mu
        new_v[c] = (1 - m) * rv[c] + m * var
    return new_m, new_v


def running_in_place(rm, rv, x, m):
    rm.mul_(1 - m).add_(m * x.mean(0))             # as a layer updates its buffers
    rv.mul_(1 - m).add_(m * x.var(0))
    return rm, rv


# ------------------------------------------------------------------ exercise 3: ActNorm init
def act_(x, guard=True, sign=-1, bias=lambda mean, std: -mean / std, correction=0, clamp=False, log=True):
    mean, std = x.mean(0), x.std(0, correction=correction)
    if clamp:
        std = std.clamp(min=1e-6)
    elif guard:
        std = torch.where(std > 1e-6, std, torch.ones_like(std))
    scale = sign * torch.log(std) if log else 1 / std
    return scale, bias(mean, std)


def act_masked(x):
    std = x.var(0, unbiased=False).sqrt()
    std[std < 1e-6] = 1.0
    log_scale = torch.log(1 / std)
    return log_scale, -x.mean(0) * log_scale.exp()


def act_float32(x):
    x = x.float()
    std = x.std(0, correction=0)
    std = std.masked_fill(std < 1e-6, 1.0)
    return -std.log(), -x.mean(0) / std


def act_library(x):
    from course_utils.flows import ActNorm
    layer = ActNorm(x.shape[1]).double()
    layer(x)
    return layer.log_scale.detach(), layer.bias.detach()


def act_edits_input(x):
    mean = x.mean(0)
    x -= mean                                       # the caller's x changes
    std = x.std(0, correction=0)
    std = torch.where(std > 1e-6, std, torch.ones_like(std))
    return -torch.log(std), -mean / std


RIGHT = {
    "batchnorm_forward": {
        "vectorised, new_ones": bn,
        "loop over features, torch.full": bn_loop,
        "float32, var_mean and rsqrt, log of the ratio": bn_float32,
        "in-place on its own copy, repeat": bn_in_place_copy,
    },
    "update_running": {
        "vectorised": running,
        "torch.lerp": lambda rm, rv, x, m: (torch.lerp(rm, x.mean(0), m), torch.lerp(rv, x.var(0), m)),
        "loops over features and samples": running_loop,
        "in place on the buffers, as a layer does": running_in_place,
        "float32": lambda rm, rv, x, m: running(rm.float(), rv.float(), x.float(), m),
    },
    "actnorm_init": {
        "torch.where": act_,
        "masked assignment, bias = -mean exp(s)": act_masked,
        "float32, masked_fill": act_float32,
    },
}

WRONG = {
    "batchnorm_forward": {
        "epsilon left out": (lambda x, lg, b, eps: bn(x, lg, b, eps, eps_in=False), "epsilon"),
        "unbiased variance": (lambda x, lg, b, eps: bn(x, lg, b, eps, var=lambda x: x.var(0)), "unbiased variance"),
        "no learned scale": (lambda x, lg, b, eps: bn(x, lg, b, eps, scale=False), "exp(log_gamma) is missing"),
        "no log gamma in the log-det": (lambda x, lg, b, eps: bn(x, lg, b, eps, log_det=lambda lg, v, e:
                                        (-0.5 * torch.log(v + e)).sum()), "sum of log_gamma is missing"),
        "log var without the half": (lambda x, lg, b, eps: bn(x, lg, b, eps, log_det=lambda lg, v, e:
                                     (lg - torch.log(v + e)).sum()), "-0.5 log(var + eps)"),
        "gamma where log gamma belongs": (lambda x, lg, b, eps: bn(x, lg, b, eps, log_det=lambda lg, v, e:
                                          (lg.exp() - 0.5 * torch.log(v + e)).sum()), "already the log"),
        "log-det summed over the batch": (lambda x, lg, b, eps: (bn(x, lg, b, eps)[0], bn(x, lg, b, eps)[1].sum()),
                                          "one number per sample"),
        "log-det per feature, not summed": (lambda x, lg, b, eps: (bn(x, lg, b, eps)[0], lg - 0.5 * torch.log(
                                            x.var(0, correction=0) + eps)), "one number per sample"),
        "statistics per sample (dim 1)": (lambda x, lg, b, eps: bn(x, lg, b, eps, mean=lambda x: x.mean(1, keepdim=True),
                                          var=lambda x: x.var(1, correction=0, keepdim=True)), "dim=0"),
        "one mean over all entries": (lambda x, lg, b, eps: bn(x, lg, b, eps, mean=lambda x: x.mean()), "per feature"),
        "edits x in place": (bn_edits_input, "in place"),
        "F.layer_norm over the batch (shortcut)": (bn_layer_norm, "switched off"),
        "nn.BatchNorm1d (shortcut)": (lambda x, lg, b, eps: (torch.nn.BatchNorm1d(x.shape[1], eps=eps, affine=False)
                                      .double()(x) * lg.exp() + b, bn(x, lg, b, eps)[1]), "switched off"),
    },
    "update_running": {
        "biased variance": (lambda rm, rv, x, m: running(rm, rv, x, m, correction=0), "biased batch variance"),
        "weights swapped": (lambda rm, rv, x, m: running(rm, rv, x, m, swap=True), "swapped"),
        "no averaging": (lambda rm, rv, x, m: (x.mean(0), x.var(0)), "replaced by the batch"),
        "variance corrected twice": (lambda rm, rv, x, m: ((1 - m) * rm + m * x.mean(0),
                                                      (1 - m) * rv + m * x.var(0) * len(x) / (len(x) - 1)),
                                     "applied twice"),
        "std averaged in": (lambda rm, rv, x, m: ((1 - m) * rm + m * x.mean(0), (1 - m) * rv + m * x.std(0)),
                            "standard deviation"),
        "variance not updated": (lambda rm, rv, x, m: ((1 - m) * rm + m * x.mean(0), rv), "not updated"),
        "pair in the wrong order": (lambda rm, rv, x, m: running(rm, rv, x, m)[::-1], "order"),
        "statistics over dim 1": (lambda rm, rv, x, m: ((1 - m) * rm + m * x.mean(1), (1 - m) * rv + m * x.var(1)),
                                  "dim=0"),
    },
    "actnorm_init": {
        "no zero-variance guard": (lambda x: act_(x, guard=False), "constant"),
        "sign of log_scale": (lambda x: act_(x, sign=1), "sign is flipped"),
        "bias not divided by std": (lambda x: act_(x, bias=lambda mean, std: -mean), "-mean / std"),
        "bias sign flipped": (lambda x: act_(x, bias=lambda mean, std: mean / std), "sign of the bias"),
        "unbiased std": (lambda x: act_(x, correction=1), "unbiased std"),
        "clamped to 1e-6": (lambda x: act_(x, clamp=True), "clamp"),
        "the scale, not its log": (lambda x: act_(x, log=False), "not its log"),
        "edits x in place": (act_edits_input, "in place"),
        "the library's ActNorm (shortcut)": (act_library, "switched off"),
    },
}
