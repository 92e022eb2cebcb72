"""SemanticSearch: exactness, approximate recall, filters, growth, persistence, errors."""

import textwrap

import joblib
import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from sksemantic.datasets import load_debian_packages, load_wordnet_queries
from sksemantic.search import SemanticSearch
from sksemantic.search import _search as _search_module
from tests._helpers import HNSW, blobs, run_python


def _blobs(n=500, seed=0):
    return blobs(n, 16, 10, noise=0.4, seed=seed)[0]


def _exact_cosine(corpus, queries, k):
    """util.semantic_search's algorithm: cosine similarities, then top-k."""
    a = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    b = corpus / np.linalg.norm(corpus, axis=1, keepdims=True)
    S = a @ b.T
    ids = np.argsort(-S, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(S, ids, axis=1), ids


@pytest.fixture(scope="module")
def debian():
    return load_debian_packages()


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "manhattan"])
def test_brute_equals_nearest_neighbors(metric):
    X, Q = _blobs(), _blobs(40, seed=1)
    dist, ind = SemanticSearch(metric=metric, algorithm="brute").fit(X).kneighbors(Q, 7)
    ref_dist, ref_ind = NearestNeighbors(n_neighbors=7, metric=metric).fit(X).kneighbors(Q)
    np.testing.assert_array_equal(ind, ref_ind)
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-4, atol=1e-4)
    assert np.all(np.diff(dist, axis=1) >= 0)


def test_search_matches_semantic_search_format():
    X, Q = _blobs(), _blobs(5, seed=1)
    res = SemanticSearch(algorithm="brute").fit(X).search(Q, top_k=4)
    ref_s, ref_i = _exact_cosine(X, Q, 4)
    assert len(res) == 5 and all(len(r) == 4 for r in res)
    for row, rs, ri in zip(res, ref_s, ref_i, strict=True):
        assert [h["corpus_id"] for h in row] == ri.tolist()
        np.testing.assert_allclose([h["score"] for h in row], rs, atol=1e-5)
        assert set(row[0]) == {"corpus_id", "score"}
        assert isinstance(row[0]["corpus_id"], int) and isinstance(row[0]["score"], float)
    # top_k beyond the corpus returns the whole corpus, sorted.
    res = SemanticSearch().fit(X[:3]).search(Q[:1], top_k=10)
    assert len(res[0]) == 3
    assert [h["score"] for h in res[0]] == sorted((h["score"] for h in res[0]), reverse=True)


def test_kneighbors_without_queries_excludes_self():
    X = _blobs(200)
    ind = SemanticSearch(algorithm="brute").fit(X).kneighbors(n_neighbors=3, return_distance=False)
    ref = NearestNeighbors(n_neighbors=3, metric="cosine").fit(X).kneighbors(return_distance=False)
    np.testing.assert_array_equal(ind, ref)


# Settings that search about a third of a 2,800-item corpus: real MiniLM embeddings are
# weakly clustered, so small corpora need a large probed fraction for recall >= 0.9.
_TUNED = {
    "ivf": {"algorithm": "ivf", "n_lists": 50, "n_probe": 20},
    "annoy": {"algorithm": "annoy", "n_trees": 20, "search_k": 5000},
    "hnsw": {"algorithm": "hnsw"},
}


@pytest.mark.parametrize("algorithm", ["ivf", "annoy", HNSW])
def test_approximate_recall_on_real_embeddings(debian, algorithm):
    X = debian.data
    Q, corpus = X[:200], X[200:]
    _, exact = _exact_cosine(corpus, Q, 10)
    est = SemanticSearch(random_state=0, **_TUNED[algorithm]).fit(corpus)
    ind = est.kneighbors(Q, 10, return_distance=False)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ind, exact, strict=True)])
    assert recall >= 0.9


