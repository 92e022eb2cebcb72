"""IVFRQIndex: lists scanned through residual codes, the best re-scored exactly."""

import gc

import numpy as np
import pytest
from sklearn.metrics.pairwise import paired_distances

from sksemantic.neighbors import (
    IVFRQIndex,
    calibrate_index,
    load_index,
    make_index,
    resolve_algorithm,
    save_index,
    tie_aware_hits,
)
from sksemantic.search import SemanticSearch


def _clustered(n, d=16, seed=0, n_centers=30):
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(123).normal(size=(n_centers, d))
    return (centers[rng.integers(n_centers, size=n)] + 0.35 * rng.normal(size=(n, d))).astype(
        np.float32
    )


@pytest.fixture(scope="module")
def data():
    return _clustered(3000), _clustered(300, seed=1), _clustered(300, seed=2)


def _recall(index, Q, k, knob):
    s_ex, _, _ = index.exact_query(Q, k)
    s, i, _ = index.query(Q, k, knob=knob)
    return float(np.mean(tie_aware_hits(s, i, s_ex[:, -1]) / k))


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "inner_product"])
def test_recall_at_calibrated_setting_and_exact_distances(tmp_path, data, metric):
    X, Q_cal, Q_test = data
    index = IVFRQIndex(metric, code_size=8, n_rescore=50, random_state=0,
                       storage=tmp_path).fit(X)
    # On a few thousand points scanning codes can cost more than exact search, and
    # the recall contract then answers exactly; the probe it weighs is the smallest
    # whose measured recall (lower bound) meets the target.
    cal = calibrate_index(index, 10, 0.97, Q=Q_cal)
    assert cal.exact or (cal.algorithm == "ivf_rq" and cal.cost < 1)
    values = np.array([1, 2, 4, 8, 16, 32, 64])
    s_ex, i_ex, _ = index.exact_query(Q_cal, 10)
    R = index.recall_curve(10, s_ex, i_ex, values, Q=Q_cal)
    low = R.mean(axis=0) - 1.645 * R.std(axis=0, ddof=1) / np.sqrt(len(R))
    value = int(values[np.flatnonzero(low >= 0.97)[0]])
    assert value < index.n_lists_
    if not cal.exact:
        assert _recall(index, Q_test, 10, cal.value) >= 0.95
    # Fresh queries from the same distribution reach the recall the setting promises.
    assert _recall(index, Q_test, 10, value) >= 0.95
    # Reported distances are the exact ones of the returned pairs.
    s, i, q_sq = index.query(Q_test, 10, knob=value)
    dist = index.distances(s, q_sq)
    if metric in ("cosine", "euclidean"):
        ref = paired_distances(np.repeat(Q_test, 10, axis=0), X[i.ravel()], metric=metric)
        np.testing.assert_allclose(dist.ravel(), ref, rtol=1e-4, atol=1e-5)
    else:
        ref = np.einsum("qd,qkd->qk", Q_test.astype(np.float64), X[i].astype(np.float64))
        np.testing.assert_allclose(s, ref, rtol=1e-4, atol=1e-4)
    # Fewer probes than the calibrated ones find fewer neighbours: the codes alone
    # do not find them all.
    assert _recall(index, Q_test, 10, 1) < 0.95


def test_memory_per_vector_and_codes(tmp_path, data):
    X = data[0]
    index = IVFRQIndex(code_size=16, random_state=0, storage=tmp_path).fit(X)
    assert isinstance(index.X_, np.memmap)
    assert index.codes_.shape == (3000, 16) and index.codes_.dtype == np.uint8
    assert index.resident_bytes_per_vector() <= 64
    # The codes are the encoder's codes of each point's offset from its list centre.
    lists = np.repeat(np.arange(index.n_lists_), np.diff(index.offsets_))
    expected = index.encoder_.transform(np.asarray(index.X_) - index.centers_[lists])
    np.testing.assert_array_equal(index.codes_, expected)
    # In memory, the full vectors count too.
    mem = IVFRQIndex(code_size=4, random_state=0).fit(X)
    assert mem.resident_bytes_per_vector() >= 4 * X.shape[1]


def test_disk_and_memory_builds_and_adds_agree(tmp_path, data):
    X, _, Q = data
    params = dict(metric="euclidean", n_lists=25, code_size=6, random_state=0)
    mem = IVFRQIndex(**params).fit(X[:2500]).add(X[2500:2800]).add(X[2800:])
    disk = IVFRQIndex(**params, storage=tmp_path).fit(X[:2500]).add(X[2500:2800]).add(X[2800:])
    for name in ("X_", "codes_", "perm_", "offsets_"):
        np.testing.assert_array_equal(getattr(mem, name), getattr(disk, name), err_msg=name)
    for a, b in zip(mem.query(Q, 5, knob=4), disk.query(Q, 5, knob=4), strict=True):
        np.testing.assert_array_equal(a, b)
    # Added points are found: each is its own nearest neighbour when every list is probed.
    _, i, _ = disk.query(X[2800:2900], 1, knob=disk.n_lists_)
    np.testing.assert_array_equal(i[:, 0], np.arange(2800, 2900))


