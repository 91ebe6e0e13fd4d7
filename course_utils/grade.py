"""Grade a class: run every student notebook and collect every exercise check's outcome.

    python -m course_utils.grade SUBMISSIONS [--out OUTDIR] [--timeout SECONDS]
                                 [--cell-timeout SECONDS] [--jobs N] [--course DIR]
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

Each notebook is copied into a fresh temporary folder and executed there, top to bottom, by
nbclient in a fresh kernel of this environment (its Python, whatever ``python3`` kernel is
installed elsewhere), offline (non-local network connections are refused), with
``COURSE_CHECKS_LOG`` naming a log file in that folder only. A cell error does not stop the
run, so later exercises are still checked. ``--timeout`` limits the whole notebook: when it
runs out, the running cell is interrupted and the rest is not run; ``--cell-timeout``, if
given, interrupts any single cell that runs longer and goes on with the next one. A kernel
that dies, or ignores the interrupt, is stopped and the notebook reported; the other
notebooks are graded all the same.

The expected exercises come from the course notebook: each ``### Exercise N: title`` heading
and the check called (``checks.NAME(...)``, unindented) in the first code cell after it. In
the student's copy, exercise N's outcome is the one recorded while the first cell calling
``checks.NAME(`` ran (so demonstrations of wrong answers elsewhere in the notebook do not
count). An exercise with no recorded outcome is ``error``, with the reason: the check cell
raised (and what), timed out, was not reached (and why), or is missing (the notebook no
longer matches the course's exercises).

Outputs, in ``OUTDIR`` (default: ``SUBMISSIONS-grades`` beside the submissions folder, so
that student data stays with student data):

- ``grades.csv``: one row per student, notebook and exercise: ``student, notebook, exercise,
  title, status, message, file`` with status ``correct``, ``wrong``, ``not attempted`` or
  ``error``, and the check's message (or the error's reason);
- ``summary.md`` (also printed): per notebook, how many got each exercise right, wrong, not
  attempted or in error, and the most common slip among the wrong answers;
- ``executed/STUDENT/FILE.ipynb``: each notebook as it ran, outputs included, to look into.

This runs students' code with your account's rights: it keeps students' runs apart from each
other and from the grades (each run's log lives in its own temporary folder, deleted once read,
and only this process writes the outputs), but it is not a sandbox against deliberate
tampering. Grade untrusted code in a container or a throw-away account.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import csv
import dataclasses
import json
import math
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import nbformat
from jupyter_client import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

from course_utils.lectures import EXERCISE_HEADING

__all__ = ["Exercise", "Submission", "course_exercises", "identify", "find_submissions", "summary", "grade",
           "main"]

ROOT = Path(__file__).resolve().parents[1]
STATUSES = ("correct", "wrong", "not attempted", "error")
COLUMNS = ("student", "notebook", "exercise", "title", "status", "message", "file")
#: an unindented call ``checks.NAME(`` (optionally assigned: ``f = checks.NAME(f)``)
CHECK_CALL = re.compile(r"^(?:[A-Za-z_][\w\s,]*=\s*)?checks\.([A-Za-z_]\w*)\s*\(", re.MULTILINE)
#: seconds a kernel gets, after the notebook's time is up, to obey the interrupt
GRACE_SECONDS = 10.0
NOT_MATCHING = "the notebook no longer matches the course's exercises"

# Run in every grading kernel at start-up (an IPython start-up file): nothing is downloaded.
OFFLINE_STARTUP = '''\
import socket as _socket

def _course_grading_offline():
    connect, connect_ex = _socket.socket.connect, _socket.socket.connect_ex

    def local(address):
        if not isinstance(address, tuple):
            return True  # a Unix socket
        host = str(address[0])
        return host in ("localhost", "::1", "") or host.startswith("127.")

    def refuse(address):
        raise OSError(101, f"grading runs offline: no connection to {address[0]}")

    def guarded_connect(self, address):
        return connect(self, address) if local(address) else refuse(address)

    def guarded_connect_ex(self, address):
        return connect_ex(self, address) if local(address) else 101

    _socket.socket.connect, _socket.socket.connect_ex = guarded_connect, guarded_connect_ex

_course_grading_offline()
del _course_grading_offline, _socket
'''


@dataclasses.dataclass(frozen=True)
class Exercise:
    """One exercise of a course notebook: its number, title, check name and check cell's index.

    Example:
        >>> ex = Exercise(2, "the Leibniz determinant", "leibniz_det", 18)
        >>> f"Exercise {ex.number} ({ex.title}) is checked by checks.{ex.check}(...) in cell {ex.cell}"
        'Exercise 2 (the Leibniz determinant) is checked by checks.leibniz_det(...) in cell 18'
    """
    number: int
    title: str
    check: str
    cell: int


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
        >>> course_exercises(nb)
        [Exercise(number=2, title='the Leibniz determinant', check='leibniz_det', cell=1)]
    """
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
                exercises.append(Exercise(number, title, match.group(1), i))
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


