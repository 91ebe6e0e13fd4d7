"""Every public object of ``course_utils`` has a docstring with a runnable example.

The examples themselves run as doctests (``pytest --doctest-modules course_utils``, part of
``make test``); this test makes sure that there is one to run, in the one docstring shape of
``../shared/STYLE.md``: a one-line summary first, then the formula, paper, arguments, and an
``Example:`` section with ``>>>`` lines.
"""

import importlib
import inspect
import pkgutil

import pytest

import course_utils

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


@pytest.mark.parametrize("name", sorted(OBJECTS))
def test_public_object_has_a_runnable_example(name):
    doc = inspect.getdoc(OBJECTS[name]) or ""
    assert doc, f"{name} has no docstring"
    assert doc.split("\n")[0].strip(), f"{name}: the docstring should open with a one-line summary"
    assert ">>>" in doc, f"{name}: the docstring has no example (>>> lines)"
    assert "\nExample:\n" in doc or "\nExamples:\n" in doc, (
        f"{name}: put the example under an 'Example:' heading (the course's one docstring shape)")
