"""A linear probe that converges for every backbone, and the choice of layers it reads.

API (also used by ``tlhub select``)::

    from tlhub.engine.probe import fit_probe, cv_accuracy, layer_scores, select_layers

    probe = fit_probe(train_x, train_y, val_x, val_y, seed=0)      # -> Probe
    probe.accuracy(test_x, test_y); probe.logits(x)                  # numpy in, numpy out
    weight, bias = probe.weight, probe.bias                          # a Linear on RAW features
    cv_accuracy(x, y, folds=5, seed=0)                               # stratified k-fold accuracy
    scores = layer_scores({i: x_i}, y, seed=0)                       # each layer group alone (leave-one-out ridge)
    chosen = select_layers({i: x_i}, y, seed=0)                      # greedy forward selection

Why not the old head trained by AdamW at a fixed lr: the scale of features differs by orders of
magnitude between backbones (unit-norm sentence embeddings against ReLU6 image features), so one
learning rate and weight decay cannot fit both; on MiniLM it stayed at the majority class. Here
the features are standardised with statistics of the training split only, and the L2 strength
``C`` of a multinomial logistic regression (scikit-learn, Newton-CG: a convex problem, solved
to convergence whatever the scale) is chosen on the validation split, or by stratified k-fold
cross-validation of the training split when there is none. The standardisation is folded into
the weights afterwards, so the result is an ordinary linear layer on the raw features.

Several layer groups: each feature is standardised, then each group is scaled so that its
total variance is the same whatever its width (a 1,280-wide group does not drown a 32-wide one
under the shared L2 penalty); the groups are chosen by greedy forward selection on the exact
leave-one-out accuracy of a ridge classifier on the training split (:func:`loo_accuracy`: cheap
enough to score every combination the search tries). Test data never enters any of it.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

#: The L2 strengths tried (scikit-learn's ``C``: larger = weaker regularisation), on z-scored features.
DEFAULT_CS = (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)
#: A validation split smaller than this is too few examples to choose ``C`` by: the probe then
#: chooses it by stratified k-fold cross-validation of the training split. Measured on Protocol
#: B (MiniLM, 1,000 sentences; scored on 990 further training-side sentences, never the test
#: split): C chosen on a carved 100-sentence validation split scored 0.7354 +- 0.0317 over 3
#: carvings (it picked C = 0.1 twice), chosen by 5-fold CV of the other 900 0.7751 +- 0.0033.
CV_BELOW_VALIDATION = 1000
#: A layer group joins the selection only when it improves the score by more than this.
MIN_GAIN = 0.002


@dataclass
class Probe:
    """A fitted probe: ``logits = x @ weight.T + bias`` on the raw (unstandardised) features."""

    weight: np.ndarray  # (num_classes, num_features)
    bias: np.ndarray  # (num_classes,)
    C: float
    score: float | None  # validation (or cross-validation) accuracy of the chosen C
    scored_by: str  # "validation" or "5-fold cv"
    scores: dict[float, float] = field(default_factory=dict)  # C -> score

    def logits(self, x) -> np.ndarray:
        return np.asarray(x, dtype=np.float64) @ self.weight.T + self.bias

    def predict(self, x) -> np.ndarray:
        return self.logits(x).argmax(-1)

    def accuracy(self, x, y) -> float:
        return float((self.predict(x) == np.asarray(y)).mean()) if len(y) else 0.0

    def to_dict(self) -> dict:
        return {"C": self.C, "score": self.score, "scored_by": self.scored_by, "scores": {str(k): v for k, v in self.scores.items()}}


@dataclass
class Standardizer:
    """Per-feature z-score (training statistics), each group then scaled to equal total variance."""

    mean: np.ndarray
    scale: np.ndarray  # divide by this

    @classmethod
    def fit(cls, x: np.ndarray, groups: Sequence[int] | None = None) -> "Standardizer":
        mean = x.mean(0)
        std = x.std(0)
        std = np.where(std > 1e-8 * max(float(std.max(initial=0.0)), 1e-30), std, 1.0)  # constant features: left at 0
        scale = std.astype(np.float64)
        if groups:
            widths = np.asarray(groups, dtype=np.float64)
            ref = widths.mean()
            scale = scale * np.repeat(np.sqrt(widths / ref), np.asarray(groups))
        return cls(mean.astype(np.float64), scale)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, dtype=np.float64) - self.mean) / self.scale

    def fold(self, coef: np.ndarray, intercept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Weights on raw features equal to ``coef`` on standardised ones."""
        weight = coef / self.scale
        return weight, intercept - weight @ self.mean


