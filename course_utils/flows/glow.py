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

from .base import FlowLayer, FlowSequential, check_shape
from .coupling import soft_clamp

__all__ = [
    "Squeeze",
    "InvConv1x1",
    "AffineCouplingImage",
    "AdditiveCouplingImage",
    "checkerboard_mask",
    "channel_mask",
    "check_image_shape",
    "Unsqueeze",
    "FactorOut",
    "Logit",
]


def check_image_shape(x: Tensor, channels: int | None = None, name: str = "input") -> None:
    """Raise a ``ValueError`` unless ``x`` is an image batch ``(batch, channels, height, width)``.

    Args:
        x: the tensor to check.
        channels: the number of channels required, or ``None`` for any.
        name: who is asking, for the message (e.g. the layer's name).

    Example:
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
    """Trade space for channels: ``(b, c, h, w) -> (b, 4c, h/2, w/2)``, each 2x2 block becomes 4 channels.

        y[:, 4k + 2a + b, i, j] = x[:, k, 2i + a, 2j + b]       a, b in {0, 1}
        log|det J| = 0            (the numbers are only reordered: a permutation matrix)

    Input channel ``k`` at offset ``(a, b)`` inside a block goes to output channel ``4k + 2a + b``
    (the order of ``torch.nn.functional.pixel_unshuffle``). The inverse is the matching
    "unsqueeze" (``inverse``, or the layer ``Unsqueeze``). Height and width must be even.

    Paper: [3] Dinh, Sohl-Dickstein and Bengio, 2016 (the squeeze of the multi-scale
    architecture); [4] Kingma and Dhariwal, 2018.

    Example:
        >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
        >>> y, log_det = Squeeze()(x)
        >>> tuple(y.shape), y[0, :, 0, 0].tolist(), log_det.tolist()    # the top-left block
        ((1, 4, 2, 2), [0.0, 1.0, 4.0, 5.0], [0.0])
        >>> torch.equal(Squeeze().inverse(y)[0], x)
        True
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
    """Invertible 1x1 convolution: the same learned ``c x c`` matrix ``W`` mixes the channels at every pixel.

        y[:, :, i, j] = W x[:, :, i, j]          log|det J| = h * w * log|det W|

    Ordered pixel by pixel, the Jacobian is block diagonal with ``h * w`` copies of ``W``, hence
    the factor ``h * w``. ``W`` starts as a random rotation (QR of a Gaussian matrix), so the
    layer starts volume preserving. With ``lu=True`` (Glow's LU parametrisation)

        W = P L (U + diag(sign * exp(log_s)))    log|det J| = h * w * sum(log_s),

    where the permutation ``P`` and the signs are fixed buffers, ``L`` is strictly lower
    triangular plus the identity and ``U`` strictly upper triangular (both kept triangular by
    masks): the log-det costs O(c) instead of O(c^3), and ``det W = sign-product * exp(sum(log_s))``
    can never reach 0 or change sign. The layer still builds ``W`` from its factors at every call
    (two c x c matrix products, O(c^3) like ``slogdet``), so a training step is not cheaper on
    that account; notebook 07 measures both. With ``lu=False`` (plain) ``W`` is a free matrix and the
    log-det uses ``slogdet(W)``. The inverse uses ``W^-1``, computed in float64.

    Paper: [4] Kingma and Dhariwal, 2018.

    Args:
        channels: ``c``, the number of channels mixed.
        lu: the LU parametrisation (``True``) or a plain matrix (``False``).

    Example:
        >>> layer = InvConv1x1(4)
        >>> x = torch.randn(2, 4, 8, 8)
        >>> y, log_det = layer(x)
        >>> x_back, _ = layer.inverse(y)
        >>> torch.allclose(x, x_back, atol=1e-5), log_det.abs().max().item() < 1e-4    # a rotation
        (True, True)
        >>> W = layer.matrix()
        >>> bool(torch.isclose(layer(x)[1][0], 64 * torch.linalg.slogdet(W).logabsdet, atol=1e-4))
        True
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
        """The current ``c x c`` matrix ``W`` (``P L (U + diag(sign * exp(log_s)))`` with ``lu=True``).

        Example:
            >>> InvConv1x1(3).matrix().shape
            torch.Size([3, 3])
        """
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

        b[i, j] = 1 if (i + j + parity) % 2 == 0 else 0

    Entries marked 1 pass through a coupling unchanged and feed its conditioner; entries
    marked 0 are transformed. ``parity=1`` gives the complement.

    Paper: [3] Dinh, Sohl-Dickstein and Bengio, 2016.

    Args:
        h, w: the image's height and width.
        parity: 0, or 1 for the complement.

    Example:
        >>> checkerboard_mask(2, 3).tolist()
        [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
    """
    i = torch.arange(h).view(-1, 1)
    j = torch.arange(w).view(1, -1)
    return ((i + j + parity) % 2 == 0).to(torch.get_default_dtype())


