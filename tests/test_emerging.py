"""What only the emerging convolution has (the flow contract is in test_flows_contract.py; the
masks, triangularity and exact inverse in test_flows_image.py): its log-det read off the centre
taps, the one-pixel substitution step, the wavefront schedule of the inverse."""

import pytest
import torch
import torch.nn.functional as F

from course_utils.flows.emerging import (SCHEDULES, EmergingConv, emerging_log_det, emerging_mask,
                                         masked_conv_inverse, solve_pixel, wavefront_steps)
from flowcheck import autograd_jacobian, perturb


def masked_kernel(c, k, flip=False, seed=0, std=0.3):
    gen = torch.Generator().manual_seed(seed)
    p = k // 2
    W = std * torch.randn(c, c, k, k, generator=gen, dtype=torch.float64)
    W[:, :, p, p] += torch.eye(c, dtype=torch.float64) * torch.tensor([1.5, -0.8, 1.2, 0.9][:c], dtype=torch.float64)
    return W * emerging_mask(c, k, flip=flip).double()


def reads(c, k, flip=False):
    """Offsets (da, db) of the pixels a masked kernel reads, from the mask itself."""
    m = emerging_mask(c, k, flip=flip)
    p = k // 2
    return [(a - p, b - p) for a in range(k) for b in range(k) if (a, b) != (p, p) and m[:, :, a, b].any()]


@pytest.mark.parametrize("c,k,h,w", [(2, 3, 3, 4), (1, 3, 4, 2), (3, 5, 3, 3)])
def test_log_det_from_the_centre_taps_is_slogdet_of_the_jacobian(float64, c, k, h, w):
    W1, W2 = masked_kernel(c, k, seed=1), masked_kernel(c, k, flip=True, seed=2)
    p = k // 2
    f = lambda v: F.conv2d(F.conv2d(v[None], W1, padding=p), W2, padding=p)[0]
    J = torch.autograd.functional.jacobian(f, torch.randn(c, h, w)).reshape(c * h * w, c * h * w)
    assert torch.allclose(emerging_log_det(W1, W2, h, w), torch.linalg.slogdet(J).logabsdet, atol=1e-10)


def test_layer_log_det_is_emerging_log_det(float64):
    layer = perturb(EmergingConv(3), 0.2)
    W1, W2 = layer.masked_weights()
    _, log_det = layer(torch.randn(2, 3, 5, 4))
    assert torch.equal(log_det, emerging_log_det(W1, W2, 5, 4).expand(2))


@pytest.mark.parametrize("upper", [False, True])
def test_solve_pixel_reads_only_solved_pixels(float64, upper):
    c, k, h, w = 3, 3, 4, 5
    W = masked_kernel(c, k, flip=upper, seed=3)
    bias = torch.randn(c)
    x = torch.randn(2, c, h, w)
    y = F.conv2d(x, W, bias, padding=1)
    order = [(i, j) for i in range(h) for j in range(w)]
    if upper:
        order = order[::-1]
    for n, (i, j) in enumerate(order):
        partial = x.clone()
        for (a, b) in order[n:]:                 # this pixel and all later ones: not solved yet
            partial[:, :, a, b] = 1e3 * torch.randn(2, c)
        got = solve_pixel(y, partial, W, bias, i, j, upper=upper)
        assert got.shape == (2, c)
        assert torch.allclose(got, x[:, :, i, j], atol=1e-9), (i, j)


@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("flip", [False, True])
def test_wavefront_steps_come_after_every_pixel_read(k, flip):
    h, w = 6, 7
    t = wavefront_steps(h, w, k)
    if flip:
        t = t.max() - t                          # the flipped mask runs the steps backwards
    for i in range(h):
        for j in range(w):
            for da, db in reads(1, k, flip):
                a, b = i + da, j + db
                if 0 <= a < h and 0 <= b < w:
                    assert t[a, b] < t[i, j], ((i, j), (a, b))
    assert len(torch.unique(t)) == (k // 2 + 1) * (h - 1) + w


def test_wavefront_is_the_longest_chain_of_dependencies():
    """For k = 3 and w >= 2 no schedule has fewer steps: the depth of the dependency graph."""
    h, w = 5, 6
    depth = torch.zeros(h, w, dtype=torch.long)
    for i in range(h):
        for j in range(w):
            prev = [depth[i + da, j + db] for da, db in reads(1, 3) if 0 <= i + da < h and 0 <= j + db < w]
            depth[i, j] = 1 + max(prev) if prev else 0
    assert torch.equal(depth, wavefront_steps(h, w, 3))


@pytest.mark.parametrize("upper", [False, True])
@pytest.mark.parametrize("c,k,h,w", [(2, 3, 5, 7), (3, 5, 6, 4), (1, 3, 1, 5)])
def test_both_schedules_invert_a_masked_convolution(float64, upper, c, k, h, w):
    W = masked_kernel(c, k, flip=upper, seed=4)
    bias = torch.randn(c)
    x = torch.randn(3, c, h, w)
    y = F.conv2d(x, W, bias, padding=k // 2)
    for schedule in SCHEDULES:
        assert (masked_conv_inverse(y, W, bias, upper=upper, schedule=schedule) - x).abs().max() < 1e-10


def test_wavefront_inverse_has_the_inverse_jacobian(float64):
    layer = perturb(EmergingConv(2, schedule="wavefront"), 0.1)
    y = torch.randn(2, 3, 4)
    x = layer.inverse(y[None])[0][0]
    J_inv = autograd_jacobian(layer.inverse, y)
    J = autograd_jacobian(layer, x)
    assert torch.allclose(J_inv @ J, torch.eye(24, dtype=torch.float64), atol=1e-9)


def test_schedule_is_an_attribute_and_both_agree(float64):
    layer = perturb(EmergingConv(3), 0.1)
    y = torch.randn(2, 3, 6, 6)
    x_raster = layer.inverse(y)[0]
    layer.schedule = "wavefront"
    assert (layer.inverse(y)[0] - x_raster).abs().max() < 1e-12


def test_schedule_errors():
    with pytest.raises(ValueError, match="schedule must be one of"):
        EmergingConv(2, schedule="parallel")
    with pytest.raises(ValueError, match="schedule must be one of"):
        masked_conv_inverse(torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 3, 3), schedule="parallel")
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        wavefront_steps(3, 3, 2)
