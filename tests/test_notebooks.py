"""The notebooks as stored: clean, consistent, and lectures/ generated from solutions/.

(Executing them is nbval's job: ``make test`` runs every notebook in both folders.)
"""

import json
from pathlib import Path

import nbformat
import pytest

from course_utils import lectures

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
LECTURES = sorted((ROOT / "lectures").glob("*.ipynb"))
ALL = SOLUTIONS + LECTURES


def test_both_folders_hold_the_same_notebooks():
    assert SOLUTIONS, "no solution notebooks"
    assert [p.name for p in SOLUTIONS] == [p.name for p in LECTURES]


def test_lectures_are_what_make_lectures_generates(tmp_path):
    stale = lectures.generate(ROOT / "solutions", ROOT / "lectures", check=True)
    assert not stale, f"run `make lectures`: {stale}"


@pytest.mark.parametrize("path", ALL, ids=[f"{p.parent.name}/{p.name}" for p in ALL])
def test_stored_without_outputs_and_with_the_python3_kernel(path):
    nb = json.loads(path.read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"cell {i} has outputs"
            assert cell["execution_count"] is None, f"cell {i} has an execution count"


@pytest.mark.parametrize("path", LECTURES, ids=[p.name for p in LECTURES])
def test_student_notebooks_hide_every_solution(path):
    text = path.read_text()
    for marker in ("BEGIN SOLUTION", "END SOLUTION"):
        assert marker not in text
    student = nbformat.read(path, as_version=4)
    solution = nbformat.read(ROOT / "solutions" / path.name, as_version=4)
    count = lambda nb, s: sum(c.source.count(s) for c in nb.cells if c.cell_type == "code")
    assert count(student, 'raise NotImplementedError("Exercise ') == count(solution, "### BEGIN SOLUTION")


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.name for p in SOLUTIONS])
def test_notebook_shape(path):
    """Title first, a summary at the end, %matplotlib inline, a check after each exercise."""
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    assert "Summary" in "".join(c.source for c in nb.cells[-3:] if c.cell_type == "markdown")
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert any("%matplotlib inline" in s for s in code)
    for source in code:
        if "### BEGIN SOLUTION" in source:
            assert "checks." in source, "an exercise cell without a check call"


# The generator itself, on small notebooks made here.
def _nb(*cells):
    return nbformat.v4.new_notebook(cells=list(cells))


def test_generator_replaces_solutions_and_keeps_the_rest():
    md = nbformat.v4.new_markdown_cell("### Exercise 7: double it\n<!-- BEGIN SOLUTION -->secret<!-- END SOLUTION -->")
    code = nbformat.v4.new_code_cell("def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n\ncheck(f)")
    code.outputs = [nbformat.v4.new_output("stream", text="hi")]
    code.execution_count = 3
    hidden = nbformat.v4.new_markdown_cell("instructor note")
    hidden.metadata["tags"] = ["solution-only"]
    student = lectures.student_version(_nb(md, code, hidden))
    assert len(student.cells) == 2
    assert "secret" not in student.cells[0].source and "*Write your answer here.*" in student.cells[0].source
    assert student.cells[1].source == ('def f(x):\n    # YOUR CODE HERE\n'
                                       '    raise NotImplementedError("Exercise 7: double it")\n\ncheck(f)')
    assert student.cells[1].outputs == [] and student.cells[1].execution_count is None


@pytest.mark.parametrize("source,message", [
    ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION", "inside a function"),
    ("def f():\n    ### BEGIN SOLUTION\n    return 1", "without"),
    ("def f():\n    return 1\n    ### END SOLUTION", "without"),
])
def test_generator_refuses_bad_markers(source, message):
    md = nbformat.v4.new_markdown_cell("### Exercise 1: x")
    with pytest.raises(lectures.GenerationError, match=message):
        lectures.student_version(_nb(md, nbformat.v4.new_code_cell(source)))


def test_generator_needs_an_exercise_heading():
    code = nbformat.v4.new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION")
    with pytest.raises(lectures.GenerationError, match="Exercise N"):
        lectures.student_version(_nb(code))


def test_generate_writes_and_checks(tmp_path):
    sol, lec = tmp_path / "solutions", tmp_path / "lectures"
    sol.mkdir()
    md = nbformat.v4.new_markdown_cell("### Exercise 1: one")
    code = nbformat.v4.new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION")
    code.outputs = [nbformat.v4.new_output("stream", text="x")]
    (sol / "a.ipynb").write_text(nbformat.writes(_nb(md, code)))
    assert lectures.generate(sol, lec, check=True)  # stale: solutions has outputs, no lecture yet
    lectures.generate(sol, lec)
    assert lectures.generate(sol, lec, check=True) == []
    assert '"outputs": []' in (sol / "a.ipynb").read_text()
    (lec / "extra.ipynb").write_text("{}")
    assert any("extra" in s for s in lectures.generate(sol, lec, check=True))
