"""``fit``: one training loop for every notebook, on any device, that never loses a model.

What it does for you:

- moves the model and every batch (a tensor, or a tuple/list/dict of tensors) to the device,
  so one notebook cell runs on CPU, CUDA or MPS;
- shows a ``tqdm.auto`` progress bar with the running loss;
- **Ctrl-C** (``KeyboardInterrupt``, the Jupyter "stop" button) ends training cleanly: the model
  keeps the weights of the last completed step and you get the history so far;
- a **non-finite loss or gradient** stops training with a ``FloatingPointError`` that names the
  step and suggests a remedy; the model is restored to its state after the last good step;
- training runs a **fixed number of steps** (with ``scheduler="cosine"`` the learning rate decays
  over those steps), so from a fixed seed it prints the same numbers on a fast or a slow machine;
- ``max_seconds`` is only a **safety cap** (set it several times the expected time): when it
  fires, the cell says at which step it stopped and that its numbers will differ from the
  reference run, and every ``verdict`` printed afterwards in this kernel says it is not comparable;
- ``amp=True`` runs the forward pass in bfloat16 autocast on CUDA (mixed precision). It is off
  by default: bfloat16 cannot resolve the log-determinants of flows, ``sin(30 x)`` of SIREN or
  second derivatives, which is most of this course.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from .device import get_device

__all__ = ["fit", "History", "to_device", "verdict", "cut_short_runs"]


@dataclass
class History:
    """What happened during ``fit``: the losses, the time, and why it stopped.

    Two histories add up (``h1 + h2``), e.g. when a training cell is run twice.

    Args:
        losses: one float per completed step (``steps`` is their number).
        seconds: wall-clock time of the loop.
        stopped: ``"completed"``, ``"interrupted"`` (Ctrl-C) or ``"time cap"`` (the safety cap
            ``max_seconds`` fired before the last step).
        planned: the number of steps asked for.
        records: whatever a ``callback`` returned, as ``(step, value)`` pairs.

    Example:
        >>> h = History(losses=[3.0, 2.0, 1.0], seconds=1.5)
        >>> h.steps, h.final_loss(last=2), (h + h).steps
        (3, 1.5, 6)
    """

    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    stopped: str = "completed"
    device: str = "cpu"
    amp: bool = False
    records: list[tuple[int, Any]] = field(default_factory=list)
    planned: int | None = None

    @property
    def steps(self) -> int:
        return len(self.losses)

    @property
    def comparable(self) -> bool:
        """``True`` when every planned step ran, so the numbers match the reference run."""
        return self.stopped == "completed" and (self.planned is None or self.steps >= self.planned)

    def final_loss(self, last: int = 50) -> float:
        """Mean loss over the last ``last`` steps (less noisy than the very last one)."""
        tail = self.losses[-last:]
        return sum(tail) / len(tail) if tail else float("nan")

    def summary(self) -> str:
        """Steps, final loss and how it stopped: the same on every machine (no time in it)."""
        return (f"{self.steps} steps on {self.device}{' with mixed precision' if self.amp else ''}; "
                f"final loss {self.final_loss():.4f} ({self.stopped})")

    def timing(self) -> str:
        """The wall-clock side, on a line of its own: seconds and steps per second."""
        rate = self.steps / self.seconds if self.seconds > 0 else float("nan")
        return f"time: {self.steps} steps in {self.seconds:.1f} s ({rate:.0f} steps/s)"

    def plot(self, ax=None, title: str | None = None, reference: float | None = None,
             reference_label: str | None = None):
        """Loss curve (raw and smoothed), optionally with a horizontal reference line."""
        from .plot import loss_curve

        return loss_curve(self.losses, ax=ax, title=title or "Training loss",
                          reference=reference, reference_label=reference_label)

    def __add__(self, other: "History") -> "History":
        """Join two runs (e.g. a cell run twice to train longer)."""
        offset = self.steps
        planned = None if self.planned is None or other.planned is None else self.planned + other.planned
        return History(self.losses + other.losses, self.seconds + other.seconds, other.stopped,
                       other.device, other.amp,
                       self.records + [(s + offset, v) for s, v in other.records], planned)


def to_device(batch, device: torch.device):
    """Move a tensor, or a tuple/list/dict of tensors (nested), to ``device``.

    Containers keep their type; anything that is not a tensor is returned as it is.

    Example:
        >>> batch = to_device({"x": torch.zeros(2), "pair": (torch.ones(1), 3)}, torch.device("cpu"))
        >>> batch["x"].device, type(batch["pair"]).__name__, batch["pair"][1]
        (device(type='cpu'), 'tuple', 3)
    """
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        moved = [to_device(v, device) for v in batch]
        return type(batch)(moved) if isinstance(batch, list) else tuple(moved)
    return batch


def _batch_source(batches) -> Callable[[], Any]:
    """A zero-argument function giving the next batch, from a callable or an iterable."""
    if callable(batches) and not isinstance(batches, (torch.Tensor, Iterable)):
        return batches
    if isinstance(batches, torch.Tensor):
        raise TypeError("batches must be a zero-argument function or an iterable of batches; "
                        "to train on one fixed tensor use batches=lambda: x")
    if not isinstance(batches, Iterable):
        raise TypeError(f"batches must be callable or iterable, got {type(batches).__name__}")
    state = {"it": iter(batches)}

    def next_batch():
        try:
            return next(state["it"])
        except StopIteration:
            state["it"] = iter(batches)
            try:
                return next(state["it"])
            except StopIteration:
                raise ValueError("batches ran out and cannot be re-iterated (a generator or an "
                                 "empty iterable?); pass a DataLoader, a list, or a function "
                                 "that returns a batch") from None

    return next_batch


class _Snapshot:
    """A copy of a module's parameters and buffers, refreshed in place each step."""

    def __init__(self, model: nn.Module):
        self.live = [t for t in list(model.parameters()) + list(model.buffers())]
        self.saved = [t.detach().clone() for t in self.live]

    @torch.no_grad()
    def save(self):
        for s, t in zip(self.saved, self.live):
            s.copy_(t)

    @torch.no_grad()
    def restore(self):
        for s, t in zip(self.saved, self.live):
            t.copy_(s)


