"""Notebook 09's checks: pass the reference, flag 'not attempted', fail plausible wrong answers."""

import torch
import torch.nn.functional as F

from course_utils.checks import nb09
from course_utils.flows.emerging import emerging_mask

from checkcontract import contract_tests, slips_named


# ---------------------------------------------------------------- exercise 1: the mask
def mask_with(rows_above=True, left=True, centre="tril"):
    def make(channels, kernel_size):
        k, p = kernel_size, kernel_size // 2
        m = torch.zeros(channels, channels, k, k)
        if rows_above:
            m[:, :, :p] = 1
        else:
            m[:, :, p + 1:] = 1
        if left:
            m[:, :, p, :p] = 1
        else:
            m[:, :, p, p + 1:] = 1
        ones = torch.ones(channels, channels)
        m[:, :, p, p] = {"tril": torch.tril(ones), "triu": torch.triu(ones), "full": ones,
                         "strict": torch.tril(ones, -1)}[centre]
        return m
    return make


# ---------------------------------------------------------------- exercise 2: the log-det
def log_det(W1, W2, h, w):
    p = W1.shape[-1] // 2
    return h * w * (W1[:, :, p, p].diagonal().abs().log().sum() + W2[:, :, p, p].diagonal().abs().log().sum())


def log_det_via_jacobian(W1, W2, h, w):
    c, p = W1.shape[0], W1.shape[-1] // 2
    f = lambda v: F.conv2d(F.conv2d(v.view(1, c, h, w), W1, padding=p), W2, padding=p).reshape(-1)
    J = torch.autograd.functional.jacobian(f, torch.zeros(c * h * w, dtype=W1.dtype))
    return torch.linalg.slogdet(J).logabsdet


def centre_diagonals(W1, W2):
    p = W1.shape[-1] // 2
    return W1[:, :, p, p].diagonal(), W2[:, :, p, p].diagonal()


# ---------------------------------------------------------------- exercise 3: one pixel
def pixel_with(bias_sign=-1.0, diagonal=False, keep_centre=False, flip=False):
    def solve(y, x, W, bias, i, j):
        k, p = W.shape[-1], W.shape[-1] // 2
        T = W[:, :, p, p]
        W_off = W.clone()
        if not keep_centre:
            W_off[:, :, p, p] = 0
        if flip:
            W_off = W_off.flip(2, 3)
        patch = F.pad(x, (p, p, p, p))[:, :, i:i + k, j:j + k]
        r = y[:, :, i, j] + bias_sign * bias - torch.einsum("oiab,niab->no", W_off, patch)
        if diagonal:
            return r / T.diagonal()
        return torch.linalg.solve_triangular(T, r.t(), upper=False).t()
    return solve


def pixel_via_library(y, x, W, bias, i, j):
    from course_utils.flows.emerging import masked_conv_inverse
    return masked_conv_inverse(y, W, bias)[:, :, i, j]


# ---------------------------------------------------------------- exercise 4: the wavefront
def wavefront(h, w):
    return 2 * torch.arange(h)[:, None] + torch.arange(w)[None, :]


