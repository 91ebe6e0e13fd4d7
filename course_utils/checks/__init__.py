"""Checks behind the notebooks' exercises: friendly, specific, honest.

Each exercise has a check, ``course_utils.checks.nbNN.<name>(student_function)``, with three
possible outcomes:

- **not attempted**: the student's function still raises ``NotImplementedError``; the check
  prints one friendly line and returns ``False``, and the notebook runs on (later cells use the
  reference version from ``course_utils``);
- **wrong**: a ``CheckFailed`` (an ``AssertionError``) that says, in words and numbers, what was
  expected and what came back (and, where a common slip explains it, which slip);
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

Writing a check (the usage note; ``tests/checkcontract.py`` has the matching test side)::

    @exercise(1, "Jacobian by hand")
    def jacobian_by_hand(student_fn):
        got = call_student(student_fn, x, forbidden=AUTOGRAD, reason="differentiating by hand",
                           errors={"math domain error": "a is negative here: take log|a|"})
        assert_close(got, expected, "the Jacobian at x = (1, 2)", atol=1e-8,
                     slips={"rows and columns are swapped": expected.T})

- **Call the student's function with** :func:`call_student`: it passes copies of the tensors,
  fails with "your function changes its input x in place" when an input was edited
  (``x -= b``, ``x.log_()``), switches off the shortcuts in ``forbidden`` (with their obvious
  library equivalents, see ``shortcuts.py``), and turns the raw errors of common slips into a
  named slip (:data:`ERROR_SLIPS`, plus the check's own ``errors={pattern: sentence}``).
- **Compare with** :func:`assert_close`: ``atol``/``rtol`` are what the maths needs in float64;
  the tolerance policy (:func:`tolerance`) widens them for a float32 (or lower) answer, by the
  dtype's eps times ``work`` (how many rounding steps the computation takes, e.g. n! terms)
  and ``scale`` (the size of the numbers added up). A float64 answer that misses by float32
  rounding is told "this looks like float32 rounding: compute in float64".
- **Slips** are ``{description: value}``; the message says "This is what you get when
  <description>.", so a description must read as a clause after "when" ("the sign is
  flipped", "log|a| is added instead of subtracted"), never a bare noun phrase.
- Anything else the student's code raises is reported as "your code raised X: message" (a
  ``CheckFailed``, recorded as ``"error"``), never a raw traceback; ``NotImplementedError`` means
  not attempted. Messages summarise big tensors (:func:`describe`) and print numbers without
  float noise (:func:`number`).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import math
import os
import random
import re
from typing import Callable

import numpy as np
import torch

__all__ = ["exercise", "assert_close", "assert_shape", "CheckFailed", "explain_slips", "unpack_pair", "OUTCOMES",
           "call_student", "first_named", "tolerance", "describe", "number", "named_error", "ERROR_SLIPS", "ROUNDING"]


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


    #: how surely the message names a slip: 2 one slip, 1 several fit, 0 none (see :func:`first_named`)
    named = 2


class _RawError(CheckFailed):
    """An error of the student's code that no common slip explains ("your code raised X: ...")."""


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
        >>> double(lambda x: [][0])              # any other error: reported, not a traceback wall
        Traceback (most recent call last):
        ...
        course_utils.checks.CheckFailed: Exercise 1 (double a number) is not right yet: your code raised IndexError: list index out of range
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
                _record(run, "error" if isinstance(err, _RawError) else "wrong", message)
                raise CheckFailed(message) from None
            except Exception as err:           # a raw error: named when a common slip explains it
                named = named_error(err)
                message = f"{label} is not right yet: {named}"
                _record(run, "error" if isinstance(named, _RawError) else "wrong", message)
                raise CheckFailed(message) from None
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


# ----------------------------------------------------------------------------------------------
# Raw errors of common slips, named

