"""Ready-made flow models (builders) for the notebooks that train flows.

- ``realnvp``: the plain RealNVP [3] of the course's first trained flow (notebook 03) and of the
  later notebooks: affine couplings that alternate which half they transform, an optional
  ActNorm [4] before each coupling, and a standard-normal base.
- ``nice``: NICE [1], additive couplings and a final diagonal scaling.
- ``glow``: a small multi-scale Glow [4] for images (squeeze, ActNorm, channel mixing, affine
  coupling, factor-out), with the channel mixing as a choice: 1x1 convolution (LU or plain), a
  fixed permutation, or an emerging convolution [6].

The losses and metrics that train and judge them are in ``course_utils.flows.losses``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import FlowSequential, NormalizingFlow, standard_normal
from .coupling import AdditiveCoupling, AffineCoupling, DiagonalScaling, Permutation
from .emerging import EmergingConv
from .glow import AffineCouplingImage, FactorOut, InvConv1x1, Logit, Squeeze, Unsqueeze
from .normalization import ActNorm

__all__ = ["realnvp", "nice", "glow", "glow_latent_levels", "GLOW_MIXINGS", "GLOW_DIGITS", "GLOW_DIGITS_TRAINING"]

GLOW_MIXINGS = ("conv1x1", "conv1x1_plain", "permutation", "emerging")

#: The course's Glow for the 8x8 digits (notebooks 07 and 09): ``glow(**GLOW_DIGITS, mixing=...)``.
#: Depth (8 steps per level) and a small logit constant matter most: the digits are mostly exact
#: zeros, dequantised into [0, 1/17), and ``logit=0.001`` keeps that interval wide after the logit.
GLOW_DIGITS = dict(image_shape=(1, 8, 8), levels=2, steps_per_level=8, hidden=64, logit=0.001)

#: How notebook 07 trains it on the CPU (one thread): a fixed number of Adam steps on batches of
#: 64 freshly dequantised training digits, the learning rate decaying (cosine) over those steps;
#: about 30 s on the idle 2-core reference machine.
GLOW_DIGITS_TRAINING = dict(steps=550, batch=64, lr=4e-3, scheduler="cosine")

_MIXING = ("flip", "reverse", "random")


def realnvp(features: int = 2, n_layers: int = 8, hidden: int = 64, depth: int = 2, actnorm: bool = False,
            mixing: str = "flip", bound: float = 2.0, seed: int = 0) -> NormalizingFlow:
    """A RealNVP density model: ``n_layers`` affine couplings and a standard-normal base.

        x -> [ActNorm] -> coupling_1 -> [ActNorm] -> coupling_2 -> ... -> z ~ N(0, I)
        log p(x) = log N(z; 0, I) + sum_k log|det J_k|

    Every coupling transforms one half of its input conditioned on the other half. So that
    every feature gets transformed, consecutive couplings differ by ``mixing``:

    - ``"flip"``: alternate ``AffineCoupling(flip=False)`` and ``flip=True`` (first half, then
      second half transformed);
    - ``"reverse"``: a ``Permutation`` reversing the features between couplings (RealNVP/Glow);
    - ``"random"``: a fixed random ``Permutation`` between couplings, drawn from ``seed``.

    ``actnorm=True`` puts an ``ActNorm`` (data-dependent initialisation on the first training
    batch) before each coupling. Each coupling's conditioner is an MLP with ``depth`` hidden
    layers of width ``hidden`` and a zero last layer, so the model starts as the identity map
    and its initial density is the base density.

    Paper: [3] Dinh, Sohl-Dickstein and Bengio, 2016; [4] Kingma and Dhariwal, 2018 (ActNorm).

    Args:
        features: the dimension of the data (at least 2).
        n_layers: the number of couplings.
        hidden, depth: width and number of hidden layers of each conditioner MLP.
        actnorm: put an ``ActNorm`` before each coupling.
        mixing: ``"flip"``, ``"reverse"`` or ``"random"`` (see above).
        bound: the couplings' initial log-scale bound (see ``AffineCoupling``).
        seed: seeds the random permutations.

    Example:
        >>> model = realnvp(features=2, n_layers=4, hidden=16)
        >>> x = torch.randn(5, 2)
        >>> torch.allclose(model.log_prob(x), standard_normal(2).log_prob(x))   # identity at the start
        True
        >>> model.sample((3,)).shape
        torch.Size([3, 2])
    """
    if features < 2:
        raise ValueError(f"realnvp needs features >= 2 (a coupling splits the features), got features={features}")
    if n_layers < 1:
        raise ValueError(f"realnvp needs at least one coupling layer, got n_layers={n_layers}")
    if mixing not in _MIXING:
        raise ValueError(f"mixing must be one of {_MIXING}, got {mixing!r}")
    layers: list[nn.Module] = []
    for k in range(n_layers):
        if actnorm:
            layers.append(ActNorm(features))
        flip = mixing == "flip" and k % 2 == 1
        layers.append(AffineCoupling(features, hidden=hidden, flip=flip, depth=depth, bound=bound))
        if mixing != "flip" and k < n_layers - 1:
            layers.append(Permutation(features, kind=mixing, seed=seed + k))
    return NormalizingFlow(layers, standard_normal(features))


def nice(features: int = 2, n_layers: int = 8, hidden: int = 64, depth: int = 2) -> NormalizingFlow:
    """A NICE density model: additive couplings that alternate halves, then a diagonal scaling.

        x -> coupling_1 -> ... -> coupling_n -> diag(exp(log_s)) -> z ~ N(0, I)
        log p(x) = log N(z; 0, I) + sum_j log_s_j

    Additive couplings preserve volume (log-det 0); the diagonal scaling is the only place where
    the model can change volume, so ``log|det J_f| = sum_j log_s_j`` is the same at every ``x``.
    Every conditioner has a zero last layer: the model starts as the identity map.

    Paper: [1] Dinh, Krueger and Bengio, 2014.

    Args:
        features: the dimension of the data (at least 2).
        n_layers: the number of additive couplings.
        hidden, depth: width and number of hidden layers of each conditioner MLP.

    Example:
        >>> model = nice(features=2, n_layers=4, hidden=16)
        >>> x = torch.randn(5, 2)
        >>> torch.allclose(model.log_prob(x), standard_normal(2).log_prob(x))
        True
    """
    if features < 2:
        raise ValueError(f"nice needs features >= 2 (a coupling splits the features), got features={features}")
    if n_layers < 1:
        raise ValueError(f"nice needs at least one coupling layer, got n_layers={n_layers}")
    layers: list[nn.Module] = [AdditiveCoupling(features, hidden=hidden, flip=k % 2 == 1, depth=depth)
                               for k in range(n_layers)]
    layers.append(DiagonalScaling(features))
    return NormalizingFlow(layers, standard_normal(features))


def _mixing(kind: str, channels: int, seed: int) -> list[nn.Module]:
    if kind == "conv1x1":
        return [InvConv1x1(channels, lu=True)]
    if kind == "conv1x1_plain":
        return [InvConv1x1(channels, lu=False)]
    if kind == "permutation":
        return [Permutation(channels, kind="random", seed=seed)]
    return [EmergingConv(channels, kernel_size=3), InvConv1x1(channels, lu=True)]   # "emerging"


def glow(image_shape: tuple[int, int, int] = (1, 8, 8), levels: int = 2, steps_per_level: int = 4,
         hidden: int = 64, mixing: str = "conv1x1", learned_prior: bool = True, logit: float | None = 0.05,
         seed: int = 0) -> NormalizingFlow:
    """A multi-scale Glow density model on images in [0, 1]: squeeze, steps of flow, factor-out.

        x -> [Logit] -> level_1 -> z,   z ~ N(0, I) of the image's shape
        level_l = Squeeze -> K x (ActNorm -> mixing -> AffineCouplingImage) -> FactorOut(level_{l+1}) -> Unsqueeze

    Each level squeezes ``(c, h, w) -> (4c, h/2, w/2)``, runs ``steps_per_level`` steps of flow,
    then factors out half the channels to the base (multi-scale, RealNVP [3] 2016; the last
    level keeps all of its channels) and unsqueezes, so the latent ``z`` has the shape of the
    image; ``glow_latent_levels`` says which entries of ``z`` belong to which level.

        log p(x) = log N(z; 0, I) + sum of every layer's log|det J|

    Each step of flow is ``ActNorm -> mixing -> AffineCouplingImage`` with a channel mask. Every
    coupling starts at the identity (zero last convolution); ActNorm initialises itself on the
    first training batch. The data must be dequantised (``course_utils.data.dequantize``) and
    the NLL reported in bits per dimension (``course_utils.data.bits_per_dim``).

    Paper: [4] Kingma and Dhariwal, 2018; [3] Dinh, Sohl-Dickstein and Bengio, 2016 (multi-scale
    architecture, logit preprocessing); [6] Hoogeboom, van den Berg and Welling, 2019 (the
    emerging convolution).

    Args:
        image_shape: ``(channels, height, width)``; height and width divisible by ``2**levels``.
        levels: number of scales.
        steps_per_level: steps of flow per scale.
        hidden: width of the couplings' CNN conditioners (and of the split priors').
        mixing: the channel mixing of every step: ``"conv1x1"`` (Glow's 1x1 convolution, LU
            parametrised), ``"conv1x1_plain"`` (the same with a full matrix and ``slogdet``),
            ``"permutation"`` (a fixed random channel permutation per step, the ablation), or
            ``"emerging"`` (a 3x3 emerging convolution [6] followed by a 1x1 convolution).
        learned_prior: Glow's split prior: factored-out channels get a Gaussian whose mean and
            scale depend on the kept channels (see ``FactorOut``).
        logit: ``alpha`` of RealNVP's logit preprocessing, or ``None`` for none.
        seed: seeds the fixed permutations (the 1x1 convolutions draw from torch's global RNG).

    Example:
        >>> model = glow((1, 8, 8), levels=2, steps_per_level=2, hidden=16)
        >>> x = torch.rand(5, 1, 8, 8)
        >>> model.log_prob(x).shape, model.sample((3,)).shape
        (torch.Size([5]), torch.Size([3, 1, 8, 8]))
        >>> z, _ = model(x)
        >>> bool((model.inverse(z)[0] - x).abs().max() < 1e-4)
        True
    """
    if mixing not in GLOW_MIXINGS:
        raise ValueError(f"mixing must be one of {GLOW_MIXINGS}, got {mixing!r}")
    if len(image_shape) != 3 or min(image_shape) < 1:
        raise ValueError(f"image_shape must be (channels, height, width), got {image_shape}")
    if levels < 1 or steps_per_level < 1 or hidden < 1:
        raise ValueError(f"glow needs levels, steps_per_level and hidden >= 1, got levels={levels}, "
                         f"steps_per_level={steps_per_level}, hidden={hidden}")
    c, h, w = image_shape
    if h % 2**levels or w % 2**levels:
        raise ValueError(f"glow with {levels} levels needs height and width divisible by {2**levels}, "
                         f"got {h}x{w}")

    def level(l: int, channels: int) -> FlowSequential:
        channels = 4 * channels          # after the squeeze
        layers: list[nn.Module] = [Squeeze()]
        for k in range(steps_per_level):
            layers += [ActNorm(channels), *_mixing(mixing, channels, seed + 100 * l + k),
                       AffineCouplingImage(channels, mask="channel", hidden=hidden)]
        if l < levels - 1:
            layers.append(FactorOut(level(l + 1, channels // 2), channels, learned_prior=learned_prior,
                                    hidden=hidden))
        layers.append(Unsqueeze())
        return FlowSequential(*layers)

    layers = ([Logit(logit)] if logit is not None else []) + [level(0, c)]
    return NormalizingFlow(FlowSequential(*layers, event_shape=image_shape), standard_normal(*image_shape))


def glow_latent_levels(image_shape: tuple[int, int, int], levels: int) -> Tensor:
    """Which level of ``glow(image_shape, levels)`` each entry of the latent ``z`` belongs to.

        ids[c, i, j] = l   if z[:, c, i, j] was factored out at level l (the last level: kept to the end)

    Returns an int64 tensor of the image's shape with values ``0 .. levels - 1``: level 0 holds
    the channels factored out first (the finest scale), the last level the ones that went
    through every squeeze (the coarsest). Resample the entries of one level and keep the others
    to see what that scale encodes.

    Paper: [3] Dinh, Sohl-Dickstein and Bengio, 2016 (multi-scale latents); [4] Kingma and
    Dhariwal, 2018.

    Args:
        image_shape: ``(channels, height, width)``, as given to ``glow``.
        levels: the number of levels, as given to ``glow``.

    Example:
        >>> ids = glow_latent_levels((1, 8, 8), levels=2)
        >>> ids.shape, [(ids == l).sum().item() for l in range(2)]
        (torch.Size([1, 8, 8]), [32, 32])
    """
    squeeze, unsqueeze = Squeeze(), Unsqueeze()

    def ids(l: int, shape: tuple[int, int, int]) -> Tensor:
        c, h, w = shape
        if l == levels - 1:
            return torch.full((1, c, h, w), float(l))
        inner_shape = (2 * c, h // 2, w // 2)                 # kept half after the squeeze: 4c // 2
        keep = ids(l + 1, inner_shape)
        out = torch.full((1, 4 * c - 2 * c, h // 2, w // 2), float(l))
        return unsqueeze(torch.cat([keep, out], dim=1))[0]

    with torch.no_grad():
        return ids(0, tuple(image_shape))[0].long()
