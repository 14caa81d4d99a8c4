"""How well a backbone's frozen features suit a labelled data set, before any training.

:func:`logme` is LogME (You, Liu, Wang and Long, "LogME: Practical Assessment of Pre-trained
Models for Transfer Learning", ICML 2021): for each class, the log of the **maximum evidence**
of a Bayesian linear regression from the features to that class's one-hot column,

    y ~ N(F w, 1/beta),  w ~ N(0, 1/alpha),
    log p(y | F, alpha, beta) = D/2 log alpha + N/2 log beta - N/2 log 2 pi
                                - beta/2 ||F m - y||^2 - alpha/2 m.m - 1/2 log |alpha I + beta F^T F|,
    m = beta (alpha I + beta F^T F)^{-1} F^T y,

maximised over alpha and beta by the paper's fixed-point iteration (gamma = sum of
beta s_i / (alpha + beta s_i) over the eigenvalues s_i of F^T F; alpha <- gamma / m.m;
beta <- (N - gamma) / ||F m - y||^2), divided by N and averaged over the classes. Higher is
better; it is comparable between backbones on the same data (the paper's use), not across data
sets. One SVD of the features serves every class, so it costs about as much as one least-squares
fit. No maintained package of it installs from PyPI (the authors' code is a file in their
repository), so it is written here from the paper; ``tests/engine/test_transferability.py``
checks it against the Gaussian marginal likelihood computed directly, and that the fixed point
is the maximum.
"""

from __future__ import annotations

import numpy as np

#: The fixed-point iteration stops when alpha/beta moves by less than this (relative), or after MAX_ITER steps.
TOL = 1e-5
MAX_ITER = 100


def log_evidence(features: np.ndarray, target: np.ndarray, alpha: float, beta: float) -> float:
    """The log evidence ``log p(target | features, alpha, beta)`` of the Bayesian linear model,
    through the features' SVD (exact; what :func:`logme` maximises)."""
    f = np.asarray(features, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    n, d = f.shape
    _, s, vt = np.linalg.svd(f, full_matrices=False)
    sigma = np.zeros(d)
    sigma[: len(s)] = s**2
    return _evidence(f, y, vt, s, sigma, alpha, beta)[0]


def _evidence(f, y, vt, s, sigma, alpha, beta):
    n, d = f.shape
    proj = vt @ (f.T @ y)  # V^T F^T y, one value per singular direction
    m = vt.T @ (beta * proj / (alpha + beta * sigma[: len(s)]))  # the posterior mean of the weights
    residual = float(((f @ m - y) ** 2).sum())
    mm = float(m @ m)
    logdet = float(np.log(alpha + beta * sigma).sum())  # |alpha I + beta F^T F| over all D directions
    value = (d / 2 * np.log(alpha) + n / 2 * np.log(beta) - n / 2 * np.log(2 * np.pi)
             - beta / 2 * residual - alpha / 2 * mm - logdet / 2)
    return float(value), m, residual, mm


def max_evidence(features: np.ndarray, target: np.ndarray) -> tuple[float, float, float]:
    """``(log evidence, alpha, beta)`` at the fixed point of the paper's iteration for one target column."""
    f = np.asarray(features, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    return _max_evidence(f, y, *_svd(f))


def _svd(f):
    n, d = f.shape
    _, s, vt = np.linalg.svd(f, full_matrices=False)
    sigma = np.zeros(d)
    sigma[: len(s)] = s**2
    return vt, s, sigma


def _max_evidence(f, y, vt, s, sigma):
    n, _ = f.shape
    alpha, beta = 1.0, 1.0
    for _ in range(MAX_ITER):
        _, m, residual, mm = _evidence(f, y, vt, s, sigma, alpha, beta)
        gamma = float((beta * sigma / (alpha + beta * sigma)).sum())
        new_alpha = gamma / max(mm, 1e-300)
        new_beta = (n - gamma) / max(residual, 1e-300)
        converged = abs(new_alpha / new_beta - alpha / beta) / (alpha / beta) < TOL
        alpha, beta = new_alpha, new_beta
        if converged:
            break
    return _evidence(f, y, vt, s, sigma, alpha, beta)[0], alpha, beta


def logme(features, labels) -> float:
    """LogME of ``features`` (N x D) for class ids ``labels`` (N): the mean over the classes of the
    maximum log evidence per example. Higher = the features separate these classes better."""
    f = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if f.ndim != 2 or len(f) != len(y) or len(y) < 2:
        from tlhub.errors import DataError

        raise DataError(f"LogME needs an N x D feature matrix and N labels (got {f.shape} and {y.shape})",
                        fix="pass one row of features per labelled example, at least two")
    vt, s, sigma = _svd(f)
    values = [_max_evidence(f, (y == c).astype(np.float64), vt, s, sigma)[0] / len(y) for c in np.unique(y)]
    return float(np.mean(values))
