"""Notebook 10's slip corpus (``RIGHT``/``WRONG``, see ``corpus_from`` in ``tests/checkcontract.py``)."""

import math

import torch
import torch.nn.functional as F
from torch import nn


# ------------------------------------------------------------------ exercise 1: SIREN's init
def init_with(bound, draw=lambda w, c: w.uniform_(-c, c)):
    def fn(linear, omega_0, is_first):
        n_in, n_out = linear.in_features, linear.out_features
        c = bound(n_in, n_out, omega_0, is_first)
        with torch.no_grad():
            draw(linear.weight, c)
    return fn


siren_bound = lambda n, m, w0, first: 1 / n if first else math.sqrt(6 / n) / w0


def init_rand(linear, omega_0, is_first):
    n = linear.weight.shape[1]
    c = 1 / n if is_first else (6 / n) ** 0.5 / omega_0
    with torch.no_grad():
        linear.weight.copy_((2 * torch.rand_like(linear.weight) - 1) * c)


def init_data(linear, omega_0, is_first):
    n = linear.in_features
    c = 1 / n if is_first else math.sqrt(6 / n) / omega_0
    linear.weight.data = torch.empty(linear.out_features, n).uniform_(-c, c)


def init_forgot(linear, omega_0, is_first):
    n = linear.in_features
    c = 1 / n if is_first else math.sqrt(6 / n) / omega_0
    torch.empty_like(linear.weight).uniform_(-c, c)             # drawn, never stored


# ------------------------------------------------------------------ exercise 2: PSNR
def psnr(p, t):
    return 10 * torch.log10(4.0 / torch.mean((p - t) ** 2))


def psnr_skimage(p, t):
    from skimage.metrics import peak_signal_noise_ratio
    return peak_signal_noise_ratio(t.numpy(), p.numpy(), data_range=2.0)


# ------------------------------------------------------------------ exercise 3: the Laplacian
def lap(y, x, create_first=True, create_second=True, which=None, grad_outputs=True):
    ones = (lambda t: torch.ones_like(t)) if grad_outputs else (lambda t: None)
    g = torch.autograd.grad(y, x, ones(y), create_graph=create_first)[0]
    total = torch.zeros_like(y)
    for i in (range(x.shape[1]) if which is None else which):
        total = total + torch.autograd.grad(g[:, i], x, ones(g[:, i]), create_graph=create_second)[0][:, i:i + 1]
    return total


