"""Checks for notebook 09: emerging convolutions (masks, log-det from the centre taps, inverse by substitution)."""

import torch
import torch.nn.functional as F

from ..flows.emerging import emerging_log_det, emerging_mask, solve_pixel as _solve_pixel, wavefront_steps
from . import CheckFailed, assert_close, assert_shape, call_student, describe, exercise

__all__ = ["make_mask", "log_det_from_taps", "solve_pixel", "wavefront"]

HINT = " (see the hint under the exercise)"

#: functions that differentiate for you (a Jacobian's slogdet would skip the centre-tap idea)
AUTOGRAD = ["torch.autograd.functional.jacobian", "torch.func.jacrev", "torch.func.jacfwd"]
#: the library's answers to the exercises
LIBRARY = ["course_utils.flows.emerging.emerging_mask", "course_utils.flows.emerging.emerging_log_det",
           "course_utils.flows.emerging.solve_pixel", "course_utils.flows.emerging.masked_conv_inverse",
           "course_utils.flows.emerging.wavefront_steps"]


def _mask_by_rule(c: int, k: int, rows, row_cols, centre) -> torch.Tensor:
    """A mask written out entry by entry: ``rows(a)`` keeps whole kernel rows, ``row_cols(b)``
    columns of the middle row, ``centre(o, i)`` the centre tap's entries."""
    p = k // 2
    m = torch.zeros(c, c, k, k, dtype=torch.float64)
    for o in range(c):
        for i in range(c):
            for a in range(k):
                for b in range(k):
                    if a != p:
                        keep = rows(a - p)
                    elif b != p:
                        keep = row_cols(b - p)
                    else:
                        keep = centre(o, i)
                    m[o, i, a, b] = float(keep)
    return m


@exercise(1, "the mask of an autoregressive convolution", reference=emerging_mask)
def make_mask(student_fn):
    """Check exercise 1: ``student_fn(channels, kernel_size)`` returns the ``(c, c, k, k)`` raster-order mask.

    Compared, entry by entry, with the rule "rows above, pixels to the left in the same row, and
    at the centre input channels ``i <= o``" for ``(c, k)`` = (1, 3), (2, 3), (3, 5), (4, 3); the
    library's mask is switched off while the student's code runs. Returns the student's function
    when it is right, and ``course_utils.flows.emerging.emerging_mask`` when the exercise is not
    attempted yet.

    Example:
        >>> make_mask(emerging_mask) is emerging_mask
        Exercise 1 (the mask of an autoregressive convolution): correct. Well done!
        True
    """
    for c, k in ((1, 3), (2, 3), (3, 5), (4, 3)):
        got = call_student(student_fn, c, k, forbidden=LIBRARY, reason="building the mask yourself")
        above, left = (lambda d: d < 0), (lambda d: d < 0)
        expected = _mask_by_rule(c, k, above, left, lambda o, i: i <= o)
        slips = {
            "the centre tap is kept whole: at its own pixel, output channel o may only read input "
            "channels i <= o, or the Jacobian is not triangular" + HINT: _mask_by_rule(c, k, above, left, lambda o, i: True),
            "the centre's triangle is transposed: output channel o reads channels i >= o (that is "
            "the flipped mask's centre)" + HINT: _mask_by_rule(c, k, above, left, lambda o, i: i >= o),
            "the centre's diagonal is masked out (i < o): the Jacobian's diagonal would be 0, "
            "and the convolution not invertible": _mask_by_rule(c, k, above, left, lambda o, i: i < o),
            "the rows below are kept instead of the rows above (kernel row a reads image row "
            "i + a - k//2)" + HINT: _mask_by_rule(c, k, lambda d: d > 0, left, lambda o, i: i <= o),
            "the pixels to the right in the middle row are kept instead of those to the left"
            + HINT: _mask_by_rule(c, k, above, lambda d: d > 0, lambda o, i: i <= o),
            "the whole middle row is kept: the pixels to the right of the centre come later in raster order, "
            "so they must be masked too" + HINT: _mask_by_rule(c, k, above, lambda d: d != 0, lambda o, i: i <= o),
            "the mask is flipped: that is mask 2 of the pair (rows below, pixels to the right, channels i >= o); "
            "exercise 1 builds mask 1, and mask 2 is its flip, m.flip(0, 1, 2, 3)":
                _mask_by_rule(c, k, lambda d: d > 0, lambda d: d > 0, lambda o, i: i >= o),
        }
        slips = {s: v for s, v in slips.items() if not torch.equal(v, expected)}   # e.g. one channel
        assert_close(got, expected, f"the mask for {c} channels and a {k}x{k} kernel", atol=0, rtol=0, slips=slips)


