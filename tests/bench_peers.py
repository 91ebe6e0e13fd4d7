"""The course's flows beside two libraries people use (zuko, normflows), on the same data and loop.

``make bench-peers`` installs the peers (``requirements-peers.txt``) and runs

    python tests/bench_peers.py --readme README.md

Every model is trained by the course's own loop (``course_utils.train.fit``: Adam, the learning
rate decaying over the steps by a cosine, one torch thread), on the same data, split and batches,
one model after another, twice:

- **equal steps**: every model gets the same number of optimiser steps;
- **equal time**: every model gets the steps that fit in the time the course's model needs for its
  steps, computed from each model's measured cost per step (``course_utils.device.measure``,
  median of 5 blocks of steps after a warm-up), never by racing a clock inside the training loop.

Two tables go into the README between ``<!-- bench:peers-digits:start/end -->`` and
``<!-- bench:peers-2d:start/end -->``:

- **digits**: test bits/dim on the 300 held-out 8x8 digits (the course's fixed split, trained on its
  1497 training digits, batch 64, fresh dequantisation noise per batch; tested on 4 fixed draws of
  the noise). Every model is a density on the same ``[0, 1]^64``: the course's Glow has its logit
  inside; the vector models (zuko, normflows) see the flattened 64 pixels as they are, or with
  ``--peer-logit alpha`` through the course's ``Logit(alpha)`` (its log-det counted). The per-pixel
  categorical model is the baseline of notebook 07.
- **2-D densities**: the gap to the true entropy in nats (``gap_report``: test NLL minus the
  density's entropy on 20,000 fresh samples, an estimate of KL(p || q)), batch 256, fresh samples
  every step.

With ``--seeds n`` each result is the mean over seeds 0..n-1 and its standard deviation. The peers'
architectures follow the issue that asked for this bench (issue 23): zuko NSF (3 transforms, 256 x 2),
zuko MAF (5 transforms, 256 x 2), normflows RealNVP (8 masked affine couplings, 256 x 2) on the digits;
8 couplings of width 128 on the 2-D densities for every RealNVP, and zuko's NSF as the spline flow.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course_utils.data import (DIGIT_LEVELS, bits_per_dim, dequantize, load_digits_int,  # noqa: E402
                               toy_density)
from course_utils.device import environment_report, measure  # noqa: E402
from course_utils.flows import GLOW_DIGITS, GLOW_DIGITS_TRAINING, Logit, eval_log_prob, gap_report, glow, realnvp  # noqa: E402
from course_utils.train import fit  # noqa: E402

K, D = DIGIT_LEVELS, 64
DENSITIES_2D = ("moons", "8gaussians", "checkerboard")


# ----------------------------------------------------------------------------------------------
# Peers as density models with log_prob, like the course's
# ----------------------------------------------------------------------------------------------
class Peer(nn.Module):
    """A zuko or normflows flow as a density model on the course's data: ``log_prob(x)``.

    Images are flattened to vectors; with ``logit`` the vector first goes through the course's
    ``Logit(alpha)`` and its log-det is added, so the density is one on the same space as the
    course's models.
    """

    def __init__(self, flow: nn.Module, kind: str, logit: float | None = None):
        super().__init__()
        self.flow, self.kind = flow, kind
        self.logit = Logit(logit) if logit is not None else None

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        log_det = 0.0
        if self.logit is not None:
            x, log_det = self.logit(x)
        log_q = self.flow().log_prob(x) if self.kind == "zuko" else self.flow.log_prob(x)
        return log_q + log_det


def zuko_flow(name: str, features: int, transforms: int, hidden: tuple[int, ...], logit=None) -> Peer:
    import zuko

    cls = {"NSF": zuko.flows.NSF, "MAF": zuko.flows.MAF, "RealNVP": zuko.flows.RealNVP}[name]
    return Peer(cls(features=features, transforms=transforms, hidden_features=hidden), "zuko", logit)


def normflows_realnvp(features: int, couplings: int, hidden: int, logit=None) -> Peer:
    """normflows' RealNVP as in its README: masked affine couplings with alternating masks."""
    import normflows as nf

    mask = torch.tensor([1.0 if i % 2 == 0 else 0.0 for i in range(features)])
    flows = []
    for k in range(couplings):
        s = nf.nets.MLP([features, hidden, hidden, features], init_zeros=True)
        t = nf.nets.MLP([features, hidden, hidden, features], init_zeros=True)
        flows.append(nf.flows.MaskedAffineFlow(mask if k % 2 == 0 else 1 - mask, t, s))
    base = nf.distributions.DiagGaussian(features, trainable=False)
    return Peer(nf.NormalizingFlow(base, flows), "normflows", logit)


