"""SemanticIdAssigner: uniqueness policies, stability, fixed width."""

import pickle

import numpy as np
import pytest

from sksemantic.ids import InMemoryIDStore, SemanticIdAssigner
from sksemantic.quantization import RQKMeansEncoder


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1200, 8)).astype(np.float32)
    enc = RQKMeansEncoder(n_levels=2, n_clusters=[4, 512], random_state=0).fit(X)
    keys = [f"item{i}" for i in range(len(X))]
    return X, enc, keys


def _keys(n, start=0):
    return [f"item{i}" for i in range(start, start + n)]


def test_counter_policy(data):
    X, enc, keys = data
    assigner = SemanticIdAssigner(enc, uniqueness="counter")
    ids = assigner.assign(X, keys)
    codes = enc.transform(X)
    assert ids.shape == (len(X), 3)  # fixed width: every item has the counter
    np.testing.assert_array_equal(ids[:, :2], codes)
    assert len(np.unique(ids, axis=0)) == len(X)
    # The counter numbers the items of one code 0, 1, 2, ... in submission order.
    for code in np.unique(codes, axis=0)[:20]:
        rows = np.flatnonzero((codes == code).all(axis=1))
        np.testing.assert_array_equal(ids[rows, 2], np.arange(len(rows)))


@pytest.mark.parametrize("policy", ["nearest_free", "sinkhorn"])
def test_re_encoding_policies(data, policy):
    X, enc, keys = data
    codes = enc.transform(X)
    ids = SemanticIdAssigner(enc, uniqueness=policy).assign(X, keys)
    assert ids.shape == codes.shape
    assert len(np.unique(ids, axis=0)) == len(X)
    np.testing.assert_array_equal(ids[:, 0], codes[:, 0])  # only the last level moves
    moved = (ids[:, 1] != codes[:, 1])
    assert moved.any()
    # Moves go to near codewords: far better than a random free code would be.
    cost = enc.last_level_costs(X[moved], codes[moved])
    rows = np.arange(moved.sum())
    chosen = cost[rows, ids[moved, 1]]
    assert np.mean(chosen) < 0.5 * np.mean(cost) + 0.5 * np.mean(cost[rows, codes[moved, 1]])
    assert np.mean(chosen) >= np.mean(cost[rows, codes[moved, 1]])


def test_sinkhorn_moves_are_cheaper_in_total_than_greedy(data):
    X, enc, keys = data
    codes = enc.transform(X)
    totals = {}
    for policy in ("nearest_free", "sinkhorn"):
        ids = SemanticIdAssigner(enc, uniqueness=policy).assign(X, keys)
        cost = enc.last_level_costs(X, codes)
        totals[policy] = cost[np.arange(len(X)), ids[:, 1]].sum()
    assert totals["sinkhorn"] <= 1.01 * totals["nearest_free"]


def test_none_policy_keeps_codes(data):
    X, enc, keys = data
    ids = SemanticIdAssigner(enc, uniqueness="none").assign(X, keys)
    np.testing.assert_array_equal(ids, enc.transform(X))


@pytest.mark.parametrize("policy", ["counter", "nearest_free", "sinkhorn", "none"])
def test_stable_ids(data, policy):
    X, enc, keys = data
    assigner = SemanticIdAssigner(enc, uniqueness=policy, batch_size=300)
    first = assigner.assign(X[:700], keys[:700])
    # Resubmitting (even with changed embeddings) returns the same IDs; new items,
    # submitted with old ones, never change the old ones.
    noisy = X[:700] + np.float32(0.5)
    np.testing.assert_array_equal(assigner.assign(noisy, keys[:700]), first)
    both = assigner.assign(X, keys)
    np.testing.assert_array_equal(both[:700], first)
    np.testing.assert_array_equal(assigner.lookup(keys[:700]), first)
    assert len(assigner) == len(X)
    if policy != "none":
        assert len(np.unique(both, axis=0)) == len(X)
    # A refitted encoder gives new codes, but known items keep their IDs.
    refit = RQKMeansEncoder(n_levels=2, n_clusters=[4, 512], random_state=1).fit(X)
    later = SemanticIdAssigner(refit, uniqueness=policy, store=assigner.store_)
    np.testing.assert_array_equal(later.assign(X[:700], keys[:700]), first)


def test_repeated_key_in_one_call(data):
    X, enc, _ = data
    ids = SemanticIdAssigner(enc).assign(X[:3], ["a", "b", "a"])
    np.testing.assert_array_equal(ids[0], ids[2])
    assert len({tuple(r) for r in ids}) == 2


def test_prefix_index_over_assigned(data):
    X, enc, keys = data
    assigner = SemanticIdAssigner(enc, uniqueness="counter")
    ids = assigner.assign(X, keys)
    index = assigner.prefix_index()
    assert len(index) == len(X)
    first = ids[0]
    assert first[1] in index.next_codes(first[:1])
    assert list(first) in index


