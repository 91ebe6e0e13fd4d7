"""Notebook 05's slip corpus: right answers in other styles pass, plausible wrong ones are named."""

import math

import torch
import torch.nn.functional as F
from scipy.optimize import brentq

from course_utils.flows import planar_u_hat, reverse_kl_loss

from checkcontract import Slip, corpus_tests

LOG_2PI = math.log(2 * math.pi)


# Exercise 1: the planar map
def _planar(z, u, w, b, hprime=None, one=1, log=True, sign=1, y_form="tanh"):
    h = torch.tanh(z @ w + b)
    y = z + (h if y_form == "tanh" else z @ w + b)[:, None] * u
    hp = 1 - h**2 if hprime is None else hprime(h)
    det = (one + (w @ u) * hp).abs()
    return y, sign * (det.log() if log else det)


def _planar_loop(z, u, w, b):
    ys, lds = [], []
    for zi in z:
        a = torch.dot(w, zi) + b
        ys.append(zi + u * torch.tanh(a))
        lds.append(torch.log(torch.abs(1 + torch.dot(w, u) / torch.cosh(a) ** 2)))
    return torch.stack(ys), torch.stack(lds)


def _planar_in_place(z, u, w, b):
    h = torch.tanh(z @ w + b)
    z += h[:, None] * u
    return z, torch.log(torch.abs(1 + (w @ u) * (1 - h**2)))


def _planar_no_abs(z, u, w, b):
    h = torch.tanh(z @ w + b)
    return z + h[:, None] * u, torch.log(1 + (w @ u) * (1 - h**2))


def _planar_autograd(z, u, w, b):
    f = lambda v: v + torch.tanh(v @ w + b) * u
    return z + torch.tanh(z @ w + b)[:, None] * u, torch.stack(
        [torch.linalg.slogdet(torch.autograd.functional.jacobian(f, zi)).logabsdet for zi in z])


# Exercise 2: u-hat
def _u_hat(u, w):
    wu = w @ u
    return u + (-1 + F.softplus(wu) - wu) * w / (w @ w)


def _u_hat_by_hand(u, w):
    wu = torch.dot(w, u)
    m = -1 + wu.clamp(min=0) + torch.log1p(torch.exp(-wu.abs()))
    return u + (m - wu) * w / w.norm() ** 2


def _u_hat_in_place(u, w):
    wu = w @ u
    u += (-1 + F.softplus(wu) - wu) * w / (w @ w)
    return u


def _u_hat_float64(u, w):
    return _u_hat(u.double(), w.double())


# Exercise 3: the reverse KL
def _kl(flow, U, z0):
    z, log_det = flow(z0)
    return (-0.5 * (z0**2).sum(1) - LOG_2PI - log_det + U(z)).mean()


def _kl_normal(flow, U, z0):
    z, log_det = flow(z0)
    log_q0 = torch.distributions.Normal(torch.zeros((), dtype=z0.dtype), 1.0).log_prob(z0).sum(dim=1)
    return torch.mean(log_q0 - log_det + U(z))


def _kl_mvn(flow, U, z0):
    z, log_det = flow(z0)
    base = torch.distributions.MultivariateNormal(torch.zeros(2, dtype=z0.dtype), torch.eye(2, dtype=z0.dtype))
    return (base.log_prob(z0) - log_det + U(z)).mean()


def _kl_parts(flow, U, z0, ld_sign=-1, energy_at="zK", energy_sign=1, q0="z0", const=LOG_2PI, reduce="mean"):
    z, log_det = flow(z0)
    v = {"z0": z0, "zK": z, None: None}[q0]
    log_q0 = 0 if v is None else -0.5 * (v**2).sum(1) - const
    energy = U(z if energy_at == "zK" else z0)
    per = log_q0 + ld_sign * log_det + energy_sign * energy
    return {"mean": per.mean(), "sum": per.sum(), "none": per}[reduce]


# Exercise 4: the bisection
def _bisect(c, wu_hat, b, steps=60, wrong_way=False, use_b=True, sign=1):
    lo, hi = c - wu_hat.abs(), c + wu_hat.abs()
    for _ in range(steps):
        mid = (lo + hi) / 2
        too_low = mid + sign * wu_hat * torch.tanh(mid + (b if use_b else 0)) < c
        if wrong_way:
            too_low = ~too_low
        lo, hi = torch.where(too_low, mid, lo), torch.where(too_low, hi, mid)
    return (lo + hi) / 2


def _bisect_float32(c, wu_hat, b):
    lo = torch.tensor((c - wu_hat.abs()).tolist())             # a plain torch.tensor: float32
    hi = torch.tensor((c + wu_hat.abs()).tolist())
    for _ in range(60):
        mid = (lo + hi) / 2
        too_low = mid + wu_hat * torch.tanh(mid + b) < c
        lo, hi = torch.where(too_low, mid, lo), torch.where(too_low, hi, mid)
    return (lo + hi) / 2


