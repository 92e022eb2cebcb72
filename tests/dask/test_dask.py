"""sksemantic.dask on a two-worker LocalCluster: every path equals the local estimator."""

import pickle

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

from sksemantic.dask import (  # noqa: E402
    DaskEncoder,
    ShardedSemanticSearch,
    kneighbors_graph,
    merge_shard_answers,
)
from sksemantic.graph import SemanticGraphTransformer  # noqa: E402
from sksemantic.quantization import RQKMeansEncoder  # noqa: E402
from sksemantic.search import SemanticSearch  # noqa: E402
from tests._helpers import blobs  # noqa: E402


@pytest.fixture(scope="module")
def client():
    # Worker processes: estimators and shards really cross process boundaries (pickled),
    # as on a cluster. One BLAS/index thread each keeps the two of them on two cores.
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def data():
    X, _ = blobs(n_samples=3000, n_features=16, n_centers=20, seed=1)
    return X


# -- encoders ---------------------------------------------------------------------------
def test_encoder_fits_on_the_sample_and_encodes_as_locally(client, data):
    dX = da.from_array(data, chunks=500)
    enc = DaskEncoder(RQKMeansEncoder(n_levels=2, n_clusters=16, random_state=0),
                      sample_size=1000, random_state=0).fit(dX)
    rows = enc.sample_rows_
    assert len(rows) == len(np.unique(rows)) == 1000 and np.all(np.diff(rows) > 0)
    # Fitted on exactly those rows: the same codebooks as a local fit on them.
    ref = RQKMeansEncoder(n_levels=2, n_clusters=16, random_state=0).fit(data[rows])
    for a, b in zip(enc.estimator_.codebooks_, ref.codebooks_, strict=True):
        np.testing.assert_array_equal(a, b)
    codes = enc.transform(dX)
    assert isinstance(codes, da.Array) and codes.numblocks == (6, 1)
    local = enc.estimator_.transform(data)
    got = codes.compute()
    assert got.dtype == local.dtype and got.shape == local.shape
    np.testing.assert_array_equal(got, local)
    # NumPy in, NumPy out; and the reconstructions, block by block.
    np.testing.assert_array_equal(enc.transform(data), local)
    recon = enc.inverse_transform(codes).compute()
    np.testing.assert_array_equal(recon, enc.estimator_.inverse_transform(local))


def test_encoder_is_one_graph_node_not_one_per_task(data):
    dX = da.from_array(data, chunks=300)
    enc = DaskEncoder(RQKMeansEncoder(n_levels=2, n_clusters=64, random_state=0),
                      sample_size=2000, random_state=0).fit(data)
    codes = enc.transform(dX)
    size = len(pickle.dumps(enc.estimator_))
    input_keys = set(dX.__dask_graph__())
    tasks = {k: v for k, v in dict(codes.__dask_graph__()).items() if k not in input_keys}
    heavy = [k for k, v in tasks.items() if len(pickle.dumps(v)) > size // 2]
    assert len(tasks) == 11 and len(heavy) == 1  # ten block tasks, one estimator


@pytest.mark.slow  # torch loads in the workers and here (seconds each)
@pytest.mark.torch
def test_rqvae_encoder_encodes_as_locally(client, data):
    pytest.importorskip("torch")
    pytest.importorskip("skorch")
    from sksemantic.quantization import RQVAEEncoder

    est = RQVAEEncoder(n_levels=2, n_clusters=8, hidden_dims=(16,), latent_dim=8,
                       max_epochs=2, batch_size=128, random_state=0)
    dX = da.from_array(data, chunks=1500)  # two blocks: torch loads on one worker or two
    enc = DaskEncoder(est, sample_size=1500, random_state=0).fit(dX)
    np.testing.assert_array_equal(enc.transform(dX).compute(), enc.estimator_.transform(data))


def test_encoder_rejects_bad_parameters(data):
    with pytest.raises(ValueError, match="sample_size"):
        DaskEncoder(sample_size=0).fit(data)
    with pytest.raises(ValueError, match="estimator"):
        DaskEncoder(estimator="kmeans").fit(data)


# -- graphs ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "params",
    [
        {"mode": "distance", "metric": "cosine"},
        {"mode": "connectivity", "metric": "euclidean"},
        {"mode": "similarity", "metric": "inner_product"},
        {"mode": "distance", "metric": "cosine", "min_similarity": 0.9},
    ],
    ids=lambda p: "-".join(str(v) for v in p.values()),
)
def test_exact_graph_equals_the_local_graph(client, data, params):
    t = SemanticGraphTransformer(n_neighbors=7, algorithm="brute", n_jobs=1, **params)
    # Three shards over two workers, query blocks that straddle the shard borders.
    G = kneighbors_graph(da.from_array(data, chunks=700), t, n_shards=3)
    L = t.fit_transform(data)
    assert G.shape == L.shape and G.format == "csr"
    assert G.dtype == L.dtype and G.indices.dtype == L.indices.dtype
    np.testing.assert_array_equal(G.indptr, L.indptr)
    np.testing.assert_array_equal(G.indices, L.indices)
    np.testing.assert_allclose(G.data, L.data, rtol=1e-5, atol=1e-6)


