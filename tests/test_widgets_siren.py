"""The omega_0 widget's plain draw function (notebook 10): it fits, draws and reports PSNRs."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from course_utils import widgets  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _signal(n=64):
    x = torch.linspace(-1, 1, n)
    return x, torch.sin(3 * x) * 0.8 + 0.1 * torch.sign(x)


def test_draw_siren_omega_draws_and_reports_psnrs():
    x, y = _signal()
    ax, p_train, p_held = widgets.draw_siren_omega(30.0, x, y, steps=150, extent=1.5)
    assert ax.get_xlim() == (-1.5, 1.5)
    assert "30" in ax.get_title() and "dB" in ax.get_title()
    assert len(ax.lines) == 3 and ax.get_xlabel() and ax.get_ylabel()
    assert p_train > 30 and p_held > 15


def test_a_huge_omega_memorises_the_samples_but_not_what_lies_between():
    x, y = _signal(128)
    _, train_30, held_30 = widgets.draw_siren_omega(30.0, x, y, steps=200)
    _, train_1000, held_1000 = widgets.draw_siren_omega(1000.0, x, y, steps=200)
    assert train_1000 > 30 and held_1000 < held_30 - 10


def test_fit_is_reproducible_and_leaves_the_global_generator_alone():
    x, y = _signal(32)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = widgets.fit_siren_1d(x, y, 30.0, steps=5)
    after = torch.rand(1)
    b = widgets.fit_siren_1d(x, y, 30.0, steps=5)
    assert torch.equal(before, after)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_draw_rejects_mismatched_samples():
    with pytest.raises(ValueError, match="same length"):
        widgets.draw_siren_omega(30.0, torch.zeros(8), torch.zeros(7))


def test_widget_builds():
    pytest.importorskip("ipywidgets")
    x, y = _signal(16)
    w = widgets.siren_omega_widget(x, y, omega_0=30.0, steps=5)
    assert w.children[0].value == 30.0
