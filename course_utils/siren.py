"""Implicit neural representations: SIREN, its baselines, and derivatives of a network.

An implicit representation stores a signal (an image, a sound) as a function of its coordinates,
``Phi: c -> Phi(c)``, learned by a network. SIREN [7] (Sitzmann et al., 2020) uses the sine as its
non-linearity,

    y = sin(omega_0 * (W x + b)),

with an initialisation that keeps the pre-activations of every layer close to a standard normal
distribution, however deep the network is:

- first layer: ``W ~ U(-1/n, 1/n)`` (``n`` = number of inputs), then multiplied by
  ``first_omega_0`` (30) so the first layer spans several periods over ``[-1, 1]``;
- hidden layers (and the final linear layer): ``W ~ U(-sqrt(6/n)/omega_0, +sqrt(6/n)/omega_0)``,
  so that ``omega_0 * W x`` has unit variance when ``x`` is arcsine-distributed on ``[-1, 1]``
  (variance 1/2).

Because every derivative of a SIREN is again a SIREN-like network, its gradient and Laplacian with
respect to the input coordinates are smooth and meaningful; :func:`gradient`, :func:`divergence` and
:func:`laplacian` compute them with autograd (``create_graph=True``, so they can sit inside a
training loss).

Baselines for comparison: :func:`relu_mlp` (optionally after a :class:`PositionalEncoding`).

Example:
    >>> from course_utils.siren import Siren, gradient, laplacian, psnr
    >>> net = Siren(2, 32, 2, 1)
    >>> x = torch.rand(5, 2, requires_grad=True)
    >>> y = net(x)
    >>> gradient(y, x).shape, laplacian(y, x).shape
    (torch.Size([5, 2]), torch.Size([5, 1]))
    >>> round(psnr(torch.zeros(4), torch.full((4,), 0.1)), 2)  # range 2 ([-1, 1] data)
    26.02
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .nets import mlp

__all__ = [
    "SineLayer",
    "Siren",
    "siren_init_bound",
    "default_init_",
    "PositionalEncoding",
    "relu_mlp",
    "gradient",
    "divergence",
    "laplacian",
    "psnr",
    "image_gradient",
    "image_laplacian",
]


def siren_init_bound(fan_in: int, omega_0: float = 30.0, is_first: bool = False) -> float:
    """Half-width ``c`` of SIREN's uniform weight initialisation ``W ~ U(-c, c)``.

        c = 1 / fan_in                     (first layer)
        c = sqrt(6 / fan_in) / omega_0     (every other layer)

    Paper: [7] Sitzmann et al., 2020 (section 3.2).

    Args:
        fan_in: the layer's number of inputs ``n``.
        omega_0: the layer's frequency factor (hidden layers).
        is_first: the first layer of the network.

    Example:
        >>> siren_init_bound(2, is_first=True), round(siren_init_bound(256, 30.0), 5)
        (0.5, 0.0051)
    """
    if fan_in < 1:
        raise ValueError(f"fan_in must be a positive number of inputs, got {fan_in}")
    if is_first:
        return 1.0 / fan_in
    return math.sqrt(6.0 / fan_in) / omega_0


class SineLayer(nn.Module):
    """SIREN's layer: a ``nn.Linear`` followed by a sine.

        y = sin(omega_0 * (W x + b)),   W ~ U(-c, c),   c = siren_init_bound(n, omega_0, is_first)

    The bias keeps ``nn.Linear``'s default ``U(-1/sqrt(n), 1/sqrt(n))``, as in the official code.
    ``forward_with_preactivation(x)`` also returns ``omega_0 * (W x + b)``, the argument of the sine.

    Paper: [7] Sitzmann et al., 2020.

    Args:
        in_features: ``n``, the number of inputs.
        out_features: the number of outputs.
        is_first: the network's first layer draws ``W ~ U(-1/n, 1/n)``; every other layer
            ``W ~ U(-sqrt(6/n)/omega_0, sqrt(6/n)/omega_0)``.
        omega_0: the frequency factor.

    Example:
        >>> layer = SineLayer(2, 16, is_first=True)
        >>> float(layer.linear.weight.detach().abs().max()) <= 0.5
        True
        >>> layer(torch.zeros(3, 2)).shape
        torch.Size([3, 16])
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 is_first: bool = False, omega_0: float = 30.0):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.is_first = is_first
        self.omega_0 = float(omega_0)
        self.linear = nn.Linear(in_features, out_features, bias=bias)
        self.init_weights()

    @torch.no_grad()
    def init_weights(self) -> None:
        """Draw the weights from SIREN's uniform distribution (see the class docstring)."""
        c = siren_init_bound(self.in_features, self.omega_0, self.is_first)
        self.linear.weight.uniform_(-c, c)

    def forward_with_preactivation(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.omega_0 * self.linear(x)
        return torch.sin(z), z

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.omega_0 * self.linear(x))

    def extra_repr(self) -> str:
        return f"omega_0={self.omega_0:g}, is_first={self.is_first}"


