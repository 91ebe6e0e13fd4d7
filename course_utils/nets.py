"""Small network builders shared by the flows, SIREN and GON code: one home for the MLP.

``mlp(sizes)`` is the fully connected network ``Linear -> act -> ... -> Linear`` (no activation
after the last layer). Coupling layers use it as their conditioner with ``zero_last=True``, so
the layer starts at the identity; the GON decoders and the ReLU baselines of SIREN use it as it is.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

__all__ = ["mlp"]


def mlp(sizes: Sequence[int], activation: Callable[[], nn.Module] = nn.ReLU,
        zero_last: bool = False) -> nn.Sequential:
    """A fully connected network through the widths ``sizes = (in, hidden..., out)``.

        h_0 = x,   h_k = act(W_k h_{k-1} + b_k) for k < L,   y = W_L h_{L-1} + b_L

    Args:
        sizes: at least two widths; ``len(sizes) - 1`` linear layers.
        activation: a zero-argument constructor (``nn.ReLU``, ``nn.ELU``, ...), between layers only.
        zero_last: start the last layer's weight and bias at zero, so the network outputs 0
            for every input (a coupling layer built on it starts at the identity).

    Example:
        >>> net = mlp([2, 8, 8, 4], zero_last=True)
        >>> net(torch.randn(3, 2)).abs().max().item()
        0.0
        >>> [type(m).__name__ for m in mlp([3, 5, 1], nn.ELU)]
        ['Linear', 'ELU', 'Linear']
    """
    sizes = list(sizes)
    if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
        raise ValueError(f"mlp needs at least two positive widths (in, ..., out), got {sizes}")
    layers: list[nn.Module] = []
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if k < len(sizes) - 2:
            layers.append(activation())
    if zero_last:
        nn.init.zeros_(layers[-1].weight)
        nn.init.zeros_(layers[-1].bias)
    return nn.Sequential(*layers)