def _make_scheduler(scheduler, optimizer, steps):
    if scheduler is None:
        return None
    if scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(steps, 1))
    if callable(scheduler):
        return scheduler(optimizer)
    raise ValueError(f"scheduler must be None, 'cosine' or a function of the optimizer, got {scheduler!r}")


def fit(model: nn.Module, loss_fn: Callable[[nn.Module, Any], torch.Tensor], batches, steps: int, *,
        lr: float = 1e-3, optimizer: torch.optim.Optimizer | None = None,
        device: torch.device | str | None = None, max_seconds: float | None = None,
        grad_clip: float | None = None, progress: bool = True, amp: bool = False,
        scheduler=None, callback: Callable | None = None, callback_every: int = 100) -> History:
    """Train ``model`` for ``steps`` steps of ``loss_fn(model, batch)``.

    Returns a ``History``. Interrupting (Ctrl-C) returns the history so far, with the model at
    its last completed step. A non-finite loss or gradient raises ``FloatingPointError`` with
    the model restored to its last good step.

    Args:
        loss_fn: ``loss_fn(model, batch) -> scalar tensor``.
        batches: a zero-argument function returning a fresh batch each step, or an iterable
            (list, DataLoader) that is re-iterated when exhausted.
        steps: the number of optimiser steps; with a fixed seed the result does not depend on
            the machine's speed.
        optimizer: defaults to ``Adam(model.parameters(), lr=lr)``.
        device: ``None`` means ``get_device()``; the model and each batch are moved there.
        max_seconds: a safety cap, not a budget: set it several times the expected time. If it
            fires, the run stops with ``history.stopped == "time cap"``, the cell says so, and
            later ``verdict`` lines say the numbers are not comparable with the reference run.
        grad_clip: clip the gradient norm to this value.
        amp: ``True`` uses bfloat16 autocast on CUDA (mixed precision); ignored elsewhere. Off by
            default: log-determinants, high-frequency sines and second derivatives need float32.
        scheduler: ``None``, ``"cosine"`` (cosine decay over ``steps``) or
            ``lambda optimizer: torch.optim.lr_scheduler...``.
        callback: ``callback(step, model, history)`` every ``callback_every`` steps and after the
            last; whatever it returns (if not ``None``) is kept in ``history.records``.

    Example:
        >>> model = nn.Linear(1, 1)
        >>> x = torch.linspace(-1, 1, 32)[:, None]
        >>> history = fit(model, lambda m, b: ((m(b) - 3 * b) ** 2).mean(), lambda: x, 200,
        ...               lr=0.05, device="cpu", progress=False)
        >>> round(model.weight.item(), 2), history.steps, history.stopped
        (3.0, 200, 'completed')
    """
    if steps < 1:
        raise ValueError(f"steps must be a positive number of training steps, got {steps}")
    device = torch.device(device) if device is not None else get_device()
    model.to(device)
    model.train()
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    sched = _make_scheduler(scheduler, optimizer, steps)
    use_amp = bool(amp) and device.type == "cuda"
    next_batch = _batch_source(batches)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    lr = optimizer.param_groups[0]["lr"]
    snapshot = _Snapshot(model)
    history = History(device=str(device), amp=use_amp, planned=steps)

    bar = tqdm(total=steps, desc="training", disable=not progress, leave=True, mininterval=0.5)
    start = time.perf_counter()
    running = None
    step = 0
    try:
        for step in range(1, steps + 1):
            snapshot.save()
            batch = to_device(next_batch(), device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                loss = loss_fn(model, batch)
            if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
                raise TypeError("loss_fn must return a scalar tensor, got "
                                f"{type(loss).__name__} of shape {tuple(getattr(loss, 'shape', ()))}")
            value = loss.item()
            if not math.isfinite(value):
                snapshot.restore()
                raise FloatingPointError(_remedy(f"The loss is {value} at step {step}", step, lr, grad_clip))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip else float("inf"))
            if not torch.isfinite(norm):
                snapshot.restore()
                raise FloatingPointError(_remedy(f"A gradient is {norm.item()} at step {step}", step, lr, grad_clip))
            optimizer.step()
            if sched is not None:
                sched.step()
            history.losses.append(value)
            running = value if running is None else 0.95 * running + 0.05 * value
            bar.update(1)
            if progress and (step % 10 == 0 or step == steps):
                bar.set_postfix(loss=f"{running:.4f}", refresh=False)
            if callback is not None and (step % callback_every == 0 or step == steps):
                _record(callback, step, model, history)
            if max_seconds is not None and step < steps and time.perf_counter() - start > max_seconds:
                history.stopped = "time cap"
                elapsed = time.perf_counter() - start
                CUT_SHORT.append(f"stopped at step {step} of {steps}")
                print(f"Stopped at step {step} of {steps} after {elapsed:.0f} s (the safety cap of "
                      f"{max_seconds:g} s): the numbers below will differ from the reference run. "
                      "Run the cell again on a less busy machine, or raise max_seconds.")
                break
    except KeyboardInterrupt:
        if history.steps < step:  # interrupted inside a step: undo its partial update
            snapshot.restore()
        history.stopped = "interrupted"
        CUT_SHORT.append(f"interrupted at step {history.steps} of {steps}")
        print(f"Interrupted: kept the model after step {history.steps} of {steps}; "
              "the history so far is returned (run the cell again to train more).")
    finally:
        history.seconds = time.perf_counter() - start
        bar.close()
    return history