#: scikit-learn's solver for the probe. Why Newton-CG and not lbfgs: a few Newton steps (each a
#: conjugate-gradient solve on Hessian-vector products) replace the ~80 lbfgs iterations a solve
#: took here, at the same optimum. Protocol A's probe (C by 5-fold CV, then the fit on 2,000
#: rows with flips; 2 cores): Lite0's last layer 12.2 s -> 3.0 s, groups 0, 4, 6 (1,520
#: features) 30 s -> 4.1 s, groups 4-7 27.9 s -> 11.8 s; MiniLM, groups 4-6, 1,000 sentences
#: 4.5 s -> 1.4 s. Held-out accuracy (990 further Fashion-MNIST training images, 3 x 3,000
#: further VADER training sentences, never the test split) equal within 0.0011 in every case.
PROBE_SOLVER = "newton-cg"
#: Newton-CG stops when no gradient entry exceeds this. 1e-5 took Protocol A's probe on groups
#: 0, 4, 6 from 4.5 s to 7.1 s for a held-out accuracy 0.0011 higher: within noise.
PROBE_TOL = 1e-4


def _logreg(C: float, seed: int, class_weight: Mapping[int, float] | None = None):
    from sklearn.linear_model import LogisticRegression

    # warm_start: each solve along a regularisation path starts from the previous C's solution
    return LogisticRegression(C=C, solver=PROBE_SOLVER, max_iter=100, tol=PROBE_TOL, random_state=seed, warm_start=True,
                              class_weight=dict(class_weight) if class_weight is not None else None)


#: The path over ``Cs`` stops once this many larger Cs in a row score below the best: the score
#: rises then falls with C, and the weakly regularised end is where most solver time goes.
PATH_PATIENCE = 2


class _Path:
    """One warm-started solver walked along a regularisation path, strongest first
    (:meth:`at` with increasing ``C``): each solve starts from the last solution, as
    scikit-learn's ``LogisticRegressionCV`` computes its paths. It solves in float32 (scikit-learn
    keeps that dtype: Protocol A's probes took 3.9 / 4.5 / 10.0 s against 4.5 / 5.6 / 12.9 s in
    float64 with Newton-CG, at the same held-out accuracy within 0.0011, and z-scored features need
    no more precision); the weights come back in float64.

    ``class_weight``: class index -> weight of its examples in the loss (the trainer's
    ``class_weights: balanced``), the same weights the cross-entropy of a trained head uses."""

    def __init__(self, z: np.ndarray, y: np.ndarray, seed: int, num_classes: int, class_weight: Mapping[int, float] | None = None):
        self.y, self.num_classes, self.width = y, num_classes, z.shape[1]
        # Wider than it has examples (several layer groups): the L2-penalised optimum lies in
        # the span of the examples (the loss's gradient is a combination of them), so solving
        # in an orthonormal basis of that span gives the same weights at n instead of d
        # features: a path of five Cs on 800 x 2,816 features (Lite0's groups 4-7) took 2.4 s
        # instead of 4.6 s.
        self.basis = None
        if z.shape[1] > z.shape[0]:
            _, sv, vt = np.linalg.svd(z, full_matrices=False)
            self.basis = vt[sv > sv.max(initial=0.0) * 1e-10].T  # d x rank
            z = z @ self.basis
        self.z = np.asarray(z, dtype=np.float32)
        self.present = np.unique(y)
        weights = None if class_weight is None else {int(c): float(class_weight.get(int(c), 1.0)) for c in self.present}
        self.model = _logreg(1.0, seed, weights)

    def at(self, C: float) -> tuple[np.ndarray, np.ndarray]:
        """(coef, intercept) over all ``num_classes`` classes (a class absent from ``y`` gets -inf-ish logits)."""
        from sklearn.exceptions import ConvergenceWarning

        coef, intercept = np.zeros((self.num_classes, self.width)), np.full(self.num_classes, -30.0)
        if len(self.present) == 1:
            intercept[self.present[0]] = 0.0
            return coef, intercept
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # 100 Newton steps are plenty on z-scored features
            self.model.set_params(C=C).fit(self.z, self.y)
        c, b = self.model.coef_.astype(np.float64), self.model.intercept_.astype(np.float64)
        if self.basis is not None:
            c = c @ self.basis.T
        if len(self.present) == 2:  # scikit-learn's binary form: one row for class 1 against class 0
            c, b = np.stack([-c[0] / 2, c[0] / 2]), np.array([-b[0] / 2, b[0] / 2])
        coef[self.present], intercept[self.present] = c, b
        return coef, intercept


