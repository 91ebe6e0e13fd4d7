import os
import sys

# Tests import their shared helpers (flowcheck, case lists) by module name.
sys.path.insert(0, os.path.dirname(__file__))
# Figures never open a window in tests.
os.environ.setdefault("MPLBACKEND", "Agg")

import torch

# The tests' tensors are tiny: one thread avoids OpenMP overhead and contention on small
# machines (notebooks, run in their own kernels by nbval, keep torch's default).
torch.set_num_threads(1)
