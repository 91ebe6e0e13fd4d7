"""Coupling layers for vectors (NICE [1], RealNVP [3]) and the small layers around them.

A coupling layer splits ``x`` into two parts. One part passes through unchanged and conditions
an element-wise invertible map of the other part, so the Jacobian is block triangular and its
determinant is the product of the diagonal:

    x = (x_a, x_b)                     x_a: first d = features // 2 features, x_b: the rest
    y_a = x_a
    y_b = x_b * exp(log_s(x_a)) + t(x_a)

``flip=True`` swaps the roles: ``x_b`` conditions and ``x_a`` is transformed. Alternate ``flip``
(or put a ``Permutation`` in between) so that every feature gets transformed.

The conditioner networks are ``course_utils.nets.mlp`` with a zero last layer.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..nets import mlp
from .base import FlowLayer, check_features, check_shape

__all__ = ["soft_clamp", "AdditiveCoupling", "AffineCoupling", "DiagonalScaling", "Permutation"]


def soft_clamp(raw: Tensor, bound: Tensor | float) -> Tensor:
    """A smooth clamp: about ``raw`` near 0, never beyond ``+-bound``.

        soft_clamp(raw, c) = c * tanh(raw / c)

    Used to keep log-scales bounded: an unbounded ``exp(raw)`` early in training can blow
    up the activations of every later layer. Near zero the slope is 1, so the bound does not
    shrink the gradients of small log-scales.

    Args:
        raw: any tensor.
        bound: ``c > 0``, a number or a tensor that broadcasts with ``raw``.

    Example:
        >>> soft_clamp(torch.tensor([0.0, 100.0]), 2.0)
        tensor([0., 2.])
    """
    return bound * torch.tanh(raw / bound)


class _Coupling(FlowLayer):
    """Shared split/merge logic: ``x_a = x[:, :d]``, ``x_b = x[:, d:]`` with ``d = features // 2``."""

    def __init__(self, features: int, flip: bool, out_per_feature: int, hidden: int, depth: int,
                 conditioner: nn.Module | None):
        super().__init__()
        if features < 2:
            raise ValueError(f"{type(self).__name__} needs features >= 2 to split the input, got features={features}")
        if conditioner is None and (hidden < 1 or depth < 0):
            raise ValueError(f"{type(self).__name__} needs hidden >= 1 and depth >= 0, got hidden={hidden}, depth={depth}")
        self.features, self.flip = features, flip
        d = features // 2
        # Number of features that condition and that are transformed.
        self.n_cond, self.n_trans = (features - d, d) if flip else (d, features - d)
        self.out_per_feature = out_per_feature
        if conditioner is None:
            conditioner = mlp([self.n_cond] + [hidden] * depth + [out_per_feature * self.n_trans], zero_last=True)
        self.conditioner = conditioner

    def _split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return (conditioning part, transformed part)."""
        d = self.features // 2
        x_a, x_b = x[:, :d], x[:, d:]
        return (x_b, x_a) if self.flip else (x_a, x_b)

    def _merge(self, x_cond: Tensor, x_trans: Tensor) -> Tensor:
        return torch.cat((x_trans, x_cond) if self.flip else (x_cond, x_trans), dim=1)

    def _params(self, x_cond: Tensor) -> Tensor:
        h = self.conditioner(x_cond)
        expected = (x_cond.shape[0], self.out_per_feature * self.n_trans)
        if tuple(h.shape) != expected:
            raise ValueError(f"{type(self).__name__}: conditioner must output shape "
                             f"(batch, {expected[1]}), got {tuple(h.shape)}")
        return h

    def extra_repr(self) -> str:
        return f"features={self.features}, flip={self.flip}"


class AdditiveCoupling(_Coupling):
    """NICE's additive coupling: half of the features shifted by a function of the other half.

        y_a = x_a,    y_b = x_b + t(x_a),        log|det dy/dx| = 0

    with ``x_a`` the first ``features // 2`` features and ``x_b`` the rest (``flip=True`` swaps the
    roles). The layer preserves volume, so a flow of additive couplings needs a final
    ``DiagonalScaling`` to change volume.

    Paper: [1] Dinh, Krueger and Bengio, 2014.

    Args:
        features: the vector's length (at least 2).
        hidden, depth: ``t`` is ``mlp([n_cond] + [hidden] * depth + [n_trans], zero_last=True)``,
            so the layer starts at the identity.
        flip: ``x_b`` conditions and ``x_a`` is shifted.
        conditioner: your own ``t``, mapping ``(batch, n_cond) -> (batch, n_trans)``.

    Example:
        >>> layer = AdditiveCoupling(3, conditioner=nn.Linear(1, 2))    # t(x_a) = W x_a + b
        >>> x = torch.randn(4, 3)
        >>> y, log_det = layer(x)
        >>> torch.equal(y[:, :1], x[:, :1]), log_det
        (True, tensor([0., 0., 0., 0.]))
        >>> torch.allclose(layer.inverse(y)[0], x)
        True
    """

    def __init__(self, features: int, hidden: int = 64, flip: bool = False, depth: int = 2,
                 conditioner: nn.Module | None = None):
        super().__init__(features, flip, 1, hidden, depth, conditioner)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        check_shape(x, (None, self.features), type(self).__name__)
        x_cond, x_trans = self._split(x)
        y_trans = x_trans + self._params(x_cond)
        return self._merge(x_cond, y_trans), x.new_zeros(x.shape[0])

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        check_shape(y, (None, self.features), type(self).__name__)
        y_cond, y_trans = self._split(y)
        x_trans = y_trans - self._params(y_cond)
        return self._merge(y_cond, x_trans), y.new_zeros(y.shape[0])


class AffineCoupling(_Coupling):
    """RealNVP's affine coupling: half of the features scaled and shifted, given the other half.

        y_a = x_a,    y_b = x_b * exp(log_s(x_a)) + t(x_a)
        log|det dy/dx| = sum_j log_s_j(x_a)     (over the transformed features only)

    with ``x_a`` the first ``features // 2`` features and ``x_b`` the rest (``flip=True`` swaps the
    roles). The conditioner outputs ``(raw, t)``; the log-scale is bounded softly,

        log_s = c * tanh(raw / c),    c = exp(log_bound) > 0, learned per feature (starts at ``bound``),

    so one large conditioner output cannot give ``exp(log_s)`` = inf early in training, the slope
    is 1 near 0 (the bound does not damp small log-scales), and the bound can grow if the data
    need it. (Glow's ``sigmoid(h + 2)`` would also bound the scale, but caps it just above 1 per
    layer and does not start exactly at the identity.)

    Paper: [3] Dinh, Sohl-Dickstein and Bengio, 2016.

    Args:
        features: the vector's length (at least 2).
        hidden, depth: the conditioner is ``mlp([n_cond] + [hidden] * depth + [2 * n_trans],
            zero_last=True)``, so the layer starts at the identity.
        flip: ``x_b`` conditions and ``x_a`` is transformed.
        conditioner: your own, mapping ``(batch, n_cond) -> (batch, 2 * n_trans)`` (``raw``, ``t``).
        bound: the starting value of ``c`` (positive).

    Example:
        >>> layer = AffineCoupling(2, flip=True)
        >>> x = torch.randn(4, 2)
        >>> y, log_det = layer(x)
        >>> torch.equal(y, x), log_det.tolist()        # the identity at initialisation
        (True, [0.0, 0.0, 0.0, 0.0])
        >>> layer = AffineCoupling(2, conditioner=nn.Linear(1, 2))
        >>> y, log_det = layer(x)
        >>> x_back, log_det_inv = layer.inverse(y)
        >>> torch.allclose(x_back, x, atol=1e-6), torch.allclose(log_det_inv, -log_det)
        (True, True)
    """

    def __init__(self, features: int, hidden: int = 64, flip: bool = False, depth: int = 2,
                 conditioner: nn.Module | None = None, bound: float = 2.0):
        if not bound > 0:
            raise ValueError(f"AffineCoupling needs a positive log-scale bound, got bound={bound}")
        super().__init__(features, flip, 2, hidden, depth, conditioner)
        self.log_bound = nn.Parameter(torch.full((self.n_trans,), math.log(bound)))

    def _log_scale_and_shift(self, x_cond: Tensor) -> tuple[Tensor, Tensor]:
        raw, t = self._params(x_cond).chunk(2, dim=1)
        log_s = soft_clamp(raw, self.log_bound.exp())
        return log_s, t

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        check_shape(x, (None, self.features), type(self).__name__)
        x_cond, x_trans = self._split(x)
        log_s, t = self._log_scale_and_shift(x_cond)
        y_trans = x_trans * log_s.exp() + t
        return self._merge(x_cond, y_trans), log_s.sum(dim=1)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        check_shape(y, (None, self.features), type(self).__name__)
        y_cond, y_trans = self._split(y)
        log_s, t = self._log_scale_and_shift(y_cond)
        x_trans = (y_trans - t) * torch.exp(-log_s)
        return self._merge(y_cond, x_trans), -log_s.sum(dim=1)


class DiagonalScaling(FlowLayer):
    """NICE's final diagonal scaling layer: one learned scale per feature.

        y = x * exp(log_s),        log|det dy/dx| = sum_j log_s_j

    Additive couplings preserve volume; this layer lets the flow stretch or shrink each
    latent direction (NICE: important directions get small scales). Starts at the identity.

    Paper: [1] Dinh, Krueger and Bengio, 2014.

    Args:
        features: the vector's length.

    Example:
        >>> layer = DiagonalScaling(3)
        >>> with torch.no_grad():
        ...     _ = layer.log_s.fill_(math.log(2.0))
        >>> y, log_det = layer(torch.ones(1, 3))
        >>> y.tolist(), round(log_det.item(), 4)           # log_det = 3 log 2
        ([[2.0, 2.0, 2.0]], 2.0794)
    """

    def __init__(self, features: int):
        super().__init__()
        if features < 1:
            raise ValueError(f"DiagonalScaling needs features >= 1, got {features}")
        self.features = features
        self.log_s = nn.Parameter(torch.zeros(features))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        check_shape(x, (None, self.features), type(self).__name__)
        return x * self.log_s.exp(), self.log_s.sum() * x.new_ones(x.shape[0])

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        check_shape(y, (None, self.features), type(self).__name__)
        return y * torch.exp(-self.log_s), -self.log_s.sum() * y.new_ones(y.shape[0])

    def extra_repr(self) -> str:
        return f"features={self.features}"


class Permutation(FlowLayer):
    """A fixed permutation of the features (no parameters).

        y_j = x_{perm[j]},        log|det dy/dx| = 0     (a permutation matrix has det +-1)

    On images ``(batch, channels, h, w)`` it permutes the channels (``features`` = channels): the
    fixed channel mixing that Glow's 1x1 convolution replaces.

    Paper: [3] Dinh et al., 2016 and [4] Kingma and Dhariwal, 2018 (reversal between couplings,
    so that every feature gets transformed).

    Args:
        features: the number of features (or channels).
        kind: ``"reverse"`` reverses the order; ``"random"`` draws a permutation from ``seed``
            (reproducible, stored as a buffer).

    Example:
        >>> Permutation(3)(torch.tensor([[1.0, 2.0, 3.0]]))
        (tensor([[3., 2., 1.]]), tensor([0.]))
        >>> layer = Permutation(4, kind="random")
        >>> x = torch.arange(4.0)[None]
        >>> torch.equal(layer.inverse(layer(x)[0])[0], x), sorted(layer.perm.tolist())
        (True, [0, 1, 2, 3])
    """

    def __init__(self, features: int, kind: str = "reverse", seed: int = 0):
        super().__init__()
        if features < 1:
            raise ValueError(f"Permutation needs features >= 1, got {features}")
        if kind == "reverse":
            perm = torch.arange(features - 1, -1, -1)
        elif kind == "random":
            perm = torch.randperm(features, generator=torch.Generator().manual_seed(seed))
        else:
            raise ValueError(f"Permutation kind must be 'reverse' or 'random', got {kind!r}")
        self.features, self.kind = features, kind
        self.register_buffer("perm", perm)
        self.register_buffer("inv_perm", torch.argsort(perm))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        check_features(x, self.features, type(self).__name__)
        return x[:, self.perm], x.new_zeros(x.shape[0])

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        check_features(y, self.features, type(self).__name__)
        return y[:, self.inv_perm], y.new_zeros(y.shape[0])

    def extra_repr(self) -> str:
        return f"features={self.features}, kind={self.kind!r}"
