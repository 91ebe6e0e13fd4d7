"""Emerging convolutions: invertible k x k convolutions built from two masked ones.

Paper: [6] Hoogeboom, van den Berg and Welling, 2019 ("Emerging convolutions for generative
normalizing flows").

Raster order: the entries of one image ``(channels, height, width)`` are ordered by row, then
column, then channel, i.e. the index of ``x[c, i, j]`` is ``(i * width + j) * channels + c``
(the flattening of ``x.permute(1, 2, 0)``). A convolution whose output at ``(c, i, j)`` reads
only earlier pixels (all channels) and, at its own pixel, channels ``<= c`` has a lower
triangular Jacobian in this order; its diagonal is the centre tap ``W[c, c, k//2, k//2]`` at
every pixel.

- ``emerging_mask``: the mask that makes a ``k x k`` kernel autoregressive in raster order.
- ``emerging_log_det``: the log-determinant, read off the two kernels' centre taps.
- ``solve_pixel``: one step of the inverse, a pixel solved from the pixels before it.
- ``wavefront_steps``: which pixels the inverse can solve at the same time.
- ``masked_conv_inverse``: the whole inverse of one masked convolution, by substitution.
- ``EmergingConv``: the layer, two masked convolutions (one mask the flip of the other).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import FlowLayer
from .glow import check_image_shape

__all__ = ["EmergingConv", "emerging_mask", "emerging_log_det", "solve_pixel", "wavefront_steps",
           "masked_conv_inverse", "SCHEDULES"]

#: the orders in which ``masked_conv_inverse`` may visit the pixels
SCHEDULES = ("raster", "wavefront")


def emerging_mask(channels: int, kernel_size: int = 3, flip: bool = False) -> Tensor:
    """Mask ``(channels, channels, k, k)`` of a convolution that is autoregressive in raster order.

        m[o, i, a, b] = 1   if a < k//2                      (rows above)
                            or a = k//2 and b < k//2          (same row, to the left)
                            or a = b = k//2 and i <= o        (own pixel: earlier channels)
                        0   otherwise

    With ``conv2d`` (a cross-correlation), tap ``(a, b)`` of output pixel ``(r, s)`` reads input
    pixel ``(r + a - k//2, s + b - k//2)``, so ``W * m`` reads only pixels that come earlier in
    raster order and, at its own pixel, channels ``i <= o``: a lower triangular Jacobian.
    ``flip=True`` gives the mirror image ``m.flip(0, 1, 2, 3)`` (pixels below and to the right,
    centre channels ``i >= o``): an upper triangular Jacobian.

    Paper: [6] Hoogeboom, van den Berg and Welling, 2019.

    Args:
        channels: number of input (= output) channels.
        kernel_size: ``k``, odd.
        flip: the mirror-image mask (the emerging convolution's second kernel).

    Example:
        >>> emerging_mask(1, 3)[0, 0].tolist()
        [[1.0, 1.0, 1.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
        >>> emerging_mask(2, 3)[:, :, 1, 1].tolist()       # centre: output o reads channels <= o
        [[1.0, 0.0], [1.0, 1.0]]
        >>> emerging_mask(2, 3, flip=True)[:, :, 1, 1].tolist()
        [[1.0, 1.0], [0.0, 1.0]]
    """
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd and positive, got {kernel_size}")
    k, p = kernel_size, kernel_size // 2
    m = torch.zeros(channels, channels, k, k)
    m[:, :, :p, :] = 1  # rows above
    m[:, :, p, :p] = 1  # same row, to the left
    m[:, :, p, p] = torch.tril(torch.ones(channels, channels))  # centre: input channel <= output
    if flip:
        m = m.flip(0, 1, 2, 3)
    return m.to(torch.get_default_dtype())


def emerging_log_det(W1: Tensor, W2: Tensor, height: int, width: int) -> Tensor:
    """log|det J| of ``x -> conv(conv(x; W1); W2)`` on one ``height x width`` image, from the centre taps.

        log|det J| = h w sum_c (log|W1[c, c, p, p]| + log|W2[c, c, p, p]|),   p = k // 2

    ``W1`` and ``W2`` are masked kernels (``emerging_mask``, the second flipped): each
    convolution's Jacobian is triangular in raster order with the centre tap's diagonal repeated
    at all ``h w`` pixels on its diagonal, and the determinant of the product is the product of
    the determinants. (The lecture's row is the sum over ``c``: one pixel.)

    Paper: [6] Hoogeboom, van den Berg and Welling, 2019.

    Args:
        W1, W2: the masked kernels ``(c, c, k, k)``. height, width: the image size.

    Example:
        >>> W1, W2 = emerging_mask(2, 3), emerging_mask(2, 3, flip=True)
        >>> W1[:, :, 1, 1] = torch.tensor([[2.0, 0.0], [0.5, -1.0]])
        >>> round(emerging_log_det(W1, W2, 4, 4).item(), 4)     # 16 (log 2 + log 1 + 0 + 0)
        11.0904
    """
    p = W1.shape[-1] // 2
    diagonals = torch.cat([torch.diagonal(W1[:, :, p, p]), torch.diagonal(W2[:, :, p, p])])
    return height * width * diagonals.abs().log().sum()


def _off_centre(W: Tensor) -> tuple[Tensor, Tensor]:
    """``(T, W_off)``: the centre tap ``T = W[:, :, p, p]`` and ``W`` with its centre tap zeroed,
    flattened to ``(c, c * k * k)`` (input channel, then kernel row, then kernel column)."""
    p = W.shape[-1] // 2
    T = W[:, :, p, p]
    centre = torch.zeros_like(W)
    centre[:, :, p, p] = 1
    return T, (W * (1 - centre)).reshape(W.shape[0], -1)


def _solve_pixels(r: Tensor, x_pad: Tensor, T: Tensor, W_off: Tensor, rows: Tensor, cols: Tensor,
                  upper: bool) -> Tensor:
    """Solve the pixels ``(rows[n], cols[n])`` at once: ``(batch, c, n)``.

    ``r = y - bias``; ``x_pad`` holds the solved pixels (padded by ``k//2``). For each pixel,
    subtract what the off-centre taps read, then solve the centre's triangular system.
    """
    b, c = r.shape[:2]
    k = round((W_off.shape[1] // c) ** 0.5)
    offsets = torch.arange(k, device=rows.device)
    rr = rows[:, None, None] + offsets[None, :, None]           # (n, k, 1): padded rows of the patch
    cc = cols[:, None, None] + offsets[None, None, :]           # (n, 1, k): padded columns
    patch = x_pad[:, :, rr, cc]                                 # (b, c, n, k, k)
    n = rows.shape[0]
    patch = patch.permute(0, 2, 1, 3, 4).reshape(b, n, -1)      # (b, n, c * k * k)
    rhs = r[:, :, rows, cols].permute(0, 2, 1) - patch @ W_off.t()       # (b, n, c)
    x = torch.linalg.solve_triangular(T, rhs.reshape(-1, c).t(), upper=upper).t()
    return x.reshape(b, n, c).permute(0, 2, 1)


def solve_pixel(y: Tensor, x: Tensor, W: Tensor, bias: Tensor, i: int, j: int, upper: bool = False) -> Tensor:
    """One step of the substitution inverse: pixel ``(i, j)`` of ``x`` from ``y = conv(x; W) + bias``.

        r = y[:, :, i, j] - bias - sum over taps (a, b) != centre of W[:, :, a, b] x[:, :, i + a - p, j + b - p]
        x[:, :, i, j] = T^-1 r,   T = W[:, :, p, p] (triangular),   p = k // 2

    ``W`` is a masked kernel (``W = weight * emerging_mask(...)``): its off-centre taps read
    only pixels solved before ``(i, j)`` (earlier in raster order; later with ``upper=True``),
    and ``T`` is lower triangular (upper with ``upper=True``). The pixels of ``x`` not solved
    yet are never read, whatever they hold; pixels outside the image count as 0 (zero padding).

    Paper: [6] Hoogeboom, van den Berg and Welling, 2019.

    Args:
        y: ``(batch, c, h, w)``, the convolution's output.
        x: ``(batch, c, h, w)`` holding the pixels solved so far (others: anything).
        W: the masked kernel ``(c, c, k, k)``; bias: ``(c,)``.
        i, j: the pixel to solve. upper: ``W`` has the flipped mask.

    Example:
        >>> W = 0.3 * torch.randn(2, 2, 3, 3) * emerging_mask(2, 3)
        >>> W[:, :, 1, 1] += torch.eye(2)                     # centre tap: lower triangular
        >>> bias, x = torch.randn(2), torch.randn(1, 2, 4, 4)
        >>> y = F.conv2d(x, W, bias, padding=1)
        >>> garbage = x.clone(); garbage[:, :, 2, 1:] = 99; garbage[:, :, 3] = 99   # not solved yet
        >>> torch.allclose(solve_pixel(y, garbage, W, bias, 2, 1), x[:, :, 2, 1], atol=1e-5)
        True
    """
    p = W.shape[-1] // 2
    T, W_off = _off_centre(W)
    r = y - bias.view(1, -1, 1, 1)
    x_pad = F.pad(x, (p, p, p, p))
    at = torch.tensor([i], device=y.device), torch.tensor([j], device=y.device)
    return _solve_pixels(r, x_pad, T, W_off, at[0], at[1], upper)[:, :, 0]


def wavefront_steps(height: int, width: int, kernel_size: int = 3) -> Tensor:
    """The step at which the substitution inverse can solve each pixel: ``(height, width)`` int64.

        t(i, j) = (p + 1) i + j,   p = kernel_size // 2

    A masked ``k x k`` convolution's pixel ``(i, j)`` reads pixels ``(i - a, j + b)`` with
    ``1 <= a <= p`` and ``|b| <= p`` (rows above, up to ``p`` columns to the right) and
    ``(i, j - b)`` with ``1 <= b <= p``; each has a smaller ``t``. So all pixels with the same
    ``t`` can be solved together once the earlier steps are done: ``(p + 1)(h - 1) + w`` steps
    instead of the ``h w`` of plain raster order (the flipped mask runs the steps backwards).

    Paper: [6] Hoogeboom, van den Berg and Welling, 2019 (the sequential inverse).

    Args:
        height, width: the image size. kernel_size: ``k``, odd.

    Example:
        >>> wavefront_steps(3, 4).tolist()
        [[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7]]
        >>> int(wavefront_steps(8, 8).max()) + 1, 8 * 8      # sequential steps: wavefront, raster
        (22, 64)
    """
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd and positive, got {kernel_size}")
    p = kernel_size // 2
    i = torch.arange(height)[:, None]
    j = torch.arange(width)[None, :]
    return (p + 1) * i + j


def _pixel_groups(h: int, w: int, kernel_size: int, schedule: str, upper: bool, device) -> list[tuple[Tensor, Tensor]]:
    """The pixels of each sequential step, in the order the substitution visits them."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if schedule == "raster":
        steps = torch.arange(h * w).view(h, w)
    else:
        steps = wavefront_steps(h, w, kernel_size)
    flat = steps.reshape(-1)
    order = torch.argsort(flat, stable=True)
    counts = torch.bincount(flat).tolist()
    groups, start = [], 0
    for n in counts:
        idx = order[start:start + n]
        start += n
        groups.append(((idx // w).to(device), (idx % w).to(device)))
    return groups[::-1] if upper else groups


def masked_conv_inverse(y: Tensor, W: Tensor, bias: Tensor | None = None, upper: bool = False,
                        schedule: str = "raster") -> Tensor:
    """Invert one masked convolution by sequential substitution: ``x`` with ``conv(x; W) + bias = y``.

        for each step, for its pixels (i, j):   x[:, :, i, j] = T^-1 (y[:, :, i, j] - bias - off-centre taps of x)

    The ``solve_pixel`` step, applied in raster order (``upper=True``: reverse raster order), or
    ``schedule="wavefront"``: all pixels of one ``wavefront_steps`` step at once. Raster order
    takes ``h w`` sequential steps, the wavefront ``(p + 1)(h - 1) + w``; both give the same ``x``.

    Paper: [6] Hoogeboom, van den Berg and Welling, 2019.

    Args:
        y: ``(batch, c, h, w)``. W: the masked kernel ``(c, c, k, k)``. bias: ``(c,)`` or ``None``.
        upper: ``W`` has the flipped mask (upper triangular Jacobian).
        schedule: ``"raster"`` (one pixel per step) or ``"wavefront"``.

    Example:
        >>> W = 0.1 * torch.randn(3, 3, 3, 3) * emerging_mask(3, 3)
        >>> W[:, :, 1, 1] += torch.eye(3)
        >>> x = torch.randn(2, 3, 5, 6)
        >>> y = F.conv2d(x, W, padding=1)
        >>> [bool((masked_conv_inverse(y, W, schedule=s) - x).abs().max() < 1e-5) for s in SCHEDULES]
        [True, True]
    """
    b, c, h, w = y.shape
    p = W.shape[-1] // 2
    T, W_off = _off_centre(W)
    r = y if bias is None else y - bias.view(1, c, 1, 1)
    x_pad = y.new_zeros(b, c, h + 2 * p, w + 2 * p)  # unknown pixels stay 0 until solved
    for rows, cols in _pixel_groups(h, w, W.shape[-1], schedule, upper, y.device):
        x_pad[:, :, rows + p, cols + p] = _solve_pixels(r, x_pad, T, W_off, rows, cols, upper)
    return x_pad[:, :, p:p + h, p:p + w]


class EmergingConv(FlowLayer):
    """Emerging convolution: two masked ``k x k`` convolutions, each triangular, composed.

        y = conv(conv(x; W1 * m1) + b1; W2 * m2) + b2,     m2 = m1.flip(0, 1, 2, 3)
        log|det J| = h w sum_c (log|W1[c, c, p, p]| + log|W2[c, c, p, p]|),   p = k // 2

    Each convolution is autoregressive in raster order (``emerging_mask``): the first has a lower
    triangular Jacobian, the second an upper one, each with its centre taps on the diagonal at
    every pixel, hence the log-det (``emerging_log_det``). (The lecture writes ``y = k * (g * x)``: our first
    convolution is its ``g``, the second its ``k``; the lecture's sum is per pixel, times
    ``h w`` for the image.) Each alone reads only one half of the neighbourhood; composed they
    read every neighbour, like an ordinary ``k x k`` convolution. The inverse undoes the second
    convolution, then the first, by sequential substitution (``masked_conv_inverse``), with
    ``h w`` sequential steps per convolution (``schedule="raster"``) or ``(p + 1)(h - 1) + w``
    (``"wavefront"``). Zero padding keeps the Jacobians triangular; the centre taps start at the
    identity plus small noise, away from 0.

    Paper: [6] Hoogeboom, van den Berg and Welling, 2019.

    Args:
        channels: ``c``, the image's channels.
        kernel_size: ``k``, odd.
        init_std: standard deviation of the initial weights around the identity kernel.
        schedule: the inverse's order, ``"raster"`` or ``"wavefront"`` (an attribute: change it
            any time).

    Example:
        >>> layer = EmergingConv(2)
        >>> x = torch.randn(3, 2, 4, 4)
        >>> y, log_det = layer(x)
        >>> x_back, log_det_inv = layer.inverse(y)
        >>> bool((x_back - x).abs().max() < 1e-4), bool(torch.allclose(log_det, -log_det_inv))
        (True, True)
    """

    def __init__(self, channels: int, kernel_size: int = 3, init_std: float = 0.05, schedule: str = "raster"):
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive, got {kernel_size}")
        if channels < 1:
            raise ValueError(f"EmergingConv needs channels >= 1, got {channels}")
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
        self.channels, self.kernel_size, self.schedule = channels, kernel_size, schedule
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


    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        check_image_shape(x, self.channels, name="EmergingConv")
        W1, W2 = self.masked_weights()
        p = self.kernel_size // 2
        y = F.conv2d(F.conv2d(x, W1, self.bias1, padding=p), W2, self.bias2, padding=p)
        return y, emerging_log_det(W1, W2, *x.shape[2:]).expand(x.shape[0])

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        check_image_shape(y, self.channels, name="EmergingConv.inverse")
        W1, W2 = self.masked_weights()
        x1 = masked_conv_inverse(y, W2, self.bias2, upper=True, schedule=self.schedule)  # undo the second
        x = masked_conv_inverse(x1, W1, self.bias1, upper=False, schedule=self.schedule)  # then the first
        return x, -emerging_log_det(W1, W2, *y.shape[2:]).expand(y.shape[0])
