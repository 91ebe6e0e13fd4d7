"""Figures used across the course: densities, samples, image grids, Jacobians, loss curves.

One colour map for densities (``DENSITY_CMAP = "viridis"``), one for images
(``IMAGE_CMAP = "gray"``), a diverging one centred on 0 for Jacobians (``"RdBu_r"``). Every
function takes ``ax=None`` (then it creates a laptop-sized figure), draws, and returns the Axes;
nothing calls ``plt.show()``.

Example:
    >>> import matplotlib; matplotlib.use("Agg")      # draw without a screen
    >>> from course_utils.data import toy_density
    >>> from course_utils.plot import plot_density
    >>> ax = plot_density(toy_density("8gaussians"), n=50, title="8 Gaussians")
    >>> ax.get_title()
    '8 Gaussians'
    >>> plt.close(ax.figure)
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes

__all__ = [
    "DENSITY_CMAP",
    "IMAGE_CMAP",
    "JACOBIAN_CMAP",
    "FIGSIZE",
    "plot_density",
    "plot_samples",
    "image_grid",
    "jacobian_heatmap",
    "loss_curve",
]

DENSITY_CMAP = "viridis"
IMAGE_CMAP = "gray"
JACOBIAN_CMAP = "RdBu_r"
#: default size of a single-panel figure (inches), fits a laptop screen
FIGSIZE = (4.5, 4.0)

def _new_ax(ax: Axes | None, figsize: tuple[float, float] = FIGSIZE) -> Axes:
    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _as_1d(values) -> np.ndarray:
    """A tensor, an array, or a list of floats / 0-d tensors as a float64 vector."""
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().double().numpy().reshape(-1)
    if isinstance(values, np.ndarray):
        return values.astype(np.float64).reshape(-1)
    return np.array([float(v) for v in values], dtype=np.float64)


def _split_bounds(bounds) -> tuple[tuple[float, float], tuple[float, float]]:
    """``(lo, hi)`` for both axes, or ``((x_lo, x_hi), (y_lo, y_hi))``."""
    b = tuple(bounds)
    if len(b) == 2 and all(np.ndim(v) == 0 for v in b):
        lo, hi = float(b[0]), float(b[1])
        return (lo, hi), (lo, hi)
    if len(b) == 2 and all(np.ndim(v) == 1 and len(v) == 2 for v in b):
        return (float(b[0][0]), float(b[0][1])), (float(b[1][0]), float(b[1][1]))
    raise ValueError(f"bounds must be (lo, hi) or ((x_lo, x_hi), (y_lo, y_hi)), got {bounds!r}")


def _log_prob_callable(model) -> tuple[Callable[[torch.Tensor], torch.Tensor], torch.device, torch.dtype]:
    """A function of ``(m, 2)`` points, and the device and dtype to evaluate it on."""
    device, dtype = torch.device("cpu"), torch.get_default_dtype()
    if isinstance(model, torch.nn.Module):
        p = next(iter(model.parameters()), None)
        if p is None:
            p = next(iter(model.buffers()), None)
        if p is not None:
            device = p.device
            if p.is_floating_point():
                dtype = p.dtype
    fn = getattr(model, "log_prob", None)
    if callable(fn):
        return fn, device, dtype
    if callable(model):
        return model, device, dtype
    raise TypeError(
        "plot_density needs a callable (m, 2) -> (m,) log-densities or an object with .log_prob, "
        f"got {type(model).__name__}"
    )


def _log_density_grid(model, bounds, n: int, chunk: int = 16384):
    (x_lo, x_hi), (y_lo, y_hi) = _split_bounds(bounds)
    fn, device, dtype = _log_prob_callable(model)
    xs = torch.linspace(x_lo, x_hi, n, dtype=dtype)
    ys = torch.linspace(y_lo, y_hi, n, dtype=dtype)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")  # rows are y, as imshow expects
    pts = torch.stack([gx, gy], dim=-1).reshape(-1, 2)
    outs = []
    with torch.no_grad():
        for c in pts.split(chunk):
            out = torch.as_tensor(fn(c.to(device)))
            outs.append(out.reshape(-1).detach().to("cpu", torch.float64))
    logp = torch.cat(outs).reshape(n, n).numpy()
    return logp, (x_lo, x_hi, y_lo, y_hi)


def _label(ax: Axes, title: str | None, xlabel: str = "$x_1$", ylabel: str = "$x_2$") -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title)


def plot_density(
    log_prob_fn_or_distribution,
    ax: Axes | None = None,
    bounds=(-4.0, 4.0),
    n: int = 200,
    samples: torch.Tensor | np.ndarray | None = None,
    title: str | None = None,
    colorbar: bool = False,
) -> Axes:
    """Heat map of ``exp(log p)`` on an ``n x n`` grid over ``bounds``, samples optionally on top.

        pixel (i, j) = exp(log p(x_j, y_i)),   x_j, y_i on n evenly spaced points of each axis

    Evaluated under ``torch.no_grad()`` in chunks, on the device (and dtype) of a module's
    parameters. Uses the density colour map (``DENSITY_CMAP``).

    Args:
        log_prob_fn_or_distribution: a callable ``(m, 2) -> (m,)`` of log-densities, or anything
            with ``.log_prob`` (a ``torch.distributions.Distribution``, a flow model).
        bounds: ``(lo, hi)`` for both axes or ``((x_lo, x_hi), (y_lo, y_hi))``.
        n: grid points per axis.
        samples: ``(m, 2)`` points drawn on top as white dots.
        colorbar: add a colour bar labelled "density".

    Example:
        >>> from torch.distributions import MultivariateNormal
        >>> gauss = MultivariateNormal(torch.zeros(2), torch.eye(2))
        >>> ax = plot_density(gauss, bounds=(-3, 3), n=40, samples=gauss.sample((100,)),
        ...                   title="standard normal")
        >>> ax.get_title(), ax.images[0].get_array().shape
        ('standard normal', (40, 40))
        >>> plt.close(ax.figure)
    """
    ax = _new_ax(ax)
    logp, extent = _log_density_grid(log_prob_fn_or_distribution, bounds, n)
    dens = np.exp(np.nan_to_num(logp, nan=-np.inf, posinf=np.inf))
    im = ax.imshow(dens, origin="lower", extent=extent, cmap=DENSITY_CMAP, aspect="auto",
                   interpolation="nearest")
    if colorbar:
        ax.figure.colorbar(im, ax=ax, label="density")
    if samples is not None:
        s = _to_numpy(samples).reshape(-1, 2)
        ax.scatter(s[:, 0], s[:, 1], s=1.0, c="white", alpha=0.4, linewidths=0)
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
    _label(ax, title)
    return ax


def plot_samples(
    x: torch.Tensor | np.ndarray,
    ax: Axes | None = None,
    bounds=(-4.0, 4.0),
    title: str | None = None,
    kind: str = "scatter",
    bins: int = 100,
) -> Axes:
    """Samples ``(m, 2)`` as a scatter of small dots or as a 2-D histogram over ``bounds``.

    Args:
        x: the samples, ``(m, 2)``.
        bounds: ``(lo, hi)`` for both axes or ``((x_lo, x_hi), (y_lo, y_hi))``.
        kind: ``"scatter"`` (equal aspect) or ``"hist"`` (``bins`` per axis, density colour map).

    Example:
        >>> ax = plot_samples(torch.randn(500, 2), kind="hist", bins=20, title="samples")
        >>> ax.get_title(), ax.get_xlabel()
        ('samples', '$x_1$')
        >>> plt.close(ax.figure)
    """
    ax = _new_ax(ax)
    s = _to_numpy(x).reshape(-1, 2)
    (x_lo, x_hi), (y_lo, y_hi) = _split_bounds(bounds)
    if kind == "scatter":
        ax.scatter(s[:, 0], s[:, 1], s=2.0, alpha=0.5, linewidths=0)
        ax.set_xlim(x_lo, x_hi)
        ax.set_ylim(y_lo, y_hi)
        ax.set_aspect("equal", adjustable="box")
    elif kind == "hist":
        ax.hist2d(s[:, 0], s[:, 1], bins=bins, range=[[x_lo, x_hi], [y_lo, y_hi]],
                  cmap=DENSITY_CMAP)
    else:
        raise ValueError(f"kind must be 'scatter' or 'hist', got {kind!r}")
    _label(ax, title)
    return ax


def image_grid(
    images: torch.Tensor | np.ndarray,
    nrow: int = 8,
    ax: Axes | None = None,
    title: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    pad: int = 1,
) -> Axes:
    """Show ``(n, c, h, w)`` (c = 1 or 3) or ``(n, h, w)`` images in a grid of ``nrow`` per row.

    Grey images use the ``gray`` colour map with ``vmin``/``vmax`` (default: the data's range);
    colour images are rescaled from ``[vmin, vmax]`` to [0, 1]. Separators are white.

    Args:
        images: ``(n, c, h, w)`` with c in (1, 3), or ``(n, h, w)``.
        nrow: images per row.
        pad: separator width in pixels.

    Example:
        >>> ax = image_grid(torch.rand(10, 1, 8, 8), nrow=5, title="digits")
        >>> ax.get_title(), ax.images[0].get_array().shape     # 2 rows, 5 columns, 1 px apart
        ('digits', (19, 46))
        >>> plt.close(ax.figure)
    """
    x = _to_numpy(images).astype(np.float64)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"image_grid expects (n, h, w) or (n, c, h, w) with c in (1, 3), got {x.shape}")
    n, c, h, w = x.shape
    lo = float(np.nanmin(x)) if vmin is None else vmin
    hi = float(np.nanmax(x)) if vmax is None else vmax
    if hi <= lo:
        hi = lo + 1.0
    cols = max(1, min(nrow, n))
    rows = max(1, math.ceil(n / cols))
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), np.nan)
    for k in range(n):
        r, q = divmod(k, cols)
        top, left = pad + r * (h + pad), pad + q * (w + pad)
        grid[top:top + h, left:left + w] = x[k].transpose(1, 2, 0)
    ax = _new_ax(ax, figsize=(min(8.0, 1.0 + 0.9 * cols), min(8.0, 0.6 + 0.9 * rows)))
    if c == 1:
        cmap = plt.get_cmap(IMAGE_CMAP).with_extremes(bad="white")
        ax.imshow(grid[..., 0], cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
    else:
        rgb = np.clip((grid - lo) / (hi - lo), 0.0, 1.0)
        rgb[np.isnan(grid)] = 1.0
        ax.imshow(rgb, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title)
    return ax


def jacobian_heatmap(J: torch.Tensor | np.ndarray, ax: Axes | None = None, title: str | None = None) -> Axes:
    """Heat map of a Jacobian in a diverging colour map centred on 0, with a colour bar.

        J[i, j] = dy_i / dx_j     (row i: output, column j: input)

    A triangular Jacobian shows as a white triangle.

    Args:
        J: a 2-D matrix (a tensor or an array).

    Example:
        >>> J = torch.tril(torch.randn(4, 4))
        >>> ax = jacobian_heatmap(J, title="coupling Jacobian")
        >>> ax.get_title(), ax.get_xlabel(), ax.get_ylabel()
        ('coupling Jacobian', 'input j', 'output i')
        >>> plt.close(ax.figure)
    """
    a = _to_numpy(J).astype(np.float64)
    if a.ndim != 2:
        raise ValueError(f"jacobian_heatmap expects a 2-D matrix, got shape {a.shape}")
    rows, cols = a.shape
    ax = _new_ax(ax, figsize=(min(8.0, 3.2 + 0.35 * cols), min(6.5, 1.8 + 0.35 * rows)))
    m = float(np.nanmax(np.abs(a))) if a.size else 0.0
    m = m if m > 0 else 1.0
    im = ax.imshow(a, cmap=JACOBIAN_CMAP, vmin=-m, vmax=m, interpolation="nearest")
    ax.figure.colorbar(im, ax=ax, label=r"$\partial y_i / \partial x_j$", shrink=0.85)
    ax.set_xlabel("input j")
    ax.set_ylabel("output i")
    if max(a.shape) <= 16:
        ax.set_xticks(range(a.shape[1]))
        ax.set_yticks(range(a.shape[0]))
    if title is not None:
        ax.set_title(title)
    return ax


def _moving_average(y: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over up to ``window`` points (shorter at the start), same length as ``y``."""
    c = np.cumsum(np.insert(y, 0, 0.0))
    idx = np.arange(1, len(y) + 1)
    start = np.maximum(idx - window, 0)
    return (c[idx] - c[start]) / (idx - start)


def loss_curve(
    losses: Sequence[float] | torch.Tensor | np.ndarray,
    ax: Axes | None = None,
    title: str | None = None,
    smooth: int | None = None,
    reference: float | None = None,
    reference_label: str | None = None,
    ylabel: str = "loss",
) -> Axes:
    """Raw loss (faint) and its trailing moving average, with an optional reference line.

        smoothed[t] = mean(losses[max(0, t - w + 1) : t + 1]),   w = smooth or max(1, len // 25)

    Args:
        losses: one value per step (a list, a tensor or an array).
        smooth: the window ``w`` of the moving average.
        reference: a dashed horizontal line (e.g. the true entropy), labelled ``reference_label``.

    Example:
        >>> ax = loss_curve([3.0, 2.0, 1.5, 1.2], smooth=2, reference=1.0, title="NLL")
        >>> ax.get_title(), [line.get_label() for line in ax.get_lines()]
        ('NLL', ['raw', 'moving average (2)', 'reference 1.000'])
        >>> plt.close(ax.figure)
    """
    y = _as_1d(losses)
    ax = _new_ax(ax, figsize=(5.5, 3.5))
    steps = np.arange(len(y))
    window = max(1, len(y) // 25) if smooth is None else max(1, int(smooth))
    ax.plot(steps, y, color="C0", alpha=0.3, linewidth=0.8, label="raw")
    if len(y):
        ax.plot(steps, _moving_average(y, window), color="C0", linewidth=1.8,
                label=f"moving average ({window})")
    if reference is not None:
        ax.axhline(reference, color="C3", linestyle="--", linewidth=1.2,
                   label=reference_label or f"reference {reference:.3f}")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.legend(loc="upper right", fontsize="small")
    if title is not None:
        ax.set_title(title)
    return ax
