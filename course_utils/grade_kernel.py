"""The grader's end inside a sandboxed grading kernel (``course_utils.grade`` drives it).

The grader keeps each answer (``keep``, inserted just before the check call of the student's
exercise cell), then, after the notebook has run, calls it on its own arguments (``call``):
the arguments arrive pickled (the grader's data: safe to load here), and only plain data goes
back: numbers, strings, tensors, and lists, tuples and dicts of them, saved with ``torch.save``
and shown as one ``application/x-course-grading`` output, which the grader loads with
``torch.load(weights_only=True)``. Nothing here decides a grade: the grader compares what comes
back with what it computed itself. Code running in this kernel can replace all of this; that only
changes which values come back.
"""

from __future__ import annotations

import base64
import io
import pickle

__all__ = ["MIME", "Grading", "grading"]

MIME = "application/x-course-grading"
UNSUPPORTED = "__course_unsupported__"


def _plain(value, seen: list, depth: int = 0):
    import numpy as np
    import torch
    if depth > 20:
        return {UNSUPPORTED: "nesting deeper than 20"}
    if isinstance(value, torch.Tensor):
        if value.requires_grad:
            seen.append("autograd")
        data = torch.Tensor._make_subclass(torch.Tensor, value.detach(), False) if type(value) is not torch.Tensor \
            else value.detach()
        return data.cpu().clone()
    if isinstance(value, np.ndarray) and value.dtype != object:
        return torch.from_numpy(np.array(value))
    if isinstance(value, np.generic):
        return value.item()
    if value is None or type(value) is bool:
        return value
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, str):
        return str.encode(value, "utf-8", "surrogatepass").decode("utf-8", "surrogatepass")
    if isinstance(value, (list, tuple)):
        items = [_plain(v, seen, depth + 1) for v in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        return {str.encode(str(k), "utf-8", "replace").decode(): _plain(v, seen, depth + 1) for k, v in value.items()}
    seen.append("object")
    return {UNSUPPORTED: type(value).__name__}


def _state(value):
    import torch
    if isinstance(value, torch.Tensor):
        return _plain(value, [])
    if isinstance(value, torch.nn.Module):
        return {k: _plain(v, []) for k, v in value.state_dict().items()}
    return None


class Grading:
    """The answers kept in this kernel and the calls the grader makes on them.

    Example:
        >>> g = Grading()
        >>> g.keep("double", lambda x: 2 * x)
        >>> g.run("double", base64.b64encode(pickle.dumps(([], "", (3,), {}))).decode())["result"]
        6
    """

    def __init__(self):
        self.answers: dict = {}

    def keep(self, name: str, value) -> None:
        self.answers[name] = value

    def run(self, name: str, payload: str) -> dict:
        if name not in self.answers:
            return {"missing": True}
        try:
            forbidden, reason, args, kwargs = pickle.loads(base64.b64decode(payload))
        except Exception as err:
            return {"unsupported": f"the grader's arguments could not be loaded here: {type(err).__name__}: {err}"}
        fn = self.answers[name]
        try:
            if forbidden:
                from course_utils.checks import CheckFailed
                from course_utils.checks.shortcuts import call_without
                try:
                    result = call_without(forbidden, reason, fn, *args, **kwargs)
                except CheckFailed as err:
                    return {"shortcut": str(err)[:4000]}
            else:
                result = fn(*args, **kwargs)
        except BaseException as err:  # noqa: B036 -- KeyboardInterrupt is the grader's timeout
            return {"raised": type(err).__name__, "message": str(err)[:4000]}
        seen: list = []
        return {"result": _plain(result, seen), "args": [_state(a) for a in args], "seen": sorted(set(seen))}

    def call(self, name: str, payload: str) -> None:
        """Run ``name`` on the pickled ``payload`` and show the plain result as one output."""
        import torch
        from IPython.display import display
        out = self.run(name, payload)
        buf = io.BytesIO()
        try:
            torch.save(out, buf)
        except Exception as err:
            buf = io.BytesIO()
            torch.save({"unsupported": f"the result could not be saved: {type(err).__name__}"}, buf)
        display({MIME: base64.b64encode(buf.getvalue()).decode("ascii")}, raw=True)

    def check(self, module: str, check: str, name: str) -> None:
        """The weaker path: run the course's check here, on the kept answer, and show its outcome."""
        import contextlib
        import importlib
        from IPython.display import display
        if name not in self.answers:
            out = {"missing": True}
        else:
            from course_utils.checks import CheckFailed
            run = getattr(importlib.import_module(module), check)
            printed = io.StringIO()
            try:
                with contextlib.redirect_stdout(printed):
                    run(self.answers[name])
                status = {True: "correct", False: "not attempted"}.get(run.last_result, "error")
                out = {"status": status, "message": printed.getvalue().strip()}
            except CheckFailed as err:
                out = {"status": "wrong", "message": str(err)}
            except BaseException as err:  # noqa: B036
                out = {"status": "error", "message": f"your code raised {type(err).__name__}: {err}"}
        import json
        display({MIME + "+json": json.dumps(out)[:100000]}, raw=True)


#: the grading kernel's one instance (its start-up file names it ``_course_grading``)
grading = Grading()
