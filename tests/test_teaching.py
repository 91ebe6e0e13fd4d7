"""The teaching rules of ``../shared/STYLE.md`` that can be read off the notebooks' sources.

- Every exercise has a collapsed hint right after it, in both folders.
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
HINT_WINDOW = 3          # the hint sits within this many cells after the exercise's code cell


def _is_exercise(cell) -> bool:
    return cell.cell_type == "code" and ("### BEGIN SOLUTION" in cell.source
                                         or 'raise NotImplementedError("Exercise ' in cell.source)


def _is_hint(cell) -> bool:
    text = cell.source.strip()
    return (cell.cell_type == "markdown" and text.startswith(HINT_OPEN) and text.endswith("</details>")
            and len(text) > len(HINT_OPEN) + len("</details>") + 20)


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