#: (exception type, pattern in its message, the slip's sentence): the raw errors that common
#: slips raise, in the order they are tried. ``{msg}`` in a sentence is the original message.
ERROR_SLIPS: list[tuple[type, str, str]] = [
    (ValueError, r"math domain error",
     "math.log (or math.sqrt) was given a negative number or zero (Python says: math domain error). "
     "The log of a negative number has no value: where a factor can be negative, take the log of "
     "its absolute value, math.log(abs(a))"),
    (OverflowError, r"math range error|too large|overflow",
     "a number grew too large for a float (Python says: {msg}): rearrange the formula so that nothing "
     "that large is computed"),
    (RuntimeError, r"Trying to backward through the graph a second time",
     "the graph was used for a second backward after the first one freed it (torch says: Trying to "
     "backward through the graph a second time). Pass retain_graph=True to every backward (or "
     "torch.autograd.grad) but the last, and create_graph=True where the result must be trained"),
    (RuntimeError, r"does not require grad and does not have a grad_fn|One of the differentiated Tensors",
     "a gradient was asked of a value that does not depend on a tensor with requires_grad=True (torch "
     "says: {msg}): keep the computation inside autograd (no .detach(), .item() or torch.no_grad())"),
    (RuntimeError, r"leaf Variable that requires grad is being used in an in-place operation|"
                   r"modified by an inplace operation",
     "a tensor that autograd needs was changed in place (torch says: {msg}): make a new tensor "
     "(y = x - b) instead of x -= b"),
    (RuntimeError, r"The size of tensor a \(\d+\) must match the size of tensor b \(\d+\)",
     "two tensors whose shapes do not fit together were combined (torch says: {msg}). Check each "
     "term's shape: a term that should be summed over a dimension (.sum(dim=...)) or given one more "
     "dimension ([:, None]) is the usual cause"),
    # the dtype entry first: torch's dtype message also says "mat1 and mat2"
    (RuntimeError, r"expected (m1 and m2|mat1 and mat2|both vectors) to have the same dtype|expected scalar type|"
                   r"found dtype|must have the same dtype|same dtype",
     "float32 and float64 tensors were mixed in one operation (torch says: {msg}): make new tensors in "
     "the input's dtype, e.g. torch.zeros(n, dtype=x.dtype)"),
    (RuntimeError, r"shapes cannot be multiplied|size mismatch|mat1 and mat2|Expected size for first two dimensions",
     "a matrix product got shapes that do not fit (torch says: {msg}): check the order of the factors "
     "and whether one needs transposing (x holds one point per row)"),
    ((RuntimeError, TypeError), r"with a bool tensor is not supported|bool tensor",
     "a bool tensor was used in arithmetic (torch says: {msg}): convert it with .float() or "
     ".to(x.dtype)"),
    ((RuntimeError, TypeError, ValueError), r"only one element tensors can be converted|"
                                            r"elements cannot be converted to Scalar|must be real number, not",
     "a tensor of several numbers was given to a function for single numbers (math.log, math.exp, "
     "float(), .item()); use torch.log, torch.exp and friends on tensors"),
    ((IndexError, RuntimeError), r"Dimension out of range|too many indices|out of bounds|index \d+ is out",
     "your code indexes a dimension or an entry the tensor does not have (torch says: {msg}): check the "
     "shapes (a batch x has shape (n, D), one point per row)"),
    ((RuntimeError, ValueError), r"stack expects each tensor to be equal size|Sizes of tensors must match|"
                                 r"inconsistent tensor size",
     "tensors of different shapes were stacked or concatenated (torch says: {msg}): check each "
     "piece's shape"),
    (ZeroDivisionError, r"",
     "a division by zero happened (Python says: {msg}): look for a denominator that can be 0"),
    (TypeError, r"unsupported operand|not supported between|can't multiply|bad operand",
     "your code combined values that do not go together (Python says: {msg}): check what each "
     "variable holds (a tensor, a number, a pair?)"),
]


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def named_error(err: BaseException, errors: dict[str, str] | None = None) -> CheckFailed:
    """The ``CheckFailed`` to raise for a raw error of the student's code: the slip when one is known.

    Args:
        err: the exception the student's code raised.
        errors: the check's own ``{pattern in the message: the slip's sentence}``, tried first
            (e.g. ``{"math domain error": "a is negative here, so take the log of |a|"}``).

    Example:
        >>> import math
        >>> try:
        ...     math.log(-2.0)
        ... except ValueError as err:
        ...     print(named_error(err, {"math domain error": "a is negative here: take log|a|"}))
        a is negative here: take log|a| (Python says: math domain error).
        >>> print(named_error(KeyError("w")))
        your code raised KeyError: 'w'
    """
    if isinstance(err, CheckFailed):
        return err
    msg = _short(err)
    for pattern, sentence in (errors or {}).items():
        if re.search(pattern, str(err)):
            said = "" if "says" in sentence else f" ({'torch' if 'torch' in type(err).__module__ or isinstance(err, RuntimeError) else 'Python'} says: {msg})"
            return CheckFailed(f"{sentence}{said}.")
    for kinds, pattern, sentence in ERROR_SLIPS:
        if isinstance(err, kinds) and re.search(pattern, str(err)):
            return CheckFailed(sentence.format(msg=msg) + ".")
    return _RawError(f"your code raised {type(err).__name__}: {msg}")


