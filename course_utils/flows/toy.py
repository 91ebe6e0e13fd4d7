"""Helpers for fitting flows to the 2-D toy densities (notebooks 04 and 06).

``nice`` builds NICE [1]: additive couplings and a final diagonal scaling (the counterpart of
``models.realnvp`` for additive couplings). ``gap_report`` measures how far a trained density
model is from the truth: on fresh samples ``x_i ~ p`` of a toy density with an exact log-density,

    test NLL = -(1/n) sum_i log q(x_i)           (cross-entropy H(p, q), in nats)
    entropy  = -(1/n) sum_i log p(x_i)           (H(p), the floor)
    gap      = test NLL - entropy = (1/n) sum_i [log p(x_i) - log q(x_i)]   (estimates KL(p || q) >= 0)

Both averages use the same samples, so most of their sampling noise cancels in the gap.

``time_cosine`` is a learning-rate schedule for training on a time budget: a cosine decay over
wall-clock seconds instead of steps, so that a run cut by ``fit(..., max_seconds=...)`` still ends
with the learning rate near 0, however fast the machine is.
"""

from __future__ import annotations

import math
import time
from typing import Callable, NamedTuple

import torch
from torch import Tensor, nn

from .base import NormalizingFlow, standard_normal
from .coupling import AdditiveCoupling, DiagonalScaling
from .models import eval_log_prob

__all__ = ["nice", "GapReport", "gap_report", "time_cosine"]


def nice(dim: int = 2, n_layers: int = 8, hidden: int = 64, depth: int = 2) -> NormalizingFlow:
    """A NICE density model [1]: ``n_layers`` additive couplings that alternate which half they
    shift, then one ``DiagonalScaling``, with a standard-normal base.

        x -> coupling_1 -> ... -> coupling_n -> diag(exp(log_s)) -> z ~ N(0, I)

    Additive couplings preserve volume (log-det 0); the diagonal scaling is the only place where
    the model can change volume, so ``log|det J_f| = sum_j log_s_j`` is the same at every ``x``.
    Every conditioner has a zero last layer: the model starts as the identity map.

    Example
    -------
    >>> model = nice(dim=2, n_layers=4, hidden=16)
    >>> x = torch.randn(5, 2)
    >>> torch.allclose(model.log_prob(x), standard_normal(2).log_prob(x))
    True
    """
    if dim < 2:
        raise ValueError(f"nice needs dim >= 2 (a coupling splits the features), got dim={dim}")
    if n_layers < 1:
        raise ValueError(f"nice needs at least one coupling layer, got n_layers={n_layers}")
    layers: list[nn.Module] = [AdditiveCoupling(dim, hidden=hidden, flip=k % 2 == 1, depth=depth)
                               for k in range(n_layers)]
    layers.append(DiagonalScaling(dim))
    return NormalizingFlow(layers, standard_normal(dim))


class GapReport(NamedTuple):
    """Test NLL, true entropy and their difference (all in nats), with the gap's standard error."""

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

    ``model.log_prob`` is evaluated in eval mode, in chunks; ``density.log_prob`` must be
    exact (``course_utils.data.toy_density`` with ``has_log_prob``). Points where the model's
    log-density is not finite make the NLL infinite, which is reported as it is.

    >>> from course_utils.data import toy_density
    >>> from course_utils.flows import realnvp
    >>> _ = torch.manual_seed(0)
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


def time_cosine(seconds: float, final: float = 0.0) -> Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler]:
    """A cosine learning-rate decay over ``seconds`` of wall-clock time, for ``fit(scheduler=...)``.

        lr(t) = lr_0 * (final + (1 - final) * (1 + cos(pi * min(t / seconds, 1))) / 2)

    with ``t`` the time since ``fit`` created the schedule (just before its first step). Pair it
    with ``max_seconds=seconds``: the run stops as the rate reaches ``final * lr_0``. Unlike
    ``scheduler="cosine"`` (a decay over ``steps``), a run that the time budget cuts short still
    gets the end of the decay, which is where the loss drops most.

    >>> model = torch.nn.Linear(1, 1)
    >>> opt = torch.optim.SGD(model.parameters(), lr=1.0)
    >>> sched = time_cosine(3600.0)(opt)
    >>> round(opt.param_groups[0]["lr"], 3)
    1.0
    """
    if not seconds > 0:
        raise ValueError(f"time_cosine needs a positive number of seconds, got {seconds}")

    def make(optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
        start = time.perf_counter()

        def factor(_step: int) -> float:
            progress = min((time.perf_counter() - start) / seconds, 1.0)
            return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * progress))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

    return make
