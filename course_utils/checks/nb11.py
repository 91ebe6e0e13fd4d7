"""Checks for notebook 11: Gradient Origin Networks.

Expected values come from the closed form of the GON latent for the squared error,
``z = 2 J_F(0)^T (x - F(0))``, with the Jacobian ``J_F(0)`` from ``torch.autograd.functional``,
not from ``course_utils.gon``.
"""

import copy
import math

import torch
from torch import nn

from .. import gon
from . import CheckFailed, assert_close, assert_shape, call_student, exercise, number

__all__ = ["gon_latent", "gon_objective", "slerp"]

HINT = " (see the hint under the exercise)"
#: mixing dtypes, named (the notebook's decoders are float32, the check's first one float64)
DTYPES = {r"same dtype|expected scalar type|found dtype":
          "float32 and float64 tensors were mixed: make z0 in the images' dtype, torch.zeros(..., dtype=x.dtype), "
          "since the notebook's decoders and digits are float32" + HINT}


def _decoder(latent_dim: int = 3, seed: int = 0) -> nn.Module:
    """A small float64 ELU decoder: latent_dim -> 6 -> 2x2 image."""
    gen = torch.Generator().manual_seed(seed)
    net = nn.Sequential(nn.Linear(latent_dim, 6), nn.ELU(), nn.Linear(6, 4), nn.Unflatten(1, (1, 2, 2)))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * 0.7)
    return net.double()


def _data(batch: int, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 1, 2, 2, generator=gen, dtype=torch.float64)


def _closed_form_latent(decoder: nn.Module, x: torch.Tensor, latent_dim: int,
                        create_graph: bool = False) -> torch.Tensor:
    """z_i = 2 J_F(0)^T (x_i - F(0)), one Jacobian for the whole batch (it is the same point)."""
    z0 = torch.zeros(1, latent_dim, dtype=x.dtype)
    flat = lambda z: decoder(z).reshape(-1)
    J = torch.autograd.functional.jacobian(flat, z0, create_graph=create_graph).reshape(-1, latent_dim)
    residual = (x - decoder(z0)).reshape(x.shape[0], -1)
    return 2.0 * residual @ J


@exercise(1, "the GON latent step", reference=gon.gon_latent)
def gon_latent(student_fn):
    """Check exercise 1: ``student_fn(decoder, x, latent_dim)`` returns ``-grad_{z0} sum_i ||x_i - F(z0_i)||^2`` at 0.

    Compared with the closed form ``2 J_F(0)^T (x - F(0))`` on batches of 5 and 1; the code must
    keep its graph back to the decoder's weights. The library's ``gon.gon_latent`` is switched
    off while the student's code runs. Returns the student's function when it is right, and
    ``gon.gon_latent`` when not attempted yet.

    Example:
        >>> def mine(decoder, x, latent_dim):
        ...     z0 = torch.zeros(x.shape[0], latent_dim, dtype=x.dtype, requires_grad=True)
        ...     inner = (decoder(z0) - x).pow(2).flatten(1).sum(1).sum()
        ...     return -torch.autograd.grad(inner, z0, create_graph=True)[0]
        >>> gon_latent(mine) is mine
        Exercise 1 (the GON latent step): correct. Well done!
        True
    """
    latent_dim = 3
    decoder = _decoder(latent_dim)
    for batch in (5, 1):
        x = _data(batch)
        expected = _closed_form_latent(decoder, x, latent_dim).detach()
        got = call_student(student_fn, decoder, x, latent_dim,
                           forbidden=[("course_utils.gon.gon_latent", "gon.gon_latent"),
                                      ("course_utils.gon.gon_reconstruct", "gon.gon_reconstruct")],
                           reason="taking the gradient at the origin yourself", errors=DTYPES)
        if not isinstance(got, torch.Tensor):
            raise CheckFailed(f"the latent should be a tensor of shape ({batch}, {latent_dim}), "
                              f"got {type(got).__name__}")
        assert_shape(got, (batch, latent_dim), f"the latent of a batch of {batch}")
        slips = {"the sign is flipped (z is the NEGATIVE gradient: one step downhill)" + HINT: -expected,
                 "the squared errors are averaged over the pixels instead of summed (F.mse_loss's default "
                 "reduction='mean' does that; use reduction='sum')" + HINT: expected / 4,
                 "the gradient is taken at z0 = 1 instead of at the origin: z0 must be zeros" + HINT:
                     _latent_at(decoder, x, torch.ones(batch, latent_dim, dtype=x.dtype))}
        if batch > 1:
            slips["the inner loss is averaged over the batch (sum it, so that each example's latent "
                  "does not depend on the batch size)" + HINT] = expected / batch
            slips["F.mse_loss's default reduction='mean' divides by every entry, batch and pixels: use "
                  "reduction='sum' (or .pow(2).sum())" + HINT] = expected / (batch * 4)
            slips["every example gets the first example's latent: z0 needs one row per example, "
                  "zeros(batch, latent_dim)" + HINT] = expected[:1].expand(batch, latent_dim)
        assert_close(got, expected, f"the latent of a batch of {batch} digits", atol=1e-8, rtol=1e-6,
                     slips=slips)
        if got.grad_fn is None:
            raise CheckFailed("the numbers are right, but z has no graph back to the decoder's weights "
                              "(z.grad_fn is None): call torch.autograd.grad(..., create_graph=True) so "
                              "that the GON loss can train the decoder through z" + HINT)
    # the notebook's use: a float32 decoder and float32 images
    decoder32, x32 = copy.deepcopy(decoder).float(), _data(4).float()
    got = call_student(student_fn, decoder32, x32, latent_dim,
                       forbidden=[("course_utils.gon.gon_latent", "gon.gon_latent"),
                                  ("course_utils.gon.gon_reconstruct", "gon.gon_reconstruct")],
                       reason="taking the gradient at the origin yourself", errors=DTYPES)
    assert_close(got, _closed_form_latent(decoder, _data(4), latent_dim).detach(),
                 "the latent of a float32 batch of 4 (the notebook's decoders and digits are float32)", atol=1e-8,
                 rtol=1e-6, work=10)


