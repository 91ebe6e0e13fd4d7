"""Where the course runs: device choice, seeds, and an environment report.

Every notebook calls ``get_device()`` instead of hard-coding ``.cuda()``, so the same cell
runs on a laptop CPU, an NVIDIA GPU (CUDA) or an Apple GPU (MPS).
"""

from __future__ import annotations

import os
import platform
import random
import re
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

__all__ = ["get_device", "seed_everything", "setup", "environment_report", "is_accelerated", "pick",
           "best_time", "measure", "Timing", "is_timing_line"]


def get_device() -> torch.device:
    """CUDA if available, else Apple MPS, else CPU.

    The environment variable ``COURSE_DEVICE`` (e.g. ``cpu``, ``cuda``, ``cuda:1``, ``mps``)
    overrides the choice; asking for a device that is not there raises a ``RuntimeError``.

    Example:
        >>> get_device().type in {"cpu", "cuda", "mps"}
        True
    """
    wanted = os.environ.get("COURSE_DEVICE", "").strip()
    if wanted:
        device = torch.device(wanted)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"COURSE_DEVICE={wanted!r} but CUDA is not available here")
        if device.type == "mps" and not _mps_available():
            raise RuntimeError(f"COURSE_DEVICE={wanted!r} but MPS is not available here")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def is_accelerated(device: torch.device | None = None) -> bool:
    """True on CUDA or MPS: notebooks use it to choose larger settings.

    Args:
        device: the device to ask about; ``None`` means :func:`get_device`.

    Example:
        >>> is_accelerated(torch.device("cpu"))
        False
    """
    return (device or get_device()).type in {"cuda", "mps"}


def pick(cpu, gpu, device: torch.device | None = None):
    """Return ``gpu`` on an accelerator and ``cpu`` otherwise.

    Notebooks state their settings in one line, e.g. ``size = pick(cpu=64, gpu=256)``,
    and print which were used.

    Args:
        cpu: the setting for a CPU.
        gpu: the setting for CUDA or MPS.
        device: the device to decide for; ``None`` means :func:`get_device`.

    Example:
        >>> pick(cpu=64, gpu=256, device=torch.device("cpu"))
        64
    """
    return gpu if is_accelerated(device) else cpu


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch (all devices) so a notebook runs the same each time.

    Example:
        >>> seed_everything(0)
        >>> a = torch.rand(3)
        >>> seed_everything(0)
        >>> torch.equal(a, torch.rand(3))
        True
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def setup(seed: int = 0, single_thread: bool = True, quiet: bool = False) -> torch.device:
    """The first cell of every notebook: seed everything, pick the device, choose CPU threads.

    On a CPU, ``single_thread=True`` runs torch on one thread. The course's networks are small:
    on a 2-core laptop one thread is about as fast as two when the machine is idle, and it does
    not slow down 10x or more when another program (a browser, a second notebook) takes the other
    core, which two threads do (measured on the course's 2-core reference machine). Prints one line.

    Example:
        >>> device = setup(0, quiet=True)
        >>> device.type in {"cpu", "cuda", "mps"}
        True
    """
    seed_everything(seed)
    device = get_device()
    if device.type == "cpu" and single_thread:
        torch.set_num_threads(1)
    if not quiet:
        print(f"device: {device} | CPU threads: {torch.get_num_threads()} | seed: {seed}")
    return device


def best_time(fn: Callable, *args, repeat: int = 3) -> float:
    """The shortest of ``repeat`` wall-clock timings of ``fn(*args)``, in seconds.

    The minimum is the least disturbed by whatever else the machine does.

    Example:
        >>> best_time(sum, range(1000), repeat=2) < 1.0
        True
    """
    return measure(fn, *args, repeat=repeat, warmup=0).low


