"""Ready-made flow models (builders) for the notebooks that train flows.

- ``realnvp``: the plain RealNVP [3] of the course's first trained flow (notebook 03) and of the
  later notebooks: affine couplings that alternate which half they transform, an optional
  ActNorm [4] before each coupling, and a standard-normal base.
- ``nice``: NICE [1], additive couplings and a final diagonal scaling.

The losses and metrics that train and judge them are in ``course_utils.flows.losses``.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import NormalizingFlow, standard_normal
from .coupling import AdditiveCoupling, AffineCoupling, DiagonalScaling, Permutation
from .normalization import ActNorm

__all__ = ["realnvp", "nice"]

_MIXING = ("flip", "reverse", "random")


def realnvp(features: int = 2, n_layers: int = 8, hidden: int = 64, depth: int = 2, actnorm: bool = False,
            mixing: str = "flip", bound: float = 2.0, seed: int = 0) -> NormalizingFlow:
    """A RealNVP density model ([3] Dinh, Sohl-Dickstein and Bengio, 2016): ``n_layers`` affine couplings and a standard-normal base.

        x -> [ActNorm] -> coupling_1 -> [ActNorm] -> coupling_2 -> ... -> z ~ N(0, I)

    Every coupling transforms one half of its input conditioned on the other half. So that
    every feature gets transformed, consecutive couplings differ by ``mixing``:

    - ``"flip"``: alternate ``AffineCoupling(flip=False)`` and ``flip=True`` (first half, then
      second half transformed);
    - ``"reverse"``: a ``Permutation`` reversing the features between couplings (RealNVP/Glow);
    - ``"random"``: a fixed random ``Permutation`` between couplings, drawn from ``seed``.

    ``actnorm=True`` puts an ``ActNorm`` (data-dependent initialisation on the first training
    batch) before each coupling. Each coupling's conditioner is an MLP with ``depth`` hidden
    layers of width ``hidden`` and a zero last layer, so the model starts as the identity map
    and its initial density is the base density. ``bound`` is the couplings' initial log-scale
    bound (see ``AffineCoupling``).

    Example
    -------
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
    """A NICE density model ([1] Dinh, Krueger and Bengio, 2014): ``n_layers`` additive couplings that alternate which half they
    shift, then one ``DiagonalScaling``, with a standard-normal base.

        x -> coupling_1 -> ... -> coupling_n -> diag(exp(log_s)) -> z ~ N(0, I)

    Additive couplings preserve volume (log-det 0); the diagonal scaling is the only place where
    the model can change volume, so ``log|det J_f| = sum_j log_s_j`` is the same at every ``x``.
    Every conditioner has a zero last layer: the model starts as the identity map.

    Example
    -------
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
