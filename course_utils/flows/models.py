"""Ready-made flow models and the density-fitting loss, for the notebooks that train flows.

``realnvp`` builds the plain RealNVP [3] of the course's first trained flow (notebook 03) and of
the later notebooks: a stack of affine couplings that alternate which half they transform, an
optional ActNorm [4] before each coupling, and a standard-normal base.

The density-fitting loss is the average negative log-likelihood (NLL) in nats,

    NLL = -(1/n) sum_i log p(x_i),    log p(x) = log p_Z(f(x)) + log|det J_f(x)|,

and on fresh samples from the data density p it estimates the cross-entropy H(p, model) =
H(p) + KL(p || model) >= H(p): the true entropy is the floor that no model can go below.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import NormalizingFlow, standard_normal
from .coupling import AffineCoupling, Permutation
from .normalization import ActNorm

__all__ = ["realnvp", "nll_loss", "test_nll", "eval_log_prob"]

_MIXING = ("flip", "reverse", "random")


def realnvp(dim: int = 2, n_layers: int = 8, hidden: int = 64, depth: int = 2, actnorm: bool = False,
            mixing: str = "flip", bound: float = 2.0, seed: int = 0) -> NormalizingFlow:
    """A RealNVP density model [3]: ``n_layers`` affine couplings and a standard-normal base.

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
    >>> model = realnvp(dim=2, n_layers=4, hidden=16)
    >>> x = torch.randn(5, 2)
    >>> torch.allclose(model.log_prob(x), standard_normal(2).log_prob(x))   # identity at the start
    True
    >>> model.sample((3,)).shape
    torch.Size([3, 2])
    """
    if dim < 2:
        raise ValueError(f"realnvp needs dim >= 2 (a coupling splits the features), got dim={dim}")
    if n_layers < 1:
        raise ValueError(f"realnvp needs at least one coupling layer, got n_layers={n_layers}")
    if mixing not in _MIXING:
        raise ValueError(f"mixing must be one of {_MIXING}, got {mixing!r}")
    layers: list[nn.Module] = []
    for k in range(n_layers):
        if actnorm:
            layers.append(ActNorm(dim))
        flip = mixing == "flip" and k % 2 == 1
        layers.append(AffineCoupling(dim, hidden=hidden, flip=flip, depth=depth, bound=bound))
        if mixing != "flip" and k < n_layers - 1:
            layers.append(Permutation(dim, kind=mixing, seed=seed + k))
    return NormalizingFlow(layers, standard_normal(dim))


def nll_loss(model: nn.Module, x: Tensor) -> Tensor:
    """The density-fitting loss: mean negative log-likelihood ``-mean_i log p(x_i)`` in nats.

    Written to be passed straight to ``course_utils.train.fit(model, nll_loss, batches, steps)``.

    >>> model = realnvp(dim=2, n_layers=2, hidden=8)
    >>> x = torch.zeros(4, 2)
    >>> round(nll_loss(model, x).item(), 4)       # log(2 pi): the base's NLL at the origin
    1.8379
    """
    return -model.log_prob(x).mean()


@torch.no_grad()
def eval_log_prob(model: nn.Module, x: Tensor, chunk: int = 8192) -> Tensor:
    """``model.log_prob(x)`` in eval mode, in chunks on the model's device, as float64 on the CPU.

    The model's train/eval mode is restored afterwards (batch norm must use its running
    averages for a held-out density).
    """
    if x.shape[0] == 0:
        raise ValueError("eval_log_prob needs at least one sample, got an empty tensor")
    was_training = model.training
    model.eval()
    try:
        device = next(iter(model.parameters()), torch.empty(0)).device
        return torch.cat([model.log_prob(xc.to(device)).double().cpu() for xc in x.split(chunk)])
    finally:
        model.train(was_training)


def test_nll(model: nn.Module, x: Tensor, chunk: int = 8192) -> float:
    """Mean NLL (nats) of held-out samples ``x``, in eval mode, evaluated in chunks.

    On fresh samples from the data density this estimates the cross-entropy, which is at least
    the density's true entropy; the difference is KL(data || model). The model's train/eval
    mode is restored afterwards.

    >>> model = realnvp(dim=2, n_layers=2, hidden=8)
    >>> round(test_nll(model, torch.zeros(10, 2)), 4)
    1.8379
    """
    if x.shape[0] == 0:
        raise ValueError("test_nll needs at least one sample, got an empty tensor")
    return -eval_log_prob(model, x, chunk).mean().item()


test_nll.__test__ = False  # not a pytest test, despite its name