def channel_mask(c: int, parity: int = 0) -> Tensor:
    """RealNVP's channel mask, shape ``(c,)``: 1 on the first ``c // 2`` channels, 0 on the rest.

        b[k] = 1 if k < c // 2 else 0          (parity=1: the complement)

    1 = unchanged and conditioning, 0 = transformed. Used after a squeeze, when space has been
    traded for channels.

    Paper: [3] Dinh, Sohl-Dickstein and Bengio, 2016.

    Args:
        c: the number of channels.
        parity: 0, or 1 for the complement.

    Example:
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
    """RealNVP's affine coupling for images, with a checkerboard or a channel mask.

        raw, t = conditioner(b * x),    s = c * tanh(raw / c)
        y = b * x + (1 - b) * (x * exp(s) + t)
        log|det J| = sum((1 - b) * s)           (over the transformed entries only)

    ``b`` is the binary mask (1 = kept, see ``checkerboard_mask`` and ``channel_mask``); the
    conditioner, a small CNN, sees only the kept entries; the log-scale is bounded softly by a
    learned per-channel ``c = exp(log_bound)`` (as in ``AffineCoupling``). The Jacobian is
    triangular once the kept entries are ordered first. The inverse is
    ``x = b * y + (1 - b) * (y - t) * exp(-s)`` with the same ``t, s`` (the kept entries did not
    change). The last convolution is zero at the start, so the layer starts as the identity.

    Paper: [3] Dinh, Sohl-Dickstein and Bengio, 2016; [4] Kingma and Dhariwal, 2018 (the
    channel-mask coupling of every step of Glow).

    Args:
        channels: the number of channels (at least 2 for a channel mask).
        mask: ``"checkerboard"`` or ``"channel"``.
        hidden: the width of the default conditioner (conv 3x3, conv 1x1, conv 3x3).
        flip: swap the roles of the two halves (alternate it between layers).
        conditioner: your own module mapping ``(b, c, h, w) -> (b, 2c, h, w)``.
        bound: the log-scale bound ``c`` at the start.

    Example:
        >>> layer = AffineCouplingImage(2, mask="checkerboard")
        >>> x = torch.randn(3, 2, 4, 4)
        >>> y, log_det = layer(x)
        >>> torch.equal(x, y), log_det.tolist()   # identity at the start
        (True, [0.0, 0.0, 0.0])
    """


class AdditiveCouplingImage(_ImageCoupling):
    """NICE's additive coupling for images, with a checkerboard or a channel mask.

        t = conditioner(b * x),    y = b * x + (1 - b) * (x + t),    log|det J| = 0

    Volume preserving; the inverse is ``x = b * y + (1 - b) * (y - t)``. Combine it with a
    scaling layer (ActNorm) to change volume. Starts as the identity (zero last convolution).

    Paper: [1] Dinh, Krueger and Bengio, 2014; [4] Kingma and Dhariwal, 2018 (Glow's additive
    variant).

    Args:
        channels: the number of channels (at least 2 for a channel mask).
        mask: ``"checkerboard"`` or ``"channel"``.
        hidden: the width of the default conditioner.
        flip: swap the roles of the two halves.
        conditioner: your own module mapping ``(b, c, h, w) -> (b, c, h, w)``.

    Example:
        >>> layer = AdditiveCouplingImage(4, mask="channel")
        >>> y, log_det = layer(torch.randn(3, 4, 4, 4))
        >>> tuple(y.shape), log_det.tolist()
        ((3, 4, 4, 4), [0.0, 0.0, 0.0])
    """

    additive = True


# ----------------------------------------------------------------------------------------
# Multi-scale pieces: unsqueeze, factor-out, logit preprocessing
# ----------------------------------------------------------------------------------------
class Unsqueeze(FlowLayer):
    """The inverse of ``Squeeze`` as a layer: ``(b, 4c, h, w) -> (b, c, 2h, 2w)``.

        y[:, k, 2i + a, 2j + b] = x[:, 4k + 2a + b, i, j]        log|det J| = 0

    A multi-scale flow squeezes at the start of a level and unsqueezes at its end, so that every
    level (and the whole flow) keeps the shape of its input.

    Paper: [3] Dinh, Sohl-Dickstein and Bengio, 2016.

    Example:
        >>> x = torch.randn(2, 1, 4, 4)
        >>> y, _ = Squeeze()(x)
        >>> torch.equal(Unsqueeze()(y)[0], x)
        True
    """

    def __init__(self):
        super().__init__()
        self.squeeze = Squeeze()

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.squeeze.inverse(x)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        return self.squeeze(y)


class FactorOut(FlowLayer):
    """Multi-scale factor-out: half the channels leave the flow, the rest runs through ``inner``.

        x = (x_keep, x_out),  x_keep = x[:, :c//2],  x_out = x[:, c//2:]
        y = (inner(x_keep), x_out'),        log|det J| = log|det J_inner| (+ the prior's log-det)

    ``x_out`` goes straight to the base distribution (it is the latent of this scale); only
    ``x_keep`` runs through ``inner``, the rest of the flow, which must keep its input's shape
    (a later level starts with ``Squeeze`` and ends with ``Unsqueeze``). With
    ``learned_prior=True`` (Glow's split prior), ``x_out`` is first standardised by a mean and
    scale computed from ``x_keep``, ``x_out' = (x_out - mu(x_keep)) * exp(-log_sigma(x_keep))``:
    an affine coupling with a channel mask, so the base N(0, I) on ``x_out'`` is the learned
    conditional Gaussian N(mu, sigma^2) on ``x_out``. The Jacobian is block triangular, so the
    log-dets add.

    Paper: [3] Dinh, Sohl-Dickstein and Bengio, 2016 (multi-scale architecture); [4] Kingma and
    Dhariwal, 2018 (the learned split prior).

    Args:
        inner: the flow applied to the kept channels (shape-preserving).
        channels: the number of input channels ``c`` (at least 2).
        learned_prior: standardise ``x_out`` given ``x_keep`` (Glow); otherwise ``x_out`` is
            passed through unchanged (RealNVP).
        hidden: width of the prior's conditioner.

    Example:
        >>> layer = FactorOut(FlowSequential(), channels=4)     # an empty inner flow: the identity
        >>> x = torch.randn(3, 4, 2, 2)
        >>> y, log_det = layer(x)
        >>> torch.equal(y, x), log_det.tolist()          # identity at the start
        (True, [0.0, 0.0, 0.0])
    """

    def __init__(self, inner: nn.Module, channels: int, learned_prior: bool = True, hidden: int = 32):
        super().__init__()
        if channels < 2:
            raise ValueError(f"FactorOut needs at least 2 channels to split, got {channels}")
        self.inner, self.channels = inner, channels
        self.n_keep = channels // 2
        # a channel-mask coupling keeps the first c // 2 channels (x_keep) and transforms the rest (x_out)
        self.prior = AffineCouplingImage(channels, mask="channel", hidden=hidden) if learned_prior else None

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        check_image_shape(x, self.channels, name="FactorOut")
        log_det = x.new_zeros(x.shape[0])
        if self.prior is not None:
            x, log_det = self.prior(x)
        keep, out = x[:, :self.n_keep], x[:, self.n_keep:]
        y_keep, ld = self.inner(keep)
        if y_keep.shape != keep.shape:
            raise ValueError(f"FactorOut: the inner flow must keep its input's shape {tuple(keep.shape)}, "
                             f"got {tuple(y_keep.shape)}")
        return torch.cat([y_keep, out], dim=1), log_det + ld

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        check_image_shape(y, self.channels, name="FactorOut.inverse")
        x_keep, log_det = self.inner.inverse(y[:, :self.n_keep])
        x = torch.cat([x_keep, y[:, self.n_keep:]], dim=1)
        if self.prior is not None:
            x, ld = self.prior.inverse(x)
            log_det = log_det + ld
        return x, log_det

    def extra_repr(self) -> str:
        return f"channels={self.channels}, keep={self.n_keep}, learned_prior={self.prior is not None}"


def _check_rank(x: Tensor, name: str) -> None:
    if x.dim() not in (2, 4):
        raise ValueError(f"{name}: expected shape (batch, channels, height, width) or (batch, features), "
                         f"got {tuple(x.shape)}")


class Logit(FlowLayer):
    """RealNVP's logit preprocessing: data in [0, 1] to the whole real line, element-wise.

        s = alpha + (1 - 2 alpha) x,   y = log(s) - log(1 - s)
        log|det J| = sum_i [log(1 - 2 alpha) - log(s_i) - log(1 - s_i)]

    ``alpha`` keeps ``s`` away from 0 and 1 (dequantised pixels can be 0). The inverse is
    ``x = (sigmoid(y) - alpha) / (1 - 2 alpha)``. Takes images ``(batch, channels, h, w)`` or
    vectors ``(batch, features)``, any number of channels or features.

    Paper: [3] Dinh, Sohl-Dickstein and Bengio, 2016.

    Args:
        alpha: the margin, ``0 <= alpha < 0.5``. RealNVP used 0.05; on the 8x8 digits, about half
            exact zeros dequantised into [0, 1/17), a small margin such as 0.001 (the course's
            ``GLOW_DIGITS``) turns that interval into a smooth tail after the logit and fits better.

    Example:
        >>> y, log_det = Logit(alpha=0.05)(torch.full((1, 1, 2, 2), 0.5))
        >>> y.flatten().tolist(), round(log_det.item(), 4)        # 4 (log 0.9 - 2 log 0.5)
        ([0.0, 0.0, 0.0, 0.0], 5.1237)
    """

    def __init__(self, alpha: float = 0.05):
        super().__init__()
        if not 0 <= alpha < 0.5:
            raise ValueError(f"Logit needs 0 <= alpha < 0.5, got {alpha}")
        self.alpha = alpha

    def _log_det(self, s: Tensor) -> Tensor:
        per_entry = math.log(1 - 2 * self.alpha) - torch.log(s) - torch.log1p(-s)
        return per_entry.flatten(1).sum(1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        _check_rank(x, "Logit")
        s = self.alpha + (1 - 2 * self.alpha) * x
        return torch.log(s) - torch.log1p(-s), self._log_det(s)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        _check_rank(y, "Logit.inverse")
        s = torch.sigmoid(y)
        return (s - self.alpha) / (1 - 2 * self.alpha), -self._log_det(s)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"
