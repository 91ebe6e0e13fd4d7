"""Contract cases for the image layers and the invertible residual block (see flowcheck.py).

Flattened sizes stay at most 48 so that the brute-force Jacobians stay cheap.
"""

from flowcheck import FlowCase

from course_utils.flows.emerging import EmergingConv
from course_utils.flows.glow import AdditiveCouplingImage, AffineCouplingImage, InvConv1x1, Squeeze
from course_utils.flows.iresnet import InvertibleResBlock


CASES = [
    FlowCase("Squeeze", lambda: Squeeze(), (3, 2, 4, 4), extra={"any_channels": True}),
    FlowCase("InvConv1x1-lu", lambda: InvConv1x1(3, lu=True), (3, 3, 4, 4)),
    FlowCase("InvConv1x1-plain", lambda: InvConv1x1(3, lu=False), (3, 3, 4, 4)),
    FlowCase("EmergingConv-k3", lambda: EmergingConv(2, kernel_size=3), (3, 2, 4, 4)),
    FlowCase("InvertibleResBlock-exact-lipswish",
             lambda: InvertibleResBlock(4, hidden=16, logdet="exact"), (6, 4), inverse_atol=1e-8),
    FlowCase("InvertibleResBlock-exact-elu",
             lambda: InvertibleResBlock(3, hidden=16, logdet="exact", activation="elu"), (6, 3), inverse_atol=1e-8),
    FlowCase("InvertibleResBlock-exact-power-iteration",
             lambda: InvertibleResBlock(4, hidden=16, logdet="exact", n_power_iterations=5), (6, 4), inverse_atol=1e-8),
]
for cls in (AffineCouplingImage, AdditiveCouplingImage):
    for mask in ("checkerboard", "channel"):
        for flip in (False, True):
            CASES.append(FlowCase(
                f"{cls.__name__}-{mask}-{'flip' if flip else 'noflip'}",
                lambda cls=cls, mask=mask, flip=flip: cls(2, mask=mask, hidden=8, flip=flip),
                (3, 2, 4, 4),
            ))
