"""The heads over the shared matrix: a head may leave the last columns out; probabilities stay below 1;
calibration is folded into the weights, and only when there is enough to fit it on."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from models.heads import LinearHeads, _logistic, _out_of_fold, _platt, can_calibrate, choose_c
from models.metrics import NO_AUTOMATIC_REJECT
from service.statuses import CommentStatus
from worker.policy import Policy, route


def test_a_head_leaves_out_the_last_columns_it_does_not_use() -> None:
    rng = np.random.default_rng(0)
    matrix = sp.csr_matrix(rng.random((120, 8)) * (rng.random((120, 8)) > 0.4))
    # The spam label depends on the first column, the abuse label on the last.
    labels = np.c_[matrix[:, 0].toarray() > 0.3, matrix[:, 7].toarray() > 0.3].astype(float)
    labels[:20, 1] = np.nan  # rows without an abuse label are left out of that head
    both = LinearHeads(C=1.0, unused_last_columns={"spam": 3}).fit(matrix, labels)
    alone = LinearHeads(heads=("spam",), C=1.0).fit(matrix[:, :5], labels[:, :1])
    spam, abuse = both.coef_
    assert not spam[5:].any() and abuse[5:].all()
    np.testing.assert_allclose(spam[:5], alone.coef_[0])
    assert both.intercept_[0] == alone.intercept_[0]
    assert both.decision_function(matrix).shape == (120, 2)


def test_a_probability_stays_below_one_so_no_automatic_reject_means_never() -> None:
    matrix = sp.csr_matrix(np.array([[0.0], [1.0]]))
    heads = LinearHeads(C=1.0).fit(matrix, np.array([[0.0, 0.0], [1.0, 1.0]]))
    heads.coef_ = np.asfortranarray(np.full((2, 1), 80.0))  # log-odds 80: 1.0 in double precision
    probabilities = heads.predict_proba(sp.csr_matrix(np.array([[1.0]])))
    assert (probabilities < NO_AUTOMATIC_REJECT).all() and (probabilities > 0.999).all()
    spam, abuse = probabilities[0]
    thresholds = {"review": 0.5, "reject": NO_AUTOMATIC_REJECT}
    routing = route(Policy(), {"spam": spam, "abuse": abuse}, {"spam": thresholds, "abuse": thresholds})
    assert routing.outcome is CommentStatus.FLAGGED


def _separable(rows: int, seed: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """Rows whose first column leans toward their label (alternately 0 and 1), with noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(rows) % 2
    dense = rng.normal(size=(rows, 4))
    dense[:, 0] += 2.0 * y
    return sp.csr_matrix(dense), y


def test_calibration_needs_ten_examples_of_each_class_and_one_per_fold() -> None:
    def labels(negatives: int, positives: int) -> np.ndarray:
        return np.array([0] * negatives + [1] * positives)

    assert can_calibrate(labels(10, 10), folds=3)
    assert not can_calibrate(labels(9, 30), folds=3)
    assert can_calibrate(labels(12, 12), folds=12)
    assert not can_calibrate(labels(40, 11), folds=12)


def test_the_platt_sigmoid_is_folded_into_the_weights_and_the_intercept() -> None:
    rng = np.random.default_rng(1)
    dense = rng.normal(size=(300, 6))
    # Few positives: the regression's intercept is far from zero, as with real spam rates.
    y = (dense[:, 0] + rng.normal(size=300) > 1.2).astype(np.int64)
    matrix = sp.csr_matrix(dense)
    heads = LinearHeads(heads=("spam",), C=1.0).fit(matrix, y.reshape(-1, 1).astype(float))
    assert heads.calibrated_ == (True,)
    sigmoid = _platt(_out_of_fold(matrix, y, 1.0, 3, 0), y)
    assert sigmoid is not None
    slope, offset = sigmoid
    plain = _logistic(1.0, 0).fit(matrix, y).decision_function(matrix)
    # p = sigmoid(slope * (x . w + b) + offset), stored as one linear model.
    np.testing.assert_allclose(heads.decision_function(matrix)[:, 0], slope * plain + offset, rtol=1e-9)


def test_of_values_of_c_that_rank_alike_the_smallest_is_kept() -> None:
    # One column gives the label away: every C ranks the held-out rows perfectly.
    y = np.arange(60) % 2
    matrix = sp.csr_matrix(np.c_[y.astype(float), np.ones(60)])
    for grid in ((0.25, 1.0, 4.0), (4.0, 1.0, 0.25)):  # in whatever order the grid is given
        c, scores = choose_c(matrix, y, grid, folds=3, seed=0)
        assert c == 0.25 and scores.shape == (60,)


def test_out_of_core_a_head_is_left_out_until_it_has_seen_both_classes() -> None:
    matrix, y = _separable(40, seed=3)
    heads = LinearHeads(out_of_core=True).partial_fit(matrix, np.c_[y, np.zeros(40)])
    assert heads.heads_ == ("spam",) and heads.class_counts_["abuse"] == [40, 0]
    assert heads.coef_.shape == (1, 4)
    heads.partial_fit(matrix, np.c_[y, y])
    assert heads.heads_ == ("spam", "abuse") and heads.class_counts_["abuse"] == [60, 20]


def test_out_of_core_calibration_needs_ten_of_each_class_and_scores_that_rank_forwards() -> None:
    matrix, y = _separable(400, seed=4)
    held_out, held_y = _separable(20, seed=5)  # ten of each class
    labels = np.c_[held_y, held_y].astype(float)

    def trained() -> LinearHeads:
        return LinearHeads(out_of_core=True).fit(matrix, np.c_[y, y])

    logits = trained().decision_function(held_out)
    assert trained().calibrate(logits, labels).calibrated_ == (True, True)
    one_short = labels.copy()
    one_short[0] = np.nan  # nine negatives left
    assert trained().calibrate(logits, one_short).calibrated_ == (False, False)
    # Scores that rank the held-out rows backwards are not turned around: the weights stay.
    backwards = trained().calibrate(-logits, labels)
    assert backwards.calibrated_ == (False, False)
    np.testing.assert_array_equal(backwards.coef_, trained().coef_)
