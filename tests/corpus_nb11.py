"""Notebook 11's slip corpus (``RIGHT``/``WRONG``, see ``corpus_from`` in ``tests/checkcontract.py``)."""

import math

import torch
import torch.nn.functional as F

from course_utils import gon


# ------------------------------------------------------------------ exercise 1: the GON latent
def latent(decoder, x, latent_dim, loss=lambda out, x: (out - x).pow(2).flatten(1).sum(1).sum(), sign=-1,
           create_graph=True, start=torch.zeros):
    z0 = start(x.shape[0], latent_dim, dtype=x.dtype).requires_grad_(True)
    (grad,) = torch.autograd.grad(loss(decoder(z0), x), z0, create_graph=create_graph)
    return sign * grad


def latent_mse_sum(decoder, x, latent_dim):
    z0 = torch.zeros(len(x), latent_dim, dtype=x.dtype, requires_grad=True)
    inner = F.mse_loss(decoder(z0), x, reduction="sum")
    return -torch.autograd.grad(inner, [z0], create_graph=True)[0]


def latent_backward(decoder, x, latent_dim):
    z0 = torch.zeros(x.shape[0], latent_dim, dtype=x.dtype, requires_grad=True)
    inner = ((x - decoder(z0)) ** 2).sum()
    grad = torch.autograd.grad(inner, z0, torch.ones_like(inner), create_graph=True)[0]
    return grad.neg()


def latent_float32(decoder, x, latent_dim):
    z0 = torch.zeros(x.shape[0], latent_dim, requires_grad=True)       # float32 zeros
    out = decoder(z0.to(x.dtype))
    return -torch.autograd.grad(((out - x) ** 2).sum(), z0, create_graph=True)[0]


# ------------------------------------------------------------------ exercise 2: the GON loss
def objective(decoder, x, latent_dim, reduce=lambda e: e.flatten(1).sum(1).mean(), z=None):
    z = gon.gon_latent(decoder, x, latent_dim) if z is None else z(decoder, x, latent_dim)
    return reduce((decoder(z) - x) ** 2)


def objective_own_latent(decoder, x, latent_dim):
    z0 = torch.zeros(x.shape[0], latent_dim, dtype=x.dtype, requires_grad=True)
    (g,) = torch.autograd.grad(((decoder(z0) - x) ** 2).sum(), z0, create_graph=True)
    return F.mse_loss(decoder(-g), x, reduction="sum") / x.shape[0]


def objective_no_grad(decoder, x, latent_dim):
    z = gon.gon_latent(decoder, x, latent_dim)
    with torch.no_grad():
        return ((decoder(z) - x) ** 2).flatten(1).sum(1).mean()


# ------------------------------------------------------------------ exercise 3: slerp
def slerp(z0, z1, t):
    omega = torch.arccos(torch.dot(z0, z1) / (z0.norm() * z1.norm()))
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


def slerp_math(z0, z1, t):
    cos = (z0 @ z1 / (z0.norm() * z1.norm())).clamp(-1, 1).item()
    omega = math.acos(cos)
    return (math.sin((1 - t) * omega) * z0 + math.sin(t * omega) * z1) / math.sin(omega)


def slerp_units(z0, z1, t):
    a, b = F.normalize(z0, dim=0), F.normalize(z1, dim=0)
    omega = torch.acos((a * b).sum())
    s = torch.sin(omega)
    return torch.sin((1 - t) * omega) / s * z0 + torch.sin(t * omega) / s * z1


RIGHT = {
    "gon_latent": {
        "autograd.grad of the summed squares": latent,
        "F.mse_loss with reduction='sum'": latent_mse_sum,
        "x - F, grad_outputs, neg": latent_backward,
        "float32 zeros (the notebook's dtype)": latent_float32,
    },
    "gon_objective": {
        "the library's latent": objective,
        "own latent, mse_loss sum over batch": objective_own_latent,
        "sum over pixel dimensions": lambda d, x, k: objective(d, x, k, reduce=lambda e: e.sum((1, 2, 3)).mean()),
        "student's own latent function": lambda d, x, k: objective(d, x, k, z=latent_mse_sum),
    },
    "slerp": {
        "torch": slerp,
        "math.acos with a clamp": slerp_math,
        "unit vectors for the angle": slerp_units,
    },
}

