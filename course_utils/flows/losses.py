"""Losses and metrics of density models: the NLL, held-out NLL, and the gap to a true entropy.

The density-fitting loss is the average negative log-likelihood (NLL) in nats,

    NLL = -(1/n) sum_i log p(x_i),    log p(x) = log p_Z(f(x)) + log|det J_f(x)|,

and on fresh samples from the data density it estimates the cross-entropy H(data, model) =
H(data) + KL(data || model) >= H(data): the true entropy is the floor no model can go below.
``gap_report`` measures that distance for the toy densities, whose log-density is exact:

    test NLL = -(1/n) sum_i log q(x_i),   entropy = -(1/n) sum_i log p(x_i),
    gap      = test NLL - entropy = (1/n) sum_i [log p(x_i) - log q(x_i)]  (estimates KL(p || q) >= 0)

Both averages use the same samples, so most of their sampling noise cancels in the gap.
Bits per dimension of image data are in ``course_utils.data.bits_per_dim``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

__all__ = ["nll_loss", "eval_log_prob", "held_out_nll", "GapReport", "gap_report"]


def nll_loss(model: nn.Module, x: Tensor) -> Tensor:
    """The density-fitting loss: the mean negative log-likelihood of a batch, in nats.

        NLL = -(1/n) sum_i log p(x_i),    log p(x) = log p_Z(f(x)) + log|det J_f(x)|

    Written to be passed straight to ``course_utils.train.fit(model, nll_loss, batches, steps)``.

    Args:
        model: anything with ``log_prob(x) -> (batch,)``, e.g. a ``NormalizingFlow``.
        x: a batch of data.

    Example:
        >>> from course_utils.flows import realnvp
        >>> model = realnvp(features=2, n_layers=2, hidden=8)
        >>> round(nll_loss(model, torch.zeros(4, 2)).item(), 4)   # log(2 pi): the base's NLL at 0
        1.8379
    """
    return -model.log_prob(x).mean()


@torch.no_grad()
def eval_log_prob(model: nn.Module, x: Tensor, chunk: int = 8192) -> Tensor:
    """``model.log_prob(x)`` in eval mode, in chunks on the model's device, as float64 on the CPU.

    The model's train/eval mode is restored afterwards (batch norm must use its running
    averages for a held-out density).

    Args:
        model: anything with ``log_prob``.
        x: a batch of samples.
        chunk: samples per evaluation.

    Example:
        >>> from course_utils.flows import realnvp
        >>> eval_log_prob(realnvp(n_layers=2, hidden=8), torch.zeros(3, 2)).dtype
        torch.float64
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


def held_out_nll(model: nn.Module, x: Tensor, chunk: int = 8192) -> float:
    """Mean NLL (nats) of held-out samples ``x``, in eval mode, evaluated in chunks.

        held-out NLL = -(1/n) sum_i log q(x_i)  ~  H(p, q) = H(p) + KL(p || q) >= H(p)   (x_i ~ p)

    On fresh samples from the data density ``p`` this estimates the cross-entropy, which is at
    least the density's true entropy; the difference is KL(data || model).

    Example:
        >>> from course_utils.flows import realnvp
        >>> round(held_out_nll(realnvp(n_layers=2, hidden=8), torch.zeros(10, 2)), 4)
        1.8379
    """
    return -eval_log_prob(model, x, chunk).mean().item()


class GapReport(NamedTuple):
    """Test NLL, true entropy and their difference (all in nats), with the gap's standard error.

    Args:
        nll: the model's mean NLL on the samples.
        entropy: the true density's mean ``-log p`` on the same samples.
        gap: ``nll - entropy``, an estimate of ``KL(p || q) >= 0``.
        gap_se: the gap's standard error.
        n: the number of samples.

    Example:
        >>> print(GapReport(nll=2.5, entropy=2.4, gap=0.1, gap_se=0.01, n=1000))
        test NLL 2.500, entropy 2.400, gap 0.100 +- 0.010 nats (n = 1000)
    """

    nll: float
    entropy: float
    gap: float
    gap_se: float
    n: int

    def __str__(self) -> str:
        return (f"test NLL {self.nll:.3f}, entropy {self.entropy:.3f}, "
                f"gap {self.gap:.3f} +- {self.gap_se:.3f} nats (n = {self.n})")


@torch.no_grad()
def gap_report(model: nn.Module, density, n: int = 20_000, x: Tensor | None = None) -> GapReport:
    """Compare a density model with a toy density on ``n`` fresh samples (or on given ``x``).

        gap = (1/n) sum_i [log p(x_i) - log q(x_i)]  ~  KL(p || q),   se = std_i(...) / sqrt(n)

    ``model.log_prob`` is evaluated in eval mode, in chunks; ``density.log_prob`` must be
    exact (``course_utils.data.toy_density`` with ``has_log_prob``). Points where the model's
    log-density is not finite make the NLL infinite, which is reported as it is.

    Args:
        model: the density model ``q`` (anything with ``log_prob``).
        density: the true density ``p``, with an exact ``log_prob`` and ``sample``.
        n: the number of fresh samples of ``p``.
        x: samples to use instead of fresh ones.

    Example:
        >>> from course_utils.data import toy_density
        >>> from course_utils.flows import realnvp
        >>> report = gap_report(realnvp(n_layers=2, hidden=8), toy_density("8gaussians"), n=2000)
        >>> report.gap > 0, abs(report.nll - report.entropy - report.gap) < 1e-9
        (True, True)
    """
    if x is None:
        x = density.sample((n,))
    log_p = density.log_prob(x).double().cpu()
    log_q = eval_log_prob(model, x)
    diff = log_p - log_q
    gap = diff.mean().item()
    se = diff.std().item() / math.sqrt(len(diff)) if len(diff) > 1 and math.isfinite(gap) else float("nan")
    return GapReport(nll=-log_q.mean().item(), entropy=-log_p.mean().item(), gap=gap, gap_se=se, n=len(diff))
