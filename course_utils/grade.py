"""Grade a class: run every student notebook in a sandbox; the grader decides every verdict itself.

    python -m course_utils.grade SUBMISSIONS [--out OUTDIR] [--timeout SECONDS]
                                 [--cell-timeout SECONDS] [--jobs N] [--course DIR]
                                 [--memory MB] [--seed N] [--library DIR] [--no-sandbox]
    make grade SUBMISSIONS=dir

Every ``*.ipynb`` under ``SUBMISSIONS`` is one student's copy of a course notebook. Who the
student is comes from the path:

- ``SUBMISSIONS/alice/01_jacobian_and_determinant.ipynb`` (a folder per student, any depth
  below it): the student is ``alice``, the first folder under ``SUBMISSIONS``;
- ``SUBMISSIONS/alice_01_jacobian_and_determinant.ipynb`` (flat files): the file name without
  the course notebook's name and the separators around it, here ``alice``;
- ``SUBMISSIONS/01_jacobian_and_determinant.ipynb`` (a flat file named exactly like the course
  notebook): the name of the ``SUBMISSIONS`` folder itself.

Which course notebook a file is: the one in ``solutions/`` whose file name (without
``.ipynb``) the file's name equals or contains (``01_jacobian_and_determinant (1).ipynb``
still counts). Hidden folders, ``.ipynb_checkpoints`` and ``*-checkpoint.ipynb`` are skipped.

**What runs.** Not the student's file as it is: the course's release copy (the student version
of the course notebook, made from ``solutions/`` as ``lectures/`` is), with each exercise's
answer cells (from the exercise's ``### Exercise N: title`` heading to the cell that calls its
check) taken from the student's copy. The student's other cells are not run; the report lists the
ones that differed. One line is added to each check cell, just before the check call:
``_course_grading.keep("NAME", answer)``, which keeps the student's answer.

**Where it runs** (see ``course_utils.sandbox``): each notebook in a fresh kernel inside a
bubblewrap sandbox, whose only writable place is the notebook's working copy; the environment
and ``course_utils`` read-only; ``solutions/``, the other submissions, the output folder and the
home folder absent; its own PID namespace (every process dies with it, nothing outside can be
signalled), its own network namespace (loopback only: offline), an unprivileged user, a minimal
environment, limits on memory (``--memory``, default 4096 MiB), processes, open files, file size
and CPU time. The kernel talks to the grader over Unix sockets in a folder of its own. Each cell's
output is kept up to 1 MB (the rest dropped, with a note). ``--timeout`` limits the whole notebook;
``--cell-timeout`` any one cell: the cell is interrupted, and if it is still running
``GRACE_SECONDS`` later the sandbox is killed and the notebook reported. Without bubblewrap the
grader stops and says how to install it, unless ``--no-sandbox`` is given (then ``summary.md``
says so at the top, and nothing above holds).

**Who decides.** After the notebook has run, the grader runs each exercise's check in its own
process (the same ``course_utils.checks`` function that gave the notebook its feedback), handing
it a proxy for the kept answer: each call sends the arguments into the kernel and gets back only
plain data (numbers, strings, tensors, and lists, tuples and dicts of them, loaded with
``torch.load(weights_only=True)``). No file, variable or output the student's code writes decides
a verdict: the only way to pass is to return the right values. Checks whose inputs come from a
seeded generator get fresh inputs, from a seed chosen per grading run (``--seed``), when the
course's reference passes on them. Checks that need the student's autograd graph, or hand the
student objects that cannot be sent, are run inside the kernel instead (``verdict_by`` says
``kernel``: a weaker guarantee, reported as such). Each answer's source is also read: a call to a
function the exercise switches off, to the library's reference, or to something that hides names
(``__import__``, ``getattr`` with a string, ``exec``, ``eval``, ``importlib``, ``ctypes``,
``torch._C``, file reads, patching a module) marks it ``flagged``, with the line, beside the
check's verdict.

Outputs, in ``OUTDIR`` (default: ``SUBMISSIONS-grades`` beside the submissions folder), written
by the grader alone once every sandbox has ended:

- ``grades.csv``: one row per student, notebook and exercise: ``student, notebook, exercise,
  title, status, message, flag, verdict_by, file`` with status ``correct``, ``wrong``, ``not
  attempted`` or ``error``, the check's message (or the error's reason), the flag (``""`` or
  ``line N: what``), and who decided (``grader`` or ``kernel``); cells starting with ``=``, ``+``,
  ``-`` or ``@`` get a leading ``'`` so a spreadsheet does not run them;
- ``summary.md`` (also printed): per notebook, how many got each exercise right, wrong, not
  attempted or in error, the most common slip, the flagged answers and the cells that differed;
- ``executed/STUDENT/FILE.ipynb``: each notebook as it ran, outputs included, to look into.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import atexit
import base64
import builtins
import collections
import contextlib
import csv
import dataclasses
import importlib
import inspect
import io
import json
import math
import os
import pickle
import random
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from queue import Empty
from typing import NamedTuple

import nbformat
import torch
from jupyter_client import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

from course_utils import sandbox
from course_utils.grade_kernel import MIME, UNSUPPORTED
from course_utils.lectures import EXERCISE_HEADING, student_version

__all__ = ["Exercise", "Submission", "course_exercises", "identify", "find_submissions", "summary", "grade",
           "flags", "main"]

ROOT = Path(__file__).resolve().parents[1]
STATUSES = ("correct", "wrong", "not attempted", "error")
COLUMNS = ("student", "notebook", "exercise", "title", "status", "message", "flag", "verdict_by", "file")
#: an unindented call ``checks.NAME(`` (optionally assigned: ``f = checks.NAME(f)``)
CHECK_CALL = re.compile(r"^(?:[A-Za-z_][\w\s,]*=\s*)?checks\.([A-Za-z_]\w*)\s*\(", re.MULTILINE)
#: seconds a kernel gets, after an interrupt (a cell's or the notebook's time is up), to obey it
GRACE_SECONDS = 10.0
#: bytes of output kept per cell in the executed copy
OUTPUT_LIMIT = 1_000_000
NOT_MATCHING = "the notebook no longer matches the course's exercises"
NO_SANDBOX_NOTE = ("**Graded without a sandbox (--no-sandbox)**: students' code ran with the grader's rights; "
                   "these grades can be forged and the machine may have been changed.")

# Run in every grading kernel at start-up (an IPython start-up file, read-only in the sandbox).
STARTUP = '''\
import torch as _torch; from course_utils.grade_kernel import grading as _course_grading
'''


@dataclasses.dataclass(frozen=True)
class Exercise:
    """One exercise of a course notebook: its number, title, check name and check cell's index.

    Also the check's module (from the notebook's ``import ... as checks``) and the name the
    check cell hands to the check (the student's answer), when the notebook says so.

    Example:
        >>> ex = Exercise(2, "the Leibniz determinant", "leibniz_det", 18)
        >>> f"Exercise {ex.number} ({ex.title}) is checked by checks.{ex.check}(...) in cell {ex.cell}"
        'Exercise 2 (the Leibniz determinant) is checked by checks.leibniz_det(...) in cell 18'
    """
    number: int
    title: str
    check: str
    cell: int
    module: str | None = None
    answer: str | None = None
    start: int | None = None  #: the heading's cell


class Submission(NamedTuple):
    """One student's notebook: who, which course notebook (its stem, or None), and its path.

    The path is relative to the submissions folder.

    Example:
        >>> Submission("alice", "00_start_here", Path("alice/00_start_here.ipynb")).student
        'alice'
    """
    student: str
    notebook: str | None
    path: Path


def _python(source: str) -> str:
    """The cell's source with IPython's magics and shell lines (``%...``, ``!...``) blanked, so ``ast`` reads it."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def _checks_module(nb) -> str | None:
    """The module the notebook imports as ``checks`` (``from course_utils.checks import nb01 as checks``)."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(_python(cell.source))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    if (alias.asname or alias.name) == "checks":
                        return f"{node.module}.{alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname == "checks":
                        return alias.name
    return None


def _check_calls(source: str, name: str | None = None) -> list[ast.Call]:
    """The calls ``checks.NAME(...)`` in the code (real calls, not text in a string)."""
    try:
        tree = ast.parse(_python(source))
    except SyntaxError:
        return []
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "checks"
            and (name is None or node.func.attr == name)]


def course_exercises(nb: nbformat.NotebookNode) -> list[Exercise]:
    """The exercises of a course notebook: each heading and the check cell that follows it.

    A heading ``### Exercise N: title`` in a markdown cell, then the first code cell below it
    (before the next heading) with an unindented call ``checks.NAME(``.

    Args:
        nb: the course notebook (from ``solutions/``).

    Example:
        >>> nb = nbformat.v4.new_notebook(cells=[
        ...     nbformat.v4.new_markdown_cell("### Exercise 2: the Leibniz determinant"),
        ...     nbformat.v4.new_code_cell("def leibniz_det(M):\\n    ...\\n\\nchecks.leibniz_det(leibniz_det)")])
        >>> ex = course_exercises(nb)[0]
        >>> ex.number, ex.title, ex.check, ex.cell, ex.answer
        (2, 'the Leibniz determinant', 'leibniz_det', 1, 'leibniz_det')
    """
    module = _checks_module(nb)
    headings = []  # (cell index, number, title)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            headings += [(i, int(m.group(1)), m.group(2).rstrip("."))
                         for m in EXERCISE_HEADING.finditer(cell.source)]
    exercises = []
    for k, (start, number, title) in enumerate(headings):
        stop = headings[k + 1][0] if k + 1 < len(headings) and headings[k + 1][0] > start else len(nb.cells)
        if k + 1 < len(headings) and headings[k + 1][0] == start:
            continue  # two headings in one cell: the check below belongs to the last one
        for i in range(start + 1, stop):
            cell = nb.cells[i]
            match = CHECK_CALL.search(cell.source) if cell.cell_type == "code" else None
            if match:
                calls = _check_calls(cell.source, match.group(1))
                answer = None
                if calls and calls[0].args and isinstance(calls[0].args[0], ast.Name):
                    answer = calls[0].args[0].id
                exercises.append(Exercise(number, title, match.group(1), i, module, answer, start))
                break
    return exercises


def check_cells(nb: nbformat.NotebookNode) -> dict[str, int]:
    """Index of the first code cell calling each check (unindented ``checks.NAME(``)."""
    cells: dict[str, int] = {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            for match in CHECK_CALL.finditer(cell.source):
                cells.setdefault(match.group(1), i)
    return cells


def _student_answers(student: nbformat.NotebookNode, ex: Exercise) -> tuple[list, int | None]:
    """The student's cells of exercise ``ex``: from its heading to the cell that really calls its check.

    Returns (cells, position of the check cell in that list, or None when no cell calls it).
    """
    start = None
    for i, cell in enumerate(student.cells):
        if cell.cell_type == "markdown" and any(int(m.group(1)) == ex.number
                                                for m in EXERCISE_HEADING.finditer(cell.source)):
            start = i
            break
    if start is None:
        return [], None
    cells = []
    for cell in student.cells[start + 1:]:
        if cell.cell_type == "markdown" and EXERCISE_HEADING.search(cell.source):
            break
        cells.append(cell)
        if cell.cell_type == "code" and _check_calls(cell.source, ex.check):
            return cells, len(cells) - 1
    return [c for c in cells if c.cell_type == "code"][:1], None


def _keep_line(source: str, ex: Exercise) -> str:
    """The check cell with ``_course_grading.keep(NAME, answer)`` just before its check call."""
    name = ex.answer or ex.check
    keep = f"_course_grading.keep({ex.check!r}, {name})  # (grader) keeps your answer"
    try:
        tree = ast.parse(_python(source))
    except SyntaxError:
        return source
    for stmt in tree.body:
        if _check_calls(ast.unparse(stmt), ex.check):
            lines = source.splitlines()
            return "\n".join(lines[:stmt.lineno - 1] + [keep] + lines[stmt.lineno - 1:])
    return source.rstrip("\n") + "\n" + keep


def _assemble(course: nbformat.NotebookNode, student: nbformat.NotebookNode, exercises: list[Exercise]):
    """The notebook to run: the release copy with the student's answer cells; and what differed.

    Returns (notebook, {exercise number: the student's answer source}, [cells that differed]).
    """
    release = student_version(course)
    regions = {}  # release index of a heading -> exercise, and the release cells it replaces
    for ex in exercises:
        # the release copy has the course notebook's cells, less the solution-only ones: find by heading
        for i, cell in enumerate(release.cells):
            if cell.cell_type == "markdown" and any(int(m.group(1)) == ex.number
                                                    for m in EXERCISE_HEADING.finditer(cell.source)):
                stop = next((j for j in range(i + 1, len(release.cells))
                             if release.cells[j].cell_type == "code" and _check_calls(release.cells[j].source,
                                                                                      ex.check)), None)
                if stop is not None:
                    regions[i] = (ex, stop)
                break
    cells, answers, used_ids = [], {}, set()
    i = 0
    while i < len(release.cells):
        cell = release.cells[i]
        if i in regions:
            ex, stop = regions[i]
            mine, check_at = _student_answers(student, ex)
            cells.append(cell)
            for k, c in enumerate(mine):
                c = nbformat.from_dict(dict(c))
                if c.cell_type == "code":
                    c.outputs, c.execution_count = [], None
                if k == check_at:
                    c.source = _keep_line(c.source, ex)
                cells.append(c)
                used_ids.add(c.get("id"))
            answers[ex.number] = "\n".join(c.source for c in mine if c.cell_type == "code")
            if not mine:
                answers[ex.number] = None
            i = stop + 1
            continue
        cells.append(cell)
        i += 1
    release_code = {c.get("id"): c.source for c in release.cells if c.cell_type == "code"}
    differed = []
    for n, c in enumerate(student.cells):
        if c.cell_type != "code" or c.get("id") in used_ids:
            continue
        if release_code.get(c.get("id")) != c.source and c.source.strip():
            differed.append(n + 1)
    imports = []
    for c in release.cells:
        if c.cell_type == "code":
            try:
                imports += [ast.unparse(n) for n in ast.parse(_python(c.source)).body
                            if isinstance(n, (ast.Import, ast.ImportFrom))]
            except SyntaxError:
                pass
    answers["context"] = "\n".join(imports)
    nb = nbformat.v4.new_notebook(cells=[nbformat.from_dict(dict(c)) for c in cells], metadata=release.metadata)
    for c in nb.cells:
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None
    return nb, answers, differed


#: names whose use hides what the code calls, or reaches past the exercise
HIDING = {"__import__": "imports by a computed name", "exec": "runs code from a string",
          "eval": "runs code from a string", "compile": "compiles code from a string",
          "globals": "reaches into the notebook's globals", "vars": "reaches into an object's attributes",
          "open": "reads or writes a file", "breakpoint": "starts a debugger",
          "__builtins__": "reaches into the builtins", "__file__": "looks for the course's files",
          "__dict__": "reaches into an object's attributes", "__globals__": "reaches into a function's globals",
          "__code__": "rewrites a function's code", "__subclasses__": "walks the class tree",
          "OUTCOMES": "touches the checks' records", "_record": "touches the checks' records",
          "COURSE_CHECKS_LOG": "touches the checks' records", "_course_grading": "touches the grader's helper",
          "last_result": "touches the checks' records", "reference": "uses the check's reference",
          "_C": "calls torch's C internals"}
HIDDEN_MODULES = {"importlib": "imports by a computed name", "ctypes": "calls C code directly",
                  "_socket": "opens a connection", "posix": "reaches into the operating system",
                  "_posixsubprocess": "starts programs", "signal": "sends or catches signals",
                  "cffi": "calls C code directly", "subprocess": "starts programs", "socket": "opens a connection",
                  "pickle": "loads pickled objects", "marshal": "loads code", "inspect": "reads source or frames",
                  "gc": "walks every live object", "sys": "reaches into the interpreter",
                  "os": "reaches into the operating system", "pathlib": "reads or writes files",
                  "shutil": "copies or removes files", "io": "reads or writes files", "builtins": "patches builtins",
                  "runpy": "runs other code", "code": "runs code from a string", "types": "builds functions"}
READS = {"read_text", "read_bytes", "write_text", "write_bytes", "load", "loadtxt", "fromfile", "listdir",
         "scandir", "walk", "system", "popen", "kill", "killpg"}


def _dotted(node) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def flags(source: str | None, forbidden=(), references=(), context: str = "") -> list[str]:
    """What in an answer's source the instructor should look at: ``line N: what``, in order.

    Calls to the functions the exercise switches off (``forbidden``: dotted names, as the check's
    ``call_without`` gets them), to the library's reference (``references``: dotted names),
    anything that hides names or reaches past the exercise (``__import__``, ``getattr`` with a
    string, ``exec``/``eval``, ``importlib``, ``ctypes``, ``torch._C``, file reads, the checks'
    records), and assignments to a module's attributes (patching). ``context``: code whose imports
    name the modules (the notebook's import cell), read for its names only.

    Example:
        >>> src = "import torch\\ndef det(M):\\n    return torch.linalg.det(M)\\n"
        >>> flags(src, forbidden=["torch.linalg.det"])
        ['line 3: calls torch.linalg.det, which this exercise switches off']
        >>> flags("def f(x):\\n    return getattr(x, 'd' + 'et')()")
        ['line 2: getattr with a computed or string name hides what is called']
        >>> flags("def f(x):\\n    return 2 * x")
        []
    """
    if not source:
        return []
    try:
        tree = ast.parse(_python(source))
    except SyntaxError:
        return []
    aliases: dict[str, str] = {}
    modules: set[str] = set()
    try:
        known = list(ast.walk(ast.parse(_python(context)))) if context else []
    except SyntaxError:
        known = []
    for node in known + list(ast.walk(tree)):
        if isinstance(node, ast.Import):
            for a in node.names:
                aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
                modules.add(a.asname or a.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    for name in ("torch", "np", "numpy", "math", "F"):
        aliases.setdefault(name, {"np": "numpy", "F": "torch.nn.functional"}.get(name, name))
    forbidden = [f if isinstance(f, str) else f[0] for f in forbidden]
    methods = {f.rsplit(".", 1)[1] for f in forbidden if ".Tensor." in f}
    found: list[tuple[int, str]] = []

    def resolve(dotted: str) -> str:
        head, _, rest = dotted.partition(".")
        full = aliases.get(head, head)
        return f"{full}.{rest}" if rest else full

    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for name in names:
                top = name.split(".")[0]
                if top in HIDDEN_MODULES:
                    found.append((line, f"imports {name}, which {HIDDEN_MODULES[top]}"))
            if isinstance(node, ast.ImportFrom):
                for a in node.names:
                    full = f"{node.module}.{a.name}"
                    if full in forbidden or full in references:
                        found.append((line, f"imports {full}, which this exercise switches off"
                                      if full in forbidden else f"imports {full}, the library's reference"))
        elif isinstance(node, (ast.Attribute, ast.Name)):
            dotted = _dotted(node)
            if dotted is None and isinstance(node, ast.Attribute):
                if node.attr in methods and isinstance(getattr(node, "ctx", None), ast.Load):
                    found.append((line, f"calls .{node.attr}(), which this exercise switches off"))
                if node.attr in HIDING:
                    found.append((line, f"uses {node.attr}, which {HIDING[node.attr]}"))
                continue
            full = resolve(dotted)
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, (ast.Store, ast.Del)):
                root = dotted.split(".")[0]
                if root in aliases or root in modules or root == "checks":
                    found.append((line, f"assigns {dotted}: patches a module"))
            if full in forbidden:
                found.append((line, f"calls {full}, which this exercise switches off"))
            elif full in references:
                found.append((line, f"calls {full}, the library's reference"))
            elif isinstance(node, ast.Attribute) and node.attr in methods:
                found.append((line, f"calls .{node.attr}(), which this exercise switches off"))
            elif isinstance(node, ast.Attribute) and node.attr in HIDING:
                found.append((line, f"uses {dotted}, which {HIDING[node.attr]}"))
            elif isinstance(node, ast.Name) and node.id in HIDING and node.id not in ("reference", "last_result"):
                found.append((line, f"uses {node.id}, which {HIDING[node.id]}"))
            elif isinstance(node, ast.Attribute) and node.attr in READS and not isinstance(node.ctx, ast.Store):
                found.append((line, f"calls {dotted}, which reads files or reaches outside"))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in ("getattr", "setattr", "delattr", "hasattr"):
            if len(node.args) >= 2 and not (node.func.id == "hasattr"):
                found.append((line, f"{node.func.id} with a computed or string name hides what is "
                                    + ("called" if node.func.id == "getattr" else "changed")))
    seen, out = set(), []
    for line, what in sorted(found):
        text = f"line {line}: {what}"
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def identify(relative: Path, stems: list[str], folder_name: str) -> Submission:
    """Who submitted ``relative`` (a path under the submissions folder), and which notebook.

    Args:
        relative: the notebook's path, relative to the submissions folder.
        stems: the course notebooks' names without ``.ipynb``.
        folder_name: the submissions folder's name (the student of flat files named exactly
            like a course notebook).

    Example:
        >>> stems = ["00_start_here", "01_jacobian_and_determinant"]
    >>> identify(Path("alice/01_jacobian_and_determinant.ipynb"), stems, "class")[:2]
    ('alice', '01_jacobian_and_determinant')
    >>> identify(Path("bob42-01_jacobian_and_determinant (1).ipynb"), stems, "class")[:2]
    ('bob42', '01_jacobian_and_determinant')
    >>> identify(Path("00_start_here.ipynb"), stems, "class")[:2]
    ('class', '00_start_here')
    >>> identify(Path("carol/homework.ipynb"), stems, "class")[:2]
    ('carol', None)
    """
    stem = relative.stem
    notebook = stem if stem in stems else max((s for s in stems if s in stem), key=len, default=None)
    if len(relative.parts) > 1:
        student = relative.parts[0]
    elif notebook is None:
        student = stem
    else:
        before, _, after = stem.partition(notebook)
        after = re.sub(r"\s*\(\d+\)$", "", after)  # a browser's "(1)" on a second download
        student = " ".join(p for p in (before.strip(" _-."), after.strip(" _-.")) if p) or folder_name
    return Submission(student, notebook, relative)


def find_submissions(root: Path, stems: list[str]) -> list[Submission]:
    """Every student notebook under ``root`` (paths relative to it), sorted by student and file.

    Hidden folders (``.ipynb_checkpoints``) and ``*-checkpoint.ipynb`` files are skipped.

    Args:
        root: the submissions folder.
        stems: the course notebooks' names without ``.ipynb``.

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> for name in ["bob/00_start_here.ipynb", "bob/.ipynb_checkpoints/00_start_here-checkpoint.ipynb",
        ...              "ann_00_start_here.ipynb"]:
        ...     (root / name).parent.mkdir(parents=True, exist_ok=True)
        ...     nbformat.write(nbformat.v4.new_notebook(), root / name)
        >>> [(s.student, s.notebook, str(s.path)) for s in find_submissions(root, ["00_start_here"])]
        [('ann', '00_start_here', 'ann_00_start_here.ipynb'), ('bob', '00_start_here', 'bob/00_start_here.ipynb')]
    """
    found = [identify(p.relative_to(root), stems, root.resolve().name)
             for p in sorted(root.rglob("*.ipynb")) if p.is_file() and not _skipped(p, root)]
    return sorted(found, key=lambda s: (s.student, str(s.path)))


def _skipped(path: Path, root: Path) -> bool:
    parts = path.relative_to(root).parts
    return any(p.startswith(".") for p in parts) or path.name.endswith("-checkpoint.ipynb")


class _KernelSpecs(KernelSpecManager):
    """Every kernel name means this environment's Python, started by ``argv`` (maybe in a sandbox)."""

    def __init__(self, argv: list[str], **kw):
        super().__init__(**kw)
        self.argv = argv

    def get_kernel_spec(self, kernel_name):
        return KernelSpec(argv=self.argv, display_name="course grading", language="python", metadata={},
                          interrupt_mode="message")


class _KernelManager(AsyncKernelManager):
    """Writes the connection file readable by the sandbox's user (``owner``), and by no one else."""

    owner: int | None = None

    def write_connection_file(self, **kwargs):
        result = super().write_connection_file(**kwargs)
        if self.owner is not None:
            os.chown(self.connection_file, self.owner, self.owner)
        return result


class _StopNotebook(Exception):
    """The notebook's time is up: run no further cells."""


class _Timeout(BaseException):
    """A call into the kernel ran out of time."""


class _KernelGone(BaseException):
    """The kernel is dead (killed, crashed, or never started)."""


class _GradingClient(NotebookClient):
    """nbclient, plus: time limits enforced by killing, output capped, and calls into the kernel."""

    def __init__(self, nb, limit: float, cell_limit: float | None, argv: list[str], ipc: Path | None,
                 after_cells=None, owner: int | None = None, **kw):
        super().__init__(nb, **kw)
        self.owner = owner
        # No client-side widget models. nbclient's Output-widget model answers the kernel's
        # clear_output by sending on the shell socket while another task waits on that socket
        # for the cell's reply; under CPU load the reply's wake-up is now and then lost and the
        # cell waits out its whole time limit (nbclient issue 312: 3 of 20 cells showing notebook
        # 01's `interactive` on a loaded 2-core machine, each the full 15 s). Without the model
        # the widget's outputs land in the cell's own outputs, which is all grading needs.
        self.widget_registry = {}
        self.argv, self.ipc, self.after_cells = argv, ipc, after_cells
        self.limit, self.deadline = limit, None  # the clock starts with the first cell, not the kernel
        self.cell_limit = cell_limit
        self.timeout_func = self._cell_timeout
        self.started: list[int] = []      # code cells sent to the kernel, in order
        self.timed_out: set[int] = set()  # cells interrupted for running too long
        self.current: int | None = None
        self.kill_at: float | None = None  # when an interrupted cell that still runs is killed
        self.killed = False
        self.output_bytes: dict[int, int] = collections.defaultdict(int)

    def create_kernel_manager(self):
        kw = {}
        if self.ipc is not None:
            kw = dict(transport="ipc", ip=str(self.ipc / "kernel"), connection_file=str(self.ipc.parent / "kernel.json"))
        self.km = _KernelManager(kernel_name="python3", kernel_spec_manager=_KernelSpecs(self.argv),
                                 config=self.config, **kw)
        self.km.owner = self.owner
        return self.km

    def _cell_timeout(self, cell) -> int:
        left = self.deadline - time.monotonic()
        if self.cell_limit is not None:
            left = min(left, self.cell_limit)
        return max(1, math.ceil(left))

    async def _async_handle_timeout(self, timeout, cell=None):
        if self.current is not None:
            self.timed_out.add(self.current)
        if self.kill_at is None:
            self.kill_at = time.monotonic() + GRACE_SECONDS
        return await super()._async_handle_timeout(timeout, cell)

    async def kill(self):
        self.killed = True
        if self.km is not None:
            with contextlib.suppress(Exception):
                await self.km.signal_kernel(signal.SIGKILL)

    def output(self, outs, msg, display_id, cell_index):
        size = len(json.dumps(msg.get("content", {}), default=str))
        before = self.output_bytes[cell_index]
        self.output_bytes[cell_index] = before + size
        if before + size > OUTPUT_LIMIT:
            if before <= OUTPUT_LIMIT:
                outs.append(nbformat.v4.new_output(
                    "stream", name="stderr",
                    text=f"[grading: this cell's output passed {OUTPUT_LIMIT // 1000} kB; the rest was dropped]\n"))
            return None
        return super().output(outs, msg, display_id, cell_index)

    async def async_execute(self, reset_kc: bool = False, **kwargs):
        self.reset_execution_trackers()
        async with self.async_setup_kernel(**kwargs):
            msg_id = self.kc.kernel_info()
            info_msg = await self.async_wait_for_reply(msg_id)
            if info_msg is not None and "language_info" in info_msg["content"]:
                self.nb.metadata["language_info"] = info_msg["content"]["language_info"]
            try:
                for index, cell in enumerate(self.nb.cells):
                    await self.async_execute_cell(cell, index, execution_count=self.code_cells_executed + 1)
            finally:
                self.set_widgets_metadata()
                if self.after_cells is not None:
                    await self.after_cells(self)
        return self.nb

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        if cell.cell_type != "code" or not cell.source.strip():
            return cell
        if self.deadline is None:
            self.deadline = time.monotonic() + self.limit
        elif time.monotonic() >= self.deadline:
            raise _StopNotebook
        self.current = cell_index
        self.started.append(cell_index)
        try:
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        finally:
            self.kill_at = None

    async def alive(self) -> bool:
        return self.km is not None and not self.killed and await self.km.is_alive()

    async def remote(self, code: str, timeout: float) -> dict:
        """Run ``code`` in the kernel; return the data of its ``MIME`` output (or raise)."""
        if not await self.alive():
            raise _KernelGone
        kc = self.kc
        msg_id = kc.execute(code, silent=False, store_history=False, allow_stdin=False)
        deadline = time.monotonic() + timeout
        interrupted, found = False, None
        while True:
            left = deadline - time.monotonic()
            try:
                msg = await kc.iopub_channel.get_msg(timeout=max(0.05, min(left, 1.0)))
            except Empty:
                if not await self.alive():
                    raise _KernelGone from None
                if time.monotonic() >= deadline:
                    if interrupted:
                        await self.kill()
                        raise _Timeout from None
                    interrupted = True
                    with contextlib.suppress(Exception):
                        await self.km.interrupt_kernel()
                    deadline = time.monotonic() + GRACE_SECONDS
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            data = msg["content"].get("data", {}) if msg["msg_type"] in ("display_data", "execute_result") else {}
            if MIME in data:
                found = ("torch", data[MIME])
            elif MIME + "+json" in data:
                found = ("json", data[MIME + "+json"])
            if msg["msg_type"] == "status" and msg["content"].get("execution_state") == "idle":
                break
        with contextlib.suppress(Exception):  # the shell reply
            while True:
                reply = await kc.shell_channel.get_msg(timeout=0.5)
                if reply["parent_header"].get("msg_id") == msg_id:
                    break
        if interrupted and found is None:
            raise _Timeout
        if found is None:
            raise _KernelGone("no answer came back")
        kind, text = found
        if kind == "json":
            return json.loads(text)
        raw = base64.b64decode(text)
        return torch.load(io.BytesIO(raw), weights_only=True)


def _first_line(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _cell_error(cell) -> str | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return _first_line(f"{output.get('ename')}: {output.get('evalue')}")
    return None


class _NeedsKernel(BaseException):
    """This check cannot be decided through the proxy: run it in the kernel (the weaker path)."""


class _Missing(BaseException):
    """The kernel kept no answer for this exercise (its cell did not get that far)."""


_CHECK_LOCK = threading.Lock()  # checks patch modules (call_without, seeds): one at a time
_SEEDED: dict[tuple, bool] = {}  # (module, check, seed) -> the reference passes on the run's inputs
AUTOGRAD_WORDS = ("requires_grad", "grad_fn", "create_graph", "backward(")


def _dumps(value) -> bytes:
    try:
        return pickle.dumps(value)
    except Exception:
        pass
    try:
        import cloudpickle
        return cloudpickle.dumps(value)
    except Exception as err:
        raise _NeedsKernel(f"the check hands the answer an object the grader cannot send ({type(err).__name__})") \
            from None


def _plain_only(value) -> bool:
    if type(value) is torch.Tensor or value is None or type(value) in (bool, int, float, str):
        return True
    if type(value) in (list, tuple):
        return all(_plain_only(v) for v in value)
    if type(value) is dict:
        return UNSUPPORTED not in value and all(type(k) is str and _plain_only(v) for k, v in value.items())
    return False


def _restore(arg, state) -> None:
    """Copy what the student's function did to an argument in the kernel onto the grader's argument."""
    with torch.no_grad():
        if isinstance(arg, torch.Tensor) and type(state) is torch.Tensor and state.shape == arg.shape:
            arg.data.copy_(state.to(arg.dtype))
        elif isinstance(arg, torch.nn.Module) and type(state) is dict and _plain_only(state):
            with contextlib.suppress(Exception):
                arg.load_state_dict(state, strict=False)


class _Remote:
    """The student's answer as the grader's checks see it: each call runs in the sandboxed kernel."""

    def __init__(self, call, name: str, autograd_ok: bool):
        self._call, self._name, self._autograd_ok = call, name, autograd_ok
        self.__name__ = self.__qualname__ = name
        self.__module__ = "__main__"
        self.needs_kernel = None

    def __call__(self, *args, **kwargs):
        return self._run([], "", args, kwargs)

    def call_without(self, forbidden, reason, *args, **kwargs):
        return self._run(list(forbidden), reason, args, kwargs)

    def _run(self, forbidden, reason, args, kwargs):
        if any(isinstance(a, torch.Tensor) and a.grad_fn is not None for a in [*args, *kwargs.values()]):
            # tensors computed from others by autograd: their graph cannot cross into the kernel
            self.needs_kernel = "the check hands the answer tensors linked by autograd"
        payload = base64.b64encode(_dumps((forbidden, reason, args, kwargs))).decode("ascii")
        out = self._call(f"_course_grading.call({self._name!r}, {payload!r})")
        if type(out) is not dict:
            raise _KernelGone("the kernel's answer was not understood")
        if out.get("missing"):
            raise _Missing
        if "unsupported" in out:
            raise _NeedsKernel(str(out["unsupported"]))
        if "shortcut" in out:
            from course_utils.checks import CheckFailed
            raise CheckFailed(str(out["shortcut"]))
        if "raised" in out:
            name, message = str(out["raised"]), str(out.get("message", ""))
            if name == "KeyboardInterrupt":
                raise _Timeout
            kind = getattr(builtins, name, None)
            if not (isinstance(kind, type) and issubclass(kind, Exception)) or kind is AssertionError:
                kind = type(name, (Exception,), {})
            try:
                err = kind(message)
            except Exception:
                err = type(name, (Exception,), {})(message)
            raise err
        result, seen = out.get("result"), out.get("seen") or []
        for arg, state in zip(args, out.get("args") or []):
            _restore(arg, state)
        if not _plain_only(result):
            seen = list(seen) + ["object"]
        if seen:
            self.needs_kernel = f"the answer returned {'a tensor that needs its autograd graph' if 'autograd' in seen else 'an object'}"
            if "object" in seen:
                if self._autograd_ok:
                    raise _NeedsKernel(self.needs_kernel)
                from course_utils.checks import CheckFailed
                raise CheckFailed(f"{self._name}(...) returned something other than numbers, strings or tensors "
                                  "(or lists, tuples and dicts of them), which the grader cannot compare")
        return result


@contextlib.contextmanager
def _patched_call_without(module, forbidden: list):
    """The check's ``call_without`` records what it switches off and runs a proxy in the kernel."""
    from course_utils.checks import shortcuts
    original, original_shared = getattr(module, "call_without", None), shortcuts.call_without

    def call_without(names, reason, student_fn, *args, **kwargs):
        names = list(names)
        forbidden.extend(n if isinstance(n, str) else n[0] for n in names)
        if isinstance(student_fn, _Remote):
            return student_fn.call_without(names, reason, *args, **kwargs)
        return student_fn(*args, **kwargs)  # the reference, when the run's seed is tried

    if original is not None:
        module.call_without = call_without
    shortcuts.call_without = call_without
    try:
        yield
    finally:
        if original is not None:
            module.call_without = original
        shortcuts.call_without = original_shared


@contextlib.contextmanager
def _seeded(seed: int | None):
    """Seeds set by the check (``torch.manual_seed``, ``torch.Generator().manual_seed``) mixed with ``seed``."""
    if seed is None:
        yield
        return
    generator, manual_seed = torch.Generator, torch.manual_seed

    class Generator(generator):
        def manual_seed(self, s):
            return super().manual_seed((int(s) ^ seed) & (2 ** 63 - 1))

    torch.Generator = Generator
    torch.manual_seed = lambda s: manual_seed((int(s) ^ seed) & (2 ** 63 - 1))
    try:
        yield
    finally:
        torch.Generator, torch.manual_seed = generator, manual_seed


def _seed_for(module, check, seed: int | None) -> int | None:
    """``seed`` when the course's reference passes this check on the inputs it gives, else None."""
    reference = getattr(check, "reference", None)
    if seed is None or reference is None:
        return None
    key = (module.__name__, check.__name__, seed)
    if key not in _SEEDED:
        ok = False
        with contextlib.suppress(BaseException), _patched_call_without(module, []), _seeded(seed), \
                contextlib.redirect_stdout(io.StringIO()):
            check(reference)
            ok = check.last_result is True
        _SEEDED[key] = ok
    return seed if _SEEDED[key] else None


def _judge(ex: Exercise, call, seed: int | None) -> dict:
    """Run exercise ``ex``'s check in this process on a proxy of the kept answer (in a worker thread).

    Returns ``status`` (or None: nothing was kept), ``message``, ``verdict_by``, ``forbidden``,
    ``references`` and ``seeded``.
    """
    from course_utils.checks import OUTCOMES, CheckFailed
    label = f"Exercise {ex.number} ({ex.title})"
    try:
        module = importlib.import_module(ex.module) if ex.module else None
    except Exception as err:
        return dict(status="error", message=f"the check's module {ex.module} cannot be imported: {err}")
    check = getattr(module, ex.check, None) if module is not None else None
    if check is None or not hasattr(check, "last_result"):
        return dict(status="error", message=f"no check {ex.module}.{ex.check} to grade with")
    try:
        autograd_ok = any(w in inspect.getsource(check) for w in AUTOGRAD_WORDS)
    except (OSError, TypeError):
        autograd_ok = False
    reference = getattr(check, "reference", None)
    references = [f"{reference.__module__}.{reference.__qualname__}"] if callable(reference) and \
        getattr(reference, "__module__", None) else []
    proxy = _Remote(call, ex.check, autograd_ok)
    forbidden: list = []
    out = dict(forbidden=forbidden, references=references, verdict_by="grader", seeded=False)
    with _CHECK_LOCK:
        used = _seed_for(module, check, seed)
        out["seeded"] = used is not None
        printed, before = io.StringIO(), len(OUTCOMES)

        def recorded(default_status, default_message):
            # the check's own record (the decorator's classification): one definition per check
            mine = [o for o in OUTCOMES[before:] if o.get("check") == check.__name__]
            if mine:
                return dict(out, status=mine[-1]["status"], message=mine[-1]["message"])
            return dict(out, status=default_status, message=default_message)

        try:
            with _patched_call_without(module, forbidden), _seeded(used), contextlib.redirect_stdout(printed):
                check(proxy)
            status = {True: "correct", False: "not attempted"}.get(check.last_result, "error")
            return recorded(status, status)
        except _Missing:
            return dict(out, status=None)
        except _KernelGone:
            return dict(out, status=None, gone=True)
        except _Timeout:
            return dict(out, status="error", message="timeout: the answer ran too long when the grader called it, "
                                                     "and was interrupted")
        except _NeedsKernel as why:
            reason = str(why)
        except CheckFailed as err:
            if autograd_ok:  # a check of the answer's autograd graph, which cannot come back
                reason = proxy.needs_kernel or "the check looks at the answer's autograd graph"
            else:
                return recorded("wrong", str(err))
        except Exception as err:
            if autograd_ok:
                reason = proxy.needs_kernel or "the check looks at the answer's autograd graph"
            else:
                return recorded("error", f"{label}: your code raised {type(err).__name__}: {err}")
    # the weaker path: the check runs in the student's kernel
    try:
        got = call(f"_course_grading.check({ex.module!r}, {ex.check!r}, {ex.check!r})")
    except _Timeout:
        return dict(out, status="error", verdict_by="kernel",
                    message="timeout: the check ran too long in the kernel and was interrupted")
    except _KernelGone:
        return dict(out, status=None, gone=True)
    if type(got) is not dict or got.get("missing"):
        return dict(out, status=None)
    status = got.get("status") if got.get("status") in STATUSES else "error"
    return dict(out, status=status, verdict_by="kernel",
                message=f"{_first_line(got.get('message', ''), 1000)} [decided in the student's kernel, not "
                        f"verified by the grader: {reason}]")


@dataclasses.dataclass
class _Options:
    limit: float
    cell_limit: float | None
    sandboxed: bool
    memory_mb: int | None
    seed: int | None
    library: list
    processes: int | None = 256


async def _run(nb, name: str, opts: _Options, slot: int, exercises: list[Exercise], verdicts: dict):
    """Execute one assembled notebook (sandboxed), then judge its answers; (client or None, stop reason)."""
    tmp = Path(tempfile.mkdtemp(prefix="course-grade-"))
    try:
        work, ipc, ipython = tmp / "work", tmp / "ipc", tmp / "ipython"
        for sub in ("startup", "security", "log", "pid"):
            (ipython / "profile_default" / sub).mkdir(parents=True)
        (ipython / "profile_default" / "startup" / "00-grading.py").write_text(STARTUP)
        work.mkdir()
        ipc.mkdir()
        nbformat.write(nb, work / name)
        pythonpath = os.pathsep.join(str(p) for p in opts.library)
        env = {"IPYTHONDIR": str(work / ".ipython"), "PIP_NO_INDEX": "1", "HF_HUB_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1",
               "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
        if pythonpath:
            env["PYTHONPATH"] = pythonpath
        kernel = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}",
                  "--HistoryManager.enabled=False", f"--IPKernelApp.exec_lines={[STARTUP.strip()]!r}"]
        if opts.sandboxed:
            limits = sandbox.Limits(memory_mb=opts.memory_mb, processes=opts.processes,
                                    cpu_seconds=int(2 * opts.limit + 120))
            box = sandbox.Sandbox(tmp, [ROOT / "course_utils", *opts.library], limits, slot, env)
            box.prepare()
            argv, run_env = box.wrap(kernel), {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
            owner = box.uid
        else:
            argv, run_env, owner = kernel, dict(os.environ, **env), None
            run_env.pop("COURSE_CHECKS_LOG", None)

        async def judge(client):
            if not await client.alive():
                return
            client.judging = True
            loop = asyncio.get_running_loop()
            wait = opts.cell_limit or max(3 * GRACE_SECONDS, (client.deadline or 0) - time.monotonic())

            def call(code):
                return asyncio.run_coroutine_threadsafe(client.remote(code, wait), loop).result()

            for ex in exercises:
                verdicts[ex.number] = await asyncio.to_thread(_judge, ex, call, opts.seed)

        client = _GradingClient(nb, opts.limit, opts.cell_limit, argv, ipc, after_cells=judge, owner=owner, kernel_name="python3",
                                allow_errors=True, interrupt_on_timeout=True, shutdown_kernel="immediate",
                                startup_timeout=120, resources={"metadata": {"path": str(work)}})
        client.judging = False

        async def watchdog():
            while True:
                await asyncio.sleep(0.25)
                now = time.monotonic()
                if client.kill_at is not None and now >= client.kill_at:
                    break
                if not client.judging and client.deadline is not None and now >= client.deadline + GRACE_SECONDS:
                    break
            await client.kill()

        guard = asyncio.ensure_future(watchdog())
        stop = None
        try:
            # the kernel's own stdout and stderr (not the notebook's outputs) go to a file
            with open(tmp / "kernel.log", "wb") as kernel_log:
                await client.async_execute(env=run_env, stdout=kernel_log, stderr=kernel_log, cwd=str(work))
        except _StopNotebook:
            stop = f"timeout: the notebook's time limit of {opts.limit:g} s ran out"
        except DeadKernelError:
            if client.killed:
                stop = "timeout: the kernel ignored the interrupt and was stopped"
            else:
                stop = "the kernel died (out of memory, a crash, or exit())" + _last_words(tmp / "kernel.log")
        except Exception as err:
            stop = f"the notebook could not be run ({type(err).__name__}: {_first_line(err, 150)})" \
                + _last_words(tmp / "kernel.log")
        finally:
            guard.cancel()
            atexit.unregister(client._cleanup_kernel)
        if stop is None and client.timed_out and client.started and client.started[-1] in client.timed_out \
                and client.deadline is not None and time.monotonic() >= client.deadline:
            stop = f"timeout: the notebook's time limit of {opts.limit:g} s ran out"
        return client, stop
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _last_words(log: Path) -> str:
    """The kernel's last line on stderr (a fatal error's name), if it said anything."""
    try:
        lines = [l.strip() for l in log.read_text(errors="replace").splitlines()]
    except OSError:
        return ""
    lines = [l for l in lines if l and not l.startswith("[IPKernelApp]")]
    return f": {_first_line(lines[-1], 150)}" if lines else ""


def _missing_reason(cell_index: int | None, client, stop: str | None, cell_limit: float | None) -> str:
    if cell_index is None:
        return NOT_MATCHING
    if client is None:
        return stop or "the notebook was not run"
    cell = client.nb.cells[cell_index]
    if cell_index not in client.started:
        return f"check cell not reached: {stop}" if stop else "check cell not reached"
    last = client.started[-1] == cell_index
    if cell_index in client.timed_out:
        if stop and last:
            return f"{stop} in this exercise's check cell"
        limit = f" than {cell_limit:g} s" if cell_limit is not None else ""
        return f"timeout: the check cell ran longer{limit} and was interrupted"
    error = _cell_error(cell)
    if stop and last:
        return f"{stop} in this exercise's check cell"
    if error:
        return f"the check cell raised {error}"
    if stop:
        return stop
    return "the check cell ran, but did not get as far as the check"


async def _grade_one(sub: Submission, root: Path, course: dict, exercises: dict[str, list[Exercise]],
                     opts: _Options, slot: int):
    """One notebook: (its rows, its executed copy or None, the student's cells that differed)."""
    base = {"student": sub.student, "file": str(sub.path), "flag": "", "verdict_by": ""}
    if sub.notebook is None:
        return [dict(base, notebook=sub.path.stem, exercise="", title="", status="error",
                     message="no course notebook in solutions/ matches this file name")], None, []
    mine = exercises[sub.notebook]
    try:
        student = nbformat.read(root / sub.path, as_version=4)
    except Exception as err:  # not JSON, not a notebook
        why = f"the file is not a readable notebook ({_first_line(err, 120)})"
        return [dict(base, notebook=sub.notebook, exercise=ex.number, title=ex.title, status="error", message=why)
                for ex in mine], None, []
    nb, answers, differed = _assemble(course[sub.notebook], student, mine)
    verdicts: dict[int, dict] = {}
    client, stop = await _run(nb, sub.path.name, opts, slot, mine, verdicts)
    rows = []
    for ex in mine:
        row = dict(base, notebook=sub.notebook, exercise=ex.number, title=ex.title)
        verdict = verdicts.get(ex.number) or {}
        keep = f"_course_grading.keep({ex.check!r}"
        cell_index = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code" and keep in c.source), None)
        if answers.get(ex.number) is None:
            cell_index = None
        if verdict.get("status") in STATUSES:
            row.update(status=verdict["status"], message=_first_line(verdict.get("message", ""), 1000),
                       verdict_by=verdict.get("verdict_by", "grader"))
        else:
            row.update(status="error", message=_missing_reason(cell_index, client, stop, opts.cell_limit))
        found = flags(answers.get(ex.number), verdict.get("forbidden", ()), verdict.get("references", ()),
                      answers.get("context", ""))
        row["flag"] = "; ".join(found)
        if row["flag"] and row["status"] == "correct":
            row["status"] = "correct"  # the verdict stays; the flag is beside it
        rows.append(row)
    return rows, (client.nb if client is not None else None), differed


def _safe(name: str) -> str:
    return re.sub(r"[^\w.@+-]+", "_", name).strip("._") or "student"


def _slip(message: str) -> str:
    match = re.search(r"This is what you get when (.+?)\.?$", message)
    if match:
        return match.group(1)
    return _first_line(message.split(" is not right yet: ", 1)[-1], 120)


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def summary(rows: list[dict], order: list[str] | None = None) -> str:
    """A markdown table per notebook: per exercise, the count of each status and the commonest slip.

    Args:
        rows: the rows of ``grades.csv`` (dicts with the keys ``COLUMNS``).
        order: the notebooks in the order to show them (the others follow, sorted).

    Example:
        >>> slip = ("Exercise 1 (double) is not right yet: double(2): expected 4, got 2. "
        ...         "This is what you get when x is returned.")
        >>> rows = [dict(student=s, notebook="00_x", exercise=1, title="double", status=st, message=m,
        ...              file=f"{s}.ipynb")
        ...         for s, st, m in [("ann", "correct", "correct"), ("bob", "wrong", slip)]]
        >>> print(summary(rows))
        # Grades: 2 students, 2 notebooks
        <BLANKLINE>
        ## 00_x (2 submitted)
        <BLANKLINE>
        | exercise | correct | wrong | not attempted | error | most common slip |
        |---|--:|--:|--:|--:|---|
        | 1: double | 1 | 1 | 0 | 0 | x is returned (1 of 1) |
        <BLANKLINE>
    """
    by_notebook: dict[str, list[dict]] = collections.defaultdict(list)
    for row in rows:
        by_notebook[row["notebook"]].append(row)
    names = [n for n in (order or []) if n in by_notebook] + sorted(set(by_notebook) - set(order or []))
    students = {r["student"] for r in rows}
    notebooks = {(r["student"], r["file"]) for r in rows}
    lines = [f"# Grades: {len(students)} students, {len(notebooks)} notebooks", ""]
    for name in names:
        nb_rows = by_notebook[name]
        files = {(r["student"], r["file"]) for r in nb_rows}
        lines += [f"## {name} ({len(files)} submitted)", ""]
        graded = [r for r in nb_rows if r["exercise"] != ""]
        if graded:
            lines += ["| exercise | correct | wrong | not attempted | error | most common slip |",
                      "|---|--:|--:|--:|--:|---|"]
            exercises = sorted({(r["exercise"], r["title"]) for r in graded})
            for number, title in exercises:
                mine = [r for r in graded if r["exercise"] == number]
                counts = collections.Counter(r["status"] for r in mine)
                slips = collections.Counter(_slip(r["message"]) for r in mine if r["status"] == "wrong")
                common = ""
                if slips:
                    slip, n = slips.most_common(1)[0]
                    common = f"{slip} ({n} of {counts['wrong']})"
                lines.append(f"| {number}: {_cell(title)} | " + " | ".join(str(counts[s]) for s in STATUSES)
                             + f" | {_cell(common)} |")
            lines.append("")
        flagged = [r for r in nb_rows if r.get("flag")]
        if flagged:
            lines.append("Flagged (the verdict stands; look at the line):")
            for r in flagged:
                lines.append(f"- {r['student']}, Exercise {r['exercise']} ({r['status']}): {_first_line(r['flag'], 300)}")
            lines.append("")
        weaker = [r for r in nb_rows if r.get("verdict_by") == "kernel"]
        if weaker:
            lines.append("Decided in the student's kernel (weaker: not verified by the grader): "
                         + ", ".join(f"{r['student']} exercise {r['exercise']}" for r in weaker))
            lines.append("")
        errors = [r for r in nb_rows if r["status"] == "error"]
        if errors:
            lines.append("Errors:")
            for r in errors:
                what = f"Exercise {r['exercise']}" if r["exercise"] != "" else r["file"]
                lines.append(f"- {r['student']}, {what}: {_first_line(r['message'], 160)}")
            lines.append("")
    return "\n".join(lines)


async def _grade_all(subs, root, course, exercises, opts, jobs, progress):
    gate = asyncio.Semaphore(max(1, jobs))
    slots = list(range(max(1, jobs)))
    done = 0

    async def one(sub):
        nonlocal done
        async with gate:
            slot = slots.pop()
            start = time.monotonic()
            executed, differed = None, []
            try:
                rows, executed, differed = await _grade_one(sub, root, course, exercises, opts, slot)
            except Exception as err:  # a bug or a broken file must not stop the class
                why = f"grading failed: {type(err).__name__}: {_first_line(err, 150)}"
                rows = [dict(student=sub.student, notebook=sub.notebook or sub.path.stem, exercise=ex.number,
                             title=ex.title, status="error", file=str(sub.path), message=why)
                        for ex in exercises.get(sub.notebook, [])] or [
                    dict(student=sub.student, notebook=sub.path.stem, exercise="", title="", status="error",
                         file=str(sub.path), message=why)]
            finally:
                slots.append(slot)
            done += 1
            counts = collections.Counter(r["status"] for r in rows)
            if progress:
                tally = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s])
                print(f"[{done}/{len(subs)}] {sub.path}: {tally}"
                      + f" ({time.monotonic() - start:.1f} s)", file=sys.stderr, flush=True)
            return rows, (sub, executed, differed)

    results = await asyncio.gather(*(one(s) for s in subs))
    return [row for rows, _ in results for row in rows], [extra for _, extra in results]


def default_out(submissions: Path) -> Path:
    """The default output folder: ``SUBMISSIONS-grades``, beside the submissions folder.

    Example:
        >>> default_out(Path("/srv/class/week1")).as_posix()
        '/srv/class/week1-grades'
    """
    folder = Path(submissions).resolve()
    return folder.with_name(folder.name + "-grades")


def _csv_safe(value) -> str:
    """A CSV cell a spreadsheet will not run as a formula: ``=``, ``+``, ``-``, ``@`` get a leading ``'``.

    Example:
        >>> _csv_safe("=HYPERLINK(1)"), _csv_safe("-1"), _csv_safe("fine")
        ("'=HYPERLINK(1)", "'-1", 'fine')
    """
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def grade(submissions: Path, out: Path | None = None, timeout: float = 600, cell_timeout: float | None = None,
          jobs: int = 1, course: Path | None = None, progress: bool = True, sandboxed: bool = True,
          memory_mb: int | None = 4096, seed: int | None = None, library: list | None = None,
          processes: int | None = 256) -> list[dict]:
    """Grade every notebook under ``submissions``; write grades.csv, summary.md, executed/ to ``out``.

    See the module's docstring for what is run, how, and what comes out.

    Args:
        submissions: the folder of student notebooks (a folder per student, or flat files).
        out: where to write the outputs (default ``default_out(submissions)``).
        timeout: seconds per notebook, from its first cell.
        cell_timeout: seconds per cell (a longer cell is interrupted and the run goes on), or None.
        jobs: how many notebooks run at the same time.
        course: the course notebooks (default ``solutions/``).
        progress: print one line per notebook graded (to stderr).
        sandboxed: run each notebook in a bubblewrap sandbox (``False``: ``--no-sandbox``).
        memory_mb: the sandbox's memory (address space) limit, MiB.
        seed: the seed mixed into the checks' seeds (default: a fresh one per run).
        library: extra folders the notebooks import from (read-only in the sandbox).
        processes: the sandbox's limit on processes and threads.

    Returns:
        the rows of grades.csv (dicts with the keys ``COLUMNS``).

    Raises:
        FileNotFoundError: nothing to grade; RuntimeError: no sandbox here (the message says why).

    Example:
        >>> import tempfile
        >>> tmp = Path(tempfile.mkdtemp())
        >>> cells = [nbformat.v4.new_code_cell("from course_utils.checks import nb00 as checks"),
        ...     nbformat.v4.new_markdown_cell("### Exercise 0: a numerically stable softplus"),
        ...     nbformat.v4.new_code_cell("import torch\\ndef softplus(x):\\n    return torch.log(1 + torch.exp(x))"
        ...                               "\\n\\nsoftplus = checks.stable_softplus(softplus)")]
        >>> for path in (tmp / "course" / "00_x.ipynb", tmp / "class" / "bob" / "00_x.ipynb"):
        ...     path.parent.mkdir(parents=True)
        ...     nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
        >>> (row,) = grade(tmp / "class", course=tmp / "course", progress=False,
        ...                sandboxed=sandbox.unavailable() is None)
        >>> row["student"], row["exercise"], row["status"], row["verdict_by"]
        ('bob', 0, 'wrong', 'grader')
        >>> "overflows" in row["message"]
        True
        >>> sorted(p.name for p in (tmp / "class-grades").iterdir())
        ['executed', 'grades.csv', 'summary.md']
    """
    submissions = Path(submissions)
    course_dir = Path(course) if course is not None else ROOT / "solutions"
    stems = sorted(p.stem for p in course_dir.glob("*.ipynb"))
    if not stems:
        raise FileNotFoundError(f"no course notebooks in {course_dir}")
    if not submissions.is_dir():
        raise FileNotFoundError(f"{submissions} is not a folder")
    if sandboxed:
        why = sandbox.unavailable()
        if why is not None:
            raise RuntimeError(f"cannot grade safely: {why}")
    notebooks = {s: nbformat.read(course_dir / f"{s}.ipynb", as_version=4) for s in stems}
    exercises = {s: course_exercises(nb) for s, nb in notebooks.items()}
    out = Path(out) if out is not None else default_out(submissions)
    # notebooks under the output folder (executed/ of an earlier run) are not submissions
    subs = [s for s in find_submissions(submissions, stems)
            if not (submissions / s.path).resolve().is_relative_to(out.resolve())]
    if not subs:
        raise FileNotFoundError(f"no notebooks (*.ipynb) under {submissions}")
    library = [Path(p).resolve() for p in (library or [])]
    for path in library:
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    os.environ.pop("COURSE_CHECKS_LOG", None)  # the grader's own checks record nowhere
    opts = _Options(timeout, cell_timeout, sandboxed, memory_mb,
                    seed if seed is not None else random.SystemRandom().randrange(1, 2 ** 31), library, processes)
    rows, extras = asyncio.run(_grade_all(subs, submissions, notebooks, exercises, opts, jobs, progress))
    # every sandbox has ended: only now is anything written
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "executed", ignore_errors=True)
    differed = []
    for sub, executed, cells in extras:
        if executed is not None:
            inside = sub.path.parts[1:] if len(sub.path.parts) > 1 else (sub.path.name,)
            target = out.joinpath("executed", _safe(sub.student), *inside)
            target.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(executed, target)
        if cells:
            differed.append(f"- {sub.student}, {sub.path}: cells {', '.join(map(str, cells))}")
    with open(out / "grades.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({k: _csv_safe(row.get(k, "")) for k in COLUMNS} for row in rows)
    text = summary(rows, stems)
    head = [NO_SANDBOX_NOTE, ""] if not sandboxed else [
        f"Graded in a bubblewrap sandbox per notebook (memory {memory_mb} MiB, offline, no access to solutions/ "
        f"or other submissions); verdicts decided by the grader; check seed {opts.seed}.", ""]
    tail = ["Cells changed outside the exercises (not run: the release copy's cells ran instead):", *differed, ""] \
        if differed else []
    (out / "summary.md").write_text("\n".join(head) + text + "\n" + "\n".join(tail) + ("\n" if tail else ""),
                                    encoding="utf-8")
    return rows


def main(argv=None) -> int:
    """The command line (``python -m course_utils.grade``): exit status 0 graded, 2 nothing to grade or no sandbox.

    Args:
        argv: the arguments (see ``--help``); ``None`` reads ``sys.argv``.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     main([tmp])      # no notebooks there: an error
        2
    """
    parser = argparse.ArgumentParser(prog="python -m course_utils.grade",
                                     description="Run every student notebook under SUBMISSIONS in a sandbox and "
                                                 "grade every exercise (see the module docstring).")
    parser.add_argument("submissions", type=Path, metavar="SUBMISSIONS",
                        help="folder of student notebooks (a folder per student, or flat files)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where to write grades.csv, summary.md and executed/ (default: SUBMISSIONS-grades)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per notebook (default 600)")
    parser.add_argument("--cell-timeout", type=float, default=None,
                        help="seconds per cell; a longer cell is interrupted (killed if it ignores that) "
                             "and the run goes on (default: none)")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks run at the same time (default 1)")
    parser.add_argument("--course", type=Path, default=None, help="the course notebooks (default: solutions/)")
    parser.add_argument("--memory", type=int, default=4096, help="memory limit per notebook, MiB (default 4096)")
    parser.add_argument("--processes", type=int, default=256,
                        help="processes and threads per notebook (default 256)")
    parser.add_argument("--seed", type=int, default=None, help="seed mixed into the checks' inputs (default: fresh)")
    parser.add_argument("--library", type=Path, action="append", default=[],
                        help="an extra folder the notebooks import from (read-only in the sandbox)")
    parser.add_argument("--no-sandbox", action="store_true",
                        help="run students' code with your rights (only in a throw-away container)")
    args = parser.parse_args(argv)
    try:
        rows = grade(args.submissions, args.out, args.timeout, args.cell_timeout, args.jobs, args.course,
                     sandboxed=not args.no_sandbox, memory_mb=args.memory, seed=args.seed, library=args.library,
                     processes=args.processes)
    except (FileNotFoundError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = args.out or default_out(args.submissions)
    print((out / "summary.md").read_text(encoding="utf-8"), end="")
    print(f"wrote {out / 'grades.csv'} ({len(rows)} rows), {out / 'summary.md'} and {out / 'executed'}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
