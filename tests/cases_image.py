"""Contract cases for the image layers and the invertible residual block (see flowcheck.py).

Flattened sizes stay at most 48 so that the brute-force Jacobians stay cheap.
"""

import torch
import torch.nn.functional as F

from flowcheck import FlowCase, whole_layer

from course_utils.flows import GLOW_MIXINGS, ActNorm, FlowSequential, glow
from course_utils.flows.emerging import EmergingConv
from course_utils.flows.glow import (AdditiveCouplingImage, AffineCouplingImage, FactorOut, InvConv1x1, Logit,
                                     Squeeze, Unsqueeze)
from course_utils.flows.iresnet import InvertibleResBlock


def image_coupling_order(layer, sample_shape):
    """An image coupling is lower triangular with the kept entries first, then the transformed."""
    c, h, w = sample_shape
    kept = layer.binary_mask(h, w, dtype=torch.float64).expand(1, c, h, w).reshape(-1)
    return [(whole_layer(layer, sample_shape), torch.argsort(1 - kept, stable=True))]


def raster_order(c, h, w):
    """Flat indices of a (c, h, w) sample in raster order: by row, then column, then channel."""
    return torch.arange(c * h * w).view(c, h, w).permute(1, 2, 0).reshape(-1)


def emerging_orders(layer, sample_shape):
    """An emerging convolution is two maps: the first lower triangular in raster order, the
    second lower triangular in reversed raster order (upper in raster order)."""
    c, h, w = sample_shape
    W1, W2 = layer.masked_weights()
    p = layer.kernel_size // 2

    def conv(W, bias):
        return lambda v: F.conv2d(v.view(1, c, h, w), W, bias, padding=p).reshape(-1)

    order = raster_order(c, h, w)
    return [(conv(W1.detach(), layer.bias1.detach()), order), (conv(W2.detach(), layer.bias2.detach()), order.flip(0))]


CASES = [
    FlowCase("Squeeze", lambda: Squeeze(), (3, 2, 4, 4), extra={"any_channels": True}),
    FlowCase("InvConv1x1-lu", lambda: InvConv1x1(3, lu=True), (3, 3, 4, 4)),
    FlowCase("InvConv1x1-plain", lambda: InvConv1x1(3, lu=False), (3, 3, 4, 4)),
    FlowCase("EmergingConv-k3", lambda: EmergingConv(2, kernel_size=3), (3, 2, 4, 4), triangular=emerging_orders),
    FlowCase("EmergingConv-k5-3ch", lambda: EmergingConv(3, kernel_size=5), (2, 3, 3, 4), triangular=emerging_orders),
    FlowCase("InvertibleResBlock-exact-lipswish",
             lambda: InvertibleResBlock(4, hidden=16, log_det_method="exact"), (6, 4), inverse_atol=1e-8),
    FlowCase("InvertibleResBlock-exact-elu",
             lambda: InvertibleResBlock(3, hidden=16, log_det_method="exact", activation="elu"), (6, 3), inverse_atol=1e-8),
    FlowCase("InvertibleResBlock-exact-power-iteration",
             lambda: InvertibleResBlock(4, hidden=16, log_det_method="exact", n_power_iterations=5), (6, 4), inverse_atol=1e-8),
]
CASES += [
    FlowCase("Unsqueeze", lambda: Unsqueeze(), (3, 8, 2, 2), extra={"any_channels": True}),
    FlowCase("Logit", lambda: Logit(0.05), (3, 2, 3, 3), domain=torch.sigmoid, extra={"any_channels": True}),
    FlowCase("FactorOut-learned-prior", lambda: FactorOut(FlowSequential(ActNorm(2)), 4), (3, 4, 2, 2)),
    FlowCase("FactorOut-plain", lambda: FactorOut(FlowSequential(ActNorm(1)), 3, learned_prior=False),
             (3, 3, 2, 2)),
    FlowCase("FactorOut-inner-level",
             lambda: FactorOut(FlowSequential(Squeeze(), ActNorm(8), InvConv1x1(8), Unsqueeze()), 4, hidden=8),
             (2, 4, 2, 2)),
]
# The whole multi-scale Glow, each channel mixing, on 1 x 4 x 4 images in (0, 1)
for mixing in GLOW_MIXINGS:
    CASES.append(FlowCase(f"glow-{mixing}",
                          lambda mixing=mixing: glow((1, 4, 4), levels=2, steps_per_level=1, hidden=8,
                                                     mixing=mixing).flow,
                          (2, 1, 4, 4), domain=torch.sigmoid, train_steps=15))

for cls in (AffineCouplingImage, AdditiveCouplingImage):
    for mask in ("checkerboard", "channel"):
        for flip in (False, True):
            CASES.append(FlowCase(
                f"{cls.__name__}-{mask}-{'flip' if flip else 'noflip'}",
                lambda cls=cls, mask=mask, flip=flip: cls(2, mask=mask, hidden=8, flip=flip),
                (3, 2, 4, 4), triangular=image_coupling_order,
            ))
