"""Refuse shortcuts that skip an exercise's idea, kindly.

Some exercises are about computing something yourself that a library already knows: a
determinant by the permutation formula (not ``torch.det``), a flow's log-density from its parts
(not ``torch.distributions``). A check then runs the student's function with those functions
switched off: each one raises for the duration of the call, also where the student's notebook
imported it under its own name. If the student's code calls one, the check fails with a friendly
message that says which function was used and why the exercise asks for the long way round.

Forbidding one function forbids its obvious library equivalents too (:data:`FAMILIES`):
switching off ``torch.det`` also switches off ``torch.linalg.det``, ``Tensor.det``,
``numpy.linalg.det``, ``scipy.linalg.det``, ``slogdet``/``logdet``, the eigenvalue and LU routes.
A refusal at run time can never be complete (a determinant can always be computed some other
way); it stops the obvious shortcuts, and the notebooks say so to the student once.

Groups for checks: :data:`DETERMINANTS`, :data:`FULL_JACOBIANS`, :data:`JACOBIAN_PRODUCTS`,
:data:`JACOBIANS` (both), :data:`GRADIENTS` (backward and ``autograd.grad``), :data:`AUTOGRAD` (both),
:data:`SOFTPLUS`.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable, Iterable

from . import CheckFailed

__all__ = ["call_without", "FAMILIES", "DETERMINANTS", "FULL_JACOBIANS", "JACOBIAN_PRODUCTS", "JACOBIANS", "GRADIENTS", "AUTOGRAD", "SOFTPLUS",
           "equivalents"]

#: functions that compute a determinant, or a factorisation or spectrum that gives it away
DETERMINANTS = ["torch.det", "torch.linalg.det", "torch.Tensor.det", "torch.slogdet", "torch.linalg.slogdet",
                "torch.Tensor.slogdet", "torch.logdet", "torch.Tensor.logdet", "torch.linalg.eig",
                "torch.linalg.eigvals", "torch.linalg.eigh", "torch.linalg.eigvalsh", "torch.linalg.lu",
                "torch.linalg.lu_factor", "torch.linalg.lu_factor_ex", "torch.lu", "torch.Tensor.lu",
                "torch.linalg.svdvals", "torch.linalg.svd", "torch.svd", "torch.Tensor.svd",
                "torch.linalg.qr", "torch.qr", "torch.Tensor.qr",
                "numpy.linalg.det", "numpy.linalg.slogdet", "numpy.linalg.eig", "numpy.linalg.eigvals",
                "numpy.linalg.svd", "numpy.linalg.qr",
                "scipy.linalg.det", "scipy.linalg.lu", "scipy.linalg.lu_factor", "scipy.linalg.eig",
                "scipy.linalg.eigvals", "scipy.linalg.svd", "scipy.linalg.svdvals", "scipy.linalg.qr"]
#: functions that build a whole Jacobian (or Hessian) for you
FULL_JACOBIANS = ["torch.autograd.functional.jacobian", "torch.autograd.functional.hessian", "torch.func.jacrev",
                  "torch.func.jacfwd", "torch.func.hessian"]
#: functions that multiply a Jacobian with a vector for you
JACOBIAN_PRODUCTS = ["torch.autograd.functional.jvp", "torch.autograd.functional.vjp",
                     "torch.autograd.functional.hvp", "torch.autograd.functional.vhp", "torch.func.jvp",
                     "torch.func.vjp", "torch.func.linearize"]
#: both: every way to get a Jacobian, or its products, out of autograd
JACOBIANS = FULL_JACOBIANS + JACOBIAN_PRODUCTS
#: functions that differentiate by backpropagation
GRADIENTS = ["torch.autograd.grad", "torch.autograd.backward", "torch.Tensor.backward", "torch.func.grad",
             "torch.func.grad_and_value"]
#: every way to let autograd differentiate
AUTOGRAD = JACOBIANS + GRADIENTS
#: library versions of a stable softplus
SOFTPLUS = ["torch.nn.functional.softplus", "torch.nn.Softplus.forward", "torch.logaddexp", "numpy.logaddexp"]

#: a forbidden function brings its family with it (the obvious library equivalents)
FAMILIES = [DETERMINANTS, FULL_JACOBIANS, JACOBIAN_PRODUCTS, GRADIENTS, SOFTPLUS]


def equivalents(names) -> list:
    """``names`` with the rest of each one's family added (see :data:`FAMILIES`), each once.

    Example:
        >>> "scipy.linalg.det" in equivalents(["torch.det"])
        True
        >>> equivalents(["course_utils.linalg.leibniz_det"])
        ['course_utils.linalg.leibniz_det']
    """
    out, seen = [], set()
    for item in names:
        dotted = item if isinstance(item, str) else item[0]
        group = next((family for family in FAMILIES if dotted in family), [])
        for member in [item] + [m for m in group if m != dotted]:
            key = member if isinstance(member, str) else member[0]
            if key not in seen:
                seen.add(key)
                out.append(member)
    return out


class _ShortcutUsed(Exception):
    """Raised by a switched-off function while a student's function runs."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


def _resolve(dotted: str) -> tuple[Any, str, Any]:
    """``"torch.linalg.slogdet"`` -> ``(torch.linalg, "slogdet", the function)``."""
    parts = dotted.split(".")
    if parts[0] == "scipy" and "scipy" not in sys.modules:
        raise ValueError(f"{dotted!r}: scipy is not imported, so it cannot be called either")
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
        own = attr in vars(owner)
        old = vars(owner)[attr] if own else None
        patches.append((owner, attr, own, old))
        setattr(owner, attr, value)

    originals = []
    known = {member for family in FAMILIES for member in family}
    for item in equivalents(forbidden):
        dotted, name = (item, item) if isinstance(item, str) else item
        try:
            owner, attr, original = _resolve(dotted)
        except (ValueError, AttributeError, ImportError):
            if dotted not in known:
                raise
            continue                         # an equivalent this installation does not have
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
        for owner, attr, own, old in reversed(patches):
            if isinstance(owner, dict):
                owner[attr] = old
            elif own:
                setattr(owner, attr, old)
            else:
                delattr(owner, attr)
