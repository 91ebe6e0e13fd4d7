"""Tests of course_utils.data: toy densities against independent computations, digits, images, audio."""

import math

import numpy as np
import pytest
import torch

from course_utils import data
from course_utils.data import (
    DIGIT_LEVELS,
    EXACT_TOY_DENSITIES,
    TOY_DENSITIES,
    audio_clip,
    bits_per_dim,
    cameraman,
    dequantize,
    get_mgrid,
    load_digits_dataset,
    load_digits_int,
    toy_density,
)

SAMPLER_ONLY = ("pinwheel", "swissroll", "2spirals")
N_MC = 200_000

# the densities' definitions, written here again so that the tests do not lean on the code
SD_8G = 0.5 / 1.414
ENTROPY_8G_SEPARATED = math.log(8) + 1.0 + math.log(2 * math.pi * SD_8G**2)  # no overlap
EXPECTED_ENTROPY = {"8gaussians": 2.833, "checkerboard": math.log(32), "rings": 2.623, "moons": 2.397}
# (lo, hi, bin width) of the histogram test; bins narrow enough to see the noise scale
HIST = {"8gaussians": (-4.5, 4.5, 0.15), "checkerboard": (-4.5, 4.5, 0.25),
        "rings": (-3.6, 3.6, 0.06), "moons": (-3.6, 3.6, 0.12)}


def test_names():
    assert set(TOY_DENSITIES) == {"8gaussians", "checkerboard", "rings", "moons", *SAMPLER_ONLY}
    assert set(EXACT_TOY_DENSITIES) == set(EXPECTED_ENTROPY)


# -- sampling contract ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", TOY_DENSITIES)
def test_sample_shapes_dtype_and_reproducibility(name):
    p = toy_density(name)
    assert isinstance(p, torch.distributions.Distribution)
    assert p.event_shape == (2,) and p.batch_shape == ()
    assert p.name == name and name in repr(p)
    assert p.has_log_prob == (name in EXACT_TOY_DENSITIES)
    torch.manual_seed(123)
    a = p.sample((500,))
    torch.manual_seed(123)
    b = p.sample((500,))
    assert a.shape == (500, 2) and a.dtype == torch.float32
    assert torch.equal(a, b), "same seed must give the same samples"
    assert not torch.equal(a, p.sample((500,))), "the generator must advance"
    assert torch.isfinite(a).all()
    assert p.sample().shape == (2,)
    assert p.sample((3, 4)).shape == (3, 4, 2)


def test_sample_follows_default_dtype():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        assert toy_density("moons").sample((10,)).dtype == torch.float64
    finally:
        torch.set_default_dtype(old)


@pytest.mark.parametrize("name", SAMPLER_ONLY)
def test_sampler_only_log_prob_raises(name):
    p = toy_density(name)
    with pytest.raises(NotImplementedError, match="closed-form") as err:
        p.log_prob(torch.zeros(3, 2))
    assert all(n in str(err.value) for n in EXACT_TOY_DENSITIES)


def test_unknown_name():
    with pytest.raises(ValueError, match="8gaussians") as err:
        toy_density("circle")
    assert "circle" in str(err.value)


@pytest.mark.parametrize("name", EXACT_TOY_DENSITIES)
def test_log_prob_shape_and_dtype(name):
    p = toy_density(name)
    x = torch.randn(3, 4, 2)
    assert p.log_prob(x).shape == (3, 4) and p.log_prob(x).dtype == torch.float32
    assert p.log_prob(x.double()).dtype == torch.float64
    assert p.log_prob(torch.zeros(2)).shape == ()


# -- exact densities against independent computations --------------------------------------------


@pytest.mark.parametrize("name", EXACT_TOY_DENSITIES)
def test_entropy(name):
    torch.manual_seed(0)
    h = toy_density(name).entropy_estimate(N_MC)
    assert isinstance(h, float)
    assert abs(h - EXPECTED_ENTROPY[name]) < 0.02, f"{name}: entropy {h:.4f}"
    if name == "8gaussians":  # nearly separated components: log 8 + Gaussian entropy
        assert abs(h - ENTROPY_8G_SEPARATED) < 0.02
    if name == "checkerboard":  # uniform on area 32
        assert abs(h - math.log(32)) < 1e-9


@pytest.mark.parametrize("name", EXACT_TOY_DENSITIES)
def test_log_prob_integrates_to_one(name):
    h = 0.025
    mid = torch.arange(-5.5 + h / 2, 5.5, h, dtype=torch.float64)  # midpoints, aligned with squares
    gx, gy = torch.meshgrid(mid, mid, indexing="ij")
    pts = torch.stack([gx, gy], -1).reshape(-1, 2)
    mass = toy_density(name).log_prob(pts).exp().sum().item() * h * h
    assert abs(mass - 1.0) < 1e-2, f"{name}: integral {mass:.5f}"


