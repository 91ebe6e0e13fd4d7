"""Checks for notebook 04: coupling layers (NICE and RealNVP)."""

import torch
from torch import nn

from ..flows.glow import checkerboard_mask
from . import CheckFailed, assert_close, assert_shape, call_student, exercise, first_named, unpack_pair
from .nb01 import AUTOGRAD, DETERMINANTS
from .shortcuts import call_without

HINT = " (see the hint under the exercise)"


def _affine_forward_reference(x, s_and_t):
    """RealNVP's affine coupling on ``x = (x_a, x_b)``: ``(y, log_det)``."""
    n = x.shape[1] // 2
    x_a, x_b = x[:, :n], x[:, n:]
    log_s, t = s_and_t(x_a)
    return torch.cat([x_a, x_b * torch.exp(log_s) + t], dim=1), log_s.sum(dim=1)


def _affine_inverse_reference(y, s_and_t):
    """The inverse of :func:`_affine_forward_reference`: ``(x, log_det_inv)``."""
    n = y.shape[1] // 2
    y_a, y_b = y[:, :n], y[:, n:]
    log_s, t = s_and_t(y_a)
    return torch.cat([y_a, (y_b - t) * torch.exp(-log_s)], dim=1), -log_s.sum(dim=1)

__all__ = ["shift_net", "scale_and_shift", "additive_coupling_inverse", "affine_coupling_forward",
           "affine_coupling_inverse", "checkerboard"]


def shift_net(n: int = 2, seed: int = 0) -> nn.Module:
    """A fixed, non-trivial shift network t: R^n -> R^n (float64), for the exercises.

    Example:
        >>> shift_net(2)(torch.zeros(1, 2, dtype=torch.float64)).shape
        torch.Size([1, 2])
    """
    gen = torch.Generator().manual_seed(seed)
    net = nn.Sequential(nn.Linear(n, 16), nn.Tanh(), nn.Linear(16, n)).double()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64))
    return net


class _ScaleAndShift(nn.Module):
    """``x_a -> (log_s, t)``, both of shape ``(batch, n)``; the log-scale is bounded by 2."""

    def __init__(self, n: int, seed: int):
        super().__init__()
        self.net = shift_net(n, seed)
        self.shift = shift_net(n, seed + 1)

    def forward(self, x_a):
        return 2 * torch.tanh(self.net(x_a) / 2), self.shift(x_a)


def scale_and_shift(n: int = 2, seed: int = 0) -> nn.Module:
    """A fixed conditioner ``x_a -> (log_s, t)`` for vectors of ``2 n`` features (float64).

    The log-scale is bounded by 2 (``2 tanh(raw / 2)``).

    Example:
        >>> log_s, t = scale_and_shift(3)(torch.zeros(4, 3, dtype=torch.float64))
        >>> log_s.shape, t.shape
        (torch.Size([4, 3]), torch.Size([4, 3]))
    """
    return _ScaleAndShift(n, seed)


def _inputs(n_features: int, seed: int, batch: int = 6) -> torch.Tensor:
    return torch.randn(batch, n_features, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)



def _halves_swapped(v, n):
    return torch.cat([v[:, n:], v[:, :n]], dim=1)


@exercise(1, "the inverse of an additive coupling")
def additive_coupling_inverse(student_fn):
    """Check exercise 1: ``student_fn(y, t)`` returns ``x`` with ``y = (x_a, x_b + t(x_a))``.

    Builds ``y`` from known ``x`` with a fixed network ``t`` for 2, 4 and 6 features.

    Example:
        >>> additive_coupling_inverse(lambda y, t: torch.cat([y[:, :y.shape[1] // 2],
        ...     y[:, y.shape[1] // 2:] - t(y[:, :y.shape[1] // 2])], dim=1))
        Exercise 1 (the inverse of an additive coupling): correct. Well done!
    """
    failures = []
    for n, seed in ((1, 0), (2, 1), (3, 2)):
        t = shift_net(n, seed)
        x = _inputs(2 * n, seed + 10)
        x_a, x_b = x[:, :n], x[:, n:]
        with torch.no_grad():
            y = torch.cat([x_a, x_b + t(x_a)], dim=1)
            got = call_student(student_fn, y, t)
            slips = {"t(x_a) is added instead of subtracted" + HINT: torch.cat([x_a, x_b + 2 * t(x_a)], dim=1),
                     "the shift is computed from the transformed half y_b instead of y_a" + HINT:
                     torch.cat([x_a, y[:, n:] - t(y[:, n:])], dim=1),
                     "only the transformed half is returned (join it to y_a with torch.cat)": x_b,
                     "the halves are joined in the wrong order (y_a first, then x_b)": _halves_swapped(x, n),
                     "the halves are joined along dim=0, the samples, instead of dim=1, the features":
                     torch.cat([x_a, x_b], dim=0),
                     "y is returned unchanged (subtract the shift from the second half)": y}
        try:
            assert_close(got, x, f"x recovered from y ({2 * n} features)", atol=1e-8, slips=slips)
        except CheckFailed as failure:
            failures.append(failure)
    first_named(failures)


