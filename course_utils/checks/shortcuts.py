"""Refuse shortcuts that skip an exercise's idea, kindly.

Some exercises are about computing something yourself that a library already knows: a
determinant by the permutation formula (not ``torch.det``), a flow's log-density from its parts
(not ``torch.distributions``). A check then runs the student's function with those functions
switched off: each one raises for the duration of the call, also where the student's notebook
imported it under its own name. If the student's code calls one, the check fails with a friendly
message that says which function was used and why the exercise asks for the long way round.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable, Iterable

from . import CheckFailed

__all__ = ["call_without"]


class _ShortcutUsed(Exception):
    """Raised by a switched-off function while a student's function runs."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


def _resolve(dotted: str) -> tuple[Any, str, Any]:
    """``"torch.linalg.slogdet"`` -> ``(torch.linalg, "slogdet", the function)``."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            owner = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:-1]:
            owner = getattr(owner, attr)
        return owner, parts[-1], getattr(owner, parts[-1])
    raise ValueError(f"cannot resolve {dotted!r}")


def _stand_in(name: str) -> Callable:
    def refuse(*args, **kwargs):
        raise _ShortcutUsed(name)
    return refuse


def call_without(forbidden: Iterable[str | tuple[str, str]], reason: str, student_fn: Callable, *args, **kwargs):
    """Call ``student_fn(*args, **kwargs)`` with every function named in ``forbidden`` switched off.

    Each name is a dotted path (``"torch.det"``, ``"torch.Tensor.det"``,
    ``"torch.distributions.Distribution.__init__"``). During the call the function raises, in its
    module or class, in every ``course_utils`` module that re-exports it, and under any name the
    student's own globals bind it to. A call to one of them fails the check with a kind message
    built from ``reason`` (what the exercise is about); everything else the student's function
    raises or returns passes through unchanged.

    Args:
        forbidden: dotted names of the functions to switch off, or ``(dotted name, name to show)``
            pairs, e.g. ``("torch.distributions.Distribution.__init__", "torch.distributions")``.
        reason: completes "this exercise is about ...", e.g. "the permutation formula".
        student_fn: the student's function; ``args`` and ``kwargs`` are passed to it.

    Example:
        >>> import torch
        >>> call_without(["torch.det"], "the permutation formula", lambda M: M[0, 0] * M[1, 1], torch.eye(2))
        tensor(1.)
        >>> call_without(["torch.det"], "the permutation formula", lambda M: torch.det(M), torch.eye(2))
        Traceback (most recent call last):
        ...
        course_utils.checks.CheckFailed: your function calls torch.det. That would give the answer, but this exercise is about the permutation formula, so torch.det is switched off while your code runs (the check still compares with it). Your function should get there without torch.det; the hint under the exercise shows the way.
    """
    patches: list[tuple[Any, str, bool, Any]] = []          # (owner, attribute, had own entry, old value)

    def patch(owner, attr, value):
        own = isinstance(owner, type) and attr in owner.__dict__
        old = owner.__dict__[attr] if own else getattr(owner, attr, None)
        patches.append((owner, attr, own or not isinstance(owner, type), old))
        setattr(owner, attr, value)

    originals = []
    for item in forbidden:
        dotted, name = (item, item) if isinstance(item, str) else item
        owner, attr, original = _resolve(dotted)
        originals.append((name, original))
        patch(owner, attr, _stand_in(name))
    try:
        # re-exports in the course's modules, and the names in the student's own globals
        spaces = [m for key, m in list(sys.modules.items()) if key.startswith("course_utils") and m is not None]
        student_globals = getattr(student_fn, "__globals__", None)
        for name, original in originals:
            if isinstance(original, (type(None), bool, int, float, str)):
                continue
            for module in spaces:
                for attr, value in list(vars(module).items()):
                    if value is original:
                        patch(module, attr, _stand_in(name))
            if student_globals is not None:
                for attr, value in list(student_globals.items()):
                    if value is original:
                        patches.append((student_globals, attr, True, value))
                        student_globals[attr] = _stand_in(name)
        try:
            return student_fn(*args, **kwargs)
        except _ShortcutUsed as used:
            raise CheckFailed(
                f"your function calls {used.name}. That would give the answer, but this exercise is about "
                f"{reason}, so {used.name} is switched off while your code runs (the check still compares "
                f"with it). Your function should get there without {used.name}; the hint under the "
                "exercise shows the way.") from None
    finally:
        for owner, attr, restore, old in reversed(patches):
            if isinstance(owner, dict):
                owner[attr] = old
            elif restore:
                setattr(owner, attr, old)
            else:
                delattr(owner, attr)
