"""Invertible residual networks: ``F(x) = x + g(x)`` with ``Lip(g) < 1``.

Papers: [5] Behrmann, Grathwohl, Chen, Duvenaud & Jacobsen, "Invertible residual networks",
ICML 2019 (spectral normalisation, fixed-point inverse, power-series log-det with Hutchinson's
trace estimator); Chen, Behrmann, Duvenaud & Jacobsen, "Residual flows for invertible generative
modeling", NeurIPS 2019 (LipSwish, the unbiased "Russian roulette" log-det estimator).

Direction as everywhere in ``course_utils.flows``: ``y, log_det = block(x)`` maps data to latent.
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import FlowLayer, check_shape

__all__ = ["InvertibleResBlock", "SpectralNormLinear", "LipSwish", "ELUWithDerivative", "log_det_estimate"]

LOG_DET_METHODS = ("exact", "series", "unbiased")


# ----------------------------------------------------------------------------------------
# 1-Lipschitz activations, with their derivatives (for the exact Jacobian)
# ----------------------------------------------------------------------------------------
class LipSwish(nn.Module):
    """``LipSwish(h) = h * sigmoid(beta * h) / 1.1`` with a learned ``beta = softplus(raw) > 0``.

    The slope of ``h * sigmoid(beta h)`` never exceeds 1.1 (whatever beta), so dividing by 1.1
    makes it 1-Lipschitz (Residual Flows, Chen et al. 2019). Unlike ReLU it is smooth, which the
    log-det's gradient needs.

    >>> [round(v, 4) for v in LipSwish()(torch.tensor([0.0, 20.0])).tolist()]  # ~ h / 1.1 for large h
    [0.0, 18.1818]
    """

    def __init__(self, beta: float = 1.0):
        super().__init__()
        self.raw_beta = nn.Parameter(torch.tensor(math.log(math.expm1(beta))))

    def forward(self, h: Tensor) -> Tensor:
        beta = F.softplus(self.raw_beta)
        return h * torch.sigmoid(beta * h) / 1.1

    def derivative(self, h: Tensor) -> Tensor:
        beta = F.softplus(self.raw_beta)
        s = torch.sigmoid(beta * h)
        return (s + beta * h * s * (1 - s)) / 1.1


class ELUWithDerivative(nn.Module):
    """``nn.ELU`` that also gives its derivative (for the block's exact Jacobian).

        ELU(h) = h for h > 0, exp(h) - 1 otherwise;   ELU'(h) = 1 or exp(h), in (0, 1]: 1-Lipschitz

    Example:
        >>> act = ELUWithDerivative()
        >>> h = torch.tensor([-1.0, 2.0])
        >>> [round(v, 4) for v in act(h).tolist()], [round(v, 4) for v in act.derivative(h).tolist()]
        ([-0.6321, 2.0], [0.3679, 1.0])
    """

    def forward(self, h: Tensor) -> Tensor:
        return F.elu(h)

    def derivative(self, h: Tensor) -> Tensor:
        return torch.where(h > 0, torch.ones_like(h), torch.exp(h.clamp(max=0)))


# ----------------------------------------------------------------------------------------
# Spectral normalisation by power iteration
# ----------------------------------------------------------------------------------------
class SpectralNormLinear(nn.Module):
    """The weight and bias of a linear layer, rescaled so that the spectral norm is at most ``coeff``:

        W_eff = W / max(1, sigma / coeff),   sigma = ||W||_2   (i-ResNet [5]).

    ``n_power_iterations=None`` (default): ``sigma`` is the exact largest singular value
    (``torch.linalg.matrix_norm(W, 2)``, differentiable), so ``||W_eff||_2 <= coeff`` always.

    ``n_power_iterations=n``: as in the papers, ``sigma = u^T W v`` with ``u, v`` tracked by
    power iteration, ``n`` warm-started steps per training forward pass and run to
    convergence whenever the layer is switched to eval mode. Power iteration approaches
    ``||W||_2`` from below, so while training the bound can be exceeded: when an optimiser step
    makes the two largest singular values swap, the warm-started vectors keep tracking the
    smaller one for many steps (a few per cent over ``coeff`` is common).

    In eval mode the map is fixed, so the block is deterministic. ``InvertibleResBlock`` reads
    ``effective_weight()`` and ``bias`` (it needs the weights for its exact Jacobian) and calls
    ``update()`` once per training forward pass.

    >>> layer = SpectralNormLinear(3, 5, coeff=0.9)
    >>> bool(torch.linalg.matrix_norm(layer.effective_weight().detach(), 2) <= 0.9 + 1e-6)
    True
    """

    def __init__(self, in_features: int, out_features: int, coeff: float = 0.9,
                 n_power_iterations: int | None = None):
        super().__init__()
        self.coeff, self.n_power_iterations = coeff, n_power_iterations
        reference = nn.Linear(in_features, out_features)  # PyTorch's usual initialisation
        self.weight = nn.Parameter(reference.weight.detach().clone())
        self.bias = nn.Parameter(reference.bias.detach().clone())
        self.register_buffer("u", F.normalize(torch.randn(out_features), dim=0))
        self.register_buffer("v", F.normalize(torch.randn(in_features), dim=0))
        self.converge()

    @torch.no_grad()
    def power_iteration(self, n: int) -> None:
        """``n`` steps of ``v <- W^T u / |W^T u|``, ``u <- W v / |W v|``."""
        W, u, v = self.weight, self.u.clone(), self.v.clone()
        for _ in range(n):
            v = F.normalize(W.t() @ u, dim=0)
            u = F.normalize(W @ v, dim=0)
        self.u.copy_(u)
        self.v.copy_(v)

    @torch.no_grad()
    def converge(self, max_iter: int = 5000, rtol: float = 1e-13, chunk: int = 10) -> int:
        """Power iteration in chunks of ``chunk`` steps until ``u^T W v`` changes by less than
        ``rtol`` (relative), at most ``max_iter`` steps; returns the number of steps."""
        sigma, steps = self.power_estimate().item(), 0
        while steps < max_iter:
            self.power_iteration(chunk)
            steps += chunk
            new = self.power_estimate().item()
            if abs(new - sigma) <= rtol * abs(new):
                break
            sigma = new
        return steps

    def train(self, mode: bool = True):
        if not mode and self.n_power_iterations is not None:
            self.converge()
        return super().train(mode)

    def power_estimate(self) -> Tensor:
        """``u^T W v``, the power-iteration estimate of ``||W||_2`` (never above it)."""
        # clones: the buffers may be updated in place before backward runs
        return self.u.clone() @ self.weight @ self.v.clone()

    def sigma(self) -> Tensor:
        """The norm used for the rescaling (exact, or the power-iteration estimate)."""
        if self.n_power_iterations is None:
            return torch.linalg.matrix_norm(self.weight, 2)
        return self.power_estimate()

    def effective_weight(self) -> Tensor:
        """The weight actually used, ``W / max(1, sigma / coeff)``, differentiable in ``W``."""
        return self.weight / torch.clamp(self.sigma() / self.coeff, min=1.0)

    def update(self) -> None:
        """The training-time update: ``n_power_iterations`` warm-started power-iteration steps."""
        if self.n_power_iterations is not None:
            self.power_iteration(self.n_power_iterations)

    def extra_repr(self) -> str:
        out_features, in_features = self.weight.shape
        norm = "exact" if self.n_power_iterations is None else f"power iteration x{self.n_power_iterations}"
        return f"{in_features}, {out_features}, coeff={self.coeff}, norm={norm}"



# ----------------------------------------------------------------------------------------
# The block
# ----------------------------------------------------------------------------------------
class InvertibleResBlock(FlowLayer):
    """Invertible residual block (i-ResNet [5]) for vectors ``(batch, features)``:

        y = F(x) = x + g(x),   g = Linear -> act -> Linear -> act -> Linear,

    every linear layer spectrally normalised to ``||W||_2 <= lipschitz < 1`` and ``act``
    1-Lipschitz (LipSwish or ELU), so ``Lip(g) < 1`` and ``F`` is invertible. The norm is exact
    (SVD) by default; ``n_power_iterations=n`` uses the papers' power iteration instead (see
    ``SpectralNormLinear``). ``effective_weights()`` returns the rescaled weights.

    log-det: ``log|det(I + J_g(x))| = sum_{k>=1} (-1)^(k+1) tr(J_g^k) / k`` (converges since
    ``||J_g|| < 1``). ``log_det_method=`` chooses how to compute it:

    - ``"exact"``: ``slogdet(I + J_g)`` with ``J_g`` built from the layers (ground truth; small dims).
    - ``"series"``: the first ``series_terms`` terms, each trace by Hutchinson's estimator
      ``tr(A) ~ v^T A v`` with ``v ~ N(0, I)`` and ``v^T J^k`` by repeated vector-Jacobian
      products (i-ResNet [5]); biased by the truncation, noisy by Hutchinson.
    - ``"unbiased"``: Russian roulette (Residual Flows, Chen et al. 2019): always the first
      ``n_exact_terms`` terms, then a random number of further terms ``m ~ Geometric(roulette_p)``,
      term ``k`` divided by ``P(N >= k)``, so the expectation is the full series.

    Inverse by the fixed-point iteration ``x_{k+1} = y - g(x_k)`` from ``x_0 = y`` (the error
    shrinks by the factor ``Lip(g)`` per step, Banach) until the relative step
    ``max |x_{k+1} - x_k| / (1 + |x_{k+1}|)`` falls below ``inverse_tol`` (1e-10 in float64,
    1e-6 otherwise), at most ``inverse_max_iter`` steps; if it does not converge it warns
    (``RuntimeWarning``) with the iterations and the last step. ``last_inverse_iterations``, ``last_inverse_residuals`` and
    ``last_inverse_converged`` record the last run (to plot the convergence).
    ``inverse`` returns minus the block's log-det (method as above) at the recovered ``x``.

    Example
    -------
    >>> block = InvertibleResBlock(2, hidden=16).eval()
    >>> x = torch.randn(5, 2)
    >>> y, log_det = block(x)
    >>> x_back, _ = block.inverse(y)
    >>> bool((x_back - x).abs().max() < 1e-5), block.last_inverse_converged
    (True, True)
    """

    def __init__(
        self,
        features: int,
        hidden: int = 64,
        lipschitz: float = 0.9,
        log_det_method: str = "exact",
        n_power_iterations: int | None = None,
        series_terms: int = 10,
        n_hutchinson: int = 1,
        activation: str = "lipswish",
        inverse_tol: float | None = None,
        inverse_max_iter: int = 500,
        n_exact_terms: int = 2,
        roulette_p: float = 0.5,
    ):
        super().__init__()
        if not 0 < lipschitz < 1:
            raise ValueError(
                f"lipschitz must lie in (0, 1) for the block to be invertible, got {lipschitz}"
            )
        if log_det_method not in LOG_DET_METHODS:
            raise ValueError(f"log_det_method must be one of {LOG_DET_METHODS}, got {log_det_method!r}")
        if features < 1 or hidden < 1 or series_terms < 1 or n_hutchinson < 1 or inverse_max_iter < 1:
            raise ValueError(f"InvertibleResBlock needs features, hidden, series_terms, n_hutchinson and "
                             f"inverse_max_iter >= 1, got {features}, {hidden}, {series_terms}, {n_hutchinson}, "
                             f"{inverse_max_iter}")
        if activation not in ("lipswish", "elu"):
            raise ValueError(f"activation must be 'lipswish' or 'elu', got {activation!r}")
        if not 0 < roulette_p < 1:
            raise ValueError(f"roulette_p must lie in (0, 1), got {roulette_p}")
        self.features, self.lipschitz, self.log_det_method = features, lipschitz, log_det_method
        self.n_power_iterations, self.series_terms, self.n_hutchinson = n_power_iterations, series_terms, n_hutchinson
        self.inverse_tol, self.inverse_max_iter = inverse_tol, inverse_max_iter
        self.n_exact_terms, self.roulette_p = n_exact_terms, roulette_p
        sizes = [features, hidden, hidden, features]
        self.linears = nn.ModuleList(
            SpectralNormLinear(a, b, lipschitz, n_power_iterations) for a, b in zip(sizes[:-1], sizes[1:])
        )
        act = LipSwish if activation == "lipswish" else ELUWithDerivative
        self.activations = nn.ModuleList(act() for _ in sizes[2:])
        self.last_inverse_iterations = 0
        self.last_inverse_residuals: list[float] = []
        self.last_inverse_converged = True

    def extra_repr(self) -> str:
        return f"{self.features}, lipschitz={self.lipschitz}, log_det_method={self.log_det_method!r}"

    # -- the residual function -----------------------------------------------------------
    def effective_weights(self) -> list[Tensor]:
        """The spectrally normalised weights the block uses now (one per linear layer)."""
        return [layer.effective_weight() for layer in self.linears]

    def g(self, x: Tensor, weights: list[Tensor] | None = None) -> Tensor:
        """The residual ``g(x)`` with the given (or current) effective weights."""
        return self._g(x, weights or self.effective_weights(), jacobian=False)[0]

    def _g(self, x: Tensor, weights: list[Tensor], jacobian: bool) -> tuple[Tensor, Tensor | None]:
        """``g(x)`` and, if asked, its Jacobian ``(batch, features, features)`` by the chain rule:
        ``J = W_3 diag(act'(h_2)) W_2 diag(act'(h_1)) W_1``."""
        h, J = x, None
        for i, (W, layer) in enumerate(zip(weights, self.linears)):
            h = F.linear(h, W, layer.bias)
            if jacobian:
                J = W.expand(x.shape[0], *W.shape) if J is None else torch.einsum("oh,bhd->bod", W, J)
            if i < len(self.activations):
                if jacobian:
                    J = self.activations[i].derivative(h).unsqueeze(-1) * J
                h = self.activations[i](h)
        return h, J

    def _power_iterate_if_training(self) -> None:
        if self.training:
            for layer in self.linears:
                layer.update()

    # -- log-det ---------------------------------------------------------------------------
    def _log_det(self, x: Tensor, weights: list[Tensor], method: str,
                 n_terms: int | None = None, n_samples: int | None = None) -> tuple[Tensor, Tensor]:
        """``(g(x), log_det)``; keeps the graph when gradients are enabled."""
        if method == "exact":
            gx, J = self._g(x, weights, jacobian=True)
            eye = torch.eye(self.features, dtype=x.dtype, device=x.device)
            return gx, torch.linalg.slogdet(eye + J).logabsdet
        if method not in LOG_DET_METHODS:
            raise ValueError(f"method must be one of {LOG_DET_METHODS}, got {method!r}")
        n_samples = n_samples or self.n_hutchinson
        create_graph = torch.is_grad_enabled()
        with torch.enable_grad():
            x_ = x if x.requires_grad else x.detach().requires_grad_()
            # all Hutchinson probes in one batch: row s * batch + i is probe s of sample i
            x_rep = x_.repeat(n_samples, 1) if n_samples > 1 else x_
            g_rep = self._g(x_rep, weights, jacobian=False)[0]
            if method == "series":
                n = n_terms or self.series_terms
                weight = [1.0] * n
            else:  # Russian roulette: N = n_exact + m, P(m >= j) = (1 - p)^j
                n_exact = self.n_exact_terms if n_terms is None else n_terms
                m = int(torch.distributions.Geometric(probs=torch.tensor(self.roulette_p)).sample())
                n = n_exact + m
                q = 1.0 - self.roulette_p
                # term k is kept with probability P(N >= k); dividing by it removes the bias
                weight = [1.0 if k <= n_exact else q ** -(k - n_exact) for k in range(1, n + 1)]
            v = torch.randn_like(x_rep)
            w = v
            estimate = x_rep.new_zeros(x_rep.shape[0])
            for k in range(1, n + 1):
                # w <- w^T J_g (a vector-Jacobian product), so (w . v) = v^T J^k v ~ tr(J^k)
                (w,) = torch.autograd.grad(g_rep, x_rep, w, create_graph=create_graph, retain_graph=True)
                estimate = estimate + (-1) ** (k + 1) * weight[k - 1] * (w * v).sum(1) / k
            log_det = estimate.view(n_samples, x.shape[0]).mean(0)
            gx = g_rep[: x.shape[0]]
        if not create_graph:
            gx, log_det = gx.detach(), log_det.detach()
        return gx, log_det

    # -- the flow ---------------------------------------------------------------------------
    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        check_shape(x, (None, self.features), name="InvertibleResBlock")
        self._power_iterate_if_training()
        gx, log_det = self._log_det(x, self.effective_weights(), self.log_det_method)
        return x + gx, log_det

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        check_shape(y, (None, self.features), name="InvertibleResBlock.inverse")
        weights = self.effective_weights()
        tol = self.inverse_tol or (1e-10 if y.dtype == torch.float64 else 1e-6)
        x, residuals, converged = y, [], False
        for _ in range(self.inverse_max_iter):
            x_new = y - self._g(x, weights, jacobian=False)[0]
            # the step, relative to the size of x (so that float32 round-off on large values
            # does not keep it above the tolerance)
            residuals.append(((x_new - x).abs() / (1 + x_new.abs())).max().item())
            x = x_new
            if residuals[-1] < tol:
                converged = True
                break
        self.last_inverse_iterations, self.last_inverse_residuals = len(residuals), residuals
        self.last_inverse_converged = converged
        if not converged:
            warnings.warn(
                f"InvertibleResBlock.inverse: the fixed-point iteration did not converge in "
                f"{len(residuals)} iterations (last relative step {residuals[-1]:.3g}, tolerance {tol:.3g}); "
                f"raise inverse_max_iter or lower lipschitz",
                RuntimeWarning,
                stacklevel=2,
            )
        _, log_det = self._log_det(x, weights, self.log_det_method)
        return x, -log_det


def log_det_estimate(block: InvertibleResBlock, x: Tensor, method: str = "series",
                    n_terms: int | None = None, n_samples: int = 1) -> Tensor:
    """Estimate ``log|det(I + J_g(x))|`` per sample for an ``InvertibleResBlock``.

    ``method``: ``"exact"`` (slogdet), ``"series"`` (``n_terms`` terms of the power series,
    traces by ``n_samples`` Hutchinson probes) or ``"unbiased"`` (Russian roulette; ``n_terms``
    is then the number of terms always computed). Uses the block's current weights and does
    not update its power iteration; differentiable when gradients are enabled.

    >>> block = InvertibleResBlock(3, hidden=8).eval()
    >>> x = torch.randn(4, 3)
    >>> exact = log_det_estimate(block, x, "exact")
    >>> series = log_det_estimate(block, x, "series", n_terms=20, n_samples=2000)
    >>> bool((exact - series).abs().max() < 0.05)
    True
    """
    check_shape(x, (None, block.features), name="log_det_estimate")
    return block._log_det(x, block.effective_weights(), method, n_terms, n_samples)[1]