def test_evaluate_known_item_queries():
    wn = load_wordnet_queries()
    exact = SemanticSearch(algorithm="brute").fit(wn.data)
    truth = np.arange(len(wn.data))
    ev = exact.evaluate(wn.query_data, truth, k=[1, 10])
    # Cross-check against a direct computation of the hit rate.
    _, ids = _exact_cosine(wn.data, wn.query_data, 10)
    assert ev["recall@10"] == pytest.approx(np.mean(np.any(ids == truth[:, None], axis=1)))
    assert ev["recall@1"] <= ev["ndcg@10"] <= ev["recall@10"]
    assert ev["recall@10"] > 0.4
    approx = SemanticSearch(random_state=0, **_TUNED["ivf"]).fit(wn.data)
    assert approx.evaluate(wn.query_data, truth)["recall@10"] >= 0.95 * ev["recall@10"]


# -- filters ---------------------------------------------------------------------------
@pytest.mark.parametrize("algorithm", ["brute", "ivf", "annoy", HNSW])
@pytest.mark.parametrize("fraction", [0.5, 0.05, 0.004])
@pytest.mark.parametrize("exact_below", [0, None])
def test_filter_returns_top_k_that_pass(debian, algorithm, fraction, exact_below, monkeypatch):
    if exact_below is not None:
        # Force the over-fetch path even though this corpus is small.
        monkeypatch.setattr(_search_module, "EXACT_FILTER_MAX_PASSING", exact_below)
    X, Q = debian.data[100:], debian.data[:30]
    est = SemanticSearch(random_state=0, **_TUNED.get(algorithm, {"algorithm": algorithm}))
    est.fit(X)
    rng = np.random.default_rng(1)
    allowed = rng.random(len(X)) < fraction
    k = 10
    res = est.search(Q, top_k=k, filter=allowed)
    passing = np.flatnonzero(allowed)
    exact_s, _ = _exact_cosine(X[passing], Q, k)
    recall = []
    for row, ex in zip(res, exact_s, strict=True):
        ids = [h["corpus_id"] for h in row]
        assert len(ids) == min(k, len(passing))
        assert allowed[ids].all()
        # Score-based recall: ties among duplicate descriptions make ids ambiguous.
        recall.append(np.mean(np.array([h["score"] for h in row]) >= ex[-1] - 1e-5))
    exact = algorithm == "brute" or exact_below is None
    assert np.mean(recall) >= (1.0 if exact else 0.85)
    # The same filter as allowed ids gives the same results.
    assert est.search(Q, top_k=k, filter=passing) == res


def test_category_filter_and_labels_in_results(debian):
    est = SemanticSearch(algorithm="ivf", random_state=0).fit(
        debian.data, debian.target_names[debian.target], metadata=debian.texts
    )
    res = est.search(debian.data[:5], top_k=5, category=["python", "doc"])
    for row in res:
        assert len(row) == 5
        assert {h["label"] for h in row} <= {"python", "doc"}
        assert all(h["metadata"] == debian.texts[h["corpus_id"]] for h in row)
    # category and filter combine (both must hold).
    mask = np.arange(len(debian.data)) % 2 == 0
    ids = est.kneighbors(debian.data[:5], 5, return_distance=False, filter=mask, category="python")
    assert mask[ids].all() and (debian.target_names[debian.target[ids]] == "python").all()


def test_filter_with_too_few_passing():
    est = SemanticSearch().fit(_blobs(50))
    mask = np.zeros(50, dtype=bool)
    mask[[3, 7]] = True
    assert [len(r) for r in est.search(_blobs(2, seed=1), top_k=5, filter=mask)] == [2, 2]
    assert est.search(_blobs(2, seed=1), filter=np.zeros(50, dtype=bool)) == [[], []]
    with pytest.raises(ValueError, match="pass the filter"):
        est.kneighbors(_blobs(2, seed=1), 5, filter=mask)


