"""The same numbers everywhere: a notebook prints the same results in every run, apart from timings.

Training runs a fixed number of steps from fixed seeds, checks keep to their own random
generators, and costs are timed apart from training, on lines of their own. So:

- the student copy (``lectures/``, exercises not attempted: later cells use the course's
  reference functions) prints what the instructors' copy (``solutions/``) prints, line for line,
  outside the exercise and check cells and the few cells listed in ``DEPENDS_ON_THE_ANSWER``;
  the two runs are made one after the other in one pytest worker while the other worker runs
  other tests, so they also see different CPU loads;
- a notebook run again while two busy loops compete for the CPU prints what its first run printed.

The printed results are the ``stdout`` text and the ``text/plain`` result of each cell (with
memory addresses blanked; a result that is only an object's repr, ``<Axes: ...>``, is left out); lines that report a time (``course_utils.device.is_timing_line``) and
the checks' own messages are left out, and so are displays (figures, progress-bar widgets) and
``stderr``.
The notebook runs are nbval's (see the root ``conftest.py``), so nothing is executed twice for
the first test.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course_utils.device import is_timing_line

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.stem for p in (ROOT / "solutions").glob("*.ipynb") if (ROOT / "lectures" / p.name).exists())

#: cells of the student copy whose printed results may differ from the instructors' copy, because
#: they run the student's own function (handed back by a check) where the student copy runs the
#: course's reference: ``{notebook: {cell id: why}}``
DEPENDS_ON_THE_ANSWER: dict[str, dict[str, str]] = {}

#: notebooks run once more under load (a short one that trains)
RUN_UNDER_LOAD = ["03_normalising_flows"]

CHECK_MESSAGE = re.compile(r"^Exercise \d+ \(")
#: an object's memory address in a printed line
ADDRESS = re.compile(r"0x[0-9a-fA-F]+")
#: a result that is an object's repr, not a value
OBJECT_REPR = re.compile(r"^<[^\n]*>$")


def printed_lines(outputs: list) -> list[str]:
    """The result lines a cell printed: stdout and text results, without timings or check messages."""
    lines = []
    for out in outputs:
        if out.get("output_type") == "stream" and out.get("name") == "stdout":
            text = out.get("text", "")
        elif out.get("output_type") == "execute_result":
            text = out.get("data", {}).get("text/plain", "")
            if OBJECT_REPR.match(text.strip()):
                continue    # "<matplotlib.legend.Legend at 0x...>", "<Axes: ...>": an object, not a result
                            # (and nbval shows it even after a closing ";", where Jupyter does not)
        else:       # stderr (progress bars, warnings) and displays (figures, widgets) are not results
            continue
        text = "".join(text) if isinstance(text, list) else text
        lines += [ADDRESS.sub("0x...", line.rstrip()) for line in text.splitlines()
                  if line.strip() and not is_timing_line(line) and not CHECK_MESSAGE.match(line)]
    return lines


def _exercise_or_check(source: str) -> bool:
    return "### BEGIN SOLUTION" in source or "raise NotImplementedError" in source or "checks." in source


def _runs(request, notebook: str) -> dict:
    runs = getattr(request.config, "notebook_outputs", {})
    missing = [folder for folder in ("lectures", "solutions") if (folder, notebook) not in runs]
    if missing:
        pytest.skip(f"the notebook runs were not part of this session ({', '.join(missing)}): "
                    "run with the notebooks, as `make test` does")
    return runs


def differences(first: dict, second: dict, skip: set[str] = frozenset()) -> list[str]:
    """Cells (present in both runs) whose printed result lines differ, described for a message."""
    found = []
    for cell_id, cell in second.items():
        if cell_id not in first or cell_id in skip or _exercise_or_check(cell["source"]):
            continue
        a, b = printed_lines(first[cell_id]["outputs"]), printed_lines(cell["outputs"])
        if a != b:
            diff = next(((x, y) for x, y in zip(a, b) if x != y), (a[len(b):] or ["(nothing)"])[:1] + (b[len(a):] or ["(nothing)"])[:1])
            first_line = cell["source"].splitlines()[0] if cell["source"] else ""
            found.append(f"cell {cell_id} ({first_line[:50]!r}): {diff[0]!r} vs {diff[1]!r}")
    return found


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_student_copy_prints_what_the_solutions_print(notebook, request):
    runs = _runs(request, notebook)
    lectures, solutions = runs["lectures", notebook], runs["solutions", notebook]
    assert set(lectures) & set(solutions), "the two copies share no cell ids"
    skip = set(DEPENDS_ON_THE_ANSWER.get(notebook, {}))
    found = differences(lectures, solutions, skip)
    assert not found, (f"{notebook}: the student copy printed other numbers than the solutions in "
                       f"{len(found)} cell(s):\n" + "\n".join(found))


def _busy_loops(n: int):
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


@pytest.mark.parametrize("notebook", RUN_UNDER_LOAD)
def test_a_notebook_prints_the_same_under_load(notebook, request, tmp_path):
    runs = _runs(request, notebook)
    from nbclient import NotebookClient

    shutil.copy(ROOT / "solutions" / f"{notebook}.ipynb", tmp_path / f"{notebook}.ipynb")
    nb = nbformat.read(tmp_path / f"{notebook}.ipynb", as_version=4)
    client = NotebookClient(nb, timeout=900, kernel_name="python3", allow_errors=False,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.widget_registry = {}          # no client-side widget models (see course_utils/grade.py)
    loops = _busy_loops(2)
    try:
        client.execute()
    finally:
        for p in loops:
            p.kill()
            p.wait()
    loaded = {cell.get("id"): {"source": cell.source, "outputs": cell.get("outputs", [])}
              for cell in nb.cells if cell.cell_type == "code"}
    found = differences(runs["solutions", notebook], loaded)
    assert not found, (f"{notebook} printed other numbers with two busy loops competing for the CPU "
                       f"in {len(found)} cell(s):\n" + "\n".join(found))


def test_printed_lines_leave_out_timings_and_checks():
    outputs = [{"output_type": "stream", "name": "stdout",
                "text": "gap 0.031 nats: met\nforward 1.2 ms (median of 5, 1.1-1.3 ms)\n"
                        "Exercise 2 (the Leibniz determinant): correct. Well done!\n"},
               {"output_type": "stream", "name": "stderr", "text": "training: 100%\n"},
               {"output_type": "display_data", "data": {"text/plain": "<Figure size 640x480 with 1 Axes>"}},
               {"output_type": "execute_result", "data": {"text/plain": "<matplotlib.legend.Legend at 0x7fa688fe6b90>"}},
               {"output_type": "execute_result", "data": {"text/plain": "tensor([1., 2.])"}}]
    assert printed_lines(outputs) == ["gap 0.031 nats: met", "tensor([1., 2.])"]
    printed = [{"output_type": "stream", "name": "stdout", "text": "model at 0x7fa688fe6b90\n"}]
    assert printed_lines(printed) == ["model at 0x..."]
    first = {"a": {"source": "print(x)", "outputs": outputs}}
    second = {"a": {"source": "print(x)", "outputs": [{"output_type": "stream", "name": "stdout",
                                                        "text": "gap 0.032 nats: met\n"}]}}
    assert differences(first, second) and not differences(first, first)
    assert not differences(first, second, skip={"a"})