#: runs of this Python process (kernel) that stopped before their last step: every ``verdict``
#: printed after one of them says that the numbers are not comparable with the reference run
CUT_SHORT: list[str] = []


def cut_short_runs() -> list[str]:
    """How the runs of this kernel that stopped early stopped (empty when all completed).

    Example:
        >>> isinstance(cut_short_runs(), list)
        True
    """
    return list(CUT_SHORT)


def verdict(met: bool, advice: str = "") -> str:
    """``"met"`` or ``"not met"`` (with what to try), flagged when a run was cut short.

    Every target line in the notebooks ends with a verdict. When a training run of this kernel
    stopped before its last step (the safety cap or Ctrl-C), its numbers differ from the
    reference run's, and the verdict says so instead of blaming the student's code.

    Args:
        met: whether the target was met.
        advice: what to try when it is not met (shown after "not met").

    Example:
        >>> verdict(True)
        'met'
        >>> verdict(False, "train longer")
        'not met (try: train longer)'
    """
    text = "met" if met else ("not met" + (f" (try: {advice})" if advice else ""))
    if CUT_SHORT:
        text += f" [not comparable with the reference run: a training run {CUT_SHORT[0]}]"
    return text


def _record(callback, step, model, history):
    was_training = model.training
    value = callback(step, model, history)
    model.train(was_training)
    if value is not None:
        history.records.append((step, value))


def _remedy(what: str, step: int, lr: float, grad_clip) -> str:
    kept = f"after step {step - 1}" if step > 1 else "as it was before training"
    hints = [f"a lower learning rate (lr={lr:g} now)"]
    if not grad_clip:
        hints.append("gradient clipping (e.g. grad_clip=1.0)")
    hints.append("checking the data and the loss for NaN or division by zero")
    return f"{what}; training stopped. The model keeps its weights {kept}. Try " + ", ".join(hints) + "."