def _masked_kernels(c: int, k: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two masked kernels (the second with the flipped mask) whose centre diagonals have both signs."""
    gen = torch.Generator().manual_seed(seed)
    p = k // 2
    kernels = []
    for flip in (False, True):
        W = 0.3 * torch.randn(c, c, k, k, generator=gen, dtype=torch.float64)
        signs = torch.tensor([1.0, -1.0, 1.0, -1.0][:c], dtype=torch.float64) * (-1 if flip else 1)
        W[:, :, p, p] += torch.diag(signs * (0.5 + torch.rand(c, generator=gen, dtype=torch.float64)))
        kernels.append(W * emerging_mask(c, k, flip=flip).double())
    return kernels[0], kernels[1]


def _jacobian_log_det(W1, W2, h, w) -> torch.Tensor:
    """slogdet of the autograd Jacobian of x -> conv(conv(x; W1); W2) on one h x w image."""
    c, p = W1.shape[0], W1.shape[-1] // 2
    f = lambda v: F.conv2d(F.conv2d(v.view(1, c, h, w), W1, padding=p), W2, padding=p).reshape(-1)
    J = torch.autograd.functional.jacobian(f, torch.zeros(c * h * w, dtype=torch.float64))
    return torch.linalg.slogdet(J).logabsdet


@exercise(2, "the log-determinant from the centre taps", reference=emerging_log_det)
def log_det_from_taps(student_fn):
    """Check exercise 2: ``student_fn(W1, W2, h, w)`` returns log|det J| of the two masked convolutions.

    Compared with ``slogdet`` of the autograd Jacobian of ``conv(conv(x; W1); W2)`` on an
    ``h x w`` image, for three kernel pairs whose centre taps have negative diagonal entries too;
    autograd's Jacobian functions and the library's answer are switched off while the student's
    code runs. Returns the student's function when it is right, and
    ``course_utils.flows.emerging.emerging_log_det`` when the exercise is not attempted yet.

    Example:
        >>> log_det_from_taps(emerging_log_det) is emerging_log_det
        Exercise 2 (the log-determinant from the centre taps): correct. Well done!
        True
    """
    for (c, k, h, w), seed in zip(((2, 3, 3, 4), (3, 3, 2, 2), (1, 5, 4, 3)), (0, 1, 2)):
        W1, W2 = _masked_kernels(c, k, seed)
        expected = _jacobian_log_det(W1, W2, h, w)
        got = call_student(student_fn, W1, W2, h, w, forbidden=AUTOGRAD + LIBRARY,
                           reason="reading the log-det off the centre taps")
        if not isinstance(got, torch.Tensor):
            raise CheckFailed(f"the log-det came back as {type(got).__name__} {describe(got) if isinstance(got, float) else ''}"
                              "; it should be a tensor (one number), since the notebook goes on with it as one "
                              "(.item(), and inside a layer's loss): keep the computation in torch, e.g. "
                              "torch.log(d.abs()).sum()" + HINT)
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.reshape(())
            if torch.isnan(got):
                raise CheckFailed(f"the log-det came back as NaN for {c} channels: some centre taps are "
                                  "negative, so take the log of their absolute values" + HINT)
            if torch.isinf(got):
                raise CheckFailed(f"the log-det came back as {got.item()} for {c} channels, expected a finite number: a log of 0, so "
                                  "the centre taps' zero entries are included. Only the diagonal W[c, c, p, p] "
                                  "of each centre tap is on the Jacobian's diagonal" + HINT)
        p = k // 2
        per_pixel = [W[:, :, p, p].diagonal().abs().log().sum() for W in (W1, W2)]
        slips = {"the factor h w is missing: the lecture's sum is per pixel, and the centre taps repeat on "
                 "the diagonal at every one of the h w pixels" + HINT: per_pixel[0] + per_pixel[1],
                 "only the first kernel's centre taps are counted; the second convolution's Jacobian "
                 "adds its own log-det": h * w * per_pixel[0],
                 "the kernels are summed over their k x k taps first; only the centre tap is on the "
                 "Jacobian's diagonal": h * w * sum(torch.linalg.slogdet(W.sum((2, 3))).logabsdet for W in (W1, W2)),
                 "h + w multiplies the per-pixel sum instead of h w (there are h w pixels)" + HINT:
                     (h + w) * (per_pixel[0] + per_pixel[1]),
                 "the second kernel's log-det is subtracted: the two convolutions are composed, so their "
                 "log-dets add" + HINT: h * w * (per_pixel[0] - per_pixel[1])}
        assert_close(got, expected, f"log|det J| for {c} channels, {k}x{k} kernels, a {h}x{w} image",
                     atol=1e-8, slips=slips)
    # the notebook's use: a layer's float32 kernels, which require grad
    W1, W2 = (W.float().requires_grad_(True) for W in _masked_kernels(3, 3, 3))
    got = call_student(student_fn, W1, W2, 4, 4, forbidden=AUTOGRAD + LIBRARY, errors={
        r"Can't call numpy\(\) on Tensor that requires grad":
            "your function calls .numpy() (or a NumPy function) on a kernel that requires grad; the notebook passes "
            "a layer's kernels, which do. Stay in torch, or use W.detach() first" + HINT},
        reason="reading the log-det off the centre taps")
    if not isinstance(got, torch.Tensor):
        raise CheckFailed(f"the log-det of float32 kernels came back as {type(got).__name__}; it should be a tensor" + HINT)
    assert_close(got.reshape(()) if got.numel() == 1 else got,
                 _jacobian_log_det(W1.detach().double(), W2.detach().double(), 4, 4),
                 "log|det J| for a layer's float32 kernels that require grad (3 channels, a 4x4 image)", atol=1e-8)


def _raster_partial(x, i, j, gen):
    """``x`` with pixel (i, j) and every later pixel (raster order) replaced by large noise."""
    b, c, h, w = x.shape
    partial = x.clone()
    later = (torch.arange(h)[:, None] * w + torch.arange(w)[None, :]) >= i * w + j
    noise = 50 + 10 * torch.randn(b, c, h, w, generator=gen, dtype=torch.float64)
    partial[:, :, later] = noise[:, :, later]
    return partial


@exercise(3, "one step of the substitution inverse", reference=_solve_pixel)
def solve_pixel(student_fn):
    """Check exercise 3: ``student_fn(y, x, W, bias, i, j)`` returns pixel ``(i, j)`` of ``x``, shape ``(batch, c)``.

    ``y = conv2d(x, W, bias, padding=k//2)`` with a masked ``W`` (lower triangular centre);
    the check passes ``x`` with the pixels up to ``(i, j)`` solved and pixel ``(i, j)`` and all later
    ones filled with large noise, and compares with the true pixel, at corners, borders and inside.
    The library's inverse is switched off while the student's code runs. Returns the student's
    function when it is right, and ``course_utils.flows.emerging.solve_pixel`` when the exercise
    is not attempted yet.

    Example:
        >>> from course_utils.flows.emerging import solve_pixel as library_solve_pixel
        >>> solve_pixel(library_solve_pixel) is library_solve_pixel
        Exercise 3 (one step of the substitution inverse): correct. Well done!
        True
    """
    gen = torch.Generator().manual_seed(9)
    c, k, h, w, p = 3, 3, 4, 5, 1
    W = _masked_kernels(c, k, seed=5)[0]
    W[:, :, p, p] += torch.tril(torch.full((c, c), 0.7, dtype=torch.float64), -1)   # a truly triangular centre
    T = W[:, :, p, p]
    bias = torch.randn(c, generator=gen, dtype=torch.float64)
    x = torch.randn(2, c, h, w, generator=gen, dtype=torch.float64)
    y = F.conv2d(x, W, bias, padding=p)
    solve = lambda r: torch.linalg.solve_triangular(T, r.t(), upper=False).t()
    for i, j in ((0, 0), (0, 4), (1, 0), (2, 2), (3, 4)):
        partial = _raster_partial(x, i, j, gen)
        got = call_student(student_fn, y, partial, W, bias, i, j, forbidden=LIBRARY, reason="solving one pixel yourself")
        expected = x[:, :, i, j]
        if isinstance(got, torch.Tensor) and tuple(got.shape) == (c, 2):
            raise CheckFailed(f"pixel ({i}, {j}) has shape ({c}, 2), the transpose of (batch, c) = (2, {c}): "
                              "solve_triangular solves for the columns of R, so transpose its result back (.T)" + HINT)
        assert_shape(got, (2, c), f"pixel ({i}, {j}) for a batch of 2 images with {c} channels")
        r = T @ expected.t()                                  # what is left for the centre: T x_ij
        flipped = F.conv2d(F.pad(partial, (p, p, p, p))[:, :, i:i + k, j:j + k],
                           (W * (1 - _centre(k))).flip(2, 3)).reshape(2, c)
        slips = {"the bias is not subtracted from y" + HINT: expected + solve(bias.expand(2, c)),
                 "the bias is added instead of subtracted" + HINT: expected + 2 * solve(bias.expand(2, c)),
                 "the centre tap T is treated as diagonal (divided by its diagonal, or solved as upper "
                 "triangular): solve the lower triangular system T x = r" + HINT: (r / T.diagonal()[:, None]).t(),
                 "the centre tap is not left out of the sum: it multiplies pixel (i, j) itself, which is not "
                 "solved yet" + HINT: expected - partial[:, :, i, j],
                 "the kernel is flipped: PyTorch's conv2d is a cross-correlation, tap (a, b) reads pixel "
                 "(i + a - k//2, j + b - k//2)" + HINT: solve(y[:, :, i, j] - bias - flipped)}
        slips = {s: v for s, v in slips.items() if not torch.allclose(v, expected)}
        assert_close(got, expected, f"pixel ({i}, {j}) of x", atol=1e-8, slips=slips)


def _centre(k: int) -> torch.Tensor:
    m = torch.zeros(k, k, dtype=torch.float64)
    m[k // 2, k // 2] = 1
    return m


def _depth(h: int, w: int) -> torch.Tensor:
    """The longest chain of dependencies ending at each pixel (3x3 mask), by dynamic programming."""
    reads = [(-1, -1), (-1, 0), (-1, 1), (0, -1)]
    depth = torch.zeros(h, w, dtype=torch.long)
    for i in range(h):
        for j in range(w):
            prev = [depth[i + a, j + b] for a, b in reads if 0 <= i + a < h and 0 <= j + b < w]
            depth[i, j] = 1 + max(prev) if prev else 0
    return depth


@exercise(4, "which pixels can be solved together", reference=wavefront_steps)
def wavefront(student_fn):
    """Check exercise 4: ``student_fn(h, w)`` returns an ``(h, w)`` integer tensor: each pixel's step.

    Right when every pixel's step is larger than the step of each pixel it reads through a 3x3
    mask (the three above it and the one to its left), and the number of distinct steps is the
    fewest possible (the longest chain of dependencies), for 2x2, 3x4, 5x3 and 8x8 images. The
    library's schedule is switched off while the student's code runs. Returns the student's
    function when it is right, and ``course_utils.flows.emerging.wavefront_steps`` when the
    exercise is not attempted yet.

    Example:
        >>> mine = lambda h, w: 2 * torch.arange(h)[:, None] + torch.arange(w)[None, :]
        >>> wavefront(mine) is mine
        Exercise 4 (which pixels can be solved together): correct. Well done!
        True
    """
    for h, w in ((2, 2), (3, 4), (5, 3), (8, 8)):
        got = call_student(student_fn, h, w, forbidden=LIBRARY, reason="finding the schedule yourself")
        assert_shape(got, (h, w), f"the steps of a {h}x{w} image")
        t = torch.as_tensor(got)
        if t.is_floating_point() and not torch.equal(t, t.round()):
            raise CheckFailed(f"the steps should be whole numbers, got {t.tolist()}")
        t = t.long()
        for i in range(h):
            for j in range(w):
                for a, b in ((-1, -1), (-1, 0), (-1, 1), (0, -1)):
                    if 0 <= i + a < h and 0 <= j + b < w and t[i + a, j + b] >= t[i, j]:
                        where = {(-1, -1): "above left", (-1, 0): "above", (-1, 1): "above right",
                                 (0, -1): "to the left"}[(a, b)]
                        raise CheckFailed(
                            f"in a {h}x{w} image, pixel ({i}, {j}) gets step {t[i, j].item()}, but it reads pixel "
                            f"({i + a}, {j + b}) ({where}), which gets step {t[i + a, j + b].item()}: expected every "
                            "pixel's step to be larger than the steps of all the pixels it reads" + HINT)
        fewest = int(_depth(h, w).max()) + 1
        n_steps = len(torch.unique(t))
        if n_steps != fewest:
            raise CheckFailed(f"for a {h}x{w} image every pixel comes after the pixels it reads, but your schedule "
                              f"takes {n_steps} steps; expected {fewest}, the fewest possible (raster order takes "
                              f"h w = {h * w})" + HINT)