# ----------------------------------------------------------------------------------------------
# Calling the student's function

def _argument_names(fn: Callable, n: int) -> list[str]:
    try:
        params = [p.name for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    return [params[i] if i < len(params) else f"argument {i + 1}" for i in range(n)]


def _copy(value):
    """A copy of ``value`` the student may edit (tensors and arrays cloned, in lists too)."""
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, (list, tuple)) and any(isinstance(v, (torch.Tensor, np.ndarray)) for v in value):
        return type(value)(_copy(v) for v in value)
    return value


def _changed(before, after) -> bool:
    if isinstance(before, torch.Tensor):
        if before.shape != after.shape or before.dtype != after.dtype:
            return True
        return not torch.equal(before.detach().nan_to_num(1.2345), after.detach().nan_to_num(1.2345))
    if isinstance(before, np.ndarray):
        return before.shape != after.shape or not np.array_equal(before, after, equal_nan=True)
    if isinstance(before, (list, tuple)) and isinstance(after, (list, tuple)):
        return len(before) != len(after) or any(_changed(b, a) for b, a in zip(before, after))
    return False


def call_student(student_fn: Callable, *args, forbidden=(), reason: str = "the idea of this exercise",
                 errors: dict[str, str] | None = None, **kwargs):
    """Call ``student_fn(*args, **kwargs)`` the way a check should, and return what it returns.

    - The student gets copies of the tensor (and array) arguments, so the check's own data
      stays intact; an argument the function changed in place fails the check, naming the slip
      (the notebook's caller would see its tensor change).
    - The functions in ``forbidden`` (and their obvious library equivalents) are switched off
      while it runs (``shortcuts.call_without``; ``reason`` completes "this exercise is about").
    - A raw error of a common slip becomes a ``CheckFailed`` naming it: the check's own
      ``errors={pattern: sentence}`` first, then :data:`ERROR_SLIPS`.

    Example:
        >>> def shift(x, b):
        ...     x -= b
        ...     return x
        >>> call_student(shift, torch.ones(2), 1.0)
        Traceback (most recent call last):
        ...
        course_utils.checks.CheckFailed: your function changes its input x in place (an in-place operation such as x -= ..., x *= ... or x.log_()), so the tensor the notebook passes in would change too. Make a new tensor instead (x = x - b gives a new one) or work on x.clone().
        >>> call_student(lambda x, b: x - b, torch.ones(2), 1.0)
        tensor([0., 0.])
    """
    from .shortcuts import call_without

    copies = [_copy(a) for a in args]
    kw_copies = {k: _copy(v) for k, v in kwargs.items()}
    try:
        if forbidden:
            out = call_without(forbidden, reason, student_fn, *copies, **kw_copies)
        else:
            out = student_fn(*copies, **kw_copies)
    except (CheckFailed, NotImplementedError):
        raise
    except Exception as err:
        raise named_error(err, errors) from None
    names = _argument_names(student_fn, len(args))
    pairs = list(zip(names, args, copies)) + [(k, kwargs[k], kw_copies[k]) for k in kwargs]
    for name, original, copy in pairs:
        if copy is not original and _changed(original, copy):
            raise CheckFailed(
                f"your function changes its input {name} in place (an in-place operation such as {name} -= ..., "
                f"{name} *= ... or {name}.log_()), so the tensor the notebook passes in would change too. Make a "
                f"new tensor instead ({name} = {name} - b gives a new one) or work on {name}.clone().")
    return out


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