def test_save_load_round_trip(tmp_path, data):
    X, _, Q = data
    index = IVFRQIndex(code_size=8, random_state=0, storage=tmp_path / "store").fit(X)
    before = index.query(Q, 10, knob=5)
    save_index(index, tmp_path / "saved")
    del index
    gc.collect()
    loaded = load_index(tmp_path / "saved")
    assert isinstance(loaded.X_, np.memmap) and isinstance(loaded.codes_, np.memmap)
    for a, b in zip(before, loaded.query(Q, 10, knob=5), strict=True):
        np.testing.assert_array_equal(a, b)
    assert list((tmp_path / "store").iterdir()) == []  # the dropped index's file is gone


def test_self_join_rows_start_with_themselves(data):
    X = data[0][:800]
    index = IVFRQIndex(code_size=4, n_lists=10, random_state=0).fit(X)
    s, i, _ = index.self_join(5, knob=10)
    np.testing.assert_array_equal(i[:, 0], np.arange(800))
    _, i_ex, _ = index.exact_self_join(5)
    assert np.mean([len(set(a) & set(b)) for a, b in zip(i, i_ex, strict=True)]) / 5 > 0.95


def test_bad_parameters_are_named():
    X = _clustered(100, d=4)
    with pytest.raises(ValueError, match="manhattan"):
        IVFRQIndex("manhattan").fit(X)
    with pytest.raises(ValueError, match="code_size"):
        IVFRQIndex(code_size=0).fit(X)
    with pytest.raises(ValueError, match="n_rescore"):
        IVFRQIndex(n_rescore=2.5).fit(X)


def test_factory_and_search_estimator(tmp_path):
    X, Q = _clustered(4000), _clustered(300, seed=1)
    assert isinstance(make_index("ivf_rq", "cosine", 10), IVFRQIndex)
    assert resolve_algorithm("auto", 10**7, "cosine") == "ivf"
    search = SemanticSearch(algorithm="ivf_rq", random_state=0).fit(X)
    assert search.algorithm_ == "ivf_rq" and search.calibration_.cost <= 1
    exact = SemanticSearch(algorithm="brute").fit(X)
    d_ex, i_ex = exact.kneighbors(Q, 10)
    d, i = search.kneighbors(Q, 10)
    hits = tie_aware_hits(-d, i, -d_ex[:, -1])
    assert hits.mean() / 10 >= 0.95
    search.save(tmp_path / "s")
    loaded = SemanticSearch.load(tmp_path / "s")
    for a, b in zip(search.kneighbors(Q, 10), loaded.kneighbors(Q, 10), strict=True):
        np.testing.assert_array_equal(a, b)


def test_train_alone_checks_the_code_parameters():
    X = np.random.default_rng(0).normal(size=(300, 8)).astype(np.float32)
    with pytest.raises(ValueError, match="code_size must be a positive int"):
        IVFRQIndex(n_lists=4, code_size=0).train(X)
    with pytest.raises(ValueError, match="manhattan"):
        IVFRQIndex(metric="manhattan", n_lists=4).train(X)


def test_codebooks_learn_from_rows_the_centres_did_not_fit():
    # A list centre is the mean of a few dozen training rows, so their offsets from it
    # are smaller than every other row's: codebooks learnt on them quantise the rest
    # coarsely. Those learnt by the index, on other rows, quantise the rest better.
    from sksemantic.quantization import RQKMeansEncoder

    X = np.random.default_rng(0).normal(size=(12000, 16)).astype(np.float32)
    index = IVFRQIndex("inner_product", n_lists=200, code_size=4, random_state=0).fit(X)
    train = index.train_rows_
    assert train is not None and len(train) < 0.5 * len(X)
    other = np.setdiff1d(np.arange(len(X)), train)
    lists = index.assign(X)
    offsets = X - index.centers_[lists]
    assert (offsets[train] ** 2).sum(1).mean() < 0.9 * (offsets[other] ** 2).sum(1).mean()

    def error(encoder, rows):
        R = offsets[rows]
        return float(((R - encoder.inverse_transform(encoder.transform(R))) ** 2).sum(1).mean())

    biased = RQKMeansEncoder(n_levels=4, n_clusters=256, max_iter=20, n_init=1, refine_iter=1,
                             max_samples=None, random_state=0).fit(offsets[train])
    assert error(index.encoder_, other) < 0.95 * error(biased, other)