@dataclass
class Entry:
    """One model of a table: how to build it (from a seed), its learning rate, what it is."""

    name: str
    build: Callable[[], nn.Module]
    lr: float
    course: bool = False


def glow_name() -> str:
    g = GLOW_DIGITS
    return (f"course Glow (`glow`: {g['levels']} levels x {g['steps_per_level']} steps, hidden {g['hidden']}, "
            f"LU 1x1, logit {g['logit']:g})")


def digit_entries(peers: bool = True, peer_logit: float | None = None) -> list[Entry]:
    """The digit models. The peers take the dequantised pixels in [0, 1]^64 as they are, or through
    the course's ``Logit(peer_logit)`` (zuko's splines cover [-5, 5]: a logit with a small margin puts
    the zeros outside, where the transform is the identity)."""
    entries = [Entry(glow_name(), lambda: glow(**GLOW_DIGITS, mixing="conv1x1"), GLOW_DIGITS_TRAINING["lr"], course=True)]
    if peers:
        alpha = peer_logit
        entries += [
            Entry("zuko NSF (3 transforms, 256 x 2)", lambda: zuko_flow("NSF", D, 3, (256, 256), alpha), 1e-3),
            Entry("zuko MAF (5 transforms, 256 x 2)", lambda: zuko_flow("MAF", D, 5, (256, 256), alpha), 1e-3),
            Entry("normflows RealNVP (8 couplings, 256 x 2)", lambda: normflows_realnvp(D, 8, 256, alpha), 1e-3),
        ]
    return entries


def entries_2d(peers: bool = True) -> list[Entry]:
    entries = [Entry("course RealNVP (`realnvp`: 8 couplings, 128 x 2)",
                     lambda: realnvp(features=2, n_layers=8, hidden=128), 1e-3, course=True)]
    if peers:
        entries += [
            Entry("zuko RealNVP (8 couplings, 128 x 2)", lambda: zuko_flow("RealNVP", 2, 8, (128, 128)), 1e-3),
            Entry("normflows RealNVP (8 couplings, 128 x 2)", lambda: normflows_realnvp(2, 8, 128), 1e-3),
            Entry("zuko NSF (spline, 3 transforms, 128 x 2)", lambda: zuko_flow("NSF", 2, 3, (128, 128)), 1e-3),
        ]
    return entries


# ----------------------------------------------------------------------------------------------
# The task: data, loss, score
# ----------------------------------------------------------------------------------------------
@dataclass
class Task:
    """What every model of one table trains on and how it is scored."""

    name: str
    batches: Callable[[], torch.Tensor]
    score: Callable[[nn.Module], float]      # lower is better
    unit: str


def digits_task(batch: int = 64) -> Task:
    x_train, _ = load_digits_int("train")
    x_test, _ = load_digits_int("test")
    gen = torch.Generator().manual_seed(3)
    x_test_deq = [(x_test + torch.rand(x_test.shape, generator=gen)) / K for _ in range(4)]

    def batches():
        return dequantize(x_train[torch.randint(len(x_train), (batch,))], K)

    def score(model):
        nll = sum(-eval_log_prob(model, x).mean().item() for x in x_test_deq) / len(x_test_deq)
        return float(bits_per_dim(nll, D, K))

    return Task("digits", batches, score, "test bits/dim")


