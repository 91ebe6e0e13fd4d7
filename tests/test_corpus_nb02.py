"""Notebook 02's slip corpus: right answers in other styles pass, plausible wrong ones are named."""

import math

import torch

from checkcontract import Slip, corpus_tests

LOG_2PI = math.log(2 * math.pi)


# Exercise 1: X = a Z + b
def _affine(x, a, b):
    z = (x - b) / a
    return -0.5 * z**2 - 0.5 * LOG_2PI - math.log(abs(a))


def _affine_in_place_on_copy(x, a, b):
    z = x.clone()
    z.sub_(b).div_(a)
    return z.pow_(2).mul_(-0.5).sub_(0.5 * LOG_2PI + math.log(abs(a)))


def _affine_in_place(x, a, b):
    x -= b
    x /= a
    return -0.5 * x**2 - 0.5 * LOG_2PI - math.log(abs(a))


# Exercise 2: X = exp(mu + sigma Z)
def _lognormal(x, mu, sigma):
    z = (torch.log(x) - mu) / sigma
    return -0.5 * z**2 - 0.5 * LOG_2PI - math.log(sigma) - torch.log(x)


def _lognormal_log_in_place(x, mu, sigma):
    log_x = x.log_()
    z = (log_x - mu) / sigma
    return -0.5 * z**2 - 0.5 * LOG_2PI - math.log(sigma) - log_x


def _lognormal_part(x, mu, sigma, keep_x=True, keep_sigma=True, sign_x=-1, z_from_x=False):
    z = ((x if z_from_x else torch.log(x)) - mu) / sigma
    out = -0.5 * z**2 - 0.5 * LOG_2PI
    if keep_sigma:
        out = out - math.log(sigma)
    if keep_x:
        out = out + sign_x * torch.log(x)
    return out


# Exercise 3: X = A Z + b
def _linear(x, A, b):
    z = torch.linalg.solve(A, (x - b).T).T
    return (-0.5 * z**2 - 0.5 * LOG_2PI).sum(dim=1) - torch.linalg.slogdet(A).logabsdet


def _linear_inverse(x, A, b):
    z = (x - b) @ torch.linalg.inv(A).T
    return -0.5 * (z**2).sum(1) - LOG_2PI - torch.det(A).abs().log()


def _linear_loop(x, A, b):
    out = []
    for xi in x:
        zi = torch.linalg.solve(A, xi - b)
        out.append(-0.5 * zi @ zi - LOG_2PI - math.log(abs(torch.det(A).item())))
    return torch.stack(out)


def _linear_parts(x, A, b, z=None, logdet=None, const=None, reduce=1):
    z = torch.linalg.solve(A, (x - b).T).T if z is None else z
    logdet = torch.linalg.slogdet(A).logabsdet if logdet is None else logdet
    const = 0.5 * LOG_2PI * 2 if const is None else const
    log_pz = -0.5 * z**2
    log_pz = log_pz.sum() if reduce == "all" else (log_pz if reduce is None else log_pz.sum(reduce))
    return log_pz - const - logdet


def _linear_in_place(x, A, b):
    x -= b
    z = torch.linalg.solve(A, x.T).T
    return (-0.5 * z**2 - 0.5 * LOG_2PI).sum(dim=1) - torch.linalg.slogdet(A).logabsdet


