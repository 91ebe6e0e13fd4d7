"""Notebook 09's slip corpus (``RIGHT``/``WRONG``, see ``corpus_from`` in ``tests/checkcontract.py``)."""

import math

import numpy as np
import torch
import torch.nn.functional as F

from test_checks_nb09 import centre_diagonals, log_det, log_det_via_jacobian, mask_with, pixel_via_library, pixel_with


# ------------------------------------------------------------------ exercise 1: the mask
def mask_loops(channels, kernel_size):
    k, p = kernel_size, kernel_size // 2
    m = torch.zeros(channels, channels, k, k)
    for o in range(channels):
        for i in range(channels):
            for a in range(k):
                for b in range(k):
                    if a < p or (a == p and b < p) or (a == p and b == p and i <= o):
                        m[o, i, a, b] = 1.0
    return m


def mask_comparisons(channels, kernel_size):
    k, p = kernel_size, kernel_size // 2
    a, b = torch.arange(k)[:, None], torch.arange(k)[None, :]
    before = ((a < p) | ((a == p) & (b < p))).double()              # raster order before the centre
    o, i = torch.arange(channels)[:, None], torch.arange(channels)[None, :]
    m = before.expand(channels, channels, k, k).clone()
    m[:, :, p, p] = (i <= o).double()
    return m


def mask_whole_middle_row(channels, kernel_size):
    m = mask_with()(channels, kernel_size)
    p = kernel_size // 2
    m[:, :, p, p + 1:] = 1                                          # the right half of the row too
    return m


# ------------------------------------------------------------------ exercise 2: the log-det
def log_det_loop(W1, W2, h, w):
    p = W1.shape[-1] // 2
    total = torch.zeros((), dtype=W1.dtype)
    for W in (W1, W2):
        for c in range(W.shape[0]):
            total = total + torch.log(torch.abs(W[c, c, p, p]))
    return h * w * total


def log_det_slogdet_of_taps(W1, W2, h, w):
    p = W1.shape[-1] // 2
    return h * w * sum(torch.linalg.slogdet(W[:, :, p, p]).logabsdet for W in (W1, W2))


def log_det_float(W1, W2, h, w):
    p = W1.shape[-1] // 2
    return h * w * sum(math.log(abs(W[c, c, p, p].item())) for W in (W1, W2) for c in range(W.shape[0]))


# ------------------------------------------------------------------ exercise 3: one pixel
def pixel_forward_substitution(y, x, W, bias, i, j):
    k, p = W.shape[-1], W.shape[-1] // 2
    c = W.shape[0]
    padded = F.pad(x, (p, p, p, p))
    out = torch.zeros(x.shape[0], c, dtype=x.dtype)
    for o in range(c):
        r = y[:, o, i, j] - bias[o]
        for a in range(k):
            for b in range(k):
                if (a, b) != (p, p):
                    r = r - padded[:, :, i + a, j + b] @ W[o, :, a, b]
        for q in range(o):
            r = r - out[:, q] * W[o, q, p, p]
        out[:, o] = r / W[o, o, p, p]
    return out


def pixel_conv2d(y, x, W, bias, i, j):
    k, p = W.shape[-1], W.shape[-1] // 2
    W_off = W.clone()
    W_off[:, :, p, p] = 0
    patch = F.pad(x, (p, p, p, p))[:, :, i:i + k, j:j + k]
    r = y[:, :, i, j] - bias - F.conv2d(patch, W_off).flatten(1)
    return torch.linalg.solve_triangular(W[:, :, p, p], r.unsqueeze(-1), upper=False).squeeze(-1)


def pixel_no_padding(y, x, W, bias, i, j):
    k, p = W.shape[-1], W.shape[-1] // 2
    W_off = W.clone()
    W_off[:, :, p, p] = 0
    patch = x[:, :, max(i - p, 0):i + p + 1, max(j - p, 0):j + p + 1]
    W_off = W_off[:, :, p - (i - max(i - p, 0)):, p - (j - max(j - p, 0)):][:, :, :patch.shape[2], :patch.shape[3]]
    r = y[:, :, i, j] - bias - torch.einsum("oiab,niab->no", W_off, patch)
    return torch.linalg.solve_triangular(W[:, :, p, p], r.T, upper=False).T


def pixel_zeroes_x(y, x, W, bias, i, j):
    k, p = W.shape[-1], W.shape[-1] // 2
    x[:, :, i, j] = 0                                 # the unknown pixel out of the sum, in the caller's x
    patch = F.pad(x, (p, p, p, p))[:, :, i:i + k, j:j + k]
    r = y[:, :, i, j] - bias - torch.einsum("oiab,niab->no", W, patch)
    return torch.linalg.solve_triangular(W[:, :, p, p], r.T, upper=False).T


def pixel_transposed(y, x, W, bias, i, j):
    return pixel_with()(y, x, W, bias, i, j).T


def pixel_upper(y, x, W, bias, i, j):
    k, p = W.shape[-1], W.shape[-1] // 2
    W_off = W.clone()
    W_off[:, :, p, p] = 0
    patch = F.pad(x, (p, p, p, p))[:, :, i:i + k, j:j + k]
    r = y[:, :, i, j] - bias - torch.einsum("oiab,niab->no", W_off, patch)
    return torch.linalg.solve_triangular(W[:, :, p, p], r.T, upper=True).T


# ------------------------------------------------------------------ exercise 4: the wavefront
def wavefront_dp(h, w):
    steps = torch.zeros(h, w, dtype=torch.long)
    for i in range(h):
        for j in range(w):
            reads = [steps[i + a, j + b] for a, b in ((-1, -1), (-1, 0), (-1, 1), (0, -1))
                     if 0 <= i + a < h and 0 <= j + b < w]
            steps[i, j] = max(reads) + 1 if reads else 0
    return steps