def test_float64_input_gives_a_float64_graph(client, data):
    X = data[:800].astype(np.float64)
    t = SemanticGraphTransformer(n_neighbors=4, algorithm="brute", n_jobs=1)
    G = kneighbors_graph(da.from_array(X, chunks=300), t)
    L = t.fit_transform(X)
    assert G.dtype == L.dtype == np.float64
    np.testing.assert_array_equal(G.indices, L.indices)


def _tie_aware_recall(G, exact, k):
    """Mean over rows of the found others at a distance within the exact k-th other
    one, over k (distance graphs with k + 1 entries per row, the point itself first)."""
    n = G.shape[0]
    found = G.data.reshape(n, k + 1)[:, 1:]
    kth = exact.data.reshape(n, k + 1)[:, k]
    hits = np.count_nonzero(found <= (kth + 1e-5 * np.maximum(1.0, kth))[:, None], axis=1)
    return float(np.minimum(hits, k).mean()) / k


def test_approximate_shards_reach_the_local_recall(client, data):
    k = 10
    t = SemanticGraphTransformer(n_neighbors=k, algorithm="ivf", random_state=0, n_jobs=1)
    exact = SemanticGraphTransformer(n_neighbors=k, algorithm="brute").fit_transform(data)
    G = kneighbors_graph(da.from_array(data, chunks=750), t)
    L = t.fit_transform(data)
    assert G.shape == L.shape
    for graph in (G, L, exact):
        assert (np.diff(graph.indptr) == k + 1).all()
        np.testing.assert_array_equal(graph.indices[graph.indptr[:-1]], np.arange(len(data)))
    sharded, local = _tie_aware_recall(G, exact, k), _tie_aware_recall(L, exact, k)
    # Each shard is calibrated to target_recall as the local index is; a margin for
    # the sampling error of two calibrations.
    assert sharded >= local - 0.01


@pytest.mark.parametrize(
    "metric,mode", [("cosine", "distance"), ("euclidean", "connectivity"),
                    ("inner_product", "similarity")])
def test_ivf_graph_is_the_local_graph(client, data, metric, mode):
    # The lists are split over the workers (three ranges on two workers) and joined
    # as the local self-join joins them: the same pairs, the same graph.
    t = SemanticGraphTransformer(n_neighbors=6, algorithm="ivf", metric=metric, mode=mode,
                                 random_state=0, n_jobs=1)
    G = kneighbors_graph(da.from_array(data, chunks=700), t, n_shards=3)
    L = t.fit_transform(data)
    assert G.shape == L.shape and G.dtype == L.dtype
    assert G.indices.dtype == L.indices.dtype
    np.testing.assert_array_equal(G.indptr, L.indptr)
    np.testing.assert_array_equal(G.indices, L.indices)
    np.testing.assert_allclose(G.data, L.data, rtol=1e-5, atol=1e-6)


