"""Checks behind the notebooks' exercises: friendly, specific, honest.

Each exercise has a check, ``course_utils.checks.nbNN.<name>(student_function)``, with three
possible outcomes:

- **not attempted**: the student's function still raises ``NotImplementedError``; the check
  prints one friendly line and returns ``False``, and the notebook runs on (later cells use the
  reference version from ``course_utils``);
- **wrong**: an ``AssertionError`` that says, in words and numbers, what was expected and what
  came back (and, where a common slip explains it, which slip);
- **right**: one short confirmation.

A check returns nothing (so a notebook shows only its message), except where the notebook
later uses what the exercise builds: a check made with ``exercise(..., reference=f)`` returns
the student's function when it is right and the reference ``f`` otherwise, so the notebook
goes on with the student's own code (``planar = checks.planar(planar)``).

``check.last_result`` records ``True`` (right), ``False`` (not attempted) or ``None`` (not run,
or wrong). Every outcome is also recorded for grading (``course_utils.checks.OUTCOMES``, and one
JSON line per outcome in the file named by the environment variable ``COURSE_CHECKS_LOG``):
``{"exercise": n, "title": ..., "check": name, "status": "correct" | "wrong" |
"not attempted" | "error", "message": ...}``.

Writing a check::

    @exercise(1, "Jacobian by hand")
    def jacobian_by_hand(student_fn):
        got = student_fn(x)
        assert_close(got, expected, "the Jacobian at x = (1, 2)")
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
from typing import Callable

import numpy as np
import torch

__all__ = ["exercise", "assert_close", "assert_shape", "CheckFailed", "explain_slips", "unpack_pair", "OUTCOMES"]


class CheckFailed(AssertionError):
    """A wrong answer: the message says what was expected and what came back.

    A subclass of ``AssertionError``, so a plain ``assert`` inside a checker fails the same way.

    Example:
        >>> try:
        ...     assert_close(9.0, 6.0, "double(3)")
        ... except CheckFailed as err:
        ...     print(isinstance(err, AssertionError), err)
        True double(3): expected 6, got 9 (largest difference 3).
    """


#: every check outcome of this Python process, in order (see the module docstring)
OUTCOMES: list[dict] = []

LOG_VARIABLE = "COURSE_CHECKS_LOG"


def _record(run, status: str, message: str) -> None:
    """Append one outcome to ``OUTCOMES`` and, if ``$COURSE_CHECKS_LOG`` is set, to that file."""
    outcome = {"exercise": run.exercise_number, "title": run.exercise_title, "check": run.__name__,
               "module": run.__module__, "status": status, "message": message}
    OUTCOMES.append(outcome)
    path = os.environ.get(LOG_VARIABLE)
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(outcome) + "\n")


def exercise(number: int, title: str, reference: Callable | None = None) -> Callable:
    """Turn an assertion-based checker into a notebook check (see the module docstring).

    Args:
        number, title: the exercise's number and title, as in the notebook's heading.
        reference: the course's own version: the check then returns the student's function
            when it passes and ``reference`` when it is not attempted, so later cells can use
            the returned one.

    Example:
        >>> @exercise(1, "double a number", reference=lambda x: 2 * x)
        ... def double(student_fn):
        ...     assert_close(student_fn(3.0), 6.0, "double(3)")
        >>> mine = lambda x: x + x
        >>> double(mine) is mine
        Exercise 1 (double a number): correct. Well done!
        True
        >>> def not_yet(x):
        ...     raise NotImplementedError
        >>> double(not_yet)(5.0)                 # not attempted: the reference comes back
        Exercise 1 (double a number): not attempted yet. Replace `raise NotImplementedError` ...
        10.0
        >>> double(lambda x: x * x)
        Traceback (most recent call last):
        ...
        course_utils.checks.CheckFailed: Exercise 1 (double a number) is not right yet: double(3): expected 6, got 9 (largest difference 3).
    """

    def decorate(checker):
        @functools.wraps(checker)
        def run(*student, **kwargs):
            label = f"Exercise {number} ({title})"
            run.last_result = None
            try:
                with _own_random_state():
                    checker(*student, **kwargs)
            except NotImplementedError:
                message = (f"{label}: not attempted yet. Replace `raise NotImplementedError` with your "
                           "code and run this cell again; the notebook carries on with the reference "
                           "version meanwhile.")
                print(message)
                run.last_result = False
                _record(run, "not attempted", message)
                return reference
            except CheckFailed as err:
                message = f"{label} is not right yet: {err}"
                _record(run, "wrong", message)
                raise CheckFailed(message) from None
            except Exception as err:
                _record(run, "error", f"{label}: your code raised {type(err).__name__}: {err}")
                raise
            message = f"{label}: correct. Well done!"
            print(message)
            run.last_result = True
            _record(run, "correct", message)
            return student[0] if reference is not None and student else None

        run.exercise_number = number
        run.exercise_title = title
        run.reference = reference
        run.last_result = None
        return run

    return decorate


@contextlib.contextmanager
def _own_random_state():
    """Run a check without touching the notebook's random generators (torch, NumPy, random).

    A check builds layers and may call the student's code, which may draw random numbers; the
    generators are put back afterwards, so the cells below print the same numbers whether or
    not the exercise was attempted.
    """
    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


def unpack_pair(out, what: str, names: str = "(y, log_det)") -> tuple:
    """Return ``out`` if it is a pair, else fail saying what came back.

    Args:
        out: what the student's function returned.
        what: the call, as the message should name it (``"f(x)"``).
        names: the pair's names, as the message should show them.

    Example:
        >>> unpack_pair((1, 2), "f(x)")
        (1, 2)
        >>> unpack_pair(3, "f(x)")
        Traceback (most recent call last):
        ...
        course_utils.checks.CheckFailed: f(x) should return a pair (y, log_det), but returned int
    """
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        extra = f" of length {len(out)}" if isinstance(out, (tuple, list)) else ""
        raise CheckFailed(f"{what} should return a pair {names}, but returned {type(out).__name__}{extra}")
    return tuple(out)


def _fmt(value) -> str:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if value.numel() == 1:
            return f"{value.item():.6g}"
        with torch.no_grad():
            return str(value.to(torch.float64).numpy().round(4).tolist())
    if isinstance(value, float):
        return f"{value:.6g}"
    return repr(value)


def _as_tensor(value, what: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach()
    try:
        return torch.as_tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise CheckFailed(f"{what} should be a number or a tensor, but came back as "
                          f"{type(value).__name__}: {value!r}") from None


def assert_shape(got, shape, what: str) -> None:
    """Fail with both shapes when ``got`` has the wrong shape.

    Example:
        >>> assert_shape(torch.zeros(4, 2), (4, 2), "the samples")
        >>> assert_shape(torch.zeros(4), (4, 2), "the samples")
        Traceback (most recent call last):
        ...
        course_utils.checks.CheckFailed: the samples should have shape (4, 2), but has shape (4,)
    """
    got_t = _as_tensor(got, what)
    if tuple(got_t.shape) != tuple(shape):
        raise CheckFailed(f"{what} should have shape {tuple(shape)}, but has shape {tuple(got_t.shape)}")


def assert_close(got, expected, what: str, *, atol: float = 1e-5, rtol: float = 1e-4,
                 slips: dict | None = None) -> None:
    """Fail with expected and returned values (and a diagnosis) unless they match.

        |got - expected| <= atol + rtol |expected|   element-wise (``torch.allclose``), shapes equal

    Args:
        got: the student's value (a number or a tensor).
        expected: the right value.
        what: what the value is, as the message should name it.
        slips: maps a description of a common mistake to the value that mistake produces,
            e.g. ``{"the sign is flipped": -expected}``; a wrong answer equal to one of them says so.

    Example:
        >>> assert_close(torch.tensor([1.0, 2.0]), [1.0, 2.0], "the mean")
        >>> assert_close(-0.5, 0.5, "log|det J|", slips={"the sign is flipped": -0.5})
        Traceback (most recent call last):
        ...
        course_utils.checks.CheckFailed: log|det J|: expected 0.5, got -0.5 (largest difference 1). This is what you get when the sign is flipped.
    """
    got_t = _as_tensor(got, what)
    exp_t = _as_tensor(expected, "the expected value").to(torch.float64)
    if got_t.dtype == torch.bool or not (got_t.is_floating_point() or got_t.is_complex()):
        got_t = got_t.to(torch.float64)
    if tuple(got_t.shape) != tuple(exp_t.shape):
        hint = explain_slips(got_t, slips, atol, rtol)
        raise CheckFailed(f"{what} should have shape {tuple(exp_t.shape)}, but has shape "
                          f"{tuple(got_t.shape)}.{hint}")
    got64 = got_t.to(torch.float64).cpu()
    if not torch.isfinite(got64).all():
        raise CheckFailed(f"{what} contains NaN or infinity: {_fmt(got64)}; expected {_fmt(exp_t)}")
    if not torch.allclose(got64, exp_t, atol=atol, rtol=rtol):
        err = (got64 - exp_t).abs().max().item()
        hint = explain_slips(got64, slips, atol, rtol)
        raise CheckFailed(f"{what}: expected {_fmt(exp_t)}, got {_fmt(got64)} "
                          f"(largest difference {err:.3g}).{hint}")


def explain_slips(got, slips: dict | None, atol: float = 1e-5, rtol: float = 1e-4) -> str:
    """A sentence naming the common mistake whose result matches ``got``, or ``""``.

    Args:
        got: the student's value, a tensor.
        slips: maps a description of a mistake to the value it produces (see :func:`assert_close`).

    Example:
        >>> explain_slips(torch.tensor(2.0), {"you forgot the square root": 4.0, "you halved it": 2.0})
        ' This is what you get when you halved it.'
        >>> explain_slips(torch.tensor(3.0), {"you halved it": 2.0})
        ''
    """
    for description, value in (slips or {}).items():
        v = _as_tensor(value, "slip").to(torch.float64).cpu()
        g = got.detach().to(torch.float64).cpu()
        if g.shape == v.shape and torch.allclose(g, v, atol=atol, rtol=rtol):
            return f" This is what you get when {description}."
    return ""
