"""Every flow layer of the lecture's table, with one contract (see ``base.py``):

    y, log_det = layer(x)               data -> latent, log_det[i] = log|det dy_i/dx_i|
    x, log_det_inv = layer.inverse(y)   log_det_inv = -log_det

Vector layers take ``(batch, features)``, image layers ``(batch, channels, height, width)``.

==================  ==================================================================  =============
module              contents                                                            paper
==================  ==================================================================  =============
``base``            FlowLayer, FlowSequential, NormalizingFlow, standard_normal(...)
``coupling``        AdditiveCoupling, DiagonalScaling; AffineCoupling, Permutation      [1]; [3]
``planar``          PlanarFlow, planar_u_hat, planar_log_det                            [2]
``planar_vi``       U1..U4, reverse_kl_loss, PlanarStack, annealed_batches              [2]
``normalization``   BatchNormFlow; ActNorm                                              [3]; [4]
``glow``            Squeeze, Unsqueeze, InvConv1x1, image couplings, FactorOut, Logit   [3], [4]
``iresnet``         InvertibleResBlock, SpectralNormLinear, log_det_estimate, probes    [5]
``emerging``        EmergingConv, emerging_mask, emerging_log_det, masked_conv_inverse  [6]
``models``          builders: realnvp, nice, glow                                       [1], [3], [4]
``losses``          nll_loss, eval_log_prob, held_out_nll, gap_report
==================  ==================================================================  =============
"""

from .base import (FlowLayer, FlowSequential, NormalizingFlow, check_features, check_shape, standard_normal,
                   standard_normal_log_prob)
from .coupling import AdditiveCoupling, AffineCoupling, DiagonalScaling, Permutation, soft_clamp
from .emerging import EmergingConv, emerging_log_det, emerging_mask, masked_conv_inverse, solve_pixel, wavefront_steps
from .glow import (AdditiveCouplingImage, AffineCouplingImage, FactorOut, InvConv1x1, Logit, Squeeze, Unsqueeze, channel_mask,
                   check_image_shape, checkerboard_mask)
from .iresnet import (ELUWithDerivative, InvertibleResBlock, LipSwish, SpectralNormLinear, hutchinson_probes,
                      log_det_estimate, using_log_det)
from .losses import GapReport, eval_log_prob, gap_report, held_out_nll, nll_loss
from .models import GLOW_DIGITS, GLOW_DIGITS_TRAINING, GLOW_MIXINGS, glow, glow_latent_levels, nice, realnvp
from .normalization import ActNorm, BatchNormFlow
from .planar import PlanarFlow, planar_log_det, planar_u_hat
from .planar_vi import ENERGIES, PlanarStack, annealed_batches, energy, log_partition, reverse_kl_loss

__all__ = [
    # contract and containers
    "FlowLayer", "FlowSequential", "NormalizingFlow", "check_shape", "check_features", "standard_normal",
    "standard_normal_log_prob",
    # vector layers
    "AdditiveCoupling", "AffineCoupling", "DiagonalScaling", "Permutation", "soft_clamp",
    "PlanarFlow", "planar_u_hat", "planar_log_det",
    "BatchNormFlow", "ActNorm",
    "InvertibleResBlock", "SpectralNormLinear", "LipSwish", "ELUWithDerivative", "log_det_estimate",
    "hutchinson_probes", "using_log_det",
    # image layers
    "Squeeze", "Unsqueeze", "FactorOut", "Logit", "InvConv1x1", "AffineCouplingImage", "AdditiveCouplingImage", "checkerboard_mask",
    "channel_mask", "check_image_shape", "EmergingConv", "emerging_mask", "emerging_log_det", "masked_conv_inverse", "solve_pixel", "wavefront_steps",
    # models, losses, planar variational inference
    "realnvp", "nice", "glow", "glow_latent_levels", "GLOW_MIXINGS", "GLOW_DIGITS", "GLOW_DIGITS_TRAINING", "nll_loss", "eval_log_prob", "held_out_nll", "GapReport", "gap_report",
    "ENERGIES", "energy", "log_partition", "reverse_kl_loss", "PlanarStack", "annealed_batches",
]
