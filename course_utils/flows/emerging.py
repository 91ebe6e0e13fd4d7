"""Emerging convolutions: invertible k x k convolutions built from two masked ones.

Paper: [6] Hoogeboom, van den Berg & Welling, "Emerging convolutions for generative
normalizing flows", ICML 2019.

Raster order: the entries of one image ``(channels, height, width)`` are ordered by row, then
column, then channel, i.e. the index of ``x[c, i, j]`` is ``(i * width + j) * channels + c``
(the flattening of ``x.permute(1, 2, 0)``). A convolution whose output at ``(c, i, j)`` reads
only earlier pixels (all channels) and, at its own pixel, channels ``<= c`` has a lower
triangular Jacobian in this order; its diagonal is the centre tap ``W[c, c, k//2, k//2]`` at
every pixel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import FlowLayer
from .glow import check_image_shape

__all__ = ["EmergingConv", "emerging_mask"]


def emerging_mask(channels: int, kernel_size: int = 3, flip: bool = False) -> Tensor:
    """Mask ``(channels, channels, k, k)`` of an autoregressive convolution in raster order.

    ``mask[o, i, a, b] = 1`` where output channel ``o`` may read input channel ``i`` at kernel
    offset ``(a - k//2, b - k//2)``: every channel of the pixels above and to the left, and
    channels ``i <= o`` at the centre. ``flip=True`` gives the mirror image (pixels below and
    to the right, centre channels ``i >= o``): the other triangle.

    >>> emerging_mask(1, 3)[0, 0].tolist()
    [[1.0, 1.0, 1.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
    """
    k, p = kernel_size, kernel_size // 2
    m = torch.zeros(channels, channels, k, k)
    m[:, :, :p, :] = 1  # rows above
    m[:, :, p, :p] = 1  # same row, to the left
    m[:, :, p, p] = torch.tril(torch.ones(channels, channels))  # centre: input channel <= output
    if flip:
        m = m.flip(0, 1, 2, 3)
    return m.to(torch.get_default_dtype())


class EmergingConv(FlowLayer):
    """Emerging convolution (Hoogeboom et al. [6]): two masked ``k x k`` convolutions,

        y = conv(conv(x; W1 * m1) ; W2 * m2),    m2 = flip of m1,

    each autoregressive in raster order (see the module docstring), so each Jacobian is
    triangular (lower, then upper) with the centre taps on its diagonal, and

        log|det J| = h * w * sum_c (log|W1[c, c, k//2, k//2]| + log|W2[c, c, k//2, k//2]|).

    Each alone reads only one half of the neighbourhood; composed they read neighbours on
    every side, like an ordinary ``k x k`` convolution, with a triangular-times-triangular
    Jacobian whose determinant is still cheap. The inverse
    solves the triangular systems by sequential substitution: pixel by pixel in raster order
    (reverse raster order for the second convolution), a ``c x c`` triangular solve per pixel,
    so it takes ``h * w`` sequential steps: slow for large images, fine for 8x8.
    Zero padding at the borders keeps the Jacobians triangular. Centre taps start at the
    identity plus small noise, away from zero.

    Example
    -------
    >>> layer = EmergingConv(2)
    >>> x = torch.randn(3, 2, 4, 4)
    >>> y, log_det = layer(x)
    >>> x_back, log_det_inv = layer.inverse(y)
    >>> bool((x_back - x).abs().max() < 1e-4), bool(torch.allclose(log_det, -log_det_inv))
    (True, True)
    """

    def __init__(self, channels: int, kernel_size: int = 3, init_std: float = 0.05):
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive, got {kernel_size}")
        if channels < 1:
            raise ValueError(f"EmergingConv needs channels >= 1, got {channels}")
        self.channels, self.kernel_size = channels, kernel_size
        p = kernel_size // 2
        self.register_buffer("mask1", emerging_mask(channels, kernel_size))
        self.register_buffer("mask2", emerging_mask(channels, kernel_size, flip=True))
        eye = torch.eye(channels)
        weights = []
        for _ in range(2):
            W = init_std * torch.randn(channels, channels, kernel_size, kernel_size)
            W[:, :, p, p] += eye
            weights.append(nn.Parameter(W))
        self.weight1, self.weight2 = weights
        self.bias1 = nn.Parameter(torch.zeros(channels))
        self.bias2 = nn.Parameter(torch.zeros(channels))

    def masked_weights(self) -> tuple[Tensor, Tensor]:
        """The two kernels actually used, ``W1 * m1`` and ``W2 * m2``."""
        return self.weight1 * self.mask1, self.weight2 * self.mask2

    def _log_abs_det_per_pixel(self) -> Tensor:
        p = self.kernel_size // 2
        d1 = torch.diagonal(self.weight1[:, :, p, p])
        d2 = torch.diagonal(self.weight2[:, :, p, p])
        return torch.log(d1.abs()).sum() + torch.log(d2.abs()).sum()

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        check_image_shape(x, self.channels, name="EmergingConv")
        W1, W2 = self.masked_weights()
        p = self.kernel_size // 2
        y = F.conv2d(F.conv2d(x, W1, self.bias1, padding=p), W2, self.bias2, padding=p)
        h, w = x.shape[2:]
        return y, (h * w * self._log_abs_det_per_pixel()).expand(x.shape[0])

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        check_image_shape(y, self.channels, name="EmergingConv.inverse")
        W1, W2 = self.masked_weights()
        x1 = self._substitute(y, W2, self.bias2, upper=True)  # undo the second convolution
        x = self._substitute(x1, W1, self.bias1, upper=False)  # then the first
        h, w = y.shape[2:]
        return x, (-h * w * self._log_abs_det_per_pixel()).expand(y.shape[0])

    def _substitute(self, y: Tensor, W: Tensor, bias: Tensor, upper: bool) -> Tensor:
        """Solve ``conv(x; W) + bias = y`` for ``x`` by sequential substitution.

        Lower case (``upper=False``): visit pixels in raster order; at pixel ``(i, j)`` every
        off-centre tap reads pixels already solved, so subtract their contribution and solve
        the lower triangular centre system ``T x[:, :, i, j] = r``. Upper: reverse order.
        """
        b, c, h, w = y.shape
        k, p = self.kernel_size, self.kernel_size // 2
        T = W[:, :, p, p]
        W_off = W.clone()
        W_off[:, :, p, p] = 0
        x_pad = y.new_zeros(b, c, h + 2 * p, w + 2 * p)  # unknown pixels stay 0 until solved
        pixels = [(i, j) for i in range(h) for j in range(w)]
        for i, j in reversed(pixels) if upper else pixels:
            patch = x_pad[:, :, i:i + k, j:j + k].clone()
            r = y[:, :, i, j] - bias - torch.einsum("oiab,niab->no", W_off, patch)
            x_ij = torch.linalg.solve_triangular(T, r.t(), upper=upper).t()
            x_pad[:, :, i + p, j + p] = x_ij
        return x_pad[:, :, p:p + h, p:p + w]
