"""Image flow layers of Glow and RealNVP: squeeze, invertible 1x1 convolution, image couplings.

All layers take images ``(batch, channels, height, width)`` and map data to latent,

    y, log_det = layer(x)              log_det[i] = log|det dy_i/dx_i|
    x, log_det_inv = layer.inverse(y)  log_det_inv = -log_det.

Papers (the lecture's reference numbers): [3] Dinh, Sohl-Dickstein & Bengio, "Density
estimation using Real NVP", 2016 (squeeze, checkerboard and channel masks); [4] Kingma &
Dhariwal, "Glow: Generative flow with invertible 1x1 convolutions", 2018.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .base import FlowLayer, check_shape
from .coupling import soft_clamp

__all__ = [
    "Squeeze",
    "InvConv1x1",
    "AffineCouplingImage",
    "AdditiveCouplingImage",
    "checkerboard_mask",
    "channel_mask",
    "check_image_shape",
]


def check_image_shape(x: Tensor, channels: int | None = None, name: str = "input") -> None:
    """Raise a ``ValueError`` unless ``x`` is an image batch ``(batch, channels, height, width)``.

    >>> check_image_shape(torch.zeros(2, 3, 4, 4), channels=3)
    >>> check_image_shape(torch.zeros(5, 4), channels=3)
    Traceback (most recent call last):
    ...
    ValueError: input: expected shape (batch, 3, height, width), got (5, 4)
    """
    check_shape(x, (None, "channels" if channels is None else channels, "height", "width"), name)


# ----------------------------------------------------------------------------------------
# Squeeze
# ----------------------------------------------------------------------------------------
class Squeeze(FlowLayer):
    """Trade space for channels: ``(b, c, h, w) -> (b, 4c, h/2, w/2)`` (RealNVP [3] 2016, Glow [4] 2018).

    Each 2x2 block of pixels becomes four channels. Channel ``4k + 2a + b`` of the output holds
    input channel ``k`` at offset ``(a, b)`` inside the block. It only reorders the numbers, so

        log|det J| = 0.

    The inverse is the matching "unsqueeze". Height and width must be even.

    Example
    -------
    >>> y, log_det = Squeeze()(torch.zeros(5, 1, 8, 8))
    >>> tuple(y.shape), log_det.tolist()
    ((5, 4, 4, 4), [0.0, 0.0, 0.0, 0.0, 0.0])
    """

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        check_image_shape(x, name="Squeeze")
        b, c, h, w = x.shape
        if h % 2 or w % 2:
            raise ValueError(f"Squeeze needs even height and width, got {h}x{w}")
        y = x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
        return y.reshape(b, 4 * c, h // 2, w // 2), x.new_zeros(b)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        check_image_shape(y, name="Squeeze.inverse")
        b, c4, h2, w2 = y.shape
        if c4 % 4:
            raise ValueError(f"Squeeze.inverse needs a channel count divisible by 4, got {c4}")
        x = y.reshape(b, c4 // 4, 2, 2, h2, w2).permute(0, 1, 4, 2, 5, 3)
        return x.reshape(b, c4 // 4, 2 * h2, 2 * w2), y.new_zeros(b)


# ----------------------------------------------------------------------------------------
# Invertible 1x1 convolution
# ----------------------------------------------------------------------------------------
def _inverse_float64(W: Tensor) -> Tensor:
    """``W^-1`` computed in float64 (on the CPU when the device has no float64, e.g. MPS)."""
    device = W.device if W.device.type != "mps" else torch.device("cpu")
    return torch.linalg.inv(W.to(device=device, dtype=torch.float64)).to(device=W.device, dtype=W.dtype)


class InvConv1x1(FlowLayer):
    """Invertible 1x1 convolution, a learned mixing of channels (Glow [4]).

    At every pixel the channel vector is multiplied by the same ``c x c`` matrix ``W``:

        y[:, :, i, j] = W x[:, :, i, j]          log|det J| = h * w * log|det W|.

    ``W`` starts as a random rotation (QR of a Gaussian matrix), so the layer starts volume
    preserving. With ``lu=True`` (Glow's LU parametrisation)

        W = P L (U + diag(sign * exp(log_s)))    log|det J| = h * w * sum(log_s),

    where the permutation ``P`` and the signs are fixed buffers, ``L`` is strictly lower
    triangular plus the identity and ``U`` strictly upper triangular (both kept triangular by
    masks): the log-det costs O(c) instead of O(c^3). With ``lu=False`` the log-det uses
    ``slogdet(W)``. The inverse uses ``W^-1``, computed in float64.

    Example
    -------
    >>> layer = InvConv1x1(4)
    >>> x = torch.randn(2, 4, 8, 8)
    >>> y, log_det = layer(x)
    >>> x_back, _ = layer.inverse(y)
    >>> torch.allclose(x, x_back, atol=1e-5), log_det.abs().max().item() < 1e-4
    (True, True)
    """

    def __init__(self, channels: int, lu: bool = True):
        super().__init__()
        if channels < 1:
            raise ValueError(f"InvConv1x1 needs channels >= 1, got {channels}")
        self.channels, self.lu = channels, lu
        Q, _ = torch.linalg.qr(torch.randn(channels, channels, dtype=torch.float64))
        dtype = torch.get_default_dtype()
        if not lu:
            self.weight = nn.Parameter(Q.to(dtype))
            return
        P, L, U = torch.linalg.lu(Q)
        s = torch.diagonal(U)
        self.register_buffer("P", P.to(dtype))
        self.register_buffer("sign", torch.sign(s).to(dtype))
        self.register_buffer("lower_mask", torch.tril(torch.ones(channels, channels), -1).to(dtype))
        self.register_buffer("upper_mask", torch.triu(torch.ones(channels, channels), 1).to(dtype))
        self.register_buffer("eye", torch.eye(channels, dtype=dtype))
        self.L = nn.Parameter(L.to(dtype))
        self.U = nn.Parameter(torch.triu(U, 1).to(dtype))
        self.log_s = nn.Parameter(torch.log(s.abs()).to(dtype))

    def matrix(self) -> Tensor:
        """The current ``c x c`` matrix ``W``."""
        if not self.lu:
            return self.weight
        L = self.L * self.lower_mask + self.eye
        U = self.U * self.upper_mask + torch.diag(self.sign * torch.exp(self.log_s))
        return self.P @ L @ U

    def _log_abs_det_W(self) -> Tensor:
        return self.log_s.sum() if self.lu else torch.linalg.slogdet(self.weight).logabsdet

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        check_image_shape(x, self.channels, name="InvConv1x1")
        h, w = x.shape[2:]
        y = torch.einsum("oc,bchw->bohw", self.matrix(), x)
        return y, (h * w * self._log_abs_det_W()).expand(x.shape[0])

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        check_image_shape(y, self.channels, name="InvConv1x1.inverse")
        h, w = y.shape[2:]
        x = torch.einsum("oc,bchw->bohw", _inverse_float64(self.matrix()), y)
        return x, (-h * w * self._log_abs_det_W()).expand(y.shape[0])


# ----------------------------------------------------------------------------------------
# Image couplings
# ----------------------------------------------------------------------------------------
def checkerboard_mask(h: int, w: int, parity: int = 0) -> Tensor:
    """RealNVP's checkerboard mask, shape ``(h, w)``: 1 where ``(i + j + parity)`` is even.

    Entries marked 1 pass through a coupling unchanged and feed its conditioner; entries
    marked 0 are transformed. ``parity=1`` gives the complement.

    >>> checkerboard_mask(2, 3).tolist()
    [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
    """
    i = torch.arange(h).view(-1, 1)
    j = torch.arange(w).view(1, -1)
    return ((i + j + parity) % 2 == 0).to(torch.get_default_dtype())


def channel_mask(c: int, parity: int = 0) -> Tensor:
    """RealNVP's channel mask, shape ``(c,)``: 1 on the first ``c // 2`` channels (``parity=0``)
    or on the remaining ones (``parity=1``). 1 = unchanged and conditioning, 0 = transformed.

    >>> channel_mask(4).tolist(), channel_mask(4, parity=1).tolist()
    ([1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0])
    """
    m = (torch.arange(c) < c // 2).to(torch.get_default_dtype())
    return 1 - m if parity else m


class _ImageCoupling(FlowLayer):
    """Shared code of the affine and additive image couplings (see their docstrings)."""

    additive = False

    def __init__(self, channels: int, mask: str = "checkerboard", hidden: int = 32, flip: bool = False,
                 conditioner: nn.Module | None = None, bound: float = 2.0):
        super().__init__()
        if mask not in ("checkerboard", "channel"):
            raise ValueError(f"mask must be 'checkerboard' or 'channel', got {mask!r}")
        if channels < 1 or (mask == "channel" and channels < 2):
            raise ValueError(f"a {mask} mask needs at least {2 if mask == 'channel' else 1} channels, got {channels}")
        if not bound > 0:
            raise ValueError(f"{type(self).__name__} needs a positive log-scale bound, got bound={bound}")
        self.channels, self.mask, self.flip = channels, mask, flip
        out = channels if self.additive else 2 * channels
        if conditioner is None:
            # A small CNN of the masked input. Its last convolution starts at zero, so the
            # layer starts as the identity.
            conditioner = nn.Sequential(
                nn.Conv2d(channels, hidden, 3, padding=1), nn.ReLU(),
                nn.Conv2d(hidden, hidden, 1), nn.ReLU(),
                nn.Conv2d(hidden, out, 3, padding=1),
            )
            nn.init.zeros_(conditioner[-1].weight)
            nn.init.zeros_(conditioner[-1].bias)
        self.conditioner = conditioner
        if not self.additive:
            # The same soft log-scale bound as the vector AffineCoupling, learned per channel.
            self.log_bound = nn.Parameter(torch.full((channels, 1, 1), math.log(bound)))

    def binary_mask(self, h: int, w: int, device=None, dtype=None) -> Tensor:
        """The mask ``b`` broadcastable to ``(1, channels, h, w)``: 1 = kept, 0 = transformed."""
        parity = int(self.flip)
        if self.mask == "checkerboard":
            b = checkerboard_mask(h, w, parity).view(1, 1, h, w)
        else:
            b = channel_mask(self.channels, parity).view(1, -1, 1, 1)
        return b.to(device=device, dtype=dtype)

    def _shift_and_log_scale(self, x_kept: Tensor) -> tuple[Tensor, Tensor]:
        out = self.conditioner(x_kept)
        expected = (x_kept.shape[0], self.channels * (1 if self.additive else 2), *x_kept.shape[2:])
        if tuple(out.shape) != expected:
            raise ValueError(f"{type(self).__name__}: conditioner must output shape {expected}, got {tuple(out.shape)}")
        if self.additive:
            return out, torch.zeros_like(out)
        raw, t = out.chunk(2, dim=1)
        return t, soft_clamp(raw, self.log_bound.exp())

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        check_image_shape(x, self.channels, name=type(self).__name__)
        b = self.binary_mask(*x.shape[2:], device=x.device, dtype=x.dtype)
        t, s = self._shift_and_log_scale(b * x)
        y = b * x + (1 - b) * (x * torch.exp(s) + t)
        return y, ((1 - b) * s).flatten(1).sum(1)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        check_image_shape(y, self.channels, name=type(self).__name__ + ".inverse")
        b = self.binary_mask(*y.shape[2:], device=y.device, dtype=y.dtype)
        t, s = self._shift_and_log_scale(b * y)  # b * y == b * x: the kept half is unchanged
        x = b * y + (1 - b) * (y - t) * torch.exp(-s)
        return x, -((1 - b) * s).flatten(1).sum(1)


class AffineCouplingImage(_ImageCoupling):
    """RealNVP affine coupling for images with a checkerboard or channel mask ([3] 2016; Glow [4] 2018).

    With a binary mask ``b`` (1 = kept, see ``checkerboard_mask`` and ``channel_mask``) and a
    small CNN that sees only the kept entries, ``raw, t = conditioner(b * x)``, and the log-scale
    ``s = c * tanh(raw / c)`` with a learned per-channel bound ``c = exp(log_bound)`` (as in
    ``AffineCoupling``):

        y = b * x + (1 - b) * (x * exp(s) + t)
        log|det J| = sum over the transformed entries of s = sum((1 - b) * s).

    The Jacobian is triangular once the kept entries are ordered first. The inverse is
    ``x = b * y + (1 - b) * (y - t) * exp(-s)`` with the same ``t, s`` (the kept entries did not
    change). The last convolution is zero at the start, so the layer starts as the identity;
    ``flip=True`` swaps the roles of the two halves (alternate it between layers).

    Example
    -------
    >>> layer = AffineCouplingImage(2, mask="checkerboard")
    >>> x = torch.randn(3, 2, 4, 4)
    >>> y, log_det = layer(x)
    >>> torch.equal(x, y), log_det.tolist()   # identity at the start
    (True, [0.0, 0.0, 0.0])
    """


class AdditiveCouplingImage(_ImageCoupling):
    """NICE additive coupling for images with a checkerboard or channel mask ([1] 2014; Glow [4] 2018).

    With a binary mask ``b`` (1 = kept) and a small CNN ``t = net(b * x)``:

        y = b * x + (1 - b) * (x + t)          log|det J| = 0 (volume preserving),

    inverse ``x = b * y + (1 - b) * (y - t)``. Combine it with a scaling layer (ActNorm) to
    change volume. Starts as the identity (zero last convolution); ``flip=True`` swaps halves.

    Example
    -------
    >>> layer = AdditiveCouplingImage(4, mask="channel")
    >>> y, log_det = layer(torch.randn(3, 4, 4, 4))
    >>> tuple(y.shape), log_det.tolist()
    ((3, 4, 4, 4), [0.0, 0.0, 0.0])
    """

    additive = True
