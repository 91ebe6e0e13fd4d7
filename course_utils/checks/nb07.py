"""Checks for notebook 07: Glow, 1x1 convolutions, dequantisation and bits per dimension.

The expected values come from independent routes: ``course_utils.data.bits_per_dim`` (tested
against a uniform density and a Gaussian in closed form), the library's ``Squeeze`` (tested by
the flow contract), the ``slogdet`` of the full autograd Jacobian of a 1x1 convolution, and
counts of the integer levels for the categorical baseline.
"""

from __future__ import annotations

import math

import torch

from ..data import DIGIT_LEVELS
from ..data import bits_per_dim as _bits_per_dim
from ..flows.glow import Squeeze
from . import CheckFailed, assert_close, assert_shape, call_student, exercise, unpack_pair

__all__ = ["bits_per_dim", "categorical_bits_per_dim", "unsqueeze", "conv1x1", "categorical_reference",
           "unsqueeze_reference", "conv1x1_reference"]

HINT = " (see the hint under the exercise)"
#: functions that would undo a squeeze for the student
SQUEEZE_SHORTCUTS = ["torch.nn.functional.pixel_shuffle", "torch.pixel_shuffle",
                     "course_utils.flows.glow.Squeeze.inverse", "course_utils.flows.glow.Unsqueeze.forward"]


def categorical_reference(x_train: torch.Tensor, x_test: torch.Tensor, levels: int = DIGIT_LEVELS) -> float:
    """Test bits/dim of an independent per-pixel categorical model with add-one smoothing.

        P_j(k) = (n_j(k) + 1) / (n + K),    bits/dim = -(1 / (m D)) sum_i sum_j log2 P_j(x_ij)

    with ``n_j(k)`` the number of training images whose pixel ``j`` has level ``k``, ``n`` training
    and ``m`` test images of ``D`` pixels, and ``K`` levels. Add-one (Laplace) smoothing gives
    levels never seen at a pixel a small probability instead of 0.

    Args:
        x_train: integer levels ``(n, ...)`` in ``0 .. K-1`` (any image shape).
        x_test: integer levels ``(m, ...)`` of the same image shape.
        levels: ``K``.

    Example:
        >>> round(categorical_reference(torch.zeros(3, 2, dtype=torch.long), torch.ones(1, 2, dtype=torch.long), 2), 4)
        2.3219
    """
    train, test = x_train.reshape(len(x_train), -1).long(), x_test.reshape(len(x_test), -1).long()
    counts = torch.nn.functional.one_hot(train, levels).sum(0).double()          # (D, K)
    log2_p = torch.log2((counts + 1) / (len(train) + levels))
    return -log2_p.gather(1, test.T).mean().item()


def unsqueeze_reference(y: torch.Tensor) -> torch.Tensor:
    """The inverse of the squeeze, ``(b, 4c, h, w) -> (b, c, 2h, 2w)`` (the library's ``Squeeze.inverse``).

        x[:, k, 2i + a, 2j + b] = y[:, 4k + 2a + b, i, j]

    Args:
        y: a squeezed batch ``(b, 4c, h, w)``.

    Example:
        >>> x = torch.randn(2, 1, 4, 4)
        >>> torch.equal(unsqueeze_reference(Squeeze()(x)[0]), x)
        True
    """
    return Squeeze().inverse(y)[0]


