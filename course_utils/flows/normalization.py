"""Normalisation layers as flows: batch normalisation (RealNVP [3]) and ActNorm (Glow [4]).

Both are per-feature (per-channel on images) affine maps, so their Jacobians are diagonal:

    y = (x - mu) / sigma * gamma + beta,     log|det dy/dx| = n * sum_c log(gamma_c / sigma_c)

with ``n = 1`` for vectors ``(batch, features)`` and ``n = h * w`` for images
``(batch, channels, h, w)``: every pixel of a channel is scaled by the same factor.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import FlowLayer, check_features

__all__ = ["BatchNormFlow", "ActNorm"]


def _per_channel(v: Tensor, x: Tensor) -> Tensor:
    """Reshape a per-channel vector to broadcast against ``x`` (vector or image)."""
    return v.view(1, -1, 1, 1) if x.dim() == 4 else v.view(1, -1)


def _reduce_dims(x: Tensor) -> tuple[int, ...]:
    return (0, 2, 3) if x.dim() == 4 else (0,)


def _pixels(x: Tensor) -> int:
    return x.shape[2] * x.shape[3] if x.dim() == 4 else 1


class BatchNormFlow(FlowLayer):
    """Batch normalisation as a flow layer: a per-channel affine map with the batch's statistics.

        y = (x - mu) / sqrt(var + eps) * exp(log_gamma) + beta
        log|det dy/dx| = n * sum_c (log_gamma_c - 0.5 log(var_c + eps)),   n = h*w on images, else 1

    Training mode: ``mu``, ``var`` are the statistics of the current batch (per channel), and the
    running averages are updated (``running = (1 - momentum) running + momentum batch``; the
    running variance starts at 1 and uses the unbiased batch variance). The log-det treats the
    batch statistics as constants, as RealNVP does. A training-mode output then depends on the
    whole batch: a single sample has no density of its own and there is no inverse, so
    ``inverse`` raises in training mode. Eval mode uses the running averages and is an ordinary
    invertible affine map: sample and report test numbers in eval mode.

    Paper: [3] Dinh, Sohl-Dickstein and Bengio, 2016.

    Args:
        features: the number of features (channels on images).
        momentum: the running averages' update weight, in (0, 1].
        eps: added to the variance.
        affine: learn the scale ``exp(log_gamma)`` (always positive, so always invertible) and
            shift ``beta``; ``False`` has neither (the lecture's table row).

    Example:
        >>> layer = BatchNormFlow(2)
        >>> y, log_det = layer(3 + 2 * torch.randn(1000, 2))     # training mode: batch statistics
        >>> y.mean(0).abs().max().item() < 1e-5, y.shape, log_det.shape
        (True, torch.Size([1000, 2]), torch.Size([1000]))
        >>> layer = layer.eval()                                 # eval mode: running averages
        >>> x = torch.randn(4, 2)
        >>> torch.allclose(layer.inverse(layer(x)[0])[0], x, atol=1e-6)
        True
    """

    def __init__(self, features: int, momentum: float = 0.1, eps: float = 1e-5, affine: bool = True):
        super().__init__()
        if features < 1 or not 0 < momentum <= 1 or not eps > 0:
            raise ValueError(f"BatchNormFlow needs features >= 1, momentum in (0, 1] and eps > 0, got "
                             f"features={features}, momentum={momentum}, eps={eps}")
        self.features, self.momentum, self.eps, self.affine = features, momentum, eps, affine
        if affine:
            self.log_gamma = nn.Parameter(torch.zeros(features))
            self.beta = nn.Parameter(torch.zeros(features))
        else:
            self.register_parameter("log_gamma", None)
            self.register_parameter("beta", None)
        self.register_buffer("running_mean", torch.zeros(features))
        self.register_buffer("running_var", torch.ones(features))

    def _statistics(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if not self.training:
            return self.running_mean, self.running_var
        dims = _reduce_dims(x)
        count = x.numel() // self.features
        if count < 2:
            raise ValueError(f"{type(self).__name__} in training mode needs more than one value per "
                             f"channel to estimate a variance, got input of shape {tuple(x.shape)}")
        mean = x.mean(dim=dims)
        var = x.var(dim=dims, correction=0)
        with torch.no_grad():
            unbiased = var * count / (count - 1)
            self.running_mean.lerp_(mean.detach(), self.momentum)
            self.running_var.lerp_(unbiased.detach(), self.momentum)
        return mean, var

    def _log_scale(self, var: Tensor) -> Tensor:
        """Per-channel log of the total scale: ``log_gamma - 0.5 log(var + eps)``."""
        log_scale = -0.5 * torch.log(var + self.eps)
        return log_scale + self.log_gamma if self.affine else log_scale

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        check_features(x, self.features, type(self).__name__)
        mean, var = self._statistics(x)
        log_scale = self._log_scale(var)
        y = (x - _per_channel(mean, x)) * _per_channel(log_scale.exp(), x)
        if self.affine:
            y = y + _per_channel(self.beta, x)
        log_det = _pixels(x) * log_scale.sum() * x.new_ones(x.shape[0])
        return y, log_det

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        if self.training:
            raise RuntimeError(f"{type(self).__name__}.inverse is not defined in training mode: the train-mode "
                               "map depends on the whole batch through its statistics. Call .eval() first "
                               "(the eval map uses the running averages and is invertible).")
        check_features(y, self.features, type(self).__name__)
        log_scale = self._log_scale(self.running_var)
        if self.affine:
            y = y - _per_channel(self.beta, y)
        x = y * _per_channel(torch.exp(-log_scale), y) + _per_channel(self.running_mean, y)
        log_det = -_pixels(y) * log_scale.sum() * y.new_ones(y.shape[0])
        return x, log_det

    def extra_repr(self) -> str:
        return f"{self.features}, momentum={self.momentum}, eps={self.eps}, affine={self.affine}"


class ActNorm(FlowLayer):
    """Activation normalisation: a per-channel affine map initialised from the first batch.

        y = x * exp(log_scale) + bias
        log|det dy/dx| = n * sum_c log_scale_c,    n = h*w on images, else 1

    On the first forward pass in training mode, ``log_scale`` and ``bias`` are set so that
    this batch's outputs have per-channel mean 0 and standard deviation 1 (population std).
    A channel with (near) zero variance is only centred, not scaled, so its outputs stay
    finite. The "initialised" flag is a registered buffer: it is saved in ``state_dict`` and
    a loaded layer does not initialise again. Unlike ``BatchNormFlow``, the map is the same
    in training and eval mode and does not depend on the batch after that, so it has an
    inverse in both.

    Paper: [4] Kingma and Dhariwal, 2018.

    Args:
        features: the number of features (channels on images).
        min_std: channels whose standard deviation is below this are only centred.

    Example:
        >>> layer = ActNorm(3)
        >>> x = 5 + 2 * torch.randn(500, 3, 4, 4)
        >>> y, log_det = layer(x)
        >>> bool(layer.initialised), y.mean((0, 2, 3)).abs().max().item() < 1e-5
        (True, True)
        >>> torch.allclose(layer.inverse(y)[0], x, atol=1e-5), log_det.shape
        (True, torch.Size([500]))
    """

    def __init__(self, features: int, min_std: float = 1e-6):
        super().__init__()
        if features < 1 or not min_std > 0:
            raise ValueError(f"ActNorm needs features >= 1 and min_std > 0, got features={features}, min_std={min_std}")
        self.features, self.min_std = features, min_std
        self.log_scale = nn.Parameter(torch.zeros(features))
        self.bias = nn.Parameter(torch.zeros(features))
        self.register_buffer("initialised", torch.tensor(False))

    @torch.no_grad()
    def _initialise(self, x: Tensor) -> None:
        dims = _reduce_dims(x)
        mean = x.mean(dim=dims)
        std = x.std(dim=dims, correction=0)
        std = torch.where(std > self.min_std, std, torch.ones_like(std))   # guard zero variance
        self.log_scale.copy_(-torch.log(std))
        self.bias.copy_(-mean / std)
        self.initialised.fill_(True)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        check_features(x, self.features, type(self).__name__)
        if self.training and not self.initialised:
            self._initialise(x)
        y = x * _per_channel(self.log_scale.exp(), x) + _per_channel(self.bias, x)
        return y, _pixels(x) * self.log_scale.sum() * x.new_ones(x.shape[0])

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        check_features(y, self.features, type(self).__name__)
        x = (y - _per_channel(self.bias, y)) * _per_channel(torch.exp(-self.log_scale), y)
        return x, -_pixels(y) * self.log_scale.sum() * y.new_ones(y.shape[0])

    def extra_repr(self) -> str:
        return f"{self.features}, initialised={bool(self.initialised)}"
