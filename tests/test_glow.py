"""The multi-scale Glow builder and the bits-per-dimension bookkeeping of notebook 07.

The flow contract of ``glow(...)`` (every mixing), ``FactorOut``, ``Unsqueeze`` and ``Logit`` is
in test_flows_contract.py; here is what only they have.
"""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from course_utils.data import DIGIT_LEVELS, bits_per_dim, dequantize
from course_utils.flows import (GLOW_MIXINGS, EmergingConv, InvConv1x1, Permutation, glow,
                                glow_latent_levels)
from flowcheck import perturb


@pytest.mark.parametrize("mixing", GLOW_MIXINGS)
def test_glow_shapes_round_trip_and_temperature(float64, mixing):
    torch.manual_seed(0)
    model = glow((1, 8, 8), levels=2, steps_per_level=2, hidden=8, mixing=mixing)
    x = torch.rand(6, 1, 8, 8)
    model.train()
    model.log_prob(x)                 # ActNorm initialises on this first training batch
    perturb(model, std=0.05)
    model.eval()
    assert model.log_prob(x).shape == (6,)
    z, _ = model(x)
    assert z.shape == x.shape
    assert (model.inverse(z)[0] - x).abs().max() < 1e-9
    for t in (0.0, 0.5, 1.0):
        assert model.sample((3,), temperature=t).shape == (3, 1, 8, 8)
    cold = model.sample((2,), temperature=0.0)
    assert torch.allclose(cold[0], cold[1]), "temperature 0 maps the latent 0: one image"


def test_glow_mixing_layers():
    count = {m: {type(layer) for layer in glow(mixing=m, hidden=8).modules()} for m in GLOW_MIXINGS}
    assert InvConv1x1 in count["conv1x1"] and Permutation not in count["conv1x1"]
    assert Permutation in count["permutation"] and InvConv1x1 not in count["permutation"]
    assert EmergingConv in count["emerging"]
    lu = [m.lu for m in glow(mixing="conv1x1_plain", hidden=8).modules() if isinstance(m, InvConv1x1)]
    assert lu and not any(lu)


def test_glow_bad_arguments():
    with pytest.raises(ValueError, match="mixing must be one of"):
        glow(mixing="shuffle")
    with pytest.raises(ValueError, match="divisible by 8, got 8x12"):
        glow((1, 8, 12), levels=3)
    with pytest.raises(ValueError, match=r"expected shape \(batch, 1, 8, 8\), got \(2, 1, 4, 4\)"):
        glow((1, 8, 8)).log_prob(torch.rand(2, 1, 4, 4))


def test_latent_levels_mark_what_the_inner_level_computes(float64):
    """Changing the parameters of the inner (coarse) level leaves the latent entries of level 0
    unchanged and changes those of level 1: that is what ``glow_latent_levels`` claims."""
    torch.manual_seed(1)
    model = glow((1, 8, 8), levels=2, steps_per_level=1, hidden=8)
    x = torch.rand(4, 1, 8, 8)
    model.log_prob(x)
    perturb(model, std=0.1)
    model.eval()
    ids = glow_latent_levels((1, 8, 8), levels=2)
    z_before = model(x)[0].detach()
    factor_out = next(m for m in model.modules() if type(m).__name__ == "FactorOut")
    perturb(factor_out.inner, std=0.3, seed=5)
    z_after = model(x)[0].detach()
    changed = (z_after - z_before).abs() > 1e-12
    assert not changed[:, ids == 0].any()
    assert changed[:, ids == 1].all()
    assert sorted((ids == level).sum().item() for level in range(2)) == [32, 32]
    three = glow_latent_levels((1, 16, 16), levels=3)
    assert [(three == level).sum().item() for level in range(3)] == [128, 64, 64]


# ------------------------------------------------------------------------------ bits per dim
def test_uniform_density_gives_log2_levels():
    """A uniform density on [0, 1]^D has log-density 0, so NLL 0 and bits/dim log2 K exactly:
    each of the K levels has probability 1/K."""
    for D, K in ((64, 17), (3072, 256)):
        assert bits_per_dim(0.0, D, K) == pytest.approx(math.log2(K), abs=1e-12)


def test_bits_per_dim_of_a_factorised_gaussian_in_closed_form():
    """Dequantised data y = (x + u) / K under N(mu, s^2) per pixel: the expected NLL over u has a
    closed form, E[(y - mu)^2] = ((x + 1/2)/K - mu)^2 + 1/(12 K^2). bits_per_dim of the Monte
    Carlo NLL must match (NLL + D log K) / (D log 2) of it, and bound the exact discrete bits
    (Jensen: the dequantised bound is never below the discrete likelihood's)."""
    torch.manual_seed(0)
    K, D, mu, s = DIGIT_LEVELS, 16, 0.3, 0.25
    x_int = torch.randint(0, K, (D,))
    closed = sum(0.5 * math.log(2 * math.pi * s**2)
                 + (((xi + 0.5) / K - mu) ** 2 + 1 / (12 * K**2)) / (2 * s**2) for xi in x_int.tolist())
    y = dequantize(x_int.expand(200_000, D), K).double()
    mc = (-stats.norm.logpdf(y.numpy(), loc=mu, scale=s).sum(1)).mean()
    assert mc == pytest.approx(closed, rel=2e-3)
    bpd = bits_per_dim(mc, D, K)
    assert bpd == pytest.approx((closed + D * math.log(K)) / (D * math.log(2)), rel=2e-3)
    lo, hi = x_int.double().numpy() / K, (x_int.double().numpy() + 1) / K
    discrete = -np.log(stats.norm.cdf(hi, mu, s) - stats.norm.cdf(lo, mu, s)).sum() / (D * math.log(2))
    assert bpd >= discrete - 1e-3
    assert bpd - discrete < 0.05, "for a smooth density the bound is tight"


def test_dequantize_uses_k_levels_not_k_minus_one():
    x = torch.arange(DIGIT_LEVELS).repeat(1000)
    y = dequantize(x)
    assert (y >= 0).all() and (y < 1).all()
    assert torch.equal((y * DIGIT_LEVELS).floor().long(), x)


def test_the_course_digit_glow_settings_build_and_train_with_fit():
    """GLOW_DIGITS (notebooks 07 and 09) are glow() arguments; GLOW_DIGITS_TRAINING are fit()'s."""
    from course_utils.flows import GLOW_DIGITS, GLOW_DIGITS_TRAINING, Logit, nll_loss
    from course_utils.train import fit

    model = glow(**GLOW_DIGITS, mixing="conv1x1")
    logit = next(m for m in model.modules() if isinstance(m, Logit))
    assert logit.alpha == GLOW_DIGITS["logit"] == 0.001
    assert sum(isinstance(m, InvConv1x1) for m in model.modules()) == GLOW_DIGITS["levels"] * GLOW_DIGITS["steps_per_level"]
    settings = {k: v for k, v in GLOW_DIGITS_TRAINING.items() if k not in ("steps", "batch")}
    x = torch.rand(GLOW_DIGITS_TRAINING["batch"], *GLOW_DIGITS["image_shape"])
    history = fit(model, nll_loss, lambda: x, 2, progress=False, device="cpu", **settings)
    assert history.steps == 2 and history.comparable
