"""Notebook 07's slip corpus (``RIGHT``/``WRONG``, see ``corpus_from`` in ``tests/checkcontract.py``)."""

import math

import numpy as np
import torch
import torch.nn.functional as F


# ------------------------------------------------------------------ exercise 1: bits per dimension
def bpd(nll, D, K):
    return (nll + D * math.log(K)) / (D * math.log(2))


def bpd_torch32(nll, D, K):
    nll = torch.as_tensor(nll, dtype=torch.float32)
    return nll / (D * math.log(2)) + torch.log2(torch.tensor(float(K)))


# ------------------------------------------------------------------ exercise 2: categorical baseline
def categorical(x_train, x_test, levels, probabilities=lambda counts, n, K: (counts + 1) / (n + K),
                score_on_train=False, log=torch.log2, reduce=lambda t: t.mean()):
    train, test = x_train.flatten(1), x_test.flatten(1)
    counts = F.one_hot(train, levels).sum(0).double()
    p = probabilities(counts, len(train), levels)
    return reduce(-log(p.gather(1, (train if score_on_train else test).T))).item()


def categorical_loop(x_train, x_test, levels):
    train, test = x_train.flatten(1), x_test.flatten(1)
    n, D = train.shape
    total = 0.0
    for j in range(D):
        counts = torch.bincount(train[:, j], minlength=levels)
        p = (counts + 1) / (n + levels)
        total += -torch.log2(p[test[:, j]]).sum().item()
    return total / test.numel()


def categorical_float32(x_train, x_test, levels):
    train, test = x_train.flatten(1), x_test.flatten(1)
    counts = (train[:, :, None] == torch.arange(levels)).float().sum(0)
    p = (counts + 1) / (len(train) + levels)
    return float(-(torch.log(p.gather(1, test.T)) / math.log(2)).mean())


def categorical_no_num_classes(x_train, x_test, levels):
    train, test = x_train.flatten(1), x_test.flatten(1)
    counts = F.one_hot(train).sum(0).double()                # K inferred from the training levels
    p = (counts + 1) / (len(train) + levels)
    return -torch.log2(p.gather(1, test.T)).mean().item()


