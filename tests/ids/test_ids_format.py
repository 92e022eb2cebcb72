"""Semantic-ID strings: plain and token formats, round trips, malformed input."""

import numpy as np
import pytest

from sksemantic.ids import codes_to_strings, level_letter, strings_to_codes


def test_plain_and_token_round_trip():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 300, size=(50, 4))
    for fmt in ("plain", "token"):
        ids = codes_to_strings(codes, fmt=fmt)
        assert len(set(ids)) == len({tuple(r) for r in codes})
        np.testing.assert_array_equal(strings_to_codes(ids, fmt=fmt), codes)
    ids = codes_to_strings(codes, sep="/")
    assert ids[0] == "/".join(map(str, codes[0]))
    np.testing.assert_array_equal(strings_to_codes(ids, sep="/"), codes)


def test_token_format_letters():
    assert codes_to_strings([[3, 9, 1]], fmt="token")[0] == "<a_3><b_9><c_1>"
    assert [level_letter(i) for i in (0, 25, 26, 27)] == ["a", "z", "aa", "ab"]
    wide = np.arange(30)[None]
    np.testing.assert_array_equal(strings_to_codes(codes_to_strings(wide, fmt="token"), fmt="token"), wide)


@pytest.mark.parametrize(
    "bad, fmt, match",
    [
        ("3-x-1", "plain", r"Malformed semantic ID ids\[0\] = '3-x-1'"),
        ("3--1", "plain", "Malformed"),
        ("-3-1", "plain", "Malformed"),
        ("<a_3><c_9>", "token", "expected <b_"),
        ("<a_3>junk", "token", "Malformed"),
        ("a_3", "token", "Malformed"),
        ("<a_-3>", "token", "Malformed"),
    ],
)
def test_malformed_strings(bad, fmt, match):
    with pytest.raises(ValueError, match=match):
        strings_to_codes(["1-2-3" if fmt == "plain" else "<a_1><b_2>", bad][1:], fmt=fmt)


def test_width_checks():
    with pytest.raises(ValueError, match="different numbers of levels"):
        strings_to_codes(["1-2-3", "1-2"])
    with pytest.raises(ValueError, match="expected 2"):
        strings_to_codes(["1-2-3"], n_levels=2)
    with pytest.raises(ValueError, match="empty"):
        strings_to_codes([])
    with pytest.raises(TypeError, match="str"):
        strings_to_codes([12])


def test_bad_format_arguments():
    with pytest.raises(ValueError, match="fmt"):
        codes_to_strings([[1]], fmt="json")
    with pytest.raises(ValueError, match="sep"):
        codes_to_strings([[1]], sep="1")
    with pytest.raises(ValueError, match="non-negative"):
        codes_to_strings([[-1, 2]])


def test_level_letter_rejects_what_is_not_a_level():
    assert level_letter(np.int64(3)) == "d"
    for bad in (-1, -2, -27):  # -2 and below used to loop forever
        with pytest.raises(ValueError, match=f"level must be >= 0.*got {bad}"):
            level_letter(bad)
    for bad in (2.5, "3", True, None):
        with pytest.raises(TypeError, match="level must be an int"):
            level_letter(bad)


def test_empty_codes_give_no_strings():
    for fmt in ("plain", "token"):
        ids = codes_to_strings(np.zeros((0, 3), dtype=np.int64), fmt=fmt)
        assert ids.shape == (0,)
        assert ids.tolist() == []
    with pytest.raises(TypeError, match="integers"):
        codes_to_strings(np.array([[1.5, 2.0]]))


def test_no_strings_give_no_codes_when_the_width_is_known():
    assert strings_to_codes([], n_levels=3).shape == (0, 3)
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="n_levels must be an int >= 1"):
            strings_to_codes(["1-2"], n_levels=bad)