def _fit(z: np.ndarray, y: np.ndarray, C: float, seed: int, num_classes: int,
         class_weight: Mapping[int, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(coef, intercept) at one ``C`` (see :class:`_Path`)."""
    return _Path(z, y, seed, num_classes, class_weight).at(C)


def _folds(y: np.ndarray, folds: int, seed: int):
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(y)
    k = int(min(folds, counts[counts > 0].min()))
    if k < 2:
        from tlhub.errors import DataError

        raise DataError("a class has a single training example, so the probe cannot be cross-validated",
                        fix="give every class at least two examples, or a validation split")
    return list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))


def _score(pred: np.ndarray, y: np.ndarray, balanced: bool) -> float:
    """Accuracy, or with class weights the balanced accuracy (the mean recall over the classes
    present): weighting the loss aims at every class alike, so C is judged the same way."""
    if not balanced:
        return float((pred == y).mean())
    return float(np.mean([(pred[y == c] == c).mean() for c in np.unique(y)]))


def _scores(x, y, val_x, val_y, Cs, *, seed, folds, groups, num_classes, class_weight=None):
    """``(C -> score, how, fits)``: the accuracy (balanced accuracy with ``class_weight``) on the
    validation split, or the mean over stratified folds of ``x``, walking ``Cs`` upwards until
    ``PATH_PATIENCE`` of them in a row score below the best (untried Cs are left out). ``fits``:
    with a validation split, C -> the probe on all of ``x`` (the path itself); else ``None``."""
    balanced = class_weight is not None
    what = "balanced accuracy" if balanced else "accuracy"
    on_validation = val_x is not None and len(val_y) > 0
    if on_validation:
        std = Standardizer.fit(x, groups)
        paths = [(_Path(std(x), y, seed, num_classes, class_weight), std(val_x), val_y)]
        how = f"validation {what}"
    else:
        paths = []
        splits = _folds(y, folds, seed)
        for tr, te in splits:
            std = Standardizer.fit(x[tr], groups)  # statistics of the training fold only
            paths.append((_Path(std(x[tr]), y[tr], seed, num_classes, class_weight), std(x[te]), y[te]))
        how = f"{len(splits)}-fold cv {what}"
    scores: dict[float, float] = {}
    fits: dict[float, tuple[np.ndarray, np.ndarray]] = {}
    best, worse = -1.0, 0
    for C in sorted(Cs):
        accs = []
        for path, z_held, y_held in paths:
            coef, b = path.at(C)
            accs.append(_score((z_held @ coef.T + b).argmax(-1), y_held, balanced))
            if on_validation:
                fits[C] = (coef, b)
        scores[C] = float(np.mean(accs))
        worse = 0 if scores[C] > best else worse + 1
        best = max(best, scores[C])
        if worse >= PATH_PATIENCE:
            break
    return scores, how, (fits if on_validation else None)


def fit_probe(train_x, train_y, val_x=None, val_y=None, *, seed: int = 0, Cs: Sequence[float] = DEFAULT_CS,
              folds: int = 5, groups: Sequence[int] | None = None, num_classes: int | None = None,
              refit_on_validation: bool = True, select_x=None, select_y=None,
              class_weight: Mapping[int, float] | None = None) -> Probe:
    """Fit a linear probe, choosing ``C`` on the validation split (or k-fold CV of train when none).

    ``groups``: the widths of the layer groups concatenated in ``x`` (per-group scaling).
    ``refit_on_validation``: after choosing C, refit on train + validation (more data; the
    validation split has done its job). ``select_x/select_y``: choose C by cross-validation on
    these instead (e.g. train without its flipped copies, which would leak across folds).
    ``class_weight``: class index -> loss weight (``class_weights: balanced``); C is then chosen
    by balanced accuracy.
    """
    x = np.asarray(train_x, dtype=np.float64)
    y = np.asarray(train_y, dtype=np.int64)
    has_val = val_x is not None and val_y is not None and len(val_y) > 0
    vx = np.asarray(val_x, dtype=np.float64) if has_val else None
    vy = np.asarray(val_y, dtype=np.int64) if has_val else None
    k = int(num_classes or max(int(y.max(initial=0)), int(vy.max(initial=0)) if has_val else 0) + 1)
    if select_x is not None:
        scores, how, fits = _scores(np.asarray(select_x, dtype=np.float64), np.asarray(select_y, dtype=np.int64), None, None, Cs,
                                    seed=seed, folds=folds, groups=groups, num_classes=k, class_weight=class_weight)
    else:
        scores, how, fits = _scores(x, y, vx, vy, Cs, seed=seed, folds=folds, groups=groups, num_classes=k, class_weight=class_weight)
    # the best score; among ties the strongest regularisation (the smallest C)
    best = max(scores.values())
    C = min(c for c, s in scores.items() if s >= best - 1e-12)
    refit = has_val and refit_on_validation
    fx, fy = (np.concatenate([x, vx]), np.concatenate([y, vy])) if refit else (x, y)
    std = Standardizer.fit(fx, groups)
    # scored on validation and not refit: the path's solution at C is already the probe on these data
    coef, b = fits[C] if fits is not None and not refit else _fit(std(fx), fy, C, seed, k, class_weight)
    weight, bias = std.fold(coef, b)
    return Probe(weight=weight, bias=bias, C=C, score=best, scored_by=how, scores=scores)


def cv_accuracy(x, y, folds: int = 5, seed: int = 0, *, Cs: Sequence[float] = DEFAULT_CS, groups: Sequence[int] | None = None) -> float:
    """The best stratified k-fold accuracy of the probe over ``Cs`` (statistics of each training fold only)."""
    y = np.asarray(y, dtype=np.int64)
    scores, _, _ = _scores(np.asarray(x, dtype=np.float64), y, None, None, Cs, seed=seed, folds=folds, groups=groups,
                           num_classes=int(y.max()) + 1)
    return max(scores.values())


#: Ridge strengths tried when scoring layers, per feature of the standardised input (the penalty
#: grows with the width, so a wide group and a narrow one are judged on the same footing).
RIDGE_ALPHAS = tuple(float(a) for a in np.logspace(-3, 2, 11))
#: Scoring layers looks at most this many training examples (a stratified draw): the exact
#: leave-one-out costs one eigendecomposition of an n x n (or width x width) matrix.
MAX_SCORING_EXAMPLES = 4000
SCORED_BY = "leave-one-out ridge"


def loo_accuracy(x, y, *, groups: Sequence[int] | None = None, alphas: Sequence[float] = RIDGE_ALPHAS) -> tuple[float, float]:
    """``(accuracy, alpha)``: the exact leave-one-out accuracy of a ridge classifier on the
    standardised features (per-group scaling as the probe's), best over ``alphas``.

    Why ridge and not the logistic probe itself: scikit-learn's ``RidgeCV`` gets every
    leave-one-out prediction for every alpha from one eigendecomposition, where k-fold CV of the
    logistic probe refits k x |C| times. Scoring the 8 groups of EfficientNet-Lite0 and a greedy
    search over their combinations on 1,000 images took 2 s this way against 229 s with 3-fold
    logistic CV. These scores only rank layers; the head itself is still the logistic probe.
    """
    from sklearn.linear_model import RidgeCV

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    z = Standardizer.fit(x, groups)(x)
    # One ±1 column per class, binary problems included: RidgeClassifierCV's binary case (one
    # column) scores its leave-one-out decision values as if they were labels (1.0 on random
    # labels, scikit-learn 1.8), so the classifier's argmax is taken here. RidgeCV hands the
    # scorer an estimator whose predictions are the leave-one-out ones.
    targets = np.where(np.arange(int(y.max()) + 1)[None, :] == y[:, None], 1.0, -1.0)
    model = RidgeCV(alphas=np.asarray(alphas) * z.shape[1], scoring=_argmax_accuracy).fit(z, targets)
    return float(model.best_score_), float(model.alpha_ / z.shape[1])


def ridge_fold_accuracies(x, y, *, folds: int = 5, seed: int = 0, alphas: Sequence[float] = RIDGE_ALPHAS) -> list[float]:
    """The accuracy on each of ``folds`` stratified folds of a ridge classifier trained on the
    other folds (standardised with their statistics, its strength chosen by their exact
    leave-one-out accuracy): ``tlhub select``'s k-fold probe, one eigendecomposition per fold."""
    from sklearn.linear_model import RidgeCV

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    classes = np.arange(int(y.max()) + 1)
    out = []
    for tr, te in _folds(y, folds, seed):
        std = Standardizer.fit(x[tr])
        z = std(x[tr])
        targets = np.where(classes[None, :] == y[tr][:, None], 1.0, -1.0)
        model = RidgeCV(alphas=np.asarray(alphas) * z.shape[1], scoring=_argmax_accuracy).fit(z, targets)
        out.append(float((model.predict(std(x[te])).argmax(1) == y[te]).mean()))
    return out


def _argmax_accuracy(estimator, x, targets) -> float:
    return float(np.mean(np.asarray(estimator.predict(x)).argmax(1) == np.asarray(targets).argmax(1)))


def _scoring_subset(y: np.ndarray, seed: int, limit: int = MAX_SCORING_EXAMPLES) -> np.ndarray:
    """Indices of at most ``limit`` examples, stratified by class (all of them when fewer)."""
    if len(y) <= limit:
        return np.arange(len(y))
    from sklearn.model_selection import train_test_split

    keep, _ = train_test_split(np.arange(len(y)), train_size=limit, stratify=y, random_state=seed)
    return np.sort(keep)


def _concat(layers: Mapping[int, np.ndarray], chosen: Sequence[int]) -> tuple[np.ndarray, list[int]]:
    parts = [np.asarray(layers[i], dtype=np.float64) for i in chosen]
    return np.concatenate(parts, axis=1), [p.shape[1] for p in parts]


def layer_scores(train: Mapping[int, np.ndarray], y, *, seed: int = 0) -> dict[int, dict]:
    """For each layer group alone: ``{index: {"score", "alpha", "scored_by"}}``, the
    leave-one-out accuracy of :func:`loo_accuracy` on the training split."""
    y = np.asarray(y, dtype=np.int64)
    keep = _scoring_subset(y, seed)
    out = {}
    for i in train:
        score, alpha = loo_accuracy(np.asarray(train[i])[keep], y[keep])
        out[int(i)] = {"score": score, "alpha": alpha, "scored_by": SCORED_BY}
    return out


@dataclass
class LayerSelection:
    layers: list[int]  # chosen layer-group indices, ascending
    score: float  # the leave-one-out score of the chosen set
    scored_by: str
    single: dict[int, dict]  # layer_scores of every candidate
    steps: list[dict]  # greedy steps: {"added", "score", "gain"}
    reason: str

    def to_dict(self) -> dict:
        return {"layers": self.layers, "score": self.score, "scored_by": self.scored_by, "steps": self.steps,
                "reason": self.reason, "single_layer_scores": {str(k): v for k, v in self.single.items()}}


def select_layers(train: Mapping[int, np.ndarray], y, *, seed: int = 0, max_layers: int = 4, min_gain: float = MIN_GAIN,
                  single: dict[int, dict] | None = None) -> LayerSelection:
    """Greedy forward selection of layer groups by leave-one-out accuracy on the training split.

    Starts from the best single group; adds the group that raises the score most, while it
    raises it by more than ``min_gain``, up to ``max_layers`` groups.
    """
    y = np.asarray(y, dtype=np.int64)
    single = single if single is not None else layer_scores(train, y, seed=seed)
    keep = _scoring_subset(y, seed)
    # ties: the later group (closer to the head: the usual choice, and the cheaper one to compute)
    first = max(single, key=lambda i: (single[i]["score"], i))
    chosen, score = [first], single[first]["score"]
    steps = [{"added": first, "score": score, "gain": None}]
    while len(chosen) < max_layers:
        best = None
        for i in train:
            if i in chosen:
                continue
            x, widths = _concat(train, sorted(chosen + [i]))
            s, _ = loo_accuracy(x[keep], y[keep], groups=widths)
            if best is None or s > best[1]:
                best = (i, s)
        if best is None or best[1] - score <= min_gain:
            break
        steps.append({"added": best[0], "score": best[1], "gain": best[1] - score})
        chosen, score = sorted(chosen + [best[0]]), best[1]
    reason = (f"greedy forward selection by {SCORED_BY} accuracy on the training split: started from group {first} alone "
              f"({single[first]['score']:.4f}), "
              + ("; ".join(f"added group {s['added']} (+{s['gain']:.4f})" for s in steps[1:]) or "no other group added more than "
                 f"{min_gain:g}") + f"; stopped at {score:.4f}")
    return LayerSelection(sorted(chosen), score, SCORED_BY, single, steps, reason)


def within_one_standard_error(scores: Mapping[int, float], examples: int) -> tuple[int, int, float]:
    """``(chosen, best, se)``: the smallest key whose accuracy is within one binomial standard
    error (on ``examples`` examples) of the best one's; ties for the best go to the smaller key.
    The one-standard-error rule of ``--recipe auto``'s input size and of ``unfreeze: auto``."""
    best = max(scores, key=lambda k: (scores[k], -k))
    se = math.sqrt(max(scores[best] * (1 - scores[best]), 1e-6) / max(int(examples), 1))
    return min(k for k in scores if scores[k] >= scores[best] - se), best, se


def unfreeze_recommendation(scores: Mapping[int, float], num_groups: int, examples: int) -> tuple[int, str]:
    """``(groups to unfreeze, sentence)`` from per-layer-group probe scores on ``examples``
    examples: the features stop improving at the first group whose score is within one standard
    error of the best (the same one-standard-error rule as the input size of ``--recipe auto``);
    the groups after it are the most specific to the pretraining task, so they are the ones to
    retrain (at least one).

    Why not the groups after the peak itself: on Protocol A, Lite0's groups 4-6 score within a
    point of each other, and the peak at group 6 left one group to fine-tune: 0.83 on the
    100-image validation split, against 0.88 for three groups and 0.91 for all eight
    (`benchmarks/run.py layers-unfreeze`, one seed). The first group within one standard error
    is group 4: three groups. All eight still scored higher there."""
    first, peak, se = within_one_standard_error(scores, examples)
    n = max(1, num_groups - 1 - int(first))
    return n, (f"features reach their best at group {int(first) + 1} of {num_groups} ({scores[first]:.4f}, within one standard "
               f"error ({se:.4f}) of the peak {scores[peak]:.4f} at group {int(peak) + 1}): unfreeze the last {n} group{'s' if n > 1 else ''}")
