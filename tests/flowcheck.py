"""Brute-force checks shared by the flow tests.

Every layer is checked the same way: move its parameters away from their (often identity)
initial values by a few optimiser steps on non-Gaussian data, switch to eval mode, then in
float64 compare against independent computations:

- every parameter tensor gets a non-zero gradient from the NLL at some step, and moves;
- ``inverse(layer(x))`` recovers ``x``;
- ``log_det`` equals ``slogdet`` of the autograd Jacobian of ``forward``, sample by sample;
- the inverse's ``log_det_inv`` equals ``slogdet`` of the autograd Jacobian of ``inverse`` itself,
  and ``-log_det``;
- where the layer claims a triangular Jacobian (``FlowCase.triangular``), the autograd Jacobian in
  the claimed order is lower triangular and ``log_det`` is the sum of the log of its diagonal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn


@dataclass
class FlowCase:
    """One layer configuration for the shared contract test.

    ``make`` builds the layer (called under float64 default dtype); ``shape`` is the input
    shape of a small batch, e.g. ``(6, 4)`` for vectors or ``(3, 2, 4, 4)`` for images.
    ``inverse_atol`` loosens the round-trip tolerance for iterative inverses.
    ``logdet_atol`` loosens the log-det tolerance for layers whose log-det is iterative.
    ``domain`` maps the test data into the layer's domain (e.g. ``torch.sigmoid`` for a layer
    defined on (0, 1)).
    ``triangular(layer, sample_shape)``, where the layer claims a triangular Jacobian, returns a
    list of ``(map, order)``: ``map`` takes one flattened sample and returns the flattened output,
    and its Jacobian ``J[order][:, order]`` must be lower triangular; the layer's log-det must be
    the sum over the maps of ``sum log|diag|`` (a coupling is one map; an emerging convolution is
    two, a lower and an upper triangular one).
    """

    name: str
    make: Callable[[], nn.Module]
    shape: tuple[int, ...]
    inverse_atol: float = 1e-8
    logdet_atol: float = 1e-8
    train_steps: int = 25
    triangular: Callable | None = None
    domain: Callable | None = None
    extra: dict = field(default_factory=dict)


def non_gaussian_batch(shape, generator=None) -> torch.Tensor:
    """Skewed, heavy-tailed data so that a few likelihood steps move every parameter."""
    g = torch.randn(shape, generator=generator, dtype=torch.float64)
    return 0.7 * g + 0.4 * g**2 - 0.3 + 0.2 * torch.sinh(g)


def perturb(module: nn.Module, std: float = 0.3, seed: int = 0) -> nn.Module:
    """Move every floating parameter away from its initial value (zero last layers included)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(std * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return module


def move_parameters(layer: nn.Module, shape, steps: int = 25, lr: float = 2e-2, seed: int = 0,
                    domain: Callable | None = None) -> set[str]:
    """A few Adam steps of maximum likelihood under a standard-normal latent.

    Returns the names of the parameters that got a non-zero gradient at one step at least."""
    gen = torch.Generator().manual_seed(seed)
    named = [(n, p) for n, p in layer.named_parameters() if p.requires_grad]
    layer.train()
    if not named:
        with torch.no_grad():
            layer((domain or (lambda v: v))(non_gaussian_batch((max(shape[0], 32), *shape[1:]), gen)))
        return set()
    opt = torch.optim.Adam([p for _, p in named], lr=lr)
    got_gradient: set[str] = set()
    for _ in range(steps):
        x = (domain or (lambda v: v))(non_gaussian_batch((max(shape[0], 32), *shape[1:]), gen))
        y, log_det = layer(x)
        log_pz = -0.5 * y.flatten(1).pow(2).sum(1)
        loss = -(log_pz + log_det).mean()
        opt.zero_grad()
        loss.backward()
        got_gradient |= {n for n, p in named if p.grad is not None and p.grad.abs().max() > 0}
        opt.step()
    return got_gradient


def brute_force_log_det(layer: nn.Module, x: torch.Tensor, method: str = "forward") -> torch.Tensor:
    """log|det J| per sample from the full autograd Jacobian of ``layer.forward`` (or of
    ``layer.inverse`` with ``method="inverse"``) and ``slogdet``."""
    fn = getattr(layer, method)
    out = []
    for xi in x:
        def f(v, xi=xi):
            y, _ = fn(v.view(1, *xi.shape))
            return y.reshape(-1)

        J = torch.autograd.functional.jacobian(f, xi.reshape(-1))
        out.append(torch.linalg.slogdet(J).logabsdet)
    return torch.stack(out)


def autograd_jacobian(layer: nn.Module, xi: torch.Tensor) -> torch.Tensor:
    """The Jacobian of one sample, flattened to (D, D)."""
    def f(v):
        y, _ = layer(v.view(1, *xi.shape))
        return y.reshape(-1)

    return torch.autograd.functional.jacobian(f, xi.reshape(-1))


def check_layer(case: FlowCase, seed: int = 0) -> dict:
    """Run the whole contract on one case; returns the measured errors for reporting."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        torch.manual_seed(seed)
        layer = case.make().double()
        initial = {k: v.detach().clone() for k, v in layer.named_parameters()}
        got_gradient = move_parameters(layer, case.shape, steps=case.train_steps, seed=seed, domain=case.domain)
        no_gradient = sorted(set(initial) - got_gradient)
        assert not no_gradient, f"{case.name}: the NLL gives these parameters no gradient: {no_gradient}"
        unmoved = [k for k, v in layer.named_parameters() if torch.equal(v.detach(), initial[k])]
        assert not unmoved, f"{case.name}: training steps did not move {unmoved}"
        layer.eval()
        x = non_gaussian_batch(case.shape, torch.Generator().manual_seed(seed + 1))
        if case.domain is not None:
            x = case.domain(x)
        with torch.no_grad():
            y, log_det = layer(x)
            x_back, log_det_inv = layer.inverse(y)
        assert y.shape[0] == x.shape[0] and y[0].numel() == x[0].numel(), (
            f"{case.name}: output shape {tuple(y.shape)} does not match input shape {tuple(x.shape)}")
        assert x_back.shape == x.shape, f"{case.name}: inverse gives shape {tuple(x_back.shape)}"
        assert log_det.shape == (x.shape[0],), f"{case.name}: log_det shape {tuple(log_det.shape)}"
        inv_err = (x_back - x).abs().max().item()
        assert inv_err < case.inverse_atol, f"{case.name}: inverse(forward(x)) off by {inv_err:.3g}"
        ref = brute_force_log_det(layer, x)
        ld_err = (log_det - ref).abs().max().item()
        assert ld_err < case.logdet_atol, f"{case.name}: log_det off from slogdet by {ld_err:.3g}"
        inv_ld_err = (log_det_inv + log_det).abs().max().item()
        assert inv_ld_err < case.logdet_atol, f"{case.name}: log_det_inv != -log_det by {inv_ld_err:.3g}"
        ref_inv = brute_force_log_det(layer, y, method="inverse")
        inv_ref_err = (log_det_inv - ref_inv).abs().max().item()
        assert inv_ref_err < case.logdet_atol, (
            f"{case.name}: the inverse's log_det_inv is off from slogdet of its own Jacobian by {inv_ref_err:.3g}")
        if case.triangular is not None:
            check_triangular(case, layer, x, log_det)
        return {"parameters": sorted(initial), "inverse_error": inv_err, "log_det_error": ld_err}
    finally:
        torch.set_default_dtype(old)


def check_triangular(case: FlowCase, layer: nn.Module, x: torch.Tensor, log_det: torch.Tensor) -> None:
    """The layer's claimed triangular structure, sample by sample (see ``FlowCase.triangular``)."""
    for i, xi in enumerate(x):
        v, diag_log_sum = xi.reshape(-1), 0.0
        for k, (fn, order) in enumerate(case.triangular(layer, tuple(xi.shape))):
            J = torch.autograd.functional.jacobian(fn, v)[order][:, order]
            above = torch.triu(J, diagonal=1).abs().max().item()
            assert above < 1e-12, f"{case.name}: map {k} is not lower triangular in its order ({above:.3g} above)"
            diag_log_sum = diag_log_sum + torch.log(torch.diagonal(J).abs()).sum()
            with torch.no_grad():
                v = fn(v)
        err = (diag_log_sum - log_det[i]).abs().item()
        assert err < case.logdet_atol, f"{case.name}: log_det differs from sum log|diag J| by {err:.3g}"


def whole_layer(layer: nn.Module, sample_shape: tuple[int, ...]) -> Callable:
    """``layer.forward`` on one flattened sample (for ``FlowCase.triangular``)."""
    return lambda v: layer(v.view(1, *sample_shape))[0].reshape(-1)
