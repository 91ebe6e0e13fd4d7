"""Session-wide test set-up: keep each notebook's runs together and remember what they printed.

``make test`` executes every notebook twice, the student copy (``lectures/``, exercises not
attempted) and the instructors' copy (``solutions/``), with nbval, one cell per test item. The
course promises that a notebook prints the same results in every run, whatever the machine's
load, apart from timing lines; ``tests/test_same_numbers.py`` checks that promise by comparing
what the two runs printed. For that, this file

- puts the two runs of a notebook and its comparison test into one ``xdist_group`` (run with
  ``--dist loadgroup``; every other test file is a group of its own, as ``--dist loadfile``
  did), in that order, so they run in one worker process one after the other while the other
  worker runs other things: the two runs see different loads;
- keeps every nbval cell's outputs in ``config.notebook_outputs``:
  ``{(folder, stem): {cell id: [output, ...]}}``.
"""

from __future__ import annotations

import pytest

NOTEBOOK_FOLDERS = ("lectures", "solutions")
#: test files that each take minutes (they run first, longest first)
HEAVY_FILES = ("test_site.py", "test_browser.py", "test_grade_adversarial.py", "test_grade.py")


def _notebook_of(item) -> tuple[str, str] | None:
    """``(folder, stem)`` for an nbval cell item of a course notebook, else ``None``."""
    if type(item).__name__ != "IPyNbCell":
        return None
    path = item.path
    if path.parent.name not in NOTEBOOK_FOLDERS:
        return None
    return path.parent.name, path.stem


def _group(item) -> str:
    notebook = _notebook_of(item)
    if notebook is not None:
        return f"notebook-{notebook[1]}"
    stem = item.callspec.params.get("notebook") if hasattr(item, "callspec") else None
    if item.path.name == "test_same_numbers.py" and stem:
        return f"notebook-{stem}"
    return str(item.path)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session, config, items):
    groups: dict[str, list] = {}
    for item in items:
        name = _group(item)
        item.add_marker(pytest.mark.xdist_group(name))
        groups.setdefault(name, []).append(item)

    def order_in_group(item):
        notebook = _notebook_of(item)
        if notebook is not None:       # the student copy, then the instructors' copy, then the comparison
            return NOTEBOOK_FOLDERS.index(notebook[0])
        return len(NOTEBOOK_FOLDERS)

    # The longest groups first (the website's build, which executes every student notebook, and
    # the browser tests), then the notebooks, the slowest (latest in the course) first, so two
    # workers finish together; within a group the sort is stable, so each notebook's cells keep their order.
    def slowest_first(name):
        number = name[len("notebook-"):][:2]
        if name.startswith("notebook-") and number.isdigit():
            return (1, -int(number))
        heavy = next((i for i, stem in enumerate(HEAVY_FILES) if name.endswith(stem)), None)
        return (0, heavy) if heavy is not None else (2, 0)

    names = sorted(groups, key=slowest_first)
    items[:] = [item for name in names for item in sorted(groups[name], key=order_in_group)]
    if getattr(config.option, "loadgroup", False):
        _name_groups_in_node_ids(items)


def _name_groups_in_node_ids(items) -> None:
    """Append ``@group`` to each node id, which is what ``--dist loadgroup`` schedules by.

    pytest-xdist 3.8 does this itself by setting ``item._nodeid``, which pytest 9.2 no longer
    reads (node ids live in ``item._id``): without this, every notebook cell would be a group of
    its own and a notebook's cells would run in two kernels at once.
    """
    from _pytest.nodeid import NodeId

    for item in items:
        mark = item.get_closest_marker("xdist_group")
        if mark is not None and "@" not in item.nodeid:
            item._id = NodeId.parse(f"{item.nodeid}@{mark.args[0]}")


def pytest_configure(config):
    config.notebook_outputs = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    yield
    notebook = _notebook_of(item)
    if notebook is not None and call.when == "call" and getattr(item, "test_outputs", None) is not None:
        cells = item.config.notebook_outputs.setdefault(notebook, {})
        cells[item.cell.get("id") or f"cell-{item.cell_num}"] = {
            "source": item.cell.source, "outputs": list(item.test_outputs)}
