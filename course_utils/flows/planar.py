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

__all__ = ["PlanarFlow", "planar_u_hat", "planar_log_det"]


def planar_u_hat(u: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
    """The planar flow's invertibility reparametrisation, batched: ``u_hat`` with ``w.u_hat > -1``.

        u_hat = u + (m(w.u) - w.u) * w / ||w||^2,    m(a) = -1 + softplus(a)

    so that ``w.u_hat = m(w.u) > -1``. Returns ``u_hat`` and ``1 + w.u_hat = softplus(w.u)``
    (shape ``(...)``), the latter computed directly: ``1 + w.u_hat`` would round to 0 when
    ``w.u`` is very negative. ``||w||^2`` is floored at the smallest positive float, and
    ``w = 0`` (the identity map) gives ``u_hat = u`` and ``1 + w.u_hat = 1``.

    Paper: [2] Rezende and Mohamed, 2015 (appendix A.1).

    Args:
        u, w: the raw parameters, ``(..., features)``.

    Example:
        >>> u_hat, one_plus = planar_u_hat(torch.tensor([-3.0, 0.0]), torch.tensor([1.0, 0.0]))
        >>> u_hat.tolist(), round(one_plus.item(), 4)
        ([-0.9514..., 0.0], 0.0486)
    """
    wu = (w * u).sum(-1)
    w_norm_sq = (w * w).sum(-1)
    one_plus_wu_hat = torch.where(w_norm_sq > 0, F.softplus(wu), torch.ones_like(wu))
    scale = (one_plus_wu_hat - 1 - wu) / w_norm_sq.clamp_min(torch.finfo(w.dtype).tiny)
    return u + scale[..., None] * w, one_plus_wu_hat


def planar_log_det(t: Tensor, one_plus_wu_hat: Tensor) -> Tensor:
    """The planar flow's log-determinant ``log|1 + (w.u_hat) h'(w.x + b)|`` for ``h = tanh``.

        log|det dy/dx| = log(t^2 + (1 + w.u_hat)(1 - t^2)),    t = tanh(w.x + b)

    (the same as ``log(1 + (w.u_hat)(1 - t^2))``, written as a sum of two terms >= 0 to avoid the
    cancellation ``1 - (almost 1)`` when ``w.u_hat`` is close to -1). Broadcasts.

    Paper: [2] Rezende and Mohamed, 2015.

    Args:
        t: ``tanh(w.x + b)``, any shape.
        one_plus_wu_hat: ``1 + w.u_hat``, the second output of :func:`planar_u_hat`.

    Example:
        >>> round(planar_log_det(torch.tensor(0.0), torch.tensor(2.0)).item(), 4)   # log 2
        0.6931
    """
    return torch.log(t**2 + one_plus_wu_hat * (1 - t**2))


class PlanarFlow(FlowLayer):
    """Planar flow with the u-hat reparametrisation that keeps it invertible.

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

    Paper: [2] Rezende and Mohamed, 2015.

    Args:
        features: the vector's length.
        max_iter: the most iterations of the inverse's root solve.

    Example:
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

    def __init__(self, features: int, max_iter: int = 100):
        super().__init__()
        if features < 1 or max_iter < 1:
            raise ValueError(f"PlanarFlow needs features >= 1 and max_iter >= 1, got features={features}, "
                             f"max_iter={max_iter}")
        self.features, self.max_iter = features, max_iter
        # Small random start: w must not be 0 (u_hat divides by ||w||^2).
        self.u = nn.Parameter(0.1 * torch.randn(features))
        self.w = nn.Parameter(torch.randn(features) / features**0.5)
        self.b = nn.Parameter(torch.zeros(()))

    @property
    def u_hat(self) -> Tensor:
        """``u + (m(w.u) - w.u) w / ||w||^2`` with ``m(a) = -1 + softplus(a)`` (see ``planar_u_hat``)."""
        return planar_u_hat(self.u, self.w)[0]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        check_shape(x, (None, self.features), type(self).__name__)
        u_hat, one_plus_wu_hat = planar_u_hat(self.u, self.w)
        t = torch.tanh(x @ self.w + self.b)
        y = x + t[:, None] * u_hat
        return y, planar_log_det(t, one_plus_wu_hat)

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
        check_shape(y, (None, self.features), type(self).__name__)
        u_hat, one_plus_wu_hat = planar_u_hat(self.u, self.w)
        c = y @ self.w
        with torch.no_grad():
            a = self._solve(c.detach(), one_plus_wu_hat.detach())
        # One Newton step with gradients on: same value, and gradients by the implicit function theorem.
        t = torch.tanh(a + self.b)
        a = a - (a + (one_plus_wu_hat - 1) * t - c) / (t**2 + one_plus_wu_hat * (1 - t**2))
        t = torch.tanh(a + self.b)
        x = y - t[:, None] * u_hat
        return x, -planar_log_det(t, one_plus_wu_hat)

    def extra_repr(self) -> str:
        return f"features={self.features}"
