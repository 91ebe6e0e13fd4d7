"""Variational inference with planar flows [2] (Rezende and Mohamed, 2015): the paper's four 2-D
energy functions, the reverse-KL loss, and a batch of independent planar flows trained together.

Target densities are known up to a constant, ``p(z) = exp(-U(z)) / Z``. A flow pushes samples of
``q_0 = N(0, I)`` forward, ``z_K = f_K o ... o f_1(z_0)``, and by the change of variables

    log q_K(z_K) = log q_0(z_0) - sum_k log|det df_k/dz_{k-1}|.

Variational inference minimises the reverse Kullback-Leibler divergence, which needs samples of
``q`` only (never of ``p``) and not ``Z``:

    KL(q_K || p) = E_{z_0 ~ q_0}[ log q_K(z_K) + U(z_K) ] + log Z.

The expectation (the "free energy", a Monte Carlo average) is the loss; ``log_partition`` gives
``log Z`` by quadrature on a grid, so a notebook can report the KL itself, in nats.

The energies (``w_1(z) = sin(2 pi z_1 / 4)``, ``w_2(z) = 3 exp(-((z_1 - 1)/0.6)^2 / 2)``,
``w_3(z) = 3 sigmoid((z_1 - 1)/0.3)``):

    U1(z) = ((|z| - 2)/0.4)^2 / 2 - log(exp(-((z_1 - 2)/0.6)^2 / 2) + exp(-((z_1 + 2)/0.6)^2 / 2))
    U2(z) = ((z_2 - w_1)/0.4)^2 / 2
    U3(z) = -log(exp(-((z_2 - w_1)/0.35)^2 / 2) + exp(-((z_2 - w_1 + w_2)/0.35)^2 / 2))
    U4(z) = -log(exp(-((z_2 - w_1)/0.4)^2 / 2) + exp(-((z_2 - w_1 + w_3)/0.35)^2 / 2))

As printed, U2, U3 and U4 do not depend on how far ``z_1`` goes: ``exp(-U)`` has infinite mass,
there is no ``Z``, and the reverse KL has no minimum (``q`` could spread along ``z_1`` for ever).
The paper shows them in the box ``[-4, 4]^2``; we add a soft wall outside ``|z_1| > 4``,

    wall(z) = ((|z_1| - 4)_+ / 0.2)^2 / 2,

which changes nothing inside the box and makes every density proper (``wall=False`` gives the
formulas as printed).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import FlowSequential, check_shape, standard_normal_log_prob
from .planar import PlanarFlow, planar_log_det, planar_u_hat

__all__ = ["ENERGIES", "energy", "U1", "U2", "U3", "U4", "log_partition", "reverse_kl_loss",
           "PlanarStack", "annealed_batches"]

WALL_AT, WALL_WIDTH = 4.0, 0.2


def _w1(z1: Tensor) -> Tensor:
    return torch.sin(2 * math.pi * z1 / 4)


def _w2(z1: Tensor) -> Tensor:
    return 3 * torch.exp(-0.5 * ((z1 - 1) / 0.6) ** 2)


def _w3(z1: Tensor) -> Tensor:
    return 3 * torch.sigmoid((z1 - 1) / 0.3)


def _check(z: Tensor) -> tuple[Tensor, Tensor]:
    if z.shape[-1] != 2:
        raise ValueError(f"the energies are defined on R^2: expected shape (..., 2), got {tuple(z.shape)}")
    return z[..., 0], z[..., 1]


def _wall(z1: Tensor) -> Tensor:
    return 0.5 * (F.relu(z1.abs() - WALL_AT) / WALL_WIDTH) ** 2


def _log_two_bumps(a: Tensor, b: Tensor) -> Tensor:
    """``log(exp(-a^2/2) + exp(-b^2/2))`` without underflow."""
    return torch.logaddexp(-0.5 * a**2, -0.5 * b**2)


def U1(z: Tensor) -> Tensor:
    """The energy U1: a ring of radius 2 with two modes at ``z_1 = +-2``, ``(..., 2) -> (...)``.

        U1(z) = ((|z| - 2)/0.4)^2 / 2 - log(exp(-((z_1 - 2)/0.6)^2 / 2) + exp(-((z_1 + 2)/0.6)^2 / 2))

    No wall: the ring confines ``z`` already.

    Paper: [2] Rezende and Mohamed, 2015 (table 1).

    Example:
        >>> U1(torch.tensor([[2.0, 0.0], [0.0, 2.0], [0.0, 0.0]])).argsort().tolist()   # mode, ring, centre
        [0, 1, 2]
    """
    z1, _ = _check(z)
    ring = 0.5 * ((z.norm(dim=-1) - 2) / 0.4) ** 2
    return ring - _log_two_bumps((z1 - 2) / 0.6, (z1 + 2) / 0.6)


def U2(z: Tensor, wall: bool = True) -> Tensor:
    """The energy U2: a sine-shaped ridge ``z_2 = w_1(z_1)``, ``(..., 2) -> (...)``.

        U2(z) = ((z_2 - w_1(z_1))/0.4)^2 / 2 + wall(z),   w_1(z) = sin(2 pi z_1 / 4)

    Paper: [2] Rezende and Mohamed, 2015 (table 1); the wall is ours (see the module's text).

    Args:
        z: points ``(..., 2)``.
        wall: add ``wall(z) = ((|z_1| - 4)_+ / 0.2)^2 / 2``, which makes ``exp(-U)`` integrable.

    Example:
        >>> on_ridge = torch.tensor([[1.0, 1.0], [5.0, 1.0]])         # w_1(1) = w_1(5) = 1
        >>> U2(on_ridge).round(decimals=4), U2(on_ridge, wall=False).round(decimals=4)
        (tensor([ 0.0000, 12.5000]), tensor([0., 0.]))
    """
    z1, z2 = _check(z)
    u = 0.5 * ((z2 - _w1(z1)) / 0.4) ** 2
    return u + _wall(z1) if wall else u


def U3(z: Tensor, wall: bool = True) -> Tensor:
    """The energy U3: the sine ridge, and a second one that splits off around ``z_1 = 1``.

        U3(z) = -log(exp(-((z_2 - w_1)/0.35)^2 / 2) + exp(-((z_2 - w_1 + w_2)/0.35)^2 / 2)) + wall(z),
        w_2(z) = 3 exp(-((z_1 - 1)/0.6)^2 / 2)

    Paper: [2] Rezende and Mohamed, 2015 (table 1); the wall is ours (see the module's text).

    Example:
        >>> U3(torch.tensor([[1.0, 1.0], [1.0, -2.0], [1.0, 0.0]])) < 0.01   # two ridges, a gap
        tensor([ True,  True, False])
    """
    z1, z2 = _check(z)
    w1 = _w1(z1)
    u = -_log_two_bumps((z2 - w1) / 0.35, (z2 - w1 + _w2(z1)) / 0.35)
    return u + _wall(z1) if wall else u


def U4(z: Tensor, wall: bool = True) -> Tensor:
    """The energy U4: the sine ridge, and a second one shifted down by a smooth step at ``z_1 = 1``.

        U4(z) = -log(exp(-((z_2 - w_1)/0.4)^2 / 2) + exp(-((z_2 - w_1 + w_3)/0.35)^2 / 2)) + wall(z),
        w_3(z) = 3 sigmoid((z_1 - 1)/0.3)

    Paper: [2] Rezende and Mohamed, 2015 (table 1); the wall is ours (see the module's text).

    Example:
        >>> U4(torch.tensor([[1.0, 1.0], [1.0, -0.5], [1.0, 3.0]])) < 0.01   # w_3(1) = 1.5
        tensor([ True,  True, False])
    """
    z1, z2 = _check(z)
    w1 = _w1(z1)
    a = (z2 - w1) / 0.4
    b = (z2 - w1 + _w3(z1)) / 0.35
    u = -_log_two_bumps(a, b)
    return u + _wall(z1) if wall else u


#: the four energies by name, in the paper's order
ENERGIES: dict[str, Callable[..., Tensor]] = {"U1": U1, "U2": U2, "U3": U3, "U4": U4}


def energy(name: str) -> Callable[[Tensor], Tensor]:
    """The energy function called ``name`` (``"U1"`` .. ``"U4"``), from :data:`ENERGIES`.

    Paper: [2] Rezende and Mohamed, 2015 (table 1).

    Example:
        >>> energy("U3") is U3
        True
        >>> round(energy("U2")(torch.tensor([[0.0, 0.0]])).item(), 4)
        0.0
    """
    try:
        return ENERGIES[name]
    except KeyError:
        raise ValueError(f"unknown energy {name!r}; expected one of {', '.join(ENERGIES)}") from None


@torch.no_grad()
def log_partition(U: Callable[[Tensor], Tensor], bound: float = 6.0, n: int = 600) -> float:
    """The log normalising constant of ``exp(-U)``, by the midpoint rule on an ``n x n`` grid, in float64.

        log Z = log int exp(-U(z)) dz  ~  log sum_ij exp(-U(z_ij)) h^2,   h = 2 bound / n

    With the wall, ``exp(-U)`` is below ``1e-40`` outside ``[-6, 6]^2`` for all four energies, and
    the grid spacing (0.02) is far below their narrowest width (0.35), so the result is good to
    about 1e-6.

    Args:
        U: an energy, ``(m, 2) -> (m,)``.
        bound: the grid covers ``[-bound, bound]^2``.
        n: grid points per axis.

    Example:
        >>> round(log_partition(lambda z: 0.5 * (z**2).sum(-1)), 6) == round(math.log(2 * math.pi), 6)
        True
    """
    h = 2 * bound / n
    t = -bound + h * (torch.arange(n, dtype=torch.float64) + 0.5)
    g1, g2 = torch.meshgrid(t, t, indexing="ij")
    z = torch.stack([g1, g2], dim=-1).reshape(-1, 2)
    return (torch.logsumexp(-U(z).to(torch.float64), dim=0) + 2 * math.log(h)).item()


def reverse_kl_loss(flow: nn.Module, U, z0: Tensor, beta: float = 1.0) -> Tensor:
    """The reverse-KL loss (free energy) of a flow from ``N(0, I)``, as a Monte Carlo mean.

        loss = (1/N) sum_i [log q_K(z_K,i) + beta U(z_K,i)],   log q_K(z_K) = log N(z_0; 0, I) - log_det

    At ``beta = 1`` it estimates ``KL(q_K || p) - log Z``. ``beta < 1`` flattens the target (the
    paper anneals ``beta`` from 0.01 to 1 so that ``q`` does not lock onto one mode early).

    Batches of independent models: with ``z0`` of shape ``(M, N, 2)``, ``U`` a list of ``M``
    energies and ``flow`` a ``PlanarStack``, it returns the **sum** over models of their losses,
    so every model gets exactly its own gradient.

    Paper: [2] Rezende and Mohamed, 2015 (the free energy and its annealing).

    Args:
        flow: returns ``(z_K, log_det)`` with ``log_det = sum_k log|det df_k|`` (the contract of
            every flow layer, e.g. a ``FlowSequential`` of ``PlanarFlow``).
        U: an energy, or a list of ``M`` energies for a ``PlanarStack``.
        z0: samples of ``N(0, I)``, ``(N, 2)`` or ``(M, N, 2)``.
        beta: the inverse temperature.

    Example:
        >>> identity = FlowSequential()                    # q_K = q_0 = N(0, I)
        >>> gauss = lambda z: 0.5 * (z**2).sum(-1)         # p = N(0, I) as well, Z = 2 pi
        >>> loss = reverse_kl_loss(identity, gauss, torch.randn(64, 2))
        >>> abs(loss.item() + log_partition(gauss)) < 1e-4   # KL(q || p) = loss + log Z = 0
        True
        >>> reverse_kl_loss(FlowSequential(PlanarFlow(2)), U1, torch.randn(64, 2)).shape
        torch.Size([])
    """
    z, log_det = flow(z0)
    log_q = standard_normal_log_prob(z0) - log_det
    if z0.dim() == 3:
        if not isinstance(U, Sequence) or len(U) != z0.shape[0]:
            raise ValueError(f"z0 of shape {tuple(z0.shape)} holds {z0.shape[0]} models: pass a list of "
                             f"{z0.shape[0]} energies, got {U!r}")
        energies = torch.stack([Um(zm) for Um, zm in zip(U, z)])
        return (log_q + beta * energies).mean(dim=1).sum()
    if z0.dim() != 2:
        raise ValueError(f"z0 must have shape (N, dim) or (models, N, dim), got {tuple(z0.shape)}")
    return (log_q + beta * U(z)).mean()


class PlanarStack(nn.Module):
    """``models`` independent flows of ``K`` planar layers each, run as one batched module.

        z_k[m] = z_{k-1}[m] + u_hat[k, m] tanh(w[k, m].z_{k-1}[m] + b[k, m]),
        log_det[m] = sum_k planar_log_det(t_k[m], 1 + w[k, m].u_hat[k, m])

    Layer ``k`` of model ``m`` is exactly ``PlanarFlow`` with parameters ``u[k, m]``,
    ``w[k, m]``, ``b[k, m]`` (same formula, same ``u_hat``, same log-det); stacking them lets one
    training step update all models at the cost of one (the notebook trains U1..U4 together).
    ``forward(z0)`` takes ``(models, N, dim)`` and returns ``(z_K, log_det)`` of shapes
    ``(models, N, dim)`` and ``(models, N)``. ``flows()`` returns each model as an ordinary
    ``FlowSequential`` of ``PlanarFlow`` layers, for plotting and for the inverse.

    Paper: [2] Rezende and Mohamed, 2015.

    Args:
        models: the number of independent flows ``M``.
        K: planar layers per flow.
        features: the dimension of ``z``.

    Example:
        >>> stack = PlanarStack(models=3, K=4)
        >>> z0 = torch.randn(3, 10, 2)
        >>> z, log_det = stack(z0)
        >>> z.shape, log_det.shape, len(stack.flows()), len(stack.flows()[0])
        (torch.Size([3, 10, 2]), torch.Size([3, 10]), 3, 4)
        >>> z_1, log_det_1 = stack.flows()[1](z0[1])          # model 1 as PlanarFlow layers
        >>> torch.allclose(z_1, z[1], atol=1e-5), torch.allclose(log_det_1, log_det[1], atol=1e-5)
        (True, True)
    """

    def __init__(self, models: int, K: int, features: int = 2):
        super().__init__()
        if models < 1 or K < 1 or features < 1:
            raise ValueError(f"PlanarStack needs models, K and features >= 1, got models={models}, K={K}, "
                             f"features={features}")
        self.models, self.K, self.features = models, K, features
        # The same initial distribution as PlanarFlow: u small, w of unit scale, b = 0.
        self.u = nn.Parameter(0.1 * torch.randn(K, models, features))
        self.w = nn.Parameter(torch.randn(K, models, features) / features**0.5)
        self.b = nn.Parameter(torch.zeros(K, models))

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        check_shape(z, (self.models, "N", self.features), "PlanarStack")
        # u_hat of every layer and model at once, by PlanarFlow's own formula
        u_hat, one_plus_wu_hat = planar_u_hat(self.u, self.w)            # (K, models, dim), (K, models)
        ts = []
        for w, b, uh in zip(self.w, self.b, u_hat):                       # layer k of every model
            t = torch.tanh(torch.baddbmm(b[:, None, None], z, w[:, :, None]))   # tanh(w.z + b): (models, N, 1)
            z = torch.baddbmm(z, t, uh[:, None, :])                       # z + u_hat tanh(w.z + b)
            ts.append(t)
        t = torch.cat(ts, dim=-1)                                         # (models, N, K)
        log_det = planar_log_det(t, one_plus_wu_hat.T[:, None, :]).sum(-1)
        return z, log_det

    @torch.no_grad()
    def flows(self) -> list[FlowSequential]:
        """Each model as a ``FlowSequential`` of ``PlanarFlow`` layers holding a copy of its parameters."""
        out = []
        for m in range(self.models):
            layers = []
            for k in range(self.K):
                layer = PlanarFlow(self.features).to(self.u.device, self.u.dtype)
                layer.u.copy_(self.u[k, m])
                layer.w.copy_(self.w[k, m])
                layer.b.copy_(self.b[k, m])
                layers.append(layer)
            out.append(FlowSequential(*layers))
        return out

    def extra_repr(self) -> str:
        return f"models={self.models}, K={self.K}, features={self.features}"


def annealed_batches(models: int, n: int, steps: int, warmup: float = 0.5, beta0: float = 0.01,
                     features: int = 2, device=None) -> Callable[[], tuple[Tensor, float]]:
    """A batch source for ``fit``: each call returns ``(z0, beta)``, fresh samples and an annealed beta.

        beta_t = min(1, beta0 + (1 - beta0) t / round(warmup * steps)),   t = 0, 1, 2, ... (the call)

    ``z0 ~ N(0, I)`` has shape ``(models, n, features)`` (or ``(n, features)`` when ``models`` is 0).
    ``beta`` rises linearly from ``beta0`` to 1 over the first ``warmup`` fraction of ``steps``,
    then stays 1: the paper's annealing, compressed into a short run.

    Paper: [2] Rezende and Mohamed, 2015 (beta from 0.01 to 1).

    Args:
        models: the number of flows of a ``PlanarStack``, or 0 for a single flow.
        n: samples per model and call.
        steps: the training run's length.
        warmup: the fraction of ``steps`` over which ``beta`` rises.

    Example:
        >>> batches = annealed_batches(models=4, n=8, steps=10, warmup=0.5)
        >>> [round(batches()[1], 3) for _ in range(7)]
        [0.01, 0.208, 0.406, 0.604, 0.802, 1.0, 1.0]
        >>> batches()[0].shape
        torch.Size([4, 8, 2])
    """
    shape = (models, n, features) if models else (n, features)
    ramp = max(1, round(warmup * steps))
    state = {"step": 0}

    def next_batch():
        beta = min(1.0, beta0 + (1 - beta0) * state["step"] / ramp)
        state["step"] += 1
        return torch.randn(shape, device=device), beta

    return next_batch