# ------------------------------------------------------------------ exercise 3: unsqueeze
def unsqueeze_with(perm):
    def fn(y):
        b, c4, h, w = y.shape
        return y.reshape(b, c4 // 4, 2, 2, h, w).permute(*perm).reshape(b, c4 // 4, 2 * h, 2 * w)
    return fn


def unsqueeze_loop(y):
    b, c4, h, w = y.shape
    x = y.new_zeros(b, c4 // 4, 2 * h, 2 * w)
    for k in range(c4 // 4):
        for a in range(2):
            for bb in range(2):
                x[:, k, a::2, bb::2] = y[:, 4 * k + 2 * a + bb]
    return x


def unsqueeze_stack(y):
    b, c4, h, w = y.shape
    c = c4 // 4
    blocks = y.view(b, c, 4, h, w)
    rows = [torch.stack([blocks[:, :, 2 * a], blocks[:, :, 2 * a + 1]], dim=-1).reshape(b, c, h, 2 * w)
            for a in range(2)]
    return torch.stack(rows, dim=3).reshape(b, c, 2 * h, 2 * w)


# ------------------------------------------------------------------ exercise 4: 1x1 convolution
def conv(x, W, mix=None, log_det=None):
    b, c, h, w = x.shape
    y = torch.einsum("oc,bchw->bohw", W, x) if mix is None else mix(x, W)
    ld = h * w * torch.linalg.slogdet(W).logabsdet.expand(b) if log_det is None else log_det(x, W)
    return y, ld


def conv_conv2d(x, W):
    b, c, h, w = x.shape
    return F.conv2d(x, W[:, :, None, None]), torch.full((b,), h * w * torch.det(W).abs().log().item(), dtype=x.dtype)


def conv_matmul_lu(x, W):
    b, c, h, w = x.shape
    y = (W @ x.reshape(b, c, h * w)).reshape(b, c, h, w)
    LU, _ = torch.linalg.lu_factor(W)
    return y, (h * w * LU.diagonal().abs().log().sum()) * torch.ones(b, dtype=x.dtype)


def conv_float32(x, W):
    x, W = x.float(), W.float()
    b, c, h, w = x.shape
    y = torch.einsum("oc,bchw->bohw", W, x)
    return y, (h * w * torch.linalg.slogdet(W)[1]).repeat(b)


RIGHT = {
    "bits_per_dim": {
        "the formula": bpd,
        "log2 K added after": lambda nll, D, K: nll / (D * math.log(2)) + math.log2(K),
        "per dimension first": lambda nll, D, K: (nll / D + math.log(K)) / math.log(2),
        "torch, float32": bpd_torch32,
    },
    "categorical_bits_per_dim": {
        "one_hot and gather": categorical,
        "bincount per pixel": categorical_loop,
        "comparisons, float32, natural log over log 2": categorical_float32,
    },
    "unsqueeze": {
        "reshape and permute": unsqueeze_with((0, 1, 4, 2, 5, 3)),
        "strided assignment": unsqueeze_loop,
        "stack": unsqueeze_stack,
    },
    "conv1x1": {
        "einsum and slogdet": conv,
        "conv2d and log|det|": conv_conv2d,
        "matmul and LU": conv_matmul_lu,
        "float32": conv_float32,
    },
}

WRONG = {
    "bits_per_dim": {
        "no D log K": (lambda nll, D, K: nll / (D * math.log(2)), "D log K term is left out"),
        "minus D log K": (lambda nll, D, K: (nll - D * math.log(K)) / (D * math.log(2)), "subtracted instead of added"),
        "K - 1 levels": (lambda nll, D, K: (nll + D * math.log(K - 1)) / (D * math.log(2)), "K - 1"),
        "nats": (lambda nll, D, K: (nll + D * math.log(K)) / D, "nats per dimension"),
        "log K once": (lambda nll, D, K: (nll + math.log(K)) / (D * math.log(2)), "once per dimension"),
        "per image": (lambda nll, D, K: (nll + D * math.log(K)) / math.log(2), "not divided by D"),
        "precedence: D log K / (D log 2) only": (lambda nll, D, K: nll + D * math.log(K) / (D * math.log(2)),
                                                "brackets"),
        "log2 K added to nats": (lambda nll, D, K: nll / D + math.log2(K), "still needs dividing by log 2"),
        "log10": (lambda nll, D, K: (nll + D * math.log(K)) / (D * math.log(10)), "log 2"),
    },
    "categorical_bits_per_dim": {
        "no smoothing": (lambda a, b, K: categorical(a, b, K, lambda c, n, K: c / n), "infinite"),
        "natural log": (lambda a, b, K: categorical(a, b, K, log=torch.log), "nats"),
        "divided by n + 1": (lambda a, b, K: categorical(a, b, K, lambda c, n, K: (c + 1) / (n + 1)), "n + 1"),
        "divided by n": (lambda a, b, K: categorical(a, b, K, lambda c, n, K: (c + 1) / n), "divided by n instead"),
        "pooled over pixels": (lambda a, b, K: categorical(a, b, K, lambda c, n, K: ((c.sum(0) + 1) / (c.sum() + K))
                                                          .expand_as(c)), "shared by all pixels"),
        "scored on the training images": (lambda a, b, K: categorical(a, b, K, score_on_train=True), "training images"),
        "summed over pixels": (lambda a, b, K: categorical(a, b, K, reduce=lambda t: t.sum(0).mean()), "per image"),
        "one_hot without num_classes": (categorical_no_num_classes, "num_classes"),
    },
    "unsqueeze": {
        "plain reshape": (lambda y: y.reshape(y.shape[0], y.shape[1] // 4, 2 * y.shape[2], 2 * y.shape[3]),
                          "plain reshape"),
        "offsets swapped": (unsqueeze_with((0, 1, 4, 3, 5, 2)), "swapped"),
        "offset-major channels": (lambda y: y.reshape(y.shape[0], 2, 2, y.shape[1] // 4, *y.shape[2:])
                                  .permute(0, 3, 4, 1, 5, 2).reshape(y.shape[0], y.shape[1] // 4,
                                                                     2 * y.shape[2], 2 * y.shape[3]),
                                  "offset-major"),
        "the squeeze's permutation again": (unsqueeze_with((0, 1, 3, 5, 2, 4)), "inverse permutation"),
        "pixel_shuffle": (lambda y: F.pixel_shuffle(y, 2), "switched off"),
        "nn.PixelShuffle": (lambda y: torch.nn.PixelShuffle(2)(y), "switched off"),
        "returns a pair, like the layer": (lambda y: (unsqueeze_with((0, 1, 4, 2, 5, 3))(y), 0.0), "pair"),
        "rows and columns transposed": (lambda y: unsqueeze_with((0, 1, 4, 2, 5, 3))(y).transpose(2, 3)
                                        if y.shape[2] == y.shape[3] else unsqueeze_with((0, 1, 4, 2, 5, 3))(y)
                                        .reshape(y.shape[0], y.shape[1] // 4, 2 * y.shape[3], 2 * y.shape[2]),
                                        "transposed"),
    },
    "conv1x1": {
        "W transposed": (lambda x, W: conv(x, W, mix=lambda x, W: torch.einsum("co,bchw->bohw", W, x)), "W^T"),
        "W @ x": (lambda x, W: conv(x, W, mix=lambda x, W: W @ x), "W @ x"),
        "W inverse": (lambda x, W: conv(x, W, mix=lambda x, W: torch.einsum("oc,bchw->bohw", torch.linalg.inv(W), x)),
                      "W^-1"),
        "no h * w": (lambda x, W: conv(x, W, log_det=lambda x, W: torch.linalg.slogdet(W).logabsdet.expand(x.shape[0])),
                     "h * w"),
        "sign flipped": (lambda x, W: conv(x, W, log_det=lambda x, W: -x.shape[2] * x.shape[3] *
                                           torch.linalg.slogdet(W).logabsdet.expand(x.shape[0])), "sign is flipped"),
        "det, not log det": (lambda x, W: conv(x, W, log_det=lambda x, W: (x.shape[2] * x.shape[3] * torch.det(W))
                                               .expand(x.shape[0])), "det W is used"),
        "h + w": (lambda x, W: conv(x, W, log_det=lambda x, W: (x.shape[2] + x.shape[3]) *
                                    torch.linalg.slogdet(W).logabsdet.expand(x.shape[0])), "h + w"),
        "log det without abs": (lambda x, W: conv(x, W, log_det=lambda x, W: (x.shape[2] * x.shape[3] *
                                                  torch.log(torch.det(W))).expand(x.shape[0])), "log|det W|"),
        "one log-det for the batch": (lambda x, W: conv(x, W, log_det=lambda x, W: x.shape[2] * x.shape[3] *
                                                        torch.linalg.slogdet(W).logabsdet), "one number per image"),
        "NumPy's det": (lambda x, W: conv(x, W, log_det=lambda x, W: torch.full(
            (x.shape[0],), x.shape[2] * x.shape[3] * float(np.log(abs(np.linalg.det(W.numpy())))), dtype=x.dtype)),
            "requires grad"),
        "log-det per pixel": (lambda x, W: conv(x, W, log_det=lambda x, W: torch.linalg.slogdet(W).logabsdet
                                                .expand(x.shape[0], x.shape[2], x.shape[3])), "one number per image"),
    },
}