def _skipped(path: Path, root: Path) -> bool:
    parts = path.relative_to(root).parts
    return any(p.startswith(".") for p in parts) or path.name.endswith("-checkpoint.ipynb")


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


class _CurrentEnvSpecs(KernelSpecManager):
    """Every kernel name means this environment's Python (never another installed kernel)."""

    def get_kernel_spec(self, kernel_name):
        return KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                          display_name="course grading", language="python", metadata={})


class _StopNotebook(Exception):
    """The notebook's time is up: run no further cells."""


class _GradingClient(NotebookClient):
    """nbclient, plus: which check outcomes each cell recorded, time limits, timeouts seen."""

    def __init__(self, nb, log: Path, limit: float, cell_limit: float | None, **kw):
        super().__init__(nb, **kw)
        # No client-side widget models. nbclient's Output-widget model answers the kernel's
        # clear_output by sending on the shell socket while another task waits on that socket
        # for the cell's reply; under CPU load the reply's wake-up is now and then lost and the
        # cell waits out its whole time limit (nbclient issue 312: 3 of 20 cells showing notebook
        # 01's `interactive` on a loaded 2-core machine, each the full 15 s). Without the model
        # the widget's outputs land in the cell's own outputs, which is all grading needs.
        self.widget_registry = {}
        self.log_path, self.log_offset = log, 0
        self.limit, self.deadline = limit, None  # the clock starts with the first cell, not the kernel
        self.cell_limit = cell_limit
        self.timeout_func = self._cell_timeout
        self.outcomes: dict[int, list[dict]] = collections.defaultdict(list)
        self.started: list[int] = []      # code cells sent to the kernel, in order
        self.timed_out: set[int] = set()  # cells interrupted for running too long
        self.current: int | None = None

    def create_kernel_manager(self):
        self.km = AsyncKernelManager(kernel_name="python3", kernel_spec_manager=_CurrentEnvSpecs(),
                                     config=self.config)
        return self.km

    def _cell_timeout(self, cell) -> int:
        left = self.deadline - time.monotonic()
        if self.cell_limit is not None:
            left = min(left, self.cell_limit)
        return max(1, math.ceil(left))

    async def _async_handle_timeout(self, timeout, cell=None):
        if self.current is not None:
            self.timed_out.add(self.current)
        return await super()._async_handle_timeout(timeout, cell)

    def _read_log(self) -> list[dict]:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                if f.tell() < self.log_offset:
                    self.log_offset = 0
                f.seek(self.log_offset)
                data = f.read()
        except OSError:
            return []
        complete = data.rfind(b"\n") + 1
        self.log_offset += complete
        outcomes = []
        for line in data[:complete].splitlines():
            try:
                outcome = json.loads(line)
            except ValueError:
                continue
            if isinstance(outcome, dict):
                outcomes.append(outcome)
        return outcomes

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
            self.outcomes[cell_index] += self._read_log()


