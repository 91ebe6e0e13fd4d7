"""Doctest set-up: every docstring example runs with the same seed and names in scope, so its
shown output can be checked (``pytest --doctest-modules course_utils``, part of ``make test``)."""

import math
import os

os.environ.setdefault("MPLBACKEND", "Agg")   # examples draw figures; never open a window

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def _doctest_setup(doctest_namespace, monkeypatch):
    import course_utils.train

    torch.manual_seed(0)
    monkeypatch.setattr(course_utils.train, "CUT_SHORT", [])   # each example starts with no run cut short
    doctest_namespace.update(torch=torch, math=math)
    yield