def _conditioners():
    """``(n, seed, s_and_t, x)``: float64 conditioners, and a float32 one, as the notebook's layers."""
    for n, seed in ((1, 3), (2, 4), (3, 5)):
        yield n, seed, scale_and_shift(n, seed), _inputs(2 * n, seed + 20)
    yield 3, 9, scale_and_shift(3, 9).float(), _inputs(6, 29).float()


@exercise(2, "the affine coupling and its log-determinant", reference=_affine_forward_reference)
def affine_coupling_forward(student_fn):
    """Check exercise 2: ``student_fn(x, s_and_t)`` returns ``(y, log_det)`` of RealNVP's affine coupling.

    ``log_det`` is compared with ``slogdet`` of the autograd Jacobian, sample by sample, for 2, 4
    and 6 features (float64), and with a float32 conditioner as the notebook's layers; autograd
    and determinant functions are switched off while the student's code runs (the log-det is
    read off the triangular Jacobian). Returns the student's function when it is right, and a
    reference when not attempted yet.

    Example:
        >>> affine_coupling_forward(_affine_forward_reference) is _affine_forward_reference
        Exercise 2 (the affine coupling and its log-determinant): correct. Well done!
        True
    """
    failures = []
    for n, seed, s_and_t, x in _conditioners():
        got = unpack_pair(call_student(student_fn, x, s_and_t, forbidden=AUTOGRAD + DETERMINANTS,
                                       reason="reading the log-det off the triangular Jacobian"),
                          "affine_coupling_forward")
        x_a, x_b = x[:, :n], x[:, n:]
        with torch.no_grad():
            log_s, t = (v.double() for v in s_and_t(x_a))
        x_a, x_b = x_a.double(), x_b.double()
        y = torch.cat([x_a, x_b * log_s.exp() + t], dim=1)
        if x.dtype == torch.float64:
            # The log-det from the autograd Jacobian of one sample at a time: an independent answer.
            f = lambda v: torch.cat([v[:n], v[n:] * s_and_t(v[None, :n])[0][0].exp() + s_and_t(v[None, :n])[1][0]])
            expected = torch.stack([torch.linalg.slogdet(torch.autograd.functional.jacobian(f, xi)).logabsdet for xi in x])
        else:
            expected = log_s.sum(1)
        kind = f"{2 * n} features{' (float32)' if x.dtype == torch.float32 else ''}"
        try:
            assert_close(got[0], y, f"y for {kind}", atol=1e-8,
                         slips={"the shift is added before scaling, (x_b + t) exp(log_s)" + HINT:
                                torch.cat([x_a, (x_b + t) * log_s.exp()], dim=1),
                                "x_b is multiplied by log_s instead of exp(log_s)" + HINT:
                                torch.cat([x_a, x_b * log_s + t], dim=1),
                                "x_b is divided by exp(log_s) (that is the inverse's direction)":
                                torch.cat([x_a, x_b * (-log_s).exp() + t], dim=1),
                                "the halves are joined in the wrong order (x_a first, then y_b)":
                                _halves_swapped(y, n),
                                "only the transformed half y_b is returned (join it to x_a with torch.cat)": y[:, n:]})
            assert_shape(got[1], (x.shape[0],), "log_det (one number per sample)")
            assert_close(got[1], expected, f"log_det for {kind}", atol=1e-8,
                         slips={"the scales exp(log_s) are summed instead of the log-scales" + HINT: log_s.exp().sum(1),
                                "the sign is flipped (that is the inverse's log-det)": -expected,
                                "the product of the scales is returned, not the sum of their logs":
                                log_s.exp().prod(1),
                                "the log-scales are averaged over the features instead of summed": log_s.mean(1)})
        except CheckFailed as failure:
            failures.append(failure)
    first_named(failures)


