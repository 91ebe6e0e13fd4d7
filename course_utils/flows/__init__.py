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

__all__ = [
    "FlowLayer", "FlowSequential", "NormalizingFlow", "check_shape", "standard_normal",
    "AdditiveCoupling", "AffineCoupling", "DiagonalScaling", "Permutation", "mlp", "soft_clamp",
    "PlanarFlow",
    "BatchNormFlow", "ActNorm",
]

# TEMPORARY guards while the image layers are being written: drop the try/except (and import
# their names explicitly) once glow.py, iresnet.py and emerging.py exist.
for _module in ("glow", "iresnet", "emerging"):
    try:
        _mod = __import__(f"{__name__}.{_module}", fromlist=["__all__"])
    except ModuleNotFoundError as _err:
        if _err.name != f"{__name__}.{_module}":
            raise
        continue
    globals().update({name: getattr(_mod, name) for name in _mod.__all__})
    __all__ += list(_mod.__all__)
    del _mod
del _module