def density_task(name: str, batch: int = 256, n_test: int = 20_000) -> Task:
    density = toy_density(name)
    torch.manual_seed(12345)
    x_test = density.sample((n_test,))
    return Task(name, lambda: density.sample((batch,)), lambda model: gap_report(model, density, x=x_test).gap,
                "gap (nats)")


def categorical_bits_per_dim() -> float:
    """Notebook 07's baseline: independent per-pixel categoricals with add-one smoothing."""
    from course_utils.checks.nb07 import categorical_reference

    x_train, _ = load_digits_int("train")
    x_test, _ = load_digits_int("test")
    return categorical_reference(x_train, x_test, K)


def loss_fn(model, x):
    return -model.log_prob(x).mean()


def parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def step_cost(entry: Entry, task: Task, block: int = 5) -> float:
    """Seconds per training step (median of 5 blocks of ``block`` steps, after a warm-up block)."""
    torch.manual_seed(0)
    model = entry.build()
    optimizer = torch.optim.Adam(model.parameters(), lr=entry.lr)

    def steps():
        for _ in range(block):
            loss = loss_fn(model, task.batches())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    return measure(steps, repeat=5, warmup=1).median / block


def train_and_score(entry: Entry, task: Task, steps: int, seed: int) -> tuple[float, int]:
    torch.manual_seed(seed)
    model = entry.build()
    torch.manual_seed(seed)
    fit(model, loss_fn, task.batches, steps, lr=entry.lr, scheduler="cosine", progress=False, device="cpu")
    return task.score(model), parameters(model)


@dataclass
class Result:
    entry: Entry
    params: int
    ms_per_step: float
    steps_equal: int
    score_equal: list[float] = field(default_factory=list)
    steps_time: int = 0
    score_time: list[float] = field(default_factory=list)


def run_table(entries: list[Entry], task: Task, steps: int, seeds: int, log=None) -> list[Result]:
    """Equal steps, then equal time (the course model's time for ``steps``), for every entry."""
    log = log or (lambda line: print(line, flush=True))
    costs = {e.name: step_cost(e, task) for e in entries}
    reference = next(e for e in entries if e.course)
    budget = costs[reference.name] * steps                       # seconds, from measured costs
    results = []
    for e in entries:
        r = Result(e, 0, 1e3 * costs[e.name], steps, steps_time=max(1, round(budget / costs[e.name])))
        for seed in range(seeds):
            score, r.params = train_and_score(e, task, steps, seed)
            r.score_equal.append(score)
            if r.steps_time == steps:
                r.score_time.append(score)
            else:
                r.score_time.append(train_and_score(e, task, r.steps_time, seed)[0])
            log(f"{task.name} | {e.name} | seed {seed}: {score:.3f} at {steps} steps, "
                f"{r.score_time[-1]:.3f} at {r.steps_time} steps (equal time)")
        results.append(r)
    return results


def fmt(scores: list[float]) -> str:
    if len(scores) == 1:
        return f"{scores[0]:.3f}"
    return f"{statistics.mean(scores):.3f} +- {statistics.stdev(scores):.3f}"


# ----------------------------------------------------------------------------------------------
# Tables and the README
# ----------------------------------------------------------------------------------------------
def machine() -> str:
    import platform

    report = environment_report(torch.device("cpu"))
    versions = [f"torch {torch.__version__}"]
    for name in ("zuko", "normflows"):
        try:
            versions.append(f"{name} {__import__(name).__version__}")
        except ImportError:
            pass
    return (f"cpu ({report['device name']}, {os.cpu_count()} cores, load average "
            f"{os.getloadavg()[0]:.1f} at the start), one torch thread, Python {platform.python_version()}, "
            + ", ".join(versions))