@exercise(3, "the inverse of the affine coupling", reference=_affine_inverse_reference)
def affine_coupling_inverse(student_fn):
    """Check exercise 3: ``student_fn(y, s_and_t)`` returns ``(x, log_det_inv)`` of the affine coupling.

    ``y`` is built from known ``x`` for 2, 4 and 6 features (float64), and with a float32
    conditioner as the notebook's layers. Returns the student's function when it is right, and
    a reference when not attempted yet.

    Example:
        >>> affine_coupling_inverse(_affine_inverse_reference) is _affine_inverse_reference
        Exercise 3 (the inverse of the affine coupling): correct. Well done!
        True
    """
    failures = []
    for n, seed, s_and_t, x in _conditioners():
        x_a, x_b = x[:, :n], x[:, n:]
        with torch.no_grad():
            log_s, t = s_and_t(x_a)
            y = torch.cat([x_a, x_b * log_s.exp() + t], dim=1)
            ls_yb, t_yb = (v.double() for v in s_and_t(y[:, n:]))
        got = unpack_pair(call_student(student_fn, y, s_and_t), "affine_coupling_inverse")
        log_s, t, y, x = log_s.double(), t.double(), y.double(), x.double()
        x_a, y_b = x[:, :n], y[:, n:]
        kind = f"{2 * n} features{' (float32)' if s_and_t.net[0].weight.dtype == torch.float32 else ''}"
        try:
            assert_close(got[0], x, f"x recovered from y ({kind})", atol=1e-8,
                         slips={"the shift is removed after unscaling, y_b exp(-log_s) - t" + HINT:
                                torch.cat([x_a, y_b * torch.exp(-log_s) - t], dim=1),
                                "y_b - t is multiplied by exp(log_s) instead of divided":
                                torch.cat([x_a, (y_b - t) * log_s.exp()], dim=1),
                                "the scale and shift are computed from y_b instead of y_a" + HINT:
                                torch.cat([x_a, (y_b - t_yb) * torch.exp(-ls_yb)], dim=1),
                                "the halves are joined in the wrong order (y_a first, then x_b)":
                                _halves_swapped(x, n),
                                "y is returned unchanged (undo the shift, then the scale)": y})
            assert_shape(got[1], (x.shape[0],), "log_det_inv (one number per sample)")
            assert_close(got[1], -log_s.sum(1), f"log_det_inv for {kind}", atol=1e-8,
                         slips={"the sign is flipped: the inverse's log-det is minus the forward one" + HINT:
                                log_s.sum(1),
                                "the log-scales are averaged over the features instead of summed": -log_s.mean(1)})
        except CheckFailed as failure:
            failures.append(failure)
    first_named(failures)


@exercise(4, "a checkerboard mask", reference=checkerboard_mask)
def checkerboard(student_fn):
    """Check exercise 4: ``student_fn(h, w)`` returns an ``(h, w)`` tensor, 1 where ``i + j`` is even.

    Four shapes, square and not; the library's ``checkerboard_mask`` is switched off while the
    student's code runs. The mask must be a number tensor (float, or int), not bool: later cells
    compute ``1 - checkerboard(8, 8)``. Returns the student's function when it is right, and
    ``course_utils.flows.checkerboard_mask`` when not attempted yet.

    Example:
        >>> mine = lambda h, w: ((torch.arange(h)[:, None] + torch.arange(w)[None, :]) % 2 == 0).float()
        >>> checkerboard(mine) is mine
        Exercise 4 (a checkerboard mask): correct. Well done!
        True
    """
    failures = []
    for h, w in ((2, 3), (4, 4), (5, 8), (1, 1)):
        i = torch.arange(h).view(-1, 1)
        j = torch.arange(w).view(1, -1)
        expected = ((i + j) % 2 == 0).double()
        got = call_student(student_fn, h, w, forbidden=[("course_utils.flows.glow.checkerboard_mask", "checkerboard_mask")],
                           reason="building the mask yourself")
        what = f"the {h}x{w} checkerboard"
        if not isinstance(got, torch.Tensor):
            raise CheckFailed(f"{what} should be a torch tensor, but came back as {type(got).__name__}: later cells "
                              "compute with it (1 - checkerboard(8, 8), checkerboard(8, 8).float()), so return a "
                              "tensor" + HINT + ".")
        if got.dtype == torch.bool and got.shape == expected.shape and torch.equal(got.double(), expected):
            raise CheckFailed(f"{what} came back as a bool tensor (True/False). The mask is right, but a later cell "
                              "computes its complement, 1 - checkerboard(8, 8), and torch refuses 1 - a bool "
                              "tensor: turn it into ones and zeros with .float()" + HINT + ".")
        if got.shape != expected.shape and got.numel() == expected.numel() and got.dim() > 2:
            raise CheckFailed(f"{what} should have shape ({h}, {w}), but has shape {tuple(got.shape)}: leave out the "
                              "extra dimension" + HINT + ".")
        try:
            assert_close(got, expected, what, atol=0, rtol=0,
                         slips={"the complement is returned (0 where i + j is even)": 1 - expected,
                                "rows and columns are swapped" + HINT: expected.T,
                                "the mask is striped by rows, (i % 2 == 0), not a checkerboard" + HINT:
                                (i % 2 == 0).double().expand(h, w),
                                "the mask is striped by columns, (j % 2 == 0), not a checkerboard" + HINT:
                                (j % 2 == 0).double().expand(h, w),
                                "i * j is used instead of i + j" + HINT: ((i * j) % 2 == 0).double(),
                                "only the squares with i and j both even are set (i + j is even when both are odd "
                                "too)": ((i % 2 == 0) & (j % 2 == 0)).double()})
        except CheckFailed as failure:
            failures.append(failure)
    first_named(failures)
