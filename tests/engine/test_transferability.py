"""LogME against its definition (the Gaussian marginal likelihood) and its published behaviour."""

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from tlhub.engine.transferability import log_evidence, logme, max_evidence
from tlhub.errors import DataError


def test_log_evidence_is_the_gaussian_marginal_likelihood():
    # y ~ N(0, I / beta + F F^T / alpha) once w ~ N(0, I / alpha) is integrated out
    rng = np.random.default_rng(0)
    for n, d in ((30, 5), (8, 20)):  # more examples than features, and fewer
        f = rng.normal(size=(n, d))
        y = (rng.random(n) < 0.4).astype(float)
        for alpha, beta in ((1.0, 1.0), (0.3, 7.0)):
            cov = np.eye(n) / beta + f @ f.T / alpha
            direct = multivariate_normal(mean=np.zeros(n), cov=cov).logpdf(y)
            assert log_evidence(f, y, alpha, beta) == pytest.approx(direct, rel=1e-9, abs=1e-9)


def test_the_fixed_point_is_the_maximum():
    rng = np.random.default_rng(1)
    f = rng.normal(size=(60, 8))
    y = (f[:, 0] + 0.5 * rng.normal(size=60) > 0).astype(float)
    best, alpha, beta = max_evidence(f, y)
    assert best == pytest.approx(log_evidence(f, y, alpha, beta))
    for da, db in ((1.2, 1), (1 / 1.2, 1), (1, 1.2), (1, 1 / 1.2), (2, 2)):
        assert log_evidence(f, y, alpha * da, beta * db) < best


def test_published_behaviour_better_features_score_higher():
    # the paper's premise: features that separate the classes linearly get a higher LogME than
    # features that do not, and the score falls as the signal drowns in noise
    rng = np.random.default_rng(2)
    y = np.repeat(np.arange(4), 50)
    centres = rng.normal(size=(4, 16)) * 3
    scores = [logme(centres[y] * s + rng.normal(size=(200, 16)), y) for s in (1.0, 0.3, 0.0)]
    assert scores[0] > scores[1] > scores[2], scores
    assert logme(rng.normal(size=(200, 16)), y) < scores[1]


def test_bad_shapes_are_a_data_error():
    with pytest.raises(DataError, match="N x D"):
        logme(np.zeros((3, 2)), [0, 1])