class Siren(nn.Module):
    """A SIREN: a first sine layer, ``hidden_layers`` hidden sine layers, and a last layer.

        h_0 = sin(first_omega_0 (W_0 x + b_0)),   h_k = sin(hidden_omega_0 (W_k h_{k-1} + b_k)),
        Phi(x) = W_L h_{L-1} + b_L                 (outermost_linear=True)

    ``Siren(2, 256, 3, 1)`` maps 2-D coordinates to one value through five ``nn.Linear`` maps
    (first, three hidden, last), as in the official code. ``forward_with_activations(x)`` returns
    the output and, for every sine layer, the pre-activation (argument of the sine) and the
    activation, to inspect their distributions.

    Paper: [7] Sitzmann et al., 2020.

    Args:
        in_features: the coordinates' dimension (2 for an image, 1 for audio).
        hidden_features: the width of every sine layer.
        hidden_layers: the number of sine layers between the first and the last (>= 0).
        out_features: the signal's channels.
        first_omega_0, hidden_omega_0: the frequency factors (30 in the paper).
        outermost_linear: a linear last layer, initialised like a hidden one with
            ``hidden_omega_0``; otherwise the last layer is a sine layer too.

    Example:
        >>> net = Siren(2, 256, 3, 1)
        >>> sum(isinstance(m, nn.Linear) for m in net.modules())
        5
        >>> net(torch.zeros(7, 2)).shape
        torch.Size([7, 1])
    """

    def __init__(self, in_features: int, hidden_features: int, hidden_layers: int, out_features: int,
                 first_omega_0: float = 30.0, hidden_omega_0: float = 30.0,
                 outermost_linear: bool = True):
        super().__init__()
        if hidden_layers < 0:
            raise ValueError(f"hidden_layers counts the sine layers between the first and the last "
                             f"and must be >= 0, got {hidden_layers}")
        self.first_omega_0, self.hidden_omega_0 = float(first_omega_0), float(hidden_omega_0)
        layers: list[nn.Module] = [SineLayer(in_features, hidden_features, is_first=True,
                                             omega_0=first_omega_0)]
        for _ in range(hidden_layers):
            layers.append(SineLayer(hidden_features, hidden_features, omega_0=hidden_omega_0))
        if outermost_linear:
            last = nn.Linear(hidden_features, out_features)
            with torch.no_grad():
                c = siren_init_bound(hidden_features, hidden_omega_0)
                last.weight.uniform_(-c, c)
            layers.append(last)
        else:
            layers.append(SineLayer(hidden_features, out_features, omega_0=hidden_omega_0))
        self.net = nn.Sequential(*layers)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return self.net(coords)

    def forward_with_activations(self, coords: torch.Tensor):
        """``(output, [(pre_activation, activation) for each sine layer])``."""
        records = []
        x = coords
        for layer in self.net:
            if isinstance(layer, SineLayer):
                x, z = layer.forward_with_preactivation(x)
                records.append((z, x))
            else:
                x = layer(x)
        return x, records


def default_init_(model: nn.Module) -> nn.Module:
    """Re-initialise every ``nn.Linear`` in ``model`` with PyTorch's default (in place).

        W ~ U(-1/sqrt(n), 1/sqrt(n)),   b ~ U(-1/sqrt(n), 1/sqrt(n)),   n = in_features

    With ``omega_0 = 30`` a hidden layer's pre-activations then have a standard deviation of about
    ``30/sqrt(6) ~ 12`` instead of 1, which SIREN's initialisation avoids. Returns the model.

    Paper: [7] Sitzmann et al., 2020 (why the initialisation matters).

    Example:
        >>> net = default_init_(Siren(2, 256, 1, 1))
        >>> bound = 1 / math.sqrt(256)
        >>> round(net.net[1].linear.weight.abs().max().item() / bound, 2)   # SIREN's bound: 0.08
        1.0
    """
    for module in model.modules():
        if isinstance(module, nn.Linear):
            module.reset_parameters()
    return model


