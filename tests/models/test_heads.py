"""The heads over the shared matrix: a head may leave the last columns out; probabilities stay below 1."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from models.heads import LinearHeads
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
