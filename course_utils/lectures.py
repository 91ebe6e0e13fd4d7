"""Generate the student notebooks (``lectures/``) from the instructors' (``solutions/``).

    python -m course_utils.lectures solutions lectures          # write lectures/
    python -m course_utils.lectures solutions lectures --check  # exit 1 if lectures/ is stale
    python -m course_utils.lectures solutions lectures --no-model-answers   # written answers hidden

Rules (the markers nbgrader uses):

- In a code cell, the lines from ``### BEGIN SOLUTION`` to ``### END SOLUTION`` become
  ``# YOUR CODE HERE`` and ``raise NotImplementedError("Exercise N: title")``, at the markers'
  indentation. Solutions must sit inside a function body, so that the student notebook still
  runs top to bottom (the check then says "not attempted yet").
- ``N`` and ``title`` come from the nearest markdown cell above with a heading
  ``### Exercise N: title``.
- In a markdown cell, ``<!-- BEGIN SOLUTION -->`` ... ``<!-- END SOLUTION -->`` becomes
  ``*Write your answer here.*``, and a collapsed markdown cell follows it, ``<details><summary>Compare
  with a model answer</summary>`` holding the solution's text, so that students get feedback on
  written questions too. Instructors who grade those questions leave the model answers out:
  ``--no-model-answers`` (``make lectures MODEL_ANSWERS=no``).
- Cells tagged ``solution-only`` are left out of the student notebook.
- Both folders are stored clean: no outputs, no execution counts, the ``python3`` kernel.
  Running this also cleans ``solutions/`` in place, so instructors can save freely.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import nbformat

__all__ = ["GenerationError", "clean", "student_version", "model_answer_cell", "render", "generate", "main"]

BEGIN_CODE, END_CODE = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_MD, END_MD = "<!-- BEGIN SOLUTION -->", "<!-- END SOLUTION -->"
EXERCISE_HEADING = re.compile(r"^#+\s*Exercise\s+(\d+)\s*[:.]\s*(.+?)\s*$", re.MULTILINE)
MODEL_ANSWER_OPEN = "<details><summary>Compare with a model answer</summary>"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


class GenerationError(ValueError):
    """A solution notebook breaks a marker rule; the message names the notebook and the cell.

    Example:
        >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("### BEGIN SOLUTION")])
        >>> try:
        ...     student_version(nb, "01_x.ipynb")
        ... except GenerationError as err:
        ...     print(err)
        01_x.ipynb, cell 0: a solution with no '### Exercise N: title' markdown heading above it
    """


def clean(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Strip outputs, execution counts and run-time metadata; set the python3 kernel.

    Returns a copy; ``nb`` is not changed.

    Example:
        >>> cell = nbformat.v4.new_code_cell("1 + 1", execution_count=3)
        >>> nb = clean(nbformat.v4.new_notebook(cells=[cell]))
        >>> nb.cells[0].execution_count, nb.metadata["kernelspec"]["name"]
        (None, 'python3')
    """
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        for key in ("execution", "collapsed", "scrolled", "ExecuteTime"):
            cell.metadata.pop(key, None)
    nb.metadata = {
        "kernelspec": dict(KERNELSPEC),
        "language_info": {"name": "python"},
    }
    return nb


