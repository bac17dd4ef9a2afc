"""`LinearHeads`: one calibrated linear model per label head, sharing one feature matrix.

Both heads read the same features, so a comment is vectorized once and scored by one
sparse matrix product. Labels come as a matrix with one column per head and NaN where
an example says nothing about that head; each head is trained only on its labeled rows.
A head whose labels hold fewer than two classes is left out (it is absent from
`heads_`), never filled with an invented model.

Calibration (in-memory mode): a logistic regression's own probabilities drift with its
regularization, so each head gets Platt's sigmoid fitted on out-of-fold decision values.
The sigmoid is monotone and linear in the logit, so it is folded into the weights:
the stored model is `p = sigmoid(x . coef + intercept)` with calibrated weights, and every
feature's `x_i * coef_i` is its exact share of the calibrated log-odds. That is what makes
the reasons shown to moderators come from the model itself. When a head has fewer than
`MIN_CALIBRATION_PER_CLASS` examples of either class, out-of-fold scores are too few to fit
a sigmoid reliably and the regression's own probabilities are kept (`calibrated_` says so).

Regularization per head (in-memory mode): with `C_grid`, each head tries every C in
the grid on the same calibration folds and keeps the one whose out-of-fold scores rank
best (ROC-AUC; the smaller C on a tie; on large label sets, measured on a subsample).
The Platt sigmoid is then fitted on that C's out-of-fold scores, so choosing C needs
no separate validation set.
Spam and abuse want different amounts: a few hundred spam examples with strong words
favour weak regularization, thousands of noisy abuse labels favour stronger.

Out of core: `SGDClassifier(loss="log_loss")` per head via `partial_fit`, then
`calibrate` fits each head's Platt sigmoid on held-out rows and folds it into the
weights, as above: SGD's own probabilities follow its learning rate and penalty, not the
data (on the seed set, a review threshold came out at 0.0006).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split

HEADS = ("spam", "abuse")
MIN_CALIBRATION_PER_CLASS = 10
SGD_ALPHA = 1e-5
# liblinear: on sparse text features it converges in a handful of iterations, about
# twice as fast as lbfgs here, and calibration needs several fits per head. The dual
# formulation is solved in the space of examples, which is far smaller than the space of
# n-grams: on 42,000 comments it is 2-5 times faster than the primal for the same optimum.
SOLVER = "liblinear"
DUAL = True
MAX_ITER = 1000
# Above this many labeled rows, C is chosen on a stratified subsample of this size: the
# best C changes little past a few thousand examples, and the search costs one fit per
# fold per candidate.
GRID_SEARCH_ROWS = 8000


def _labels(y: Any, n_heads: int) -> np.ndarray:
    labels = np.asarray(y, dtype=np.float64)
    if labels.ndim == 1 and n_heads == 1:
        labels = labels.reshape(-1, 1)
    if labels.ndim != 2 or labels.shape[1] != n_heads:
        raise ValueError(f"labels must have shape (n, {n_heads}), got {labels.shape}")
    known = labels[~np.isnan(labels)]
    if not np.isin(known, (0.0, 1.0)).all():
        raise ValueError("labels must be 0, 1 or NaN")
    return labels


def _logistic(c: float, seed: int) -> LogisticRegression:
    return LogisticRegression(C=c, solver=SOLVER, dual=DUAL, max_iter=MAX_ITER, random_state=seed)


def _out_of_fold(matrix: Any, y: np.ndarray, c: float, folds: int, seed: int) -> np.ndarray:
    """Decision values of each row from a model fitted on the other folds."""
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores: np.ndarray = cross_val_predict(
        _logistic(c, seed), matrix, y, cv=splitter, method="decision_function"
    )
    return scores


def can_calibrate(y: np.ndarray, folds: int) -> bool:
    """Whether each class has enough rows for out-of-fold scores to be worth fitting on."""
    return bool(np.bincount(y, minlength=2).min() >= max(MIN_CALIBRATION_PER_CLASS, folds))


def _subsample(y: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Row indices of a stratified random subsample of `size` rows (all rows if fewer)."""
    if len(y) <= size:
        return np.arange(len(y))
    rows, _ = train_test_split(np.arange(len(y)), train_size=size, stratify=y, random_state=seed)
    return np.sort(rows)


def choose_c(
    matrix: Any, y: np.ndarray, grid: Sequence[float], folds: int, seed: int
) -> tuple[float, np.ndarray]:
    """Return (the C whose out-of-fold scores have the best ROC-AUC, out-of-fold scores at that C).

    On a large label set the grid is searched on a stratified subsample of
    `GRID_SEARCH_ROWS` rows, which keeps training time bounded; the returned
    scores are then computed on all rows with the chosen C.
    """
    rows = _subsample(y, GRID_SEARCH_ROWS, seed)
    best: tuple[float, float, np.ndarray] | None = None
    for c in sorted(grid):  # ascending, so that a tie keeps the smaller C
        scores = _out_of_fold(matrix[rows], y[rows], c, folds, seed)
        auc = float(roc_auc_score(y[rows], scores))
        if best is None or auc > best[1]:
            best = (c, auc, scores)
    if best is None:
        raise ValueError("the C grid is empty")
    if len(rows) == len(y):
        return best[0], best[2]
    return best[0], _out_of_fold(matrix, y, best[0], folds, seed)


