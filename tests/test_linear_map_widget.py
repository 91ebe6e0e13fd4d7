"""The unit-square demo of notebook 01: its picture states det A and the image's area."""

import pytest
import torch

from course_utils import widgets


@pytest.mark.parametrize("A,det", [([[2.0, 0.0], [0.0, 0.5]], 1.0), ([[0.0, 1.0], [1.0, 0.0]], -1.0),
                                   ([[1.0, 2.0], [0.5, 1.0]], 0.0), ([[3.0, 2.0], [0.0, 2.0]], 6.0)])
def test_title_states_det_and_area(A, det):
    ax = widgets.draw_linear_map(A)
    assert ax.get_title() == f"det A = {det:.3f},  |det A| = area = {abs(det):.3f}"


def test_wrong_shape_is_refused():
    with pytest.raises(ValueError, match="2x2"):
        widgets.draw_linear_map(torch.eye(3))


def test_widget_has_four_sliders():
    w = widgets.linear_map_widget()
    assert [c.description for c in w.children[:4]] == ["a", "b", "c", "d"]