CASES = {
    "make_mask": (
        nb09.make_mask, mask_with(),
        {"centre kept whole": mask_with(centre="full"),
         "centre transposed": mask_with(centre="triu"),
         "centre diagonal masked": mask_with(centre="strict"),
         "rows below": mask_with(rows_above=False),
         "pixels to the right": mask_with(left=False),
         "the flipped mask": lambda c, k: emerging_mask(c, k).flip(0, 1, 2, 3),
         "the library's mask": lambda c, k: emerging_mask(c, k)},
    ),
    "log_det_from_taps": (
        nb09.log_det_from_taps, log_det,
        {"no h w": lambda W1, W2, h, w: log_det(W1, W2, 1, 1),
         "first kernel only": lambda W1, W2, h, w: h * w * centre_diagonals(W1, W2)[0].abs().log().sum(),
         "no absolute value": lambda W1, W2, h, w: h * w * sum(d.log().sum() for d in centre_diagonals(W1, W2)),
         "every centre entry": lambda W1, W2, h, w: h * w * sum(W[:, :, W.shape[-1] // 2, W.shape[-1] // 2].abs().log().sum()
                                                                for W in (W1, W2)),
         "kernels summed over taps": lambda W1, W2, h, w: h * w * sum(torch.linalg.slogdet(W.sum((2, 3))).logabsdet
                                                                      for W in (W1, W2)),
         "slogdet of the autograd Jacobian": log_det_via_jacobian},
    ),
    "solve_pixel": (
        nb09.solve_pixel, pixel_with(),
        {"bias not subtracted": pixel_with(bias_sign=0.0),
         "bias added": pixel_with(bias_sign=1.0),
         "divided by the diagonal": pixel_with(diagonal=True),
         "centre tap kept in the sum": pixel_with(keep_centre=True),
         "kernel flipped": pixel_with(flip=True),
         "the library's inverse": pixel_via_library},
    ),
    "wavefront": (
        nb09.wavefront, wavefront,
        {"diagonal i + j": lambda h, w: torch.arange(h)[:, None] + torch.arange(w)[None, :],
         "raster order": lambda h, w: torch.arange(h * w).view(h, w),
         "transposed": lambda h, w: 2 * torch.arange(w)[:, None] + torch.arange(h)[None, :],
         "rows only": lambda h, w: torch.arange(h)[:, None].expand(h, w),
         "3i + j: valid but slow": lambda h, w: 3 * torch.arange(h)[:, None] + torch.arange(w)[None, :]},
    ),
}

(test_reference_passes, test_not_attempted_is_friendly, test_wrong_answers_fail_with_numbers,
 test_each_check_rejects_at_least_two_wrong_answers) = contract_tests(CASES, extra_words=("switched off",))


test_slips_are_named = slips_named(CASES, {
    ("make_mask", "centre kept whole"): "kept whole",
    ("make_mask", "centre transposed"): "transposed",
    ("make_mask", "centre diagonal masked"): "not invertible",
    ("make_mask", "rows below"): "rows below",
    ("make_mask", "pixels to the right"): "to the right",
    ("make_mask", "the library's mask"): "switched off",
    ("log_det_from_taps", "no h w"): "factor h w",
    ("log_det_from_taps", "first kernel only"): "first kernel",
    ("log_det_from_taps", "no absolute value"): "absolute values",
    ("log_det_from_taps", "every centre entry"): "zero entries",
    ("log_det_from_taps", "kernels summed over taps"): "summed over",
    ("log_det_from_taps", "slogdet of the autograd Jacobian"): "switched off",
    ("solve_pixel", "bias not subtracted"): "bias is not subtracted",
    ("solve_pixel", "divided by the diagonal"): "diagonal",
    ("solve_pixel", "centre tap kept in the sum"): "not left out",
    ("solve_pixel", "kernel flipped"): "cross-correlation",
    ("solve_pixel", "the library's inverse"): "switched off",
    ("wavefront", "diagonal i + j"): "above right",
    ("wavefront", "raster order"): "fewest",
    ("wavefront", "3i + j: valid but slow"): "fewest",
})


def test_reference_solutions_accept_other_right_answers():
    shifted = lambda h, w: wavefront(h, w) + 1                         # any labels, same groups
    assert nb09.wavefront(shifted) is shifted
    general = lambda y, x, W, bias, i, j: torch.linalg.solve(            # a general solve is right too
        W[:, :, 1, 1], (y[:, :, i, j] - bias - torch.einsum(
            "oiab,niab->no", W * (1 - F.pad(torch.ones(1, 1), (1, 1, 1, 1))),
            F.pad(x, (1, 1, 1, 1))[:, :, i:i + 3, j:j + 3])).t()).t()
    assert nb09.solve_pixel(general) is general
    as_bool = lambda c, k: mask_with()(c, k).bool()
    assert nb09.make_mask(as_bool) is as_bool