def _bin_tv(samples, log_prob, lo, hi, width, sub=4):
    """Total variation between the samples' histogram and the bin-averaged density, and the value
    that sampling noise alone gives on average, ``0.5 sum_i E|n_i/N - p_i|``."""
    nb = int(round((hi - lo) / width))
    edges = torch.linspace(lo, hi, nb + 1, dtype=torch.float64)
    s = samples.double()
    n = len(s)
    inside = ((s >= lo) & (s < hi)).all(-1)
    ij = ((s[inside] - lo) / width).floor().long().clamp(0, nb - 1)
    counts = torch.bincount(ij[:, 0] * nb + ij[:, 1], minlength=nb * nb).double()
    p_hist = counts / n
    # bin-averaged model mass from sub x sub points per bin
    offs = (torch.arange(sub, dtype=torch.float64) + 0.5) / sub * width
    fine = (edges[:-1, None] + offs).reshape(-1)
    gx, gy = torch.meshgrid(fine, fine, indexing="ij")
    dens = log_prob(torch.stack([gx, gy], -1).reshape(-1, 2)).exp().reshape(nb, sub, nb, sub)
    p_model = dens.mean(dim=(1, 3)).reshape(-1) * width**2
    outside = 1.0 - inside.double().mean().item()
    tv = 0.5 * ((p_hist - p_model).abs().sum().item() + abs(outside - (1 - p_model.sum().item())))
    # binomial counts: E|n_i/N - p_i| ~ sqrt(2 p_i (1 - p_i) / (pi N)) for all but tiny p_i
    noise = 0.5 * (2 * p_model * (1 - p_model) / (math.pi * n)).sqrt().sum().item()
    return tv, noise


@pytest.mark.parametrize("name", EXACT_TOY_DENSITIES)
def test_log_prob_matches_samples(name):
    """A histogram of samples agrees with exp(log_prob) up to sampling noise; the same density
    shifted by 0.1 or scaled by 1.1 does not."""
    p = toy_density(name)
    torch.manual_seed(1)
    x = p.sample((N_MC,))
    lo, hi, w = HIST[name]
    tv, noise = _bin_tv(x, p.log_prob, lo, hi, w)
    assert tv < 1.15 * noise + 0.002, f"{name}: TV(histogram, density) = {tv:.4f}, noise {noise:.4f}"
    shifted, _ = _bin_tv(x, lambda y: p.log_prob(y - torch.tensor([0.1, 0.0], dtype=y.dtype)), lo, hi, w)
    scaled, _ = _bin_tv(x, lambda y: p.log_prob(y / 1.1) - 2 * math.log(1.1), lo, hi, w)
    assert min(shifted, scaled) > 2.5 * noise, (tv, noise, shifted, scaled)


def test_moons_log_prob_matches_brute_force():
    """Quadrature against a 20 000-point midpoint rule from sklearn's make_moons definition."""
    torch.manual_seed(2)
    p = toy_density("moons")
    x = torch.cat([p.sample((300,)).double(), 6 * torch.rand(200, 2, dtype=torch.float64) - 3])
    T = 20_000
    t = (torch.arange(T, dtype=torch.float64) + 0.5) * math.pi / T
    outer = torch.stack([t.cos(), t.sin()], -1)
    inner = torch.stack([1 - t.cos(), 1 - t.sin() - 0.5], -1)
    means = torch.cat([outer, inner]) * 2 + torch.tensor([-1.0, -0.2], dtype=torch.float64)
    sd = 0.2
    ref = torch.cat([
        torch.logsumexp(-torch.cdist(xc, means) ** 2 / (2 * sd**2), -1)
        - math.log(2 * T) - math.log(2 * math.pi * sd**2)
        for xc in x.split(100)
    ])
    got = p.log_prob(x)
    keep = ref > -30
    assert keep.sum() > 400
    assert (got[keep] - ref[keep]).abs().max() < 1e-4


def test_rings_bessel_form_against_angle_quadrature():
    """The I0 closed form equals the angle-averaged Gaussian computed by brute force."""
    x = torch.tensor([[0.0, 0.0], [3.0, 0.05], [1.1, 1.1], [-0.5, 0.6], [2.0, -2.0]], dtype=torch.float64)
    T = 20_000
    th = (torch.arange(T, dtype=torch.float64) + 0.5) * 2 * math.pi / T
    circle = torch.stack([th.cos(), th.sin()], -1)
    means = torch.cat([r * circle for r in (3.0, 2.25, 1.5, 0.75)])
    sd = 0.08
    ref = torch.logsumexp(-torch.cdist(x, means) ** 2 / (2 * sd**2), -1) - math.log(4 * T) - math.log(
        2 * math.pi * sd**2)
    assert torch.allclose(toy_density("rings").log_prob(x), ref, atol=1e-6, rtol=0)