def _bisect_while(c, wu_hat, b):
    lo, hi = c - wu_hat.abs(), c + wu_hat.abs()
    while (hi - lo).max() > 1e-12:
        mid = (lo + hi) / 2
        too_low = mid + wu_hat * torch.tanh(mid + b) < c
        lo, hi = torch.where(too_low, mid, lo), torch.where(too_low, hi, mid)
    return (lo + hi) / 2


def _newton(c, wu_hat, b):
    a = c.clone()
    for _ in range(50):
        g = a + wu_hat * torch.tanh(a + b) - c
        a = a - g / (1 + wu_hat * (1 - torch.tanh(a + b) ** 2))
    return a


def _safeguarded_newton(c, wu_hat, b):
    lo, hi = c - wu_hat.abs(), c + wu_hat.abs()
    a = c.clone()
    for _ in range(100):
        g = a + wu_hat * torch.tanh(a + b) - c
        lo, hi = torch.where(g < 0, a, lo), torch.where(g < 0, hi, a)
        step = a - g / (1 + wu_hat * (1 - torch.tanh(a + b) ** 2))
        a = torch.where((step > lo) & (step < hi), step, (lo + hi) / 2)
    return a


def _brentq(c, wu_hat, b):
    w, bb = float(wu_hat), float(b)
    roots = [brentq(lambda a: a + w * math.tanh(a + bb) - ci, ci - abs(w) - 1, ci + abs(w) + 1, xtol=1e-14)
             for ci in c.tolist()]
    return torch.tensor(roots, dtype=c.dtype)


def _bisect_in_place(c, wu_hat, b):
    c -= 0                                                      # harmless
    lo, hi = c - wu_hat.abs(), c + wu_hat.abs()
    for _ in range(60):
        mid = (lo + hi) / 2
        too_low = mid + wu_hat * torch.tanh(mid + b) < c
        lo[too_low] = mid[too_low]
        hi[~too_low] = mid[~too_low]
    c.copy_((lo + hi) / 2)                                      # answers in c itself
    return c


