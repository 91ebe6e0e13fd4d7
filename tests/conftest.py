import os
import sys

# Tests import their shared helpers (flowcheck, case lists) by module name.
sys.path.insert(0, os.path.dirname(__file__))
# Figures never open a window in tests.
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest
import torch

# The tests' tensors are tiny: one thread avoids OpenMP overhead and contention on small
# machines (notebooks, run in their own kernels by nbval, keep torch's default).
torch.set_num_threads(1)


@pytest.fixture
def float64():
    """Run a test in float64 with a fixed seed (brute-force Jacobians need the precision)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    yield
    torch.set_default_dtype(old)


@pytest.fixture(autouse=True)
def _no_run_cut_short_yet(monkeypatch):
    """Each test starts in a kernel-like state where no training run has been cut short."""
    import course_utils.train

    monkeypatch.setattr(course_utils.train, "CUT_SHORT", [])