def conv1x1_reference(x: torch.Tensor, W: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A 1x1 convolution with the matrix ``W`` and its log-determinant, one per image.

        y[:, :, i, j] = W x[:, :, i, j],     log|det J| = h * w * log|det W|

    Args:
        x: images ``(batch, c, h, w)``.
        W: a ``(c, c)`` matrix.

    Example:
        >>> y, log_det = conv1x1_reference(torch.ones(2, 2, 3, 3), 2 * torch.eye(2))
        >>> y[0, :, 0, 0].tolist(), [round(v, 4) for v in log_det.tolist()]      # 9 * log 4
        ([2.0, 2.0], [12.4766, 12.4766])
    """
    h, w = x.shape[2:]
    return torch.einsum("oc,bchw->bohw", W, x), h * w * torch.linalg.slogdet(W).logabsdet.expand(x.shape[0])


# ------------------------------------------------------------------------------ exercise 1
@exercise(1, "bits per dimension from an NLL", reference=_bits_per_dim)
def bits_per_dim(student_fn):
    """Check exercise 1: ``student_fn(nll_nats, num_dims, levels)`` returns bits per dimension.

    ``nll_nats`` is the NLL (nats, per image) of dequantised ``K``-level data in [0, 1]^D;
    compared with ``(nll + D log K) / (D log 2)`` for floats and a tensor of NLLs, on the digits
    (D = 64, K = 17) and on 32x32 colour images (D = 3072, K = 256).
    ``course_utils.data.bits_per_dim`` is switched off while the student's code runs. Returns the
    student's function when it is right, and ``course_utils.data.bits_per_dim`` when the exercise
    is not attempted yet.

    Example:
        >>> mine = lambda nll, D, K: (nll + D * math.log(K)) / (D * math.log(2))
        >>> bits_per_dim(mine) is mine
        Exercise 1 (bits per dimension from an NLL): correct. Well done!
        True
    """
    cases = [(0.0, 64, 17), (-60.0, 64, 17), (250.0, 64, 17), (4000.0, 3072, 256),
             (torch.tensor([-40.0, 10.0, 95.5], dtype=torch.float64), 64, 17)]
    for nll, D, K in cases:
        got = call_student(student_fn, nll, D, K, forbidden=["course_utils.data.bits_per_dim"],
                           reason="the bits/dim bookkeeping")
        expected = (nll + D * math.log(K)) / (D * math.log(2))
        shown = nll.tolist() if isinstance(nll, torch.Tensor) else nll
        assert_close(got, expected, f"bits/dim for NLL = {shown} nats, D = {D}, K = {K}", atol=1e-9, slips={
            "the D log K term is left out: that counts the density on [0, 1]^D, not the K-level data" + HINT:
                nll / (D * math.log(2)),
            "D log K is subtracted instead of added (dividing by K adds D log K to the NLL)" + HINT:
                (nll - D * math.log(K)) / (D * math.log(2)),
            "K - 1 is used instead of K levels (pixels 0..K-1 are K levels)" + HINT:
                (nll + D * math.log(K - 1)) / (D * math.log(2)),
            "the result is in nats per dimension: divide by log 2 to get bits" + HINT:
                (nll + D * math.log(K)) / D,
            "log K is added once instead of once per dimension (D log K)" + HINT:
                (nll + math.log(K)) / (D * math.log(2)),
            "the NLL is not divided by D (bits per image, not per dimension)" + HINT:
                (nll + D * math.log(K)) / math.log(2),
            "only D log K is divided by D log 2: put brackets around the sum, (nll + D log K) / (D log 2)" + HINT:
                nll + D * math.log(K) / (D * math.log(2)),
            "log 10 is used instead of log 2 (bits are base-2 digits)":
                (nll + D * math.log(K)) / (D * math.log(10)),
            "log2 K is added to the NLL in nats per dimension (the NLL still needs dividing by log 2)" + HINT:
                nll / D + math.log2(K)})


# ------------------------------------------------------------------------------ exercise 2
def _train_test(seed: int, n: int, m: int, shape: tuple[int, ...], K: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Skewed integer images: most levels low, so the test split has levels unseen in training."""
    gen = torch.Generator().manual_seed(seed)
    u = torch.rand((n + m, *shape), generator=gen)
    x = (u ** 3 * K).long().clamp(max=K - 1)
    return x[:n], x[n:]


@exercise(2, "a per-pixel categorical baseline", reference=categorical_reference)
def categorical_bits_per_dim(student_fn):
    """Check exercise 2: ``student_fn(x_train, x_test, levels)`` returns the test bits/dim of a
    per-pixel categorical model with add-one smoothing, fitted on ``x_train``.

    Compared with counts of the levels (``categorical_reference``) on three small sets of integer
    images, where some test pixels have levels never seen there in training. Returns the
    student's function when it is right, and ``categorical_reference`` when the exercise is not
    attempted yet.

    Example:
        >>> categorical_bits_per_dim(categorical_reference) is categorical_reference
        Exercise 2 (a per-pixel categorical baseline): correct. Well done!
        True
    """
    for seed, n, m, shape, K in ((0, 40, 15, (1, 3, 3), 5), (1, 200, 50, (1, 4, 4), 17), (2, 7, 3, (2, 2, 2), 4),
                                 (3, 30, 10, (1, 3, 3), 6)):
        x_train, x_test = _train_test(seed, n, m, shape, K)
        if seed == 3:                                   # the top level never seen in training, only in testing
            x_train, x_test[0, 0, 0, 0] = x_train.clamp(max=K - 2), K - 1
        got = call_student(student_fn, x_train, x_test, K, errors={
            r"out of bounds|index \d+ is out": "a test level was never seen in training, so the count table is too "
            "small for it: F.one_hot(train) without num_classes=levels counts only up to the largest level in "
            "training. Pass num_classes=levels (every level 0..K-1 gets a count)" + HINT})
        if isinstance(got, torch.Tensor):
            if got.numel() != 1:
                raise CheckFailed(f"the result should be one number (the mean over test images and pixels), "
                                  f"but has shape {tuple(got.shape)}" + HINT)
            got = got.item()
        what = f"test bits/dim ({n} training and {m} test images of shape {shape}, K = {K})"
        if isinstance(got, float) and math.isinf(got):
            raise CheckFailed(f"{what} should be finite, but is infinite: a level never seen at a pixel in "
                              "training gets probability 0 there. Add one to every count (and K to the "
                              "total)" + HINT)
        expected = categorical_reference(x_train, x_test, K)
        train, test = x_train.reshape(n, -1), x_test.reshape(m, -1)
        counts = torch.nn.functional.one_hot(train, K).sum(0).double()
        pick = lambda p: -torch.log2(p).gather(1, test.T).mean().item()
        pooled = (torch.bincount(train.flatten(), minlength=K).double() + 1) / (train.numel() + K)
        assert_close(got, expected, what, atol=1e-8, slips={
            "the natural log is used: that is nats per dimension, not bits" + HINT: expected * math.log(2),
            "the smoothed counts are divided by n + 1 instead of n + K (they no longer sum to 1)" + HINT:
                pick((counts + 1) / (n + 1)),
            "the smoothed counts are divided by n instead of n + K (they no longer sum to 1)" + HINT:
                pick((counts + 1) / n),
            "one categorical is shared by all pixels (count per pixel: P_j(k) for each pixel j)" + HINT:
                pick(pooled.expand(counts.shape[0], K)),
            "the model is scored on its training images instead of the test images":
                -torch.log2((counts + 1) / (n + K)).gather(1, train.T).mean().item(),
            "the bits are summed over the pixels (bits per image); average over the pixels too, for bits per "
            "dimension" + HINT: expected * train.shape[1],
            "the smoothing adds K to every count instead of 1": pick((counts + K) / (n + K * K))})


# ------------------------------------------------------------------------------ exercise 3
@exercise(3, "unsqueeze, the inverse of the squeeze", reference=unsqueeze_reference)
def unsqueeze(student_fn):
    """Check exercise 3: ``student_fn(y)`` maps ``(b, 4c, h, w)`` to ``(b, c, 2h, 2w)``, undoing ``Squeeze``.

    Compared with ``Squeeze().inverse`` on four shapes (square first), and
    ``student_fn(Squeeze()(x)[0]) == x`` is checked; ``pixel_shuffle`` and the library's
    unsqueeze are switched off while the student's code runs. Returns the student's function when
    it is right, and ``unsqueeze_reference`` when the exercise is not attempted yet.

    Example:
        >>> def mine(y):
        ...     b, c4, h, w = y.shape
        ...     x = y.reshape(b, c4 // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
        ...     return x.reshape(b, c4 // 4, 2 * h, 2 * w)
        >>> unsqueeze(mine) is mine
        Exercise 3 (unsqueeze, the inverse of the squeeze): correct. Well done!
        True
    """
    gen = torch.Generator().manual_seed(7)
    for b, c, h, w in ((2, 1, 2, 2), (3, 2, 3, 3), (2, 3, 2, 4), (1, 1, 1, 1)):
        y = torch.randn(b, 4 * c, h, w, generator=gen, dtype=torch.float64)
        expected, _ = Squeeze().inverse(y)
        got = _unsqueezed(call_student(student_fn, y, forbidden=SQUEEZE_SHORTCUTS, reason="writing the unsqueeze yourself"))
        r = y.reshape(b, c, 2, 2, h, w)
        slips = {"a plain reshape is used: it lays the four channels of a block out as whole sub-images "
                 "instead of interleaving them" + HINT: y.reshape(b, c, 2 * h, 2 * w),
                 "the two offsets inside a block are swapped (every 2x2 block comes out transposed)" + HINT:
                 r.permute(0, 1, 4, 3, 5, 2).reshape(b, c, 2 * h, 2 * w),
                 "channel 4k + 2a + b is read as offset-major, c * (2a + b) + k (the squeeze puts the four "
                 "offsets of input channel k next to each other)" + HINT:
                 y.reshape(b, 2, 2, c, h, w).permute(0, 3, 4, 1, 5, 2).reshape(b, c, 2 * h, 2 * w)}
        if h == w:
            slips["rows and columns are swapped: the image comes out transposed (the row offset a belongs "
                  "next to the row index i)" + HINT] = expected.transpose(2, 3)
            slips["the squeeze's own permutation (0, 1, 3, 5, 2, 4) is applied again: the inverse needs "
                  "its inverse permutation" + HINT] = r.permute(0, 1, 3, 5, 2, 4).reshape(b, c, 2 * h, 2 * w)
        assert_close(got, expected, f"unsqueeze of a ({b}, {4 * c}, {h}, {w}) batch", atol=0, rtol=0, slips=slips)
    x = torch.randn(2, 1, 8, 8, generator=gen, dtype=torch.float64)
    back = _unsqueezed(call_student(student_fn, Squeeze()(x)[0], forbidden=SQUEEZE_SHORTCUTS,
                                    reason="writing the unsqueeze yourself"))
    assert_close(back, x, "unsqueeze(squeeze(x)) for a batch of 8x8 images", atol=0, rtol=0)


def _unsqueezed(out):
    """The student's unsqueeze result; a pair (as the library's layers return) is named."""
    if isinstance(out, (tuple, list)):
        raise CheckFailed(f"unsqueeze returned a {type(out).__name__} of {len(out)}; it should return the tensor x "
                          "alone, (b, c, 2h, 2w) (the library's layers return a pair (x, log_det), this function "
                          "does not)")
    return out


# ------------------------------------------------------------------------------ exercise 4
#: the raw error of NumPy on a tensor with a graph (the notebook passes a layer's W), named
NUMPY_WITH_GRAD = {r"Can't call numpy\(\) on Tensor that requires grad":
                   "your function calls .numpy() (or a NumPy function) on a tensor that requires grad; the notebook "
                   "passes a layer's weight matrix, which does. Stay in torch (torch.linalg has the determinant "
                   "functions), or use W.detach() first" + HINT}


#: W @ x on images (b, c, h, w) multiplies the last two dimensions: named
W_AT_X = {r"shapes cannot be multiplied|size mismatch|Expected size for first two dimensions":
          "a matrix product got shapes that do not fit: W @ x multiplies the last two dimensions of x (h and w), "
          "but W must mix the channels, dimension 1. Bring the channels to the end first, or write the sum over "
          "the channels out" + HINT}


def _conv1x1_cases():
    gen = torch.Generator().manual_seed(11)
    cases = []
    for c, h, w, flip_sign in ((3, 2, 3, True), (4, 3, 5, False), (2, 1, 3, True)):
        W = torch.randn(c, c, generator=gen, dtype=torch.float64) + 0.5 * torch.eye(c, dtype=torch.float64)
        if (torch.det(W) < 0) != flip_sign:
            W[0] = -W[0]                     # choose the sign of det W
        cases.append((W, torch.randn(3, c, h, w, generator=gen, dtype=torch.float64)))
    return cases


@exercise(4, "the 1x1 convolution and its log-determinant", reference=conv1x1_reference)
def conv1x1(student_fn):
    """Check exercise 4: ``student_fn(x, W)`` returns ``(y, log_det)`` of a 1x1 convolution.

    ``y[:, :, i, j] = W x[:, :, i, j]`` at every pixel, and ``log_det`` (shape ``(batch,)``) is
    compared with ``slogdet`` of the full autograd Jacobian of one image at a time, on three
    image sizes (two of them with ``det W < 0``). Returns the student's function when it is right,
    and ``conv1x1_reference`` when the exercise is not attempted yet.

    Example:
        >>> conv1x1(conv1x1_reference) is conv1x1_reference
        Exercise 4 (the 1x1 convolution and its log-determinant): correct. Well done!
        True
    """
    for W, x in _conv1x1_cases():
        b, c, h, w = x.shape
        got = unpack_pair(call_student(student_fn, x, W, errors=W_AT_X), "conv1x1(x, W)")
        y = torch.einsum("oc,bchw->bohw", W, x)
        if h == c:                              # W @ x runs then, mixing the rows of each channel
            slips_y = {"W @ x is used: it mixes each image's rows (the last two dimensions are h and w), not the "
                       "channels, dimension 1" + HINT: W @ x}
        else:
            slips_y = {}
        assert_close(got[0], y, f"y for a ({b}, {c}, {h}, {w}) batch", atol=1e-9, slips={
            "W^T is applied instead of W (output channel o is sum_c W[o, c] x_c)" + HINT:
                torch.einsum("co,bchw->bohw", W, x),
            "the channels are mixed with W^-1 (that is the inverse map)" + HINT:
                torch.einsum("oc,bchw->bohw", torch.linalg.inv(W), x), **slips_y})
        assert_shape(got[1], (b,), "log_det (one number per image)")
        log_det = got[1]
        if isinstance(log_det, torch.Tensor) and torch.isnan(log_det).any():
            raise CheckFailed(f"log_det contains NaN for a W with det W = {torch.det(W).item():.4g} < 0: "
                              "the log-det needs log|det W|, e.g. torch.linalg.slogdet(W).logabsdet" + HINT)
        # the independent answer: slogdet of the (c h w) x (c h w) Jacobian of one image
        f = lambda v: torch.einsum("oc,chw->ohw", W, v.reshape(c, h, w)).reshape(-1)
        expected = torch.stack([torch.linalg.slogdet(torch.autograd.functional.jacobian(f, xi.reshape(-1))).logabsdet
                                for xi in x])
        one = torch.linalg.slogdet(W).logabsdet
        assert_close(log_det, expected, f"log_det of a {c}-channel {h}x{w} image", atol=1e-8, slips={
            f"the factor h * w = {h * w} is missing: W acts on every pixel, so its log|det| counts h * w times" + HINT:
                one.expand(b),
            "the sign is flipped (that is the inverse's log-det)": -expected,
            "det W is used instead of log|det W|" + HINT: (h * w * torch.det(W)).expand(b),
            "h + w is used instead of h * w (one copy of W per pixel)" + HINT: ((h + w) * one).expand(b)})
    # the notebook's use: a float32 image and the layer's own W, which requires grad
    gen = torch.Generator().manual_seed(12)
    W = (torch.randn(4, 4, generator=gen) + torch.eye(4)).requires_grad_(True)
    x = torch.randn(1, 4, 2, 2, generator=gen)
    got = unpack_pair(call_student(student_fn, x, W, errors=NUMPY_WITH_GRAD), "conv1x1(x, W)")
    y, log_det = conv1x1_reference(x.double(), W.detach().double())
    assert_close(got[0], y, "y for a float32 image and a W that requires grad (as the notebook passes the layer's "
                 "matrix)", atol=1e-8)
    assert_close(got[1], log_det, "log_det for a float32 image and a W that requires grad", atol=1e-8)
