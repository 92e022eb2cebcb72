"""Code metrics on hand-computed cases, and their errors on bad input."""

import numpy as np
import pytest

from sksemantic.metrics import (
    codebook_usage,
    collision_rate,
    collision_rate_per_level,
    find_similar,
    hierarchical_distance,
    prefix_ids,
    quantization_mse,
    reconstruction_cosine,
    shared_code_fraction,
    shared_code_fraction_per_level,
)

# Six items, three levels. Whole codes: (0,0,0) x2, (0,0,1), (0,1,0), (1,0,0) x2.
CODES = np.array(
    [[0, 0, 0], [0, 0, 0], [0, 0, 1], [0, 1, 0], [1, 0, 0], [1, 0, 0]], dtype=np.int32
)


def test_collision_rate_hand_computed():
    # 4 distinct whole codes among 6 items.
    assert collision_rate(CODES) == pytest.approx(1 - 4 / 6)
    # Depth 1: prefixes {0, 1}; depth 2: {00, 01, 10}.
    assert collision_rate(CODES, depth=1) == pytest.approx(1 - 2 / 6)
    assert collision_rate(CODES, depth=2) == pytest.approx(1 - 3 / 6)
    np.testing.assert_allclose(collision_rate_per_level(CODES), [4 / 6, 3 / 6, 2 / 6])


def test_shared_code_fraction_hand_computed():
    # Whole codes: items 0,1 share and 4,5 share; 2 and 3 are alone.
    assert shared_code_fraction(CODES) == pytest.approx(4 / 6)
    # Depth 2: 00 x3, 01 x1, 10 x2 -> only item 3 is alone.
    assert shared_code_fraction(CODES, depth=2) == pytest.approx(5 / 6)
    np.testing.assert_allclose(shared_code_fraction_per_level(CODES), [1.0, 5 / 6, 4 / 6])


def test_extremes_and_ordering():
    unique = np.arange(10)[:, None]
    assert collision_rate(unique) == 0.0
    assert shared_code_fraction(unique) == 0.0
    same = np.zeros((10, 2), dtype=int)
    assert collision_rate(same) == pytest.approx(0.9)
    assert shared_code_fraction(same) == 1.0
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 3, size=(200, 4))
    # Deeper prefixes can only split groups; sharing is never rarer than colliding.
    rates = collision_rate_per_level(codes)
    assert np.all(np.diff(rates) <= 0)
    assert np.all(shared_code_fraction_per_level(codes) >= rates)


def test_prefix_ids_match_tuples():
    rng = np.random.default_rng(1)
    codes = rng.integers(-2, 4, size=(300, 3))  # negative codes are fine here
    ids = prefix_ids(codes)
    for d in range(1, 4):
        keys = [tuple(row) for row in codes[:, :d]]
        same_key = np.array([[a == b for b in keys[:40]] for a in keys[:40]])
        same_id = ids[:40, d - 1][:, None] == ids[:40, d - 1][None, :]
        np.testing.assert_array_equal(same_key, same_id)
        assert ids[:, d - 1].max() + 1 == len(set(keys))


def test_codebook_usage_hand_computed():
    usage = codebook_usage(CODES, n_clusters=[2, 4, 2])
    np.testing.assert_array_equal(usage["n_used"], [2, 2, 2])
    np.testing.assert_allclose(usage["used_fraction"], [1.0, 0.5, 1.0])
    # Level 0: p = (4/6, 2/6); level 1 and 2: p = (5/6, 1/6).
    h0 = -(4 / 6 * np.log(4 / 6) + 2 / 6 * np.log(2 / 6))
    h1 = -(5 / 6 * np.log(5 / 6) + 1 / 6 * np.log(1 / 6))
    np.testing.assert_allclose(usage["entropy"], [h0, h1, h1])
    np.testing.assert_allclose(usage["perplexity"], np.exp([h0, h1, h1]))
    np.testing.assert_allclose(usage["largest_bucket"], [4 / 6, 5 / 6, 5 / 6])
    # Uniform use of all K codes: perplexity K.
    uniform = codebook_usage(np.arange(8)[:, None], n_clusters=8)
    assert uniform["perplexity"][0] == pytest.approx(8.0)
    assert uniform["used_fraction"][0] == 1.0
    # Without n_clusters the codebook size is the largest code + 1.
    np.testing.assert_array_equal(codebook_usage(CODES)["n_clusters"], [2, 2, 2])


def test_reconstruction_metrics_hand_computed():
    X = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])
    R = np.array([[1.0, 1.0], [0.0, 0.0], [3.0, 4.0]])
    # Squared errors: 1, 4, 0 over 6 entries.
    assert quantization_mse(X, R) == pytest.approx(5 / 6)
    # Cosines: 1/sqrt(2), 0 (zero reconstruction), 1.
    assert reconstruction_cosine(X, R) == pytest.approx((2**-0.5 + 0 + 1) / 3)
    assert quantization_mse(X, X) == 0.0
    assert reconstruction_cosine(X, 2 * X) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "func", [collision_rate, shared_code_fraction, collision_rate_per_level, codebook_usage]
)
def test_bad_codes(func):
    with pytest.raises(TypeError, match="codes must hold integers"):
        func(np.array([[0.5, 1.0]]))
    with pytest.raises(ValueError, match="2-D"):
        func(np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="2-D"):
        func(np.zeros((2, 2, 2), dtype=int))


