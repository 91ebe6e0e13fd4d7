"""The teaching rules of ``../shared/STYLE.md`` that can be read off the notebooks' sources.

- Every exercise has a collapsed hint right after it, in both folders, in two steps: a
  ``Nudge`` (what to think about, no code at all) and then the fuller ``Hint``; no hint contains
  a line of the solution's code verbatim.
- Every written-answer cell has a collapsed model answer under it in the student copy (unless
  ``make lectures MODEL_ANSWERS=no`` left them out).
- A check that hands the student's function back (``exercise(..., reference=f)``) has its return
  value stored, and a later cell uses it: the student's own code does the work.
- No notebook refers to a notebook that does not exist (unless it says it is in preparation).
"""

import ast
import importlib
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
LECTURES = sorted((ROOT / "lectures").glob("*.ipynb"))
ALL = SOLUTIONS + LECTURES
IDS = [f"{p.parent.name}/{p.name}" for p in ALL]

HINT_OPEN = "<details><summary>Hint</summary>"
NUDGE_OPEN = "<details><summary>Nudge</summary>"
HINT_WINDOW = 3          # the hint sits within this many cells after the exercise's code cell


def _is_exercise(cell) -> bool:
    return cell.cell_type == "code" and ("### BEGIN SOLUTION" in cell.source
                                         or 'raise NotImplementedError("Exercise ' in cell.source)


def _is_hint(cell) -> bool:
    text = cell.source.strip()
    return (cell.cell_type == "markdown" and text.startswith((HINT_OPEN, NUDGE_OPEN)) and HINT_OPEN in text
            and text.endswith("</details>") and len(text) > len(HINT_OPEN) + len("</details>") + 20)


def _exercises_and_hints(cells):
    """``(index of the exercise cell, its hint cell or None)`` for every exercise."""
    for i, cell in enumerate(cells):
        if _is_exercise(cell):
            window = cells[i + 1: i + 1 + HINT_WINDOW]
            yield i, next((c for c in window if _is_hint(c)), None)


def _block(text: str, opener: str) -> str | None:
    """The text of the collapsed block that starts with ``opener`` (up to its ``</details>``)."""
    start = text.find(opener)
    if start < 0:
        return None
    end = text.find("</details>", start)
    return text[start + len(opener): end if end >= 0 else len(text)]


#: inline code that is code, not a name: a call or an assignment
INLINE_CODE = re.compile(r"`([^`]*)`")


def nudge_problems(hint: str) -> list[str]:
    """What is wrong with a hint cell's two steps (empty when it is a nudge, then a hint).

    >>> nudge_problems("<details><summary>Nudge</summary>Which half of `y` is known?</details>"
    ...                "<details><summary>Hint</summary>Use `torch.cat([a, b], dim=1)`.</details>")
    []
    >>> nudge_problems("<details><summary>Nudge</summary>Try `x.clamp(min=0)`.</details>"
    ...                "<details><summary>Hint</summary>...</details>")
    ['the nudge shows code: `x.clamp(min=0)`']
    """
    problems = []
    nudge, full = _block(hint, NUDGE_OPEN), _block(hint, HINT_OPEN)
    if nudge is None:
        problems.append(f"no nudge ('{NUDGE_OPEN} ... </details>') before the hint")
    if full is None:
        problems.append(f"no hint ('{HINT_OPEN} ... </details>')")
    if nudge is not None and full is not None and hint.find(NUDGE_OPEN) > hint.find(HINT_OPEN):
        problems.append("the nudge comes after the hint (nudge first)")
    if nudge is not None:
        if "```" in nudge:
            problems.append("the nudge has a code block")
        problems += [f"the nudge shows code: `{code}`" for code in INLINE_CODE.findall(nudge)
                     if "(" in code or "=" in code]
    return problems


def solution_lines(source: str, shortest: int = 20) -> list[str]:
    r"""The code lines between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` with at least
    ``shortest`` non-space characters (comment lines left out), spaces removed.

    >>> solution_lines("def f(x):\n    ### BEGIN SOLUTION\n    # a comment that is long enough\n"
    ...                "    return x.clamp(min=0) + torch.log1p(x)\n    ### END SOLUTION")
    ['returnx.clamp(min=0)+torch.log1p(x)']
    """
    lines, inside = [], False
    for line in source.split("\n"):
        stripped = line.strip()
        if stripped == "### BEGIN SOLUTION":
            inside = True
        elif stripped == "### END SOLUTION":
            inside = False
        elif inside and not stripped.startswith("#"):
            compact = "".join(stripped.split("#")[0].split()) if "#" in stripped else "".join(stripped.split())
            if len(compact) >= shortest:
                lines.append(compact)
    return lines