def test_checkerboard_support():
    p = toy_density("checkerboard")
    # FFJORD's squares (after the factor 2): x1 in [-4, -2) -> x2 in [-4, -2) or [0, 2); x1 in
    # [-2, 0) -> x2 in [-2, 0) or [2, 4); and so on: the cells (i, j) with i + j even
    inside = torch.tensor([[-3.0, -3.0], [-3.0, 1.0], [-1.0, -1.0], [-1.0, 3.0], [1.0, 1.0], [3.0, -1.0]])
    outside = torch.tensor([[-1.0, 1.0], [1.0, -1.0], [-3.0, -1.0], [3.0, 1.0], [5.0, 0.0], [-3.0, 3.0]])
    torch.manual_seed(0)
    x = p.sample((10_000,))
    assert torch.allclose(p.log_prob(inside), torch.full((6,), -math.log(32)))
    assert torch.isneginf(p.log_prob(outside)).all()
    assert torch.isfinite(p.log_prob(x)).all(), "every sample lies in the support"


# -- sampler-only densities against independent generators --------------------------------------


def _reference_samples(name, n, rng):
    if name == "swissroll":
        from sklearn.datasets import make_swiss_roll

        return make_swiss_roll(n_samples=n, noise=1.0, random_state=int(rng.integers(2**31)))[0][:, [0, 2]] / 5
    if name == "2spirals":
        u = np.sqrt(rng.random(n)) * 540 * 2 * np.pi / 360
        d = np.stack([-np.cos(u) * u + 0.5 * rng.random(n), np.sin(u) * u + 0.5 * rng.random(n)], 1)
        d[rng.random(n) < 0.5] *= -1
        return d / 3 + 0.1 * rng.standard_normal((n, 2))
    if name == "pinwheel":
        feat = rng.standard_normal((n, 2)) * [0.3, 0.1] + [1.0, 0.0]
        ang = 2 * np.pi / 5 * rng.integers(0, 5, n) + 0.25 * np.exp(feat[:, 0])
        rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])  # (2, 2, n)
        return 2 * np.einsum("ni,ijn->nj", feat, rot)
    raise KeyError(name)


@pytest.mark.parametrize("name", SAMPLER_ONLY)
def test_sampler_only_distribution(name):
    """Radius quantiles and the mean agree with an independent generator of FFJORD's definition."""
    n = 100_000
    torch.manual_seed(0)
    x = toy_density(name).sample((n,)).double().numpy()
    y = _reference_samples(name, n, np.random.default_rng(0))
    q = [0.1, 0.25, 0.5, 0.75, 0.9]
    assert np.allclose(np.quantile(np.linalg.norm(x, axis=1), q), np.quantile(np.linalg.norm(y, axis=1), q),
                       atol=0.03)
    assert np.allclose(x.mean(0), y.mean(0), atol=0.03)
    # angular structure (first Fourier modes of the angle histogram, which the radius ignores)
    ax, ay = np.arctan2(x[:, 1], x[:, 0]), np.arctan2(y[:, 1], y[:, 0])
    for k in (1, 2, 5):
        assert abs(np.cos(k * ax).mean() - np.cos(k * ay).mean()) < 0.03
        assert abs(np.sin(k * ax).mean() - np.sin(k * ay).mean()) < 0.03


def test_moons_sampler_matches_sklearn():
    from sklearn.datasets import make_moons

    torch.manual_seed(0)
    x = toy_density("moons").sample((100_000,)).double().numpy()
    y = make_moons(n_samples=100_000, noise=0.1, random_state=0)[0] * 2 + np.array([-1.0, -0.2])
    assert np.allclose(x.mean(0), y.mean(0), atol=0.02)
    assert np.allclose(np.cov(x.T), np.cov(y.T), atol=0.03)


# -- digits --------------------------------------------------------------------------------------


