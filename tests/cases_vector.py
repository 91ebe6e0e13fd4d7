"""Contract cases for the vector layers (and the normalisation layers on small images).

Each ``make`` is called under float64 default dtype by ``flowcheck.check_layer``.
"""

from course_utils.flows import (ActNorm, AdditiveCoupling, AffineCoupling, BatchNormFlow, DiagonalScaling,
                                FlowSequential, PlanarFlow, Permutation)
import torch

from flowcheck import FlowCase, whole_layer


def coupling_order(layer, sample_shape):
    """A coupling is lower triangular with its conditioning features first (then the transformed)."""
    D = sample_shape[0]
    d = D // 2
    order = list(range(d, D)) + list(range(d)) if layer.flip else list(range(D))
    return [(whole_layer(layer, sample_shape), torch.tensor(order))]


def diagonal(layer, sample_shape):
    """An element-wise map: diagonal in any order."""
    return [(whole_layer(layer, sample_shape), torch.arange(sample_shape[0]))]


def _stack() -> FlowSequential:
    return FlowSequential(
        ActNorm(4),
        AffineCoupling(4, hidden=16),
        Permutation(4, kind="random", seed=1),
        AdditiveCoupling(4, hidden=16, flip=True),
        PlanarFlow(4),
        BatchNormFlow(4),
        AffineCoupling(4, hidden=16, flip=True),
        DiagonalScaling(4),
    )


CASES = [
    FlowCase("additive", lambda: AdditiveCoupling(4, hidden=16), (6, 4), triangular=coupling_order),
    FlowCase("additive_flip", lambda: AdditiveCoupling(4, hidden=16, flip=True), (6, 4), triangular=coupling_order),
    FlowCase("additive_odd", lambda: AdditiveCoupling(5, hidden=16), (6, 5), triangular=coupling_order),
    FlowCase("additive_odd_flip", lambda: AdditiveCoupling(5, hidden=16, flip=True), (6, 5), triangular=coupling_order),
    FlowCase("affine", lambda: AffineCoupling(4, hidden=16), (6, 4), triangular=coupling_order),
    FlowCase("affine_flip", lambda: AffineCoupling(4, hidden=16, flip=True), (6, 4), triangular=coupling_order),
    FlowCase("affine_odd", lambda: AffineCoupling(5, hidden=16), (6, 5), triangular=coupling_order),
    FlowCase("affine_odd_flip", lambda: AffineCoupling(5, hidden=16, flip=True, depth=1), (6, 5), triangular=coupling_order),
    FlowCase("affine_2d", lambda: AffineCoupling(2, hidden=16), (6, 2), triangular=coupling_order),
    FlowCase("diagonal_scaling", lambda: DiagonalScaling(3), (6, 3), triangular=diagonal),
    FlowCase("permutation_reverse", lambda: Permutation(5), (6, 5)),
    FlowCase("permutation_random", lambda: Permutation(7, kind="random", seed=3), (6, 7)),
    FlowCase("planar_2d", lambda: PlanarFlow(2), (8, 2)),
    FlowCase("planar_6d", lambda: PlanarFlow(6), (8, 6)),
    FlowCase("batchnorm_vector", lambda: BatchNormFlow(4), (6, 4), triangular=diagonal),
    FlowCase("batchnorm_vector_no_affine", lambda: BatchNormFlow(3, affine=False), (6, 3)),
    FlowCase("batchnorm_image", lambda: BatchNormFlow(2), (3, 2, 3, 3)),
    FlowCase("actnorm_vector", lambda: ActNorm(4), (6, 4), triangular=diagonal),
    FlowCase("actnorm_image", lambda: ActNorm(3), (3, 3, 2, 3)),
    FlowCase("sequential_mix", _stack, (6, 4)),
]