class PositionalEncoding(nn.Module):
    """Positional (Fourier feature) encoding of coordinates, as in NeRF.

        gamma(x) = (x, sin(2^k pi x), cos(2^k pi x) for k = 0 .. num_frequencies - 1),  per coordinate

    An ``in_features``-dimensional input becomes ``in_features * (1 + 2 num_frequencies)``
    features (``out_features``). A plain ReLU network on these features can fit much finer detail.

    Paper: NeRF (Mildenhall et al., 2020; not in the lecture's list), the baseline of
    [7] Sitzmann et al., 2020.

    Args:
        in_features: the coordinates' dimension.
        num_frequencies: ``K``, the number of octaves ``2^0 .. 2^(K-1)``.

    Example:
        >>> enc = PositionalEncoding(2, 6)
        >>> enc(torch.zeros(3, 2)).shape, enc.out_features
        (torch.Size([3, 26]), 26)
    """

    def __init__(self, in_features: int, num_frequencies: int = 6):
        super().__init__()
        self.in_features, self.num_frequencies = in_features, num_frequencies
        self.out_features = in_features * (1 + 2 * num_frequencies)
        self.register_buffer("frequencies", math.pi * 2.0 ** torch.arange(num_frequencies,
                                                                            dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        angles = (x[..., None] * self.frequencies.to(x.dtype)).flatten(-2)  # (..., in * K)
        return torch.cat([x, torch.sin(angles), torch.cos(angles)], dim=-1)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, num_frequencies={self.num_frequencies}"


def relu_mlp(in_features: int, hidden_features: int, hidden_layers: int, out_features: int,
             num_frequencies: int | None = None) -> nn.Sequential:
    """A ReLU network with the same layout as ``Siren`` (``hidden_layers + 2`` linear maps).

        Phi(x) = mlp([d, hidden, ..., hidden, out], ReLU)(gamma(x))   (gamma = identity by default)

    Paper: [7] Sitzmann et al., 2020 (its ReLU and ReLU + positional encoding baselines).

    Args:
        in_features, hidden_features, hidden_layers, out_features: as for :class:`Siren`.
        num_frequencies: if given, a :class:`PositionalEncoding` with that many frequencies first.

    Example:
        >>> len([m for m in relu_mlp(2, 64, 3, 1).modules() if isinstance(m, nn.Linear)])
        5
        >>> relu_mlp(2, 64, 1, 1, num_frequencies=4)(torch.zeros(3, 2)).shape
        torch.Size([3, 1])
    """
    layers: list[nn.Module] = []
    width_in = in_features
    if num_frequencies:
        encoding = PositionalEncoding(in_features, num_frequencies)
        layers.append(encoding)
        width_in = encoding.out_features
    layers += mlp([width_in] + [hidden_features] * (hidden_layers + 1) + [out_features], nn.ReLU)
    return nn.Sequential(*layers)


# ----------------------------------------------------------------------------------------------
# Derivatives with respect to the input coordinates
# ----------------------------------------------------------------------------------------------


def gradient(y: torch.Tensor, x: torch.Tensor, create_graph: bool = True) -> torch.Tensor:
    """The gradient of a scalar field with respect to its input coordinates, by autograd.

        grad[k, i] = d y_k / d x_{k, i}   (y computed from x point by point)

    ``x`` must require gradients before ``y`` is computed. With ``create_graph=True`` (default) the
    result can be differentiated again (a Laplacian, or a loss on the gradient).

    Args:
        y: ``(n, 1)`` or ``(n,)``, computed from ``x``.
        x: ``(n, d)`` coordinates with ``requires_grad``; the result has its shape.

    Example:
        >>> x = torch.tensor([[1.0, 2.0]], requires_grad=True)
        >>> gradient((x ** 2).sum(-1, keepdim=True), x)
        tensor([[2., 4.]], grad_fn=<MulBackward0>)
    """
    if not x.requires_grad:
        raise ValueError("gradient needs x.requires_grad: call x.requires_grad_() before computing y = model(x)")
    (grad,) = torch.autograd.grad(y, x, grad_outputs=torch.ones_like(y), create_graph=create_graph)
    return grad


def divergence(v: torch.Tensor, x: torch.Tensor, create_graph: bool = True) -> torch.Tensor:
    """The divergence of a vector field with respect to its input coordinates, by autograd.

        div[k] = sum_i d v_{k, i} / d x_{k, i}

    One backward pass per dimension.

    Args:
        v: ``(n, d)``, computed from ``x`` point by point.
        x: ``(n, d)`` coordinates with ``requires_grad``; the result is ``(n, 1)``.

    Example:
        >>> x = torch.tensor([[1.0, 2.0]], requires_grad=True)
        >>> divergence(x * x[:, :1], x)   # v = (x1^2, x1 x2): 2 x1 + x1
        tensor([[3.]], grad_fn=<AddBackward0>)
    """
    if v.shape[-1] != x.shape[-1]:
        raise ValueError(f"divergence needs v and x with the same last dimension, got {tuple(v.shape)} "
                         f"and {tuple(x.shape)}")
    div = torch.zeros(x.shape[0], 1, dtype=x.dtype, device=x.device)
    d = x.shape[-1]
    for i in range(d):
        (g,) = torch.autograd.grad(v[..., i], x, grad_outputs=torch.ones_like(v[..., i]),
                                   create_graph=create_graph, retain_graph=create_graph or i < d - 1)
        div = div + g[..., i:i + 1]
    return div


def laplacian(y: torch.Tensor, x: torch.Tensor, create_graph: bool = True) -> torch.Tensor:
    """The Laplacian of a scalar field (the divergence of its gradient), ``(n, 1)``.

        Delta y = sum_i d^2 y / d x_i^2

    Args:
        y: ``(n, 1)``, computed from ``x`` point by point.
        x: ``(n, d)`` coordinates with ``requires_grad``.

    Example:
        >>> x = torch.tensor([[1.0, 2.0]], requires_grad=True)
        >>> laplacian((x ** 2).sum(-1, keepdim=True) * x[:, :1], x)  # (x1^2 + x2^2) x1: 6 x1 + 2 x1
        tensor([[8.]], grad_fn=<AddBackward0>)
    """
    return divergence(gradient(y, x, create_graph=True), x, create_graph=create_graph)


def psnr(prediction: torch.Tensor, target: torch.Tensor, data_range: float = 2.0) -> float:
    """Peak signal-to-noise ratio in dB (``inf`` for a perfect prediction).

        PSNR = 10 log10(data_range^2 / MSE),   MSE = mean((prediction - target)^2)

    Args:
        data_range: the span of the target's allowed values: 2 for data in [-1, 1] (the course's
            convention), 1 for [0, 1], 255 for 8-bit images.

    Example:
        >>> round(psnr(torch.tensor([0.5]), torch.tensor([0.0]), data_range=1.0), 3)
        6.021
    """
    prediction = torch.as_tensor(prediction).detach().to(torch.float64)
    target = torch.as_tensor(target).detach().to(torch.float64).to(prediction.device)
    if prediction.shape != target.shape:
        raise ValueError(f"psnr needs prediction and target of the same shape, got "
                         f"{tuple(prediction.shape)} and {tuple(target.shape)}")
    mse = torch.mean((prediction - target) ** 2).item()
    if mse == 0:
        return math.inf
    return 10.0 * math.log10(data_range**2 / mse)


def image_gradient(image: torch.Tensor) -> torch.Tensor:
    """The gradient of a ``(size, size)`` image sampled on :func:`course_utils.data.get_mgrid`'s
    grid over ``[-1, 1]^2`` (``indexing="ij"``: axis 0 is the first coordinate), by central
    differences (one-sided at the borders) with spacing ``2/(size-1)``.

        g[i, j, 0] = (u[i+1, j] - u[i-1, j]) / (2 h),   g[i, j, 1] = (u[i, j+1] - u[i, j-1]) / (2 h)

    Returns ``(size*size, 2)``, in the same order as the grid's coordinates, so it can be compared
    with :func:`gradient` of a network evaluated on those coordinates.

    Example:
        >>> from course_utils.data import get_mgrid
        >>> c = get_mgrid(16)
        >>> u = (3 * c[:, 0] - c[:, 1]).view(16, 16)          # a plane: gradient (3, -1)
        >>> torch.allclose(image_gradient(u), torch.tensor([3.0, -1.0]).expand(256, 2), atol=1e-5)
        True
    """
    if image.ndim != 2:
        raise ValueError(f"image_gradient needs a 2-D image, got shape {tuple(image.shape)}")
    h = 2.0 / (image.shape[0] - 1), 2.0 / (image.shape[1] - 1)
    g0, g1 = torch.gradient(image, spacing=h)
    return torch.stack([g0, g1], dim=-1).reshape(-1, 2)


def image_laplacian(image: torch.Tensor) -> torch.Tensor:
    """The Laplacian of a ``(size, size)`` image on the ``[-1, 1]^2`` grid, by central differences.

        Delta u = d g_0 / d x_0 + d g_1 / d x_1,   g = image_gradient(u)

    Returns ``(size*size, 1)`` in the grid's order, comparable with :func:`laplacian` of a
    network on those coordinates.

    Example:
        >>> from course_utils.data import get_mgrid
        >>> c = get_mgrid(32)
        >>> u = (c ** 2).sum(-1).view(32, 32)                  # |x|^2: Laplacian 4
        >>> lap = image_laplacian(u).view(32, 32)
        >>> round(lap[4:-4, 4:-4].mean().item(), 3)            # exact away from the borders
        4.0
    """
    g = image_gradient(image).reshape(*image.shape, 2)
    h = 2.0 / (image.shape[0] - 1), 2.0 / (image.shape[1] - 1)
    d00 = torch.gradient(g[..., 0], spacing=h[0], dim=0)[0]
    d11 = torch.gradient(g[..., 1], spacing=h[1], dim=1)[0]
    return (d00 + d11).reshape(-1, 1)
