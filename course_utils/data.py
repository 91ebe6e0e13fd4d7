"""Offline data for the course: 2-D toy densities, digits, the cameraman image, synthetic audio.

Nothing here downloads anything. Every data set is generated from torch's global random number
generator (so ``torch.manual_seed`` makes it reproducible) or shipped inside an installed package
(``sklearn.datasets.load_digits``, ``skimage.data.camera``).

Toy densities
-------------
The 2-D densities of FFJORD (Grathwohl et al., 2019, ``lib/toy_data.py``), written as proper
continuous distributions: ``toy_density(name)`` returns a :class:`ToyDensity`, a
``torch.distributions.Distribution`` with ``event_shape == (2,)``. Four of them have an **exact**
log-density, so a trained flow's average negative log-likelihood can be compared with the true
entropy, the floor no model can beat:

- ``8gaussians``: 8 equal Gaussians, centres ``(4/1.414) (cos k pi/4, sin k pi/4)``, standard
  deviation ``0.5/1.414``. Entropy 2.832 nats.
- ``checkerboard``: uniform on 8 squares of side 2 in ``[-4, 4)^2`` (area 32). Entropy
  ``log 32 = 3.466``.
- ``rings``: circles of radius 3, 2.25, 1.5, 0.75, equal weights, uniform angle, plus Gaussian
  noise of standard deviation 0.08. Entropy 2.623.
- ``moons``: sklearn's two moons with noise 0.1, scaled by 2 and shifted by ``(-1, -0.2)``
  (noise standard deviation 0.2). Entropy 2.394.

(Entropies: Monte Carlo with 4 million samples, standard error about 0.0005.)

``pinwheel``, ``swissroll`` and ``2spirals`` are sampler-only: their ``log_prob`` raises
``NotImplementedError``.

Example:
    >>> from course_utils.data import toy_density
    >>> p = toy_density("8gaussians")
    >>> x = p.sample((1000,))
    >>> x.shape, p.log_prob(x).shape
    (torch.Size([1000, 2]), torch.Size([1000]))
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np
import torch
from torch.distributions import Distribution, constraints

__all__ = [
    "TOY_DENSITIES",
    "EXACT_TOY_DENSITIES",
    "ToyDensity",
    "toy_density",
    "DIGIT_LEVELS",
    "DIGITS_N_TRAIN",
    "DIGITS_N_TEST",
    "DigitsSplit",
    "load_digits_dataset",
    "load_digits_int",
    "digits_split_indices",
    "dequantize",
    "resize_images",
    "bits_per_dim",
    "ImageData",
    "cameraman",
    "get_mgrid",
    "AudioClip",
    "audio_clip",
]

_LOG_2PI = math.log(2.0 * math.pi)


# ----------------------------------------------------------------------------------------------
# 2-D toy densities
# ----------------------------------------------------------------------------------------------


class ToyDensity(Distribution):
    """A 2-D toy density (FFJORD's toy data) as a ``torch.distributions.Distribution``.

    ``sample(sample_shape)`` returns ``sample_shape + (2,)`` in ``torch.get_default_dtype()``,
    drawn from torch's global generator. ``log_prob(x)`` returns shape ``x.shape[:-1]`` in ``x``'s
    dtype (computed internally in float64) for the densities that have a closed form; the others
    raise ``NotImplementedError``. Build one with :func:`toy_density`.

    Paper: FFJORD (Grathwohl et al., 2019; not in the lecture's list), its ``lib/toy_data.py``.

    Example:
        >>> p = toy_density("checkerboard")
        >>> x = p.sample((500,))
        >>> x.shape, bool((p.log_prob(x) == -math.log(32)).all())
        (torch.Size([500, 2]), True)
        >>> p.has_log_prob, round(p.reference_entropy, 3)
        (True, 3.466)
    """

    arg_constraints: dict = {}
    support = constraints.real_vector
    has_rsample = False

    #: the name under which :func:`toy_density` knows this density
    name: str = ""
    #: True when ``log_prob`` is exact (closed form or accurate 1-D quadrature)
    has_log_prob: bool = False
    #: the true entropy in nats (Monte Carlo with 4 million samples), ``None`` if unknown
    reference_entropy: float | None = None

    def __init__(self) -> None:
        super().__init__(batch_shape=torch.Size(), event_shape=torch.Size([2]), validate_args=False)

    # -- sampling -------------------------------------------------------------------------------
    def sample(self, sample_shape: Sequence[int] | torch.Size = torch.Size()) -> torch.Tensor:
        shape = torch.Size(sample_shape)
        n = int(math.prod(shape))
        with torch.no_grad():
            x = self._sample(n)  # (n, 2) float64
        return x.to(torch.get_default_dtype()).reshape(shape + (2,))

    def _sample(self, n: int) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- density --------------------------------------------------------------------------------
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        if not self.has_log_prob:
            raise NotImplementedError(
                f"The toy density {self.name!r} has no closed-form log-density (it is sampler-only). "
                f"Densities with an exact log_prob: {', '.join(EXACT_TOY_DENSITIES)}."
            )
        x = torch.as_tensor(x)
        if x.shape[-1:] != (2,):
            raise ValueError(f"log_prob expects points of shape (..., 2), got {tuple(x.shape)}")
        out_dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()
        flat = x.detach().reshape(-1, 2).to(torch.float64)
        out = self._log_prob64(flat)
        return out.reshape(x.shape[:-1]).to(dtype=out_dtype, device=x.device)

    def _log_prob64(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def entropy_estimate(self, n: int = 200_000) -> float:
        """Monte Carlo estimate ``-mean(log p(x_i))`` with ``x_i ~ p`` (nats)."""
        x = self._sample(n)
        return float(-self._log_prob64(x).mean())

    def __repr__(self) -> str:
        kind = "exact log_prob" if self.has_log_prob else "sampler only"
        ent = f", entropy~{self.reference_entropy:.3f}" if self.reference_entropy is not None else ""
        return f"ToyDensity({self.name!r}, {kind}{ent})"


class _EightGaussians(ToyDensity):
    """``x = (0.5 * eps + 4 * (cos(k pi/4), sin(k pi/4))) / 1.414``, ``k ~ U{0..7}``, ``eps ~ N(0, I)``.

    ``log p(x) = logsumexp_k log N(x; c_k, s^2 I) - log 8`` with ``s = 0.5/1.414``.
    """

    name = "8gaussians"
    has_log_prob = True
    reference_entropy = 2.832
    scale = 4.0 / 1.414
    std = 0.5 / 1.414

    def __init__(self) -> None:
        super().__init__()
        angles = torch.arange(8, dtype=torch.float64) * (math.pi / 4)
        self.centres = self.scale * torch.stack([torch.cos(angles), torch.sin(angles)], dim=-1)

    def _sample(self, n: int) -> torch.Tensor:
        k = torch.randint(0, 8, (n,))
        eps = torch.randn(n, 2, dtype=torch.float64)
        return self.centres[k] + self.std * eps

    def _log_prob64(self, x: torch.Tensor) -> torch.Tensor:
        sq = ((x[:, None, :] - self.centres.to(x.device)) ** 2).sum(-1)  # (m, 8)
        log_comp = -sq / (2 * self.std**2) - _LOG_2PI - 2 * math.log(self.std)
        return torch.logsumexp(log_comp, dim=-1) - math.log(8)


class _Checkerboard(ToyDensity):
    """Uniform on the 8 dark squares (side 2) of a 4x4 checkerboard covering ``[-4, 4)^2``.

    FFJORD: ``x1 = 4U - 2``, ``x2 = U' - 2 B + (floor(x1) mod 2)``, both times 2, with
    ``B ~ U{0, 1}``. A point is inside when ``floor(x1/2) + floor(x2/2)`` is even; there
    ``log p = -log 32``, elsewhere ``-inf``.
    """

    name = "checkerboard"
    has_log_prob = True
    reference_entropy = math.log(32.0)

    def _sample(self, n: int) -> torch.Tensor:
        x1 = 4 * torch.rand(n, dtype=torch.float64) - 2
        b = torch.randint(0, 2, (n,), dtype=torch.float64)
        x2 = torch.rand(n, dtype=torch.float64) - 2 * b + torch.remainder(torch.floor(x1), 2)
        return 2 * torch.stack([x1, x2], dim=-1)

    def _log_prob64(self, x: torch.Tensor) -> torch.Tensor:
        cell = torch.floor(x / 2)
        in_box = ((x >= -4) & (x < 4)).all(-1)
        dark = torch.remainder(cell.sum(-1), 2) == 0
        out = torch.full(x.shape[:-1], -math.inf, dtype=torch.float64, device=x.device)
        out[in_box & dark] = -math.log(32.0)
        return out


class _Rings(ToyDensity):
    """Four concentric circles (radius ``r_k``), equal weights, uniform angle, plus ``N(0, s^2 I)``.

    Averaging the Gaussian over the angle gives a modified Bessel function:
    ``p_k(x) = exp(-(rho^2 + r_k^2)/(2 s^2)) I_0(rho r_k / s^2) / (2 pi s^2)`` with ``rho = |x|``;
    in log-space with ``i0e(z) = exp(-z) I_0(z)``:
    ``log p_k = -(rho - r_k)^2/(2 s^2) + log i0e(rho r_k / s^2) - log(2 pi s^2)``.
    """

    name = "rings"
    has_log_prob = True
    reference_entropy = 2.623
    radii = (3.0, 2.25, 1.5, 0.75)
    std = 0.08

    def _sample(self, n: int) -> torch.Tensor:
        r = torch.tensor(self.radii, dtype=torch.float64)[torch.randint(0, 4, (n,))]
        theta = 2 * math.pi * torch.rand(n, dtype=torch.float64)
        circle = r[:, None] * torch.stack([torch.cos(theta), torch.sin(theta)], dim=-1)
        return circle + self.std * torch.randn(n, 2, dtype=torch.float64)

    def _log_prob64(self, x: torch.Tensor) -> torch.Tensor:
        rho = x.norm(dim=-1, keepdim=True)  # (m, 1)
        r = torch.tensor(self.radii, dtype=torch.float64, device=x.device)  # (4,)
        s2 = self.std**2
        log_comp = (
            -((rho - r) ** 2) / (2 * s2)
            + torch.log(torch.special.i0e(rho * r / s2))
            - _LOG_2PI
            - math.log(s2)
        )
        return torch.logsumexp(log_comp, dim=-1) - math.log(len(self.radii))


class _Moons(ToyDensity):
    """Two moons (sklearn ``make_moons``, noise 0.1) mapped by ``2 x + (-1, -0.2)`` as in FFJORD.

    With ``t ~ U[0, pi]`` and equal weights, the arcs' centres are
    ``m_outer(t) = (2 cos t - 1, 2 sin t - 0.2)`` and ``m_inner(t) = (1 - 2 cos t, 0.8 - 2 sin t)``,
    and the noise is ``N(0, s^2 I)`` with ``s = 0.2``. The density
    ``p(x) = 1/2 sum_arcs (1/pi) int_0^pi N(x; m(t), s^2 I) dt`` has no closed form.

    Each arc is half of a circle of radius ``r = 2`` around ``c``. With ``X = x - c``,
    ``rho = |X|``, ``kappa = r rho / s^2`` and ``u(t)`` the unit vector on the circle,
    ``-|x - m(t)|^2 / (2 s^2) = -(rho - r)^2 / (2 s^2) + (r/s^2) X.u(t) - kappa``, whose last two
    terms are <= 0. The integral over ``t`` is composite Gauss-Legendre quadrature
    (``panels x nodes_per_panel`` = 128 nodes per arc), within 1e-6 of a 100 000-point midpoint
    rule wherever ``log p > -100``.
    """

    name = "moons"
    has_log_prob = True
    reference_entropy = 2.394
    std = 0.2
    radius = 2.0
    panels = 8
    nodes_per_panel = 16
    chunk = 16384

    def __init__(self) -> None:
        super().__init__()
        g, w = np.polynomial.legendre.leggauss(self.nodes_per_panel)
        edges = np.linspace(0.0, math.pi, self.panels + 1)
        half = np.diff(edges)[:, None] / 2
        t = torch.from_numpy((edges[:-1, None] + half * (g[None, :] + 1)).ravel())
        self._w = torch.from_numpy((half * w[None, :]).ravel() / math.pi)  # sums to 1
        # arc -> (circle centre, unit vectors u(t) of shape (2, T)); inner arc is angle t + pi
        self._arcs = [
            (torch.tensor([-1.0, -0.2], dtype=torch.float64), torch.stack([t.cos(), t.sin()])),
            (torch.tensor([1.0, 0.8], dtype=torch.float64), torch.stack([-t.cos(), -t.sin()])),
        ]

    @staticmethod
    def arc_means(t: torch.Tensor, inner: bool) -> torch.Tensor:
        """Centre of the noise for parameter ``t`` on the outer or inner arc (after the FFJORD map)."""
        c, s = torch.cos(t), torch.sin(t)
        if inner:
            return torch.stack([1 - 2 * c, 0.8 - 2 * s], dim=-1)
        return torch.stack([2 * c - 1, 2 * s - 0.2], dim=-1)

    def _sample(self, n: int) -> torch.Tensor:
        inner = torch.randint(0, 2, (n,)).bool()
        t = math.pi * torch.rand(n, dtype=torch.float64)
        mean = torch.where(inner[:, None], self.arc_means(t, True), self.arc_means(t, False))
        return mean + self.std * torch.randn(n, 2, dtype=torch.float64)

    def _log_arc(self, x: torch.Tensor, centre: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        s2, r = self.std**2, self.radius
        X = x - centre.to(x.device)
        rho = X.norm(dim=-1)
        a = (X @ u.to(x.device)) * (r / s2) - (r * rho / s2)[:, None]  # (m, T), all <= 0
        w = self._w.to(x.device)
        log_int = torch.log(a.exp() @ w)
        bad = ~torch.isfinite(log_int)  # every node underflowed: far from the arc, redo in log-space
        if bad.any():
            log_int[bad] = torch.logsumexp(a[bad] + w.log(), dim=-1)
        return log_int - (rho - r) ** 2 / (2 * s2) - _LOG_2PI - math.log(s2)

    def _log_prob64(self, x: torch.Tensor) -> torch.Tensor:
        out = []
        for xc in x.split(self.chunk):
            arcs = torch.stack([self._log_arc(xc, c, u) for c, u in self._arcs], dim=-1)
            out.append(torch.logsumexp(arcs, dim=-1) - math.log(2.0))
        return torch.cat(out) if out else x.new_zeros(0)


class _Pinwheel(ToyDensity):
    """FFJORD's pinwheel: 5 arms. ``f = (1 + 0.3 e1, 0.1 e2)``, arm ``k ~ U{0..4}``,
    angle ``a = 2 pi k / 5 + 0.25 exp(f_1)``, point ``2 (f_1 cos a + f_2 sin a, -f_1 sin a + f_2 cos a)``.
    Sampler only.
    """

    name = "pinwheel"

    def _sample(self, n: int) -> torch.Tensor:
        f = torch.randn(n, 2, dtype=torch.float64) * torch.tensor([0.3, 0.1], dtype=torch.float64)
        f[:, 0] += 1.0
        k = torch.randint(0, 5, (n,), dtype=torch.float64)
        a = 2 * math.pi * k / 5 + 0.25 * torch.exp(f[:, 0])
        c, s = torch.cos(a), torch.sin(a)
        y1 = f[:, 0] * c + f[:, 1] * s
        y2 = -f[:, 0] * s + f[:, 1] * c
        return 2 * torch.stack([y1, y2], dim=-1)


class _SwissRoll(ToyDensity):
    """sklearn's swiss roll (noise 1.0), columns ``[0, 2]``, divided by 5 (FFJORD):
    ``t = 1.5 pi (1 + 2U)``, ``x = (t cos t + e1, t sin t + e2) / 5``. Sampler only.
    """

    name = "swissroll"

    def _sample(self, n: int) -> torch.Tensor:
        t = 1.5 * math.pi * (1 + 2 * torch.rand(n, dtype=torch.float64))
        x = torch.stack([t * torch.cos(t), t * torch.sin(t)], dim=-1)
        return (x + torch.randn(n, 2, dtype=torch.float64)) / 5


class _TwoSpirals(ToyDensity):
    """FFJORD's two spirals: ``u = 3 pi sqrt(U)``, ``d = (-u cos u + 0.5 U', u sin u + 0.5 U'')``,
    ``x = +-d / 3 + 0.1 eps`` with a fair sign. Sampler only.
    """

    name = "2spirals"

    def _sample(self, n: int) -> torch.Tensor:
        u = 3 * math.pi * torch.sqrt(torch.rand(n, dtype=torch.float64))
        jitter = 0.5 * torch.rand(n, 2, dtype=torch.float64)
        d = torch.stack([-torch.cos(u) * u, torch.sin(u) * u], dim=-1) + jitter
        sign = 2 * torch.randint(0, 2, (n, 1), dtype=torch.float64) - 1
        return sign * d / 3 + 0.1 * torch.randn(n, 2, dtype=torch.float64)


_TOY_CLASSES = {
    cls.name: cls
    for cls in (_EightGaussians, _Checkerboard, _Rings, _Moons, _Pinwheel, _SwissRoll, _TwoSpirals)
}
#: every toy density's name
TOY_DENSITIES: tuple[str, ...] = tuple(_TOY_CLASSES)
#: the toy densities whose ``log_prob`` is exact
EXACT_TOY_DENSITIES: tuple[str, ...] = tuple(k for k, c in _TOY_CLASSES.items() if c.has_log_prob)


def toy_density(name: str) -> ToyDensity:
    """Return the 2-D toy density called ``name`` (one of :data:`TOY_DENSITIES`).

    Args:
        name: ``8gaussians``, ``checkerboard``, ``rings``, ``moons`` (exact ``log_prob``), or
            ``pinwheel``, ``swissroll``, ``2spirals`` (sampler only).

    Example:
        >>> toy_density("rings")
        ToyDensity('rings', exact log_prob, entropy~2.623)
        >>> toy_density("pinwheel").has_log_prob
        False
    """
    try:
        cls = _TOY_CLASSES[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown toy density {name!r}; expected one of {', '.join(TOY_DENSITIES)}."
        ) from None
    return cls()


# ----------------------------------------------------------------------------------------------
# Digits (sklearn's 8x8 handwritten digits, 17 grey levels)
# ----------------------------------------------------------------------------------------------

#: number of grey levels in sklearn's digits (pixel values 0..16)
DIGIT_LEVELS = 17
DIGITS_N_TRAIN = 1497
DIGITS_N_TEST = 300


class DigitsSplit(NamedTuple):
    """A split of the digits: ``images`` ``(n, 1, size, size)`` and int64 ``labels`` ``(n,)`` in 0..9.

    ``images`` are floats in [0, 1) from :func:`load_digits_dataset`, or integer levels 0..16
    from :func:`load_digits_int`.

    Example:
        >>> images, labels = load_digits_int("test")
        >>> images.shape, labels.dtype
        (torch.Size([300, 1, 8, 8]), torch.int64)
    """

    images: torch.Tensor
    labels: torch.Tensor


@functools.lru_cache(maxsize=1)
def _raw_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()  # bundled with scikit-learn, no download
    return d.images.astype(np.int64), d.target.astype(np.int64)


def digits_split_indices(split: str = "train", seed: int = 0) -> torch.Tensor:
    """Indices into ``sklearn.datasets.load_digits()`` of the fixed split (1497 train / 300 test).

    The split is a permutation from ``numpy.random.default_rng(seed)``: the same on every call.

    Args:
        split: ``"train"`` or ``"test"``.
        seed: the permutation's seed (the course uses 0).

    Example:
        >>> train, test = digits_split_indices("train"), digits_split_indices("test")
        >>> len(train), len(test), len(set(train.tolist()) & set(test.tolist()))
        (1497, 300, 0)
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    n = len(_raw_digits()[1])
    perm = np.random.default_rng(seed).permutation(n)
    idx = perm[:DIGITS_N_TRAIN] if split == "train" else perm[DIGITS_N_TRAIN:]
    return torch.from_numpy(np.sort(idx))


def load_digits_int(split: str = "train", seed: int = 0) -> DigitsSplit:
    """The digits of a split as integer levels: images int64 ``(n, 1, 8, 8)`` in 0..16, labels.

    Args:
        split: ``"train"`` (1497 images) or ``"test"`` (300).
        seed: the split's seed (see :func:`digits_split_indices`).

    Example:
        >>> x, y = load_digits_int("train")
        >>> x.shape, x.dtype, int(x.min()), int(x.max())
        (torch.Size([1497, 1, 8, 8]), torch.int64, 0, 16)
    """
    images, labels = _raw_digits()
    idx = digits_split_indices(split, seed).numpy()
    return DigitsSplit(torch.from_numpy(images[idx]).unsqueeze(1), torch.from_numpy(labels[idx]))


def dequantize(x_int: torch.Tensor, levels: int = DIGIT_LEVELS) -> torch.Tensor:
    """Uniform dequantisation of K-level integers to [0, 1).

        y = (x + u) / K,   u ~ U[0, 1)

    Redraw it for every batch in a training loop. A continuous density ``p`` on [0, 1]^D then
    bounds the discrete log-likelihood: see :func:`bits_per_dim`.

    Paper: Theis, van den Oord and Bethge, 2016 (A note on the evaluation of generative models;
    not in the lecture's list); the flows of [3] Dinh et al., 2016 train on it.

    Args:
        x_int: integer levels in 0..K-1, any shape.
        levels: K (17 for the digits).

    Example:
        >>> dequantize(torch.tensor([0, 16])).mul(17).floor()   # floor(K y) gives x back
        tensor([ 0., 16.])
    """
    x = torch.as_tensor(x_int).to(torch.get_default_dtype())
    return (x + torch.rand_like(x)) / levels



def resize_images(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of ``(n, c, h, w)`` images to ``size x size`` (``align_corners=False``).

    The result is clamped to [0, 1]; images already ``size x size`` are returned as they are.

    Example:
        >>> resize_images(torch.rand(2, 1, 8, 8), 16).shape
        torch.Size([2, 1, 16, 16])
    """
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    y = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return y.clamp(0.0, 1.0)


def load_digits_dataset(
    split: str = "train", uniform_noise: bool = True, size: int = 8, seed: int = 0
) -> DigitsSplit:
    """sklearn's handwritten digits (1797 8x8 images, 17 levels) as ``(images, labels)``.

        y = (x + u) / 17, u ~ U[0, 1)   (uniform_noise=True),   y = (x + 0.5) / 17   (False)

    Both lie in [0, 1) and ``floor(17 y)`` gives back the integer level ``x``. For training,
    prefer :func:`load_digits_int` and redraw :func:`dequantize` per batch.

    Args:
        split: ``"train"`` (1497 images) or ``"test"`` (300), a fixed seeded split.
        uniform_noise: dequantise with fresh noise from torch's global RNG, or use the bin centres.
        size: if not 8, images are upsampled by bilinear interpolation after dequantisation
            (the data stay 64-dimensional underneath; bits/dim at another size are not comparable).
        seed: the split's seed (see :func:`digits_split_indices`).

    Example:
        >>> x, y = load_digits_dataset("test", uniform_noise=False)
        >>> x.shape, y.shape
        (torch.Size([300, 1, 8, 8]), torch.Size([300]))
        >>> bool((x * 17).floor().eq(load_digits_int("test").images).all())
        True
    """
    x_int, labels = load_digits_int(split, seed)
    if uniform_noise:
        x = dequantize(x_int, DIGIT_LEVELS)
    else:
        x = (x_int.to(torch.get_default_dtype()) + 0.5) / DIGIT_LEVELS
    return DigitsSplit(resize_images(x, size), labels)


def bits_per_dim(
    nll_nats: float | torch.Tensor, num_dims: int, levels: int = DIGIT_LEVELS
) -> float | torch.Tensor:
    """Bits per dimension of K-level data from the NLL of its dequantised version in [0, 1]^D.

        bpd = (nll_nats + D log K) / (D log 2),   nll_nats = -log p(y),   y = (x + u) / K

    The ``D log K`` term is the log-Jacobian of dividing by K, turning the density on [0, 1]^D
    into one on [0, K]^D, whose NLL bounds the discrete one. A uniform density on [0, 1]^D
    (NLL 0) gives ``log2 K``.

    Paper: [3] Dinh et al., 2016 (bits/dim as the image benchmark's unit).

    Args:
        nll_nats: NLL of one image (summed over its D dimensions) in nats, a float or a tensor.
        num_dims: D, e.g. 64 for an 8x8 digit.
        levels: K (17 for the digits).

    Example:
        >>> round(bits_per_dim(0.0, 64), 4)          # log2(17)
        4.0875
    """
    return (nll_nats + num_dims * math.log(levels)) / (num_dims * math.log(2.0))


# ----------------------------------------------------------------------------------------------
# Images and audio as functions of coordinates (SIREN, GON)
# ----------------------------------------------------------------------------------------------


def get_mgrid(size: int, dim: int = 2) -> torch.Tensor:
    """Coordinate grid of ``size**dim`` points in ``[-1, 1]^dim``, shape ``(size**dim, dim)``.

        grid[i * size + j] = (y_i, x_j),   y_i = -1 + 2 i / (size - 1)   (dim = 2)

    ``torch.meshgrid(..., indexing="ij")`` order: the first coordinate is the image row
    (top = -1), the second the column (left = -1). So ``values.view(size, size)`` is the image.

    Paper: [7] Sitzmann et al., 2020 (an image as a function of its pixel coordinates).

    Args:
        size: points per axis.
        dim: number of axes (1 for audio, 2 for images).

    Example:
        >>> get_mgrid(2)
        tensor([[-1., -1.],
            [-1.,  1.],
            [ 1., -1.],
            [ 1.,  1.]])
    """
    axis = torch.linspace(-1.0, 1.0, size)
    grids = torch.meshgrid(*([axis] * dim), indexing="ij")
    return torch.stack(grids, dim=-1).reshape(-1, dim)


@dataclass
class ImageData:
    """An image as a function of coordinates.

    Args:
        image: ``(size, size)`` in [-1, 1].
        coords: ``(size*size, 2)`` from :func:`get_mgrid`.
        values: ``(size*size, 1)`` with ``values.view(size, size) == image``.
        size: pixels per side.

    Example:
        >>> c = cameraman(32)
        >>> c.size, bool(c.values.view(32, 32).equal(c.image))
        (32, True)
    """

    image: torch.Tensor
    coords: torch.Tensor
    values: torch.Tensor
    size: int


def cameraman(size: int = 128) -> ImageData:
    """The cameraman (``skimage.data.camera()``, 512x512, bundled), the image the SIREN paper fits.

    Resized to ``size x size`` with anti-aliasing and mapped to [-1, 1].

    Paper: [7] Sitzmann et al., 2020 (its image-fitting experiment).

    Args:
        size: pixels per side of the returned image.

    Example:
        >>> c = cameraman(64)
        >>> c.image.shape, c.coords.shape, c.values.shape
        (torch.Size([64, 64]), torch.Size([4096, 2]), torch.Size([4096, 1]))
    """
    from skimage import data as skdata
    from skimage.transform import resize

    img = skdata.camera().astype(np.float64) / 255.0
    if img.shape != (size, size):
        img = resize(img, (size, size), anti_aliasing=True, preserve_range=True)
    image = torch.from_numpy(np.clip(2.0 * img - 1.0, -1.0, 1.0)).to(torch.get_default_dtype())
    return ImageData(image=image, coords=get_mgrid(size, 2), values=image.reshape(-1, 1), size=size)


@dataclass
class AudioClip:
    """A clip as a function of time: ``coords`` and ``values`` ``(n, 1)`` in [-1, 1].

    Args:
        coords: times mapped to [-1, 1], ``(n, 1)``.
        values: amplitudes in [-1, 1], ``(n, 1)``.
        sample_rate: samples per second; ``seconds`` is ``n / sample_rate``.

    Example:
        >>> audio_clip(0.25, 8000).seconds
        0.25
    """

    coords: torch.Tensor
    values: torch.Tensor
    sample_rate: int

    @property
    def seconds(self) -> float:
        return len(self.values) / self.sample_rate


def audio_clip(seconds: float = 1.0, sample_rate: int = 8000) -> AudioClip:
    """A deterministic synthetic clip: a chirp plus two tones, normalised to peak amplitude 1.

        s(t) = sin^2(pi t / T) (0.6 sin(2 pi (f0 t + (f1 - f0) t^2 / (2 T)))
               + 0.3 sin(2 pi 440 t) exp(-3 t / T) + 0.3 sin(2 pi 660 t) t / T),   f0 = 200, f1 = 1200

    No randomness: the same clip on every call.

    Paper: [7] Sitzmann et al., 2020 (its audio-fitting experiment, here on a synthetic clip).

    Args:
        seconds: the clip's length T.
        sample_rate: samples per second.

    Example:
        >>> a = audio_clip(0.5, 8000)
        >>> a.values.shape, a.sample_rate
        (torch.Size([4000, 1]), 8000)
        >>> round(a.values.abs().max().item(), 4)
        1.0
    """
    n = int(round(seconds * sample_rate))
    if n < 2:
        raise ValueError(f"audio_clip needs at least 2 samples, got seconds*sample_rate = {n}")
    t = np.arange(n, dtype=np.float64) / sample_rate
    dur = n / sample_rate
    f0, f1 = 200.0, 1200.0
    chirp = np.sin(2 * np.pi * (f0 * t + 0.5 * (f1 - f0) / dur * t**2))
    fade = np.sin(np.pi * t / dur) ** 2  # zero at both ends
    tone_a = np.sin(2 * np.pi * 440.0 * t) * np.exp(-3.0 * t / dur)
    tone_b = np.sin(2 * np.pi * 660.0 * t) * (t / dur)
    signal = fade * (0.6 * chirp + 0.3 * tone_a + 0.3 * tone_b)
    signal = signal / np.abs(signal).max()
    dtype = torch.get_default_dtype()
    values = torch.from_numpy(signal).to(dtype).unsqueeze(1)
    coords = torch.linspace(-1.0, 1.0, n, dtype=dtype).unsqueeze(1)
    return AudioClip(coords=coords, values=values, sample_rate=sample_rate)