@pytest.mark.parametrize("path", ALL, ids=IDS)
def test_every_hint_is_a_nudge_then_a_hint(path):
    """Two collapsed steps: a nudge (what to think about, no code), then the fuller hint."""
    cells = nbformat.read(path, as_version=4).cells
    for i, hint in _exercises_and_hints(cells):
        if hint is not None:
            problems = nudge_problems(hint.source)
            assert not problems, f"the hint under the exercise in cell {i}: {'; '.join(problems)}"


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.name for p in SOLUTIONS])
def test_no_hint_gives_a_solution_line_away(path):
    cells = nbformat.read(path, as_version=4).cells
    for i, hint in _exercises_and_hints(cells):
        if hint is None:
            continue
        text = "".join(hint.source.split())
        given = [line for line in solution_lines(cells[i].source) if line in text]
        assert not given, f"the hint under the exercise in cell {i} contains the solution's line(s) {given}"


def _written_answers(cells) -> int:
    return sum(cell.cell_type == "markdown" and "<!-- BEGIN SOLUTION -->" in cell.source for cell in cells)


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.name for p in SOLUTIONS])
def test_written_questions_have_a_model_answer_in_the_student_copy(path):
    from course_utils.lectures import MODEL_ANSWER_OPEN, student_version

    solution = nbformat.read(path, as_version=4)
    student = student_version(solution, path.name, model_answers=True)
    cells = student.cells
    models = [i for i, c in enumerate(cells) if c.cell_type == "markdown" and c.source.startswith(MODEL_ANSWER_OPEN)]
    assert len(models) == _written_answers(solution.cells)
    for i in models:
        assert "*Write your answer here.*" in cells[i - 1].source, "a model answer right under its question"
        assert cells[i].source.rstrip().endswith("</details>") and "BEGIN SOLUTION" not in cells[i].source
    stored = nbformat.read(ROOT / "lectures" / path.name, as_version=4).cells
    assert sum(c.source.startswith(MODEL_ANSWER_OPEN) for c in stored if c.cell_type == "markdown") == len(models)
    # and the instructors' option leaves them out
    bare = student_version(solution, path.name, model_answers=False)
    assert not any(c.source.startswith(MODEL_ANSWER_OPEN) for c in bare.cells if c.cell_type == "markdown")


def test_make_lectures_model_answers_no(tmp_path):
    """``make lectures MODEL_ANSWERS=no`` (the ``--no-model-answers`` flag) leaves the model answers out."""
    from course_utils import lectures

    src = tmp_path / "solutions"
    src.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        "### Question: why?\n\n<!-- BEGIN SOLUTION -->\nBecause the sign is orientation.\n<!-- END SOLUTION -->")])
    nbformat.write(nb, src / "01_x.ipynb")
    assert lectures.main([str(src), str(tmp_path / "with")]) == 0
    assert lectures.main([str(src), str(tmp_path / "without"), "--no-model-answers"]) == 0
    with_cells = nbformat.read(tmp_path / "with" / "01_x.ipynb", as_version=4).cells
    without = nbformat.read(tmp_path / "without" / "01_x.ipynb", as_version=4).cells
    assert [c.source.split("\n")[0] for c in with_cells] == ["### Question: why?",
                                                            lectures.MODEL_ANSWER_OPEN]
    assert "Because the sign is orientation." in with_cells[1].source
    assert len(without) == 1 and "Because" not in without[0].source
    makefile = (ROOT / "Makefile").read_text()
    assert "MODEL_ANSWERS" in makefile and "--no-model-answers" in makefile


@pytest.mark.parametrize("path", ALL, ids=IDS)
def test_every_exercise_has_a_hint_right_after_it(path):
    cells = nbformat.read(path, as_version=4).cells
    for i, cell in enumerate(cells):
        if _is_exercise(cell):
            window = cells[i + 1: i + 1 + HINT_WINDOW]
            assert any(_is_hint(c) for c in window), (
                f"cell {i} is an exercise without a collapsed hint in the {HINT_WINDOW} cells after it "
                f"(a markdown cell '{HINT_OPEN} ... </details>')")