def test_ivf_graph_that_calibrates_to_exact_search_searches_exactly(client, capsys):
    # On 60 points without structure the target costs more probes than exact search:
    # locally the self-join runs exactly, and so does the cluster (no join probing
    # every list).
    X = np.random.default_rng(0).normal(size=(60, 8)).astype(np.float32)
    t = SemanticGraphTransformer(n_neighbors=5, algorithm="ivf", random_state=0, n_jobs=1,
                                 verbose=1)
    L = t.fit_transform(X)
    assert t.self_join_calibration_.exact
    capsys.readouterr()
    G = kneighbors_graph(da.from_array(X, chunks=25), t)
    assert "searching exactly" in capsys.readouterr().err
    np.testing.assert_array_equal(G.indices, L.indices)
    np.testing.assert_allclose(G.data, L.data, rtol=1e-5, atol=1e-6)


def test_ivf_graph_without_a_seed_meets_the_target(client, data):
    k = 8
    t = SemanticGraphTransformer(n_neighbors=k, algorithm="ivf", n_jobs=1)
    exact = SemanticGraphTransformer(n_neighbors=k, algorithm="brute").fit_transform(data)
    G = kneighbors_graph(da.from_array(data, chunks=1000), t)
    np.testing.assert_array_equal(G.indices[G.indptr[:-1]], np.arange(len(data)))
    assert _tie_aware_recall(G, exact, k) >= 0.95 - 0.02


def test_graph_rejects_bad_parameters(data):
    X = da.from_array(data[:100], chunks=50)
    with pytest.raises(TypeError, match="SemanticGraphTransformer"):
        kneighbors_graph(X, SemanticSearch())
    with pytest.raises(ValueError, match="at most one of max_distance and min_similarity"):
        kneighbors_graph(X, SemanticGraphTransformer(max_distance=0.1, min_similarity=0.9))
    with pytest.raises(ValueError, match="n_neighbors"):
        kneighbors_graph(X, SemanticGraphTransformer(n_neighbors=100))


