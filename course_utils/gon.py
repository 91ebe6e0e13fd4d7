"""Gradient Origin Networks [8]: the decoder's own gradient is the encoder.

A GON has only a decoder ``F``. To encode ``x`` it starts at the origin ``z0 = 0``, measures how
badly ``F(z0)`` fits ``x``, and takes one gradient step downhill:

    z = -grad_{z0} L(x, F(z0))  at z0 = 0,

then trains ``F`` on the GON objective ``G_x = L(x, F(z))``. Because ``z`` is itself a gradient,
the outer loss reaches the decoder's weights twice: directly through ``F(z)``, and through ``z``,
a first derivative of ``F`` (so training needs second derivatives: ``create_graph=True``, and
activations whose second derivative is not zero, such as ELU or sine).

Conventions used here:

- ``loss(x_hat, x)`` is a **per-example** loss, shape ``(batch,)`` (a sum over pixels):
  :func:`squared_error` (default) or :func:`bernoulli_nll` (binary cross-entropy on logits).
- The inner loss is the **sum over the batch** of the per-example losses, so each example's
  latent depends only on that example, not on the batch it came in (with a batch *mean* every
  latent would shrink with the batch size).
- Training losses (:func:`gon_loss`, ...) return the **batch mean** of the per-example loss.

Variants: implicit GON (:class:`ImplicitDecoder`, a SIREN [7] that takes coordinates and ``z``)
and variational GON (:class:`VariationalGON`: ``z`` mapped to a mean and log-variance,
reparametrised, KL added). For the comparison with an autoencoder: :func:`mlp_decoder`,
:func:`mlp_encoder`, :class:`Autoencoder`. For sampling: :func:`fit_gaussian`, :func:`slerp`.

Example:
    >>> from course_utils.gon import gon_latent, gon_loss, mlp_decoder
    >>> F = mlp_decoder(latent_dim=4, hidden=(16,), out_shape=(1, 3, 3))
    >>> x = torch.rand(5, 1, 3, 3)
    >>> gon_latent(F, x, 4).shape
    torch.Size([5, 4])
    >>> gon_loss(F, x, 4).shape
    torch.Size([])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from .data import get_mgrid
from .nets import mlp
from .siren import Siren

__all__ = [
    "squared_error",
    "bernoulli_nll",
    "gon_latent",
    "gon_loss",
    "gon_reconstruct",
    "ImplicitDecoder",
    "implicit_gon_loss",
    "VariationalGON",
    "kl_standard_normal",
    "variational_gon_loss",
    "mlp_decoder",
    "mlp_encoder",
    "Autoencoder",
    "autoencoder_loss",
    "count_parameters",
    "fit_gaussian",
    "slerp",
]

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# ----------------------------------------------------------------------------------------------
# Per-example losses
# ----------------------------------------------------------------------------------------------


def squared_error(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-example sum of squared errors, shape ``(batch,)``.

        L(x_hat, x) = sum_j (x_hat_j - x_j)^2     (j runs over every entry of one example)

    Example:
        >>> squared_error(torch.zeros(2, 3), torch.ones(2, 3))
        tensor([3., 3.])
    """
    if x_hat.shape != x.shape:
        raise ValueError(f"the decoder's output has shape {tuple(x_hat.shape)} but the data have "
                         f"shape {tuple(x.shape)}; they must match")
    return (x_hat - x).pow(2).flatten(1).sum(1)


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-example binary cross-entropy of data ``x`` in [0, 1] under ``sigmoid(logits)``, ``(batch,)``.

        L(logits, x) = -sum_j [x_j log sigmoid(logits_j) + (1 - x_j) log(1 - sigmoid(logits_j))]

    Computed from the logits, stably (``binary_cross_entropy_with_logits``).

    Example:
        >>> bernoulli_nll(torch.zeros(1, 2), torch.ones(1, 2))  # 2 log 2
        tensor([1.3863])
    """
    if logits.shape != x.shape:
        raise ValueError(f"the decoder's output has shape {tuple(logits.shape)} but the data have "
                         f"shape {tuple(x.shape)}; they must match")
    bce = nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none")
    return bce.flatten(1).sum(1)


# ----------------------------------------------------------------------------------------------
# GON
# ----------------------------------------------------------------------------------------------


def gon_latent(decoder: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, latent_dim: int,
               loss: Loss = squared_error, create_graph: bool = True) -> torch.Tensor:
    """The GON latent: one gradient step from the origin, shape ``(batch, latent_dim)``.

        z = -grad_{z0} sum_i L(x_i, F(z0_i))   at z0 = 0

    The loss is summed over the batch, so example ``i``'s latent depends on ``x_i`` alone. For the
    squared error, ``z = 2 J_F(0)^T (x - F(0))``: an affine map of ``x`` whose matrix is the
    transposed Jacobian of the decoder at the origin. Works under ``torch.no_grad()`` too (it
    turns gradients on locally).

    Paper: [8] Bond-Taylor and Willcocks, 2020.

    Args:
        decoder: ``F``, mapping ``(batch, latent_dim)`` to the shape of ``x``.
        x: a batch of examples, ``(batch, ...)``.
        loss: a per-example loss ``L(x_hat, x)`` of shape ``(batch,)``.
        create_graph: keep the graph of the gradient, so that a loss on ``F(z)`` can be
            back-propagated into the decoder *through* ``z`` (needed for training); ``False``
            only encodes.

    Example:
        >>> F = nn.Linear(3, 5)                  # a linear decoder: J_F(0) = W, F(0) = b
        >>> x = torch.randn(4, 5)
        >>> z = gon_latent(F, x, 3)
        >>> z.shape, torch.allclose(z, 2 * (x - F.bias) @ F.weight, atol=1e-6)
        (torch.Size([4, 3]), True)
    """
    if x.ndim < 2:
        raise ValueError(f"gon_latent needs a batch of examples, shape (batch, ...), got {tuple(x.shape)}")
    param = next(iter(decoder.parameters()), None) if isinstance(decoder, nn.Module) else None
    dtype = param.dtype if param is not None and param.is_floating_point() else x.dtype
    with torch.enable_grad():
        z0 = torch.zeros(x.shape[0], latent_dim, device=x.device, dtype=dtype, requires_grad=True)
        inner = loss(decoder(z0), x)
        if inner.shape != (x.shape[0],):
            raise ValueError(f"loss must return one value per example, shape ({x.shape[0]},), "
                             f"got {tuple(inner.shape)}")
        (grad,) = torch.autograd.grad(inner.sum(), z0, create_graph=create_graph)
    return -grad


def gon_loss(decoder: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, latent_dim: int,
             loss: Loss = squared_error) -> torch.Tensor:
    """The GON objective, averaged over the batch: one training step's loss.

        G_x = L(x, F(z)),   z = -grad_{z0} L(x, F(z0)) at z0 = 0   (:func:`gon_latent`)

    Train with ``fit(decoder, lambda F, x: gon_loss(F, x, d), ...)``: the gradient reaches the
    decoder's weights both through ``F(z)`` and through ``z``.

    Paper: [8] Bond-Taylor and Willcocks, 2020.

    Args:
        decoder: ``F``, mapping ``(batch, latent_dim)`` to the shape of ``x``.
        x: a batch of examples.
        latent_dim: the latent's dimension.
        loss: a per-example loss ``L(x_hat, x)`` of shape ``(batch,)``.

    Example:
        >>> F = mlp_decoder(latent_dim=4, hidden=(16,), out_shape=(1, 3, 3))
        >>> G = gon_loss(F, torch.rand(5, 1, 3, 3), 4)
        >>> G.backward()
        >>> G.shape, all(p.grad is not None for p in F.parameters())
        (torch.Size([]), True)
    """
    z = gon_latent(decoder, x, latent_dim, loss, create_graph=True)
    return loss(decoder(z), x).mean()


def gon_reconstruct(decoder: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, latent_dim: int,
                    loss: Loss = squared_error) -> tuple[torch.Tensor, torch.Tensor]:
    """Encode and decode without building a training graph: ``(F(z), z)``, both detached.

        z = gon_latent(F, x, latent_dim, loss),   x_hat = F(z)

    Paper: [8] Bond-Taylor and Willcocks, 2020.

    Example:
        >>> F = mlp_decoder(latent_dim=4, hidden=(16,), out_shape=(1, 3, 3))
        >>> x_hat, z = gon_reconstruct(F, torch.rand(5, 1, 3, 3), 4)
        >>> x_hat.shape, z.shape, x_hat.requires_grad or z.requires_grad
        (torch.Size([5, 1, 3, 3]), torch.Size([5, 4]), False)
    """
    z = gon_latent(decoder, x, latent_dim, loss, create_graph=False).detach()
    with torch.no_grad():
        return decoder(z), z


# ----------------------------------------------------------------------------------------------
# Implicit GON: a SIREN of (coordinates, z)
# ----------------------------------------------------------------------------------------------


class ImplicitDecoder(nn.Module):
    """A SIREN that takes a coordinate ``c`` and a latent ``z``: the implicit GON's decoder.

        F(c, z) = Siren([c, s z])

    One network represents a whole *space* of images: ``z`` picks the image, ``c`` the point in
    it. ``forward(coords, z)`` takes ``coords`` of shape ``(n_points, coord_dim)`` (shared by
    every example) and ``z`` of shape ``(batch, latent_dim)`` and returns
    ``(batch, n_points, out_channels)``. Since the network is a function of continuous
    coordinates, :meth:`render` draws an image at any resolution.

    Paper: [8] Bond-Taylor and Willcocks, 2020 (implicit GONs), on a SIREN of [7] Sitzmann et al., 2020.

    Args:
        latent_dim: the dimension of ``z``.
        hidden, hidden_layers: the SIREN's width and number of hidden sine layers.
        out_channels: the image's channels.
        coord_dim: the coordinates' dimension (2 for images).
        first_omega_0, hidden_omega_0: the SIREN's frequency factors.
        latent_scale: ``s`` (default 0.1) scales ``z`` before it joins the coordinates: the first
            sine layer multiplies its input by ``first_omega_0`` (30), right for coordinates in
            [-1, 1] but far too fast for a latent whose entries are gradients of a sum over
            pixels; with ``s = 1`` training on digits was slower and less stable in our
            measurements.

    Example:
        >>> net = ImplicitDecoder(latent_dim=8, hidden=32, hidden_layers=1)
        >>> net(torch.zeros(10, 2), torch.zeros(3, 8)).shape
        torch.Size([3, 10, 1])
        >>> net.render(torch.zeros(2, 8), size=5).shape
        torch.Size([2, 1, 5, 5])
    """

    def __init__(self, latent_dim: int, hidden: int = 128, hidden_layers: int = 2,
                 out_channels: int = 1, coord_dim: int = 2, first_omega_0: float = 30.0,
                 hidden_omega_0: float = 30.0, latent_scale: float = 0.1):
        super().__init__()
        self.latent_dim, self.coord_dim, self.out_channels = latent_dim, coord_dim, out_channels
        self.latent_scale = latent_scale
        self.siren = Siren(coord_dim + latent_dim, hidden, hidden_layers, out_channels,
                           first_omega_0=first_omega_0, hidden_omega_0=hidden_omega_0)

    def forward(self, coords: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if coords.ndim != 2 or coords.shape[1] != self.coord_dim:
            raise ValueError(f"coords must have shape (n_points, {self.coord_dim}), got {tuple(coords.shape)}")
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape (batch, {self.latent_dim}), got {tuple(z.shape)}")
        batch, n = z.shape[0], coords.shape[0]
        inputs = torch.cat([coords.to(z.dtype).expand(batch, n, -1),
                            (self.latent_scale * z)[:, None, :].expand(batch, n, -1)], dim=-1)
        return self.siren(inputs)

    def render(self, z: torch.Tensor, size: int) -> torch.Tensor:
        """Images ``(batch, out_channels, size, size)`` on a ``size x size`` grid over [-1, 1]^2."""
        coords = get_mgrid(size, 2).to(z.device)
        out = self(coords, z)
        return out.transpose(1, 2).reshape(z.shape[0], self.out_channels, size, size)


def implicit_gon_loss(decoder: ImplicitDecoder, coords: torch.Tensor, values: torch.Tensor,
                      loss: Loss = squared_error) -> torch.Tensor:
    """The GON objective for an :class:`ImplicitDecoder`: batch mean of the per-example loss.

        G = mean_i L(values_i, F(coords, z_i)),   z = -grad_{z0} sum_i L(values_i, F(coords, z0_i)) at 0

    Paper: [8] Bond-Taylor and Willcocks, 2020 (implicit GONs).

    Args:
        coords: ``(n_points, coord_dim)``, shared by every example.
        values: ``(batch, n_points, channels)``, the examples sampled at ``coords``.

    Example:
        >>> from course_utils.data import get_mgrid
        >>> F = ImplicitDecoder(latent_dim=8, hidden=16, hidden_layers=1)
        >>> G = implicit_gon_loss(F, get_mgrid(4), torch.rand(2, 16, 1))
        >>> G.shape, G.item() > 0
        (torch.Size([]), True)
    """
    return gon_loss(lambda z: decoder(coords, z), values, decoder.latent_dim, loss)


# ----------------------------------------------------------------------------------------------
# Variational GON
# ----------------------------------------------------------------------------------------------


class VariationalGON(nn.Module):
    """Variational GON: the gradient latent is mapped to a Gaussian posterior.

        z = -grad_{z0} L(x, F(z0)) at z0 = 0,   mu = A z + a,   log sigma^2 = B z + b,
        z_s = mu + sigma * eps,  eps ~ N(0, I),   loss = L(x, F(z_s)) + beta KL(q || N(0, I))

    ``posterior(x)`` returns ``(mu, log_var)``; new images are ``F(eps)`` with ``eps ~ N(0, I)``
    (:meth:`sample`). The log-variance map starts at zero, so ``sigma = 1`` at the start.

    Paper: [8] Bond-Taylor and Willcocks, 2020 (variational GONs).

    Args:
        decoder: ``F``, mapping ``(batch, latent_dim)`` to an example (e.g. logits).
        latent_dim: the dimension of ``z``, ``mu`` and ``z_s``.

    Example:
        >>> vgon = VariationalGON(mlp_decoder(4, (16,), (1, 3, 3)), latent_dim=4)
        >>> vgon.sample(6).shape
        torch.Size([6, 1, 3, 3])
        >>> mu, log_var = vgon.posterior(torch.rand(5, 1, 3, 3))
        >>> mu.shape, bool((log_var == 0).all())
        (torch.Size([5, 4]), True)
    """

    def __init__(self, decoder: nn.Module, latent_dim: int):
        super().__init__()
        self.decoder, self.latent_dim = decoder, latent_dim
        self.to_mu = nn.Linear(latent_dim, latent_dim)
        self.to_log_var = nn.Linear(latent_dim, latent_dim)
        with torch.no_grad():  # start with sigma = 1 everywhere: no huge variances early on
            self.to_log_var.weight.zero_()
            self.to_log_var.bias.zero_()

    def posterior(self, x: torch.Tensor, loss: Loss = bernoulli_nll,
                  create_graph: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, log_var)`` of ``q(z_s | x)``, each ``(batch, latent_dim)``."""
        z = gon_latent(self.decoder, x, self.latent_dim, loss, create_graph=create_graph)
        return self.to_mu(z), self.to_log_var(z)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``F(eps)`` for ``n`` draws ``eps ~ N(0, I)`` (the decoder's raw output, e.g. logits)."""
        device = next(self.parameters()).device
        eps = torch.randn(n, self.latent_dim, generator=generator, device="cpu").to(device)
        return self.decoder(eps)


def kl_standard_normal(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """The KL divergence of a diagonal Gaussian from the standard normal, per example, ``(batch,)``.

        KL(N(mu, diag(sigma^2)) || N(0, I)) = 0.5 sum_j (mu_j^2 + sigma_j^2 - log sigma_j^2 - 1)

    Args:
        mu: ``(batch, d)`` means.
        log_var: ``(batch, d)`` log-variances ``log sigma^2``.

    Example:
        >>> kl_standard_normal(torch.zeros(1, 3), torch.zeros(1, 3))
        tensor([0.])
        >>> kl_standard_normal(torch.ones(1, 3), torch.zeros(1, 3))   # 3 * 0.5 * 1^2
        tensor([1.5000])
    """
    return 0.5 * (mu.pow(2) + log_var.exp() - log_var - 1.0).sum(-1)


def variational_gon_loss(model: VariationalGON, x: torch.Tensor, loss: Loss = bernoulli_nll,
                         beta: float = 1.0) -> torch.Tensor:
    """Negative ELBO of a variational GON (batch mean), with one reparametrised sample ``z_s``.

        loss = mean_i [L(x_i, F(z_s,i)) + beta KL(q(z_s | x_i) || N(0, I))]

    Paper: [8] Bond-Taylor and Willcocks, 2020 (variational GONs).

    Args:
        model: the :class:`VariationalGON`.
        x: a batch of examples in [0, 1] (for the default :func:`bernoulli_nll`).
        beta: the weight of the KL term.

    Example:
        >>> vgon = VariationalGON(mlp_decoder(4, (16,), (1, 3, 3)), latent_dim=4)
        >>> loss = variational_gon_loss(vgon, torch.rand(5, 1, 3, 3))
        >>> loss.shape, loss.item() > 0
        (torch.Size([]), True)
    """
    mu, log_var = model.posterior(x, loss, create_graph=True)
    z_s = mu + torch.exp(0.5 * log_var) * torch.randn_like(mu)
    return (loss(model.decoder(z_s), x) + beta * kl_standard_normal(mu, log_var)).mean()


# ----------------------------------------------------------------------------------------------
# The comparison: MLP decoder, encoder, autoencoder
# ----------------------------------------------------------------------------------------------


def mlp_decoder(latent_dim: int, hidden: Sequence[int], out_shape: Sequence[int],
                activation: Callable[[], nn.Module] = nn.ELU) -> nn.Sequential:
    """An MLP decoder ``latent_dim -> hidden... -> prod(out_shape)``, reshaped to ``(batch, *out_shape)``.

        F(z) = reshape(mlp([latent_dim, *hidden, prod(out_shape)], activation)(z), out_shape)

    The activation sits between the linear layers (none after the last). ELU, the default, has a
    non-zero second derivative, which a GON's training needs.

    Args:
        latent_dim: the latent's dimension.
        hidden: the hidden widths.
        out_shape: one example's shape, e.g. ``(1, 8, 8)``.
        activation: a zero-argument constructor such as ``nn.ELU``.

    Example:
        >>> mlp_decoder(32, (256, 256), (1, 8, 8))(torch.zeros(2, 32)).shape
        torch.Size([2, 1, 8, 8])
    """
    out_shape = tuple(out_shape)
    sizes = [latent_dim, *hidden, math.prod(out_shape)]
    return nn.Sequential(*mlp(sizes, activation), nn.Unflatten(1, out_shape))


def mlp_encoder(in_shape: Sequence[int], hidden: Sequence[int], latent_dim: int,
                activation: Callable[[], nn.Module] = nn.ELU) -> nn.Sequential:
    """The mirror of :func:`mlp_decoder`: flatten, ``prod(in_shape) -> hidden... -> latent_dim``.

        E(x) = mlp([prod(in_shape), *hidden, latent_dim], activation)(flatten(x))

    Example:
        >>> mlp_encoder((1, 8, 8), (256,), 32)(torch.zeros(2, 1, 8, 8)).shape
        torch.Size([2, 32])
    """
    sizes = [math.prod(in_shape), *hidden, latent_dim]
    return nn.Sequential(nn.Flatten(1), *mlp(sizes, activation))


class Autoencoder(nn.Module):
    """An autoencoder, the baseline a GON is compared with (same decoder, plus an encoder).

        x_hat = D(E(x))

    Args:
        encoder: ``E``, e.g. :func:`mlp_encoder`.
        decoder: ``D``, e.g. :func:`mlp_decoder`.

    Example:
        >>> ae = Autoencoder(mlp_encoder((1, 3, 3), (16,), 4), mlp_decoder(4, (16,), (1, 3, 3)))
        >>> ae(torch.rand(5, 1, 3, 3)).shape
        torch.Size([5, 1, 3, 3])
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def autoencoder_loss(model: Autoencoder, x: torch.Tensor, loss: Loss = squared_error) -> torch.Tensor:
    """An autoencoder's training loss: the batch mean of the per-example loss.

        loss = mean_i L(D(E(x_i)), x_i)

    Example:
        >>> ae = Autoencoder(mlp_encoder((1, 3, 3), (16,), 4), mlp_decoder(4, (16,), (1, 3, 3)))
        >>> x = torch.rand(5, 1, 3, 3)
        >>> torch.allclose(autoencoder_loss(ae, x), squared_error(ae(x), x).mean())
        True
    """
    return loss(model(x), x).mean()


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters (those with ``requires_grad``).

    Example:
        >>> count_parameters(nn.Linear(3, 2))
        8
    """
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


# ----------------------------------------------------------------------------------------------
# Sampling and interpolation in latent space
# ----------------------------------------------------------------------------------------------


def fit_gaussian(z: torch.Tensor, jitter: float = 1e-5) -> torch.distributions.MultivariateNormal:
    """The Gaussian with the sample mean and covariance of the rows of ``z`` ``(n, d)``.

        mean = (1/n) sum_i z_i,   cov = (1/(n-1)) sum_i (z_i - mean)(z_i - mean)^T + jitter * mean(diag cov) I

    The jitter keeps the covariance positive definite. Sampling it and decoding gives new
    examples from a GON or an autoencoder.

    Args:
        z: latents, ``(n, d)`` with ``n >= 2``.
        jitter: relative size of the diagonal term.

    Example:
        >>> g = fit_gaussian(2 + torch.randn(500, 3))
        >>> g.sample((4,)).shape, [round(m) for m in g.mean.tolist()]
        (torch.Size([4, 3]), [2, 2, 2])
    """
    if z.ndim != 2 or z.shape[0] < 2:
        raise ValueError(f"fit_gaussian needs latents of shape (n, d) with n >= 2, got {tuple(z.shape)}")
    z = z.detach()
    mean = z.mean(0)
    centred = z - mean
    cov = centred.T @ centred / (z.shape[0] - 1)
    cov = cov + jitter * cov.diagonal().mean().clamp_min(1e-12) * torch.eye(z.shape[1], dtype=z.dtype,
                                                                           device=z.device)
    return torch.distributions.MultivariateNormal(mean, covariance_matrix=cov)


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """Spherical linear interpolation from ``z0`` to ``z1`` (vectors of shape ``(d,)``).

        slerp(t) = sin((1 - t) Omega) / sin(Omega) z0 + sin(t Omega) / sin(Omega) z1,
        cos Omega = z0 . z1 / (|z0| |z1|)

    Falls back to linear interpolation when ``z0`` and ``z1`` are (nearly) parallel.

    Paper: Shoemake, 1985 (slerp; not in the lecture's list).

    Args:
        z0, z1: the end points, shape ``(d,)``.
        t: a number (returns ``(d,)``) or a tensor of shape ``(k,)`` (returns ``(k, d)``).

    Example:
        >>> slerp(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), 0.5)
        tensor([0.7071, 0.7071])
        >>> slerp(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), torch.linspace(0, 1, 5)).shape
        torch.Size([5, 2])
    """
    if z0.shape != z1.shape or z0.ndim != 1:
        raise ValueError(f"slerp needs two vectors of the same shape (d,), got {tuple(z0.shape)} "
                         f"and {tuple(z1.shape)}")
    t = torch.as_tensor(t, dtype=z0.dtype, device=z0.device)
    scalar = t.ndim == 0
    t = t.reshape(-1, 1)
    cos = torch.dot(z0, z1) / (z0.norm() * z1.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    if torch.sin(omega).abs() < 1e-6:
        out = (1 - t) * z0 + t * z1
    else:
        out = (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)
    return out[0] if scalar else out
