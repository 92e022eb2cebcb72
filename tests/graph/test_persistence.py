import pickle
import textwrap

import joblib
import numpy as np
import pytest

from sksemantic.graph import SemanticGraphTransformer
from tests._helpers import HNSW, blobs, run_python


@pytest.mark.parametrize("algorithm", ["brute", "ivf", "annoy", HNSW])
def test_joblib_round_trip_in_a_new_process(tmp_path, algorithm):
    X, _ = blobs(n_samples=500, n_features=16)
    Q, _ = blobs(n_samples=40, n_features=16, seed=7)
    est = SemanticGraphTransformer(n_neighbors=5, algorithm=algorithm, random_state=0)
    est.fit_transform(X)  # persistence must survive fit_transform too
    expected = est.transform(Q)
    joblib.dump(est, tmp_path / "graph.joblib")
    np.save(tmp_path / "Q.npy", Q)
    code = textwrap.dedent(
        f"""
        import joblib, numpy as np, scipy.sparse as sp
        est = joblib.load({str(tmp_path / "graph.joblib")!r})
        G = est.transform(np.load({str(tmp_path / "Q.npy")!r}))
        sp.save_npz({str(tmp_path / "out.npz")!r}, G)
        """
    )
    run_python("-c", code)
    import scipy.sparse as sp

    got = sp.load_npz(tmp_path / "out.npz")
    np.testing.assert_array_equal(got.indptr, expected.indptr)
    np.testing.assert_array_equal(got.indices, expected.indices)
    np.testing.assert_array_equal(got.data, expected.data)


@pytest.mark.parametrize("algorithm", ["brute", "ivf", "annoy", HNSW])
def test_pickle_is_compact(algorithm):
    X, _ = blobs(n_samples=2000, n_features=32)
    est = SemanticGraphTransformer(algorithm=algorithm, random_state=0).fit(X)
    size = len(pickle.dumps(est))
    float32_bytes = X.shape[0] * X.shape[1] * 4
    # The data once (float32) plus small structures; annoy and HNSW add their own copy
    # of the vectors and their trees or links.
    limit = 3.5 if algorithm in ("annoy", "hnsw") else 1.3
    assert size < limit * float32_bytes
    again = pickle.loads(pickle.dumps(est))
    assert (again.transform(X[:10]) != est.transform(X[:10])).nnz == 0


def test_pickle_from_another_version_warns():
    X, _ = blobs(n_samples=50, n_features=4)
    est = SemanticGraphTransformer(n_neighbors=3).fit(X)
    state = est.__getstate__()
    state["_sksemantic_version"] = "0.0.0"
    clone = SemanticGraphTransformer.__new__(SemanticGraphTransformer)
    with pytest.warns(UserWarning, match="pickled with sksemantic 0.0.0"):
        clone.__setstate__(state)
