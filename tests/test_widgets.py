"""The 1-D change-of-variables demo of notebook 02 (``draw_change_of_variables`` and its widget).

The formula is checked against independent routes: closed-form distributions, autograd
derivatives of the inverse map, numerical integration, and the drawn Monte Carlo histogram.
"""

import math

import matplotlib.pyplot as plt
import pytest
import torch

from course_utils import widgets

MAPS = list(widgets.MONOTONE_MAPS)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.mark.parametrize("a", [1.0, -1.5, 0.4])
def test_closed_forms(a):
    x = torch.tensor([0.2, 0.9, 1.7, 4.0], dtype=torch.float64)
    lognormal = torch.distributions.LogNormal(torch.tensor(0.0, dtype=torch.float64), abs(a))
    assert torch.allclose(widgets.change_of_variables_log_density("exp", a, x), lognormal.log_prob(x))
    normal = torch.distributions.Normal(torch.tensor(1.0, dtype=torch.float64), abs(a))
    assert torch.allclose(widgets.change_of_variables_log_density("affine", a, x), normal.log_prob(x))


@pytest.mark.parametrize("name", MAPS)
@pytest.mark.parametrize("a", [1.3, -0.7])
def test_formula_matches_autograd_of_the_inverse(name, a):
    f, f_inv, _, _ = widgets.MONOTONE_MAPS[name]
    x = f(torch.linspace(-2.0, 2.0, 9, dtype=torch.float64), a)
    dinv = torch.func.vmap(torch.func.grad(lambda v: f_inv(v, a)))(x)
    z = f_inv(x, a)
    expected = -0.5 * z**2 - 0.5 * math.log(2 * math.pi) + dinv.abs().log()
    assert torch.allclose(widgets.change_of_variables_log_density(name, a, x), expected)


@pytest.mark.parametrize("name", MAPS)
def test_density_integrates_to_one(name):
    """Integrate over z instead of x (substituting x = f(z) keeps the tails finite)."""
    f, _, _, _ = widgets.MONOTONE_MAPS[name]
    a = 0.8
    z = torch.linspace(-8, 8, 20_001, dtype=torch.float64)
    x = f(z, a)
    p = widgets.change_of_variables_log_density(name, a, x).exp()
    mass = torch.trapezoid(p, x).abs().item()
    assert mass == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("name,a", [("sinh", 1.0), ("tanh", -1.5), ("exp", 0.7), ("sigmoid", 2.0)])
def test_drawn_histogram_follows_the_drawn_formula(name, a):
    n = 400_000                       # enough samples to see a 2% error in the normalisation
    ax_z, ax_f, ax_x = widgets.draw_change_of_variables(name, a, n=n, bins=40)
    assert ax_x.get_title() and ax_f.get_title().endswith(f"a = {a:g}")
    # the drawn curve is the formula
    curve = ax_x.get_lines()[0]
    xs = torch.as_tensor(curve.get_xdata(), dtype=torch.float64)
    ok = torch.isfinite(torch.as_tensor(curve.get_ydata()))
    assert torch.allclose(torch.as_tensor(curve.get_ydata())[ok],
                          widgets.change_of_variables_log_density(name, a, xs[ok]).exp())
    # each histogram bar matches the formula's average over the bar (a fine trapezoid rule)
    bars = list(ax_x.containers[0])
    assert len(bars) == 40
    tallest = max(b.get_height() for b in bars)
    for bar in bars:
        lo, hi = bar.get_x(), bar.get_x() + bar.get_width()
        t = torch.linspace(lo, hi, 201, dtype=torch.float64)
        p = widgets.change_of_variables_log_density(name, a, t).exp().nan_to_num(0.0)   # 0 outside the image
        mean = torch.trapezoid(p, t).item() / (hi - lo)
        count = mean * (hi - lo) * n
        # Monte Carlo: within 4 standard errors (sqrt(count)), plus a little slack
        assert abs(bar.get_height() - mean) <= 4 * math.sqrt(count) / (n * (hi - lo)) + 0.003 * tallest


def test_the_strip_keeps_its_mass():
    axes = widgets.draw_change_of_variables("sinh", 1.0, n=100_000)
    z_label = [t.get_text() for t in axes[0].get_legend().get_texts() if t.get_text().startswith("mass")][0]
    x_label = [t.get_text() for t in axes[2].get_legend().get_texts() if t.get_text().startswith("mass")][0]
    z_mass, x_mass = float(z_label.split()[1]), float(x_label.split()[1])
    assert z_mass == pytest.approx(0.1499, abs=1e-3)
    assert x_mass == pytest.approx(z_mass, abs=0.005)


@pytest.mark.parametrize("call", [lambda: widgets.draw_change_of_variables("cube", 1.0),
                                  lambda: widgets.change_of_variables_log_density("cube", 1.0, torch.ones(1))])
def test_unknown_map_is_refused(call):
    with pytest.raises(ValueError, match="unknown map"):
        call()


def test_zero_parameter_is_refused():
    with pytest.raises(ValueError, match="not invertible"):
        widgets.draw_change_of_variables("affine", 0.0)


def test_widget_has_a_menu_and_a_slider():
    w = widgets.change_of_variables_widget("tanh", a=1.5)
    menu, slider = w.children[:2]
    assert menu.description == "map" and list(menu.options) == MAPS and menu.value == "tanh"
    assert slider.description == "a" and slider.value == 1.5