def _code_trees(cells):
    """``(index, ast)`` of every code cell, IPython magics and shell lines left out."""
    for i, cell in enumerate(cells):
        if cell.cell_type != "code":
            continue
        source = "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                           for line in cell.source.split("\n"))
        yield i, ast.parse(source)


def _checks_module(trees):
    for _, tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "course_utils.checks":
                for alias in node.names:
                    if alias.asname == "checks":
                        return importlib.import_module(f"course_utils.checks.{alias.name}")
    return None


@pytest.mark.parametrize("path", ALL, ids=IDS)
def test_checks_that_return_the_students_function_are_used_later(path):
    cells = nbformat.read(path, as_version=4).cells
    trees = list(_code_trees(cells))
    module = _checks_module(trees)
    if module is None:
        pytest.skip("this notebook has no checks")
    returning = {name for name in getattr(module, "__all__", [])
                 if getattr(getattr(module, name), "reference", None) is not None}
    used = {}                 # check name -> is one of its calls stored and used by a later cell?
    for i, tree in trees:
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "checks"
                    and node.func.attr in returning):
                continue
            stored = [t.id for a in ast.walk(tree) if isinstance(a, ast.Assign) and a.value is node
                      for t in a.targets if isinstance(t, ast.Name)]
            later = any(isinstance(n, ast.Name) and n.id in stored and isinstance(n.ctx, ast.Load)
                        for j, other in trees if j > i for n in ast.walk(other))
            used[node.func.attr] = used.get(node.func.attr, False) or later
    for name, ok in used.items():
        assert ok, (f"checks.{name}(...) returns the student's function: store it (`{name} = "
                    f"checks.{name}({name})`) and use it in a later cell")
    missing = {name for name in returning if getattr(module, name).__module__ == module.__name__} - set(used)
    assert not missing, f"checks made with reference= but never called in this notebook: {sorted(missing)}"


EXISTING = {p.name[:2] for p in SOLUTIONS + LECTURES if p.name[:2].isdigit()}
MENTION = re.compile(r"\b[Nn]otebooks?\s+(\d\d(?:(?:\s*,\s*|\s+and\s+|\s+or\s+|\s+to\s+|\s*-\s*|\s*–\s*)\d\d)*)")


def mentioned_numbers(text: str) -> set[str]:
    """The notebook numbers a text refers to ("notebooks 04 to 06" -> 04, 05, 06).

    >>> sorted(mentioned_numbers("see notebooks 04 to 06, and notebook 10"))
    ['04', '05', '06', '10']
    """
    found = set()
    for match in MENTION.finditer(text):
        group = match.group(1)
        numbers = re.findall(r"\d\d", group)
        found.update(numbers)
        for a, b in re.findall(r"(\d\d)(?:\s+to\s+|\s*-\s*|\s*–\s*)(\d\d)", group):
            found.update(f"{n:02d}" for n in range(int(a), int(b) + 1))
    return found


def test_mentions_are_read_correctly():
    assert mentioned_numbers("notebooks 04 and 09; Notebook 11") == {"04", "09", "11"}
    assert mentioned_numbers("notebooks 07-09") == {"07", "08", "09"}
    assert mentioned_numbers("in 2048 notebooks") == set()


@pytest.mark.parametrize("path", ALL, ids=IDS)
def test_no_mention_of_a_notebook_that_does_not_exist(path):
    cells = nbformat.read(path, as_version=4).cells
    for i, cell in enumerate(cells):
        for line in cell.source.split("\n"):
            if "in preparation" in line:
                continue
            missing = mentioned_numbers(line) - EXISTING
            assert not missing, (f"cell {i} refers to notebook(s) {sorted(missing)}, which do not exist "
                                 f"(say 'in preparation' on that line if they are): {line.strip()!r}")


@pytest.mark.parametrize("path", ALL, ids=IDS)
def test_code_cells_compile_without_warnings(path):
    """E.g. an exercise title with a backslash ($\\exp$) would put an invalid escape into the
    student's `raise NotImplementedError("...")` line."""
    import warnings
    for i, tree_source in enumerate(nbformat.read(path, as_version=4).cells):
        if tree_source.cell_type != "code":
            continue
        source = "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                           for line in tree_source.source.split("\n"))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            compile(source, f"{path.name} cell {i}", "exec")
