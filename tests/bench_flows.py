"""Time every flow layer: forward (with log-det) and inverse, on the CPU and on CUDA if present.

    python tests/bench_flows.py        (or: make bench)

Batches: 1024 two-dimensional points for the vector layers, 64 images of 4 x 8 x 8 for the
image layers. Layers are timed in eval mode without gradients (sampling / evaluation), after
one training-mode pass so that data-dependent initialisations (ActNorm) and running averages
(BatchNormFlow) exist. Prints one Markdown table and writes nothing else. Not a test: the file
name does not start with ``test_``, so pytest does not collect it.
"""

from __future__ import annotations

import statistics
import time
import warnings

import torch

import course_utils.flows as flows
from course_utils.flows.emerging import EmergingConv
from course_utils.flows.glow import AdditiveCouplingImage, AffineCouplingImage, InvConv1x1, Squeeze
from course_utils.flows.iresnet import InvertibleResBlock

BUDGET_S = 0.25  # time spent per measurement (after a warm-up call)


def vector_layers():
    """(name, factory) for the 2-D layers that exist in ``course_utils.flows``."""
    out = []
    for name in ("AdditiveCoupling", "AffineCoupling", "DiagonalScaling", "PlanarFlow", "BatchNormFlow", "ActNorm"):
        cls = getattr(flows, name, None)
        if cls is not None:
            out.append((name, lambda cls=cls: cls(2)))
    for method in ("exact", "series", "unbiased"):
        out.append((f"InvertibleResBlock ({method})", lambda m=method: InvertibleResBlock(2, log_det_method=m)))
    return out


def image_layers(c):
    out = []
    if hasattr(flows, "ActNorm"):
        out.append(("ActNorm", lambda: flows.ActNorm(c)))
    out += [
        ("InvConv1x1 (LU)", lambda: InvConv1x1(c, lu=True)),
        ("InvConv1x1 (plain)", lambda: InvConv1x1(c, lu=False)),
        ("AffineCouplingImage (checkerboard)", lambda: AffineCouplingImage(c, mask="checkerboard")),
        ("AffineCouplingImage (channel)", lambda: AffineCouplingImage(c, mask="channel")),
        ("AdditiveCouplingImage (checkerboard)", lambda: AdditiveCouplingImage(c, mask="checkerboard")),
        ("EmergingConv (k=3)", lambda: EmergingConv(c, kernel_size=3)),
        ("Squeeze", lambda: Squeeze()),
    ]
    return out


def timed_ms(fn, device) -> float:
    """Median wall time of ``fn()`` in milliseconds over about ``BUDGET_S`` seconds."""
    def once():
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t

    first = once()  # warm-up (also gives the scale)
    reps = max(1, min(50, int(BUDGET_S / max(first, 1e-6))))
    return 1e3 * statistics.median(once() for _ in range(reps))


def bench(name, make, shape, device, rows):
    torch.manual_seed(0)
    layer = make().to(device)
    x = torch.randn(shape, device=device)
    with torch.no_grad():
        layer.train()
        layer(x)  # data-dependent initialisation, running averages
    layer.eval()
    with torch.no_grad():
        y, _ = layer(x)
        forward = timed_ms(lambda: layer(x), device)
        inverse = timed_ms(lambda: layer.inverse(y), device)
    rows.append((name, "x".join(map(str, shape)), device.type, forward, inverse))


def main():
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for device in devices:
            for name, make in vector_layers():
                bench(name, make, (1024, 2), device, rows)
            for name, make in image_layers(4):
                bench(name, make, (64, 4, 8, 8), device, rows)
    print("| layer | input | device | forward ms | inverse ms |")
    print("|---|---|---|---:|---:|")
    for name, shape, dev, fwd, inv in rows:
        print(f"| {name} | {shape} | {dev} | {fwd:.3f} | {inv:.3f} |")


if __name__ == "__main__":
    main()
