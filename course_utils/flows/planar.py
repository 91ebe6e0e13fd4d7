"""Planar flow [2] (Rezende and Mohamed, 2015): a single-unit residual layer.

Direction. The paper writes the map generatively, ``f(z) = z + u h(w.z + b)``, and pushes
samples of a simple density through it (variational inference). Our contract is
``y, log_det = layer(x)``; ``PlanarFlow.forward`` computes the *same* formula,

    y = x + u_hat * tanh(w.x + b),    log|det dy/dx| = log|1 + (w.u_hat) tanh'(w.x + b)|,

so both readings use it unchanged:

- variational inference (notebook 05): feed ``z_0 ~ q_0`` to ``forward``; then
  ``log q_K(z_K) = log q_0(z_0) - sum_k log_det_k`` (no inverse needed);
- density estimation (data to latent): ``log p(x) = log p_Z(y) + log_det``; sampling then needs
  ``inverse``, which has no closed form but reduces to a 1-D root solve (below).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import FlowLayer, check_shape

__all__ = ["PlanarFlow"]


class PlanarFlow(FlowLayer):
    """Planar flow [2] with the u-hat reparametrisation that keeps it invertible.

        y = x + u_hat * h(w.x + b),   h = tanh
        log|det dy/dx| = log|1 + u_hat . h'(w.x + b) w| = log|1 + (w.u_hat) h'(w.x + b)|

    The map is invertible when ``w.u_hat >= -1``. Whatever the raw parameters ``u``, ``w``, ``b``,

        u_hat = u + (m(w.u) - w.u) * w / ||w||^2,    m(a) = -1 + softplus(a),

    gives ``w.u_hat = m(w.u) > -1``, so ``1 + (w.u_hat) h' > 0`` everywhere.

    Inverse: with ``a = w.x``, taking ``w.`` of the forward map gives the scalar equation
    ``w.y = a + (w.u_hat) tanh(a + b)``, whose right side is strictly increasing in ``a`` and
    within ``|w.u_hat|`` of ``a``. A safeguarded Newton iteration (Newton steps that fall
    outside the bracket ``[w.y - |w.u_hat|, w.y + |w.u_hat|]`` are replaced by bisection) finds
    ``a`` to about 1e-13 in float64; then ``x = y - u_hat tanh(a + b)``.

    Example
    -------
    >>> layer = PlanarFlow(2)
    >>> with torch.no_grad():
    ...     _ = layer.w.copy_(torch.tensor([1.0, 0.0])), layer.u.copy_(torch.tensor([-3.0, 0.0]))
    >>> round((layer.w @ layer.u_hat).item(), 4)     # raw w.u = -3, but w.u_hat = m(-3) > -1
    -0.9514
    >>> x = torch.randn(5, 2)
    >>> y, log_det = layer(x)
    >>> torch.allclose(layer.inverse(y)[0], x, atol=1e-5)
    True
    """

    def __init__(self, dim: int, max_iter: int = 100):
        super().__init__()
        self.dim, self.max_iter = dim, max_iter
        # Small random start: w must not be 0 (u_hat divides by ||w||^2).
        self.u = nn.Parameter(0.1 * torch.randn(dim))
        self.w = nn.Parameter(torch.randn(dim) / dim**0.5)
        self.b = nn.Parameter(torch.zeros(()))

    @property
    def u_hat(self) -> Tensor:
        """``u + (m(w.u) - w.u) w / ||w||^2`` with ``m(a) = -1 + softplus(a)``."""
        wu = self.w @ self.u
        m = -1 + F.softplus(wu)
        w_norm_sq = (self.w @ self.w).clamp_min(torch.finfo(self.w.dtype).tiny)
        return self.u + (m - wu) * self.w / w_norm_sq

    def _one_plus_wu_hat(self) -> Tensor:
        """``1 + w.u_hat = softplus(w.u) > 0``, computed directly: ``1 + (w @ u_hat)`` would round
        to 0 or below when ``w.u`` is very negative (``w.u_hat`` within 1e-16 of -1)."""
        wu = self.w @ self.u
        return torch.where(self.w @ self.w > 0, F.softplus(wu), torch.ones_like(wu))  # w = 0: identity map

    @staticmethod
    def _log_det(t: Tensor, one_plus_wu_hat: Tensor) -> Tensor:
        # 1 + w.u_hat (1 - t^2) written as t^2 + (1 + w.u_hat)(1 - t^2): both terms >= 0,
        # which avoids the cancellation 1 - (almost 1) when w.u_hat is close to -1.
        return torch.log(t**2 + one_plus_wu_hat * (1 - t**2))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        check_shape(x, (None, self.dim), type(self).__name__)
        u_hat = self.u_hat
        t = torch.tanh(x @ self.w + self.b)
        y = x + t[:, None] * u_hat
        return y, self._log_det(t, self._one_plus_wu_hat())

    def _solve(self, c: Tensor, one_plus_wu_hat: Tensor) -> Tensor:
        """Solve ``a + (w.u_hat) tanh(a + b) = c`` for ``a``, element-wise (no gradient).

        Safeguarded Newton: a Newton step is taken only if it stays inside the bracket and is
        less than half the previous step; otherwise bisect. This rules out the 2-cycles plain
        Newton falls into on the flat parts of tanh when ``|w.u_hat|`` is large."""
        b = self.b.detach()
        wu_hat = one_plus_wu_hat - 1
        spread = wu_hat.abs()
        lo, hi = c - spread, c + spread
        a = c.clone()
        last_step = 2 * spread.expand_as(c)
        tol = 100 * torch.finfo(c.dtype).eps
        for _ in range(self.max_iter):
            t = torch.tanh(a + b)
            g = a + wu_hat * t - c
            lo = torch.where(g < 0, a, lo)
            hi = torch.where(g > 0, a, hi)
            slope = t**2 + one_plus_wu_hat * (1 - t**2)
            newton = a - g / slope
            use_newton = (newton >= lo) & (newton <= hi) & ((newton - a).abs() <= 0.5 * last_step)
            a_new = torch.where(use_newton, newton, (lo + hi) / 2)   # nan/inf steps fail the test
            last_step = (a_new - a).abs()
            a = a_new
            if (last_step <= tol * (1 + a.abs())).all():
                break
        return a

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        check_shape(y, (None, self.dim), type(self).__name__)
        u_hat, one_plus_wu_hat = self.u_hat, self._one_plus_wu_hat()
        c = y @ self.w
        with torch.no_grad():
            a = self._solve(c.detach(), one_plus_wu_hat.detach())
        # One Newton step with gradients on: same value, and gradients by the implicit function theorem.
        t = torch.tanh(a + self.b)
        a = a - (a + (one_plus_wu_hat - 1) * t - c) / (t**2 + one_plus_wu_hat * (1 - t**2))
        t = torch.tanh(a + self.b)
        x = y - t[:, None] * u_hat
        return x, -self._log_det(t, one_plus_wu_hat)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
