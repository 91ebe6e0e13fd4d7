"""Grading a class (course_utils.grade): one grader run over a mixed class, then its table.

The class uses the two cheapest notebooks only (00 and 01). Students: ``good`` (solutions, as
they are), ``blank`` (lectures), ``slip`` (one plausible wrong answer), ``crash`` (a student cell
raises; a flat file name), ``dead`` (the kernel dies); all but ``good`` keep only the cells that
import and check, to keep the test fast. The grader runs once, from the command line, for
all of them. Time limits (an infinite loop, a kernel that ignores interrupts, a notebook that
runs too long) are tested on a tiny course whose kernels start in a second.
"""

import csv
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course_utils import grade, sandbox

ROOT = Path(__file__).resolve().parents[1]
SANDBOXED = sandbox.unavailable() is None
NB00, NB01 = "00_start_here", "01_jacobian_and_determinant"


def _read(folder, stem):
    return nbformat.read(ROOT / folder / f"{stem}.ipynb", as_version=4)


def _exercises(stem):
    return grade.course_exercises(_read("solutions", stem))


def _cell_calling(nb, check):
    return next(c for c in nb.cells if c.cell_type == "code" and f"checks.{check}(" in c.source)


def _trimmed(nb):
    """Keep the markdown, the first code cell (imports) and the cells that call a check (faster)."""
    first = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    nb.cells = [c for i, c in enumerate(nb.cells) if c.cell_type != "code" or i == first or "checks." in c.source]
    return nb


