"""The contract every flow layer keeps, and the containers that compose layers.

Direction: a layer maps **data to latent** (the normalising direction),

    y, log_det = layer(x)          log_det[i] = log|det dy_i/dx_i|,  shape (batch,)
    x, log_det_inv = layer.inverse(y)   log_det_inv = -log_det at the matching point.

The density of the data then follows from the change of variables theorem,

    log p(x) = log p_Z(f(x)) + sum_k log|det J_k(x_k)|.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor, nn

__all__ = ["FlowLayer", "FlowSequential", "NormalizingFlow", "check_shape", "check_features", "standard_normal",
           "standard_normal_log_prob"]

_LOG_2PI = math.log(2 * math.pi)


def check_shape(x: Tensor, expected: Sequence[int | str | None], name: str = "input") -> None:
    """Raise a ``ValueError`` unless ``x.shape`` matches ``expected``.

    Every layer calls it on its input, so a wrong shape fails at the door with a message that
    says what was expected and what was given.

    Args:
        x: the tensor to check.
        expected: one entry per dimension: an int must match exactly; ``None`` (shown as
            "batch") or a name such as ``"height"`` matches any size.
        name: who is asking (the layer's name), the start of the message.

    Example:
        >>> check_shape(torch.zeros(5, 3), (None, 3))
        >>> check_shape(torch.zeros(5, 4), (None, 3))
        Traceback (most recent call last):
        ...
        ValueError: input: expected shape (batch, 3), got (5, 4)
        >>> check_shape(torch.zeros(2, 3, 7), (None, 3, "height", "width"), "Squeeze")
        Traceback (most recent call last):
        ...
        ValueError: Squeeze: expected shape (batch, 3, height, width), got (2, 3, 7)
    """
    shown = ", ".join("batch" if e is None else str(e) for e in expected)
    given = tuple(x.shape)
    ok = x.dim() == len(expected) and all(not isinstance(e, int) or e == s for e, s in zip(expected, given))
    if not ok:
        raise ValueError(f"{name}: expected shape ({shown}), got {given}")


def check_features(x: Tensor, features: int, name: str = "input") -> None:
    """``check_shape`` for per-feature layers, which take vectors or images.

        (batch, features)  or  (batch, features, height, width)   (features = channels)

    Example:
        >>> check_features(torch.zeros(2, 3, 4, 4), 3)
        >>> check_features(torch.zeros(2, 4), 3, "ActNorm")
        Traceback (most recent call last):
        ...
        ValueError: ActNorm: expected shape (batch, 3), got (2, 4)
    """
    check_shape(x, (None, features, "height", "width") if x.dim() == 4 else (None, features), name)


class FlowLayer(nn.Module):
    """Base class of every flow layer: a map from data to latent with its log-determinant.

        y, log_det = layer(x)               log_det[i] = log|det dy_i/dx_i|,  shape (batch,)
        x, log_det_inv = layer.inverse(y)   log_det_inv = -log_det at the matching point

    Subclasses implement ``forward`` and ``inverse`` and check their input with ``check_shape``.

    Example:
        >>> class Double(FlowLayer):
        ...     def forward(self, x):
        ...         return 2 * x, x.new_full((x.shape[0],), x.shape[1] * math.log(2))
        ...     def inverse(self, y):
        ...         return y / 2, y.new_full((y.shape[0],), -y.shape[1] * math.log(2))
        >>> y, log_det = Double()(torch.ones(2, 3))
        >>> y[0].tolist(), round(log_det[0].item(), 4)          # 3 log 2
        ([2.0, 2.0, 2.0], 2.0794)
    """

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError


class FlowSequential(FlowLayer):
    """Compose flow layers ``f = f_K o ... o f_1`` in the data-to-latent direction.

        x_0 = x,   x_k = f_k(x_{k-1}),   log|det J_f(x)| = sum_k log|det J_{f_k}(x_{k-1})|

    ``inverse`` runs the layers backwards; indexing and ``len`` reach the layers.

    Args:
        *layers: the flow layers ``f_1, ..., f_K`` (or one list of them).
        event_shape: one sample's shape; inputs of another shape are refused with a
            ``ValueError`` naming the expected and given shapes.

    Example:
        >>> from course_utils.flows import AffineCoupling
        >>> flow = FlowSequential(AffineCoupling(2), AffineCoupling(2, flip=True), event_shape=(2,))
        >>> x = torch.randn(5, 2)
        >>> z, log_det = flow(x)
        >>> z.shape, log_det.shape, len(flow)
        (torch.Size([5, 2]), torch.Size([5]), 2)
        >>> x_back, log_det_inv = flow.inverse(z)
        >>> torch.allclose(x_back, x, atol=1e-6), torch.allclose(log_det_inv, -log_det, atol=1e-6)
        (True, True)
    """

    def __init__(self, *layers: nn.Module, event_shape: Sequence[int] | None = None):
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        self.layers = nn.ModuleList(layers)
        # with event_shape, inputs are checked at the door (errors name the shape given here,
        # not a reshaped one deep inside)
        self.event_shape = tuple(event_shape) if event_shape is not None else None

    def _check(self, x: Tensor, name: str) -> None:
        if self.event_shape is not None:
            check_shape(x, (None, *self.event_shape), name)

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i):
        return self.layers[i]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        self._check(x, "FlowSequential")
        log_det = x.new_zeros(x.shape[0])
        for layer in self.layers:
            x, ld = layer(x)
            log_det = log_det + ld
        return x, log_det

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        self._check(y, "FlowSequential.inverse")
        log_det = y.new_zeros(y.shape[0])
        for layer in reversed(self.layers):
            y, ld = layer.inverse(y)
            log_det = log_det + ld
        return y, log_det


class NormalizingFlow(nn.Module):
    """A density model: a flow from data to latent plus a base distribution on the latent.

        log p(x) = log p_Z(f(x)) + log|det J_f(x)|

    Sampling runs the inverse: ``z ~ p_Z``, ``x = f^{-1}(z)``; ``sample(shape, temperature)``
    scales ``z`` by the temperature first (Glow's trick, [4] Kingma and Dhariwal, 2018).

    Paper: [1] Dinh et al., 2014 (a flow trained by maximum likelihood); [2] Rezende and
    Mohamed, 2015 (the name).

    Args:
        layers: a flow layer, a ``FlowSequential`` or a list of layers (data to latent).
        base: any ``torch.distributions.Distribution`` whose ``log_prob`` of a latent batch
            returns one number per sample (use ``Independent`` for factorised bases, or
            ``standard_normal(*shape)``). Its tensors follow the module when it is moved with
            ``.to(device)`` or ``.double()``.

    Example:
        >>> from course_utils.flows import AffineCoupling, standard_normal
        >>> model = NormalizingFlow([AffineCoupling(2), AffineCoupling(2, flip=True)], standard_normal(2))
        >>> model.log_prob(torch.randn(4, 2)).shape
        torch.Size([4])
        >>> model.sample((3,)).shape
        torch.Size([3, 2])
        >>> model.double().log_prob(torch.zeros(1, 2, dtype=torch.float64)).dtype
        torch.float64
    """

    def __init__(self, layers, base: torch.distributions.Distribution):
        super().__init__()
        if isinstance(layers, FlowSequential):
            self.flow = layers
        elif isinstance(layers, nn.Module):
            self.flow = FlowSequential(layers)
        else:
            self.flow = FlowSequential(*layers)
        self.base = base
        # A buffer that tells us where the module lives, so the base can follow it.
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)

    def _apply(self, fn, *args, **kwargs):
        # .to(device) / .double() move parameters and buffers; move the base with them.
        super()._apply(fn, *args, **kwargs)
        self.base = _move_distribution(self.base, self._anchor.device, self._anchor.dtype)
        return self

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Map data to latent: ``z, log_det = model(x)``."""
        return self.flow(x)

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return self.flow.inverse(z)

    def log_prob(self, x: Tensor) -> Tensor:
        z, log_det = self.flow(x)
        return self.base.log_prob(z) + log_det

    @torch.no_grad()
    def sample(self, sample_shape=torch.Size(), temperature: float = 1.0) -> Tensor:
        """Draw samples through the inverse. ``temperature`` scales the latent
        (Glow's trick: values below 1 give smoother, more typical samples)."""
        z = self.base.sample(torch.Size(sample_shape)) * temperature
        x, _ = self.flow.inverse(z)
        return x


def _move_distribution(dist, device, dtype):
    """Rebuild a distribution with its tensor parameters on ``device``/``dtype``."""
    if isinstance(dist, torch.distributions.Independent):
        inner = _move_distribution(dist.base_dist, device, dtype)
        return torch.distributions.Independent(inner, dist.reinterpreted_batch_ndims)
    params = {}
    for name in dist.arg_constraints:
        value = dist.__dict__.get(name)
        if isinstance(value, Tensor):
            params[name] = value.to(device=device, dtype=dtype)
    if not params:
        return dist
    return type(dist)(**params)


def standard_normal_log_prob(z: Tensor, event_dims: int = 1) -> Tensor:
    """The standard-normal log-density, summed over the last ``event_dims`` dimensions.

        log N(z; 0, I) = -(1/2) sum_j z_j^2 - (D/2) log(2 pi)

    ``event_dims=0`` gives the 1-D density element-wise; ``1`` a vector ``(..., D) -> (...)``;
    ``3`` an image ``(batch, C, H, W) -> (batch,)``.

    Example:
        >>> round(standard_normal_log_prob(torch.zeros(1, 2)).item(), 4)     # -log(2 pi)
        -1.8379
        >>> standard_normal_log_prob(torch.zeros(3), event_dims=0).shape
        torch.Size([3])
    """
    elementwise = -0.5 * z**2 - 0.5 * _LOG_2PI
    return elementwise.sum(dim=tuple(range(-event_dims, 0))) if event_dims else elementwise


def standard_normal(*event_shape: int, device=None, dtype=None) -> torch.distributions.Distribution:
    """The usual base distribution: independent N(0, 1) over a latent of ``event_shape``.

    Example:
        >>> base = standard_normal(1, 2, 2)
        >>> base.sample((5,)).shape, base.log_prob(torch.zeros(5, 1, 2, 2)).shape
        (torch.Size([5, 1, 2, 2]), torch.Size([5]))
    """
    dtype = dtype or torch.get_default_dtype()
    loc = torch.zeros(event_shape, device=device, dtype=dtype)
    return torch.distributions.Independent(torch.distributions.Normal(loc, torch.ones_like(loc)), len(event_shape))
