"""Every flow layer of the lecture's table, with one contract (see ``base.py``):

    y, log_det = layer(x)            data -> latent, log_det[i] = log|det dy_i/dx_i|
    x, log_det_inv = layer.inverse(y)   log_det_inv = -log_det

Vector layers take ``(batch, dim)``, image layers ``(batch, channels, height, width)``.

==========================  ==========================================  =====
module                      layers                                      paper
==========================  ==========================================  =====
``coupling``                AdditiveCoupling, DiagonalScaling           [1]
``planar``                  PlanarFlow                                  [2]
``coupling``                AffineCoupling, Permutation                 [3]
``normalization``           BatchNormFlow [3], ActNorm [4]
``glow``                    InvConv1x1, Squeeze, image couplings        [4]
``iresnet``                 InvertibleResBlock                          [5]
``emerging``                EmergingConv                                [6]
``base``                    FlowSequential, NormalizingFlow
==========================  ==========================================  =====
"""

from .base import FlowLayer, FlowSequential, NormalizingFlow, check_shape, standard_normal
from .coupling import AdditiveCoupling, AffineCoupling, DiagonalScaling, Permutation, mlp, soft_clamp
from .normalization import ActNorm, BatchNormFlow
from .planar import PlanarFlow
from .glow import (AdditiveCouplingImage, AffineCouplingImage, InvConv1x1, Squeeze, channel_mask,
                   check_image_shape, checkerboard_mask)
from .iresnet import InvertibleResBlock, LipSwish, SpectralNormLinear, logdet_estimate
from .emerging import EmergingConv, emerging_mask

__all__ = [
    "FlowLayer", "FlowSequential", "NormalizingFlow", "check_shape", "standard_normal",
    "AdditiveCoupling", "AffineCoupling", "DiagonalScaling", "Permutation", "mlp", "soft_clamp",
    "PlanarFlow",
    "BatchNormFlow", "ActNorm",
    "Squeeze", "InvConv1x1", "AffineCouplingImage", "AdditiveCouplingImage", "checkerboard_mask",
    "channel_mask", "check_image_shape",
    "InvertibleResBlock", "SpectralNormLinear", "LipSwish", "logdet_estimate",
    "EmergingConv", "emerging_mask",
]

from .models import eval_log_prob, nll_loss, realnvp, test_nll  # noqa: E402  (ready-made models, notebook 03 on)

__all__ += ["realnvp", "nll_loss", "test_nll", "eval_log_prob"]

from .energies import ENERGIES, PlanarStack, annealed_batches, energy, log_partition, reverse_kl_loss  # noqa: E402  (notebook 05)
from .toy import GapReport, gap_report, nice, time_cosine  # noqa: E402  (notebooks 04 and 06)

__all__ += ["ENERGIES", "energy", "log_partition", "reverse_kl_loss", "PlanarStack", "annealed_batches",
            "nice", "gap_report", "GapReport", "time_cosine"]
