"""Tests of course_utils.plot: every function draws on the Agg backend and returns its Axes."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402

from course_utils.data import toy_density  # noqa: E402
from course_utils.plot import (  # noqa: E402
    DENSITY_CMAP,
    IMAGE_CMAP,
    image_grid,
    jacobian_heatmap,
    loss_curve,
    plot_density,
    plot_samples,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


class _GaussianModule(torch.nn.Module):
    """A module with parameters and a log_prob, like a flow model."""

    def __init__(self):
        super().__init__()
        self.mu = torch.nn.Parameter(torch.tensor([1.0, -1.0]))

    def log_prob(self, x):
        assert x.device == self.mu.device and not torch.is_grad_enabled()
        return torch.distributions.Normal(self.mu, 1.0).log_prob(x).sum(-1)


def test_plot_density_distribution_with_samples():
    p = toy_density("8gaussians")
    ax = plot_density(p, samples=p.sample((300,)), title="8 Gaussians", n=50)
    assert isinstance(ax, Axes) and ax.get_title() == "8 Gaussians"
    assert ax.get_xlabel() and ax.get_ylabel()
    img = ax.get_images()[0]
    assert img.get_cmap().name == DENSITY_CMAP
    arr = np.asarray(img.get_array())
    assert arr.shape == (50, 50) and arr.min() >= 0
    # the grid is in x-y order: the density maximum sits near a mixture centre (radius 2.83)
    i, j = np.unravel_index(arr.argmax(), arr.shape)
    xs = np.linspace(-4, 4, 50)
    assert abs(np.hypot(xs[j], xs[i]) - 4 / 1.414) < 0.3
    assert len(ax.collections) == 1  # the samples


def test_plot_density_callable_module_and_existing_axes():
    fig, axes = plt.subplots(1, 3)
    # an asymmetric density: it must not come out transposed
    ax = plot_density(lambda x: -((x[:, 0] - 2) ** 2) - 10 * x[:, 1] ** 2, ax=axes[0], n=41)
    assert ax is axes[0]
    arr = np.asarray(ax.get_images()[0].get_array())
    i, j = np.unravel_index(arr.argmax(), arr.shape)
    xs = np.linspace(-4, 4, 41)
    assert abs(xs[j] - 2) < 0.25 and abs(xs[i]) < 0.25
    assert plot_density(_GaussianModule(), ax=axes[1], n=20, title="module").get_title() == "module"
    ax = plot_density(toy_density("checkerboard"), ax=axes[2], n=20, bounds=((-5, 5), (-4, 4)))
    assert ax.get_images()[0].get_extent() == [-5, 5, -4, 4]
    with pytest.raises(TypeError):
        plot_density(42)


def test_plot_samples():
    torch.manual_seed(0)
    x = toy_density("moons").sample((500,))
    ax = plot_samples(x, title="moons")
    assert isinstance(ax, Axes) and ax.get_title() == "moons" and ax.get_xlim() == (-4, 4)
    ax = plot_samples(x.numpy(), kind="hist", bins=20, title="hist")
    assert ax.get_title() == "hist"
    with pytest.raises(ValueError):
        plot_samples(x, kind="violin")


@pytest.mark.parametrize("shape", [(10, 1, 8, 8), (10, 8, 8), (5, 3, 6, 6)])
def test_image_grid(shape):
    torch.manual_seed(0)
    ax = image_grid(torch.rand(shape), nrow=4, title="grid")
    assert isinstance(ax, Axes) and ax.get_title() == "grid"
    arr = np.asarray(ax.get_images()[0].get_array())
    rows = -(-shape[0] // 4)
    h = shape[-1]
    assert arr.shape[:2] == (rows * (h + 1) + 1, 4 * (h + 1) + 1)
    if len(shape) == 3 or shape[1] == 1:
        assert ax.get_images()[0].get_cmap().name == IMAGE_CMAP


def test_jacobian_heatmap():
    J = torch.tril(torch.randn(5, 5))
    ax = jacobian_heatmap(J, title="triangular")
    assert ax.get_title() == "triangular"
    assert ax.get_xlabel() == "input j" and ax.get_ylabel() == "output i"
    img = ax.get_images()[0]
    assert img.get_cmap().name == "RdBu_r"
    lo, hi = img.get_clim()
    assert lo == -hi and hi == pytest.approx(J.abs().max().item())
    assert len(ax.figure.axes) == 2  # the colour bar
    jacobian_heatmap(torch.zeros(3, 4))  # all zeros still draws


def test_loss_curve():
    losses = list(3.0 + np.exp(-np.arange(200) / 50) + 0.1 * np.random.default_rng(0).standard_normal(200))
    ax = loss_curve(losses, title="NLL", reference=2.833, reference_label="true entropy")
    assert ax.get_title() == "NLL"
    assert len(ax.get_lines()) == 3
    raw, smooth, ref = ax.get_lines()
    assert np.std(np.diff(smooth.get_ydata())) < np.std(np.diff(raw.get_ydata()))
    assert ref.get_ydata()[0] == 2.833
    assert "true entropy" in [t.get_text() for t in ax.get_legend().get_texts()]
    ax = loss_curve(torch.tensor(losses), smooth=10)
    assert len(ax.get_lines()) == 2
    assert len(loss_curve([torch.tensor(1.0), torch.tensor(0.5)]).get_lines()) == 2