@exercise(2, "the GON loss", reference=gon.gon_loss)
def gon_objective(student_fn):
    """Check exercise 2: ``student_fn(decoder, x, latent_dim)`` returns the batch mean of ``||x_i - F(z_i)||^2``.

    ``z`` is the GON latent; the value *and* its gradient with respect to the decoder's weights are
    compared with an independent computation, so a latent without its graph is caught. The
    library's ``gon.gon_loss`` is switched off while the student's code runs (``gon.gon_latent``
    may be used). Returns the student's function when it is right, and ``gon.gon_loss`` when not
    attempted yet.

    Example:
        >>> mine = lambda decoder, x, k: (decoder(gon.gon_latent(decoder, x, k)) - x).pow(2).flatten(1).sum(1).mean()
        >>> gon_objective(mine) is mine
        Exercise 2 (the GON loss): correct. Well done!
        True
    """
    latent_dim = 3
    decoder = _decoder(latent_dim, seed=2)
    x = _data(6, seed=3)
    params = list(decoder.parameters())
    z = _closed_form_latent(decoder, x, latent_dim, create_graph=True)
    expected = (decoder(z) - x).pow(2).flatten(1).sum(1).mean()
    expected_grads = torch.autograd.grad(expected, params)
    detached = (decoder(z.detach()) - x).pow(2).flatten(1).sum(1).mean()
    detached_grads = torch.autograd.grad(detached, params)

    got = call_student(student_fn, decoder, x, latent_dim, forbidden=[("course_utils.gon.gon_loss", "gon.gon_loss")],
                       reason="the GON objective itself", errors=DTYPES)
    if not isinstance(got, torch.Tensor) or got.numel() != 1:
        raise CheckFailed("the GON loss should be one number (a scalar tensor), got "
                          f"{type(got).__name__} of shape {tuple(getattr(got, 'shape', ()))}")
    expected_value = expected.detach()
    assert_close(got.reshape(()), expected_value, "the GON loss of a batch of 6", atol=1e-8, rtol=1e-6,
                 slips={"the squared errors are averaged over the pixels, as F.mse_loss's default mean "
                        "does (sum them per example, then average over the batch)" + HINT: expected_value / 4,
                        "the per-example losses are summed over the batch (average them)" + HINT:
                        expected_value * 6,
                        "the latent's sign is flipped: z is minus the gradient at the origin" + HINT:
                        (decoder(-z) - x).pow(2).flatten(1).sum(1).mean().detach(),
                        "the decoder is evaluated at the origin z0 = 0 instead of at the latent z" + HINT:
                        (decoder(torch.zeros_like(z)) - x).pow(2).flatten(1).sum(1).mean().detach()})
    if not got.requires_grad:
        raise CheckFailed("the value is right, but the loss does not depend on the decoder's weights "
                          "(no graph): do not compute it under torch.no_grad() or with .detach()")
    grads = torch.autograd.grad(got.reshape(()), params, allow_unused=True)
    grads = [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params)]
    flat_got = torch.cat([g.reshape(-1) for g in grads])
    flat_exp = torch.cat([g.reshape(-1) for g in expected_grads])
    flat_det = torch.cat([g.reshape(-1) for g in detached_grads])
    if _close(flat_got, flat_det) and not _close(flat_det, flat_exp):
        raise CheckFailed("the value is right, but z is detached (or built with create_graph=False): the gradient "
                          "then misses the second-order term that trains the decoder through its own latent (its "
                          f"norm is {number(flat_got.norm().item(), 4)}, expected {number(flat_exp.norm().item(), 4)})"
                          + HINT)
    if not _close(flat_got, flat_exp):
        raise CheckFailed("the value is right, but the gradient with respect to the decoder's weights is not: its "
                          f"norm is {number(flat_got.norm().item(), 4)}, expected {number(flat_exp.norm().item(), 4)} "
                          f"(largest difference {number((flat_got - flat_exp).abs().max().item(), 3)}). Build the "
                          "loss from the latent with its graph (create_graph=True), with no .detach() in between" + HINT)
    # the notebook's use: a float32 decoder and float32 images (section 4 trains with this function)
    got = call_student(student_fn, copy.deepcopy(decoder).float(), x.float(), latent_dim,
                       forbidden=[("course_utils.gon.gon_loss", "gon.gon_loss")], reason="the GON objective itself", errors=DTYPES)
    assert_close(got, expected_value, "the GON loss of a float32 batch of 6 (the notebook trains float32 decoders)",
                 atol=1e-8, rtol=1e-6, work=10)


