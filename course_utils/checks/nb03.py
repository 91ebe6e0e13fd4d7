"""Checks for notebook 03: normalising flows, chains of bijections and triangular Jacobians.

Expected values are computed the slow, independent way: the full autograd Jacobian of the whole
chain and ``slogdet``, and ``MultivariateNormal`` for the base density.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import MultivariateNormal

from ..flows import ActNorm, AffineCoupling, Permutation
from . import CheckFailed, assert_close, assert_shape, call_student, exercise, first_named, unpack_pair
from .nb01 import AUTOGRAD, DETERMINANTS
from .shortcuts import call_without

__all__ = ["example_chain", "triangular_map", "chain_forward", "triangular_map_log_det", "flow_log_prob"]

HINT = " (see the hint under the exercise)"
#: library code that runs a whole chain, or a whole flow's density, for you
CHAIN = ["course_utils.flows.base.FlowSequential.forward", "course_utils.flows.base.NormalizingFlow.log_prob"]
DENSITY = [("torch.distributions.Distribution.__init__", "torch.distributions"),
           "course_utils.flows.base.standard_normal_log_prob", "course_utils.flows.base.NormalizingFlow.log_prob"]


def _chain_reference(layers, x):
    """``(z, log_det)`` of the composition of ``layers`` (what ``FlowSequential`` does)."""
    log_det = x.new_zeros(x.shape[0])
    for layer in layers:
        x, ld = layer(x)
        log_det = log_det + ld
    return x, log_det


def _log_prob_reference(layers, x):
    """``log N(z; 0, I) + log_det`` for the composition of ``layers``."""
    z, log_det = _chain_reference(layers, x)
    return -0.5 * (z**2).sum(dim=1) - 0.5 * z.shape[1] * math.log(2 * math.pi) + log_det


def example_chain(dim: int = 3, seed: int = 0, dtype=torch.float64) -> list[nn.Module]:
    """A small chain of flow layers (data -> latent) with random, non-trivial parameters.

    ActNorm, affine coupling, a random permutation, affine coupling (flipped), in eval mode, in
    ``dtype`` (float64 by default), the same for the same ``seed``.

    Example:
        >>> [type(layer).__name__ for layer in example_chain(dim=3, seed=0)]
        ['ActNorm', 'AffineCoupling', 'Permutation', 'AffineCoupling']
    """
    gen = torch.Generator().manual_seed(seed)
    layers = [ActNorm(dim), AffineCoupling(dim, hidden=16), Permutation(dim, kind="random", seed=seed),
              AffineCoupling(dim, hidden=16, flip=True)]
    with torch.no_grad():
        for layer in layers:
            layer.to(dtype)
            for p in layer.parameters():
                p.add_(0.4 * torch.randn(p.shape, generator=gen, dtype=dtype))
        layers[0].initialised.fill_(True)
    for layer in layers:
        layer.eval()
    return layers


def triangular_map(x: torch.Tensor) -> torch.Tensor:
    """The lower-triangular map of exercise 3, for x of shape (n, 3).

        y1 = -2 x1 + 1
        y2 = x2 exp(x1 / 2) + sin(x1)
        y3 = x3 + x3^3 / 3 + x1 x2

    Example:
        >>> triangular_map(torch.zeros(1, 3))
        tensor([[1., 0., 0.]])
    """
    x1, x2, x3 = x[:, 0], x[:, 1], x[:, 2]
    return torch.stack([-2 * x1 + 1, x2 * torch.exp(x1 / 2) + torch.sin(x1), x3 + x3**3 / 3 + x1 * x2], dim=1)


def _brute_force(layers, x):
    """z and log|det dz/dx| per sample, from the full autograd Jacobian of the composition."""
    def compose(v):
        for layer in layers:
            v, _ = layer(v)
        return v

    with torch.no_grad():
        z = compose(x)
    log_det = []
    for xi in x:
        J = torch.autograd.functional.jacobian(lambda v: compose(v[None])[0], xi)
        log_det.append(torch.linalg.slogdet(J).logabsdet)
    return z, torch.stack(log_det)


def _points(n: int, dim: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return 1.5 * torch.randn(n, dim, generator=gen, dtype=torch.float64)


def _each_layer_at(layers, x):
    """Sum of each layer's log-det evaluated at the *input* x (forgetting to pass x along)."""
    with torch.no_grad():
        return sum(layer(x)[1] for layer in layers)



def _inverse_chain(layers, x):
    """What running the layers' inverses (in reverse order) gives: the other direction."""
    log_det = x.new_zeros(x.shape[0])
    for layer in reversed(layers):
        x, ld = layer.inverse(x)
        log_det = log_det + ld
    return x, log_det


#: the raw error of a base density not summed over the features, named
UNSUMMED = {r"The size of tensor a \(\d+\) must match the size of tensor b \(\d+\)":
            "the Gaussian's log-density is not summed over the D features: -1/2 z^2 has shape (n, D), "
            "the log-det shape (n,), so they cannot be added; sum over dim=1 first" + HINT}


