"""The heads over the shared matrix: a head may leave the last columns out."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from models.heads import LinearHeads


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