def lap_sum_trick(y, x):
    (g,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    return torch.stack([torch.autograd.grad(g[:, i].sum(), x, create_graph=True)[0][:, i]
                        for i in range(x.shape[1])], dim=1).sum(1, keepdim=True)


def lap_columns(y, x):
    g = torch.autograd.grad(y, x, torch.ones_like(y), create_graph=True)[0]
    parts = [torch.autograd.grad(g[:, i:i + 1], x, torch.ones_like(g[:, i:i + 1]), create_graph=True)[0][:, i:i + 1]
             for i in range(x.shape[1])]
    return sum(parts)


def lap_mixed(y, x):
    g = torch.autograd.grad(y, x, torch.ones_like(y), create_graph=True)[0]
    return torch.autograd.grad(g.sum(), x, create_graph=True)[0].sum(1, keepdim=True)


RIGHT = {
    "init_sine_layer": {
        "uniform_": init_with(siren_bound),
        "nn.init.uniform_": init_with(siren_bound, draw=lambda w, c: nn.init.uniform_(w, -c, c)),
        "copy_ from rand_like": init_rand,
        "weight.data replaced": init_data,
    },
    "psnr": {
        "10 log10(4 / MSE)": psnr,
        "20 log10(2 / RMSE), math": lambda p, t: 20 * math.log10(2 / math.sqrt(((p - t) ** 2).mean().item())),
        "F.mse_loss, float32": lambda p, t: 10 * torch.log10(4 / F.mse_loss(p.float(), t.float())),
        "10 log10 4 minus 10 log10 MSE": lambda p, t: 10 * math.log10(4) - 10 * torch.log10(((p - t) ** 2).mean()),
    },
    "laplacian": {
        "grad then one grad per coordinate": lap,
        "sums instead of grad_outputs, stack": lap_sum_trick,
        "columns kept 2-D": lap_columns,
    },
}

WRONG = {
    "init_sine_layer": {
        "omega_0 left out": (init_with(lambda n, m, w0, first: 1 / n if first else math.sqrt(6 / n)), "omega_0 is left out"),
        "omega_0 applied twice": (init_with(lambda n, m, w0, first: 1 / n if first else math.sqrt(6 / n) / w0 ** 2),
                                  "omega_0 twice"),
        "fan-out": (init_with(lambda n, m, w0, first: siren_bound(m, n, w0, first)), "out_features"),
        "hidden rule for the first layer": (init_with(lambda n, m, w0, first: math.sqrt(6 / n) / w0),
                                            "hidden-layer rule"),
        "first layer divided by omega_0": (init_with(lambda n, m, w0, first: 1 / (n * w0) if first else
                                                     math.sqrt(6 / n) / w0), "divided by omega_0"),
        "first rule for every layer": (init_with(lambda n, m, w0, first: 1 / n), "first-layer rule"),
        "multiplied by omega_0": (init_with(lambda n, m, w0, first: 1 / n if first else math.sqrt(6 / n) * w0),
                                  "multiplied by omega_0"),
        "normal with std c": (init_with(siren_bound, draw=lambda w, c: w.normal_(0, c)), "normal distribution"),
        "U(0, c)": (init_with(siren_bound, draw=lambda w, c: w.uniform_(0, c)), "mean 0"),
        "weights never stored": (init_forgot, "did not change"),
        "sqrt(1/n) instead of sqrt(6/n)": (init_with(lambda n, m, w0, first: 1 / n if first else
                                                     math.sqrt(1 / n) / w0), "sqrt(6/n)"),
    },
    "psnr": {
        "peak 1": (lambda p, t: 10 * torch.log10(1 / torch.mean((p - t) ** 2)), "peak is taken as 1"),
        "peak not squared": (lambda p, t: 10 * torch.log10(2 / torch.mean((p - t) ** 2)), "not squared"),
        "RMSE in 10 log10": (lambda p, t: 10 * torch.log10(4 / torch.mean((p - t) ** 2).sqrt()), "root mean squared"),
        "natural log": (lambda p, t: 10 * torch.log(4 / torch.mean((p - t) ** 2)), "natural logarithm"),
        "sign flipped": (lambda p, t: 10 * torch.log10(torch.mean((p - t) ** 2) / 4), "sign is flipped"),
        "sum, not mean": (lambda p, t: 10 * torch.log10(4 / ((p - t) ** 2).sum()), "summed"),
        "absolute error": (lambda p, t: 10 * torch.log10(4 / (p - t).abs().mean()), "absolute"),
        "scikit-image (shortcut)": (psnr_skimage, "switched off"),
        "per pixel": (lambda p, t: 10 * torch.log10(4 / (p - t) ** 2), "one number"),
        "20 log10 of the MSE": (lambda p, t: 20 * torch.log10(2 / torch.mean((p - t) ** 2)), "20 log10"),
    },
    "laplacian": {
        "first derivatives summed": (lambda y, x: torch.autograd.grad(y, x, torch.ones_like(y), create_graph=True)[0]
                                     .sum(1, keepdim=True), "first derivatives are summed"),
        "only the first coordinate": (lambda y, x: lap(y, x, which=[0]), "only d^2f/dx_1^2"),
        "mixed derivatives too": (lap_mixed, "mixed ones included"),
        "no create_graph in the first grad": (lambda y, x: lap(y, x, create_first=False), "create_graph=True"),
        "no create_graph in the second grad": (lambda y, x: lap(y, x, create_second=False), "create_graph=True"),
        "no grad_outputs": (lambda y, x: lap(y, x, grad_outputs=False), "grad_outputs"),
        "shape (n,)": (lambda y, x: lap(y, x)[:, 0], "shape"),
        "detached": (lambda y, x: lap(y, x).detach(), "differentiated again"),
    },
}