@dataclass
class Timing:
    """Repeated wall-clock timings of one call: the median and the spread, in seconds.

    ``str()`` gives one line with a unit, e.g. ``"1.23 ms (median of 5, 1.20-1.31 ms)"``; the
    course prints timings on lines of their own, so every other line of a notebook's output is
    the same on every machine.

    Example:
        >>> t = Timing([0.0012, 0.0011, 0.0013, 0.0012, 0.0014])
        >>> print(t)
        1.2 ms (median of 5, 1.1-1.4 ms)
    """

    times: list

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def low(self) -> float:
        return min(self.times)

    @property
    def high(self) -> float:
        return max(self.times)

    def __str__(self) -> str:
        scale, unit = next((f, u) for f, u in ((1.0, "s"), (1e3, "ms"), (1e6, "us"))
                           if self.median * f >= 1 or u == "us")
        return (f"{self.median * scale:.3g} {unit} (median of {len(self.times)}, "
                f"{self.low * scale:.3g}-{self.high * scale:.3g} {unit})")


def measure(fn: Callable, *args, repeat: int = 5, warmup: int = 1) -> Timing:
    """Time ``fn(*args)``: ``warmup`` untimed calls, then ``repeat`` timed ones (median, spread).

    Costs are measured this way, apart from training: never by racing clocks inside a
    training loop. A comparison "at equal time" is computed from such per-step costs.

    Args:
        fn: the call to time; ``args`` are passed to it.
        repeat: timed calls (at least 5 for a median worth quoting).
        warmup: untimed calls first (caches, lazy initialisation).

    Example:
        >>> t = measure(sum, range(1000), repeat=5)
        >>> len(t.times), t.low <= t.median <= t.high, str(t).split()[1] in ("s", "ms", "us")
        (5, True, True)
    """
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1, got {repeat}")
    for _ in range(warmup):
        fn(*args)
    times = []
    for _ in range(repeat):
        _synchronize()
        start = time.perf_counter()
        fn(*args)
        _synchronize()                      # a CUDA call returns before its work is done
        times.append(time.perf_counter() - start)
    return Timing(times)


def _synchronize() -> None:
    """Wait for queued CUDA work (nothing to do on a CPU, or before CUDA is used)."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


#: a line of notebook output that reports a time (and so may differ between runs): it carries
#: a number with a unit of time (s, ms, us, seconds, minutes) or the word "time"
_TIMING = re.compile(r"(\d\s*(s|ms|us|µs|sec|secs|seconds?|min|minutes?|steps/s|it/s)\b)|\btimes?\b|\btimings?\b|\bspeed", re.I)


def is_timing_line(line: str) -> bool:
    """Whether a printed line reports a time (such lines may differ between runs).

    Every other line of a notebook's output must be the same in every run on the same torch
    and CPU architecture; timings, and what is computed from them (speed-ups, steps per
    second), go on lines of their own that carry a unit or say "time".

    Example:
        >>> is_timing_line("forward 1.2 ms (median of 5)"), is_timing_line("time: 400 steps")
        (True, True)
        >>> is_timing_line("gap 0.031 nats, target < 0.05: met")
        False
    """
    return bool(_TIMING.search(line))


def environment_report(device: torch.device | None = None) -> dict:
    """What this kernel runs on: device, its name, versions, and CPU threads.

    Returns a dict (shown as a table in notebook 00); nothing here is downloaded or timed.

    Args:
        device: the device to describe; ``None`` means :func:`get_device`.

    Example:
        >>> report = environment_report(torch.device("cpu"))
        >>> report["device"], report["torch"] == torch.__version__
        ('cpu', True)
    """
    device = device or get_device()
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    elif device.type == "mps":
        name = "Apple GPU (MPS)"
    else:
        name = platform.processor() or platform.machine()
    import matplotlib

    report = {
        "device": str(device),
        "device name": name,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "matplotlib": matplotlib.__version__,
        "CPU threads used by torch": torch.get_num_threads(),
        "CPU cores": os.cpu_count(),
        "COURSE_DEVICE": os.environ.get("COURSE_DEVICE", "(not set)"),
    }
    return report
