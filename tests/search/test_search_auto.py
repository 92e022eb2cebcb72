"""algorithm="auto": IVF beyond 20,000 items only where it finds the neighbours."""

import numpy as np

from sksemantic.search import SemanticSearch
from sksemantic.search._search import AUTO_MIN_RECALL


def _clustered(n, d=32, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(50, d))
    return (centers[rng.integers(50, size=n)] + 0.3 * rng.normal(size=(n, d))).astype(np.float32)


def test_auto_keeps_ivf_on_clustered_data():
    X = _clustered(25_000)
    est = SemanticSearch(random_state=0).fit(X)
    assert est.algorithm_ == "ivf"
    assert est.auto_recall_ >= AUTO_MIN_RECALL


def test_auto_searches_exactly_on_random_data(capsys):
    X = np.random.default_rng(0).standard_normal((25_000, 128), dtype=np.float32)
    est = SemanticSearch(random_state=0, verbose=1).fit(X)
    assert est.algorithm_ == "brute"
    assert est.auto_recall_ < AUTO_MIN_RECALL
    assert "searching exactly" in capsys.readouterr().err
    # And the answers are then exact.
    Q = X[:5] + 0.01
    cos = (Q @ X.T) / np.linalg.norm(Q, axis=1)[:, None] / np.linalg.norm(X, axis=1)[None]
    ids = est.kneighbors(Q, 5, return_distance=False)
    np.testing.assert_array_equal(np.sort(ids, axis=1), np.sort(np.argsort(-cos, axis=1)[:, :5], axis=1))


def test_explicit_ivf_is_kept_whatever_its_recall():
    X = np.random.default_rng(1).standard_normal((3_000, 64), dtype=np.float32)
    est = SemanticSearch(algorithm="ivf", random_state=0).fit(X)
    assert est.algorithm_ == "ivf" and est.auto_recall_ is None


def test_auto_recall_sample_is_held_out_from_ivf_training():
    # Rows that trained the IVF lists overstate recall (the lists fit them); with an
    # integer random_state a plain draw of the sample used to be exactly such rows.
    from sksemantic.search._search import AUTO_RECALL_SAMPLE, _auto_sample_rows

    X = _clustered(25_000)
    est = SemanticSearch(algorithm="ivf", random_state=0).fit(X)
    trained = est.index_.train_rows_
    assert trained is not None and len(trained) < len(X)
    rows = _auto_sample_rows(est.index_, len(X), 0)
    assert len(rows) == AUTO_RECALL_SAMPLE == len(np.unique(rows))
    assert not np.isin(rows, trained).any()