def _strip_code(source: str, exercise: tuple[str, str] | None, where: str) -> str:
    lines = source.split("\n")
    out, inside, found = [], False, False
    for line in lines:
        stripped = line.strip()
        if stripped == BEGIN_CODE:
            if inside:
                raise GenerationError(f"{where}: nested {BEGIN_CODE}")
            if exercise is None:
                raise GenerationError(f"{where}: a solution with no '### Exercise N: title' "
                                      "markdown heading above it")
            indent = line[: len(line) - len(line.lstrip())]
            if not indent:
                raise GenerationError(f"{where}: solutions must be inside a function body "
                                      "(indented), so the student notebook still runs")
            number, title = exercise
            out.append(f"{indent}# YOUR CODE HERE")
            out.append(f'{indent}raise NotImplementedError("Exercise {number}: {title}")')
            inside, found = True, True
        elif stripped == END_CODE:
            if not inside:
                raise GenerationError(f"{where}: {END_CODE} without {BEGIN_CODE}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise GenerationError(f"{where}: {BEGIN_CODE} without {END_CODE}")
    return "\n".join(out) if found else source


MARKDOWN_SOLUTION = re.compile(re.escape(BEGIN_MD) + r"(.*?)" + re.escape(END_MD), re.DOTALL)


def _strip_markdown(source: str, where: str) -> str:
    if source.count(BEGIN_MD) != source.count(END_MD):
        raise GenerationError(f"{where}: unbalanced {BEGIN_MD} / {END_MD}")
    return MARKDOWN_SOLUTION.sub("*Write your answer here.*", source)


def model_answer_cell(cell: nbformat.NotebookNode) -> nbformat.NotebookNode | None:
    r"""The collapsed "Compare with a model answer" cell for a written-answer cell (else ``None``).

    It holds the text between the cell's ``<!-- BEGIN SOLUTION -->`` and ``<!-- END SOLUTION -->``
    markers; its id is the written-answer cell's id with ``-model`` (so it stays the same).

    Example:
        >>> cell = nbformat.v4.new_markdown_cell("Why?\n<!-- BEGIN SOLUTION -->\nBecause.\n<!-- END SOLUTION -->")
        >>> print(model_answer_cell(cell).source)
        <details><summary>Compare with a model answer</summary>
        <BLANKLINE>
        Because.
        <BLANKLINE>
        </details>
    """
    answers = [text.strip() for text in MARKDOWN_SOLUTION.findall(cell.source) if text.strip()]
    if cell.cell_type != "markdown" or not answers:
        return None
    model = nbformat.v4.new_markdown_cell(MODEL_ANSWER_OPEN + "\n\n" + "\n\n".join(answers) + "\n\n</details>")
    if cell.get("id"):
        model["id"] = f"{cell['id'][:58]}-model"
    return model


def student_version(nb: nbformat.NotebookNode, name: str = "notebook",
                    model_answers: bool = False) -> nbformat.NotebookNode:
    r"""The student notebook made from a solution notebook (the rules are in the module's text).

    Args:
        nb: the solution notebook (it is not changed).
        name: the notebook's name, used in error messages.
        model_answers: put a collapsed model answer under each written-answer cell
            (:func:`generate` and ``make lectures`` do, unless told not to).

    Example:
        >>> nb = nbformat.v4.new_notebook(cells=[
        ...     nbformat.v4.new_markdown_cell("### Exercise 1: add two numbers"),
        ...     nbformat.v4.new_code_cell(
        ...         "def add(a, b):\n    ### BEGIN SOLUTION\n    return a + b\n    ### END SOLUTION")])
        >>> print(student_version(nb).cells[1].source)
        def add(a, b):
            # YOUR CODE HERE
            raise NotImplementedError("Exercise 1: add two numbers")
    """
    nb = clean(nb)
    cells, exercise = [], None
    for i, cell in enumerate(nb.cells):
        where = f"{name}, cell {i}"
        if "solution-only" in cell.metadata.get("tags", []):
            continue
        if cell.cell_type == "markdown":
            match = None
            for match in EXERCISE_HEADING.finditer(cell.source):
                pass
            if match:
                exercise = (match.group(1), match.group(2).rstrip(".").replace('"', "'"))
            model = model_answer_cell(cell) if model_answers else None
            cell.source = _strip_markdown(cell.source, where)
            cells.append(cell)
            if model is not None:
                cells.append(model)
            continue
        elif cell.cell_type == "code":
            cell.source = _strip_code(cell.source, exercise, where)
        cells.append(cell)
    nb.cells = cells
    return nb



def render(nb: nbformat.NotebookNode) -> str:
    r"""A notebook as the text stored on disk: nbformat's JSON and a final newline.

    Example:
        >>> text = render(clean(nbformat.v4.new_notebook()))
        >>> text.startswith("{"), text.endswith("}\n")
        (True, True)
    """
    return nbformat.writes(nb) + "\n"


def generate(solutions: Path, lectures: Path, check: bool = False, model_answers: bool = True) -> list[str]:
    """Write (or with ``check``, compare) every student notebook; return the stale names.

    Args:
        solutions: the folder of solution notebooks (cleaned in place unless ``check``).
        lectures: the folder of student notebooks; ones without a solution are removed.
        check: write nothing, only list what is stale.
        model_answers: a collapsed model answer under each written-answer cell (see the module).

    Example:
        >>> import tempfile
        >>> tmp = tempfile.TemporaryDirectory()
        >>> src, dst = Path(tmp.name, "solutions"), Path(tmp.name, "lectures")
        >>> src.mkdir()
        >>> nbformat.write(nbformat.v4.new_notebook(), src / "01_x.ipynb")
        >>> generate(src, dst, check=True)
        ['.../solutions/01_x.ipynb (has outputs or metadata; run make lectures)', '.../lectures/01_x.ipynb']
        >>> generate(src, dst), generate(src, dst, check=True), [p.name for p in dst.iterdir()]
        ([], [], ['01_x.ipynb'])
        >>> tmp.cleanup()
    """
    stale = []
    sources = sorted(solutions.glob("*.ipynb"))
    if not sources:
        raise GenerationError(f"no notebooks in {solutions}")
    for src in sources:
        nb = nbformat.read(src, as_version=4)
        cleaned = render(clean(nb))
        student = render(student_version(nb, src.name, model_answers=model_answers))
        target = lectures / src.name
        if check:
            if src.read_text(encoding="utf-8") != cleaned:
                stale.append(f"{src} (has outputs or metadata; run make lectures)")
            if not target.exists() or target.read_text(encoding="utf-8") != student:
                stale.append(str(target))
            continue
        if src.read_text(encoding="utf-8") != cleaned:
            src.write_text(cleaned, encoding="utf-8")
        lectures.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.read_text(encoding="utf-8") != student:
            target.write_text(student, encoding="utf-8")
    extra = sorted({p.name for p in lectures.glob("*.ipynb")} - {p.name for p in sources})
    for name in extra:
        if check:
            stale.append(f"{lectures / name} (no matching solution notebook)")
        else:
            (lectures / name).unlink()
    return stale


def main(argv=None) -> int:
    """The command line (``python -m course_utils.lectures``): exit status 0 done, 1 stale, 2 error.

    Args:
        argv: the arguments, ``[solutions, lectures]`` and optionally ``--check`` and
            ``--no-model-answers``; ``None`` reads ``sys.argv``.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     main([tmp, str(Path(tmp, "lectures"))])      # no notebooks there: an error
        2
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("solutions", type=Path)
    parser.add_argument("lectures", type=Path)
    parser.add_argument("--check", action="store_true", help="only report stale notebooks")
    parser.add_argument("--no-model-answers", dest="model_answers", action="store_false",
                        help="leave out the collapsed model answers under written questions "
                             "(for instructors who grade them)")
    args = parser.parse_args(argv)
    try:
        stale = generate(args.solutions, args.lectures, check=args.check, model_answers=args.model_answers)
    except GenerationError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.check and stale:
        print("stale: " + ", ".join(stale), file=sys.stderr)
        return 1
    if not args.check:
        print(f"wrote the student notebooks in {args.lectures}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