CORPUS = {
    "nb05.planar_forward": dict(
        right={"the notebook's": _planar, "a loop with cosh": _planar_loop,
               "float32": lambda z, u, w, b: _planar(z.float(), u.float(), w.float(), b.float()),
               "sech^2 via 1/cosh^2, vectorised": lambda z, u, w, b: _planar(z, u, w, b, hprime=lambda h: 1 / torch.cosh(torch.atanh(h)) ** 2)},
        wrong=[Slip("h for h'", lambda z, u, w, b: _planar(z, u, w, b, hprime=lambda h: h), "derivative h'"),
               Slip("no 1 +", lambda z, u, w, b: _planar(z, u, w, b, one=0), "the 1 + is missing"),
               Slip("(1 - h)^2", lambda z, u, w, b: _planar(z, u, w, b, hprime=lambda h: (1 - h) ** 2), "(1 - h)^2"),
               Slip("det, not log", lambda z, u, w, b: _planar(z, u, w, b, log=False), "not its log"),
               Slip("sign flipped", lambda z, u, w, b: _planar(z, u, w, b, sign=-1), "sign is flipped"),
               Slip("no abs: NaN", _planar_no_abs, "absolute value"),
               Slip("abs inside 1 +", lambda z, u, w, b: (_planar(z, u, w, b)[0], torch.log(1 + torch.abs(
                   (w @ u) * (1 - torch.tanh(z @ w + b) ** 2)))), "belongs around 1 + (w.u) h'"),
               Slip("w.z + b, not tanh", lambda z, u, w, b: _planar(z, u, w, b, y_form="linear"), "instead of tanh"),
               Slip("h without [:, None]", lambda z, u, w, b: (z + torch.tanh(z @ w + b) * u, _planar(z, u, w, b)[1]), "h[:, None]"),
               Slip("w * u element-wise", lambda z, u, w, b: (_planar(z, u, w, b)[0], torch.log(torch.abs(
                   1 + (w * u) * (1 - torch.tanh(z @ w + b) ** 2)))), "w @ u"),
               Slip("log-det summed", lambda z, u, w, b: (_planar(z, u, w, b)[0], _planar(z, u, w, b)[1].sum()), "one number per sample"),
               Slip("edits z in place", _planar_in_place, "in place"),
               Slip("autograd", _planar_autograd, "switched off")]),
    "nb05.u_hat": dict(
        right={"the notebook's": _u_hat, "a stable softplus by hand": _u_hat_by_hand,
               "on a copy in place": lambda u, w: _u_hat_in_place(u.clone(), w),
               "via m - w.u as one term": lambda u, w: u + ((F.softplus(w @ u) - 1) - w @ u) / torch.dot(w, w) * w},
        wrong=[Slip("||w||, not squared", lambda u, w: u + (-1 + F.softplus(w @ u) - w @ u) * w / w.norm(), "||w||^2"),
               Slip("no -1", lambda u, w: u + (F.softplus(w @ u) - w @ u) * w / (w @ w), "without the -1"),
               Slip("m(a) = -1 + a", lambda u, w: u - w / (w @ w), "m(a) = -1 + a"),
               Slip("correction subtracted", lambda u, w: u - (-1 + F.softplus(w @ u) - w @ u) * w / (w @ w), "subtracted instead of added"),
               Slip("log(1 + exp) overflows", lambda u, w: u + (-1 + torch.log(1 + torch.exp(w @ u)) - w @ u) * w / (w @ w), "overflows"),
               Slip("u unchanged", lambda u, w: u, "u is returned unchanged"),
               Slip("edits u in place", _u_hat_in_place, "in place"),
               Slip("float64 for float32 inputs", _u_hat_float64, "keep the input's dtype"),
               Slip("planar_u_hat", lambda u, w: planar_u_hat(u, w)[0], "switched off")]),
    "nb05.reverse_kl": dict(
        right={"the notebook's": _kl, "Normal(0, 1).log_prob": _kl_normal, "MultivariateNormal": _kl_mvn,
               "sum / N": lambda flow, U, z0: _kl_parts(flow, U, z0, reduce="sum") / z0.shape[0]},
        wrong=[Slip("log-det added", lambda f, U, z0: _kl_parts(f, U, z0, ld_sign=1), "added instead of subtracted"),
               Slip("energy at z0", lambda f, U, z0: _kl_parts(f, U, z0, energy_at="z0"), "energy is evaluated at z_0"),
               Slip("energy sign", lambda f, U, z0: _kl_parts(f, U, z0, energy_sign=-1), "wrong sign"),
               Slip("no log q0", lambda f, U, z0: _kl_parts(f, U, z0, q0=None), "left out"),
               Slip("log q0 at z_K", lambda f, U, z0: _kl_parts(f, U, z0, q0="zK"), "at z_K instead of z_0"),
               Slip("no constant", lambda f, U, z0: _kl_parts(f, U, z0, const=0.0), "-log(2 pi)"),
               Slip("-1/2 log 2 pi once", lambda f, U, z0: _kl_parts(f, U, z0, const=0.5 * LOG_2PI), "instead of once per coordinate"),
               Slip("summed, not averaged", lambda f, U, z0: _kl_parts(f, U, z0, reduce="sum"), "summed instead of averaged"),
               Slip("log-det summed, the rest averaged", lambda f, U, z0: (lambda zK, ld: (-0.5 * (z0**2).sum(1) - LOG_2PI + U(zK)).mean()
                                                                               - ld.sum())(*f(z0)), "summed over the samples while"),
               Slip("per-sample values", lambda f, U, z0: _kl_parts(f, U, z0, reduce="none"), ".mean()"),
               Slip("reverse_kl_loss", lambda f, U, z0: reverse_kl_loss(f, U, z0), "switched off")]),
    "nb05.solve_planar": dict(
        right={"the notebook's bisection": _bisect, "safeguarded Newton": _safeguarded_newton, "scipy's brentq": _brentq,
               "80 halvings": lambda c, wu, b: _bisect(c, wu, b, steps=80),
               "a while loop to an absolute tolerance": _bisect_while},
        wrong=[Slip("float32 bracket", _bisect_float32, "float32 rounding"),
               Slip("c returned", lambda c, wu, b: c.clone(), "equal to c"),
               Slip("one fixed-point step", lambda c, wu, b: c - wu * torch.tanh(c + b), "one fixed-point step"),
               Slip("b left out", lambda c, wu, b: _bisect(c, wu, b, use_b=False), "b is left out"),
               Slip("sign of the tanh term", lambda c, wu, b: _bisect(c, wu, b, sign=-1), "sign of wu_hat"),
               Slip("bracket updated the wrong way", lambda c, wu, b: _bisect(c, wu, b, wrong_way=True), "wrong way round"),
               Slip("too few halvings", lambda c, wu, b: _bisect(c, wu, b, steps=12), "too few halvings"),
               Slip("plain Newton", _newton, "Newton"),
               Slip("answers in c in place", _bisect_in_place, "in place")]),
}

(test_right_answers_pass, test_wrong_answers_fail_and_are_named, test_most_slips_are_named,
 test_corpus_is_big_enough) = corpus_tests(CORPUS)