# -- growth ------------------------------------------------------------------------------
@pytest.mark.parametrize("algorithm", ["brute", "ivf", "annoy", HNSW])
def test_add_after_fit(debian, algorithm):
    X, Q = debian.data, debian.data[:50] + 0.01
    full = SemanticSearch(algorithm=algorithm, random_state=0, n_probe=10 ** 6 if algorithm == "ivf" else None)
    full.fit(X, debian.target)
    grown = SemanticSearch(algorithm=algorithm, random_state=0, n_probe=full.n_probe)
    grown.fit(X[:2000], debian.target[:2000]).add(X[2000:], debian.target[2000:])
    assert grown.n_samples_fit_ == len(X) and len(grown.labels_) == len(X)
    d_full, i_full = full.kneighbors(Q, 5)
    d_grown, i_grown = grown.kneighbors(Q, 5)
    if algorithm in ("annoy", "hnsw"):
        agree = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(i_full, i_grown, strict=True)])
        assert agree >= 0.9
    else:  # exact, and IVF probing every list: the same as a fit on everything
        # (distances: duplicate descriptions tie, and round-off may order them apart)
        np.testing.assert_allclose(d_grown, d_full, atol=1e-5)
        assert np.mean(i_full == i_grown) > 0.9
    # New items are found: each added point is its own nearest neighbour.
    ids = grown.kneighbors(X[2000:2100], 1, return_distance=False)[:, 0]
    assert np.mean(ids == np.arange(2000, 2100)) >= 0.95


def test_add_checks_labels_and_metadata():
    X = _blobs(60)
    est = SemanticSearch().fit(X[:40], metadata=[f"t{i}" for i in range(40)])
    with pytest.raises(ValueError, match="metadata was given to fit"):
        est.add(X[40:])
    with pytest.raises(ValueError, match="y was not given to fit"):
        est.add(X[40:], np.zeros(20), metadata=["x"] * 20)
    with pytest.raises(ValueError, match="features"):
        est.add(X[40:, :5], metadata=["x"] * 20)
    est.add(X[40:], metadata=[f"t{i}" for i in range(40, 60)])
    assert est.search(X[55:56], top_k=1)[0][0]["metadata"] == "t55"


# -- persistence ---------------------------------------------------------------------------
_RELOAD = textwrap.dedent(
    """
    import sys, pickle, numpy as np, joblib
    from sksemantic.search import SemanticSearch
    joblib_path, saved_dir, qpath = sys.argv[1:4]
    Q = np.load(qpath)
    out = []
    for how in ("joblib", "mmap"):
        est = joblib.load(joblib_path) if how == "joblib" else SemanticSearch.load(saved_dir)
        if how == "mmap":
            assert isinstance(est.index_.X_, np.memmap), type(est.index_.X_)
        d, i = est.kneighbors(Q, 5)
        res = est.search(Q, top_k=3, filter=np.arange(est.n_samples_fit_) % 3 == 0)
        out.append((d, i, res))
    sys.stdout.buffer.write(pickle.dumps(out))
    """
)


@pytest.mark.parametrize("algorithm", ["brute", "ivf", "annoy", HNSW])
def test_persistence_in_a_new_process(tmp_path, debian, algorithm):
    """joblib and save/load (memory-mapped) reproduce the results in a new process."""
    import pickle

    X = debian.data[:1500]
    Q = debian.data[1500:1520]
    est = SemanticSearch(algorithm=algorithm, random_state=0).fit(X, metadata=debian.texts[:1500])
    expected = (*est.kneighbors(Q, 5), est.search(Q, top_k=3, filter=np.arange(1500) % 3 == 0))
    np.save(tmp_path / "q.npy", Q)
    joblib.dump(est, tmp_path / "est.joblib")
    est.save(tmp_path / "saved")
    out = run_python("-c", _RELOAD, tmp_path / "est.joblib", tmp_path / "saved",
                     tmp_path / "q.npy", text=False).stdout
    for d, i, res in pickle.loads(out):
        np.testing.assert_array_equal(d, expected[0])
        np.testing.assert_array_equal(i, expected[1])
        assert res == expected[2]