# ----------------------------------------------------------------------------------------------
# Numbers and tensors in messages

def number(value, digits: int = 6) -> str:
    """A number as a message shows it: ``digits`` significant digits, no float noise.

    Example:
        >>> number(-0.30000001192092896), number(2.0), number(1e-9), number(float("inf"))
        ('-0.3', '2', '1e-09', 'inf')
    """
    if isinstance(value, torch.Tensor):
        value = value.item()
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, complex):
        return f"{value:.{digits}g}"
    value = float(value)
    if value == 0:
        return "0"
    return f"{value:.{digits}g}"


def describe(value, limit: int = 16) -> str:
    """A tensor (or number) as a message shows it: short, without float noise.

    Up to ``limit`` entries are listed; a bigger tensor is summarised by its shape and first
    entries.

    Example:
        >>> describe(torch.tensor([0.1, -0.30000001192092896, 2.0]))
        '[0.1, -0.3, 2]'
        >>> describe(torch.arange(100.0).reshape(50, 2))
        'a (50, 2) tensor starting [[0, 1], [2, 3], ...]'
    """
    if not isinstance(value, torch.Tensor):
        return number(value) if isinstance(value, (int, float)) else repr(value)
    value = value.detach().cpu()
    if value.dtype == torch.bool:
        value = value.to(torch.int64)
    if value.numel() == 1 and value.dim() == 0:
        return number(value.item())

    def listed(t):
        if t.dim() == 0:
            return number(t.item(), 4 if not t.is_floating_point() else 5)
        return "[" + ", ".join(listed(row) for row in t) + "]"

    if value.numel() <= limit:
        return listed(value)
    if value.dim() == 1:
        return f"a ({value.shape[0]},) tensor starting [{', '.join(number(v, 5) for v in value[:3].tolist())}, ...]"
    shape = ", ".join(map(str, value.shape))
    rows = value.reshape(-1, value.shape[-1])[:2, :3]
    inner = ", ".join("[" + ", ".join(number(v, 5) for v in r.tolist()) + (", ..." if value.shape[-1] > 3 else "") + "]"
                      for r in rows)
    return f"a ({shape}) tensor starting [{inner}, ...]"


def _fmt(value) -> str:
    return describe(value)