@exercise(3, "spherical interpolation", reference=gon.slerp)
def slerp(student_fn):
    """Check exercise 3: ``student_fn(z0, z1, t)`` returns the slerp point for a float ``t`` (a vector like ``z0``).

    Three pairs of vectors, four values of ``t``; the library's ``gon.slerp`` is switched off while
    the student's code runs. Returns the student's function when it is right, and ``gon.slerp``
    when not attempted yet.

    Example:
        >>> def mine(z0, z1, t):
        ...     omega = torch.arccos(torch.dot(z0, z1) / (z0.norm() * z1.norm()))
        ...     return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)
        >>> slerp(mine) is mine
        Exercise 3 (spherical interpolation): correct. Well done!
        True
    """
    gen = torch.Generator().manual_seed(4)
    pairs = [(torch.tensor([1.0, 0.0], dtype=torch.float64), torch.tensor([0.0, 2.0], dtype=torch.float64))]
    pairs += [(torch.randn(5, generator=gen, dtype=torch.float64),
               3.0 * torch.randn(5, generator=gen, dtype=torch.float64)) for _ in range(2)]
    for z0, z1 in pairs:
        omega = math.acos(float(torch.dot(z0, z1) / (z0.norm() * z1.norm())))
        for t in (0.0, 0.25, 0.5, 1.0):
            expected = (math.sin((1 - t) * omega) * z0 + math.sin(t * omega) * z1) / math.sin(omega)
            got = call_student(student_fn, z0, z1, t, forbidden=[("course_utils.gon.slerp", "gon.slerp")],
                               reason="the interpolation formula")
            got_t = torch.as_tensor(got).detach() if isinstance(got, torch.Tensor) else None
            if got_t is not None and got_t.is_floating_point() and torch.isnan(got_t).any():
                raise CheckFailed(f"slerp at t = {t} came back with NaN: arccos was given a cosine outside [-1, 1]. "
                                  "The angle's cosine is z0 . z1 divided by both norms, |z0| |z1| (clamp it to "
                                  "[-1, 1] against rounding)" + HINT)
            lerp = (1 - t) * z0 + t * z1
            swapped = (math.sin(t * omega) * z0 + math.sin((1 - t) * omega) * z1) / math.sin(omega)
            assert_close(got, expected, f"slerp at t = {t} between z0 = {_short(z0)} and z1 = {_short(z1)}",
                         atol=1e-7, rtol=1e-6,
                         slips={"you interpolate along the straight line (that is lerp)" + HINT: lerp,
                                "t and 1 - t are swapped (t = 0 must give z0)" + HINT: swapped,
                                "the result is normalised to unit length": expected / expected.norm(),
                                "the division by sin(omega) is left out" + HINT: expected * math.sin(omega),
                                "unit vectors are interpolated: slerp mixes z0 and z1 themselves, only the angle "
                                "comes from their directions" + HINT:
                                    (math.sin((1 - t) * omega) * z0 / z0.norm() + math.sin(t * omega) * z1 / z1.norm())
                                    / math.sin(omega),
                                "the angle is in degrees: torch.sin and torch.arccos work in radians":
                                    _slerp_degrees(z0, z1, t, omega)})


def _latent_at(decoder, x, z0):
    """Minus the gradient of the summed squared errors at ``z0`` (the GON latent step from ``z0``)."""
    z0 = z0.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad((decoder(z0) - x).pow(2).sum(), z0)
    return -grad


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a.double(), b.double(), atol=1e-7, rtol=1e-5))


def _slerp_degrees(z0, z1, t, omega):
    deg = math.degrees(omega)
    return (math.sin((1 - t) * deg) * z0 + math.sin(t * deg) * z1) / math.sin(deg)


def _short(v: torch.Tensor) -> str:
    return "[" + ", ".join(f"{a:.2f}" for a in v.tolist()) + "]"
