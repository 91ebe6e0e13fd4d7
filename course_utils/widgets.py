"""Interactive demos (ipywidgets). Each has a plain function that draws one state, so the
same picture appears in a static export and is testable without a browser."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from .linalg import polygon_area

__all__ = ["draw_linear_map", "linear_map_widget"]

UNIT_SQUARE = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])


def draw_linear_map(A, ax=None, limit: float = 3.0):
    """The unit square and its image under the 2x2 matrix ``A``, with areas and det A.

    The image's area is |det A|; when det A < 0 the orientation flips (the red corner
    marker shows where the first edge went).
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
    """Sliders for the entries of A = [[a, b], [c, d]]; redraws the unit square's image."""
    import ipywidgets as widgets

    def slider(value, name):
        return widgets.FloatSlider(value=value, min=-2.0, max=2.0, step=0.05, description=name,
                                   continuous_update=False)

    def show(a, b, c, d):
        draw_linear_map([[a, b], [c, d]])
        plt.show()

    return widgets.interactive(show, a=slider(a, "a"), b=slider(b, "b"), c=slider(c, "c"), d=slider(d, "d"))