WRONG = {
    "gon_latent": {
        "sign flipped": (lambda d, x, k: latent(d, x, k, sign=1), "sign is flipped"),
        "mean over pixels": (lambda d, x, k: latent(d, x, k, loss=lambda o, x: (o - x).pow(2).flatten(1).mean(1).sum()),
                             "averaged over the pixels"),
        "mean over the batch": (lambda d, x, k: latent(d, x, k, loss=lambda o, x: (o - x).pow(2).flatten(1).sum(1).mean()),
                                "averaged over the batch"),
        "F.mse_loss's default mean": (lambda d, x, k: latent(d, x, k, loss=F.mse_loss), "mse_loss"),
        "no create_graph": (lambda d, x, k: latent(d, x, k, create_graph=False), "create_graph"),
        "starts at ones": (lambda d, x, k: latent(d, x, k, start=torch.ones), "zeros"),
        "one z0 for the batch": (lambda d, x, k: latent(d, x[:1], k).expand(len(x), k), "one row per example"),
        "z0 hard-coded as float64": (lambda d, x, k: latent(d, x, k, start=lambda n, k, dtype: torch.zeros(
            n, k, dtype=torch.float64)), "float32 and float64 tensors were mixed"),
        "the gradient, not a latent of its own shape": (lambda d, x, k: latent(d, x, k).T, "shape"),
    },
    "gon_objective": {
        "mean over pixels": (lambda d, x, k: objective(d, x, k, reduce=lambda e: e.mean()), "mean"),
        "summed over the batch": (lambda d, x, k: objective(d, x, k, reduce=lambda e: e.sum()), "summed over the batch"),
        "latent detached": (lambda d, x, k: objective(d, x, k, z=lambda d, x, k: gon.gon_latent(d, x, k).detach()),
                            "detached"),
        "latent with its sign flipped": (lambda d, x, k: objective(d, x, k, z=lambda d, x, k: -gon.gon_latent(d, x, k)),
                                         "sign"),
        "decoded at the origin": (lambda d, x, k: ((d(torch.zeros(len(x), k, dtype=x.dtype)) - x) ** 2)
                                  .flatten(1).sum(1).mean(), "origin"),
        "no graph at all": (objective_no_grad, "no graph"),
        "per-example losses, not averaged": (lambda d, x, k: objective(d, x, k, reduce=lambda e: e.flatten(1).sum(1)),
                                             "one number"),
        "F.mse_loss's default mean": (lambda d, x, k: F.mse_loss(d(gon.gon_latent(d, x, k)), x), "mse_loss"),
        "own latent with float64 zeros": (lambda d, x, k: objective(d, x, k, z=lambda d, x, k: latent(
            d, x, k, start=lambda n, k, dtype: torch.zeros(n, k, dtype=torch.float64))), "float32 and float64 tensors were mixed"),
    },
    "slerp": {
        "lerp": (lambda z0, z1, t: (1 - t) * z0 + t * z1, "straight line"),
        "t swapped": (lambda z0, z1, t: slerp(z0, z1, 1 - t), "swapped"),
        "normalised result": (lambda z0, z1, t: slerp(z0, z1, t) / slerp(z0, z1, t).norm(), "normalised"),
        "angle without the norms": (lambda z0, z1, t: slerp_angle(z0, z1, t, lambda a, b: torch.dot(a, b)), "norms"),
        "no division by sin(omega)": (lambda z0, z1, t: slerp(z0, z1, t) * torch.sin(torch.arccos(
            torch.dot(z0, z1) / (z0.norm() * z1.norm()))), "sin(omega)"),
        "interpolates unit vectors": (lambda z0, z1, t: slerp(z0 / z0.norm(), z1 / z1.norm(), t), "unit"),
        "the angle in degrees": (lambda z0, z1, t: slerp_angle(z0, z1, t, lambda a, b: torch.dot(a, b) / (
            a.norm() * b.norm()), degrees=True), "radians"),
    },
}


def slerp_angle(z0, z1, t, cosine, degrees=False):
    omega = torch.arccos(cosine(z0, z1))
    if degrees:
        omega = torch.rad2deg(omega)
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)
