"""Invertible residual networks: ``F(x) = x + g(x)`` with ``Lip(g) < 1``.

Papers: [5] Behrmann, Grathwohl, Chen, Duvenaud & Jacobsen, "Invertible residual networks",
ICML 2019 (spectral normalisation, fixed-point inverse, power-series log-det with Hutchinson's
trace estimator); Chen, Behrmann, Duvenaud & Jacobsen, "Residual flows for invertible generative
modeling", NeurIPS 2019 (LipSwish, the unbiased "Russian roulette" log-det estimator).

Direction as everywhere in ``course_utils.flows``: ``y, log_det = block(x)`` maps data to latent.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import FlowLayer, check_shape

__all__ = ["InvertibleResBlock", "SpectralNormLinear", "LipSwish", "ELUWithDerivative", "log_det_estimate",
           "hutchinson_probes", "using_log_det"]

LOG_DET_METHODS = ("exact", "series", "unbiased")
PROBES = ("gaussian", "rademacher")


def hutchinson_probes(like: Tensor, kind: str = "gaussian") -> Tensor:
    """Random probe vectors ``v`` with ``E[v v^T] = I``, one per row, for ``tr(A) ~ v^T A v``.

        gaussian:   v ~ N(0, I),               Var(v^T A v) = 2 ||A_s||_F^2
        rademacher: v_i = +-1 with prob. 1/2,  Var(v^T A v) = 2 (||A_s||_F^2 - sum_i A_ii^2)

    with ``A_s = (A + A^T) / 2``: Rademacher probes (Hutchinson's own choice) never have the
    larger variance. Paper: [5] Behrmann et al., 2019 (Gaussian probes); Hutchinson, 1990.

    Args:
        like: a tensor whose shape, dtype and device the probes take.
        kind: ``"gaussian"`` or ``"rademacher"``.

    Example:
        >>> v = hutchinson_probes(torch.zeros(100_000, 2), "rademacher")
        >>> sorted(set(v.flatten().tolist())), round((v.T @ v / len(v)).trace().item())
        ([-1.0, 1.0], 2)
    """
    if kind == "gaussian":
        return torch.randn_like(like)
    if kind == "rademacher":
        return torch.randint_like(like, 2) * 2 - 1
    raise ValueError(f"probe must be one of {PROBES}, got {kind!r}")


# ----------------------------------------------------------------------------------------
# 1-Lipschitz activations, with their derivatives (for the exact Jacobian)
# ----------------------------------------------------------------------------------------
class LipSwish(nn.Module):
    """The 1-Lipschitz smooth activation of Residual Flows, with its derivative.

        LipSwish(h) = h * sigmoid(beta * h) / 1.1,   beta = softplus(raw_beta) > 0

    The slope of ``h * sigmoid(beta h)`` never exceeds 1.1 (whatever beta), so dividing by 1.1
    makes it 1-Lipschitz. Unlike ReLU it is smooth, which the log-det's gradient needs.

    Paper: [5] Behrmann et al., 2019 (i-ResNet); LipSwish is from Residual Flows (Chen et al., 2019).

    Args:
        beta: the initial ``beta`` (learned).

    Example:
        >>> [round(v, 4) for v in LipSwish()(torch.tensor([0.0, 20.0])).tolist()]  # ~ h / 1.1 for large h
        [0.0, 18.1818]
    """

    def __init__(self, beta: float = 1.0):
        super().__init__()
        self.raw_beta = nn.Parameter(torch.tensor(math.log(math.expm1(beta))))

    def forward(self, h: Tensor) -> Tensor:
        return h * torch.sigmoid(F.softplus(self.raw_beta) * h) / 1.1

    def derivative(self, h: Tensor) -> Tensor:
        """``(s + beta h s (1 - s)) / 1.1`` with ``s = sigmoid(beta h)``."""
        return self.value_and_derivative(h)[1]

    def value_and_derivative(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """Both at once (one sigmoid), for the exact Jacobian."""
        beta = F.softplus(self.raw_beta)
        s = torch.sigmoid(beta * h)
        hs = h * s
        return hs / 1.1, (s + beta * hs * (1 - s)) / 1.1


class ELUWithDerivative(nn.Module):
    """``nn.ELU`` that also gives its derivative (for the block's exact Jacobian).

        ELU(h) = h for h > 0, exp(h) - 1 otherwise;   ELU'(h) = exp(min(h, 0)), in (0, 1]

    so it is 1-Lipschitz. Paper: [5] Behrmann et al., 2019 (their activation for 2-D data).

    Args:
        none.

    Example:
        >>> act = ELUWithDerivative()
        >>> h = torch.tensor([-1.0, 2.0])
        >>> [round(v, 4) for v in act(h).tolist()], [round(v, 4) for v in act.derivative(h).tolist()]
        ([-0.6321, 2.0], [0.3679, 1.0])
    """

    def forward(self, h: Tensor) -> Tensor:
        return F.elu(h)

    def derivative(self, h: Tensor) -> Tensor:
        """``exp(min(h, 0))``: 1 for ``h > 0``, ``exp(h)`` otherwise."""
        return torch.exp(h.clamp(max=0))

    def value_and_derivative(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """Both at once: ``ELU'(h) = 1 + min(ELU(h), 0)``."""
        out = F.elu(h)
        return out, 1 + out.clamp(max=0)


# ----------------------------------------------------------------------------------------
# Spectral normalisation by power iteration
# ----------------------------------------------------------------------------------------
class SpectralNormLinear(nn.Module):
    """A linear layer whose weight is rescaled to spectral norm at most ``coeff``.

        W_eff = W / max(1, sigma / coeff),   sigma = ||W||_2,   y = W_eff x + b

    ``n_power_iterations=None`` (default): ``sigma`` is the exact largest singular value
    (``torch.linalg.matrix_norm(W, 2)``, differentiable), so ``||W_eff||_2 <= coeff`` always.

    ``n_power_iterations=n``: as in the papers, ``sigma = u^T W v`` with ``u, v`` tracked by
    power iteration (``v <- W^T u / |W^T u|``, ``u <- W v / |W v|``), ``n`` warm-started steps
    per training forward pass and run to convergence whenever the layer is switched to eval
    mode. Power iteration approaches ``||W||_2`` from below (``u^T W v <= ||W||_2`` for unit
    vectors), so while training the bound can be exceeded: when an optimiser step makes the two
    largest singular values swap, the warm-started vectors keep tracking the smaller one for
    many steps (a few per cent over ``coeff`` is common).

    In eval mode the map is fixed, so the block is deterministic. ``InvertibleResBlock`` reads
    ``effective_weight()`` and ``bias`` (it needs the weights for its exact Jacobian) and calls
    ``update()`` once per training forward pass.

    Paper: [5] Behrmann et al., 2019.

    Args:
        in_features, out_features: the sizes of the linear map.
        coeff: the bound ``c`` on the spectral norm.
        n_power_iterations: ``None`` for the exact norm, or power-iteration steps per training pass.

    Example:
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
        """``n`` steps of ``v <- W^T u / |W^T u|``, ``u <- W v / |W v|`` (warm-started)."""
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

    def forward(self, x: Tensor) -> Tensor:
        """``x W_eff^T + b`` (no power-iteration update: ``InvertibleResBlock`` does that)."""
        return F.linear(x, self.effective_weight(), self.bias)

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
    """Invertible residual block (i-ResNet) for vectors ``(batch, features)``.

        y = F(x) = x + g(x),   g = Linear -> act -> Linear -> act -> Linear,
        log|det(I + J_g(x))| = sum_{k>=1} (-1)^(k+1) tr(J_g^k) / k

    Every linear layer is spectrally normalised to ``||W||_2 <= lipschitz < 1`` and ``act`` is
    1-Lipschitz (LipSwish or ELU), so ``Lip(g) <= lipschitz_bound() < 1`` and ``F`` is
    invertible. The norm is exact (SVD) by default; ``n_power_iterations=n`` uses the papers'
    power iteration instead (see ``SpectralNormLinear``). ``effective_weights()`` returns the
    rescaled weights, ``jacobian(x)`` the exact ``J_g`` per sample.

    The series converges since ``||J_g|| < 1``. ``log_det_method=`` chooses how to compute it:

    - ``"exact"``: ``slogdet(I + J_g)`` with ``J_g`` built from the layers (ground truth; small dims).
    - ``"series"``: the first ``series_terms`` terms, each trace by Hutchinson's estimator
      ``tr(A) ~ v^T A v`` with ``v ~ N(0, I)`` (``n_hutchinson`` probes) and ``v^T J^k`` by
      repeated vector-Jacobian products; biased by the truncation, noisy by Hutchinson.
    - ``"unbiased"``: Russian roulette (Residual Flows): always the first ``n_exact_terms``
      terms, then a random number of further terms ``m ~ Geometric(roulette_p)`` (one draw per
      call, shared by the batch), term ``k`` divided by ``P(N >= k)``, so that the expectation
      is the full series.

    Inverse by the fixed-point iteration ``x_{k+1} = y - g(x_k)`` from ``x_0 = y`` (the error
    shrinks by the factor ``Lip(g)`` per step, Banach) until the relative step
    ``max |x_{k+1} - x_k| / (1 + |x_{k+1}|)`` falls below ``inverse_tol`` (1e-10 in float64,
    1e-6 otherwise), at most ``inverse_max_iter`` steps; if it does not converge it warns
    (``RuntimeWarning``) with the iterations and the last step. ``last_inverse_iterations``,
    ``last_inverse_residuals`` and ``last_inverse_converged`` record the last run (to plot the
    convergence). ``inverse`` returns minus the block's log-det (method as above) at the
    recovered ``x``.

    Paper: [5] Behrmann et al., 2019; the unbiased estimator and LipSwish from Residual Flows
    (Chen et al., 2019).

    Args:
        features: size of the input vectors.
        hidden: width of the two hidden layers of ``g``.
        lipschitz: the spectral-norm bound ``c`` of every linear layer, in (0, 1).
        log_det_method: ``"exact"``, ``"series"`` or ``"unbiased"`` (above).
        n_power_iterations: ``None`` (exact norm) or power-iteration steps per training pass.
        series_terms, n_hutchinson: terms and probes of the ``"series"`` estimator.
        activation: ``"lipswish"`` or ``"elu"``.
        inverse_tol, inverse_max_iter: stopping rule of the fixed-point inverse.
        n_exact_terms, roulette_p: the terms always computed and the stopping probability of
            the ``"unbiased"`` estimator.

    Example:
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
        probe: str = "gaussian",
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
        if probe not in PROBES:
            raise ValueError(f"probe must be one of {PROBES}, got {probe!r}")
        self.features, self.lipschitz, self.log_det_method = features, lipschitz, log_det_method
        self.n_power_iterations, self.series_terms, self.n_hutchinson = n_power_iterations, series_terms, n_hutchinson
        self.inverse_tol, self.inverse_max_iter = inverse_tol, inverse_max_iter
        self.n_exact_terms, self.roulette_p, self.probe = n_exact_terms, roulette_p, probe
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

    def lipschitz_bound(self) -> float:
        """``prod_i ||W_eff,i||_2`` (exact norms): a bound on ``Lip(g)``, since the activations
        are 1-Lipschitz. At most ``lipschitz ** 3``."""
        with torch.no_grad():
            return math.prod(torch.linalg.matrix_norm(W, 2).item() for W in self.effective_weights())

    def g(self, x: Tensor, weights: list[Tensor] | None = None) -> Tensor:
        """The residual ``g(x)`` with the given (or current) effective weights."""
        return self._g(x, weights or self.effective_weights(), jacobian=False)[0]

    def jacobian(self, x: Tensor) -> Tensor:
        """The exact Jacobian ``J_g(x)`` per sample, ``(batch, features, features)``, by the chain
        rule ``J_g = W_3 diag(act'(h_2)) W_2 diag(act'(h_1)) W_1``."""
        check_shape(x, (None, self.features), name="InvertibleResBlock.jacobian")
        return self._g(x, self.effective_weights(), jacobian=True)[1].transpose(1, 2)

    def _g(self, x: Tensor, weights: list[Tensor], jacobian: bool) -> tuple[Tensor, Tensor | None]:
        """``g(x)`` and, if asked, the *transposed* Jacobian ``J_g^T`` ``(batch, features, features)``.

        ``J^T = W_1^T diag(act'(h_1)) W_2^T diag(act'(h_2)) W_3^T`` is built from the left, so
        that each product is one matrix multiply of a ``(batch * features, width)`` block."""
        h, Jt = x, None
        last = len(self.activations)
        for i, (W, layer) in enumerate(zip(weights, self.linears)):
            h = F.linear(h, W, layer.bias)
            if jacobian:
                Jt = W.t() if Jt is None else Jt @ W.t()        # (features, width) or (batch, features, width)
            if i < last:
                if jacobian:
                    h, slope = self.activations[i].value_and_derivative(h)
                    Jt = Jt * slope.unsqueeze(1)
                else:
                    h = self.activations[i](h)
        return h, Jt

    def _power_iterate_if_training(self) -> None:
        if self.training:
            for layer in self.linears:
                layer.update()

    # -- log-det ---------------------------------------------------------------------------
    def _log_det(self, x: Tensor, weights: list[Tensor], method: str,
                 n_terms: int | None = None, n_samples: int | None = None) -> tuple[Tensor, Tensor]:
        """``(g(x), log_det)``; keeps the graph when gradients are enabled."""
        if method == "exact":
            gx, Jt = self._g(x, weights, jacobian=True)
            eye = torch.eye(self.features, dtype=x.dtype, device=x.device)
            return gx, torch.linalg.slogdet(eye + Jt).logabsdet      # det(I + J^T) = det(I + J)
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
            v = hutchinson_probes(x_rep, self.probe)
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

        series:   sum_{k=1}^{n_terms} (-1)^(k+1) v^T J_g^k v / k,   v ~ N(0, I), averaged over n_samples probes
        unbiased: the same with a random number of terms, term k divided by P(N >= k)

    Uses the block's current weights and does not update its power iteration; differentiable
    when gradients are enabled. Paper: [5] Behrmann et al., 2019 (series); Residual Flows,
    Chen et al., 2019 (unbiased).

    Args:
        block: the block.
        x: points ``(batch, features)``.
        method: ``"exact"`` (slogdet), ``"series"`` or ``"unbiased"``.
        n_terms: terms of the series (for ``"unbiased"``: the terms always computed); ``None``
            takes the block's setting.
        n_samples: Hutchinson probes per point (averaged).

    Example:
        >>> block = InvertibleResBlock(3, hidden=8).eval()
        >>> x = torch.randn(4, 3)
        >>> exact = log_det_estimate(block, x, "exact")
        >>> series = log_det_estimate(block, x, "series", n_terms=20, n_samples=2000)
        >>> bool((exact - series).abs().max() < 0.05)
        True
    """
    check_shape(x, (None, block.features), name="log_det_estimate")
    return block._log_det(x, block.effective_weights(), method, n_terms, n_samples)[1]


@contextlib.contextmanager
def using_log_det(model: nn.Module, method: str) -> Iterator[nn.Module]:
    """Temporarily set ``log_det_method`` of every ``InvertibleResBlock`` inside ``model``.

        with using_log_det(model, "exact"): ...   # e.g. evaluate a model trained with an estimator

    The previous methods are restored on exit. Paper: [5] Behrmann et al., 2019 (they, too,
    train with the estimator and evaluate with more terms).

    Args:
        model: any module (a block, a ``NormalizingFlow`` of blocks and other layers).
        method: ``"exact"``, ``"series"`` or ``"unbiased"``.

    Example:
        >>> block = InvertibleResBlock(2, hidden=8, log_det_method="unbiased")
        >>> with using_log_det(block, "exact"):
        ...     print(block.log_det_method)
        exact
        >>> block.log_det_method
        'unbiased'
    """
    if method not in LOG_DET_METHODS:
        raise ValueError(f"method must be one of {LOG_DET_METHODS}, got {method!r}")
    blocks = [m for m in model.modules() if isinstance(m, InvertibleResBlock)]
    saved = [b.log_det_method for b in blocks]
    for b in blocks:
        b.log_det_method = method
    try:
        yield model
    finally:
        for b, old in zip(blocks, saved):
            b.log_det_method = old