RIGHT = {
    "make_mask": {
        "slices": mask_with(),
        "loops": mask_loops,
        "comparisons, float64": mask_comparisons,
    },
    "log_det_from_taps": {
        "diagonals": log_det,
        "a loop of logs": log_det_loop,
        "slogdet of the centre taps": log_det_slogdet_of_taps,
    },
    "solve_pixel": {
        "einsum and solve_triangular": pixel_with(),
        "forward substitution by hand": pixel_forward_substitution,
        "conv2d on the patch": pixel_conv2d,
        "conv2d over the whole image, masked kernel without its centre": lambda y, x, W, bias, i, j: torch.linalg.solve(
            W[:, :, 1, 1], (y[:, :, i, j] - bias - F.conv2d(x, W - W * F.pad(torch.ones(1, 1), (1, 1, 1, 1)), padding=1)
                            [:, :, i, j]).T).T,
    },
    "wavefront": {
        "2i + j": lambda h, w: 2 * torch.arange(h)[:, None] + torch.arange(w)[None, :],
        "dynamic programming": wavefront_dp,
        "from 1, int32": lambda h, w: (2 * torch.arange(h)[:, None] + torch.arange(w)[None, :] + 1).int(),
    },
}

WRONG = {
    "make_mask": {
        "centre kept whole": (mask_with(centre="full"), "kept whole"),
        "centre transposed": (mask_with(centre="triu"), "transposed"),
        "centre diagonal masked": (mask_with(centre="strict"), "not invertible"),
        "rows below": (mask_with(rows_above=False), "rows below"),
        "pixels to the right": (mask_with(left=False), "to the right"),
        "the flipped (second) mask": (lambda c, k: mask_with()(c, k).flip(0, 1, 2, 3), "flipped"),
        "the library's mask": (lambda c, k: __import__("course_utils.flows.emerging", fromlist=["x"])
                               .emerging_mask(c, k), "switched off"),
        "(k, k) only": (lambda c, k: mask_with()(1, k)[0, 0], "shape"),
        "whole middle row": (mask_whole_middle_row, "whole middle row"),
    },
    "log_det_from_taps": {
        "no h w": (lambda W1, W2, h, w: log_det(W1, W2, 1, 1), "factor h w"),
        "first kernel only": (lambda W1, W2, h, w: h * w * centre_diagonals(W1, W2)[0].abs().log().sum(),
                              "first kernel"),
        "no absolute value": (lambda W1, W2, h, w: h * w * sum(d.log().sum() for d in centre_diagonals(W1, W2)),
                              "absolute values"),
        "every centre entry": (lambda W1, W2, h, w: h * w * sum(W[:, :, W.shape[-1] // 2, W.shape[-1] // 2]
                                                                .abs().log().sum() for W in (W1, W2)), "zero entries"),
        "kernels summed over taps": (lambda W1, W2, h, w: h * w * sum(torch.linalg.slogdet(W.sum((2, 3))).logabsdet
                                                                      for W in (W1, W2)), "summed over"),
        "slogdet of the autograd Jacobian": (log_det_via_jacobian, "switched off"),
        "NumPy's log": (lambda W1, W2, h, w: torch.tensor(h * w * sum(
            np.log(np.abs(np.diagonal(W[:, :, W.shape[-1] // 2, W.shape[-1] // 2].numpy()))).sum() for W in (W1, W2))),
            "requires grad"),
        "h + w": (lambda W1, W2, h, w: log_det(W1, W2, h, w) / (h * w) * (h + w), "h + w"),
        "a Python float": (log_det_float, "tensor"),
        "second kernel's log subtracted": (lambda W1, W2, h, w: h * w * (centre_diagonals(W1, W2)[0].abs().log().sum()
                                           - centre_diagonals(W1, W2)[1].abs().log().sum()), "subtracted"),
    },
    "solve_pixel": {
        "bias not subtracted": (pixel_with(bias_sign=0.0), "bias is not subtracted"),
        "bias added": (pixel_with(bias_sign=1.0), "bias is added"),
        "divided by the diagonal": (pixel_with(diagonal=True), "diagonal"),
        "solved as upper triangular": (pixel_upper, "upper"),
        "centre tap kept in the sum": (pixel_with(keep_centre=True), "not left out"),
        "kernel flipped": (pixel_with(flip=True), "cross-correlation"),
        "the library's inverse": (pixel_via_library, "switched off"),
        "(c, batch), transposed": (pixel_transposed, "transpose"),
        "zeroes pixel (i, j) of x in place": (pixel_zeroes_x, "in place"),
    },
    "wavefront": {
        "diagonal i + j": (lambda h, w: torch.arange(h)[:, None] + torch.arange(w)[None, :], "above right"),
        "raster order": (lambda h, w: torch.arange(h * w).view(h, w), "fewest"),
        "i + 2j": (lambda h, w: torch.arange(h)[:, None] + 2 * torch.arange(w)[None, :], "above right"),
        "rows only": (lambda h, w: torch.arange(h)[:, None].expand(h, w), "to the left"),
        "3i + j: valid but slow": (lambda h, w: 3 * torch.arange(h)[:, None] + torch.arange(w)[None, :], "fewest"),
        "shape (w, h)": (lambda h, w: 2 * torch.arange(w)[:, None] + torch.arange(h)[None, :], "shape"),
        "a list of lists": (lambda h, w: [[2 * i + j + 0.5 for j in range(w)] for i in range(h)], "whole numbers"),
    },
}