def _first_line(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _cell_error(cell) -> str | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return _first_line(f"{output.get('ename')}: {output.get('evalue')}")
    return None


async def _run(path: Path, limit: float, cell_limit: float | None):
    """Execute one notebook in a temporary folder; return (client or None, stop reason or None)."""
    tmp = Path(tempfile.mkdtemp(prefix="course-grade-"))
    try:
        work, log, ipython = tmp / "work", tmp / "checks.jsonl", tmp / "ipython"
        work.mkdir()
        (ipython / "profile_default" / "startup").mkdir(parents=True)
        (ipython / "profile_default" / "startup" / "00-offline.py").write_text(OFFLINE_STARTUP)
        log.touch()
        shutil.copyfile(path, work / path.name)
        try:
            nb = nbformat.read(work / path.name, as_version=4)
        except Exception as err:  # not JSON, not a notebook
            return None, f"the file is not a readable notebook ({_first_line(err, 120)})"
        env = dict(os.environ, COURSE_CHECKS_LOG=str(log), IPYTHONDIR=str(ipython),
                   PIP_NO_INDEX="1", HF_HUB_OFFLINE="1", PYTHONDONTWRITEBYTECODE="1")
        client = _GradingClient(nb, log, limit, cell_limit, kernel_name="python3", allow_errors=True,
                                interrupt_on_timeout=True, shutdown_kernel="immediate",
                                startup_timeout=120, resources={"metadata": {"path": str(work)}})
        killed = False

        async def watchdog():
            nonlocal killed
            while client.deadline is None or time.monotonic() < client.deadline + GRACE_SECONDS:
                await asyncio.sleep(0.25)
            killed = True
            if client.km is not None:
                try:
                    await client.km.signal_kernel(signal.SIGKILL)
                except Exception:
                    pass

        guard = asyncio.ensure_future(watchdog())
        stop = None
        try:
            # the kernel's own stdout and stderr (not the notebook's outputs) go to a file
            with open(tmp / "kernel.log", "wb") as kernel_log:
                await client.async_execute(env=env, stdout=kernel_log, stderr=kernel_log)
        except _StopNotebook:
            stop = f"timeout: the notebook's time limit of {limit:g} s ran out"
        except DeadKernelError:
            if killed:
                stop = "timeout: the kernel ignored the interrupt and was stopped"
            else:
                stop = "the kernel died (out of memory, a crash, or exit())" + _last_words(tmp / "kernel.log")
        except Exception as err:
            stop = f"the notebook could not be run ({type(err).__name__}: {_first_line(err, 150)})"
        finally:
            guard.cancel()
        if stop is None and client.timed_out and client.started and client.started[-1] in client.timed_out \
                and client.deadline is not None and time.monotonic() >= client.deadline:
            stop = f"timeout: the notebook's time limit of {limit:g} s ran out"
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
    return "the check cell ran, but no check outcome was recorded"


async def _grade_one(sub: Submission, root: Path, exercises: dict[str, list[Exercise]], limit: float,
                     cell_limit: float | None, out: Path | None) -> list[dict]:
    base = {"student": sub.student, "file": str(sub.path)}
    if sub.notebook is None:
        return [dict(base, notebook=sub.path.stem, exercise="", title="", status="error",
                     message="no course notebook in solutions/ matches this file name")]
    client, stop = await _run(root / sub.path, limit, cell_limit)
    cells = check_cells(client.nb) if client is not None else {}
    rows = []
    for ex in exercises[sub.notebook]:
        row = dict(base, notebook=sub.notebook, exercise=ex.number, title=ex.title)
        cell_index = cells.get(ex.check)
        in_cell = [o for o in (client.outcomes.get(cell_index, []) if client else [])
                   if o.get("status") in STATUSES]
        # the check by its name; else (a check known under another name) by the exercise's number
        recorded = [o for o in in_cell if o.get("check") == ex.check] or [
            o for o in in_cell if o.get("exercise") == ex.number]
        if recorded:
            row.update(status=recorded[-1]["status"], message=_first_line(recorded[-1].get("message", ""), 1000))
        elif client is None:
            row.update(status="error", message=stop)
        else:
            row.update(status="error", message=_missing_reason(cell_index, client, stop, cell_limit))
        rows.append(row)
    if out is not None and client is not None:
        inside = sub.path.parts[1:] if len(sub.path.parts) > 1 else (sub.path.name,)
        target = out.joinpath("executed", _safe(sub.student), *inside)
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(client.nb, target)
    return rows


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
        errors = [r for r in nb_rows if r["status"] == "error"]
        if errors:
            lines.append("Errors:")
            for r in errors:
                what = f"Exercise {r['exercise']}" if r["exercise"] != "" else r["file"]
                lines.append(f"- {r['student']}, {what}: {_first_line(r['message'], 160)}")
            lines.append("")
    return "\n".join(lines)


async def _grade_all(subs, root, exercises, limit, cell_limit, jobs, out, progress):
    gate = asyncio.Semaphore(max(1, jobs))
    done = 0

    async def one(sub):
        nonlocal done
        async with gate:
            start = time.monotonic()
            try:
                rows = await _grade_one(sub, root, exercises, limit, cell_limit, out)
            except Exception as err:  # a bug or a broken file must not stop the class
                rows = [dict(student=sub.student, notebook=sub.notebook or sub.path.stem, exercise=ex.number,
                             title=ex.title, status="error", file=str(sub.path),
                             message=f"grading failed: {type(err).__name__}: {_first_line(err, 150)}")
                        for ex in exercises.get(sub.notebook, [])] or [
                    dict(student=sub.student, notebook=sub.path.stem, exercise="", title="", status="error",
                         file=str(sub.path), message=f"grading failed: {type(err).__name__}: {err}")]
            done += 1
            counts = collections.Counter(r["status"] for r in rows)
            if progress:
                tally = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s])
                print(f"[{done}/{len(subs)}] {sub.path}: {tally}"
                      + f" ({time.monotonic() - start:.1f} s)", file=sys.stderr, flush=True)
            return rows

    results = await asyncio.gather(*(one(s) for s in subs))
    return [row for rows in results for row in rows]