# -- search ------------------------------------------------------------------------------
@pytest.mark.parametrize("metric", ["cosine", "inner_product", "euclidean"])
def test_sharded_search_equals_local_exact_search(client, data, metric):
    rng = np.random.default_rng(0)
    Q = data[rng.choice(len(data), 50, replace=False)] + 0.05 * rng.normal(
        size=(50, data.shape[1])).astype(np.float32)
    search = SemanticSearch(n_neighbors=8, metric=metric, algorithm="brute", n_jobs=1)
    sharded = ShardedSemanticSearch(search).fit(da.from_array(data, chunks=600))
    assert len(sharded.shards_) == 2 and len(set(sharded.shard_workers_)) == 2
    np.testing.assert_array_equal(sharded.shard_offsets_, [0, 1500, 3000])
    dist, ind = sharded.kneighbors(Q)
    l_dist, l_ind = SemanticSearch(n_neighbors=8, metric=metric, algorithm="brute").fit(
        data).kneighbors(Q)
    np.testing.assert_array_equal(ind, l_ind)
    np.testing.assert_allclose(dist, l_dist, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(sharded.kneighbors(Q, 3, return_distance=False),
                                  l_ind[:, :3])


@pytest.mark.parametrize("as_dask", [True, False], ids=["dask", "numpy"])
def test_sharded_search_ids_are_corpus_rows(client, data, as_dask):
    X = da.from_array(data, chunks=1000) if as_dask else data
    sharded = ShardedSemanticSearch(SemanticSearch(algorithm="brute", n_jobs=1),
                                    n_shards=5).fit(X)
    np.testing.assert_array_equal(sharded.shard_offsets_, np.arange(0, 3001, 600))
    rows = np.array([0, 599, 600, 1799, 2999])
    np.testing.assert_array_equal(sharded.kneighbors(data[rows], 1)[1][:, 0], rows)


def _recall(found, exact):
    return np.mean([len(np.intersect1d(a, b)) / a.size for a, b in zip(found, exact, strict=True)])


def test_approximate_shards_and_calibrate(client, data):
    search = SemanticSearch(n_neighbors=5, algorithm="ivf", random_state=0, n_jobs=1)
    sharded = ShardedSemanticSearch(search).fit(da.from_array(data, chunks=1000))
    assert sharded.calibration_.source == "corpus" and sharded.calibration_.k == 5
    rng = np.random.default_rng(1)
    Q = data[:300] + 0.3 * rng.normal(size=(300, data.shape[1])).astype(np.float32)
    sharded.calibrate(Q)
    cal = sharded.calibration_
    assert cal.source == "queries" and cal.n_queries == 300
    exact = SemanticSearch(n_neighbors=5, algorithm="brute").fit(data).kneighbors(Q)[1]
    found = sharded.kneighbors(Q, return_distance=False)
    recall = _recall(found, exact)
    assert recall >= 0.9
    if not cal.exact:  # measured on these very queries: the estimate is their recall
        assert abs(cal.recall - recall) < 1e-9


def _tiled(n=6000, d=24, seed=3):
    """Noisy copies of 600 points: a row's nearest few are its close copies, the rest
    of its top 10 far, as in tiled real embeddings."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(600, d))
    return (base[rng.integers(600, size=n)] + 0.3 * rng.normal(size=(n, d))).astype(np.float32)


def test_shards_share_one_setting_for_the_merged_recall(client):
    # Each shard needs only its part of a query's top k; tuning each for its own
    # top k would probe more than the merged recall needs.
    X = _tiled(n=6000)
    Q, corpus = X[:400], X[400:]
    search = SemanticSearch(n_neighbors=10, algorithm="ivf", n_lists=60, target_recall=0.9,
                            random_state=0, n_jobs=1)
    sharded = ShardedSemanticSearch(search, n_shards=2).fit(da.from_array(corpus, chunks=2800))
    sharded.calibrate(Q[:200])
    joint = sharded.calibration_
    assert not joint.exact and joint.recall_low >= 0.9
    exact = SemanticSearch(n_neighbors=10, algorithm="brute").fit(corpus).kneighbors(Q[200:])[1]
    recall = _recall(sharded.kneighbors(Q[200:], return_distance=False), exact)
    assert recall >= 0.87 and abs(recall - joint.recall) <= 0.03
    # One shard calibrated alone for its own top 10 needs more probes than that: its
    # far neighbours, which the other shard's close ones push out of the merged top 10.
    own = SemanticSearch(**search.get_params()).fit(corpus[:2800]).calibrate(Q[:200])
    assert own.calibration_.value >= 2 * joint.value


def test_corpus_calibration_leaves_each_row_out_of_its_answers(client):
    # Corpus rows as calibration queries find themselves for free; at k=2 that would
    # be half of every answer. The estimate at fit must be that of new queries.
    X = _tiled(n=6000)
    Q, corpus = X[:400], X[400:]
    search = SemanticSearch(n_neighbors=2, algorithm="ivf", n_lists=60, n_probe=1,
                            random_state=0, n_jobs=1)
    sharded = ShardedSemanticSearch(search, n_shards=2).fit(da.from_array(corpus, chunks=2800))
    cal = sharded.calibration_
    assert cal.source == "corpus" and cal.value == 1 and cal.n_queries > 0
    exact = SemanticSearch(n_neighbors=2, algorithm="brute").fit(corpus).kneighbors(Q)[1]
    recall = _recall(sharded.kneighbors(Q, return_distance=False), exact)
    assert recall < 0.9  # one list of sixty misses neighbours: the test can tell
    assert abs(recall - cal.recall) <= 0.05


def test_the_common_setting_survives_save_and_load(client, tmp_path):
    X = _tiled(n=3000)
    search = SemanticSearch(n_neighbors=5, algorithm="ivf", n_lists=30, random_state=0, n_jobs=1)
    sharded = ShardedSemanticSearch(search).fit(da.from_array(X, chunks=1500))
    sharded.calibrate(X[:200] + 0.1)
    loaded = ShardedSemanticSearch.load(sharded.save(tmp_path / "s"))
    assert loaded.calibration_ == sharded.calibration_
    # The shards were fitted without a calibration of their own (it would be thrown
    # away); the search's target is kept in the save, not in the shards.
    own = client.gather([client.submit(lambda s: s.calibration_.n_queries, f, pure=False)
                         for f in sharded.shards_])
    assert own == [0, 0]
    assert loaded.search.target_recall == search.target_recall == 0.95
    np.testing.assert_array_equal(loaded.kneighbors(X[::50])[1], sharded.kneighbors(X[::50])[1])


def test_save_and_load_one_directory_per_shard(client, data, tmp_path):
    search = SemanticSearch(n_neighbors=4, algorithm="brute", n_jobs=1)
    sharded = ShardedSemanticSearch(search, n_shards=3).fit(da.from_array(data, chunks=500))
    path = sharded.save(tmp_path / "index")
    shard_dirs = sorted(p.name for p in path.iterdir() if p.is_dir())
    assert shard_dirs == ["shard-00000", "shard-00001", "shard-00002"]
    # Each shard is a SemanticSearch save of its own rows.
    assert SemanticSearch.load(path / "shard-00001").n_samples_fit_ == 1000
    loaded = ShardedSemanticSearch.load(path)
    assert loaded.search.get_params() == search.get_params()
    np.testing.assert_array_equal(loaded.shard_offsets_, sharded.shard_offsets_)
    Q = data[::97]
    np.testing.assert_array_equal(loaded.kneighbors(Q)[1], sharded.kneighbors(Q)[1])
    # Saving again with fewer shards leaves no stale shard behind.
    ShardedSemanticSearch(search, n_shards=2).fit(da.from_array(data, chunks=500)).save(path)
    assert sorted(p.name for p in path.iterdir() if p.is_dir()) == shard_dirs[:2]
    assert ShardedSemanticSearch.load(path).n_samples_fit_ == len(data)


def test_save_refuses_foreign_directories_and_pickling(client, data, tmp_path):
    sharded = ShardedSemanticSearch(SemanticSearch(algorithm="brute", n_jobs=1)).fit(
        da.from_array(data[:200], chunks=100))
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="notes.txt"):
        sharded.save(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    with pytest.raises(FileNotFoundError, match="sharded.json"):
        ShardedSemanticSearch.load(tmp_path)
    with pytest.raises(TypeError, match="save"):
        pickle.dumps(sharded)


def test_sharded_search_rejects_bad_queries(client, data):
    sharded = ShardedSemanticSearch(SemanticSearch(algorithm="brute", n_jobs=1)).fit(
        da.from_array(data[:200], chunks=100))
    # More results than one shard holds: the other shard makes up the rest.
    local = SemanticSearch(algorithm="brute").fit(data[:200]).kneighbors(data[:2], 150)[1]
    np.testing.assert_array_equal(sharded.kneighbors(data[:2], 150)[1], local)
    with pytest.raises(ValueError, match="features"):
        sharded.kneighbors(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="n_neighbors"):
        sharded.kneighbors(data[:2], 201)
    with pytest.raises(ValueError, match="n_shards"):
        ShardedSemanticSearch(n_shards=0).fit(da.from_array(data[:200], chunks=100))
    with pytest.raises(ValueError, match="n_shards"):
        kneighbors_graph(da.from_array(data[:200], chunks=100),
                         SemanticGraphTransformer(algorithm="ivf", n_neighbors=3), n_shards=0)


def test_merge_keeps_the_best_and_breaks_ties_by_id():
    a = (np.array([[0.5, 0.5], [0.9, -np.inf]], np.float32), np.array([[3, 4], [1, -1]]))
    b = (np.array([[0.5, 0.1], [0.2, 0.1]], np.float32), np.array([[0, 7], [8, 9]]))
    s, i = merge_shard_answers([a, b], 3)
    np.testing.assert_array_equal(i, [[0, 3, 4], [1, 8, 9]])
    np.testing.assert_array_equal(s[1], np.array([0.9, 0.2, 0.1], np.float32))
    # Fewer entries than asked for: the rest is empty (-inf, -1).
    s, i = merge_shard_answers([(a[0][:, :1], a[1][:, :1])], 3)
    np.testing.assert_array_equal(i, [[3, -1, -1], [1, -1, -1]])
    assert np.isneginf(s[:, 1:]).all()


def test_bad_values_fail_on_the_workers_with_the_estimators_error(client, data):
    X = data[:200].copy()
    X[150, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ShardedSemanticSearch(SemanticSearch(algorithm="brute")).fit(
            da.from_array(X, chunks=100))


def test_without_a_client_the_error_says_how_to_start_one(monkeypatch, data):
    def no_client(*args, **kwargs):
        raise ValueError("No global client found and no address provided")

    monkeypatch.setattr(distributed, "get_client", no_client)
    with pytest.raises(ValueError, match="Client"):
        ShardedSemanticSearch().fit(da.from_array(data[:100], chunks=50))
