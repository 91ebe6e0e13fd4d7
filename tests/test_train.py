"""``fit``: batches, devices, Ctrl-C, non-finite losses, time budgets, history."""

import copy
import math

import pytest
import torch
from torch import nn

from course_utils.device import get_device, seed_everything
from course_utils.train import History, fit, to_device


def regression_problem(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
    x = torch.randn(64, 3)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
    return model, x, y


def mse(model, batch):
    x, y = batch
    return ((model(x) - y) ** 2).mean()


def train_reference(steps, seed=0, lr=1e-2):
    model, x, y = regression_problem(seed)
    fit(model, mse, lambda: (x, y), steps, lr=lr, device="cpu", progress=False)
    return model


def assert_same_weights(a, b):
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), f"{name} differs"


def test_fit_learns_and_records_history():
    model, x, y = regression_problem()
    history = fit(model, mse, lambda: (x, y), 300, lr=1e-2, device="cpu", progress=False)
    assert isinstance(history, History)
    assert history.steps == len(history.losses) == 300
    assert history.losses[-1] < 0.1 * history.losses[0]
    assert history.seconds > 0 and history.stopped == "completed"
    assert "300 steps" in history.summary()


def test_iterable_batches_are_reiterated():
    model, x, y = regression_problem()
    data = [(x[:32], y[:32]), (x[32:], y[32:])]
    history = fit(model, mse, data, 7, device="cpu", progress=False)
    assert history.steps == 7


def test_one_shot_generator_that_runs_out_says_so():
    model, x, y = regression_problem()
    gen = ((x, y) for _ in range(2))
    with pytest.raises(ValueError, match="ran out"):
        fit(model, mse, gen, 5, device="cpu", progress=False)


def test_a_tensor_is_not_a_batch_source():
    model, x, y = regression_problem()
    with pytest.raises(TypeError, match="lambda"):
        fit(model, lambda m, b: m(b).mean(), x, 2, device="cpu", progress=False)


def test_batches_are_moved_to_the_device_recursively():
    batch = {"x": torch.zeros(2), "pair": (torch.ones(1), [torch.ones(1)]), "n": 3}
    moved = to_device(batch, torch.device("cpu"))
    assert moved["n"] == 3 and isinstance(moved["pair"], tuple) and isinstance(moved["pair"][1], list)
    seen = []

    def loss(model, b):
        seen.append(b["x"].device)
        return model(b["x"]).pow(2).mean()

    fit(nn.Linear(2, 1), loss, lambda: {"x": torch.randn(4, 2)}, 2, progress=False)
    assert seen[0].type == get_device().type


@pytest.mark.parametrize("stop_at", [1, 6])
def test_ctrl_c_keeps_the_model_of_the_last_completed_step(stop_at, capsys):
    model, x, y = regression_problem()
    calls = {"n": 0}

    def interrupting(model, batch):
        calls["n"] += 1
        if calls["n"] == stop_at:
            raise KeyboardInterrupt
        return mse(model, batch)

    history = fit(model, interrupting, lambda: (x, y), 50, lr=1e-2, device="cpu", progress=False)
    assert history.stopped == "interrupted"
    assert history.steps == stop_at - 1
    assert "Interrupted" in capsys.readouterr().out
    if stop_at > 1:
        assert_same_weights(model, train_reference(stop_at - 1))
    else:
        assert_same_weights(model, regression_problem()[0])


def test_ctrl_c_during_the_update_undoes_the_partial_step():
    model, x, y = regression_problem()

    class InterruptingAdam(torch.optim.Adam):
        calls = 0

        def step(self, closure=None):
            InterruptingAdam.calls += 1
            super().step(closure)
            if InterruptingAdam.calls == 4:
                raise KeyboardInterrupt  # weights already changed by this step

    opt = InterruptingAdam(model.parameters(), lr=1e-2)
    history = fit(model, mse, lambda: (x, y), 20, optimizer=opt, device="cpu", progress=False)
    assert history.steps == 3
    assert_same_weights(model, train_reference(3))


def test_nan_loss_names_the_step_and_restores_the_last_good_weights():
    model, x, y = regression_problem()
    calls = {"n": 0}

    def poisoned(model, batch):
        calls["n"] += 1
        loss = mse(model, batch)
        return loss * float("nan") if calls["n"] == 5 else loss

    with pytest.raises(FloatingPointError, match=r"step 5\b.*after step 4.*learning rate"):
        fit(model, poisoned, lambda: (x, y), 20, lr=1e-2, device="cpu", progress=False)
    assert_same_weights(model, train_reference(4))