def _cases(kind_seeds):
    """``(layers, x, dtype)``: float64 chains for the exact comparison, and a float32 one, as
    the notebook's trained flow runs."""
    for dim, seed in kind_seeds:
        yield example_chain(dim, seed), _points(5, dim, seed), torch.float64
    dim, seed = kind_seeds[0]
    yield example_chain(dim, seed + 10, dtype=torch.float32), _points(5, dim, seed + 10).float(), torch.float32


@exercise(1, "log-dets add up along a chain", reference=_chain_reference)
def chain_forward(student_fn):
    """Check exercise 1: ``student_fn(layers, x)`` returns ``(z, log_det)`` for the chain ``layers``.

    Compared with the autograd Jacobian of the whole chain, in 3-D and 4-D (float64), and on a
    float32 chain as the notebook's trained flow; the library's ``FlowSequential`` is switched
    off while the student's code runs. Returns the student's function when it is right, and a
    reference loop when not attempted yet.

    Example:
        >>> def mine(layers, x):
        ...     log_det = x.new_zeros(x.shape[0])
        ...     for layer in layers:
        ...         x, ld = layer(x)
        ...         log_det = log_det + ld
        ...     return x, log_det
        >>> chain_forward(mine) is mine
        Exercise 1 (log-dets add up along a chain): correct. Well done!
        True
    """
    failures = []
    for layers, x, dtype in _cases([(3, 0), (4, 1)]):
        dim = x.shape[1]
        z_exp, ld_exp = _brute_force([layer.double() for layer in layers], x.double()) if dtype == torch.float64 \
            else _chain_reference(layers, x)
        with torch.no_grad():
            got = unpack_pair(call_student(student_fn, layers, x, forbidden=CHAIN,
                                           reason="passing x through the layers yourself"),
                              "chain_forward(layers, x)", "(z, log_det)")
            z, log_det = got
            what = f"for the {len(layers)}-layer {str(dtype).replace('torch.', '')} chain in {dim}-D"
            v = x
            lds = []
            for layer in layers:
                v, last = layer(v)
                lds.append(last)
            z_reversed, ld_reversed = _chain_reference(list(reversed(layers)), x)
            z_inverse, ld_inverse = _inverse_chain(layers, x)
        try:
            assert_close(z, z_exp, f"z {what}", atol=1e-8, slips={
                "the layers are applied in reverse order (layers[0] comes first: data to latent)": z_reversed,
                "the layers' inverses are used (call layer(h): the layers map data to latent)" + HINT: z_inverse,
                "x is returned unchanged (pass it through every layer, h, ld = layer(h))" + HINT: x,
            })
            assert_close(log_det, ld_exp, f"log_det {what} (one value per sample)", atol=1e-8, slips={
                "each layer's log-det is evaluated at the original x instead of at its own input "
                "(pass the output of one layer on to the next)" + HINT: _each_layer_at(layers, x),
                "only the last layer's log-det is returned (add them all up)" + HINT: last,
                "the log-dets are subtracted instead of added": -ld_exp,
                "the layers' log-dets are stacked, not added up" + HINT: torch.stack(lds),
                "the log-dets are summed over the samples too (keep one value per sample)": ld_exp.sum(),
                "the log-dets are multiplied (the log of a product of determinants is the sum of their logs)":
                    torch.stack(lds).prod(0),
            })
        except CheckFailed as failure:
            failures.append(failure)
    first_named(failures)


@exercise(3, "the log-det of a lower-triangular map")
def triangular_map_log_det(student_fn):
    """Check exercise 3: ``student_fn(x)`` returns log|det J(x)| of ``triangular_map``, one per row.

    Compared with ``slogdet`` of the autograd Jacobian at six points; autograd and determinant
    functions are switched off while the student's code runs (read the diagonal by hand).

    Example:
        >>> triangular_map_log_det(lambda x: math.log(2) + x[:, 0] / 2 + torch.log1p(x[:, 2] ** 2))
        Exercise 3 (the log-det of a lower-triangular map): correct. Well done!
    """
    x = _points(6, 3, 2)
    expected = torch.stack([torch.linalg.slogdet(torch.autograd.functional.jacobian(
        lambda v: triangular_map(v[None])[0], xi)).logabsdet for xi in x])
    got = call_student(student_fn, x, forbidden=AUTOGRAD + DETERMINANTS,
                       reason="reading the diagonal of a triangular Jacobian by hand",
                       errors={r"math domain error": "math.log was given dy1/dx1 = -2: it is negative, so take "
                                                     "log|.| of the diagonal, math.log(2)" + HINT})
    what = "log|det J| of the triangular map at 6 points"
    if isinstance(got, torch.Tensor) and torch.isnan(got).any():
        raise CheckFailed(f"{what} contains NaN: dy1/dx1 = -2 is negative, so take log|.| of the diagonal" + HINT)
    if isinstance(got, torch.Tensor) and got.dim() == 0:
        raise CheckFailed(f"{what} should have one value per point, shape (6,), but is a single number: "
                          "sum over the diagonal entries of each point, not over the points")
    x1, x2, x3 = x[:, 0], x[:, 1], x[:, 2]
    assert_close(got, expected, what, atol=1e-8, slips={
        "the log 2 from dy1/dx1 = -2 is missing" + HINT: expected - math.log(2),
        "dy3/dx3 = 1 + x3^2 is taken as x3^2" + HINT: math.log(2) + x1 / 2 + torch.log(x3**2),
        "dy3/dx3 = 1 + x3^2 is taken as 1 + 3 x3^2 (the derivative of x3^3 / 3 is x3^2)":
            math.log(2) + x1 / 2 + torch.log(1 + 3 * x3**2),
        "the log of the diagonal is replaced by the diagonal itself (det is a product, log|det| a sum of logs)":
            -2 + torch.exp(x1 / 2) + 1 + x3**2,
        "log(exp(x1 / 2)) = x1 / 2 is replaced by exp(x1 / 2)": math.log(2) + torch.exp(x1 / 2) + torch.log1p(x3**2),
        "an entry off the diagonal (dy3/dx1 = x2) is included: only the diagonal counts":
            expected + torch.log(x2.abs()),
        "the sign is flipped": -expected,
    })