def _as_tensor(value, what: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach()
    try:
        return torch.as_tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise CheckFailed(f"{what} should be a number or a tensor, but came back as "
                          f"{type(value).__name__}: {_short(repr(value), 80)}") from None


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


# ----------------------------------------------------------------------------------------------
# The tolerance policy

#: rounding allowance in units of the answer's dtype eps, per rounding step of the computation
ROUNDING = 16.0


def tolerance(dtype: torch.dtype | None, atol: float = 1e-8, rtol: float = 1e-6, *,
              work: float = 1.0, scale: float = 1.0) -> tuple[float, float]:
    """``(atol, rtol)`` for an answer that came back in ``dtype``: the one place tolerances are set.

        rtol' = max(rtol, ROUNDING eps(dtype) work),   atol' = max(atol, ROUNDING eps(dtype) work scale)

    ``atol`` and ``rtol`` are what the exercise's maths needs (met by a float64 answer); a
    float32 (or float16) answer gets the rounding its dtype makes: ``work`` counts the rounding
    steps of the computation (the number of terms added up, say), ``scale`` the size of the
    numbers involved (where a small answer comes from cancelling large terms).

    Example:
        >>> tolerance(torch.float64, 1e-8, 1e-8)
        (1e-08, 1e-08)
        >>> ["%.2g" % t for t in tolerance(torch.float32, 1e-8, 1e-8, work=10)]
        ['1.9e-05', '1.9e-05']
    """
    if dtype is None or not (dtype.is_floating_point or dtype.is_complex):
        dtype = torch.float64
    eps = torch.finfo(dtype).eps
    floor = ROUNDING * eps * max(work, 1.0)
    return max(atol, floor * max(scale, 1.0)), max(rtol, floor)


def _close(got64, exp, atol, rtol) -> bool:
    return bool(torch.allclose(got64, exp, atol=atol, rtol=rtol, equal_nan=False))


def _where(diff: torch.Tensor) -> str:
    if diff.dim() == 0:
        return ""
    index = np.unravel_index(int(diff.argmax()), tuple(diff.shape))
    return f" at [{', '.join(str(int(i)) for i in index)}]"


def assert_close(got, expected, what: str, *, atol: float = 1e-5, rtol: float = 1e-4,
                 slips: dict | None = None, work: float = 1.0, scale: float = 1.0) -> None:
    """Fail with expected and returned values (and a diagnosis) unless they match.

        |got - expected| <= atol' + rtol' |expected|   element-wise, shapes equal

    with ``(atol', rtol') = tolerance(got.dtype, atol, rtol, work=work, scale=scale)``: a float32
    answer passes where its maths is right. A float64 answer that misses only by float32
    rounding is told so.

    Args:
        got: the student's value (a number or a tensor).
        expected: the right value.
        what: what the value is, as the message should name it.
        atol, rtol: the tolerance a float64 answer must meet.
        slips: maps a description of a common mistake (a clause that reads after "This is what
            you get when") to the value that mistake produces, e.g. ``{"the sign is flipped":
            -expected}``; a wrong answer equal to one of them says so.
        work, scale: the computation's rounding steps and size (see :func:`tolerance`).

    Example:
        >>> assert_close(torch.tensor([1.0, 2.0]), [1.0, 2.0], "the mean")
        >>> assert_close(-0.5, 0.5, "log|det J|", slips={"the sign is flipped": -0.5})
        Traceback (most recent call last):
        ...
        course_utils.checks.CheckFailed: log|det J|: expected 0.5, got -0.5 (largest difference 1). This is what you get when the sign is flipped.
        >>> assert_close(torch.tensor(1 / 3, dtype=torch.float32).double(), 1 / 3, "a third", atol=1e-12, rtol=1e-12)
        Traceback (most recent call last):
        ...
        course_utils.checks.CheckFailed: a third: expected 0.333333, got 0.333333 (largest difference 9.93e-09). This looks like float32 rounding: compute in float64 (make new tensors with dtype=torch.float64, or the input's dtype).
    """
    got_t = _as_tensor(got, what)
    exp_t = _as_tensor(expected, "the expected value").to(torch.float64).cpu()
    dtype = got_t.dtype if (got_t.is_floating_point() or got_t.is_complex()) else torch.float64
    if got_t.dtype == torch.bool or not (got_t.is_floating_point() or got_t.is_complex()):
        got_t = got_t.to(torch.float64)
    atol_, rtol_ = tolerance(dtype, atol, rtol, work=work, scale=scale)
    got64 = got_t.to(torch.float64).cpu()
    if tuple(got_t.shape) != tuple(exp_t.shape):
        hint = explain_slips(got64, slips, atol_, rtol_)
        raise CheckFailed(f"{what} should have shape {tuple(exp_t.shape)}, but has shape "
                          f"{tuple(got_t.shape)}.{hint}")
    if not torch.isfinite(got64).all():
        hint = explain_slips(got64, slips, atol_, rtol_)
        raise CheckFailed(f"{what} contains NaN or infinity: {describe(got64)}; expected {describe(exp_t)}.{hint}")
    if not _close(got64, exp_t, atol_, rtol_):
        diff = (got64 - exp_t).abs()
        err = diff.max().item()
        matches = _matching_slips(got64, slips, atol_, rtol_)
        hint = f" This is what you get when {matches[0]}." if matches else ""
        level = 2 if len(matches) == 1 else (1 if matches else 0)
        if not hint and dtype == torch.float64:
            a32, r32 = tolerance(torch.float32, atol, rtol, work=work, scale=scale)
            if _close(got64, exp_t, 4 * a32, 4 * r32):
                hint = (" This looks like float32 rounding: compute in float64 (make new tensors with "
                        "dtype=torch.float64, or the input's dtype).")
        if exp_t.numel() > 16:
            where = _where(diff)
            index = tuple(int(i) for i in np.unravel_index(int(diff.argmax()), tuple(diff.shape)))
            bad = int((~torch.isclose(got64, exp_t, atol=atol_, rtol=rtol_)).sum())
            failure = CheckFailed(f"{what}: {bad} of {exp_t.numel()} entries differ from the expected ones; the "
                                  f"largest difference is {number(err, 3)}{where} (expected {number(exp_t[index])}, "
                                  f"got {number(got64[index])}).{hint}")
        else:
            failure = CheckFailed(f"{what}: expected {describe(exp_t)}, got {describe(got64)} (largest difference "
                                  f"{number(err, 3)}{_where(diff) if diff.numel() > 1 else ''}).{hint}")
        failure.named = level
        raise failure


def explain_slips(got, slips: dict | None, atol: float = 1e-5, rtol: float = 1e-4) -> str:
    """A sentence naming the common mistake whose result matches ``got``, or ``""``.

    Args:
        got: the student's value, a tensor.
        slips: maps a description of a mistake (a clause after "This is what you get when") to
            the value it produces (see :func:`assert_close`).

    Example:
        >>> explain_slips(torch.tensor(2.0), {"you forgot the square root": 4.0, "you halved it": 2.0})
        ' This is what you get when you halved it.'
        >>> explain_slips(torch.tensor(3.0), {"you halved it": 2.0})
        ''
    """
    matches = _matching_slips(got, slips, atol, rtol)
    return f" This is what you get when {matches[0]}." if matches else ""


def _matching_slips(got, slips, atol, rtol) -> list[str]:
    g = got.detach().to(torch.float64).cpu()
    found = []
    for description, value in (slips or {}).items():
        try:
            v = _as_tensor(value, "slip").to(torch.float64).cpu()
        except CheckFailed:
            continue
        if g.shape == v.shape and torch.allclose(g, v, atol=atol, rtol=rtol, equal_nan=True):
            found.append(description)
    return found


def first_named(failures: list[CheckFailed]) -> None:
    """Raise the failure that names its slip most surely (the first such), if there is any.

    A check that tries several cases collects each case's ``CheckFailed`` and calls this at the
    end: a case where only one slip fits (say a random matrix) is more telling than one where
    several fit (a permutation matrix, where |det| and the permanent agree).

    Example:
        >>> plain, named = CheckFailed("a: expected 1, got 2."), CheckFailed("b: ... the sign is flipped.")
        >>> plain.named = 0
        >>> first_named([plain, named])
        Traceback (most recent call last):
        ...
        course_utils.checks.CheckFailed: b: ... the sign is flipped.
    """
    if failures:
        raise max(failures, key=lambda f: getattr(f, "named", 2))
