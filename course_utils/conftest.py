"""Doctest set-up: every docstring example runs with the same seed and names in scope, so its
shown output can be checked (``pytest --doctest-modules course_utils``, part of ``make test``)."""

import math
import os

os.environ.setdefault("MPLBACKEND", "Agg")   # examples draw figures; never open a window

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def _doctest_setup(doctest_namespace):
    torch.manual_seed(0)
    doctest_namespace.update(torch=torch, math=math)
    yield