def _platt(scores: np.ndarray, y: np.ndarray) -> tuple[float, float] | None:
    """Return (slope, offset) of a sigmoid fitted on out-of-fold scores, or None."""
    sigmoid = _fit_sigmoid(scores, y)
    slope, offset = float(sigmoid.coef_[0, 0]), float(sigmoid.intercept_[0])
    # A non-positive slope means the out-of-fold scores rank backwards: the model has
    # learned nothing that generalizes, and flipping its weights would hide that.
    return (slope, offset) if slope > 0 else None


def _folded(
    coef: np.ndarray, intercept: float, sigmoid: tuple[float, float] | None
) -> tuple[np.ndarray, float, bool]:
    """(weights, intercept, calibrated) with ``sigmoid``'s (slope, offset) folded in, if any."""
    if sigmoid is None:
        return coef, intercept, False
    slope, offset = sigmoid
    return coef * slope, intercept * slope + offset, True


def _fit_sigmoid(scores: np.ndarray, y: np.ndarray) -> LogisticRegression:
    """Fit Platt's sigmoid with his smoothed targets, (N+ + 1)/(N+ + 2) and 1/(N- + 2).

    Smoothed targets keep the slope finite when the out-of-fold scores separate the
    classes perfectly, which small label sets often do; plain 0/1 targets would then
    push every probability to 0 or 1. Soft targets are expressed to LogisticRegression
    as each point appearing twice, once per class, weighted by its target.
    """
    positives, negatives = int(y.sum()), int(len(y) - y.sum())
    target = np.where(y == 1, (positives + 1.0) / (positives + 2.0), 1.0 / (negatives + 2.0))
    column = np.r_[scores, scores].reshape(-1, 1)
    labels = np.r_[np.ones(len(y)), np.zeros(len(y))]
    weights = np.r_[target, 1.0 - target]
    # A large C: two parameters and the smoothing already keep the fit sane.
    return LogisticRegression(C=1e4, max_iter=1000).fit(column, labels, sample_weight=weights)


# In double precision a log-odds above about 37 rounds to a probability of exactly 1.0,
# and a reject threshold of 1.0 stands for "never reject automatically" (models.metrics):
# so a probability stops just below 1.
_BELOW_ONE = float(np.nextafter(1.0, 0.0))