def digits_table(results: list[Result], steps: int, seeds: int, baseline: float) -> str:
    lines = ["| model | parameters | lr | ms/step | equal steps: steps | test bits/dim | equal time: steps | test bits/dim |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r.entry.name} | {r.params:,} | {r.entry.lr:g} | {r.ms_per_step:.1f} | {r.steps_equal} | "
                     f"{fmt(r.score_equal)} | {r.steps_time} | {fmt(r.score_time)} |")
    lines.append(f"| per-pixel categorical (counts, notebook 07) | - | - | - | - | {baseline:.3f} | - | {baseline:.3f} |")
    return "\n".join(lines)


def table_2d(tables: dict[str, list[Result]]) -> str:
    lines = ["| density | model | parameters | ms/step | equal steps: steps | gap (nats) | equal time: steps | gap (nats) |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for density, results in tables.items():
        for r in results:
            lines.append(f"| {density} | {r.entry.name} | {r.params:,} | {r.ms_per_step:.2f} | {r.steps_equal} | "
                         f"{fmt(r.score_equal)} | {r.steps_time} | {fmt(r.score_time)} |")
    return "\n".join(lines)


def markers(name: str) -> tuple[str, str]:
    return f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"


def replace_block(text: str, name: str, block: str) -> str:
    start, end = markers(name)
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise SystemExit(f"README needs one '{start}' and, below it, one '{end}' line")
    a, b = text.index(start) + len(start), text.index(end)
    return text[:a] + "\n" + block.strip("\n") + "\n" + text[b:]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readme", type=Path, help="write the tables into this README (between the markers)")
    parser.add_argument("--steps-digits", type=int, default=GLOW_DIGITS_TRAINING["steps"],
                        help="steps of every model at equal steps (default: notebook 07's)")
    parser.add_argument("--steps-2d", type=int, default=1500, help="steps on the 2-D densities")
    parser.add_argument("--seeds", type=int, default=1, help="seeds 0..n-1 per model (mean +- sd)")
    parser.add_argument("--only", choices=("digits", "2d"), help="run one table only")
    parser.add_argument("--no-peers", action="store_true", help="the course's models only")
    parser.add_argument("--peer-logit", type=float, default=None,
                        help="give the digit peers the course's Logit(alpha) first (default: the pixels as they are)")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    start, date, where = time.perf_counter(), datetime.date.today().isoformat(), machine()
    blocks = {}
    if args.only in (None, "digits"):
        results = run_table(digit_entries(not args.no_peers, args.peer_logit), digits_task(), args.steps_digits, args.seeds)
        blocks["peers-digits"] = (f"Measured on {where}, {date} (`make bench-peers`; seeds: {args.seeds}, "
                                  f"batch 64, cosine decay over the steps; peers' input: "
                                  f"{'Logit(%g)' % args.peer_logit if args.peer_logit is not None else 'the pixels in [0, 1]'}; equal time = the course Glow's "
                                  f"{args.steps_digits} steps, from measured costs).\n\n"
                                  + digits_table(results, args.steps_digits, args.seeds, categorical_bits_per_dim()))
    if args.only in (None, "2d"):
        tables = {name: run_table(entries_2d(not args.no_peers), density_task(name), args.steps_2d, args.seeds)
                  for name in DENSITIES_2D}
        blocks["peers-2d"] = (f"Measured on {where}, {date} (`make bench-peers`; seeds: {args.seeds}, batch 256, "
                              f"cosine decay over the steps; equal time = the course RealNVP's {args.steps_2d} "
                              f"steps, from measured costs).\n\n" + table_2d(tables))
    for name, block in blocks.items():
        print(f"\n{name}\n{block}")
    if args.readme:
        text = args.readme.read_text()
        for name, block in blocks.items():
            text = replace_block(text, name, block)
        args.readme.write_text(text)
        print(f"wrote {', '.join(blocks)} into {args.readme}")
    print(f"bench-peers took {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