def test_bad_depth_and_codebook():
    with pytest.raises(ValueError, match="depth=4 exceeds the 3 levels"):
        collision_rate(CODES, depth=4)
    with pytest.raises(ValueError, match="level 1 range over .* outside the codebook"):
        codebook_usage(CODES, n_clusters=[2, 1, 2])
    with pytest.raises(ValueError, match="n_clusters must be an int or 3 ints"):
        codebook_usage(CODES, n_clusters=[2, 2])
    with pytest.raises(ValueError, match="outside the codebook"):
        codebook_usage(np.array([[-1], [0]]))


def test_bad_reconstruction_shape():
    with pytest.raises(ValueError, match=r"reconstruction has shape \(2, 3\) but X has shape"):
        quantization_mse(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="reconstruction has shape"):
        reconstruction_cosine(np.zeros((3, 2)), np.zeros((2, 2)))


def _brute_hierarchical(a, b):
    """n_levels minus the common prefix, level by level."""
    common = 0
    for x, y in zip(a, b, strict=True):
        if x != y:
            break
        common += 1
    return len(a) - common


def test_hierarchical_distance_hand_computed():
    assert hierarchical_distance([1, 2, 3], [1, 2, 3]) == 0
    assert hierarchical_distance([0, 2, 3], [1, 2, 3]) == 3  # later agreement counts for nothing
    assert hierarchical_distance([1, 0, 3], [1, 9, 3]) == 2
    assert hierarchical_distance([1, 2, 0], [1, 2, 9]) == 1
    assert isinstance(hierarchical_distance([5], [3]), int)
    pairwise = hierarchical_distance([[1, 2, 3], [0, 0, 0]], [[1, 2, 9], [0, 0, 0]])
    assert pairwise.tolist() == [1, 0] and pairwise.dtype == np.int64


def test_hierarchical_distance_broadcasts_a_single_code():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 3, size=(200, 4))
    query = codes[7]
    expected = [_brute_hierarchical(query, c) for c in codes]
    for q in (query, query[None, :]):
        assert hierarchical_distance(q, codes).tolist() == expected
        assert hierarchical_distance(codes, q).tolist() == expected
    other = rng.integers(0, 3, size=(200, 4))
    assert hierarchical_distance(codes, other).tolist() == [
        _brute_hierarchical(a, b) for a, b in zip(codes, other, strict=True)
    ]
    assert hierarchical_distance(np.zeros((0, 4), dtype=int), query).shape == (0,)


@pytest.mark.parametrize(
    "a, b, error, match",
    [
        ([[1, 2, 3]], [[1, 2]], ValueError, "codes_a has 3 levels but codes_b has 2"),
        ([[1, 2], [3, 4]], [[1, 2], [3, 4], [5, 6]], ValueError, "2 rows but codes_b has 3"),
        ([[1.5, 2.0]], [[1, 2]], TypeError, "codes_a must hold integers"),
        ([1, 2], ["1", "2"], TypeError, "codes_b must hold integers"),
        ([True, False], [1, 0], TypeError, "codes_a must hold integer codes"),
        (np.zeros((2, 2, 2), dtype=int), [0, 0], ValueError, r"got shape \(2, 2, 2\)"),
    ],
)
def test_hierarchical_distance_checks_its_codes(a, b, error, match):
    with pytest.raises(error, match=match):
        hierarchical_distance(a, b)


def test_find_similar_by_row_and_by_code():
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 3, size=(60, 3))
    dist = np.array([_brute_hierarchical(codes[5], c) for c in codes])
    # By row: itself left out, nearest first, ties in row order.
    expected = sorted((i for i in range(60) if i != 5), key=lambda i: (dist[i], i))
    idx, d = find_similar(codes, 5, k=20)
    assert idx.tolist() == expected[:20]
    assert d.tolist() == dist[expected[:20]].tolist()
    # k is capped at the other rows.
    idx, _ = find_similar(codes, np.int64(5), k=500)
    assert idx.tolist() == expected
    # By code: every row is a candidate, the row holding the code too.
    idx, d = find_similar(codes, codes[5], k=500)
    assert idx.tolist() == sorted(range(60), key=lambda i: (dist[i], i))
    assert d[0] == 0
    assert find_similar([[1, 2]], 0, k=3)[0].tolist() == []  # no other item


@pytest.mark.parametrize(
    "query, k, error, match",
    [
        (3, 1, ValueError, r"query=3 is not a row of codes: rows are 0 \.\. 2"),
        (-1, 1, ValueError, "query=-1 is not a row"),
        (True, 1, TypeError, "query must be a row index"),
        (2.0, 1, ValueError, "query"),
        ([1, 2], 1, ValueError, "query has 2 levels but codes have 3"),
        ([[1, 2, 3]], 1, ValueError, r"one code of shape \(3,\)"),
        ([1.5, 2, 3], 1, TypeError, "query must hold integers"),
        (0, 0, ValueError, "k"),
        (0, 2.5, ValueError, "k"),
    ],
)
def test_find_similar_checks_its_arguments(query, k, error, match):
    codes = [[1, 2, 3], [1, 2, 0], [0, 0, 0]]
    with pytest.raises(error, match=match):
        find_similar(codes, query, k=k)