def test_full_prefix_raises_and_keeps_earlier_batches(data):
    X, _, _ = data
    small = RQKMeansEncoder(n_levels=2, n_clusters=2, random_state=0).fit(X)
    assigner = SemanticIdAssigner(small, uniqueness="nearest_free", batch_size=2)
    assigner.assign(X[:2], ["p", "q"])
    with pytest.raises(ValueError, match="codes under prefix .* is taken"):
        assigner.assign(X[2:40], _keys(38, 2))
    # Batches committed before the failing one are kept; nothing else is half-written.
    assert len(assigner) % 2 == 0 and len(assigner) >= 2
    ids = assigner.lookup(["p", "q"])
    assert len(np.unique(ids, axis=0)) == 2


def test_store_is_bound_to_one_policy(data):
    X, enc, keys = data
    store = InMemoryIDStore()
    SemanticIdAssigner(enc, uniqueness="counter", store=store).assign(X[:5], keys[:5])
    with pytest.raises(ValueError, match="uniqueness='counter'"):
        SemanticIdAssigner(enc, uniqueness="none", store=store).assign(X[5:9], keys[5:9])


def test_in_memory_store_pickles(data):
    X, enc, keys = data
    assigner = SemanticIdAssigner(enc)
    ids = assigner.assign(X[:50], keys[:50])
    again = pickle.loads(pickle.dumps(assigner))
    np.testing.assert_array_equal(again.lookup(keys[:50]), ids)


def test_bad_arguments(data):
    X, enc, keys = data
    with pytest.raises(ValueError, match="uniqueness"):
        SemanticIdAssigner(enc, uniqueness="suffix")
    with pytest.raises(TypeError, match="BaseIDStore"):
        SemanticIdAssigner(enc, store={})
    with pytest.raises(ValueError, match="rows"):
        SemanticIdAssigner(enc).assign(X[:3], keys[:2])
    with pytest.raises(TypeError, match="single string"):
        SemanticIdAssigner(enc).assign(X[:1], "item0")
    with pytest.raises(KeyError, match="no ID"):
        SemanticIdAssigner(enc).lookup(["never"])
    with pytest.raises(ValueError, match="NaN"):
        bad = X[:2].copy()
        bad[0, 0] = np.nan
        SemanticIdAssigner(enc).assign(bad, ["x", "y"])
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        SemanticIdAssigner(RQKMeansEncoder())


def test_empty_batch_gives_empty_ids_and_stores_nothing(data):
    X, enc, _ = data
    store = InMemoryIDStore()
    assigner = SemanticIdAssigner(enc, uniqueness="counter", store=store)
    for empty_X in (X[:0], []):
        ids = assigner.assign(empty_X, [])
        assert ids.shape == (0, 3) and ids.dtype == np.int64
    assert assigner.lookup([]).shape == (0, 3)
    assert len(store) == 0
    assert len(assigner.prefix_index()) == 0 and assigner.prefix_index().width == 3
    # Not even the policy was recorded: the store is still free for another one.
    other = SemanticIdAssigner(enc, uniqueness="none", store=store)
    assert other.assign(X[:2], ["a", "b"]).shape == (2, 2)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"batch_size": 2.5}, TypeError, "batch_size must be an int"),
        ({"batch_size": "x"}, TypeError, "batch_size must be an int"),
        ({"batch_size": True}, TypeError, "batch_size must be an int"),
        ({"batch_size": 0}, ValueError, "batch_size must be >= 1"),
        ({"sinkhorn_reg": "0.1"}, TypeError, "sinkhorn_reg"),
        ({"sinkhorn_reg": 0.0}, ValueError, "sinkhorn_reg"),
    ],
)
def test_bad_parameters(data, kwargs, error, match):
    _, enc, _ = data
    with pytest.raises(error, match=match):
        SemanticIdAssigner(enc, **kwargs)


def test_bad_batches_store_nothing(data):
    import scipy.sparse as sp

    X, enc, keys = data
    assigner = SemanticIdAssigner(enc, batch_size=2)
    cases = [
        (X[:2], None, TypeError, "keys must be a 1-D sequence"),
        (X[:2], np.array([["a"], ["b"]]), ValueError, r"keys must be 1-D .*shape \(2, 1\)"),
        (X[:2], [("a", 1), ("b", 2)], ValueError, r"keys\[0\] is a tuple"),
        (X[:2], ["a", ["b", "c"]], ValueError, r"keys\[1\] is a list"),
        (sp.csr_matrix(X[:2]), ["a", "b"], TypeError, "sparse"),
        (X[:2, :5], ["a", "b"], ValueError, "5 features"),
    ]
    for Xb, kb, error, match in cases:
        with pytest.raises(error, match=match):
            assigner.assign(Xb, kb)
    # A NaN in the third batch is found before the first batch is stored.
    bad = X[:6].copy()
    bad[5, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        assigner.assign(bad, keys[:6])
    assert len(assigner) == 0
