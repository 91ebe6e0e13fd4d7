"""Ctrl-C for real: interrupt a Jupyter kernel while ``fit`` trains, as a student would with the
stop button, and check that training stopped cleanly with the model and history kept."""

import time

import pytest

jupyter_client = pytest.importorskip("jupyter_client")

TRAIN = """
import torch
from torch import nn
from course_utils.train import fit
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 1))
x = torch.linspace(-1, 1, 64)[:, None]
calls = []
def slow_loss(m, b):
    import time; time.sleep(0.01)
    calls.append(1)
    if len(calls) == 20:
        print("training", flush=True)
    return ((m(b) - b ** 2) ** 2).mean()
history = fit(model, slow_loss, lambda: x, 100_000, device="cpu", progress=False)
"""

REPORT = """
with torch.no_grad():
    final = slow_loss(model, x).item()
print(history.stopped, history.steps > 5, len(history.losses) == history.steps,
      all(torch.isfinite(p).all().item() for p in model.parameters()), final < history.losses[0])
"""


def run(kc, code, timeout=60):
    """Execute ``code``; return (status, text printed on stdout)."""
    msg_id = kc.execute(code)
    out, status = [], None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind = msg["msg_type"]
        if kind == "stream":
            out.append(msg["content"]["text"])
        elif kind == "error":
            status = "error"
        elif kind == "status" and msg["content"]["execution_state"] == "idle":
            return status or "ok", "".join(out)
    raise TimeoutError(f"kernel did not finish: {code[:40]!r}")


def test_interrupting_the_kernel_keeps_the_model_and_history():
    km, kc = jupyter_client.manager.start_new_kernel(kernel_name="python3")
    try:
        msg_id = kc.execute(TRAIN)
        out, errored, interrupted = [], False, False
        while True:
            msg = kc.get_iopub_msg(timeout=120)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
                if not interrupted and "training" in msg["content"]["text"]:
                    time.sleep(0.5)  # a few more steps, then the stop button
                    km.interrupt_kernel()
                    interrupted = True
            elif msg["msg_type"] == "error":
                errored = True
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        assert interrupted, "training never started: " + "".join(out)
        text = "".join(out)
        assert not errored, "the interrupt escaped fit as an error"
        assert "Interrupted: kept the model after step" in text, text
        status, report = run(kc, REPORT)
        assert status == "ok", report
        assert report.split() == ["interrupted", "True", "True", "True", "True"], report
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