def _save(nb, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("grade")
    sub, out = tmp / "class", tmp / "out"
    for stem in (NB00, NB01):
        _save(_read("solutions", stem), sub / "good" / f"{stem}.ipynb")
        _save(_trimmed(_read("lectures", stem)), sub / "blank" / f"{stem}.ipynb")
    # Jupyter's autosave copy is not a submission; a file that is no course notebook is reported
    _save(_read("solutions", NB00), sub / "good" / ".ipynb_checkpoints" / f"{NB00}-checkpoint.ipynb")
    _save(nbformat.v4.new_notebook(), sub / "good" / "scratch.ipynb")

    # slip: the Leibniz sum without the permutation signs (the permanent)
    nb = _trimmed(_read("solutions", NB01))
    cell = _cell_calling(nb, "leibniz_det")
    assert "(-1) ** linalg.inversions(perm) * term" in cell.source
    cell.source = cell.source.replace("(-1) ** linalg.inversions(perm) * term", "term")
    _save(nb, sub / "slip" / f"{NB01}.ipynb")

    # crash (flat file): the exercise cell raises before its check; a later cell (outside the
    # exercises: the release copy's cells run there instead) tries to write the grades file.
    nb = _trimmed(_read("solutions", NB00))
    cell = _cell_calling(nb, "stable_softplus")
    cell.source = "1 / 0\n" + cell.source
    nb.cells.append(nbformat.v4.new_code_cell(
        "import os\n"
        f"open({str(out / 'grades.csv')!r}, 'w').write('tampered')\n"
        "print(os.getcwd(), os.environ['COURSE_CHECKS_LOG'])"))
    _save(nb, sub / f"crash_{NB00}.ipynb")

    # dead: the kernel exits in the first exercise's cell
    nb = _read("solutions", NB01)
    cell = _cell_calling(nb, "jacobian_by_hand")
    cell.source = "import os\nos._exit(3)\n" + cell.source
    _save(nb, sub / "dead" / f"{NB01}.ipynb")

    run = subprocess.run([sys.executable, "-m", "course_utils.grade", str(sub), "--out", str(out),
                          "--timeout", "300", "--jobs", "2"] + ([] if SANDBOXED else ["--no-sandbox"]),
                         capture_output=True, text=True, timeout=600, cwd=tmp)
    assert run.returncode == 0, run.stderr[-3000:]
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    table = {(r["student"], r["notebook"], r["exercise"]): r for r in rows}
    return {"rows": rows, "table": table, "out": out, "stdout": run.stdout, "stderr": run.stderr}


def _student(graded, student, stem):
    return {int(r["exercise"]): r for r in graded["rows"] if r["student"] == student and r["notebook"] == stem}


def test_every_course_notebook_names_a_check_for_each_exercise():
    for path in sorted((ROOT / "solutions").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        headings = sum(len(list(grade.EXERCISE_HEADING.finditer(c.source))) for c in nb.cells
                       if c.cell_type == "markdown")
        exercises = grade.course_exercises(nb)
        assert len(exercises) == headings, f"{path.name}: an exercise heading without a check cell after it"
        assert len({e.check for e in exercises}) == len(exercises), path.name


def test_solutions_get_every_exercise_correct(graded):
    for stem in (NB00, NB01):
        got = _student(graded, "good", stem)
        assert sorted(got) == [e.number for e in _exercises(stem)]
        assert {r["status"] for r in got.values()} == {"correct"}, got
        assert all(r["title"] and "correct" in r["message"] for r in got.values())


def test_lectures_get_every_exercise_not_attempted(graded):
    for stem in (NB00, NB01):
        got = _student(graded, "blank", stem)
        assert sorted(got) == [e.number for e in _exercises(stem)]
        assert {r["status"] for r in got.values()} == {"not attempted"}, got


def test_one_wrong_answer_is_that_exercise_wrong_with_its_slip(graded):
    got = _student(graded, "slip", NB01)
    assert {n: r["status"] for n, r in got.items()} == {1: "correct", 2: "wrong", 3: "correct"}
    assert "permanent" in got[2]["message"]


def test_a_raised_exception_is_an_error_and_a_demonstration_does_not_count(graded):
    got = _student(graded, "crash", NB00)  # student id from the flat file name
    assert got[0]["status"] == "error"
    assert "ZeroDivisionError" in got[0]["message"], got[0]
    assert got[0]["file"] == f"crash_{NB00}.ipynb"


def test_a_dead_kernel_is_reported(graded):
    got = _student(graded, "dead", NB01)
    assert sorted(got) == [1, 2, 3]
    for row in got.values():
        assert row["status"] == "error" and "kernel died" in row["message"], row


def test_checkpoints_are_skipped_and_unknown_notebooks_reported(graded):
    assert not any("checkpoint" in r["file"] for r in graded["rows"])
    (row,) = [r for r in graded["rows"] if r["file"].endswith("scratch.ipynb")]
    assert row["status"] == "error" and "no course notebook" in row["message"]


def test_cells_outside_the_exercises_are_the_release_copys_and_only_the_grader_writes(graded):
    executed = nbformat.read(graded["out"] / "executed" / "crash" / f"crash_{NB00}.ipynb", as_version=4)
    assert not any("tampered" in c.source for c in executed.cells), "the student's extra cell is not run"
    assert "tampered" not in (graded["out"] / "grades.csv").read_text()
    summary = (graded["out"] / "summary.md").read_text()
    assert f"- crash, crash_{NB00}.ipynb: cells" in summary, "the changed cell is reported"
    assert len(graded["rows"]) == len(graded["table"]), "one row per student, notebook and exercise"


def test_summary_table_is_written_and_printed(graded):
    text = (graded["out"] / "summary.md").read_text()
    assert text.strip() in graded["stdout"]
    assert f"## {NB01} (4 submitted)" in text
    line = next(l for l in text.splitlines() if l.startswith("| 2: the Leibniz determinant"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[1:5] == ["1", "1", "1", "1"]  # correct: good; wrong: slip; not attempted: blank; error: dead
    assert "permanent" in cells[5] and "(1 of 1)" in cells[5]


# A tiny course: its checks module (course_utils.checks' decorator) lives in a folder handed to
# the grader with library=, read-only in the sandbox.
TINY_CHECKS = """\
from course_utils.checks import assert_close, exercise

@exercise(1, "double")
def double(f):
    assert_close(f(2.0), 4.0, "double(2)")

@exercise(2, "triple")
def triple(f):
    assert_close(f(2.0), 6.0, "triple(2)")
"""
TINY_SETUP = "import time\nimport tinychecks as checks"


def _library(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir(exist_ok=True)
    (lib / "tinychecks.py").write_text(TINY_CHECKS)
    return [lib]


def _tiny(double_body, extra_cells=()):
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    return nbformat.v4.new_notebook(cells=[
        code(TINY_SETUP), *map(code, extra_cells),
        md("### Exercise 1: double"), code(f"def double(x):\n{double_body}\n\nchecks.double(double)"),
        md("### Exercise 2: triple"), code("def triple(x):\n    return 3 * x\n\nchecks.triple(triple)")])


def test_time_limits(tmp_path, monkeypatch):
    """A loop is interrupted and the notebook goes on; a stubborn kernel is stopped; so is a slow notebook."""
    course, sub = tmp_path / "course", tmp_path / "class"
    _save(_tiny("    return 2 * x"), course / "00_tiny.ipynb")
    _save(_tiny("    return x + x"), sub / "fine" / "00_tiny.ipynb")
    _save(_tiny("    while True:\n        pass"), sub / "loop" / "00_tiny.ipynb")
    _save(_tiny("    while True:\n        try:\n            time.sleep(0.05)\n        except KeyboardInterrupt:\n"
                "            pass"), sub / "stubborn" / "00_tiny.ipynb")
    monkeypatch.setattr(grade, "GRACE_SECONDS", 1.0)
    rows = grade.grade(sub, tmp_path / "out", timeout=30, cell_timeout=2, jobs=4, course=course, progress=False,
                       library=_library(tmp_path), sandboxed=SANDBOXED)
    got = {(r["student"], r["exercise"]): (r["status"], r["message"]) for r in rows}
    assert got["fine", 1] == ("correct", "Exercise 1 (double): correct. Well done!") and got["fine", 2][0] == "correct"
    assert got["loop", 1][0] == "error" and got["loop", 1][1].startswith("timeout"), got["loop", 1]
    assert got["loop", 2][0] == "correct", "the notebook goes on after an interrupted cell"
    assert got["stubborn", 1] == ("error", "timeout: the kernel ignored the interrupt and was stopped "
                                           "in this exercise's check cell")
    assert got["stubborn", 2] == ("error", "check cell not reached: timeout: the kernel ignored the interrupt "
                                           "and was stopped")
    # a notebook that runs out of time: the rest is not run
    slow = _tiny("    return 2 * x")
    slow.cells[2].source = "time.sleep(8)\n" + slow.cells[2].source
    _save(slow, tmp_path / "class2" / "slow" / "00_tiny.ipynb")
    rows = grade.grade(tmp_path / "class2", tmp_path / "out2", timeout=4, jobs=1, course=course, progress=False,
                       library=_library(tmp_path), sandboxed=SANDBOXED)
    got = {r["exercise"]: (r["status"], r["message"]) for r in rows}
    assert got[1] == ("error", "timeout: the notebook's time limit of 4 s ran out in this exercise's check cell")
    assert got[2] == ("error", "check cell not reached: timeout: the notebook's time limit of 4 s ran out")


def test_widget_outputs_do_not_stall_a_notebook(tmp_path):
    """Cells that show notebook 01's ``interactive`` (its figure goes through an Output widget) run
    at full speed: with nbclient's own Output-widget model, under load, some of them waited out
    the whole time limit (nbclient issue 312), which once cost the good student of notebook 01 every
    mark in CI."""
    course, sub = tmp_path / "course", tmp_path / "class"
    widget = "%matplotlib inline\nfrom course_utils import widgets\nwidgets.linear_map_widget(a=1.5, d=0.5)"
    _save(_tiny("    return 2 * x", [widget] * 25), course / "00_tiny.ipynb")  # the release copy's cells run
    _save(_tiny("    return 2 * x", [widget] * 25), sub / "widgets" / "00_tiny.ipynb")
    rows = grade.grade(sub, tmp_path / "out", timeout=60, jobs=1, course=course, progress=False,
                       library=_library(tmp_path), sandboxed=SANDBOXED)
    assert [(r["exercise"], r["status"]) for r in rows] == [(1, "correct"), (2, "correct")], rows
    executed = nbformat.read(tmp_path / "out" / "executed" / "widgets" / "00_tiny.ipynb", as_version=4)
    shown = [c for c in executed.cells if c.source == widget]
    figures = [c for c in shown if any("image/png" in o.get("data", {}) for o in c.outputs)]
    assert len(shown) == len(figures) == 25, "each widget's figure is kept in its cell's outputs"
