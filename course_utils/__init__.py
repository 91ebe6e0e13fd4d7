"""Companion library of the course *Flow models and implicit networks*.

Modules, one per family of ideas:

- ``course_utils.device``: pick CPU / CUDA / MPS, seeds, an environment report.
- ``course_utils.train``: ``fit``, a training loop that survives Ctrl-C and NaNs.
- ``course_utils.data``: offline data (2-D toy densities, digits, cameraman, audio).
- ``course_utils.plot``: densities, image grids, Jacobian heatmaps, loss curves.
- ``course_utils.flows``: every flow layer of the lecture's table.
- ``course_utils.checks``: the checks behind the notebooks' exercises.

Submodules are imported on demand (``import course_utils.flows``) so that importing
the package stays cheap.
"""

__version__ = "0.1.0"