def default_out(submissions: Path) -> Path:
    """The default output folder: ``SUBMISSIONS-grades``, beside the submissions folder.

    Example:
        >>> default_out(Path("/srv/class/week1")).as_posix()
        '/srv/class/week1-grades'
    """
    folder = Path(submissions).resolve()
    return folder.with_name(folder.name + "-grades")


def grade(submissions: Path, out: Path | None = None, timeout: float = 600, cell_timeout: float | None = None,
          jobs: int = 1, course: Path | None = None, progress: bool = True) -> list[dict]:
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

    Returns:
        the rows of grades.csv (dicts with the keys ``COLUMNS``).

    Example:
        >>> import tempfile
        >>> tmp = Path(tempfile.mkdtemp())
        >>> cells = [nbformat.v4.new_code_cell(
        ...     "from course_utils.checks import exercise, assert_close\\n"
        ...     "class checks:\\n"
        ...     "    @exercise(1, 'double')\\n"
        ...     "    def double(f):\\n"
        ...     "        assert_close(f(3.0), 6.0, 'double(3)', slips={'x * x is returned': 9.0})"),
        ...     nbformat.v4.new_markdown_cell("### Exercise 1: double"),
        ...     nbformat.v4.new_code_cell("def double(x):\\n    return x * x\\n\\nchecks.double(double)")]
        >>> for path in (tmp / "course" / "00_x.ipynb", tmp / "class" / "bob" / "00_x.ipynb"):
        ...     path.parent.mkdir(parents=True)
        ...     nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
        >>> (row,) = grade(tmp / "class", course=tmp / "course", progress=False)
        >>> row["student"], row["exercise"], row["status"]
        ('bob', 1, 'wrong')
        >>> print(row["message"])      # doctest: +NORMALIZE_WHITESPACE
        Exercise 1 (double) is not right yet: double(3): expected 6, got 9 (largest difference 3).
        This is what you get when x * x is returned.
        >>> sorted(p.name for p in (tmp / "class-grades").iterdir())
        ['executed', 'grades.csv', 'summary.md']
    """
    submissions = Path(submissions)
    course = Path(course) if course is not None else ROOT / "solutions"
    stems = sorted(p.stem for p in course.glob("*.ipynb"))
    if not stems:
        raise FileNotFoundError(f"no course notebooks in {course}")
    if not submissions.is_dir():
        raise FileNotFoundError(f"{submissions} is not a folder")
    exercises = {s: course_exercises(nbformat.read(course / f"{s}.ipynb", as_version=4)) for s in stems}
    out = Path(out) if out is not None else default_out(submissions)
    # notebooks under the output folder (executed/ of an earlier run) are not submissions
    subs = [s for s in find_submissions(submissions, stems)
            if not (submissions / s.path).resolve().is_relative_to(out.resolve())]
    if not subs:
        raise FileNotFoundError(f"no notebooks (*.ipynb) under {submissions}")
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "executed", ignore_errors=True)
    rows = asyncio.run(_grade_all(subs, submissions, exercises, timeout, cell_timeout, jobs, out, progress))
    with open(out / "grades.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({k: row.get(k, "") for k in COLUMNS} for row in rows)
    (out / "summary.md").write_text(summary(rows, stems) + "\n", encoding="utf-8")
    return rows


def main(argv=None) -> int:
    """The command line (``python -m course_utils.grade``): exit status 0 graded, 2 nothing to grade.

    Args:
        argv: the arguments (see ``--help``); ``None`` reads ``sys.argv``.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     main([tmp])      # no notebooks there: an error
        2
    """
    parser = argparse.ArgumentParser(prog="python -m course_utils.grade",
                                     description="Run every student notebook under SUBMISSIONS and collect "
                                                 "every exercise check's outcome (see the module docstring).")
    parser.add_argument("submissions", type=Path, metavar="SUBMISSIONS",
                        help="folder of student notebooks (a folder per student, or flat files)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where to write grades.csv, summary.md and executed/ (default: SUBMISSIONS-grades)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per notebook (default 600)")
    parser.add_argument("--cell-timeout", type=float, default=None,
                        help="seconds per cell; a longer cell is interrupted and the run goes on (default: none)")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks run at the same time (default 1)")
    parser.add_argument("--course", type=Path, default=None, help="the course notebooks (default: solutions/)")
    args = parser.parse_args(argv)
    try:
        rows = grade(args.submissions, args.out, args.timeout, args.cell_timeout, args.jobs, args.course)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = args.out or default_out(args.submissions)
    print((out / "summary.md").read_text(encoding="utf-8"), end="")
    print(f"wrote {out / 'grades.csv'} ({len(rows)} rows), {out / 'summary.md'} and {out / 'executed'}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
