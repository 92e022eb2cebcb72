"""PrefixIndex: valid continuations of prefixes, checked against brute force."""

import numpy as np
import pytest

from sksemantic.ids import PrefixIndex, codes_to_strings


def test_next_codes_match_brute_force():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 6, size=(400, 3))
    index = PrefixIndex(codes)
    assert len(index) == len({tuple(r) for r in codes})
    for prefix in ([], [2], [5, 1], [0, 0], [9]):
        m = len(prefix)
        rows = codes[(codes[:, :m] == prefix).all(axis=1)] if m else codes
        expected = np.unique(rows[:, m]) if len(rows) else np.array([], dtype=np.int64)
        np.testing.assert_array_equal(index.next_codes(prefix), expected)
        assert index.count(prefix) == len({tuple(r) for r in rows})
    mask = index.mask([2], 6)
    assert mask.dtype == bool and mask.sum() == len(index.next_codes([2]))
    assert list(codes[0]) in index
    assert [7, 7, 7] not in index


def test_constrained_decoding_walk_reaches_only_assigned_ids():
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 50, size=(300, 3))
    index = PrefixIndex(codes)
    assigned = {tuple(r) for r in codes}
    for _ in range(50):  # random greedy decoding restricted by the index
        prefix = []
        for _level in range(3):
            prefix.append(int(rng.choice(index.next_codes(prefix))))
        assert tuple(prefix) in assigned


def test_from_strings_and_errors():
    index = PrefixIndex.from_strings(codes_to_strings([[1, 2], [1, 3]], fmt="token"), fmt="token")
    assert index.next_codes([1]).tolist() == [2, 3]
    with pytest.raises(ValueError, match="complete ID"):
        index.next_codes([1, 2])
    with pytest.raises(ValueError, match="only 2"):
        index.count([1, 2, 3])


def test_prefix_codes_must_be_integers():
    index = PrefixIndex([[3, 9, 1], [3, 9, 4], [5, 0, 0]])
    assert index.next_codes([3.0]).tolist() == [9]  # an integral float is the same code
    with pytest.raises(TypeError, match="prefix must hold integers"):
        index.next_codes([3.7])  # was read as 3
    with pytest.raises(TypeError, match="prefix"):
        index.next_codes([True])
    with pytest.raises(ValueError, match="1-D"):
        index.next_codes([[3]])
    with pytest.raises(TypeError, match="prefix"):
        index.count(["3"])


def test_mask_checks_n_codes():
    index = PrefixIndex([[3, 9, 1], [3, 2, 4], [5, 0, 0]])
    assert np.flatnonzero(index.mask([3], 10)).tolist() == [2, 9]
    for bad in (2.5, None, "10", True):
        with pytest.raises(TypeError, match="n_codes must be an int"):
            index.mask([3], bad)
    for bad in (-1, 0):
        with pytest.raises(ValueError, match="n_codes must be >= 1"):
            index.mask([3], bad)
    # Too small a vocabulary would hide code 9, and so the IDs that start 3-9.
    with pytest.raises(ValueError, match="n_codes=5 is too small: code 9"):
        index.mask([3], 5)


def test_index_of_no_ids_allows_nothing():
    index = PrefixIndex(np.zeros((0, 3), dtype=np.int64))
    assert len(index) == 0 and index.width == 3
    assert index.next_codes([]).tolist() == [] and index.next_codes([1, 2]).tolist() == []
    assert index.count([]) == 0 and [1, 2, 3] not in index
    assert not index.mask([], 4).any()