CORPUS = {
    "nb02.affine_log_density": dict(
        right={"the notebook's": _affine,
               "log of sqrt(2 pi) |a| at once": lambda x, a, b: -0.5 * ((x - b) / a) ** 2 - math.log(math.sqrt(2 * math.pi) * abs(a)),
               "float32": lambda x, a, b: _affine(x.float(), a, b),
               "torch.log of a tensor |a|": lambda x, a, b: -0.5 * ((x - b) / a) ** 2 - 0.5 * LOG_2PI
               - torch.log(torch.tensor(abs(a), dtype=x.dtype)),
               "in place on a copy": _affine_in_place_on_copy},
        wrong=[Slip("math.log(a) of a negative a", lambda x, a, b: -0.5 * ((x - b) / a) ** 2 - 0.5 * LOG_2PI - math.log(a),
                    "absolute value"),
               Slip("no Jacobian term", lambda x, a, b: -0.5 * ((x - b) / a) ** 2 - 0.5 * LOG_2PI, "Jacobian term is left out"),
               Slip("+ log|a|", lambda x, a, b: -0.5 * ((x - b) / a) ** 2 - 0.5 * LOG_2PI + math.log(abs(a)),
                    "added instead of subtracted"),
               Slip("z = a (x - b)", lambda x, a, b: -0.5 * (a * (x - b)) ** 2 - 0.5 * LOG_2PI - math.log(abs(a)),
                    "a (x - b)"),
               Slip("the density, not its log", lambda x, a, b: torch.exp(_affine(x, a, b)), "instead of its log"),
               Slip("no -1/2 log 2 pi", lambda x, a, b: -0.5 * ((x - b) / a) ** 2 - math.log(abs(a)), "log(2 pi)"),
               Slip("(x + b) / a", lambda x, a, b: -0.5 * ((x + b) / a) ** 2 - 0.5 * LOG_2PI - math.log(abs(a)),
                    "b is added"),
               Slip("torch.log of the float a", lambda x, a, b: -0.5 * ((x - b) / a) ** 2 - 0.5 * LOG_2PI - torch.log(a),
                    "Python number"),
               Slip("log(a^2)", lambda x, a, b: -0.5 * ((x - b) / a) ** 2 - 0.5 * LOG_2PI - math.log(a * a), "log(a^2)"),
               Slip("edits x in place", _affine_in_place, "in place"),
               Slip("torch.distributions.Normal", lambda x, a, b: torch.distributions.Normal(b, abs(a)).log_prob(x),
                    "switched off")]),
    "nb02.lognormal_log_density": dict(
        right={"the notebook's": _lognormal,
               "log(sigma x) at once": lambda x, mu, sigma: -0.5 * ((x.log() - mu) / sigma) ** 2 - 0.5 * LOG_2PI
               - torch.log(sigma * x),
               "float32": lambda x, mu, sigma: _lognormal(x.float(), mu, sigma),
               "log on a copy in place": lambda x, mu, sigma: _lognormal_log_in_place(x.clone(), mu, sigma)},
        wrong=[Slip("no 1/x", lambda x, mu, sigma: _lognormal_part(x, mu, sigma, keep_x=False), "1/x factor"),
               Slip("no 1/sigma", lambda x, mu, sigma: _lognormal_part(x, mu, sigma, keep_sigma=False), "1/sigma"),
               Slip("neither factor", lambda x, mu, sigma: _lognormal_part(x, mu, sigma, False, False), "both Jacobian"),
               Slip("+ log x", lambda x, mu, sigma: _lognormal_part(x, mu, sigma, sign_x=+1), "log x is added"),
               Slip("the density", lambda x, mu, sigma: _lognormal(x, mu, sigma).exp(), "instead of its log"),
               Slip("z from x, not log x", lambda x, mu, sigma: _lognormal_part(x, mu, sigma, z_from_x=True), "instead of log x"),
               Slip("log(x) / sigma - mu", lambda x, mu, sigma: -0.5 * (torch.log(x) / sigma - mu) ** 2 - 0.5 * LOG_2PI
                    - math.log(sigma) - torch.log(x), "after dividing"),
               Slip("math.log on the tensor x", lambda x, mu, sigma: _lognormal(x, mu, sigma) + 0 * math.log(x), "torch.log"),
               Slip("x.log_() in place", _lognormal_log_in_place, "in place"),
               Slip("+ log sigma and + log x", lambda x, mu, sigma: -0.5 * ((x.log() - mu) / sigma) ** 2 - 0.5 * LOG_2PI
                    + math.log(sigma) + x.log(), "both added"),
               Slip("+ log sigma", lambda x, mu, sigma: -0.5 * ((x.log() - mu) / sigma) ** 2 - 0.5 * LOG_2PI
                    + math.log(sigma) - x.log(), "log sigma is added"),
               Slip("LogNormal", lambda x, mu, sigma: torch.distributions.LogNormal(mu, sigma).log_prob(x), "switched off")]),
    "nb02.linear_map_log_density": dict(
        right={"solve and slogdet": _linear,
               "the inverse matrix and |det|": _linear_inverse,
               "a loop over the points": _linear_loop,
               "float32": lambda x, A, b: _linear(x.float(), A.float(), b.float())},
        wrong=[Slip("no log-det", lambda x, A, b: _linear_parts(x, A, b, logdet=0.0), "left out"),
               Slip("+ log-det", lambda x, A, b: _linear_parts(x, A, b, logdet=-torch.linalg.slogdet(A).logabsdet),
                    "added instead of subtracted"),
               Slip("z = A (x - b)", lambda x, A, b: _linear_parts(x, A, b, z=(x - b) @ A.T), "A (x - b)"),
               Slip("A transposed", lambda x, A, b: _linear_parts(x, A, b, z=torch.linalg.solve(A.T, (x - b).T).T), "transposed"),
               Slip("summed over the points too", lambda x, A, b: _linear_parts(x, A, b, reduce="all"), "one value per point"),
               Slip("summed over the points, not the coordinates", lambda x, A, b: _linear_parts(x, A, b, reduce=0,
                                                                                            const=0.5 * LOG_2PI),
                    "summed over the points (dim=0)"),
               Slip("not summed over the coordinates", lambda x, A, b: _linear_parts(x, A, b, reduce=None,
                                                                                    const=0.5 * LOG_2PI),
                    "not summed over the 2 coordinates"),
               Slip("-1/2 log 2 pi once, not D times", lambda x, A, b: _linear_parts(x, A, b, const=0.5 * LOG_2PI),
                    "once instead of once per coordinate"),
               Slip("log det A without abs", lambda x, A, b: _linear_parts(x, A, b, logdet=torch.log(torch.det(A))), "det A can be negative"),
               Slip("math.log of a negative det", lambda x, A, b: _linear_parts(x, A, b, logdet=math.log(torch.det(A).item())),
                    "absolute value"),
               Slip("inv(A) @ (x - b) unflipped", lambda x, A, b: _linear_parts(x, A, b, z=torch.linalg.inv(A) @ (x - b)),
                    "shapes that do not fit"),
               Slip("b not subtracted", lambda x, A, b: _linear_parts(x, A, b, z=torch.linalg.solve(A, x.T).T), "b is not subtracted"),
               Slip("edits x in place", _linear_in_place, "in place"),
               Slip("MultivariateNormal", lambda x, A, b: torch.distributions.MultivariateNormal(b, A @ A.T).log_prob(x),
                    "switched off")]),
}

(test_right_answers_pass, test_wrong_answers_fail_and_are_named, test_most_slips_are_named,
 test_corpus_is_big_enough) = corpus_tests(CORPUS)