def test_digits_split_and_ranges():
    tr, te = load_digits_dataset("train"), load_digits_dataset("test")
    assert tr.images.shape == (1497, 1, 8, 8) and te.images.shape == (300, 1, 8, 8)
    assert tr.labels.shape == (1497,) and tr.labels.dtype == torch.int64
    assert set(tr.labels.tolist()) == set(range(10))
    for x in (tr.images, te.images):
        assert x.dtype == torch.float32 and x.min() >= 0 and x.max() < 1
    i_tr, i_te = data.digits_split_indices("train"), data.digits_split_indices("test")
    assert len(set(i_tr.tolist()) | set(i_te.tolist())) == 1797, "disjoint and complete"
    assert torch.equal(i_tr, data.digits_split_indices("train")), "the split is fixed"
    # same images every call (up to the dequantisation noise): floor(17 y) gives the levels back
    ints = load_digits_int("train")
    assert ints.images.min() == 0 and ints.images.max() == 16
    assert torch.equal((tr.images * DIGIT_LEVELS).floor().long(), ints.images)
    assert torch.equal(load_digits_dataset("train").labels, tr.labels)
    from sklearn.datasets import load_digits

    raw = load_digits()
    assert np.array_equal(ints.images[:, 0].numpy(), raw.images[i_tr.numpy()].astype(int))
    with pytest.raises(ValueError, match="train"):
        load_digits_dataset("valid")


def test_digits_no_dequantize_and_resize():
    x = load_digits_dataset("test", uniform_noise=False).images
    ints = load_digits_int("test").images
    assert torch.allclose(x, (ints.float() + 0.5) / 17)
    big = load_digits_dataset("test", uniform_noise=False, size=16).images
    assert big.shape == (300, 1, 16, 16) and big.min() >= 0 and big.max() <= 1
    assert abs(big.mean().item() - x.mean().item()) < 0.01


def test_dequantize_noise():
    torch.manual_seed(0)
    k = torch.randint(0, 17, (20_000,))
    y = dequantize(k)
    assert torch.equal((y * 17).floor().long(), k)
    frac = y * 17 - k
    assert abs(frac.mean().item() - 0.5) < 0.01 and abs(frac.var().item() - 1 / 12) < 0.005
    assert not torch.equal(y, dequantize(k)), "fresh noise on each call"


def test_bits_per_dim():
    # uniform on [0, 1]^D has NLL 0 -> log2 K bits per dimension
    assert bits_per_dim(0.0, 64) == pytest.approx(math.log2(17))
    assert bits_per_dim(0.0, 64, levels=256) == pytest.approx(8.0)
    # density 2^D on [0, 1/2]^D (NLL = -D log 2): one bit per dimension less
    D = 10
    assert bits_per_dim(-D * math.log(2.0), D) == pytest.approx(math.log2(17) - 1)
    t = bits_per_dim(torch.tensor([0.0, 64 * math.log(2)]), 64)
    assert torch.allclose(t, torch.tensor([math.log2(17), math.log2(17) + 1]))


# -- cameraman and audio --------------------------------------------------------------------------


def test_cameraman():
    c = cameraman(64)
    assert c.image.shape == (64, 64) and c.coords.shape == (4096, 2) and c.values.shape == (4096, 1)
    assert c.image.min() >= -1 and c.image.max() <= 1 and c.image.std() > 0.2
    assert torch.equal(c.values.view(64, 64), c.image)
    assert torch.equal(c.coords[0], torch.tensor([-1.0, -1.0]))
    assert torch.equal(c.coords[-1], torch.tensor([1.0, 1.0]))
    assert torch.equal(c.coords[1], torch.tensor([-1.0, -1.0 + 2 / 63])), "second column of row 0"
    from skimage import data as skdata

    raw = skdata.camera().astype(float) / 255 * 2 - 1  # block means give the anti-aliased image
    assert abs(c.image.mean().item() - raw.mean()) < 0.01
    assert cameraman().image.shape == (128, 128)


def test_get_mgrid():
    g = get_mgrid(5)
    assert g.shape == (25, 2)
    assert torch.equal(g.view(5, 5, 2)[2, 4], torch.tensor([0.0, 1.0]))  # row 2 (middle), column 4
    assert get_mgrid(4, dim=3).shape == (64, 3)


def test_audio_clip():
    a = audio_clip(0.5, 8000)
    assert a.values.shape == (4000, 1) and a.coords.shape == (4000, 1) and a.sample_rate == 8000
    assert a.values.abs().max() <= 1 and a.values.abs().max() > 0.99
    assert a.coords[0].item() == -1 and a.coords[-1].item() == 1
    assert torch.equal(a.values, audio_clip(0.5, 8000).values), "deterministic"
    # the chirp and the two tones are there: spectrum peaks near 440 and 660 Hz
    spec = np.abs(np.fft.rfft(audio_clip(1.0, 8000).values[:, 0].numpy()))
    freqs = np.fft.rfftfreq(8000, 1 / 8000)
    band = (freqs > 100) & (freqs < 1500)
    assert spec[band].sum() / spec.sum() > 0.9
    for f in (440, 660):
        near = np.abs(freqs - f) < 5
        assert spec[near].max() > 3 * np.median(spec[band])