def test_save_replaces_an_earlier_save_whole(tmp_path):
    X = _blobs(300)
    first = SemanticSearch(algorithm="brute").fit(X[:100])
    first.save(tmp_path / "s")
    served = SemanticSearch.load(tmp_path / "s")  # memory-mapped, as a server holds it
    expected = served.kneighbors(X[:5], 3)
    second = SemanticSearch(algorithm="ivf", random_state=0).fit(X)
    second.save(tmp_path / "s")
    # The server's mapped files were not overwritten in place.
    for a, b in zip(served.kneighbors(X[:5], 3), expected, strict=True):
        np.testing.assert_array_equal(a, b)
    assert SemanticSearch.load(tmp_path / "s").n_samples_fit_ == 300
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]  # no leftovers
    # A directory that is not a save is never replaced.
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("data")
    with pytest.raises(FileExistsError, match="refusing"):
        second.save(tmp_path / "other")
    assert (tmp_path / "other" / "keep.txt").read_text() == "data"
    (tmp_path / "a_file").write_text("data")
    with pytest.raises(FileExistsError, match="refusing"):
        second.save(tmp_path / "a_file")
    # An empty directory (a fresh temporary one, say) holds nothing to lose.
    (tmp_path / "empty").mkdir()
    second.save(tmp_path / "empty")
    assert SemanticSearch.load(tmp_path / "empty").n_samples_fit_ == 300


def test_load_in_process_and_grow(tmp_path):
    X = _blobs(300)
    est = SemanticSearch(algorithm="annoy", random_state=0).fit(X[:200])
    est.save(tmp_path / "s")
    loaded = SemanticSearch.load(tmp_path / "s")
    loaded.add(X[200:])
    assert loaded.n_samples_fit_ == 300
    assert loaded.kneighbors(X[250:251], 1, return_distance=False)[0, 0] == 250
    with pytest.raises(ValueError, match="search.pkl"):  # changed after saving
        import pickle

        version = (tmp_path / "s" / "CURRENT").read_text().strip()
        with open(tmp_path / "s" / version / "search.pkl", "wb") as fh:
            pickle.dump(object(), fh)
        SemanticSearch.load(tmp_path / "s")


# -- bad input -------------------------------------------------------------------------------
def test_bad_input_errors():
    X = _blobs(50)
    est = SemanticSearch().fit(X)
    with pytest.raises(ValueError, match="16 features"):
        est.search(np.ones((2, 8)))
    with pytest.raises(ValueError, match="0 sample"):
        SemanticSearch().fit(np.empty((0, 16)))
    with pytest.raises(ValueError, match="top_k must be >= 1"):
        est.search(X[:2], top_k=0)
    with pytest.raises(ValueError, match="n_neighbors must be >= 1"):
        est.kneighbors(X[:2], n_neighbors=-1)
    with pytest.raises(TypeError, match="top_k must be an int"):
        est.search(X[:2], top_k=2.5)
    with pytest.raises(ValueError, match=r"shape \(50,\)"):
        est.search(X[:2], filter=np.ones(49, dtype=bool))
    with pytest.raises(ValueError, match="outside"):
        est.search(X[:2], filter=[0, 50])
    with pytest.raises(TypeError, match="boolean mask or an array of integer"):
        est.search(X[:2], filter=[0.5])
    with pytest.raises(ValueError, match="pass y to fit"):
        est.search(X[:2], category="a")
    with pytest.raises(ValueError, match="too large"):
        est.kneighbors(X[:2], n_neighbors=51)
    with pytest.raises(ValueError, match="NaN"):
        est.search(np.full((1, 16), np.nan))
    with pytest.raises(ValueError, match="metadata has 3 entries"):
        SemanticSearch().fit(X, metadata=["a", "b", "c"])
    with pytest.raises(ValueError, match="one label per item"):
        SemanticSearch().fit(X, np.zeros(3))
