"""Every public object of ``course_utils`` has a docstring with a runnable example.

The examples themselves run as doctests (``pytest --doctest-modules course_utils``, part of
``make test``); this test makes sure that there is one to run, in the one docstring shape of
``../shared/STYLE.md``: a one-line summary first, then the formula, paper, arguments, and an
``Example:`` section with ``>>>`` lines. It also refuses the headings of the old shapes
(``Example::``, ``Example`` / ``-------``, ``Parameters`` / ``----------``) and a paper year
that disagrees with the README's list of the lecture's references (``[3] ... 2016``).
"""

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import course_utils

ROOT = Path(__file__).resolve().parents[1]

MODULES = sorted(m.name for m in pkgutil.walk_packages(course_utils.__path__, "course_utils.")
                 if not m.name.endswith("conftest"))


def public_objects():
    for name in MODULES:
        module = importlib.import_module(name)
        for attr in getattr(module, "__all__", []):
            obj = getattr(module, attr)
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == name:
                yield f"{name}.{attr}", obj


OBJECTS = dict(public_objects())


def test_every_module_declares_its_public_names():
    missing = [name for name in MODULES if not hasattr(importlib.import_module(name), "__all__")]
    assert not missing, f"modules without __all__: {missing}"


#: headings of the shapes that the one shape replaced
OLD_HEADINGS = {"Example::": "Example::", "Example\n-------": "Example / -------",
                "Examples\n--------": "Examples / --------", "Parameters\n----------": "Parameters / ----------"}


def _reference_years() -> dict[str, str]:
    """``{"1": "2014", ...}`` from the README's numbered list of the lecture's references."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## References", 1)[1].split("\n## ", 1)[0]
    years = {}
    for number, rest in re.findall(r"^(\d+)\. (.+)$", section, flags=re.MULTILINE):
        found = re.findall(r"\b(?:19|20)\d\d\b", rest)
        if found:
            years[number] = found[-1]
    return years


@pytest.mark.parametrize("name", sorted(OBJECTS))
def test_public_object_has_a_runnable_example(name):
    doc = inspect.getdoc(OBJECTS[name]) or ""
    assert doc, f"{name} has no docstring"
    assert doc.split("\n")[0].strip(), f"{name}: the docstring should open with a one-line summary"
    assert ">>>" in doc, f"{name}: the docstring has no example (>>> lines)"
    assert "\nExample:\n" in doc or "\nExamples:\n" in doc, (
        f"{name}: put the example under an 'Example:' heading (the course's one docstring shape)")


@pytest.mark.parametrize("name", sorted(OBJECTS) + [f"{m} (module)" for m in MODULES])
def test_docstring_keeps_the_one_shape(name):
    """No heading of the old shapes; the examples sit under the ``Example:`` heading."""
    doc = inspect.getdoc(importlib.import_module(name[:-len(" (module)")]) if name.endswith(" (module)")
                         else OBJECTS[name]) or ""
    old = [shown for heading, shown in OLD_HEADINGS.items() if heading in doc]
    assert not old, f"{name}: replace the heading(s) {old} by 'Example:' / 'Args:' (the one shape)"
    if ">>>" in doc:
        heading = re.search(r"^Examples?:$", doc, flags=re.MULTILINE)
        assert heading and heading.start() < doc.index(">>>"), (
            f"{name}: the first '>>>' line comes before the 'Example:' heading; put every example under it")


def test_paper_years_match_the_lecture_references():
    """``[N] ... year`` anywhere in the library gives the year of reference N in the README."""
    years = _reference_years()
    assert len(years) >= 8, f"could not read the README's references, got {years}"
    # [N] not preceded by a name or a bracket (so x[1] and f()[1] are not references), then the
    # first year within 80 characters, before the next reference, a ';' or a blank line
    pattern = re.compile(r"(?<![\w\)\]])\[([1-9])\]((?:[^\[\];\n]|\n(?![ \t]*\n)){0,80}?)\b((?:19|20)\d\d)\b")
    wrong = []
    for path in sorted((ROOT / "course_utils").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for match in pattern.finditer(text):
            number, year = match.group(1), match.group(3)
            if number in years and years[number] != year:
                line = text.count("\n", 0, match.start()) + 1
                wrong.append(f"{path.relative_to(ROOT)}:{line}: [{number}] ... {year}, "
                             f"the README says {years[number]}")
    assert not wrong, "paper years that disagree with the README's references:\n" + "\n".join(wrong)
