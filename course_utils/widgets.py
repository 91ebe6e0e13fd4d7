"""Interactive demos (ipywidgets). Each has a plain function that draws one state, so the
same picture appears in a static export and is testable without a browser."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import torch

from .flows.base import standard_normal_log_prob
from .linalg import polygon_area

__all__ = ["draw_linear_map", "linear_map_widget", "MONOTONE_MAPS", "change_of_variables_log_density",
           "draw_change_of_variables", "change_of_variables_widget",
           "fit_siren_1d", "draw_siren_omega", "siren_omega_widget"]

UNIT_SQUARE = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])


def draw_linear_map(A, ax=None, limit: float = 3.0):
    """The unit square and its image under the 2x2 matrix ``A``, with areas and det A.

        area(A S) = |det A| area(S),   S = the unit square (area 1)

    When det A < 0 the orientation flips (the red arrow shows where the first edge went).

    Args:
        A: a 2x2 matrix (nested lists, an array or a tensor).
        ax: the Axes to draw on; ``None`` makes a new figure.
        limit: both axes span ``[-limit, limit]``.

    Example:
        >>> ax = draw_linear_map([[2.0, 0.0], [0.0, -1.0]])
        >>> ax.get_title()
        'det A = -2.000,  |det A| = area = 2.000'
        >>> plt.close(ax.figure)
    """
    A = torch.as_tensor(A, dtype=torch.float64)
    if A.shape != (2, 2):
        raise ValueError(f"draw_linear_map needs a 2x2 matrix, got shape {tuple(A.shape)}")
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.5))
    square = UNIT_SQUARE.to(torch.float64)
    image = square @ A.T
    det = torch.det(A).item()
    det = 0.0 if abs(det) < 1e-12 else det  # no "-0.000" in the title
    area = abs(polygon_area(image).item())
    ax.fill(square[:, 0], square[:, 1], color="0.85", label="unit square (area 1)")
    ax.fill(image[:, 0], image[:, 1], color="tab:blue", alpha=0.5,
            label=f"image (area {area:.3f})")
    for shape, colour in ((square, "0.4"), (image, "tab:blue")):
        ax.annotate("", xy=shape[1].tolist(), xytext=shape[0].tolist(),
                    arrowprops=dict(arrowstyle="->", color="tab:red", lw=2))
        ax.annotate("", xy=shape[3].tolist(), xytext=shape[0].tolist(),
                    arrowprops=dict(arrowstyle="->", color="tab:green", lw=2))
    ax.set(xlim=(-limit, limit), ylim=(-limit, limit), aspect="equal", xlabel="$x_1$", ylabel="$x_2$",
           title=f"det A = {det:.3f},  |det A| = area = {area:.3f}")
    ax.axhline(0, color="0.7", lw=0.5)
    ax.axvline(0, color="0.7", lw=0.5)
    ax.legend(loc="lower left", fontsize=8)
    return ax


def linear_map_widget(a: float = 1.0, b: float = 0.5, c: float = 0.0, d: float = 1.0):
    """Sliders for the entries of A = [[a, b], [c, d]]; redraws :func:`draw_linear_map`.

    Args:
        a, b, c, d: the sliders' starting values, each in [-2, 2].

    Example:
        >>> from contextlib import redirect_stdout; from io import StringIO
        >>> with redirect_stdout(StringIO()):   # outside Jupyter, a widget prints terminal codes
        ...     w = linear_map_widget()
        >>> type(w).__name__, [s.description for s in w.children[:4]]
        ('interactive', ['a', 'b', 'c', 'd'])
        >>> plt.close("all")
    """
    import ipywidgets as widgets

    def slider(value, name):
        return widgets.FloatSlider(value=value, min=-2.0, max=2.0, step=0.05, description=name,
                                   continuous_update=False)

    def show(a, b, c, d):
        draw_linear_map([[a, b], [c, d]])
        plt.show()

    return widgets.interactive(show, a=slider(a, "a"), b=slider(b, "b"), c=slider(c, "c"), d=slider(d, "d"))


# ----------------------------------------------------------------------------------------------
# Notebook 02: a 1-D change of variables, X = f(Z) with Z ~ N(0, 1)
# ----------------------------------------------------------------------------------------------

#: name -> (f(z, a), f^{-1}(x, a), log|d f^{-1}/dx|(x, a), formula shown in the title).
#: Every map is strictly monotone for a != 0: increasing for a > 0, decreasing for a < 0.
MONOTONE_MAPS = {
    "affine": (lambda z, a: a * z + 1.0,
               lambda x, a: (x - 1.0) / a,
               lambda x, a: torch.full_like(x, -math.log(abs(a))),
               r"x = a z + 1"),
    "exp": (lambda z, a: torch.exp(a * z),
            lambda x, a: torch.log(x) / a,
            lambda x, a: -torch.log(torch.abs(a * x)),
            r"x = e^{a z}"),
    "sinh": (lambda z, a: torch.sinh(a * z),
             lambda x, a: torch.asinh(x) / a,
             lambda x, a: -0.5 * torch.log1p(x**2) - math.log(abs(a)),
             r"x = \sinh(a z)"),
    "tanh": (lambda z, a: torch.tanh(a * z),
             lambda x, a: torch.atanh(x) / a,
             lambda x, a: -torch.log1p(-x**2) - math.log(abs(a)),
             r"x = \tanh(a z)"),
    "sigmoid": (lambda z, a: torch.sigmoid(a * z),
                lambda x, a: torch.logit(x) / a,
                lambda x, a: -torch.log(x) - torch.log1p(-x) - math.log(abs(a)),
                r"x = \sigma(a z)"),
}

_IMAGE = {"exp": (0.0, math.inf), "tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}   # where x can be


def change_of_variables_log_density(name: str, a: float, x: torch.Tensor) -> torch.Tensor:
    """The log-density of X = f(Z), Z ~ N(0, 1), for a monotone map of :data:`MONOTONE_MAPS`.

        log p_X(x) = log p_Z(f^{-1}(x)) + log|d f^{-1}(x)/dx|

    ``x`` must lie in the image of f (e.g. x > 0 for ``exp``); outside it the result is NaN, and
    on its edge (x = 0 for ``exp``) it is ``-inf``, the limit.

    Args:
        name: the map, a key of ``MONOTONE_MAPS`` (``affine``, ``exp``, ``sinh``, ``tanh``, ``sigmoid``).
        a: the map's parameter, not 0.
        x: points in the image of f.

    Example:
        >>> x = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
        >>> torch.allclose(change_of_variables_log_density("exp", 1.0, x),
        ...                torch.distributions.LogNormal(0.0, 1.0).log_prob(x))
        True
    """
    if name not in MONOTONE_MAPS:
        raise ValueError(f"unknown map {name!r}; choose one of {', '.join(MONOTONE_MAPS)}")
    if a == 0:
        raise ValueError("a = 0 squashes every z to one point: the map is not invertible")
    _, f_inv, log_abs_dinv, _ = MONOTONE_MAPS[name]
    z = f_inv(x, a)
    log_pz = standard_normal_log_prob(z, event_dims=0)
    log_p = log_pz + log_abs_dinv(x, a)
    # at the edge of the image (x = 0 for exp, x = +-1 for tanh, ...) z is infinite and the
    # density's limit is 0, while -inf + inf would give NaN
    return torch.where(torch.isinf(z), torch.full_like(log_p, -math.inf), log_p)


def draw_change_of_variables(name: str = "sinh", a: float = 1.0, n: int = 50_000, bins: int = 80,
                             seed: int = 0, axes=None):
    """Push ``n`` samples of Z ~ N(0, 1) through the monotone map ``name`` with parameter ``a``.

    Three panels: the density of Z with its samples' histogram; the map x = f(z); the histogram
    of x = f(z) with the formula ``p_Z(f^{-1}(x)) |d f^{-1}/dx|`` on top. A shaded strip
    [z0, z1] on the left and its image [f(z0), f(z1)] on the right carry the same probability
    mass (printed in the legend): that is the change of variables theorem.
    Returns the three Axes.

        P(z0 <= Z <= z1) = P(f(z0) <= X <= f(z1)),   p_X(x) = p_Z(f^{-1}(x)) |d f^{-1}(x)/dx|

    Args:
        name: the map, a key of ``MONOTONE_MAPS``.
        a: the map's parameter, not 0.
        n: the number of samples of Z (drawn from a generator seeded with ``seed``).
        bins: histogram bins.
        axes: three Axes to draw on; ``None`` makes a new figure.

    Example:
        >>> ax_z, ax_f, ax_x = draw_change_of_variables("exp", 0.5, n=2000)
        >>> ax_f.get_title(), ax_x.get_xlabel()
        ('the map $x = e^{a z}$, a = 0.5', '$x$')
        >>> plt.close("all")
    """
    if name not in MONOTONE_MAPS:
        raise ValueError(f"unknown map {name!r}; choose one of {', '.join(MONOTONE_MAPS)}")
    if a == 0:
        raise ValueError("a = 0 squashes every z to one point: the map is not invertible")
    f, _, _, formula = MONOTONE_MAPS[name]
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, generator=gen, dtype=torch.float64)
    x = f(z, a)
    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(13, 3.6), layout="constrained")
    ax_z, ax_f, ax_x = axes
    normal = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), 1.0)
    zs = torch.linspace(-4, 4, 400, dtype=torch.float64)
    z0, z1 = 0.5, 1.0                                     # the strip whose mass we follow
    mass = (normal.cdf(torch.tensor(z1)) - normal.cdf(torch.tensor(z0))).item()

    ax_z.hist(z.numpy(), bins=bins, range=(-4, 4), weights=torch.full((n,), bins / (n * 8.0)).numpy(),
              color="0.75", label="samples of Z")
    ax_z.plot(zs, normal.log_prob(zs).exp(), color="C0", lw=2, label=r"$p_Z(z)$")
    ax_z.axvspan(z0, z1, color="C1", alpha=0.35, label=f"mass {mass:.3f}")
    ax_z.set(xlabel="$z$", ylabel="density", title=r"$Z \sim \mathcal{N}(0, 1)$")
    ax_z.legend(fontsize=7, loc="upper left")

    ax_f.plot(zs, f(zs, a), color="C2", lw=2)
    ax_f.axvspan(z0, z1, color="C1", alpha=0.35)
    ax_f.axhspan(*sorted((f(torch.tensor(z0), a).item(), f(torch.tensor(z1), a).item())), color="C1", alpha=0.35)

    top = 0.95 if name == "exp" else 0.995                 # exp(a z) has a long right tail
    lo, hi = torch.quantile(x[:20_000], torch.tensor([0.005, top], dtype=torch.float64)).tolist()
    pad = 0.05 * (hi - lo)
    lo, hi = max(lo - pad, _IMAGE.get(name, (-math.inf,))[0]), min(hi + pad, _IMAGE.get(name, (0, math.inf))[1])
    # normalise by all n samples (not only those inside the plotted range, as density=True would)
    ax_x.hist(x.numpy(), bins=bins, range=(lo, hi), weights=torch.full((n,), bins / (n * (hi - lo))).numpy(),
              color="0.75", label="histogram of f(Z)")
    xs = torch.linspace(lo, hi, 400, dtype=torch.float64)
    with torch.no_grad():
        dens = change_of_variables_log_density(name, a, xs).exp()
    ax_x.plot(xs, dens, color="C0", lw=2, label=r"$p_Z(f^{-1}(x))\,|df^{-1}/dx|$")
    x0, x1 = sorted((f(torch.tensor(z0), a).item(), f(torch.tensor(z1), a).item()))
    strip = ((x >= x0) & (x <= x1)).double().mean().item()
    ax_x.axvspan(x0, x1, color="C1", alpha=0.35, label=f"mass {strip:.3f} (samples)")
    ax_x.set(xlim=(lo, hi), xlabel="$x$", ylabel="density", title=r"$X = f(Z)$: histogram and formula")
    ax_x.legend(fontsize=7, loc="best")
    ax_f.set(xlim=(-4, 4), ylim=(lo, hi), xlabel="$z$", ylabel="$x$", title=f"the map ${formula}$, a = {a:g}")
    return axes


def change_of_variables_widget(name: str = "sinh", a: float = 1.0):
    """A menu of monotone maps and a slider for their parameter ``a``; redraws
    :func:`draw_change_of_variables` (the histogram of f(Z) and the formula move together).

    Args:
        name: the map shown first, a key of ``MONOTONE_MAPS``.
        a: the slider's starting value, in [-2, 2].

    Example:
        >>> from contextlib import redirect_stdout; from io import StringIO
        >>> with redirect_stdout(StringIO()):   # outside Jupyter, a widget prints terminal codes
        ...     w = change_of_variables_widget("tanh", 1.0)
        >>> type(w).__name__, w.children[0].value, w.children[1].value
        ('interactive', 'tanh', 1.0)
        >>> plt.close("all")
    """
    import ipywidgets as widgets

    def show(name, a):
        if a == 0:
            print("a = 0 is not invertible: every z goes to the same point. Move the slider.")
            return
        draw_change_of_variables(name, a, n=20_000)
        plt.show()

    menu = widgets.Dropdown(options=list(MONOTONE_MAPS), value=name, description="map")
    slider = widgets.FloatSlider(value=a, min=-2.0, max=2.0, step=0.1, description="a",
                                 continuous_update=False)
    return widgets.interactive(show, name=menu, a=slider)


# ----------------------------------------------------------------------------------------------
# Notebook 10: SIREN's omega_0 as a frequency knob
# ----------------------------------------------------------------------------------------------

#: the omega_0 values the widget offers
OMEGA_CHOICES = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)


def fit_siren_1d(x, y, omega_0: float, hidden: int = 64, hidden_layers: int = 2, steps: int = 300,
                 lr: float = 1e-3, seed: int = 0):
    """Fit a small SIREN with ``first_omega_0 = omega_0`` to 1-D samples by full-batch Adam on the CPU.

        loss = mean_i (Phi(x_i) - y_i)^2,   Phi = Siren(1, hidden, hidden_layers, 1, first_omega_0=omega_0)

    Returns the trained model. Fast (well under a second). The network's initialisation is drawn
    with ``seed``; torch's global random state is left as it was.

    Paper: [7] Sitzmann et al., 2020.

    Args:
        x, y: the samples, shape ``(n,)`` or ``(n, 1)``.
        omega_0: the first layer's frequency factor.
        steps: Adam steps at learning rate ``lr``.

    Example:
        >>> x = torch.linspace(-1, 1, 32)
        >>> y = torch.sin(6 * x)
        >>> mse = lambda m: ((m(x[:, None])[:, 0] - y) ** 2).mean().item()
        >>> mse(fit_siren_1d(x, y, 30.0, steps=30)) < mse(fit_siren_1d(x, y, 30.0, steps=1))
        True
    """
    from .siren import Siren
    from .train import fit

    x = torch.as_tensor(x, dtype=torch.float32).reshape(-1, 1)
    y = torch.as_tensor(y, dtype=torch.float32).reshape(-1, 1)
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    model = Siren(1, hidden, hidden_layers, 1, first_omega_0=omega_0)
    torch.random.set_rng_state(gen_state)
    fit(model, lambda m, batch: ((m(batch[0]) - batch[1]) ** 2).mean(), lambda: (x, y), steps, lr=lr,
        device="cpu", progress=False, amp=False)
    return model


def draw_siren_omega(omega_0: float, x, y, ax=None, steps: int = 300, extent: float = 1.5,
                     n_dense: int = 3000):
    """Fit a 1-D SIREN with ``first_omega_0 = omega_0`` to every other sample of ``(x, y)`` and draw it.

    The samples at even positions train the network; those at odd positions (in between) are held
    out. The curve is drawn on a dense grid over ``[-extent, extent]``, wider than the training range
    (shaded). The title gives the PSNR (range 2) on the training and the held-out samples.
    Returns ``(ax, psnr_train, psnr_held_out)``.

    Paper: [7] Sitzmann et al., 2020.

    Args:
        omega_0: the first layer's frequency factor.
        x, y: at least 4 samples of a 1-D signal, same length.
        steps: training steps of :func:`fit_siren_1d`.
        extent: the drawn curve spans ``[-extent, extent]``.

    Example:
        >>> x = torch.linspace(-1, 1, 64)
        >>> ax, p_train, p_held = draw_siren_omega(30.0, x, torch.sin(6 * x), steps=30)
        >>> ax.get_xlabel(), isinstance(p_train, float), isinstance(p_held, float)
        ('coordinate x', True, True)
        >>> plt.close(ax.figure)
    """
    from .siren import psnr

    x = torch.as_tensor(x, dtype=torch.float32).reshape(-1)
    y = torch.as_tensor(y, dtype=torch.float32).reshape(-1)
    if x.shape != y.shape or len(x) < 4:
        raise ValueError(f"draw_siren_omega needs x and y of the same length >= 4, got {tuple(x.shape)} "
                         f"and {tuple(y.shape)}")
    model = fit_siren_1d(x[0::2], y[0::2], omega_0, steps=steps)
    dense = torch.linspace(-extent, extent, n_dense)
    with torch.no_grad():
        p_train = psnr(model(x[0::2, None])[:, 0], y[0::2])
        p_held = psnr(model(x[1::2, None])[:, 0], y[1::2])
        curve = model(dense[:, None])[:, 0]
    if ax is None:
        _, ax = plt.subplots(figsize=(6.0, 3.2))
    ax.axvspan(float(x.min()), float(x.max()), color="0.92", label="training range")
    ax.plot(dense, curve, color="tab:blue", lw=1.0, label="SIREN")
    ax.plot(x[0::2], y[0::2], ".", color="k", ms=3, label="training samples")
    ax.plot(x[1::2], y[1::2], "x", color="tab:red", ms=3, label="held-out samples")
    ax.set(xlim=(-extent, extent), ylim=(-1.6, 1.6), xlabel="coordinate x", ylabel="value",
           title=f"$\\omega_0$ = {omega_0:g}: train {p_train:.1f} dB, held-out {p_held:.1f} dB")
    ax.legend(loc="lower left", fontsize=7, ncol=2)
    return ax, p_train, p_held


def siren_omega_widget(x, y, omega_0: float = 30.0, steps: int = 300):
    """A slider over ``OMEGA_CHOICES`` for the first layer's omega_0; each move refits the 1-D SIREN
    of :func:`draw_siren_omega` (about a second) and redraws it.

    Paper: [7] Sitzmann et al., 2020.

    Args:
        x, y: the 1-D signal's samples (every other one trains, the rest are held out).
        omega_0: the slider's starting value, one of ``OMEGA_CHOICES``.
        steps: training steps per refit.

    Example:
        >>> x = torch.linspace(-1, 1, 32)
        >>> from contextlib import redirect_stdout; from io import StringIO
        >>> with redirect_stdout(StringIO()):   # outside Jupyter, a widget prints terminal codes
        ...     w = siren_omega_widget(x, torch.sin(6 * x), omega_0=10.0, steps=10)
        >>> type(w).__name__, w.children[0].value
        ('interactive', 10.0)
        >>> plt.close("all")
    """
    import ipywidgets as widgets

    def show(omega_0):
        draw_siren_omega(omega_0, x, y, steps=steps)
        plt.show()

    slider = widgets.SelectionSlider(options=list(OMEGA_CHOICES), value=float(omega_0),
                                     description="omega_0", continuous_update=False)
    return widgets.interactive(show, omega_0=slider)