def test_infinite_gradient_is_caught_before_the_update():
    model, x, y = regression_problem()
    calls = {"n": 0}

    def bad_gradient(model, batch):
        calls["n"] += 1
        loss = mse(model, batch)
        if calls["n"] == 3:  # sqrt at 0: finite value, infinite gradient
            loss = loss + torch.sqrt(model[0].weight.sum() * 0)
        return loss

    with pytest.raises(FloatingPointError, match="gradient.*step 3"):
        fit(model, bad_gradient, lambda: (x, y), 10, lr=1e-2, device="cpu", progress=False)
    assert_same_weights(model, train_reference(2))


def test_buffers_changed_by_a_bad_step_are_restored():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    batches = iter([torch.randn(16, 2) for _ in range(3)] + [torch.full((16, 2), float("nan"))])
    fit(model, lambda m, b: m(b).pow(2).mean(), lambda: next(batches), 3, device="cpu", progress=False)
    good = copy.deepcopy(model.state_dict())
    with pytest.raises(FloatingPointError, match="step 1"):
        fit(model, lambda m, b: m(b).pow(2).mean(), lambda: next(batches), 3, device="cpu", progress=False)
    for k, v in model.state_dict().items():
        assert torch.equal(v, good[k]), k


def test_time_cap_is_a_safety_net_that_says_so(capsys, monkeypatch):
    import course_utils.train as train

    monkeypatch.setattr(train, "CUT_SHORT", [])
    model, x, y = regression_problem()

    def slow(model, batch):
        import time
        time.sleep(0.02)
        return mse(model, batch)

    assert train.verdict(True) == "met"
    history = fit(model, slow, lambda: (x, y), 10_000, device="cpu", progress=False, max_seconds=0.2)
    assert history.stopped == "time cap" and not history.comparable
    assert 1 <= history.steps < 100
    out = capsys.readouterr().out
    assert f"Stopped at step {history.steps} of 10000" in out and "will differ from the reference run" in out
    # every verdict printed afterwards says the numbers are not comparable
    assert train.verdict(True).startswith("met [not comparable")
    assert "try: train longer" in train.verdict(False, "train longer")
    assert train.cut_short_runs() == [f"stopped at step {history.steps} of 10000"]


def test_a_cap_that_does_not_fire_changes_nothing(monkeypatch):
    import course_utils.train as train

    monkeypatch.setattr(train, "CUT_SHORT", [])
    runs = []
    for cap in (None, 1e6):
        torch.manual_seed(0)
        model, x, y = regression_problem()
        h = fit(model, mse, lambda: (x, y), 50, device="cpu", progress=False, max_seconds=cap,
                scheduler="cosine", lr=0.05)
        runs.append(h.losses)
        assert h.comparable and h.stopped == "completed" and h.planned == 50
    assert runs[0] == runs[1]
    assert train.verdict(False) == "not met"


def test_grad_clip_bounds_the_update():
    model = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(model.weight)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    fit(model, lambda m, b: 1000 * m(b).sum(), lambda: torch.ones(1, 1), 1, optimizer=opt,
        grad_clip=0.5, device="cpu", progress=False)
    assert model.weight.item() == pytest.approx(-0.5)


def test_callback_records_and_cosine_schedule():
    model, x, y = regression_problem()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    history = fit(model, mse, lambda: (x, y), 20, optimizer=opt, scheduler="cosine", device="cpu",
                  progress=False, callback=lambda step, m, h: step * 10, callback_every=5)
    assert history.records == [(5, 50), (10, 100), (15, 150), (20, 200)]
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-9)


def test_progress_bar_can_be_switched_off(capsys):
    model, x, y = regression_problem()
    fit(model, mse, lambda: (x, y), 3, device="cpu", progress=False)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_history_adds_and_plots():
    import matplotlib

    matplotlib.use("Agg")
    a = History(losses=[3.0, 2.0], seconds=1.0)
    b = History(losses=[1.0], seconds=0.5, records=[(1, "x")])
    both = a + b
    assert both.losses == [3.0, 2.0, 1.0] and both.records == [(3, "x")]
    assert math.isclose(both.seconds, 1.5)
    ax = both.plot(title="loss", reference=0.5)
    assert ax.get_title() == "loss"


def test_bad_arguments_are_refused():
    model, x, y = regression_problem()
    with pytest.raises(ValueError, match="positive"):
        fit(model, mse, lambda: (x, y), 0, progress=False)
    with pytest.raises(TypeError, match="scalar"):
        fit(model, lambda m, b: m(b[0]), lambda: (x, y), 1, device="cpu", progress=False)


def test_device_choice_and_override(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")
    if not torch.cuda.is_available():
        monkeypatch.setenv("COURSE_DEVICE", "cuda")
        with pytest.raises(RuntimeError, match="CUDA"):
            get_device()


def test_seed_everything_repeats():
    seed_everything(3)
    a = torch.randn(3)
    seed_everything(3)
    assert torch.equal(a, torch.randn(3))