@exercise(2, "a flow's log_prob from its parts", reference=_log_prob_reference)
def flow_log_prob(student_fn):
    """Check exercise 2: ``student_fn(layers, x)`` returns log p(x) = log N(z; 0, I) + log|det dz/dx|.

    One value per row of ``x``, compared with ``MultivariateNormal`` and the autograd Jacobian of
    the chain in 3-D and 2-D (float64), and on a float32 chain as the notebook's trained flow;
    ``torch.distributions`` and the library's base log-density are switched off while the
    student's code runs. Returns the student's function when it is right, and a reference when
    not attempted yet.

    Example:
        >>> def mine(layers, x):
        ...     log_det = x.new_zeros(x.shape[0])
        ...     for layer in layers:
        ...         x, ld = layer(x)
        ...         log_det = log_det + ld
        ...     return -0.5 * (x**2).sum(1) - 0.5 * x.shape[1] * math.log(2 * math.pi) + log_det
        >>> flow_log_prob(mine) is mine
        Exercise 2 (a flow's log_prob from its parts): correct. Well done!
        True
    """
    failures = []
    for layers, x, dtype in _cases([(3, 3), (2, 4)]):
        dim, n = x.shape[1], x.shape[0]
        if dtype == torch.float64:
            z, log_det = _brute_force(layers, x)
        else:
            with torch.no_grad():
                z, log_det = (t.double() for t in _chain_reference(layers, x))
        base = MultivariateNormal(torch.zeros(dim, dtype=torch.float64), torch.eye(dim, dtype=torch.float64))
        log_pz = base.log_prob(z)
        expected = log_pz + log_det
        with torch.no_grad():
            got = call_student(student_fn, layers, x, forbidden=DENSITY,
                               reason="writing the base log-density and adding the log-dets yourself", errors=UNSUMMED)
        what = f"log p(x) for the {dim}-D {str(dtype).replace('torch.', '')} chain at {n} points"
        if isinstance(got, torch.Tensor) and got.dim() == 0:
            raise CheckFailed(f"{what} should have one value per point, shape ({n},), but is a single number: "
                              "sum the Gaussian's log-density over the features (dim=1), not over the points")
        if isinstance(got, torch.Tensor) and got.dim() == 2:
            raise CheckFailed(f"{what} should have one value per point, shape ({n},), but has shape {tuple(got.shape)}. "
                              "This is what you get when the Gaussian's log-density is not summed over the D features "
                              "(sum over dim=1)" + HINT + ".")
        assert_shape(got, (n,), what)
        log_2pi = math.log(2 * math.pi)
        try:
            assert_close(got, expected, what, atol=1e-8, slips={
                "the log-det is subtracted instead of added (the layers map data to latent)" + HINT: log_pz - log_det,
                "the log-det is left out" + HINT: log_pz,
                "the constant -(D/2) log(2 pi) of the Gaussian is missing" + HINT: expected + 0.5 * dim * log_2pi,
                "the constant -1/2 log(2 pi) is counted once instead of once per feature (D times)" + HINT:
                    expected + 0.5 * (dim - 1) * log_2pi,
                "D is taken as the number of samples, x.shape[0], instead of the number of features, x.shape[1]":
                    expected + 0.5 * (dim - n) * log_2pi,
                "the Gaussian's log-density is not summed over the D features (only the first is used)":
                    -0.5 * z[:, 0] ** 2 - 0.5 * log_2pi + log_det,
                "the Gaussian's log-density is averaged over the features instead of summed":
                    -0.5 * (z**2).mean(1) - 0.5 * log_2pi + log_det,
                "the 1/2 of -1/2 ||z||^2 is missing" + HINT:
                    -(z**2).sum(1) - 0.5 * dim * log_2pi + log_det,
                "the base density is evaluated at x instead of at z = the chain's output" + HINT:
                    -0.5 * (x.double() ** 2).sum(1) - 0.5 * dim * log_2pi + log_det,
            })
        except CheckFailed as failure:
            failures.append(failure)
    first_named(failures)