class LinearHeads(BaseEstimator):  # type: ignore[misc]
    """Per-head calibrated logistic models over one shared feature matrix.

    `unused_last_columns` names, per head, how many of the matrix's last columns that
    head leaves out (fitted without them, weight zero there): a branch that helps one
    head and not another is put last.

    Attributes (after fitting):
        heads_: the heads that were trained, in the order of the output columns.
        coef_: array (len(heads_), n_features) of calibrated weights.
        intercept_: array (len(heads_),) of calibrated intercepts.
        calibrated_: for each head in `heads_`, whether a sigmoid was fitted.
        C_: for each head in `heads_`, the C its weights were fitted with.
        class_counts_: for every requested head, [negatives, positives] seen in training.
    """

    def __init__(
        self,
        heads: tuple[str, ...] = HEADS,
        C: float | Mapping[str, float] = 4.0,  # noqa: N803 - scikit-learn's name for it
        C_grid: tuple[float, ...] | None = None,  # noqa: N803
        calibration_folds: int = 3,
        out_of_core: bool = False,
        random_state: int = 0,
        unused_last_columns: Mapping[str, int] | None = None,
    ) -> None:
        self.heads = heads
        self.C = C
        self.C_grid = C_grid
        self.calibration_folds = calibration_folds
        self.out_of_core = out_of_core
        self.random_state = random_state
        self.unused_last_columns = unused_last_columns

    def fit(self, matrix: Any, y: Any) -> LinearHeads:
        """Fit every head that has both classes among its labeled rows."""
        if self.out_of_core:
            # Out of core, a fit is a single chunk; repeated chunks go to partial_fit.
            for attribute in ("sgd_", "heads_"):
                self.__dict__.pop(attribute, None)
            return self.partial_fit(matrix, y)
        labels = _labels(y, len(self.heads))
        fitted: list[tuple[str, np.ndarray, float, bool]] = []
        self.class_counts_: dict[str, list[int]] = {}
        self.C_: dict[str, float] = {}
        for column, head in enumerate(self.heads):
            rows = ~np.isnan(labels[:, column])
            target = labels[rows, column].astype(np.int64)
            self.class_counts_[head] = np.bincount(target, minlength=2).tolist()
            if min(self.class_counts_[head]) == 0:
                continue
            # A head leaves out the last columns it does not use: its weights there are zero.
            unused = int((self.unused_last_columns or {}).get(head, 0))
            used = matrix.shape[1] - unused
            part = matrix[rows] if not unused else matrix[np.flatnonzero(rows), :used]
            coef, intercept, calibrated = self._fit_head(head, part, target)
            fitted.append((head, np.pad(coef, (0, unused)), intercept, calibrated))
        self._set_weights(fitted, matrix.shape[1])
        return self

    def _fixed_c(self, head: str) -> float:
        """The C for `head` when none is chosen from the grid."""
        return float(self.C[head] if isinstance(self.C, Mapping) else self.C)

    def _fit_head(self, head: str, matrix: Any, y: np.ndarray) -> tuple[np.ndarray, float, bool]:
        folds, seed = self.calibration_folds, self.random_state
        c = self._fixed_c(head)
        sigmoid = None
        if can_calibrate(y, folds):
            if self.C_grid:
                c, scores = choose_c(matrix, y, self.C_grid, folds, seed)
            else:
                scores = _out_of_fold(matrix, y, c, folds, seed)
            sigmoid = _platt(scores, y)
        self.C_[head] = c
        model = _logistic(c, seed).fit(matrix, y)
        return _folded(model.coef_[0].astype(np.float64), float(model.intercept_[0]), sigmoid)

    def partial_fit(self, matrix: Any, y: Any) -> LinearHeads:
        """Update the out-of-core heads with one chunk of rows."""
        labels = _labels(y, len(self.heads))
        if not hasattr(self, "sgd_"):
            self.sgd_ = {
                head: SGDClassifier(loss="log_loss", alpha=SGD_ALPHA, random_state=self.random_state)
                for head in self.heads
            }
            self.class_counts_ = {head: [0, 0] for head in self.heads}
        for column, head in enumerate(self.heads):
            rows = ~np.isnan(labels[:, column])
            if not rows.any():
                continue
            target = labels[rows, column].astype(np.int64)
            counts = np.bincount(target, minlength=2)
            self.class_counts_[head] = [
                int(a + b) for a, b in zip(self.class_counts_[head], counts, strict=True)
            ]
            self.sgd_[head].partial_fit(matrix[rows], target, classes=np.array([0, 1]))
        fitted = [
            (head, model.coef_[0].astype(np.float64), float(model.intercept_[0]), False)
            for head, model in self.sgd_.items()
            if min(self.class_counts_[head]) > 0
        ]
        self._set_weights(fitted, matrix.shape[1])
        return self

    def calibrate(self, logits: Any, y: Any) -> LinearHeads:
        """After the last `partial_fit`: fit each head's sigmoid on held-out rows, given as
        their `decision_function` values and labels, and fold it into its weights. A head
        with fewer than `MIN_CALIBRATION_PER_CLASS` rows of either class among them keeps
        its own probabilities (`calibrated_` says which)."""
        labels = _labels(y, len(self.heads))
        values = np.asarray(logits, dtype=np.float64).reshape(len(labels), len(self.heads_))
        fitted: list[tuple[str, np.ndarray, float, bool]] = []
        for row, head in enumerate(self.heads_):
            coef, intercept = np.asarray(self.coef_[row], dtype=np.float64), float(self.intercept_[row])
            known = ~np.isnan(labels[:, self.heads.index(head)])
            target = labels[known, self.heads.index(head)].astype(np.int64)
            sigmoid = None
            if np.bincount(target, minlength=2).min() >= MIN_CALIBRATION_PER_CLASS:
                sigmoid = _platt(values[known, row], target)
            fitted.append((head, *_folded(coef, intercept, sigmoid)))
        self._set_weights(fitted, self.n_features_in_)
        return self

    def _set_weights(self, fitted: list[tuple[str, np.ndarray, float, bool]], n_features: int) -> None:
        self.heads_ = tuple(head for head, *_ in fitted)
        coef = np.vstack([coef for _, coef, _, _ in fitted]) if fitted else np.zeros((0, n_features))
        # Column-major, so that `coef_.T` in `decision_function` is contiguous: otherwise
        # scipy copies the whole weight matrix on every product, for every comment.
        self.coef_ = np.asfortranarray(coef)
        self.intercept_ = np.asarray([b for _, _, b, _ in fitted], dtype=np.float64)
        self.calibrated_ = tuple(calibrated for *_, calibrated in fitted)
        self.n_features_in_ = n_features

    def decision_function(self, matrix: Any) -> np.ndarray:
        """Return calibrated log-odds, shape (n, len(heads_))."""
        logits = matrix @ self.coef_.T + self.intercept_
        return np.asarray(logits, dtype=np.float64)

    def predict_proba(self, matrix: Any) -> np.ndarray:
        """Return the probability of the positive class per head, shape (n, len(heads_)),
        always below 1."""
        probabilities: np.ndarray = np.minimum(expit(self.decision_function(matrix)), _BELOW_ONE)
        return probabilities
